"""Wording of `powergrid run`'s summary (powergrid-core's CLI; here with the other checks of the r42b review)."""

from __future__ import annotations

from powergrid.cli import main

BLACKOUT = """\
name: blackout
network: {type: case33bw}
time: {physics: 15min, episode: 2h}
agents:
  - {id: dg, type: DG, bus: 17, policy: rule, params: {p_max_mw: 400.0, cost_a: 0.0001, cost_b: 1.0}}
"""


def test_the_run_summary_counts_the_episodes_that_ended_early(tmp_path, capsys):
    """Three episodes, each ending at its first tick (the flow diverges): it said "(one ended early)" whatever the
    number."""
    config = tmp_path / "blackout.yaml"
    config.write_text(BLACKOUT)
    assert main(["run", str(config), "--episodes", "3", "--out", str(tmp_path / "out")]) == 0
    summary = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("blackout: 3 episode(s)"))
    assert ", 3 of 24 steps (3 ended early), " in summary, summary


"""Wording of `powergrid run`'s summary and of the --help of the commands that write files (r42b F7, F10)."""

from __future__ import annotations

import pytest

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
    pytest.importorskip("powergrid_devices")  # its DG: CI's core session installs powergrid-core alone
    config = tmp_path / "blackout.yaml"
    config.write_text(BLACKOUT)
    assert main(["run", str(config), "--episodes", "3", "--out", str(tmp_path / "out")]) == 0
    summary = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("blackout: 3 episode(s)"))
    assert ", 3 of 24 steps (3 ended early), " in summary, summary


@pytest.mark.parametrize("command", [["run"], ["network", "plot"]])
def test_help_names_the_default_output_folder(command, capsys):
    """Without --out, run and network plot write to ./runs; --help did not say so."""
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    assert "(default: ./runs)" in " ".join(capsys.readouterr().out.split())

"""``powergrid run``: what it writes for the learned agents."""

from __future__ import annotations

import csv
import json

import pytest

from powergrid.cli import main

pytest.importorskip("powergrid_devices", reason="the batteries come with powergrid-devices")

TWO_EQUAL_STORES = """\
name: two_ess
network: {type: case33bw}
time: {physics: 15min, episode: 2h}
agents:
  - {id: a, type: ESS, bus: 5, policy: learned, params: {p_max_mw: 0.3, capacity_mwh: 1.0}}
  - {id: b, type: ESS, bus: 17, policy: learned, params: {p_max_mw: 0.3, capacity_mwh: 1.0}}
"""


def test_random_policy_draws_each_learned_agent_its_own_actions(tmp_path):
    config = tmp_path / "two.yaml"
    config.write_text(TWO_EQUAL_STORES)
    assert main(["run", str(config), "--policy", "random", "--seed", "3", "--out", str(tmp_path / "out")]) == 0
    with (tmp_path / "out" / "two_ess_trajectory.csv").open() as handle:
        power = {(row["tick"], row["agent"]): json.loads(row["state"])["p_mw"] for row in csv.DictReader(handle)}
    ticks = sorted({tick for tick, _ in power}, key=int)
    assert len(ticks) == 8
    # every tick the equal stores act apart (spaces seeded alike drew the same actions: lockstep)
    assert sum(power[t, "a"] != power[t, "b"] for t in ticks) == len(ticks)


BLACKOUT_ON_RULES = """\
name: blackout
network: {type: case33bw}
time: {physics: 15min, episode: 2h}
agents:
  - {id: dg, type: DG, bus: 17, policy: rule, params: {p_max_mw: 400.0, cost_a: 0.0001, cost_b: 1.0}}
"""


def test_without_learned_agents_a_failed_flow_ends_the_episode_and_is_counted(tmp_path, capsys):
    # no learned agent: run played on past a terminating blackout to the last tick, and read 'converged' from the
    # (empty) infos: '0 non-converged power flow(s)' and converged True in every row although every flow failed
    config = tmp_path / "blackout.yaml"
    config.write_text(BLACKOUT_ON_RULES)
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 0
    assert "1 non-converged power flow(s)" in capsys.readouterr().out
    with (tmp_path / "out" / "blackout_trajectory.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["tick"], row["converged"]) for row in rows] == [("0", "False")]

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

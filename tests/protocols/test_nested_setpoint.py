"""A setpoint parent over grid agents: its action space is their setpoints' (the builder builds children's protocols
first; the parent's was built first and failed with AssertionError: GridAgent('mg1').protocol is None)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from powergrid.env import MultiAgentPowerGridEnv

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_a_system_agent_sets_its_grid_agents_setpoints():
    data = yaml.safe_load((CONFIGS / "ieee34_3mg_iso.yaml").read_text())
    data["agents"][0]["protocol"] = "setpoint"  # the ISO (listed before its children) dispatches mg1..mg3
    data["spaces"] = {"action": "physical"}
    env = MultiAgentPowerGridEnv.from_config(data)
    mgs = [env.scenario.agents[f"mg{k}"] for k in (1, 2, 3)]
    iso = env.action_space("iso")
    assert iso.shape[0] == sum(m.own_action_space.shape[0] for m in mgs)
    np.testing.assert_array_equal(iso.high, np.concatenate([m.own_action_space.high for m in mgs]))
    env.reset(seed=0)
    action = np.zeros(iso.shape, np.float32)
    action[1] = 0.4  # mg1's DG (its setpoints: ESS, DG, PV) at 0.4 MW
    _, _, _, _, infos = env.step({"iso": action, "mg1": np.zeros(env.action_space("mg1").shape, np.float32)})
    assert infos["iso"]["converged"]
    assert abs(env.scenario.agents["mg1_dg"].device.p_mw - 0.4) < 1e-6

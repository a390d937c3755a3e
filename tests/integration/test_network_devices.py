"""Devices that stand for admittance changes (OLTC taps, switched shunts) act through the solver."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pytest

from powergrid.builder import build_network
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.plugins import get_registry

SCENARIO = {
    "name": "taps_and_caps",
    "network": "ieee34_3mg",
    "time": {"steps_per_episode": 6},
    "spaces": {"action": "physical"},  # tap positions and shunt steps as they are
    "agents": [
        {"id": "tap", "type": "OLTC", "bus": "mg1.650", "policy": "learned",
         "params": {"trafo": "mg1.pcc", "max_moves": 8, "action": "box"}},
        {"id": "cap", "type": "Shunt", "bus": "mg2.675", "policy": "learned",
         "params": {"n_steps": 4, "q_step_mvar": 0.1, "max_moves": 4, "action": "box"}},
    ],
}


@pytest.mark.parametrize("solver", ["fast", "pandapower"])
def test_tap_and_shunt_positions_reach_the_power_flow(solver):
    env = MultiAgentPowerGridEnv.from_config(SCENARIO, solver=solver)
    env.reset(seed=0)
    env.step({"tap": np.array([0.0], np.float32), "cap": np.array([0.0], np.float32)})
    neutral = env.last_result.vm_pu.copy()
    bus = {name: pos for pos, name in enumerate(env.net.bus.name)}
    env.step({"tap": np.array([-4.0], np.float32), "cap": np.array([4.0], np.float32)})
    moved = env.last_result.vm_pu
    # a tap on the HV side at −4 × 1.25 % lowers the HV winding ratio by 5 %: the microgrid voltage rises
    # by about 5 % relative to the feeder bus 822 above it (the feeder's own regulators may move too)
    ratio = moved[bus["mg1.650"]] / moved[bus["822"]] - neutral[bus["mg1.650"]] / neutral[bus["822"]]
    assert 0.045 < ratio < 0.06
    # 0.4 Mvar of capacitors raise the voltage at their bus
    assert moved[bus["mg2.675"]] > neutral[bus["mg2.675"]] + 1e-3
    assert env.scenario.agents["cap"].device.q_mvar == 0.0  # carried by the admittance matrix, not the sgen

    # the same net built independently, with the tap and the shunt written in by hand
    net = build_network(env.config, get_registry())
    net.trafo["tap_pos"] = env.net.trafo["tap_pos"].to_numpy()  # where the automatic regulators (Reg1, Reg2) are
    trafo = int(np.flatnonzero(net.trafo.name == "mg1.pcc")[0])
    row = env.net.trafo.iloc[trafo]
    for column in ("tap_side", "tap_neutral", "tap_min", "tap_max", "tap_step_percent", "tap_changer_type"):
        net.trafo.loc[net.trafo.index[trafo], column] = row[column]
    net.trafo.loc[net.trafo.index[trafo], "tap_pos"] = -4
    pp.create_shunt(net, int(net.bus.index[bus["mg2.675"]]), q_mvar=-0.4, p_mw=0.0)
    load = env.load_multipliers[env.tick - 1]
    net.load["p_mw"] *= load
    net.load["q_mvar"] *= load
    pp.runpp(net, numba=False)
    np.testing.assert_allclose(moved, net.res_bus.vm_pu.to_numpy(), atol=1e-6)

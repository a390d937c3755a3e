"""A missing or non-finite action writes the device's default to the equipment, never the middle of its range.

docs/devices.md, Actions: a missing action is the device's default and counts no projection; a NaN or infinite entry
is replaced by the default and counts the full range. The default of a device behind Modbus is 0 MW, or the nearer
limit when ``[p_min_mw, p_max_mw]`` excludes 0 (r46c F1: the midpoint was written, +0.2 MW for −0.1…0.5 MW).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv
from tests.hil.conftest import SOC, make_device
from tests.hil.test_env import scenario
from tests.protocols import example_config


@pytest.mark.parametrize("action", [None, [math.nan], [math.inf], [-math.inf]])
def test_a_missing_or_non_finite_action_writes_zero_not_the_midpoint(ess_server, devices, ctx, action) -> None:
    device = make_device(ess_server.port, p_min_mw=0.0, p_max_mw=0.5)  # a generator-like range: midpoint 0.25 MW
    devices.append(device)
    device.step([0.2], ctx)
    assert ess_server.raw("holding", 0) == 200  # 0.2 MW in 0.001 MW counts
    device.step(action, ctx)
    assert device.comm_ok, device.last_error
    assert device.setpoint_mw == 0.0 and ess_server.raw("holding", 0) == 0  # was 250: 0.25 MW
    assert device.projection == (0.0 if action is None else pytest.approx(0.5))


@pytest.mark.parametrize(("low", "high", "word"), [(0.1, 0.3, 100), (-0.3, -0.1, 0x10000 - 100)])
def test_a_range_without_zero_gets_its_nearer_limit(ess_server, devices, ctx, low, high, word) -> None:
    device = make_device(ess_server.port, p_min_mw=low, p_max_mw=high)
    devices.append(device)
    device.step([math.nan], ctx)
    assert ess_server.raw("holding", 0) == word and device.projection == pytest.approx(0.2)


def test_in_the_env_a_missing_agent_or_nan_action_writes_zero(ess_server) -> None:
    env = MultiAgentPowerGridEnv.from_config(scenario({
        "type": "ModbusDevice", "params": {"port": ess_server.port, "timeout_s": 1.0, "backoff_s": 0.0,
                                           "p_min_mw": -0.1, "p_max_mw": 0.5, "registers": SOC}}))
    device = env.scenario.agents["bess"].device
    try:
        env.reset(seed=0)
        env.step({"bess": [1.0]})  # normalized: p_max_mw
        assert ess_server.raw("holding", 0) == 500
        env.step({})  # the agent's key absent
        assert ess_server.raw("holding", 0) == 0 and device.projection == 0.0  # was 200: 0.2 MW, the midpoint
        env.step({"bess": [1.0]})
        env.step({"bess": [math.nan]})
        assert ess_server.raw("holding", 0) == 0 and device.projection == pytest.approx(0.6)
    finally:
        env.close()


def test_under_a_horizontal_protocol_a_nan_setpoint_writes_zero_not_the_midpoint(ess_server) -> None:
    """p2p_trading projects its participants' non-finite pending setpoints before devices step; a device behind
    Modbus gets its default there too (as every device does: its ``default_action``)."""
    pytest.importorskip("powergrid_protocols")
    data = example_config("p2p_3mg")
    data.pop("datasets")
    data["time"]["episode"] = "4h"
    for agent in data["agents"]:
        if agent["id"] == "mg1":
            agent["policy"] = "learned"
        if agent["id"] == "mg1_ess":
            agent.update(type="ModbusDevice", params={"port": ess_server.port, "timeout_s": 1.0, "backoff_s": 0.0,
                                                      "p_min_mw": -0.1, "p_max_mw": 0.5, "registers": SOC})
    env = MultiAgentPowerGridEnv.from_config(data)
    try:
        env.reset(seed=0)
        ones = np.ones(env.action_space("mg1").shape, np.float32)
        env.step({"mg1": ones})
        assert ess_server.raw("holding", 0) == 500
        env.step({"mg1": np.full_like(ones, np.nan)})
        assert ess_server.raw("holding", 0) == 0  # was 200: 0.2 MW, the midpoint of −0.1…0.5 MW
    finally:
        env.close()


@pytest.mark.parametrize(("low", "high", "want"), [(-0.1, 0.5, 0.0), (0.1, 0.3, 0.1), (-0.3, -0.1, -0.1)])
def test_the_default_setpoint_is_the_core_default_action(ess_server, devices, low, high, want) -> None:
    """``default_action`` (what a horizontal protocol puts in place of a NaN setpoint) is ``[safe_setpoint_mw]``, from
    the parameters as given (0.1 MW, not the float32 bound 0.10000000149); a read-only device has none."""
    device = make_device(ess_server.port, p_min_mw=low, p_max_mw=high)
    devices.append(device)
    assert device.default_action.tolist() == [want] and device.safe_setpoint_mw == want
    meter = make_device(ess_server.port, registers={"setpoint": None, "q": None})
    devices.append(meter)
    assert meter.default_action.shape == (0,) == meter.action_space.shape

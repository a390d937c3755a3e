"""A cigre_mv scenario whose battery is a ModbusDevice talking to a SimulatedDeviceServer on 127.0.0.1."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv
from powergrid_hil.serve import env_action
from powergrid_hil.server import SimulatedDeviceServer
from tests.hil.conftest import SOC, make_ess


def scenario(agent: dict) -> dict:
    return {
        "name": "hil_cigre",
        "network": {"type": "cigre_mv"},
        "time": {"step_minutes": 15, "steps_per_episode": 10},
        "agents": [{"id": "bess", "bus": "Bus 5", "policy": "learned", **agent}],
    }


def hil_env(port: int) -> MultiAgentPowerGridEnv:
    return MultiAgentPowerGridEnv.from_config(scenario({
        "type": "ModbusDevice",
        "params": {"port": port, "timeout_s": 1.0, "backoff_s": 0.0, "p_min_mw": -1.0, "p_max_mw": 1.0,
                   "registers": SOC},
    }))


def test_env_runs_on_measured_injection(servers) -> None:
    server = SimulatedDeviceServer(make_ess()).start()  # the "hardware": a ±0.3 MW battery
    servers.append(server)
    hil = hil_env(server.port)
    # the same battery simulated directly; the hardware applies a setpoint at its next step, so the
    # measurement at tick k answers the action of tick k - 1: the reference runs one tick behind (idle first)
    reference = MultiAgentPowerGridEnv.from_config(scenario({"type": "ESS", "params": {"p_max_mw": 0.3}}))
    obs, _ = hil.reset(seed=3)
    reference.reset(seed=3)
    assert hil.observation_space("bess").contains(obs["bess"])
    device = hil.scenario.agents["bess"].device
    actions = [0.8, 0.8, 0.2, -0.1, -0.9, 0.0, 0.5, -0.3, 0.05, 1.5]
    limited = 0
    try:
        for tick, a in enumerate(actions):
            obs, _, _, truncs, infos = hil.step({"bess": env_action(hil, "bess", np.array([a], np.float32))})
            server.step()
            lagged = np.array([actions[tick - 1] if tick else 0.0], np.float32)
            reference.step({"bess": env_action(reference, "bess", lagged)})  # in MW, as the ModbusDevice's
            assert device.comm_ok, device.last_error
            assert infos["bess"]["converged"] and infos["bess"]["comm"] == [] and hil.last_result is not None
            ref_p = reference.scenario.agents["bess"].device.p_mw
            assert device.p_mw == pytest.approx(ref_p, abs=1e-3)
            limited += abs(device.setpoint_mw - device.p_mw) > 0.1
            # the power flow saw the measured injection, not the setpoint
            np.testing.assert_allclose(hil.last_result.ext_grid_p_mw, reference.last_result.ext_grid_p_mw, atol=2e-3)
            assert hil.observation_space("bess").contains(obs["bess"])
            assert truncs["bess"] == (tick == len(actions) - 1)
        assert limited >= 3
        assert server.steps == len(actions)
        assert device.projection == pytest.approx(0.5)  # 1.5 projected to p_max_mw = 1.0
    finally:
        device.close()


def test_every_failed_write_is_a_comm_record_in_infos(servers) -> None:
    server = SimulatedDeviceServer(make_ess()).start()
    servers.append(server)
    hil = hil_env(server.port)
    hil.reset(seed=0)
    device = hil.scenario.agents["bess"].device
    try:
        _, _, _, _, infos = hil.step({"bess": np.array([0.2], np.float32)})
        assert infos["bess"]["comm"] == []
        server.stop()
        sent = [0.25, -0.1, 0.05]
        for a in sent:
            _, _, _, _, infos = hil.step({"bess": np.array([a], np.float32)})
            records = infos["bess"]["comm"]
            assert [(r["op"], r["what"]) for r in records] == [("write", "setpoint")]
            assert records[0]["value"] == pytest.approx(a) and records[0]["kind"] in ("connect", "timeout")
            assert infos["bess"]["safety"] > 0
    finally:
        device.close()


def test_the_records_of_devices_behind_one_grid_agent_say_which_device(servers) -> None:
    # two devices at one address (unit ids 1 and 2) behind a learned grid agent: a fault of either gave the same
    # record in infos["site"]["comm"], with nothing to tell which equipment failed
    server = SimulatedDeviceServer(make_ess()).start()  # unit 1 only: unit 2 answers exception 0x0B
    servers.append(server)
    child = {"port": server.port, "timeout_s": 1.0, "registers": SOC}
    env = MultiAgentPowerGridEnv.from_config({
        "name": "two_units", "network": {"type": "cigre_mv"}, "time": {"step_minutes": 15, "steps_per_episode": 4},
        "agents": [{"id": "site", "kind": "grid", "policy": "learned", "protocol": {"type": "setpoint"},
                    "children": ["one", "two"]},
                   {"id": "one", "type": "ModbusDevice", "bus": "Bus 5", "params": {**child, "unit_id": 1}},
                   {"id": "two", "type": "ModbusDevice", "bus": "Bus 6", "params": {**child, "unit_id": 2}}]})
    env.reset(seed=0)
    try:
        _, _, _, _, infos = env.step({"site": np.zeros(2, np.float32)})
        records = infos["site"]["comm"]
        assert [(r["kind"], r["device"]) for r in records] == [("exception", f"127.0.0.1:{server.port} unit 2")]
    finally:
        for aid in ("one", "two"):
            env.scenario.agents[aid].device.close()


def test_env_close_closes_the_modbus_connection(servers) -> None:
    # equipment allows few Modbus connections: a closed env must not keep its socket (it did: connected after close)
    server = SimulatedDeviceServer(make_ess()).start()
    servers.append(server)
    env = hil_env(server.port)
    env.reset(seed=0)
    env.step({"bess": env_action(env, "bess", np.array([0.2], np.float32))})
    link = env.scenario.agents["bess"].device.link
    assert link.connected
    env.close()
    assert not link.connected
    env.step({"bess": env_action(env, "bess", np.array([0.1], np.float32))})  # a later step reconnects
    assert link.connected
    env.close()


def test_a_vector_env_of_copies_sharing_one_device_is_refused(servers) -> None:
    """Copies of a scenario with a ModbusDevice would all write the same equipment's setpoint and all measure the same
    P (c33: setpoints −0.15, 0 and +0.15 MW from three copies, every copy measured 0.15 MW); one copy is fine."""
    from powergrid.errors import ConfigError
    from powergrid.vector import VectorPowerGridEnv

    server = SimulatedDeviceServer(make_ess()).start()
    servers.append(server)
    config = hil_env(server.port).config
    with pytest.raises(ConfigError, match=r"3 copies of a scenario whose devices drive real equipment \('bess'\).*"
                                          r"expected n = 1"):
        VectorPowerGridEnv(config, 3)
    single = VectorPowerGridEnv(config, 1)
    single.reset(seed=0)
    single.close()

"""A whole scenario served as SunSpec units: pysunspec2's client scans it, a second env controls it, the CLI runs it."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP
from sunspec2.modbus.modbus import ModbusClientException

from powergrid.env import MultiAgentPowerGridEnv
from powergrid_hil.registers import RegisterMap
from powergrid_hil.serve import Pace, ScenarioServer, env_action
from powergrid_hil.server import RegisterUnit

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "hil_sunspec.yaml"


@pytest.fixture
def served() -> Iterator[ScenarioServer]:
    server = ScenarioServer(CONFIG, port=0, max_writes_per_s=1e6)
    with server:
        yield server


@pytest.fixture
def sunspec_client():
    made: list[SunSpecModbusClientDeviceTCP] = []

    def make(port: int, unit_id: int) -> SunSpecModbusClientDeviceTCP:
        client = SunSpecModbusClientDeviceTCP(slave_id=unit_id, ipaddr="127.0.0.1", ipport=port, timeout=2.0)
        made.append(client)
        client.scan()
        return client

    yield make
    for client in made:
        client.close()


def device_of(served: ScenarioServer, agent_id: str):
    return served.env.scenario.agents[agent_id].device


def test_every_device_is_a_unit_with_models_by_type(served) -> None:
    assert served.table() == [(1, "bess", "ESS", "read/write"), (2, "pv", "PV", "read/write"),
                              (3, "dg", "DG", "read/write"), (4, "pcc", "GridConnection", "read-only")]
    models = {u: [m.id for m in served.units[u].map.models] for u in served.units}
    assert models == {1: [1, 701, 702, 704, 713], 2: [1, 701, 702, 704, 160], 3: [1, 701, 702, 704],
                      4: [1, 701, 702]}
    assert served.parents == {"site": ["bess", "pv", "dg", "pcc"]}


def test_pysunspec2_scans_reads_and_writes_a_setpoint_the_simulation_follows(served, sunspec_client) -> None:
    for _ in range(3):
        served.step()  # the battery and PV on their zero / MPPT defaults
    bess = device_of(served, "bess")
    client = sunspec_client(served.port, 1)
    ids = sorted(k for k in client.models if isinstance(k, int))
    assert ids == [1, 701, 702, 704, 713]
    common = client.common[0]
    assert (common.Mn.value, common.Md.value, common.SN.value, common.DA.value) == ("PowerGrid", "ESS", "bess", 1)
    measure = client.DERMeasureAC[0]
    assert measure.W.cvalue == pytest.approx(bess.p_mw * 1e6, abs=50)  # W_SF = 2: 100 W resolution
    assert measure.W_SF.value == 2 and measure.Hz.value is None  # frequency is not modelled: not implemented
    storage = client.DERStorageCapacity[0]
    assert storage.SoC.cvalue == pytest.approx(100 * bess.soc, abs=0.005)
    assert storage.WHRtg.cvalue == pytest.approx(2e6)
    assert client.DERCapacity[0].WChaRteMax.cvalue == pytest.approx(0.5e6)  # the 0.5 MW battery's rate

    controls = client.DERCtlAC[0]
    controls.WSetEna.value = 1
    controls.WSet.cvalue = -250_000  # charge at 250 kW
    controls.write()
    assert bess.p_mw == pytest.approx(0.0)  # a write never steps the device
    soc = bess.soc
    served.step()
    assert bess.p_mw == pytest.approx(-0.25) and bess.soc > soc  # the simulation follows
    measure.read()
    storage.read()
    assert measure.W.cvalue == pytest.approx(-250_000.0)
    assert storage.SoC.cvalue == pytest.approx(100 * bess.soc, abs=0.005)

    # the PV unit: a repeating MPPT module group, and curtailment through WMaxLimPct
    pv_client = sunspec_client(served.port, 2)
    pv = device_of(served, "pv")
    assert pv_client.mppt[0].N.value == 1 and len(pv_client.mppt[0].module) == 1
    assert pv_client.mppt[0].module[0].DCW.cvalue == pytest.approx(max(pv.p_mw, 0) * 1e6, abs=5)
    pv_controls = pv_client.DERCtlAC[0]
    pv_controls.WMaxLimPctEna.value = 1
    pv_controls.WMaxLimPct.cvalue = 0.0
    pv_controls.write()
    served.step()
    assert pv.p_mw == pytest.approx(0.0)


def mandatory_unset(model: object, group: dict, prefix: str = "") -> list[str]:
    """Points of a scanned model (pysunspec2's client objects) that its definition marks mandatory ("M") and that
    read "not implemented"; repeating groups instance by instance."""
    missing = [prefix + p["name"] for p in group.get("points", [])
               if p.get("mandatory") == "M" and getattr(model, p["name"]).value is None]
    for sub in group.get("groups", []):
        instances = getattr(model, sub["name"])
        for i, instance in enumerate(instances if isinstance(instances, list) else [instances], start=1):
            missing += mandatory_unset(instance, sub, f"{prefix}{sub['name']}[{i}].")
    return missing


def test_every_mandatory_point_of_every_served_model_is_implemented(served, sunspec_client) -> None:
    """Mandatory = "mandatory": "M" in pysunspec2's JSON model definitions (the package the server lays its models
    out from, pysunspec2>=1.3,<2), read through pysunspec2's own client: model 701 ACType was not implemented, and the
    battery's model 802 left 18 of its 28 mandatory points (DC V, A, AHRtg, State, ...) unset."""
    from powergrid_hil.sunspec import model_definition

    served.step()
    checked = 0
    for unit_id in served.units:
        client = sunspec_client(served.port, unit_id)
        for model_id, instances in client.models.items():
            if isinstance(model_id, int):
                assert mandatory_unset(instances[0], model_definition(model_id)["group"]) == [], (unit_id, model_id)
                checked += 1
    assert checked == 17  # 5 + 5 + 4 + 3 models: the battery, PV, generator, grid connection


def test_read_only_points_and_units_refuse_writes(served, sunspec_client) -> None:
    client = sunspec_client(served.port, 1)
    client.common[0].DA.value = 9  # RW in the SunSpec definition, but PowerGrid does not act on it
    with pytest.raises(ModbusClientException, match="exception: 2"):
        client.common[0].write()
    pcc = sunspec_client(served.port, 4)
    assert "DERCtlAC" not in pcc.models  # nothing to control: served read-only
    pcc.DERCapacity[0].WMax.cvalue = 1000.0
    with pytest.raises(ModbusClientException, match="exception: 2"):
        pcc.DERCapacity[0].write()
    assert served.server.stats["not_writable"] == 2


def test_round_trip_through_a_second_env(served) -> None:
    """A client-side SunSpecDevice in its own env drives the served battery; values equal after scaling."""
    client_env = MultiAgentPowerGridEnv.from_config({
        "name": "controller", "network": {"type": "cigre_mv"},
        "time": {"step_minutes": 5, "steps_per_episode": 12},
        "agents": [{"id": "site_bess", "type": "SunSpecDevice", "bus": "Bus 5", "policy": "learned",
                    "params": {"port": served.port, "unit_id": 1, "soc": True, "timeout_s": 2.0,
                               "p_min_mw": -0.5, "p_max_mw": 0.5}}],
    })
    client_env.reset(seed=0)
    site = client_env.scenario.agents["site_bess"].device
    bess = device_of(served, "bess")
    setpoints = [0.3, -0.45, 0.123456, -0.0001, 0.0, -0.2]
    try:
        for mw in setpoints:
            _, _, _, _, infos = client_env.step({"site_bess": env_action(client_env, "site_bess", np.array([mw]))})
            assert infos["site_bess"]["comm"] == [], infos["site_bess"]["comm"]
            # what the client measured is the served battery's state before this write took effect
            assert site.p_mw == pytest.approx(round(bess.p_mw * 1e4) / 1e4, abs=1e-12)  # W_SF 2: 1e-4 MW
            assert site.soc == pytest.approx(round(bess.soc * 1e4) / 1e4, abs=1e-12)  # Pct_SF -2
            served.step()
            assert bess.p_mw == pytest.approx(round(mw * 1e3 * 1e3) / 1e6, abs=2e-7)  # WSet_SF -3: 1 mW
        assert site.link.reconnects == 0 and served.server.stats["writes"] == len(setpoints) + 1  # WSetEna before the first
        # WSet; WSetMod already reads 1 and is not written (a fixed-mode DER refuses it)
    finally:
        site.close()


def test_pacing_counts_overruns_without_bursting() -> None:
    server = ScenarioServer(CONFIG, port=0)  # not started: pacing only
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    def slow_third_step(s: ScenarioServer) -> None:
        now[0] += 0.01  # every step costs 10 ms of wall time…
        if s.pace.steps == 3:
            now[0] += 12.0  # …and the third 12 s: later than the 5 s period (speedup 60)

    pace = server.run(speedup=60, steps=6, on_step=slow_third_step, sleep=sleep, clock=lambda: now[0])
    assert isinstance(pace, Pace) and pace.steps == 6 and pace.overruns == 1
    assert pace.worst_late_s == pytest.approx(7.01)
    assert now[0] == pytest.approx(5 * 5.0 + 7.01 + 0.01)  # the schedule restarted after the late step
    assert "1 overruns" in pace.summary()


def multirate_config(tmp_path: Path) -> Path:
    """hil_sunspec with its controller acting every 150 s: 150-s ticks under 5-min physics steps."""
    raw = yaml.safe_load(CONFIG.read_text())
    raw["agents"][0]["period"] = "150s"
    path = tmp_path / "hil_multirate.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_pacing_is_one_tick_per_period_of_the_tick(tmp_path) -> None:
    # each step() is one tick: paced at the physics step / speedup, a 150-s tick under 5-min physics ran simulated time
    # at half the speedup (r41b F3: hierarchical_3level with 30-s ticks, --speedup 60 gave 30 simulated s per s)
    server = ScenarioServer(multirate_config(tmp_path), port=0)  # not started: pacing only
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    pace = server.run(speedup=60, steps=5, sleep=sleep, clock=lambda: now[0])
    assert server.env.tick_s == 150 and pace.steps == 5 and server.env.time_s == 750
    assert now[0] == pytest.approx(4 * 150 / 60)  # the first step at once, then one every 2.5 s: 60 × wall time


def test_cli_banner_names_the_tick_of_a_multirate_scenario(tmp_path, capsys) -> None:
    from powergrid_hil.cli import main

    assert main(["serve", str(multirate_config(tmp_path)), "--port", "0", "--speedup", "1e6", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "sunspec map: a 150s tick (5min physics steps) every 0.00015 s" in out, out
    assert "stopped: 1 steps" in out


def test_cli_serves_the_scenario(tmp_path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "powergrid.cli", "hil", "serve", str(CONFIG), "--port", "0",
                                "--speedup", "3000", "--duration", "60"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        match = re.search(r"on 127\.0\.0\.1:(\d+)", first)
        assert match, first + process.stderr.read()
        port = int(match.group(1))
        units = [process.stdout.readline() for _ in range(4)]
        assert "unit   1  bess" in units[0] and "read/write" in units[2] and "read-only" in units[3]
        client = SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=port, timeout=2.0)
        client.scan()
        controls = client.DERCtlAC[0]
        controls.WSetEna.value = 1
        controls.WSet.cvalue = -123_400
        controls.write()
        measure = client.DERMeasureAC[0]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the paced loop applies it at its next step (every 0.1 s)
            measure.read()
            if measure.W.cvalue == pytest.approx(-123_400):
                break
            time.sleep(0.05)
        assert measure.W.cvalue == pytest.approx(-123_400)
        client.close()
    finally:
        process.send_signal(signal.SIGTERM)  # a service stop: the same clean end and report as Ctrl-C
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert re.search(r"stopped: \d+ steps, \d+ overruns .*requests: .*writes 2", out), out


def test_cli_on_a_busy_port_names_the_cause_in_one_line() -> None:
    # two lines on stderr: pymodbus's "Failed to start server [Errno 98] ..." through Python's last-resort handler,
    # then ours, "... failed to start: Could not start listen, please check address.", without the cause (r41b F5)
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "powergrid.cli", "hil", "serve", str(CONFIG), "--port", str(port),
                               "--steps", "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith(f"powergrid: error: Modbus server on 127.0.0.1:{port} failed to start: [Errno ")
    assert "address already in use" in done.stderr.lower() and done.stderr.count("\n") == 1, done.stderr


def test_cli_reports_a_bad_config(tmp_path, capsys) -> None:
    from powergrid_hil.cli import main

    assert main(["serve", str(tmp_path / "missing.yaml")]) == 2
    assert "powergrid: error:" in capsys.readouterr().err
    assert main(["serve", str(CONFIG), "--speedup", "0"]) == 2


def test_round_trip_under_a_plain_register_map_little_word_order() -> None:
    """The same scenario under a 32-bit, little-word-order map, driven by a ModbusDevice in a second env."""
    registers = {"setpoint": {"address": 10, "type": "int32", "scale": 1e-6, "word_order": "little"},
                 "p": {"address": 0, "type": "int32", "scale": 1e-6, "word_order": "little"},
                 "q": {"address": 2, "type": "float32", "word_order": "little"},
                 "soc": {"address": 4, "type": "uint32", "scale": 1e-9, "word_order": "little"}}
    with ScenarioServer(CONFIG, registers=RegisterMap.from_mapping(registers), port=0) as served:
        client_env = MultiAgentPowerGridEnv.from_config({
            "name": "controller", "network": {"type": "cigre_mv"},
            "time": {"step_minutes": 5, "steps_per_episode": 12},
            "agents": [{"id": "site_bess", "type": "ModbusDevice", "bus": "Bus 5", "policy": "learned",
                        "params": {"port": served.port, "unit_id": 1, "timeout_s": 2.0, "p_min_mw": -0.5,
                                   "p_max_mw": 0.5, "registers": registers}}],
        })
        client_env.reset(seed=0)
        site = client_env.scenario.agents["site_bess"].device
        bess = device_of(served, "bess")
        try:
            for mw in (-0.4321, 0.2468, -0.000001):
                client_env.step({"site_bess": env_action(client_env, "site_bess", np.array([mw]))})
                served.step()
                assert bess.p_mw == pytest.approx(mw, abs=1e-6)  # int32 counts of 1 W, negative too
                client_env.step({"site_bess": env_action(client_env, "site_bess", np.array([mw]))})
                assert site.comm_ok, site.last_error
                assert site.p_mw == pytest.approx(round(bess.p_mw * 1e6) / 1e6, abs=1e-12)
                assert site.soc == pytest.approx(round(bess.soc * 1e9) / 1e9, abs=1e-12)
            assert served.server.stats["writes"] == 6
        finally:
            site.close()


def test_a_driven_unit_under_the_register_map_starts_at_the_device_default() -> None:
    # the setpoint register started at 0 for every device: a driven PV (action f, default 1 = maximum power)
    # produced nothing until a client wrote, where the SunSpec map (control disabled) gives its default
    energy = {}
    for registers in ("sunspec", "registers"):
        served = ScenarioServer(CONFIG, registers=registers, port=0)
        pv = next(a.device for a in served.env.scenario.device_agents if a.id == "pv")
        produced = 0.0
        for _ in range(12 * 14):  # midnight to 14:00 in 5-minute steps, no client
            served.step()
            produced += pv.p_mw
        energy[registers] = produced / 12
        if registers == "registers":
            unit = served.units[served.unit_of["pv"]]
            assert unit.setpoint_mw == 1.0 and unit.words("holding", 0, 1) == [1000]  # f = 1 at 0.001 per count
    assert energy["registers"] == pytest.approx(energy["sunspec"]) and energy["sunspec"] > 1.0


def test_the_grid_connection_serves_its_import(served, sunspec_client) -> None:
    # unit 4 (the PCC) served W = 0 at every step while Line 4-5 imported ~0.77 MW: the grid connection
    # injects nothing itself, its measurement is the import through its element
    pcc, client = device_of(served, "pcc"), sunspec_client(served.port, 4)
    unit = served.units[4]
    for _ in range(3):
        served.step()
        client.DERMeasureAC[0].read()
        assert abs(pcc.import_mw) > 0.1
        assert client.DERMeasureAC[0].W.cvalue == pytest.approx(round(pcc.import_mw * 1e4) * 100.0)  # 100 W counts
        assert client.DERMeasureAC[0].Var.cvalue is None  # not measured: "not implemented", not 0
    assert client.DERCapacity[0].WMaxRtg.cvalue == 1.0e6  # its larger limit (import 1.0 MW, export 0.5 MW)
    plain = RegisterUnit(pcc)  # the plain map: P in 1 kW counts, Q "not available"
    assert plain.words("input", 0, 2) == [round(pcc.import_mw * 1e3), 0x8000]
    pcc.import_mw = 50.0  # beyond int16 at W_SF 2 (3.2767 MW) and at 1 kW counts: "not available", not clamped
    served.server.publish()
    plain.publish()
    assert unit.words("holding", unit.located(701, "W").address, 1) == [0x8000]
    assert plain.words("input", 0, 2) == [0x8000, 0x8000]


def test_a_driven_device_without_a_sunspec_control_follows_its_rule() -> None:
    # building_hvac's learned HVAC (action u: no SunSpec point) was served read-only and held at u = 0:
    # no client could drive it and it did not follow its rule (comfort safety 33.5 over a day vs 0.0)
    config = Path(__file__).resolve().parents[2] / "configs" / "building_hvac.yaml"
    served = ScenarioServer(config, port=0)
    assert served.table()[0] == (1, "hvac", "HVAC", "read-only")
    reference = MultiAgentPowerGridEnv.from_config(config)
    reference.reset(seed=0)
    hvac, ref = device_of(served, "hvac"), reference.scenario.agents["hvac"].device
    ran = 0
    for _ in range(48):
        served.step()
        reference.step({aid: env_action(reference, aid) for aid in reference.agents})
        assert hvac.state_dict()["t_c"] == ref.state_dict()["t_c"] and hvac.p_mw == ref.p_mw
        ran += hvac.p_mw != 0.0
    assert ran > 0


def test_a_scenario_without_learned_agents_plays_its_episodes() -> None:
    # with every agent on its own policy env.agents is always empty: every step counted as an episode's end and
    # reset the env, so the served simulation stayed at tick 0 (episodes 1, 2, 3, ... one per step)
    config = yaml.safe_load(CONFIG.read_text())
    config["agents"][0]["policy"] = "rule"
    config["time"]["steps_per_episode"] = 3
    served = ScenarioServer(config, port=0)
    ticks = []
    for _ in range(7):
        served.step()
        ticks.append(served.env.tick)
    assert ticks == [1, 2, 0, 1, 2, 0, 1] and served.episodes == 2


@pytest.mark.parametrize("mode", ["terminate", "penalize"])
def test_a_scenario_without_learned_agents_ends_its_episode_at_a_terminating_failed_flow(mode: str) -> None:
    # without learned agents only the last tick ended an episode: a flow failing under on_divergence: terminate (a
    # blackout ends the episode) was stepped over, the served simulation played on at ticks 1, 2, 3 of a terminated
    # episode; penalize goes on, as it does with learned agents
    config = yaml.safe_load(CONFIG.read_text())
    config["agents"][0]["policy"] = "rule"
    config["reward"] = {**config["reward"], "on_divergence": mode}
    dg = next(a for a in config["agents"] if a["id"] == "dg")
    dg["params"] = {"p_max_mw": 400.0, "cost_a": 0.0001, "cost_b": 1.0}  # its rule runs flat out: no flow converges
    served = ScenarioServer(config, port=0)
    ticks = []
    for _ in range(3):
        served.step()
        ticks.append(served.env.tick)
    assert ticks == ([0, 0, 0] if mode == "terminate" else [1, 2, 3])
    assert served.episodes == (3 if mode == "terminate" else 0)


def test_a_served_device_without_a_control_answers_its_parent_s_price_signal():
    # a FlexibleLoad (no SunSpec control) under ieee34_3mg_iso's mg1 follows its rule at the price its internal policy
    # would see, the ISO's signal; it answered the market price (on 2023-05-27, a day of negative prices, it deferred
    # where the env's own rule would not)
    cfg = yaml.safe_load((CONFIG.parent / "ieee34_3mg_iso.yaml").read_text())
    next(a for a in cfg["agents"] if a["id"] == "mg1")["children"].append("mg1_flex")
    cfg["agents"].append({"id": "mg1_flex", "type": "FlexibleLoad", "bus": "mg1.671", "params": {"p_base_mw": 0.1}})
    cfg["datasets"] = {role: {**spec, "start": "2023-05-27"} for role, spec in cfg["datasets"].items()}
    served = ScenarioServer(cfg, port=0)
    env, flex = served.env, served.env.scenario.agents["mg1_flex"]
    apart = 0
    with served:
        for _ in range(96):
            at_signal = served._physical("mg1_flex", env.ctx)
            np.testing.assert_array_equal(at_signal, env.physical_rule("mg1_flex"))
            apart += not np.array_equal(at_signal, flex.rule_action(env.ctx))  # its rule at the market price
            served.step()
    assert apart >= 1


@pytest.mark.parametrize(("pct", "produced_mw"), [(50.0, 0.15), (90.0, 0.24), (0.0, 0.0)])
def test_wmaxlimpct_caps_the_output_at_a_percent_of_wmax(servers, pct, produced_mw) -> None:
    # SunSpec (704 WMaxLimPct, 123 "% WMax"): the limit is a percent of WMax (model 702), a cap on the output. The
    # served PV took it as a fraction of the available power: at 0.24 MW available (0.3 MW rated), 50 % gave
    # 0.12 MW (cap: 0.15 MW) and 90 % gave 0.216 MW (the cap 0.27 MW does not bind: 0.24 MW)
    from powergrid.devices import StepContext
    from powergrid.params import build_params
    from powergrid_devices.solar import PV
    from powergrid_hil.server import SimulatedDeviceServer
    from powergrid_hil.sunspec_unit import SunSpecUnit

    pv = PV(build_params(PV.Params, {"p_max_mw": 0.3}), 0.25)
    pv.reset(np.random.default_rng(0))
    ctx = StepContext(dt_h=0.25, profiles={"solar": np.array([0.8])})
    server = SimulatedDeviceServer(pv, unit=SunSpecUnit(pv, name="pv"), ctx=ctx, reset=False).start()
    servers.append(server)
    client = SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=server.port, timeout=2.0)
    try:
        client.scan()
        assert client.DERCapacity[0].WMax.cvalue == pytest.approx(300_000.0)
        server.step()
        assert pv.p_mw == pytest.approx(0.24)  # control disabled: maximum power
        controls = client.DERCtlAC[0]
        controls.WMaxLimPctEna.value = 1
        controls.WMaxLimPct.cvalue = pct
        controls.write()
        server.step()
        assert pv.p_mw == pytest.approx(produced_mw)
        client.DERMeasureAC[0].read()
        assert client.DERMeasureAC[0].W.cvalue == pytest.approx(produced_mw * 1e6, abs=5)
    finally:
        client.close()


def test_a_served_pv_cap_uses_the_available_power_of_the_step_it_applies_to(served, sunspec_client) -> None:
    # the cap WMaxLimPct·WMax becomes a fraction of the power available at the step about to be taken (not the last)
    pv = device_of(served, "pv")
    while pv.p_mw < 0.15:  # morning, full output (control disabled)
        served.step()
    client = sunspec_client(served.port, 2)
    controls = client.DERCtlAC[0]
    controls.WMaxLimPctEna.value = 1
    controls.WMaxLimPct.cvalue = 20.0  # 20 % of WMax 0.3 MW: 0.06 MW
    controls.write()
    available = []
    for _ in range(24):
        available.append(pv.available_now(served.env.ctx))  # at the step about to be taken
        served.step()
        assert pv.p_mw == pytest.approx(min(available[-1], 0.06), rel=1e-6)  # float32 actions
    assert min(available) > 0.06 and len(set(available)) > 1


def multirate(link: dict | None) -> dict:
    """1-min physics, 30 min: a learned setpoint parent every 15 min over a learned battery acting every 5 min."""
    b1 = {"id": "b1", "type": "ESS", "bus": 5, "policy": "learned", "period": "5min",
          "params": {"p_max_mw": 1.0, "capacity_mwh": 100.0}}
    if link is not None:
        b1["link"] = link
    return {"network": {"type": "case33bw"}, "time": {"physics": "1min", "episode": "30min"},
            "reward": {"storage_value": "none"},
            "agents": [{"id": "mg", "kind": "grid", "policy": "learned", "period": "15min",
                        "protocol": {"type": "setpoint"}, "children": ["b1"]}, b1]}


def test_a_child_of_a_setpoint_parent_behind_a_non_ideal_link_is_refused() -> None:
    # r44c F1: served over a 7-min, 30 %-loss link, b1 ran the write of step 5 (60 kW) and then, at tick 10, went back
    # to the write of step 0 (10 kW: mg's directive sent at 0 arrived at 7); a lost directive dropped a write silently
    from powergrid.errors import ConfigError

    for link, what in (({"delay": "7min", "loss": 0.3}, r"7min delay, 30% loss"), ({"down": {"loss": 0.1}}, "10% loss"),
                       ({"capacity": 1}, "capacity 1")):
        with pytest.raises(ConfigError, match=rf"agents\[1\]\.link: hil serve drives 'b1' through its setpoint parent "
                                              rf"'mg' \(mg acts every 15min, b1 every 5min\).*\({what}\)"):
            ScenarioServer(multirate(link), port=0)
    ScenarioServer(multirate({"up": {"delay": "3min", "loss": 0.3}}), port=0)  # measurements only: served


def test_a_write_to_a_child_of_a_setpoint_parent_takes_effect_at_the_parent_s_next_action() -> None:
    # over an ideal link the write travels in mg's action (every 15 min): at mg's next action, never backwards
    served = ScenarioServer(multirate(None), port=0)
    unit = served.units[served.unit_of["b1"]]
    b1 = device_of(served, "b1")
    written, applied = [], []
    for k in range(29):  # the 30th tick ends the episode: the served env resets
        kw = 10.0 * (k + 1)
        assert unit.accept(unit.located(704, "WSetEna").address, [1]) is None
        raw = int(kw * 1e6) & 0xFFFFFFFF  # WSet_SF -3: mW
        assert unit.accept(unit.located(704, "WSet").address, [raw >> 16, raw & 0xFFFF]) is None
        written.append(kw)
        served.step()
        applied.append(b1.p_mw * 1e3)
    assert applied == pytest.approx([written[15 * (t // 15)] for t in range(29)], abs=1e-3)  # the write before mg's action at 0, then at 15

"""ModbusDevice against real Modbus servers on 127.0.0.1: setpoints, measurements, every fault recorded."""

from __future__ import annotations

import pickle
import socket
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest

from powergrid.devices import StepContext
from powergrid.errors import ConfigError
from powergrid.params import build_params
from powergrid_hil.device import ModbusDevice
from powergrid_hil.registers import CLAMPED, MALFORMED, NOT_AVAILABLE
from powergrid_hil.server import SimulatedDeviceServer
from tests.hil.conftest import make_device, make_ess, step_until


def drive(device: ModbusDevice, server: SimulatedDeviceServer, action: list[float], ctx) -> None:
    """Write the setpoint, let the server step once, read the result back."""
    device.step(action, ctx)
    server.step()
    device.step(action, ctx)


def kinds(device: ModbusDevice) -> list[tuple[str, str, str]]:
    return [(r["op"], r["what"], r["kind"]) for r in device.info()["comm"]]


def test_registry_lists_devices_without_importing_pymodbus() -> None:
    code = (
        "import sys; from powergrid.plugins import get_registry; r = get_registry(); "
        "rec = r.get('device', 'ModbusDevice'); assert rec.distribution == 'powergrid-hil', rec; "
        "assert r.load('device', 'ModbusDevice').__name__ == 'ModbusDevice'; "
        "assert r.load('device', 'SunSpecDevice').__name__ == 'SunSpecDevice'; "
        "assert 'pymodbus' not in sys.modules and 'sunspec2' not in sys.modules, 'imported eagerly'; "
        "assert 'hil' in r.names('command')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_params_are_checked() -> None:
    with pytest.raises(ConfigError, match="on_failure"):
        build_params(ModbusDevice.Params, {"on_failure": "explode"})
    with pytest.raises(ConfigError, match="p_min_mw"):
        build_params(ModbusDevice.Params, {"p_min_mw": 1.0, "p_max_mw": 0.5})
    with pytest.raises(ConfigError, match=r"registers\.q overlaps registers\.p"):
        build_params(ModbusDevice.Params, {"registers": {"p": {"address": 0, "type": "int32"}}})


@pytest.mark.parametrize(("entry", "message"), [
    ("p: {address: 0, type: int24}", "registers.p: unknown type 'int24'"),
    ("q: {address: 0}", "registers.q overlaps registers.p at input address 0"),
    ("setpoint: {address: 3, table: input}", "registers.setpoint: the setpoint is written, but input registers"),
    ("p: {address: 0, units: A}", "registers.p.units: 'A' is not converted (expected one of MW, kW, W)"),
    ("q: {address: 1, units: kW}", "registers.q.units: 'kW' is not converted (expected one of Mvar, kvar, var)"),
    ("setpoint: {address: 0, scale: 0.00001}", "registers.setpoint: int16 × 1e-05 MW holds [-0.32767, 0.32767] MW, "
     "narrower than the device's [p_min_mw, p_max_mw] = [-1, 1] MW (use a larger scale or a 32-bit type)"),
    # the entry's own min/max was blamed on its type and scale (rv2 units_probe.py)
    ("setpoint: {address: 0, units: kW, min: -300, max: 300}", "registers.setpoint: min/max give [-0.3, 0.3] MW, "
     "narrower than the device's [p_min_mw, p_max_mw] = [-1, 1] MW (widen min/max or narrow p_min_mw/p_max_mw)"),
    ("setpoint: {address: 0, scale: 0.00001, max: 0.1}", "registers.setpoint: int16 × 1e-05 MW within min/max holds "
     "[-0.32767, 0.1] MW, narrower than the device's [p_min_mw, p_max_mw] = [-1, 1] MW (use a larger scale or a "
     "32-bit type, and widen min/max)"),
])
def test_bad_register_map_in_a_scenario_names_file_and_entry(tmp_path, entry: str, message: str) -> None:
    from powergrid.config import EnvConfig

    path = tmp_path / "bad_map.yaml"
    path.write_text(
        "name: bad_map\nnetwork: {type: cigre_mv}\ntime: {step_minutes: 15, steps_per_episode: 4}\nagents:\n"
        "  - id: site\n    type: ModbusDevice\n    bus: Bus 5\n    params:\n      port: 1502\n"
        f"      registers:\n        {entry}\n")
    from powergrid.builder import build_scenario

    with pytest.raises(ConfigError) as info:
        build_scenario(EnvConfig.from_yaml(path))
    text = str(info.value)
    assert "bad_map.yaml:" in text and "agents[0].params" in text and message in text


def test_units_are_converted(ess_server, devices, ctx) -> None:
    # the server's default map counts kW, kvar and 0.01 %: the same registers read in kW / kvar / %
    kw = {"setpoint": {"address": 0, "scale": 1, "units": "kW"}, "p": {"address": 0, "scale": 1, "units": "kW"},
          "q": {"address": 1, "scale": 1, "units": "kvar"},
          "soc": {"address": 2, "type": "uint16", "scale": 0.01, "units": "%", "max": 100}}
    device = make_device(ess_server.port, registers=kw)
    devices.append(device)
    drive(device, ess_server, [0.25], ctx)
    assert ess_server.unit.setpoint_mw == pytest.approx(0.25)  # written as 250 kW, not raw 0
    assert device.p_mw == pytest.approx(ess_server.device.p_mw) == pytest.approx(0.25)
    assert device.soc == pytest.approx(ess_server.device.soc, abs=1e-4) and device.comm_ok


def test_implausible_p_is_a_fault_and_held(ess_server, devices, ctx) -> None:
    device = make_device(ess_server.port, p_min_mw=-0.5, p_max_mw=0.5)
    devices.append(device)
    drive(device, ess_server, [0.2], ctx)
    ess_server.poke("input", 0, [30000])  # 30 MW from a ±0.5 MW device
    device.step([0.2], ctx)
    assert kinds(device) == [("read", "p", CLAMPED)]
    assert device.last_error == "p: out_of_range (read 30 MW, beyond ±0.75 MW: plausible_factor 1.5 × 0.5, the larger limit)"
    assert device.p_mw == pytest.approx(0.2) and device.safety == 1.0 and not device.comm_ok


def test_implausible_q_is_a_fault_and_held(ess_server, devices, ctx) -> None:
    # only P was checked: 30 Mvar from a ±0.3 MW device was a good measurement and went into the flow (q_plausible.py)
    device = make_device(ess_server.port, p_min_mw=-0.3, p_max_mw=0.3)
    devices.append(device)
    drive(device, ess_server, [0.2], ctx)
    q = device.q_mvar
    ess_server.poke("input", 0, [200, 30000])  # P 0.2 MW, Q 30 Mvar
    device.step([0.2], ctx)
    assert kinds(device) == [("read", "q", CLAMPED)]  # Mvar against Mvar (was "… × 0.3 MW")
    assert device.last_error == "q: out_of_range (read 30 Mvar, beyond ±0.45 Mvar: plausible_factor 1.5 × 0.3, the larger limit)"
    assert device.q_mvar == q and device.safety == 1.0 and not device.comm_ok


def test_setpoint_written_and_measurement_read_back(ess_server, devices, ctx) -> None:
    device = make_device(ess_server.port)
    devices.append(device)
    device.step(np.array([0.8], np.float32), ctx)
    assert device.comm_ok and device.safety == 0.0, device.last_error
    # the setpoint arrived in the holding register (1 kW per count) but did not step the battery
    assert ess_server.raw("holding", 0) == 800 and ess_server.unit.setpoint_mw == pytest.approx(0.8)
    assert ess_server.steps == 0 and device.p_mw == 0.0
    ess_server.step()  # takes effect at the next step
    device.step([0.8], ctx)
    # the battery (±0.3 MW) limited it: p_mw is the measured value, not the setpoint
    assert device.setpoint_mw == pytest.approx(0.8)
    assert device.p_mw == pytest.approx(0.3) == pytest.approx(ess_server.device.p_mw)
    assert device.soc == pytest.approx(ess_server.device.soc, abs=1e-4) and device.soc < 0.5
    drive(device, ess_server, [-0.25], ctx)
    assert ess_server.raw("holding", 0) == 0x10000 - 250
    assert device.p_mw == pytest.approx(-0.25) and device.observe()[1] == 1.0
    assert device.observation_space.contains(device.observe()) and device.info() == {"comm": []}


def test_out_of_limit_setpoint_is_projected(ess_server, devices, ctx) -> None:
    device = make_device(ess_server.port, p_min_mw=-0.2, p_max_mw=0.5)
    devices.append(device)
    device.step([2.5], ctx)  # a move of 2.0 MW beyond the bounds counts at most their range, 0.7 MW
    assert device.setpoint_mw == pytest.approx(0.5) and device.projection == pytest.approx(0.7)
    assert ess_server.raw("holding", 0) == 500
    device.step([-3.0], ctx)
    assert device.setpoint_mw == pytest.approx(-0.2) and device.projection == pytest.approx(0.7)
    assert ess_server.unit.setpoint_mw == pytest.approx(-0.2)
    device.step([float("nan")], ctx)  # NaN: the default 0 MW (not the midpoint 0.15 MW), counted as the full range
    assert device.setpoint_mw == 0.0 and device.projection == pytest.approx(0.7) and device.comm_ok
    assert ess_server.raw("holding", 0) == 0


@pytest.mark.parametrize("order", ["big", "little"])
def test_32_bit_registers_word_order_and_sign(order, servers, devices, ctx) -> None:
    registers = {"setpoint": {"address": 100, "type": "float32", "word_order": order},
                 "p": {"address": 10, "type": "int32", "scale": 0.0001, "word_order": order},
                 "q": None,
                 "soc": {"address": 14, "type": "uint32", "scale": 1e-6, "word_order": order}}
    params = {"registers": registers, "p_min_mw": -5.0, "p_max_mw": 5.0}
    device = make_device(1, **params)
    server = SimulatedDeviceServer(make_ess(p_max_mw=5.0, capacity_mwh=20.0), registers=device.registers).start()
    servers.append(server)
    device = make_device(server.port, **params)
    devices.append(device)
    for setpoint in (4.1234, -3.5678):
        drive(device, server, [setpoint], ctx)
        assert device.comm_ok, device.last_error
        assert server.unit.setpoint_mw == pytest.approx(setpoint, rel=1e-7)  # float32
        # values equal after scaling: 0.1 kW counts of P, 1e-6 of SOC
        assert device.p_mw == pytest.approx(round(server.device.p_mw / 1e-4) * 1e-4, abs=1e-12)
        assert device.soc == pytest.approx(round(server.device.soc / 1e-6) * 1e-6, abs=1e-12)
    words = [server.raw("input", 10), server.raw("input", 11)]
    high_first = words if order == "big" else words[::-1]
    assert (high_first[0] << 16 | high_first[1]) == (round(-3.5678 / 1e-4) & 0xFFFFFFFF)  # two's complement


def test_bad_values_are_recorded_and_the_safe_action_applies(servers, devices, ctx) -> None:
    server = SimulatedDeviceServer(make_ess()).start()
    servers.append(server)
    device = make_device(server.port, registers={"soc": {"address": 2, "type": "uint16", "scale": 0.0001},
                                                 "p": {"address": 0, "scale": 0.001, "min": -0.4, "max": 0.4}})
    devices.append(device)
    drive(device, server, [0.2], ctx)
    assert device.p_mw == pytest.approx(0.2) and not device.register_flags and device.comm_ok
    server.poke("input", 0, [0x8000])  # P "not available"
    server.poke("input", 2, [15000])  # SOC 1.5
    device.step([0.2], ctx)
    assert not device.comm_ok and device.safety == 1.0
    assert device.register_flags == {"p": NOT_AVAILABLE, "soc": CLAMPED}
    assert kinds(device) == [("read", "p", NOT_AVAILABLE), ("read", "soc", CLAMPED)]
    assert device.p_mw == pytest.approx(0.2)  # hold: the last good value
    assert device.soc == pytest.approx(server.device.soc, abs=1e-4)  # the last good SOC, not the clamped 1.0
    server.poke("input", 0, [900])  # 0.9 MW: above the plausible 0.4
    device.step([0.2], ctx)
    assert kinds(device) == [("read", "p", CLAMPED), ("read", "soc", CLAMPED)] and device.p_mw == pytest.approx(0.2)
    assert device.observation_space.contains(device.observe())
    # the detail said "got 0.4" / "got 1.0": the clamped values, which look in range, not what was read
    details = [r["detail"] for r in device.info()["comm"]]
    assert details == ["p: out_of_range (read 0.9, outside [-0.4, 0.4])", "soc: out_of_range (read 1.5, outside [0, 1])"]


def test_an_out_of_range_reading_is_reported_in_the_register_s_units(servers, devices, ctx) -> None:
    # a SOC register in 0.1 % read 1200: the record said "read 1.2, outside [0, 1]", the fraction (r41b polish)
    server = SimulatedDeviceServer(make_ess()).start()
    servers.append(server)
    device = make_device(server.port, registers={"soc": {"address": 2, "type": "uint16", "scale": 0.1, "units": "%"},
                                                 "p": {"address": 0, "scale": 1.0, "units": "kW", "min": -400, "max": 400}})
    devices.append(device)
    drive(device, server, [0.2], ctx)
    server.poke("input", 0, [900])  # 900 kW
    server.poke("input", 2, [1200])  # 120 %
    device.step([0.2], ctx)
    details = [r["detail"] for r in device.info()["comm"]]
    assert details == ["p: out_of_range (read 900 kW, outside [-400, 400] kW)",
                       "soc: out_of_range (read 120 %, outside [0, 100] %)"], details


@pytest.mark.parametrize("on_failure", ["hold", "zero"])
def test_server_stopped_mid_run_then_restarted(on_failure, servers, devices, ctx) -> None:
    server = SimulatedDeviceServer(make_ess()).start()
    servers.append(server)
    port = server.port
    device = make_device(port, on_failure=on_failure, failure_safety=2.0)
    devices.append(device)
    drive(device, server, [0.1], ctx)
    assert device.comm_ok and device.p_mw == pytest.approx(0.1)

    server.stop()
    device.step([0.25], ctx)  # must not raise
    assert not device.comm_ok and device.comm_failures == 1 and device.last_error
    record = device.info()["comm"][0]
    # the setpoint sent during the outage is not lost silently
    assert (record["op"], record["what"], record["value"]) == ("write", "setpoint", pytest.approx(0.25))
    assert record["kind"] in ("timeout", "connect")
    assert device.safety == 2.0
    assert device.p_mw == (pytest.approx(0.1) if on_failure == "hold" else 0.0)
    assert device.observe()[1] == 0.0
    device.step([0.3], ctx)  # inside the backoff: no network I/O, still recorded
    assert not device.comm_ok and device.comm_failures == 2
    assert kinds(device) == [("write", "setpoint", "backoff")] and device.info()["comm"][0]["value"] == pytest.approx(0.3)

    server.start()  # same port
    assert server.port == port
    step_until(device, [-0.15], ctx, lambda: device.comm_ok)
    server.step()
    device.step([-0.15], ctx)
    assert device.safety == 0.0 and device.last_error == "" and device.info() == {"comm": []}
    assert device.p_mw == pytest.approx(-0.15) and server.unit.setpoint_mw == pytest.approx(-0.15)
    assert device.link.reconnects >= 1


def test_stale_measurement_falls_back_to_zero(servers, devices, ctx) -> None:
    now = [0.0]
    server = SimulatedDeviceServer(make_ess()).start()
    servers.append(server)
    params = build_params(ModbusDevice.Params, {"port": server.port, "timeout_s": 0.3, "backoff_s": 0.0,
                                                "max_age_s": 30.0, "on_failure": "hold"})
    device = ModbusDevice(params, 0.25, clock=lambda: now[0])
    device.reset(np.random.default_rng(0))
    devices.append(device)
    drive(device, server, [0.2], ctx)
    assert device.p_mw == pytest.approx(0.2)
    server.poke("input", 0, [0x8000])
    now[0] = 20.0  # 20 s old: still held
    device.step([0.2], ctx)
    assert device.p_mw == pytest.approx(0.2) and kinds(device) == [("read", "p", NOT_AVAILABLE)]
    now[0] = 31.0  # older than max_age_s: stale, the safe value is 0
    device.step([0.2], ctx)
    assert device.p_mw == 0.0 and kinds(device) == [("read", "p", NOT_AVAILABLE), ("read", "p", "stale")]


def test_a_held_value_lasts_max_hold_s_of_simulated_time(ess_server, devices, ctx) -> None:
    # the hold aged by wall clock only: an env stepping without waiting injected a dead device's last P
    # for the rest of the day (t_hold.py: 285 five-minute steps)
    device = make_device(ess_server.port, max_hold_s=1800.0)  # two 15-minute steps
    devices.append(device)
    drive(device, ess_server, [0.2], ctx)
    ess_server.poke("input", 0, [0x8000])
    for _ in range(2):
        device.step([0.2], ctx)
        assert device.p_mw == pytest.approx(0.2) and kinds(device) == [("read", "p", NOT_AVAILABLE)]
    device.step([0.2], ctx)
    assert device.p_mw == 0.0 and kinds(device) == [("read", "p", NOT_AVAILABLE), ("read", "p", "stale")]
    assert "2700 s (simulated) old" in device.info()["comm"][1]["detail"]
    ess_server.step()  # a good answer again: held time starts over
    device.step([0.2], ctx)
    assert device.comm_ok and device.held_s == 0.0 and device.p_mw == pytest.approx(0.2)


def test_a_device_never_measured_says_so_when_out(ess_server, devices, ctx) -> None:
    # a wrong unit id (0x0B at every step): the record read "last good measurement 10.5 s (wall clock) and 3900 s
    # (simulated) old" of a device that never had a good reading, its age counted from the reset (r41b F6)
    device = make_device(ess_server.port, unit_id=9, max_hold_s=1800.0)  # two 15-minute steps
    devices.append(device)
    for _ in range(3):
        device.step([0.2], ctx)
    assert device.p_mw == 0.0 and kinds(device)[-1] == ("read", "p", "stale") and ess_server.stats["unknown_unit"] >= 3
    detail = device.info()["comm"][-1]["detail"]
    assert detail.startswith("no good measurement since the reset, ") and "2700 s (simulated) ago" in detail, detail


@pytest.mark.parametrize(("step_minutes", "held"), [(60, 1), (120, 0), (5, 12), (6, 10)])
def test_max_hold_s_bounds_the_simulated_age_at_the_step_of_use(ess_server, devices, step_minutes, held) -> None:
    # the default 3600 s: the value is used while n faulty steps × the step length ≤ 3600 s
    ctx = StepContext(dt_h=step_minutes / 60, profiles={})
    device = make_device(ess_server.port)
    devices.append(device)
    drive(device, ess_server, [0.2], ctx)
    ess_server.poke("input", 0, [0x8000])
    for _ in range(held):
        device.step([0.2], ctx)
        assert device.p_mw == pytest.approx(0.2), device.info()
    device.step([0.2], ctx)
    assert device.p_mw == 0.0 and kinds(device)[-1] == ("read", "p", "stale")


def test_a_failed_soc_read_commits_nothing(ess_server, devices, ctx) -> None:
    device = make_device(ess_server.port)
    devices.append(device)
    drive(device, ess_server, [0.2], ctx)
    soc = device.soc
    ess_server.poke("input", 0, [100, 0, 0xFFFF])  # a new P (0.1 MW), SOC not available
    device.step([0.2], ctx)
    assert device.p_mw == pytest.approx(0.2) and device.soc == soc  # the step's P was not committed
    # the detail said "got 0.5": the fallback, as if it had been read
    assert device.last_error == "soc: not_available (read 0xFFFF, the not-available pattern)"


def test_a_map_without_a_setpoint_is_a_read_only_device(ess_server, devices, ctx) -> None:
    # a meter (no setpoint register) could not be in the loop: "registers.setpoint: required"
    writer = make_device(ess_server.port)
    meter = make_device(ess_server.port, registers={"setpoint": None, "q": None})
    devices += [writer, meter]
    drive(writer, ess_server, [0.2], ctx)
    writes = ess_server.stats["writes"]
    meter.step(np.zeros(0, np.float32), ctx)
    assert meter.action_space.shape == (0,) and meter.registers.setpoint is None
    assert meter.comm_ok and meter.p_mw == pytest.approx(0.2) and ess_server.stats["writes"] == writes


def test_nothing_listening_is_a_recorded_failure(devices, ctx) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: connection refused
    device = make_device(port, on_failure="zero", backoff_s=0.0)
    devices.append(device)
    device.step([0.3], ctx)
    assert not device.comm_ok and device.p_mw == 0.0 and device.safety == 1.0
    assert kinds(device) == [("write", "setpoint", "connect")]
    # why, which pymodbus only logs (it went to stderr): refused, no route, timed out
    assert device.last_error == f"connect to 127.0.0.1:{port} failed: [Errno 111] Connection refused"
    device.step([0.3], ctx)  # pymodbus logs a repeated message once more ("Repeating....") then not at all
    device.step([0.3], ctx)
    assert device.last_error == f"connect to 127.0.0.1:{port} failed: [Errno 111] Connection refused"


def test_silent_device_times_out(devices, ctx) -> None:
    with socket.socket() as listener:  # accepts TCP (backlog) but never answers Modbus
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        device = make_device(listener.getsockname()[1], timeout_s=0.2)
        devices.append(device)
        device.step([0.3], ctx)
    assert not device.comm_ok and device.safety > 0
    assert kinds(device) == [("write", "setpoint", "timeout")]


def test_exception_response_is_recorded_without_reconnecting(servers, devices, ctx) -> None:
    server = SimulatedDeviceServer(make_ess(), read_only=True).start()
    servers.append(server)
    device = make_device(server.port)
    devices.append(device)
    device.step([0.1], ctx)
    assert kinds(device) == [("write", "setpoint", "exception")]
    assert "exception response 1" in device.last_error and device.info()["comm"][0]["value"] == pytest.approx(0.1)
    assert device.link.connected and device.link.failures == 0  # the device answered: the link is sound
    assert server.stats["read_only"] == 1


def test_a_refused_setpoint_write_still_measures(servers, devices, ctx) -> None:
    # equipment refusing writes (local mode, a remote-control lockout) but answering reads: the refused write ended
    # the step, P/Q/SOC were never read, and the flow got the held (or zero) value instead of what was measured
    server = SimulatedDeviceServer(make_ess(), read_only=True).start()
    servers.append(server)
    server.poke("input", 0, [200, 0xFFFF & -30, 6000])  # 0.2 MW, -0.03 Mvar, SOC 0.6
    device = make_device(server.port, on_failure="zero")
    devices.append(device)
    device.step([0.1], ctx)
    assert kinds(device) == [("write", "setpoint", "exception")] and not device.comm_ok and device.safety == 1.0
    assert "exception response 1 (illegal function)" in device.last_error
    assert (device.p_mw, device.q_mvar, device.soc) == pytest.approx((0.2, -0.03, 0.6))


class RawPeer:
    """A Modbus TCP peer answering reads with 100 in every register (``extra`` registers more than asked) and
    echoing writes; with ``answers`` it closes each connection after that many answers, as gateways closing idle
    connections do."""

    def __init__(self, extra: int = 0, answers: int | None = None) -> None:
        self.extra, self.answers, self.connections = extra, answers, 0
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        answered = 0
        while self.answers is None or answered < self.answers:
            header = conn.recv(7)
            if len(header) < 7:
                return
            tid, _, length, unit = struct.unpack(">HHHB", header)
            pdu = conn.recv(length - 1)
            function = pdu[0]
            if function in (3, 4):
                count = struct.unpack(">H", pdu[3:5])[0] + self.extra
                body = bytes([function, 2 * count]) + b"\x00\x64" * count
            else:
                body = pdu if function == 6 else pdu[:5]  # write single: echo; multiple: address and count
            conn.sendall(struct.pack(">HHHB", tid, 0, len(body) + 1, unit) + body)
            answered += 1

    def close(self) -> None:
        self.listener.close()


def test_a_reply_with_more_registers_than_asked_is_malformed(devices, ctx) -> None:
    peer = RawPeer(extra=1)
    try:
        device = make_device(peer.port, registers={"q": None, "soc": None})
        devices.append(device)
        device.step([0.1], ctx)
    finally:
        peer.close()
    assert device.register_flags == {"p": MALFORMED}
    assert kinds(device) == [("read", "p", MALFORMED)] and not device.comm_ok


def test_pickled_device_opens_its_own_connection(ess_server, devices, ctx) -> None:
    device = make_device(ess_server.port)
    devices.append(device)
    drive(device, ess_server, [0.1], ctx)
    copy = pickle.loads(pickle.dumps(device))
    devices.append(copy)
    assert copy._link is None and copy.p_mw == pytest.approx(0.1)
    copy.step([0.2], ctx)
    assert copy.comm_ok and copy.p_mw == pytest.approx(0.1)  # the server has not stepped since


def test_a_connection_the_peer_closed_is_reopened_at_once(devices, ctx) -> None:
    # a device closing idle connections (a peer closing after each answer, here): every request after the first
    # failed on the closed socket ('ConnectionException ... Connection unexpectedly closed'), a timeout fault and a
    # backoff; stepped every 1.5 s against a 1 s idle close, 3 of 6 steps were faults (/work/notes/c33/idle_close.py)
    peer = RawPeer(answers=1)
    try:
        device = make_device(peer.port, registers={"q": None, "soc": None})
        devices.append(device)
        for _ in range(3):
            device.step([0.1], ctx)
            assert device.comm_ok and device.p_mw == pytest.approx(0.1), device.last_error
        assert peer.connections == 6 and device.link.reconnects == 0  # write + read per step, each reopened
    finally:
        peer.close()


def test_a_loop_paced_to_the_wall_clock_holds_as_long_as_one_that_is_not(servers, devices) -> None:
    # docs/hil.md: pace a loop with physical equipment (one step per step length) and a dead device is held 12 steps
    # of 5 min; paced, the wall-clock limit max_age_s (60 s) made the first faulty step stale (/work/notes/c33/paced_hold.py)
    now = [0.0]
    server = SimulatedDeviceServer(make_ess()).start()
    servers.append(server)
    params = build_params(ModbusDevice.Params, {"port": server.port, "timeout_s": 0.5, "backoff_s": 0.0,
                                                "registers": {"soc": None}})
    device = ModbusDevice(params, 5 / 60, clock=lambda: now[0])
    device.reset(np.random.default_rng(0))
    devices.append(device)
    ctx = StepContext(dt_h=5 / 60, profiles={})
    drive(device, server, [0.2], ctx)
    server.stop()
    for _ in range(12):
        now[0] += 300.0  # one 5-minute step per 5 minutes of wall clock
        device.step([0.2], ctx)
        assert device.p_mw == pytest.approx(0.2) and "stale" not in [k for _, _, k in kinds(device)]
    now[0] += 300.0
    device.step([0.2], ctx)
    assert device.p_mw == 0.0 and kinds(device)[-1] == ("read", "p", "stale")


def test_faults_go_to_infos_not_to_stderr() -> None:
    # pymodbus logged every failed connection to stderr ('Connection to (127.0.0.1, …) failed', frame dumps) through
    # Python's last-resort handler, in a process that configured no logging (pytest's own handlers hide it: a child)
    code = """
import socket
import numpy as np
from powergrid.devices import StepContext
from powergrid.params import build_params
from powergrid_hil.device import ModbusDevice
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
d = ModbusDevice(build_params(ModbusDevice.Params, {"port": port, "backoff_s": 0.0}), 0.25)
d.reset(np.random.default_rng(0))
d.step([0.1], StepContext(dt_h=0.25, profiles={}))
print(d.info()["comm"][0]["kind"])
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.stdout, done.stderr) == ("connect\n", "")

"""ModbusDevice against a real pymodbus server on 127.0.0.1: setpoints, measurements, faults, reconnection."""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest

from powergrid.errors import ConfigError
from powergrid.params import build_params
from powergrid_hil.device import ModbusDevice
from powergrid_hil.registers import CLAMPED, NOT_AVAILABLE
from powergrid_hil.server import SimulatedDeviceServer
from tests.hil.conftest import make_device, make_ess, step_until


def test_registry_lists_device_without_importing_pymodbus() -> None:
    code = (
        "import sys; from powergrid.plugins import get_registry; r = get_registry(); "
        "rec = r.get('device', 'ModbusDevice'); assert rec.distribution == 'powergrid-hil', rec; "
        "cls = rec.load(); assert cls.__name__ == 'ModbusDevice'; "
        "assert 'pymodbus' not in sys.modules, 'pymodbus imported eagerly'; "
        "assert 'hil' in r.names('command')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_params_are_checked() -> None:
    with pytest.raises(ConfigError, match="on_failure"):
        build_params(ModbusDevice.Params, {"on_failure": "explode"})
    with pytest.raises(ConfigError, match="p_min_mw"):
        build_params(ModbusDevice.Params, {"p_min_mw": 1.0, "p_max_mw": 0.5})
    with pytest.raises(ConfigError, match="overlaps"):
        build_params(ModbusDevice.Params, {"p_words": 2})  # P at 0..1 overlaps Q at 1


def test_setpoint_written_and_measurement_read_back(ess_server, devices, ctx) -> None:
    device = make_device(ess_server.port)
    devices.append(device)
    device.step(np.array([0.8], np.float32), ctx)
    assert device.comm_ok and device.safety == 0.0, device.last_error
    # the setpoint arrived in the server's holding register (1 kW per count)
    assert ess_server.raw("holding", 0) == 800 and ess_server.setpoint_mw == pytest.approx(0.8)
    # the battery (±0.3 MW) limited it: p_mw is the measured value, not the setpoint
    assert device.setpoint_mw == pytest.approx(0.8)
    assert device.p_mw == pytest.approx(0.3) == pytest.approx(ess_server.device.p_mw)
    assert device.soc == pytest.approx(ess_server.device.soc, abs=1e-4) and device.soc < 0.5
    device.step([-0.25], ctx)
    assert ess_server.raw("holding", 0) == 0x10000 - 250
    assert device.p_mw == pytest.approx(-0.25) and device.observe()[1] == 1.0
    assert device.observation_space.contains(device.observe())


def test_out_of_limit_setpoint_is_projected(ess_server, devices, ctx) -> None:
    device = make_device(ess_server.port, p_min_mw=-0.2, p_max_mw=0.5)
    devices.append(device)
    device.step([2.5], ctx)
    assert device.setpoint_mw == pytest.approx(0.5) and device.projection == pytest.approx(2.0)
    assert ess_server.raw("holding", 0) == 500
    device.step([-3.0], ctx)
    assert device.setpoint_mw == pytest.approx(-0.2) and device.projection == pytest.approx(2.8)
    assert ess_server.setpoint_mw == pytest.approx(-0.2)
    device.step([float("nan")], ctx)  # NaN: midpoint of the limits, counted as the full range
    assert device.setpoint_mw == pytest.approx(0.15) and device.comm_ok


def test_32_bit_registers_little_word_order(servers, devices, ctx) -> None:
    params = {"setpoint_address": 100, "setpoint_words": 2, "setpoint_scale": 0.0001, "p_address": 10, "p_words": 2,
              "p_scale": 0.0001, "q_address": -1, "soc_address": 14, "word_order": "little",
              "p_min_mw": -5.0, "p_max_mw": 5.0}
    device = make_device(1, **params)
    server = SimulatedDeviceServer(make_ess(p_max_mw=5.0, capacity_mwh=20.0), registers=device.registers).start()
    servers.append(server)
    device = make_device(server.port, **params)
    devices.append(device)
    device.step([4.1234], ctx)
    assert device.comm_ok, device.last_error
    assert server.setpoint_mw == pytest.approx(4.1234) and device.p_mw == pytest.approx(4.1234)


def test_bad_register_values_are_flagged_not_raised(servers, devices, ctx) -> None:
    server = SimulatedDeviceServer(make_ess(), step_on="manual").start()
    servers.append(server)
    device = make_device(server.port)
    devices.append(device)
    device.step([0.2], ctx)  # manual: the write does not step the battery
    assert device.p_mw == 0.0 and server.setpoint_mw == pytest.approx(0.2)
    server.step()
    device.step([0.2], ctx)
    assert device.p_mw == pytest.approx(0.2) and not device.register_flags
    server.poke("input", 0, [0x8000])  # P "not available"
    server.poke("input", 2, [15000])  # SOC 1.5
    device.step([0.2], ctx)
    assert device.comm_ok and device.safety == 0.0
    assert device.register_flags == {"p": NOT_AVAILABLE, "soc": CLAMPED}
    assert device.p_mw == pytest.approx(0.2)  # last good value kept
    assert device.soc == 1.0  # clamped to the plausible range
    assert device.observation_space.contains(device.observe())


@pytest.mark.parametrize("on_failure", ["hold", "zero"])
def test_server_stopped_mid_run_then_restarted(on_failure, servers, devices, ctx) -> None:
    server = SimulatedDeviceServer(make_ess()).start()
    servers.append(server)
    port = server.port
    device = make_device(port, on_failure=on_failure, failure_safety=2.0)
    devices.append(device)
    device.step([0.1], ctx)
    assert device.comm_ok and device.p_mw == pytest.approx(0.1)

    server.stop()
    device.step([0.25], ctx)  # must not raise
    assert not device.comm_ok and device.comm_failures == 1 and device.last_error
    assert device.safety == 2.0
    assert device.p_mw == (pytest.approx(0.1) if on_failure == "hold" else 0.0)
    assert device.observe()[1] == 0.0
    device.step([0.25], ctx)  # inside the backoff: no network I/O, still handled
    assert not device.comm_ok and device.comm_failures == 2

    server.start()  # same port
    assert server.port == port
    step_until(device, [-0.15], ctx, lambda: device.comm_ok)
    assert device.safety == 0.0 and device.last_error == ""
    assert device.p_mw == pytest.approx(-0.15) and server.setpoint_mw == pytest.approx(-0.15)
    assert device.link.reconnects >= 1


def test_nothing_listening_is_a_handled_failure(devices, ctx) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: connection refused
    device = make_device(port, on_failure="zero")
    devices.append(device)
    device.step([0.3], ctx)
    assert not device.comm_ok and device.p_mw == 0.0 and device.safety == 1.0
    assert "connect" in device.last_error


def test_silent_device_times_out(devices, ctx) -> None:
    with socket.socket() as listener:  # accepts TCP (backlog) but never answers Modbus
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        device = make_device(listener.getsockname()[1], timeout_s=0.2)
        devices.append(device)
        device.step([0.3], ctx)
    assert not device.comm_ok and device.safety > 0
    assert device.last_error


def test_server_device_failure_is_an_exception_response(servers, devices, ctx) -> None:
    class Broken(type(make_ess())):
        def step(self, action, ctx):
            raise RuntimeError("model diverged")

    server = SimulatedDeviceServer(Broken(make_ess().params, 0.25)).start()
    servers.append(server)
    device = make_device(server.port)
    devices.append(device)
    device.step([0.1], ctx)
    assert not device.comm_ok and device.safety > 0
    assert server.errors and "model diverged" in server.errors[0] and server.running


def test_pickled_device_opens_its_own_connection(ess_server, devices, ctx) -> None:
    import pickle

    device = make_device(ess_server.port)
    devices.append(device)
    device.step([0.1], ctx)
    copy = pickle.loads(pickle.dumps(device))
    devices.append(copy)
    assert copy._link is None and copy.p_mw == pytest.approx(0.1)
    copy.step([0.2], ctx)
    assert copy.comm_ok and copy.p_mw == pytest.approx(0.2)

"""What the equipment is left at between episodes and after the run (r46c F2): the default setpoint (0 MW, or the
nearer limit), written over an open link at reset, at close and at interpreter exit (``on_close: safe``, the default);
``on_close: leave`` keeps the last setpoint. Before, nothing was written: a battery kept discharging at 0.25 MW."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import ConfigError
from tests.hil.conftest import make_device
from tests.hil.test_env import scenario
from tests.hil.test_sunspec_device import another_controller_writes, client, sunspec_server


@pytest.mark.parametrize("when", ["reset", "close"])
def test_reset_and_close_write_the_default_setpoint(ess_server, devices, ctx, when) -> None:
    ess_server.poke("holding", 0, [123])  # another controller's setpoint
    device = make_device(ess_server.port, p_min_mw=-0.3, p_max_mw=0.3)  # reset, and no link yet: nothing of ours
    devices.append(device)
    assert ess_server.raw("holding", 0) == 123
    device.step([0.25], ctx)
    assert ess_server.raw("holding", 0) == 250
    device.reset(np.random.default_rng(1)) if when == "reset" else device.close()
    assert ess_server.raw("holding", 0) == 0  # was 250: the battery kept discharging at 0.25 MW
    ess_server.step()
    assert ess_server.unit.setpoint_mw == 0.0


def test_the_default_setpoint_is_written_once_until_a_step_or_a_reconnection(ess_server, devices, ctx) -> None:
    # r46d F3: reset→reset and reset→close wrote the same default again (server writes 0, 1, 2, 3, 4), each a request
    # bounded by timeout_s and counted against the device's write rate
    writes = lambda: ess_server.stats["writes"]  # noqa: E731
    device = make_device(ess_server.port, p_min_mw=-0.3, p_max_mw=0.3)
    devices.append(device)
    assert writes() == 0  # built and reset: no link yet
    device.step([0.25], ctx)
    assert writes() == 1
    device.reset(np.random.default_rng(1))
    assert writes() == 2 and ess_server.raw("holding", 0) == 0
    device.reset(np.random.default_rng(2))
    device.close()
    device.close()
    assert writes() == 2  # nothing written since: the equipment still idles at the default
    device.step([0.25], ctx)  # reopens the link and writes 0.25 MW
    device.reset(np.random.default_rng(3))
    assert writes() == 4 and ess_server.raw("holding", 0) == 0
    device.link.reconnects += 1  # as after a failure: the equipment may have restarted or been written by another
    ess_server.poke("holding", 0, [123])
    device.reset(np.random.default_rng(4))
    assert writes() == 5 and ess_server.raw("holding", 0) == 0


def test_a_range_without_zero_is_left_at_its_nearer_limit(ess_server, devices, ctx) -> None:
    device = make_device(ess_server.port, p_min_mw=0.05, p_max_mw=0.3)
    devices.append(device)
    device.step([0.25], ctx)
    device.close()
    assert ess_server.raw("holding", 0) == 50


def test_on_close_leave_keeps_the_last_setpoint(ess_server, devices, ctx) -> None:
    device = make_device(ess_server.port, on_close="leave")
    devices.append(device)
    device.step([0.25], ctx)
    device.reset(np.random.default_rng(1))
    device.close()
    assert ess_server.raw("holding", 0) == 250


def test_on_close_is_checked_with_its_yaml_path() -> None:
    with pytest.raises(ConfigError, match=r"agents\[0\]\.params\.on_close.*'safe', 'leave'.*'off'"):
        MultiAgentPowerGridEnv.from_config(scenario({"type": "ModbusDevice", "params": {"on_close": "off"}}))


def test_a_sunspec_device_writes_wset_zero_at_reset_and_nothing_while_yielded(servers, devices, ctx) -> None:
    server = sunspec_server(servers)
    device = client(server.port, devices)
    device.step([0.2], ctx)
    wset = device.points.setpoint
    words = lambda: [server.raw("holding", a) for a in wset.addresses]  # noqa: E731
    written = words()
    assert written != [0, 0]
    device.reset(np.random.default_rng(1))
    assert words() == [0, 0]  # was left at 0.2 MW
    server.step()
    assert server.device.p_mw == 0.0
    device.step([0.2], ctx)
    assert words() == written
    another_controller_writes(server.port, device.points.enable.address, 0)  # a utility takes the setpoint
    device.step([0.2], ctx)
    assert device.yielded
    device.close()
    assert words() == written  # not ours to write while yielded


def test_interpreter_exit_writes_the_default_setpoint(ess_server) -> None:
    child = textwrap.dedent(f"""
        import numpy as np
        from powergrid.devices import StepContext
        from powergrid.params import build_params
        from powergrid_hil.device import ModbusDevice

        device = ModbusDevice(build_params(ModbusDevice.Params, {{"port": {ess_server.port}, "timeout_s": 2.0}}), 0.25)
        device.reset(np.random.default_rng(0))
        device.step([0.25], StepContext(dt_h=0.25, profiles={{}}))
        assert device.comm_ok, device.last_error
        raise RuntimeError("a training script fails")  # uncaught: nothing closes the device
    """)
    run = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert "a training script fails" in run.stderr and run.returncode == 1, run.stderr
    assert ess_server.raw("holding", 0) == 0  # was 250

"""HIL fixtures: real Modbus TCP servers on 127.0.0.1 (free ports), always stopped in teardown."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pymodbus")
pytest.importorskip("powergrid_devices")

from powergrid.devices import StepContext
from powergrid.params import build_params
from powergrid_devices.storage import ESS
from powergrid_hil.device import ModbusDevice
from powergrid_hil.server import SimulatedDeviceServer

DT_H = 0.25


def make_ess(**params: Any) -> ESS:
    """A plain simulated battery (±0.3 MW unless told, SOC 0.5)."""
    return ESS(build_params(ESS.Params, {"p_max_mw": 0.3, **params}), DT_H)


SOC = {"soc": {"address": 2, "type": "uint16", "scale": 0.0001}}


def make_device(port: int, **params: Any) -> ModbusDevice:
    """A client of the default map (setpoint holding 0; P, Q, SOC at input 0, 1, 2)."""
    raw = {"port": port, "timeout_s": 1.0, "backoff_s": 0.05, "backoff_max_s": 0.2, "registers": SOC, **params}
    device = ModbusDevice(build_params(ModbusDevice.Params, raw), DT_H)
    device.reset(np.random.default_rng(0))
    return device


def step_until(device: ModbusDevice, action: Any, ctx: StepContext, ok: Callable[[], bool], timeout_s: float = 5.0) -> int:
    """Step ``device`` until ``ok()`` (bounded by ``timeout_s``); returns the steps taken."""
    deadline = time.monotonic() + timeout_s
    steps = 0
    while time.monotonic() < deadline:
        device.step(action, ctx)
        steps += 1
        if ok():
            return steps
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout_s} s after {steps} steps (last error: {device.last_error})")


@pytest.fixture
def ctx() -> StepContext:
    return StepContext(dt_h=DT_H, profiles={})


@pytest.fixture
def servers() -> Iterator[list[SimulatedDeviceServer]]:
    """Collects servers a test starts; every one is stopped at teardown."""
    started: list[SimulatedDeviceServer] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def ess_server(servers: list[SimulatedDeviceServer]) -> SimulatedDeviceServer:
    server = SimulatedDeviceServer(make_ess()).start()
    servers.append(server)
    return server


@pytest.fixture
def devices() -> Iterator[list[ModbusDevice]]:
    made: list[ModbusDevice] = []
    yield made
    for device in made:
        device.close()

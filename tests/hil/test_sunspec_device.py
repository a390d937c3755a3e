"""SunSpecDevice (client side) against served SunSpec units: scaling, faults recorded, reconnection with a rescan."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from powergrid.params import build_params
from powergrid_hil.registers import CLAMPED, NOT_AVAILABLE
from powergrid_hil.server import SimulatedDeviceServer
from powergrid_hil.sunspec_device import SunSpecDevice
from powergrid_hil.sunspec_unit import SunSpecUnit
from tests.hil.conftest import make_ess, step_until


def sunspec_server(servers: list, controls: bool = True, **params: Any) -> SimulatedDeviceServer:
    ess = make_ess(**params)
    ess.reset(np.random.default_rng(0))
    server = SimulatedDeviceServer(ess, unit=SunSpecUnit(ess, name="bess", controls=controls), reset=False).start()
    servers.append(server)
    return server


def client(port: int, devices: list, **params: Any) -> SunSpecDevice:
    raw = {"port": port, "timeout_s": 1.0, "backoff_s": 0.05, "backoff_max_s": 0.2, "soc": True,
           "p_min_mw": -0.3, "p_max_mw": 0.3, **params}
    device = SunSpecDevice(build_params(SunSpecDevice.Params, raw), 0.25)
    device.reset(np.random.default_rng(0))
    devices.append(device)
    return device


def kinds(device: SunSpecDevice) -> list[tuple[str, str, str]]:
    return [(r["op"], r["what"], r["kind"]) for r in device.info()["comm"]]


def test_setpoint_and_measurements_with_scale_factors(servers, devices, ctx) -> None:
    server = sunspec_server(servers)
    device = client(server.port, devices)
    device.step([-0.2345678], ctx)
    assert device.comm_ok, device.last_error
    assert device.points.exponents == {"setpoint": -3, "p": 2, "q": 2, "soc": -2}
    server.step()
    device.step([-0.2345678], ctx)
    assert server.device.p_mw == pytest.approx(-0.2345678, abs=1e-7)  # WSet: 1 mW counts (then float32)
    assert device.p_mw == pytest.approx(-0.2346, abs=1e-12)  # W: 100 W counts
    assert device.soc == pytest.approx(round(server.device.soc * 1e4) / 1e4, abs=1e-12)
    assert device.observation_space.contains(device.observe())


def test_bad_values_are_recorded(servers, devices, ctx) -> None:
    server = sunspec_server(servers)
    unit = server.unit
    device = client(server.port, devices)
    device.step([0.1], ctx)
    server.step()
    device.step([0.1], ctx)
    assert device.p_mw == pytest.approx(0.1)
    server.poke("holding", unit.located(701, "W").address, [0x8000])  # not implemented
    device.step([0.1], ctx)
    assert kinds(device) == [("read", "p", NOT_AVAILABLE)] and device.p_mw == pytest.approx(0.1)  # hold
    server.poke("holding", unit.located(701, "W").address, [30000])  # 3 MW: implausible for ±0.3 MW
    server.poke("holding", unit.located(713, "SoC").address, [12000])  # 120 %
    device.step([0.1], ctx)
    assert kinds(device) == [("read", "p", CLAMPED), ("read", "soc", CLAMPED)] and device.safety == 1.0
    assert [r["detail"] for r in device.info()["comm"]] == ["p: out_of_range (read 3e+06, outside [-450000, 450000])",
                                                          "soc: out_of_range (read 120, outside [0, 100])"]


def test_outage_is_recorded_then_the_device_is_rescanned(servers, devices, ctx) -> None:
    server = sunspec_server(servers)
    device = client(server.port, devices, on_failure="zero")
    device.step([0.1], ctx)
    assert device.comm_ok
    server.stop()
    device.step([0.2], ctx)
    assert kinds(device)[0][:2] == ("write", "setpoint") and device.info()["comm"][0]["value"] == pytest.approx(0.2)
    assert device.p_mw == 0.0 and device.safety == 1.0
    server.start()
    step_until(device, [0.2], ctx, lambda: device.comm_ok)
    assert device.link.reconnects >= 1 and server.unit.enabled["p"]  # rescanned, WSetEna written again
    server.step()
    device.step([0.2], ctx)
    assert device.p_mw == pytest.approx(0.2)


def test_equipment_without_controls_or_sunspec_is_a_recorded_fault(servers, devices, ctx) -> None:
    read_only = sunspec_server(servers, controls=False)
    device = client(read_only.port, devices)
    device.step([0.1], ctx)
    assert kinds(device) == [("read", "scan", "not_sunspec")] and "704" in device.last_error
    plain = SimulatedDeviceServer(make_ess()).start()  # a plain register map: nothing at 40000
    servers.append(plain)
    device = client(plain.port, devices)
    device.step([0.1], ctx)
    assert kinds(device) == [("read", "scan", "exception")]


@pytest.mark.parametrize(("model", "point", "word", "exponent"), [(701, "W_SF", 0x7FFF, 32767), (704, "WSet_SF", 400, 400),
                                                                  (704, "WSet_SF", 0xFE70, -400)])
def test_a_scale_factor_outside_sunspec_range_is_a_malformed_scan(servers, devices, ctx, model, point, word, exponent) -> None:
    # 10**sf used to overflow (or divide by zero) inside the step: recorded as ('read', 'link', 'error',
    # 'OverflowError: ...'), blaming the link, and for W_SF after the setpoint had been written
    server = sunspec_server(servers)
    server.poke("holding", server.unit.located(model, point).address, [word])
    device = client(server.port, devices)
    device.step([0.1], ctx)
    assert kinds(device) == [("read", "scan", "malformed")]
    assert device.last_error == f"SunSpec scan: scale factor {point} = {exponent} is outside -10..10"
    server.step()
    assert server.device.p_mw == 0.0  # nothing written with an unknown scale


@pytest.mark.parametrize("point", ["Var", "Var_SF"])
def test_equipment_without_the_optional_var_point_measures_p(servers, devices, ctx, point) -> None:
    # Var (701) and VAr (101-103) are optional in SunSpec: left "not implemented", every step was a fault and P
    # was never committed (Var), or the scan failed and no setpoint was ever written (Var_SF)
    server = sunspec_server(servers)
    server.poke("holding", server.unit.located(701, point).address, [0x8000])
    device = client(server.port, devices)
    device.step([0.2], ctx)
    server.step()
    device.step([0.2], ctx)
    assert device.comm_ok, device.last_error
    assert device.points.q is None
    assert server.device.p_mw == pytest.approx(0.2) and device.p_mw == pytest.approx(0.2) and device.q_mvar == 0.0


def test_a_vendor_model_is_skipped_by_its_length(servers, devices, ctx) -> None:
    # a model pysunspec2 has no definition for (a manufacturer's 64120 in place of 702) failed the whole scan:
    # "not_sunspec" at every step, no setpoint ever written
    server = sunspec_server(servers)
    server.poke("holding", server.unit.located(702, "ID").address, [64120])
    device = client(server.port, devices)
    device.step([0.2], ctx)
    server.step()
    device.step([0.2], ctx)
    assert device.comm_ok, device.last_error
    assert 64120 in device.map.skipped and not device.map.has(64120)
    assert server.device.p_mw == pytest.approx(0.2) and device.p_mw == pytest.approx(0.2)
    server.poke("holding", server.unit.located(704, "ID").address, [64121])  # the controls themselves unknown
    device.close()  # the next step reconnects and rescans
    device.step([0.2], ctx)
    assert kinds(device) == [("read", "scan", "not_sunspec")]
    assert "no model 704" in device.last_error and "skipped model 64121" in device.last_error


def test_nothing_measured_after_a_reset_is_not_comm_ok(servers, devices, ctx) -> None:
    # after reset() the observation said comm_ok = 1 with soc 0: a battery at 50 % looked measured and empty
    server = sunspec_server(servers)
    device = client(server.port, devices)
    assert device.observe().tolist() == [0.0, 0.0, 0.0]
    device.step([0.1], ctx)
    assert device.observe()[1:].tolist() == pytest.approx([1.0, 0.5])
    device.reset(np.random.default_rng(1))
    assert not device.comm_ok and device.observe().tolist() == [0.0, 0.0, 0.0]

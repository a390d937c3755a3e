"""SunSpecDevice (client side) against served SunSpec units: scaling, faults recorded, reconnection with a rescan."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from powergrid.params import build_params
from powergrid_hil.client import CommError, ModbusLink
from powergrid_hil.registers import CLAMPED, NOT_AVAILABLE
from powergrid_hil.server import ModbusServer, SimulatedDeviceServer, Unit
from powergrid_hil.sunspec import ModelLayout, SunSpecMap
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


def another_controller_writes(port: int, address: int, value: int) -> None:
    """One register written by another Modbus client (a utility's controller taking the setpoint)."""
    other = ModbusLink("127.0.0.1", port)
    try:
        other.write_words(address, [value])
    finally:
        other.close()


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


def test_rewrite_a_cleared_enable_or_mode_is_a_fault_and_written_again(servers, devices, ctx) -> None:
    # WSetMod (0: percent of WMax, 1: watts) was never written nor checked, and WSetEna only once per scan:
    # another client (or the DER's reversion timer) clearing it left P at 0 with comm_ok and no fault
    server = sunspec_server(servers)
    device = client(server.port, devices, on_override="rewrite")
    enable, mode = server.unit.located(704, "WSetEna").address, server.unit.located(704, "WSetMod").address
    device.step([-0.2], ctx)
    server.step()
    other = ModbusLink("127.0.0.1", server.port)
    try:
        other.write_words(enable, [0])  # another client disables the setpoint
        with pytest.raises(CommError, match="exception response 3"):
            other.write_words(mode, [0])  # the served unit has one mode, watts
    finally:
        other.close()
    server.step()
    assert server.device.p_mw == 0.0
    device.step([-0.2], ctx)
    assert kinds(device) == [("write", "setpoint", "overridden")] and not device.comm_ok and device.safety == 1.0
    assert device.last_error == "read back WSetEna = 0 (written 1): written again"
    assert server.raw("holding", enable) == 1
    server.step()
    assert server.device.p_mw == pytest.approx(-0.2)
    server.poke("holding", mode, [0])  # percent of WMax: WSet would not count
    device.step([-0.2], ctx)
    assert device.last_error == "read back WSetMod = 0 (written 1): written again"
    assert server.raw("holding", mode) == 1
    device.step([-0.2], ctx)
    assert device.comm_ok, device.last_error


class ImageUnit(Unit):
    """A raw SunSpec image (models 1, 103, 704) whose points a test sets; 704 accepts any write."""

    def __init__(self) -> None:
        self.map = SunSpecMap([ModelLayout.build(1), ModelLayout.build(103), ModelLayout.build(704)])
        controls = self.map.find(704, "WSetEna").address
        super().__init__(make_ess(), {"holding": (self.map.base, self.map.blank())}, range(controls, controls + 4))
        for model, name, value in ((103, "W_SF", 0), (103, "W", 3000), (704, "WSet_SF", 0), (704, "WSetEna", 0)):
            self.set(model, name, value)

    def set(self, model: int, name: str, value: int) -> None:
        located = self.map.find(model, name)
        self.put("holding", located.address, located.point.encode(value)[0])

    def accept(self, address: int, words: list[int]) -> int | None:
        self.put("holding", address, words)
        return None

    def action(self, ctx: Any) -> Any:
        return [0.0]

    def publish(self) -> None:
        pass


def test_a_scale_factor_that_is_not_static_is_read_with_its_value(servers, devices, ctx) -> None:
    # model 103's W_SF is not static (pysunspec2 does not mark it "S"): read once at the scan, an inverter that
    # rescaled (W 3000 · 10^0 -> 300 · 10^1, the same 3 kW) read as 300 W
    unit = ImageUnit()
    server = ModbusServer({1: unit}).start()
    servers.append(server)
    device = client(server.port, devices, soc=False, p_min_mw=-0.005, p_max_mw=0.005)
    device.step([0.003], ctx)
    assert device.p_mw == pytest.approx(0.003) and device.comm_ok, device.last_error
    assert "p" in device.points.scales and device.points.exponents["setpoint"] == 0  # 704's WSet_SF is static
    with server.lock:
        unit.set(103, "W_SF", 1)
        unit.set(103, "W", 300)
    device.step([0.003], ctx)
    assert device.p_mw == pytest.approx(0.003) and device.comm_ok, device.last_error
    with server.lock:
        unit.put("holding", unit.map.find(103, "W_SF").address, [0x8000])
    device.step([0.003], ctx)
    assert kinds(device) == [("read", "p", NOT_AVAILABLE)]
    assert device.last_error == "p: not_available (scale factor W_SF not implemented (0x8000))"


def test_yield_an_override_is_noted_once_and_nothing_written_until_it_ends(servers, devices, ctx) -> None:
    # another client (a utility's curtailment) clearing WSetEna before each step: the device re-enabled it every
    # step, 20 'overridden' faults and safety 20 in 20 steps (override_fight.py), fighting the other controller
    server = sunspec_server(servers)
    device = client(server.port, devices)
    enable = server.unit.located(704, "WSetEna").address
    device.step([-0.2], ctx)
    server.step()
    other = ModbusLink("127.0.0.1", server.port)
    try:
        noted = []
        for _ in range(5):
            other.write_words(enable, [0])
            server.step()
            device.step([-0.2], ctx)
            noted += kinds(device)
            assert device.comm_ok and device.safety == 0.0 and device.yielded
            assert device.p_mw == 0.0  # measured: the other controller's curtailment is what the grid sees
        assert noted == [("write", "setpoint", "yielded")] and server.raw("holding", enable) == 0
        writes = server.stats["writes"]
        device.step([-0.2], ctx)
        assert server.stats["writes"] == writes  # nothing written while yielded
        other.write_words(enable, [1])  # the other controller hands the setpoint back
    finally:
        other.close()
    device.step([-0.2], ctx)
    assert kinds(device) == [("write", "setpoint", "resumed")] and device.comm_ok and not device.yielded
    device.step([0.1], ctx)
    server.step()
    assert server.device.p_mw == pytest.approx(0.1) and device.state_dict()["yielded"] == 0.0
    another_controller_writes(server.port, enable, 0)
    device.step([0.1], ctx)
    assert device.yielded
    device.reset(np.random.default_rng(1))  # a reset takes the setpoint back, with a notice (it was silent)
    assert device.yielded  # until the controls are read: the other controller still has the setpoint
    device.step([0.2], ctx)
    assert kinds(device) == [("write", "setpoint", "taken_back")] and device.comm_ok and not device.yielded
    assert device.info()["comm"][0]["detail"] == ("read WSetEna = 0 after a reset or a reconnection while another "
                                                  "controller had the setpoint: written 1")
    server.step()
    assert server.raw("holding", enable) == 1 and server.device.p_mw == pytest.approx(0.2) and not device.yielded
    another_controller_writes(server.port, enable, 0)
    device.step([0.2], ctx)
    assert device.yielded
    device.close()  # a reconnection (and its rescan) takes it back too
    device.step([0.2], ctx)
    assert kinds(device) == [("write", "setpoint", "taken_back")] and server.raw("holding", enable) == 1


class FixedModeUnit(ImageUnit):
    """Reads WSetMod = 1 (watts) and refuses any write to it (exception 2), as a fixed-mode DER."""

    def __init__(self) -> None:
        super().__init__()
        self.set(704, "WSetMod", 1)
        self.mode = self.map.find(704, "WSetMod").address

    def accept(self, address: int, words: list[int]) -> int | None:
        if address <= self.mode < address + len(words):
            return 2
        return super().accept(address, words)


@pytest.mark.parametrize("on_override", ["yield", "rewrite"])
def test_a_fixed_mode_der_gets_wset_and_wsetena_without_a_wsetmod_write(servers, devices, ctx, on_override) -> None:
    # WSetEna, WSetMod and WSet went in one request: a DER refusing WSetMod writes failed every step
    # ("write 40092+4: exception response 2") and never got its setpoint (wsetmod_refused.py)
    unit = FixedModeUnit()
    server = ModbusServer({1: unit}).start()
    servers.append(server)
    device = client(server.port, devices, soc=False, p_min_mw=-0.005, p_max_mw=0.005, on_override=on_override)
    enable, wset = unit.map.find(704, "WSetEna"), unit.map.find(704, "WSet")
    device.step([0.003], ctx)
    assert device.comm_ok, device.last_error
    assert unit.words("holding", enable.address, 1) == [1] and unit.words("holding", wset.address, 2) == [0, 3000]
    with server.lock:
        unit.set(704, "WSetEna", 0)  # cleared by another controller
    device.step([0.002], ctx)
    if on_override == "rewrite":  # WSetEna written again alone, without the refused WSetMod
        assert kinds(device) == [("write", "setpoint", "overridden")]
        assert device.last_error == "read back WSetEna = 0 (written 1): written again"
        assert unit.words("holding", enable.address, 1) == [1]
        device.step([0.002], ctx)
        assert device.comm_ok and unit.words("holding", wset.address, 2) == [0, 2000], device.last_error
    else:
        assert kinds(device) == [("write", "setpoint", "yielded")] and device.comm_ok


def test_yielded_a_setpoint_beyond_wset_is_no_fault_and_notices_name_only_the_points_there(servers, devices, ctx) -> None:
    # while yielded nothing is written, yet a setpoint WSet could not hold was an out_of_range fault (safety 1); the
    # notices named WSetMod on equipment that leaves it "not implemented" (ImageUnit: no WSetMod)
    unit = ImageUnit()
    unit.set(704, "WSet_SF", -4)  # WSet int32 · 10^-4 W: at most 214,748 W
    server = ModbusServer({1: unit}).start()
    servers.append(server)
    device = client(server.port, devices, soc=False)
    assert device.plausible_mw > 0.003 and device.params.p_max_mw * 1e6 > (2**31 - 1) * 1e-4  # 0.3 MW does not fit
    device.step([0.1], ctx)
    assert device.comm_ok and device.points.mode is None, device.last_error
    with server.lock:
        unit.set(704, "WSetEna", 0)  # another controller takes the setpoint
    device.step([0.1], ctx)
    assert kinds(device) == [("write", "setpoint", "yielded")] and device.yielded
    assert device.info()["comm"][0]["detail"].endswith("nothing written until WSetEna reads 1 again")
    device.step([0.3], ctx)  # does not fit WSet, but nothing is written
    assert kinds(device) == [] and device.comm_ok and device.safety == 0.0
    with server.lock:
        unit.set(704, "WSetEna", 1)  # handed back
    device.step([0.3], ctx)  # still nothing written at this step: the notice only
    assert kinds(device) == [("write", "setpoint", "resumed")] and device.comm_ok and device.safety == 0.0
    assert device.info()["comm"][0]["detail"] == "WSetEna reads 1 again: the setpoint is written from the next step"
    device.step([0.3], ctx)  # written, clamped: a fault
    assert kinds(device) == [("write", "setpoint", CLAMPED)] and not device.comm_ok and device.safety == 1.0


def test_a_refused_wset_write_names_the_points_and_still_measures(servers, devices, ctx) -> None:
    # a PV inverter: model 704 with WMaxLimPct only (WSet "not implemented", not writable). Each step was
    # 'write 40299: exception response 2' and P was never read (p 0 MW at 0.24 MW produced; pv_wset.py)
    from powergrid.devices import StepContext
    from powergrid_devices.solar import PV

    pv = PV(build_params(PV.Params, {"p_max_mw": 0.3}), 0.25)
    pv.reset(np.random.default_rng(0))
    sunny = StepContext(dt_h=0.25, profiles={"solar": np.array([0.8])})
    server = SimulatedDeviceServer(pv, unit=SunSpecUnit(pv, name="pv"), ctx=sunny, reset=False).start()
    servers.append(server)
    server.step()
    device = client(server.port, devices, soc=False, p_min_mw=0.0)
    device.step([0.1], ctx)
    assert kinds(device) == [("write", "setpoint", "exception")] and not device.comm_ok
    enable = server.unit.located(704, "WSetEna").address  # reads "not implemented": written first, alone
    assert device.last_error == f"WSetEna refused: write {enable}: exception response 2 (illegal data address)"
    assert device.p_mw == pytest.approx(0.24)

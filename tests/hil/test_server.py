"""The safe Modbus server driven by a plain pymodbus client, as an outside controller would."""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from pymodbus.client import ModbusTcpClient

from powergrid_hil.server import SimulatedDeviceServer
from tests.hil.conftest import make_device, make_ess

BUSY, ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE, NO_TARGET = 6, 1, 2, 3, 0x0B


@pytest.fixture
def client_for():
    clients: list[ModbusTcpClient] = []

    def make(server: SimulatedDeviceServer) -> ModbusTcpClient:
        client = ModbusTcpClient("127.0.0.1", port=server.port, timeout=1.0, retries=0)
        clients.append(client)
        assert client.connect()
        return client

    yield make
    for client in clients:
        client.close()


def test_writes_never_step_the_device(servers, client_for) -> None:
    ess = make_ess()
    server = SimulatedDeviceServer(ess, max_writes_per_s=1e9).start()
    servers.append(server)
    client = client_for(server)
    soc = ess.soc
    for i in range(300):  # the break test: a flood of writes
        assert not client.write_register(0, 100 + i % 50, device_id=1).isError()
    assert server.steps == 0 and ess.soc == soc and ess.p_mw == 0.0
    assert client.read_input_registers(0, count=3).registers[0] == 0  # still the state before any step
    assert server.unit.setpoint_mw == pytest.approx((100 + 299 % 50) / 1000)
    server.step()  # the last setpoint takes effect at the next step, once
    assert server.steps == 1 and ess.p_mw == pytest.approx(0.149) and ess.soc < soc
    p, q, soc_word = client.read_input_registers(0, count=3).registers
    assert p == 149 and q == 0 and soc_word == round(ess.soc / 1e-4)


def test_only_writable_registers_of_configured_units(servers, client_for) -> None:
    server = SimulatedDeviceServer(make_ess(), unit_id=7).start()
    servers.append(server)
    client = client_for(server)
    assert not client.write_register(0, 200, device_id=7).isError()
    assert client.write_register(0, 200, device_id=1).exception_code == NO_TARGET  # not a configured unit
    assert client.read_holding_registers(0, count=1, device_id=3).exception_code == NO_TARGET
    assert client.write_registers(0, [200, 5], device_id=7).exception_code == ILLEGAL_ADDRESS  # 1 is not mapped
    assert client.read_input_registers(50, count=1, device_id=7).exception_code == ILLEGAL_ADDRESS
    assert client.write_register(0, 0x8000, device_id=7).exception_code == ILLEGAL_VALUE  # "not available"
    assert server.unit.setpoint_mw == pytest.approx(0.2)
    assert server.stats["unknown_unit"] == 2 and server.stats["bad_value"] == 1


def test_an_unknown_unit_is_refused_at_every_address(servers, client_for) -> None:
    # only address 0 count 1 got 0x0B: elsewhere pymodbus answered 2 (illegal address) from the catch-all unit's
    # one-register tables before the server's policy saw the request, uncounted (r41b F2: a SunSpec scan at 40000)
    server = SimulatedDeviceServer(make_ess(), unit_id=7).start()
    servers.append(server)
    client = client_for(server)
    assert client.read_holding_registers(40000, count=2, device_id=9).exception_code == NO_TARGET  # a SunSpec scan
    assert client.read_holding_registers(40000, count=2, device_id=0).exception_code == NO_TARGET
    assert client.read_input_registers(100, count=1, device_id=9).exception_code == NO_TARGET
    assert client.write_registers(40002, [1, 2], device_id=9).exception_code == NO_TARGET
    assert client.write_register(65535, 1, device_id=9).exception_code == NO_TARGET
    assert client.read_coils(300, count=8, device_id=9).exception_code == NO_TARGET
    assert server.stats["unknown_unit"] == 6 and server.stats["writes"] == 0
    assert client.read_holding_registers(40000, count=2, device_id=7).exception_code == ILLEGAL_ADDRESS  # served unit


def test_read_only_mode_refuses_every_write(servers, client_for) -> None:
    server = SimulatedDeviceServer(make_ess(), read_only=True).start()
    servers.append(server)
    client = client_for(server)
    assert client.write_register(0, 200, device_id=1).exception_code == ILLEGAL_FUNCTION
    assert client.read_holding_registers(0, count=1, device_id=1).registers == [0]
    assert server.unit.setpoint_mw == 0.0 and server.stats["read_only"] == 1


def test_writes_are_rate_limited(servers, client_for) -> None:
    server = SimulatedDeviceServer(make_ess(), max_writes_per_s=5).start()
    servers.append(server)
    client = client_for(server)
    started = time.monotonic()
    codes = [getattr(client.write_register(0, 10 * i, device_id=1), "exception_code", 0) for i in range(40)]
    elapsed = time.monotonic() - started
    accepted = codes.count(0)
    assert set(codes) <= {0, BUSY} and codes.count(BUSY) == server.stats["rate_limited"] > 0
    assert 1 <= accepted <= 5 + 5 * elapsed + 1  # the bucket: 5 at once, then 5 per second
    assert server.stats["writes"] == accepted


def test_a_rate_below_one_write_per_second_still_accepts_writes(servers, client_for) -> None:
    # at 0.5 writes per second the bucket never held a whole token: every write was refused (exception 6), forever
    server = SimulatedDeviceServer(make_ess(), max_writes_per_s=0.5).start()
    servers.append(server)
    client = client_for(server)
    codes = [getattr(client.write_register(0, 10 * i, device_id=1), "exception_code", 0) for i in range(3)]
    assert codes == [0, BUSY, BUSY] and server.stats["writes"] == 1


def test_clients_outside_the_allow_list_are_disconnected(servers, client_for) -> None:
    server = SimulatedDeviceServer(make_ess(), allow=["10.0.0.0/8"]).start()
    servers.append(server)
    client = ModbusTcpClient("127.0.0.1", port=server.port, timeout=0.5, retries=0)
    try:
        client.connect()
        with pytest.raises(Exception):  # noqa: B017 - the connection is dropped at once: any I/O error
            response = client.read_input_registers(0, count=1, device_id=1)
            assert response.isError()
            raise ConnectionError(str(response))
    finally:
        client.close()
    assert server.stats["refused_clients"] >= 1 and server.stats["reads"] == 0
    assert server.allowed("10.1.2.3") and not server.allowed("127.0.0.1") and not server.allowed("not-an-ip")
    assert SimulatedDeviceServer(make_ess()).allowed("::ffff:127.0.0.1")  # IPv4-mapped localhost


def test_start_stop_is_idempotent_and_a_busy_port_raises(servers) -> None:
    server = SimulatedDeviceServer(make_ess()).start()
    servers.append(server)
    assert server.start() is server  # already running
    other = SimulatedDeviceServer(make_ess(), port=server.port)
    servers.append(other)
    with pytest.raises(OSError):
        other.start()
    assert not other.running
    server.stop()
    server.stop()
    assert not server.running


def test_a_failing_model_is_recorded_and_the_server_keeps_serving(servers, client_for) -> None:
    class Broken(type(make_ess())):
        def step(self, action, ctx):
            raise RuntimeError("model diverged")

    server = SimulatedDeviceServer(Broken(make_ess().params, 0.25)).start()
    servers.append(server)
    client = client_for(server)
    assert not client.write_register(0, 100, device_id=1).isError()
    server.step()
    assert server.errors == ["RuntimeError: model diverged"] and server.steps == 0 and server.running
    assert client.read_input_registers(0, count=1, device_id=1).registers == [0]


def test_rtu_frames_over_tcp(servers, devices, ctx) -> None:
    server = SimulatedDeviceServer(make_ess(), framer="rtu").start()
    servers.append(server)
    device = make_device(server.port, framer="rtu")
    devices.append(device)
    device.step([-0.12], ctx)
    server.step()
    device.step([-0.12], ctx)
    assert device.comm_ok, device.last_error
    assert device.p_mw == pytest.approx(-0.12) and device.soc == pytest.approx(server.device.soc, abs=1e-4)



class NullModem:
    """Two pseudo-terminals joined back to back: a serial cable between two programs on one machine."""

    def __init__(self) -> None:
        self.masters, self.slaves = zip(*(os.openpty() for _ in range(2)))
        self.names = [os.ttyname(fd) for fd in self.slaves]
        self.running = True
        self.thread = threading.Thread(target=self._relay, daemon=True)
        self.thread.start()

    def _relay(self) -> None:
        a, b = self.masters
        while self.running:
            ready, _, _ = select.select([a, b], [], [], 0.05)
            for fd in ready:
                os.write(b if fd == a else a, os.read(fd, 4096))

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        for fd in (*self.masters, *self.slaves):
            os.close(fd)


@pytest.fixture
def cable() -> Iterator[NullModem]:
    pair = NullModem()
    yield pair
    pair.close()


def test_rtu_over_a_serial_line(cable, servers, devices, ctx) -> None:
    server = SimulatedDeviceServer(make_ess(), serial_port=cable.names[0], baudrate=115200).start()
    servers.append(server)
    device = make_device(1, serial_port=cable.names[1], baudrate=115200)
    devices.append(device)
    device.step([0.21], ctx)
    server.step()
    device.step([0.21], ctx)
    assert device.comm_ok, device.last_error
    assert device.p_mw == pytest.approx(0.21) and server.unit.setpoint_mw == pytest.approx(0.21)


def test_a_missing_serial_port_is_named_in_the_error(tmp_path) -> None:
    # the error named the TCP address that was never used: "Modbus server on 127.0.0.1:0 failed to start"
    missing = str(tmp_path / "ttyUSB9")
    with pytest.raises(OSError, match=f"Modbus server on serial port {missing} failed to start"):
        SimulatedDeviceServer(make_ess(), serial_port=missing).start()


def test_a_unit_failing_to_make_the_action_is_recorded_too(servers) -> None:
    # a served PV whose cap WMaxLimPct needs the available power, with no solar profile: the KeyError escaped step()
    import numpy as np

    from powergrid.params import build_params
    from powergrid_devices.solar import PV
    from powergrid_hil.sunspec_unit import SunSpecUnit

    pv = PV(build_params(PV.Params, {"p_max_mw": 0.3}), 0.25)
    pv.reset(np.random.default_rng(0))
    unit = SunSpecUnit(pv, name="pv")
    server = SimulatedDeviceServer(pv, unit=unit, reset=False).start()  # no profiles
    servers.append(server)
    enable = unit.located(704, "WMaxLimPctEna").address
    assert unit.accept(enable, [1]) is None  # cap enabled (0 %)
    server.step()
    assert server.errors and server.errors[0].startswith("KeyError") and server.steps == 0 and server.running


def sunspec_ess(servers, **params):
    """A battery (±0.3 MW unless told) served as a SunSpec unit at unit 1, and where its WSetEna and WSet are."""
    from powergrid_hil.sunspec_unit import SunSpecUnit

    ess = make_ess(**params)
    ess.reset(np.random.default_rng(0))
    unit = SunSpecUnit(ess, name="bess")
    server = SimulatedDeviceServer(ess, unit=unit, reset=False, max_writes_per_s=1e6).start()
    servers.append(server)
    return server, ess, unit.located(704, "WSetEna").address, unit.located(704, "WSet").address


def int32_words(value: int) -> list[int]:
    raw = value & 0xFFFFFFFF
    return [raw >> 16, raw & 0xFFFF]


def test_a_write_to_part_of_a_multi_word_point_is_refused(servers, client_for) -> None:
    # r44c F4: one word of the 32-bit WSet was accepted and applied with the other word left as it was: after -250 kW,
    # a write of 0x0000 to the high word gave a setpoint of 19.84 W, of the low word 4.66 W (WSet_SF -3: 1 count = 1 mW)
    server, ess, ena, wset = sunspec_ess(servers)
    client = client_for(server)
    assert not client.write_register(ena, 1, device_id=1).isError()
    assert not client.write_registers(wset, int32_words(-250_000_000), device_id=1).isError()  # -250 kW in mW
    assert client.write_register(wset, 0, device_id=1).exception_code == ILLEGAL_ADDRESS  # the high word only
    assert client.write_register(wset + 1, 0, device_id=1).exception_code == ILLEGAL_ADDRESS  # the low word only
    assert client.write_registers(wset - 1, [1, 0], device_id=1).exception_code == ILLEGAL_ADDRESS  # WSetMod + high
    assert client.read_holding_registers(wset, count=2, device_id=1).registers == int32_words(-250_000_000)
    assert server.stats["partial_point"] == 3
    server.step()
    assert ess.p_mw == pytest.approx(-0.25)
    # a plain map's 32-bit setpoint too
    from powergrid_hil.registers import RegisterMap

    plain = SimulatedDeviceServer(make_ess(), registers=RegisterMap.from_mapping(
        {"setpoint": {"address": 100, "type": "int32", "scale": 0.001, "access": "RW"}})).start()
    servers.append(plain)
    other = client_for(plain)
    assert not other.write_registers(100, int32_words(-120), device_id=1).isError()
    assert other.write_register(101, 5, device_id=1).exception_code == ILLEGAL_ADDRESS
    plain.step()
    assert plain.device.p_mw == pytest.approx(-0.12)


def test_a_wset_beyond_the_device_s_range_is_refused(servers, client_for) -> None:
    # r44c F5: WSet = 10 MW on a 0.5 MW battery was accepted, read back 10 MW, and the device ran at its rating
    server, ess, ena, wset = sunspec_ess(servers)
    client = client_for(server)
    assert not client.write_register(ena, 1, device_id=1).isError()
    for watts in (300_000, -300_000, 100_000):  # the rating in both directions, then a value inside
        assert not client.write_registers(wset, int32_words(watts * 1000), device_id=1).isError()
    for watts in (10_000_000, 300_001, -300_001):
        assert client.write_registers(wset, int32_words(watts * 1000), device_id=1).exception_code == ILLEGAL_VALUE
    assert client.read_holding_registers(wset, count=2, device_id=1).registers == int32_words(100_000_000)
    server.step()
    assert ess.p_mw == pytest.approx(0.1)

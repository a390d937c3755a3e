"""SimulatedDeviceServer driven by a plain pymodbus client, as an outside controller would."""

from __future__ import annotations

import pytest
from pymodbus.client import ModbusTcpClient

from powergrid_hil.server import SimulatedDeviceServer
from tests.hil.conftest import make_ess


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


def test_write_steps_the_device_and_inputs_show_its_state(servers, client_for) -> None:
    ess = make_ess()
    with SimulatedDeviceServer(ess) as server:
        assert server.running and server.port > 0
        client = client_for(server)
        assert not client.write_register(0, 200, device_id=7).isError()  # 0.2 MW discharge, any unit id
        assert server.steps == 1 and ess.p_mw == pytest.approx(0.2)
        assert client.read_holding_registers(0, count=1).registers == [200]
        p, q, soc = client.read_input_registers(0, count=3).registers
        assert p == 200 and q == 0 and soc == round(ess.soc / 1e-4)
        assert client.write_register(0, 0x10000 - 300).isError() is False  # charge at 0.3 MW
        assert client.read_input_registers(0, count=1).registers == [0x10000 - 300]
        assert client.read_input_registers(50, count=1).isError()  # outside the map: illegal address
    assert not server.running


def test_manual_mode_steps_on_demand(servers, client_for) -> None:
    server = SimulatedDeviceServer(make_ess(), step_on="manual").start()
    servers.append(server)
    client = client_for(server)
    client.write_register(0, 100)
    assert server.steps == 0 and client.read_input_registers(0, count=1).registers == [0]
    server.step()
    assert client.read_input_registers(0, count=1).registers == [100]


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


def test_cli_serves_a_scenario_device(configs_dir, capsys) -> None:
    from powergrid_hil.cli import main

    assert main(["serve", str(configs_dir / "cigre_mv_microgrid.yaml"), "mg1_ess", "--port", "0", "--duration", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "serving mg1_ess (ESS) on 127.0.0.1:" in out
    assert main(["serve", str(configs_dir / "cigre_mv_microgrid.yaml"), "mg1", "--duration", "0.1"]) == 2

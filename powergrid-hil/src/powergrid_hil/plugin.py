"""Entry-point plugin of powergrid-hil (factories are lazy strings: pymodbus loads only when used)."""

from __future__ import annotations

from powergrid import PluginRecord, hookimpl


@hookimpl
def powergrid_register_devices() -> list[PluginRecord]:
    return [
        PluginRecord("ModbusDevice", "powergrid_hil.device:ModbusDevice",
                     "real device over Modbus TCP: writes a P setpoint, reads measured P/Q/SOC"),
    ]


@hookimpl
def powergrid_register_commands() -> list[PluginRecord]:
    return [PluginRecord("hil", "powergrid_hil.cli:main", "hil serve CONFIG AGENT --port P: serve a scenario device over Modbus TCP")]

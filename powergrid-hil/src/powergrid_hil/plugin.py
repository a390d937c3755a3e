"""Entry-point plugin of powergrid-hil (factories are lazy strings: pymodbus loads only when used)."""

from __future__ import annotations

from powergrid import PluginRecord, hookimpl


@hookimpl
def powergrid_register_devices() -> list[PluginRecord]:
    return [
        PluginRecord("ModbusDevice", "powergrid_hil.device:ModbusDevice",
                     "real device over Modbus (register map): writes a P setpoint, reads measured P/Q/SOC"),
        PluginRecord("SunSpecDevice", "powergrid_hil.sunspec_device:SunSpecDevice",
                     "SunSpec DER over Modbus: scans its models, writes WSet (704), reads W/Var (701) and SoC"),
    ]


@hookimpl
def powergrid_register_commands() -> list[PluginRecord]:
    return [PluginRecord("hil", "powergrid_hil.cli:main",
                         "hil serve CONFIG [--port P] [--speedup X]: serve every device of a scenario over Modbus")]

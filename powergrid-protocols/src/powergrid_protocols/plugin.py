"""Entry-point plugin of powergrid-protocols."""

from __future__ import annotations

from powergrid import PluginRecord, hookimpl


@hookimpl
def powergrid_register_protocols() -> list[PluginRecord]:
    return [
        PluginRecord("price_signal", "powergrid_protocols.vertical:PriceSignal", "broadcast a price to children"),
        PluginRecord("setpoint", "powergrid_protocols.vertical:Setpoint", "split the parent's action into child setpoints"),
    ]

"""Entry-point plugin of powergrid-devices."""

from __future__ import annotations

from powergrid import PluginRecord, hookimpl


@hookimpl
def powergrid_register_devices() -> list[PluginRecord]:
    return [
        PluginRecord("ESS", "powergrid_devices.storage:ESS", "battery: SOC with charge/discharge efficiency"),
        PluginRecord("DG", "powergrid_devices.generator:DG", "dispatchable generator, quadratic fuel cost"),
        PluginRecord("PV", "powergrid_devices.solar:PV", "PV unit driven by a solar profile, curtailable"),
        PluginRecord("GridConnection", "powergrid_devices.grid_connection:GridConnection",
                     "import/export at the point of common coupling at a price"),
    ]

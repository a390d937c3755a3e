"""Entry-point plugin of powergrid-devices."""

from __future__ import annotations

from powergrid import PluginRecord, hookimpl

_M = "powergrid_devices"


@hookimpl
def powergrid_register_devices() -> list[PluginRecord]:
    return [
        PluginRecord("ESS", f"{_M}.storage:ESS", "battery: SOC, charge/discharge efficiency, self-discharge, P/Q inverter"),
        PluginRecord("DG", f"{_M}.generator:DG", "dispatchable generator: fuel cost, ramps, unit commitment, PF-limited Q"),
        PluginRecord("PV", f"{_M}.solar:PV", "PV from a solar profile or irradiance, curtailable, inverter Q"),
        PluginRecord("Wind", f"{_M}.wind:Wind", "wind turbine: power curve from wind speed or a profile, curtailable"),
        PluginRecord("Shunt", f"{_M}.shunt:Shunt", "switched capacitor/reactor bank, discrete steps"),
        PluginRecord("OLTC", f"{_M}.oltc:OLTC", "on-load tap changer of a transformer, discrete taps"),
        PluginRecord("GridConnection", f"{_M}.grid_connection:GridConnection",
                     "import/export at the point of common coupling at a price"),
        PluginRecord("FlexibleLoad", f"{_M}.flexible_load:FlexibleLoad", "curtailable and shiftable demand, discomfort cost"),
        PluginRecord("HVAC", f"{_M}.hvac:HVAC", "first-order RC building, heating/cooling, comfort band"),
        PluginRecord("EVCharger", f"{_M}.ev_charger:EVCharger", "EV ports: seeded sessions, energy by departure, V2G"),
        PluginRecord("Electrolyzer", f"{_M}.electrolyzer:Electrolyzer", "hydrogen from power, efficiency curve, tank"),
        PluginRecord("FuelCell", f"{_M}.fuel_cell:FuelCell", "power from hydrogen, efficiency curve, tank"),
        PluginRecord("HeatPump", f"{_M}.heat_pump:HeatPump", "heat pump, COP from temperatures, buffer store"),
        PluginRecord("WaterHeater", f"{_M}.water_heater:WaterHeater", "electric tank water heater with a draw profile"),
        PluginRecord("CHP", f"{_M}.chp:CHP", "combined heat and power with fuel cost and backup boiler"),
    ]


@hookimpl
def powergrid_register_policies() -> list[PluginRecord]:
    return [
        PluginRecord("mppt", f"{_M}.policies:MPPT", "PV/Wind at maximum power"),
        PluginRecord("price_arbitrage", f"{_M}.policies:PriceArbitrage", "ESS: charge when cheap, discharge when dear"),
        PluginRecord("thermostat", f"{_M}.policies:Thermostat", "HVAC/heat pump/water heater bang-bang with deadband"),
    ]

"""Names that first-party packs provide, so an unknown name can say which pack to install.

A contract test checks this table against what the packs actually register.
"""

from __future__ import annotations

FIRST_PARTY: dict[str, dict[str, tuple[str, ...]]] = {
    "powergrid-devices": {
        "device": (
            "ESS", "DG", "PV", "Wind", "Shunt", "OLTC", "GridConnection", "FlexibleLoad",
            "HVAC", "EVCharger", "Electrolyzer", "FuelCell", "HeatPump", "WaterHeater", "CHP",
        ),
        "policy": ("mppt", "price_arbitrage", "thermostat"),
    },
    "powergrid-protocols": {
        "protocol": (
            "price_signal", "setpoint", "reserve", "p2p_trading", "consensus", "admm",
            "droop", "volt_var", "lmp_market", "ideal", "lossy",
        ),
    },
    "powergrid-datasets": {
        "dataset": ("caiso", "caiso_2023", "ercot", "nyiso", "simbench", "pvlib", "synthetic"),
        "command": ("datasets",),
    },
    "powergrid-hil": {
        "device": ("ModbusDevice", "SunSpecDevice"),
        "command": ("hil",),
    },
}


def provider_of(kind: str, name: str) -> str | None:
    """The first-party distribution that provides ``name`` of ``kind``, if any."""
    for dist, kinds in FIRST_PARTY.items():
        if name in kinds.get(kind, ()):
            return dist
    return None


def first_party_names(kind: str) -> list[str]:
    """Every name of ``kind`` the first-party packs provide."""
    return [name for kinds in FIRST_PARTY.values() for name in kinds.get(kind, ())]

"""The pack's pluggy hooks: seven dataset providers and the ``datasets`` CLI command."""

from __future__ import annotations

from powergrid import PluginRecord, hookimpl

DATASETS = (
    ("caiso", "providers:CaisoProvider", "CAISO OASIS load, LMP and solar/wind (files or download)"),
    ("caiso_2023", "embedded:Caiso2023Provider", "real CAISO 2023 hourly load, day-ahead LMP, solar, wind (shipped, offline)"),
    ("ercot", "providers:ErcotProvider", "ERCOT native load and DAM settlement point prices (files)"),
    ("nyiso", "providers:NyisoProvider", "NYISO real-time load and LBMP (files)"),
    ("simbench", "providers:SimbenchProvider", "SimBench 15-min load/PV/wind profiles (needs simbench)"),
    ("pvlib", "providers:PvlibProvider", "clear-sky PV output at a site (needs pvlib)"),
    ("synthetic", "providers:SyntheticProvider", "seeded synthetic load/solar/wind/price/temperature, no files"),
)


@hookimpl
def powergrid_register_datasets() -> list[PluginRecord]:
    return [PluginRecord(name, f"powergrid_datasets.{target}", summary) for name, target, summary in DATASETS]


@hookimpl
def powergrid_register_commands() -> list[PluginRecord]:
    return [PluginRecord("datasets", "powergrid_datasets.cli:main", "list, describe and plot dataset providers")]

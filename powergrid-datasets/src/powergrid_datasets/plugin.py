"""The pack's pluggy hooks: six dataset providers and the ``datasets`` CLI command."""

from __future__ import annotations

from powergrid import PluginRecord, hookimpl

DATASETS = (
    ("caiso", "CaisoProvider", "CAISO OASIS load, LMP and solar/wind (files or download)"),
    ("ercot", "ErcotProvider", "ERCOT native load and DAM settlement point prices (files)"),
    ("nyiso", "NyisoProvider", "NYISO real-time load and LBMP (files)"),
    ("simbench", "SimbenchProvider", "SimBench 15-min load/PV/wind profiles (needs simbench)"),
    ("pvlib", "PvlibProvider", "clear-sky PV output at a site (needs pvlib)"),
    ("synthetic", "SyntheticProvider", "seeded synthetic load/solar/wind/price/temperature, no files"),
)


@hookimpl
def powergrid_register_datasets() -> list[PluginRecord]:
    return [PluginRecord(name, f"powergrid_datasets.providers:{cls}", summary) for name, cls, summary in DATASETS]


@hookimpl
def powergrid_register_commands() -> list[PluginRecord]:
    return [PluginRecord("datasets", "powergrid_datasets.cli:main", "list, describe and plot dataset providers")]

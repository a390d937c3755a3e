"""SimBench's 15-minute load, PV and wind profiles, read from the CSVs the ``simbench`` package ships.

The ``simbench`` distribution (optional extra ``powergrid-datasets[simbench]``)
contains the complete data set as semicolon-separated CSVs
(``networks/1-complete_data-mixed-all-2-sw/``): ``LoadProfile.csv`` with
``<profile>_pload`` / ``<profile>_qload`` columns (e.g. ``H0-A``, ``G1-B``,
``L0-A``), and ``RESProfile.csv`` with ``PV1``…``PV8``, ``WP1``…``WP12`` and
others, all relative values (pu) at 15 minutes for the year 2016 (35 136 steps,
``time`` as ``DD.MM.YYYY HH:MM``). The time stamps are German local time: the
spring DST day lacks 02:00–02:45 and the autumn one repeats them, so they are
placed in Europe/Berlin (the repeated quarter hours by their order) and
converted to UTC. Only the requested column is read.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import pandas as pd

from powergrid_datasets.errors import DataFileError, DataUnavailableError
from powergrid_datasets.timeseries import TimeSeries

DATA_FOLDER = "networks/1-complete_data-mixed-all-2-sw"
TZ = "Europe/Berlin"
DEFAULTS = {"load": "H0-A", "solar": "PV3", "wind": "WP4"}


def data_folder() -> Path:
    spec = importlib.util.find_spec("simbench")
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailableError("the simbench provider needs the simbench package: "
                                   "pip install 'powergrid-datasets[simbench]'")
    folder = Path(next(iter(spec.submodule_search_locations))) / DATA_FOLDER
    if not folder.is_dir():
        raise DataUnavailableError(f"{folder}: the simbench package has no profile CSVs here "
                                   f"(simbench layout changed?)")
    return folder


def file_and_column(role: str, profile: str) -> tuple[str, str]:
    if role == "load":
        return "LoadProfile.csv", f"{profile}_pload"
    if role in ("solar", "wind"):
        return "RESProfile.csv", profile
    raise ValueError(f"simbench has load, solar and wind profiles, not {role!r}")


def columns(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return fh.readline().strip().split(";")


@functools.lru_cache(maxsize=8)
def read_profile(role: str, profile: str) -> TimeSeries:
    """One SimBench profile column as a 15-minute :class:`TimeSeries` (pu)."""
    fname, column = file_and_column(role, profile)
    path = data_folder() / fname
    cols = columns(path)
    if column not in cols:
        names = sorted({c.removesuffix("_pload").removesuffix("_qload") for c in cols if c != "time"})
        raise DataFileError(path, f"no profile {profile!r} (available: {', '.join(names)})")
    frame = pd.read_csv(path, sep=";", usecols=["time", column], dtype={column: "float64", "time": "string"})
    index = pd.to_datetime(frame["time"], format="%d.%m.%Y %H:%M").dt.tz_localize(TZ, ambiguous="infer")
    series = pd.Series(frame[column].to_numpy(), index=index, name=profile)
    return TimeSeries.from_frame(series, "pu", step="15min", source=str(path), meta={"profile": profile})

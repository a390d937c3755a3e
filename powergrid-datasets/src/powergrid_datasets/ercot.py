"""ERCOT public report layouts: hourly native load by weather zone, and DAM settlement point prices.

Native load (``Native_Load_YYYY``, hourly), Central Prevailing Time::

    Hour Ending,COAST,EAST,FWEST,NORTH,NCENT,SOUTH,SCENT,WEST,ERCOT
    01/01/2023 01:00,9981.6,1234.5,...
    01/01/2023 24:00,...            <- hour 24 ends at midnight of the next day
    11/05/2023 02:00 DST,...        <- the repeated hour of the autumn DST day (second, in CST)

DAM settlement point prices (``DAMSPNP4190``)::

    Delivery Date,Hour Ending,Repeated Hour Flag,Settlement Point,Settlement Point Price
    11/05/2023,02:00,Y,HB_HOUSTON,23.5    <- Y marks the repeated hour (CST)

Interval starts are ``date + hour_ending - 1 h`` local; the spring DST day has
no hour ending 03:00. The result is a UTC-indexed :class:`TimeSeries`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from powergrid_datasets.errors import DataFileError
from powergrid_datasets.files import files_of_report, numeric, pick_series, read_csv_members, report_check
from powergrid_datasets.timeseries import TimeSeries

TZ = "America/Chicago"
ZONES = ("COAST", "EAST", "FWEST", "NORTH", "NCENT", "SOUTH", "SCENT", "WEST", "ERCOT")
LOAD_COLUMNS = ("Hour Ending",)
SPP_COLUMNS = ("Delivery Date", "Hour Ending", "Settlement Point", "Settlement Point Price")


def detect_report(columns: Sequence[str]) -> str | None:
    cols = set(columns)
    if set(SPP_COLUMNS) <= cols:
        return "spp"
    if "Hour Ending" in cols and cols & set(ZONES):
        return "load"
    return None


def _check(expected: str):
    other_report = report_check(detect_report, "an ERCOT", expected)

    def check(columns: list[str]) -> None:
        other_report(columns)
        if detect_report(columns) is None and expected == "load" and "Hour Ending" in columns:
            raise ValueError(f"no weather-zone column ({', '.join(ZONES)}) in an ERCOT native load file")

    return check


def local_hour_ending_to_utc(dates: pd.Series, hour_ending: pd.Series, repeated: pd.Series, where: object) -> pd.DatetimeIndex:
    """UTC interval starts from local dates, hour-ending numbers (1–24) and the repeated-hour flag."""
    he = pd.to_numeric(hour_ending, errors="coerce")
    day = pd.to_datetime(dates, format="%m/%d/%Y", errors="coerce")
    bad = he.isna() | day.isna() | (he < 1) | (he > 24)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFileError(where, f"bad date/hour ending {dates.iloc[i]!r} {hour_ending.iloc[i]!r} (row {i + 2})")
    start = day + pd.to_timedelta(he - 1, unit="h")
    try:
        local = pd.DatetimeIndex(start).tz_localize(TZ, ambiguous=~repeated.to_numpy(dtype=bool), nonexistent="raise")
    except Exception as exc:  # pytz/zoneinfo NonExistentTimeError
        raise DataFileError(where, f"a local hour that does not exist ({exc})") from None
    return local.tz_convert("UTC")


def read_load_file(path: Path) -> pd.DataFrame:
    """A native load file as a long frame ``time`` (UTC interval start), ``zone``, ``value`` (MW)."""
    raw = read_csv_members(Path(path), required=LOAD_COLUMNS, check_header=_check("load"), dtype={"Hour Ending": "string"})
    he = raw["Hour Ending"].str.strip()
    repeated = he.str.upper().str.endswith("DST")
    stamp = he.str.replace(r"\s*DST$", "", regex=True, case=False)
    parts = stamp.str.split(r"\s+", n=1, expand=True)
    if parts.shape[1] != 2:
        raise DataFileError(path, "Hour Ending must look like 'MM/DD/YYYY HH:MM'")
    hours = parts[1].str.split(":", n=1).str[0]
    time = local_hour_ending_to_utc(parts[0], hours, repeated, path)
    zones = [c for c in raw.columns if c in ZONES]
    frame = pd.DataFrame({z: numeric(raw[z]).to_numpy() for z in zones}, index=time)
    long = frame.rename_axis("time").reset_index().melt(id_vars="time", var_name="zone", value_name="value")
    return long


def read_spp_file(path: Path) -> pd.DataFrame:
    """A DAM settlement point price file as ``time``, ``point``, ``value`` ($/MWh)."""
    raw = read_csv_members(Path(path), required=SPP_COLUMNS, check_header=_check("spp"), dtype="string")
    flag_col = "Repeated Hour Flag" if "Repeated Hour Flag" in raw.columns else "DSTFlag" if "DSTFlag" in raw.columns else None
    repeated = raw[flag_col].str.strip().str.upper().eq("Y") if flag_col else pd.Series(False, index=raw.index)
    hours = raw["Hour Ending"].str.strip().str.split(":", n=1).str[0]
    time = local_hour_ending_to_utc(raw["Delivery Date"].str.strip(), hours, repeated.fillna(False), path)
    return pd.DataFrame({"time": time, "point": raw["Settlement Point"].str.strip().to_numpy(),
                         "value": numeric(raw["Settlement Point Price"]).to_numpy()})


def read_location(location: Path, report: str) -> tuple[pd.DataFrame, str]:
    """Every ERCOT file of ``report`` ("load" or "spp") at ``location`` (file or folder), concatenated."""
    location = Path(location)
    files = files_of_report(location, report, detect_report)
    if not files:
        raise DataFileError(location, f"no ERCOT {report} files here")
    reader = read_load_file if report == "load" else read_spp_file
    return pd.concat([reader(p) for p in files], ignore_index=True), str(location)


def load_series(location: Path, zone: str = "ERCOT") -> TimeSeries:
    frame, source = read_location(location, "load")
    return pick_series(frame, "zone", zone, unit="MW", source=source, what="weather zone", step="1h")


def price_series(location: Path, point: str = "HB_HOUSTON") -> TimeSeries:
    frame, source = read_location(location, "spp")
    return pick_series(frame, "point", point, unit="$/MWh", source=source, what="settlement point", step="1h")

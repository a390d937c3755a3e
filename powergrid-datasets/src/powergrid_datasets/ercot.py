"""ERCOT public report layouts: hourly native load by weather zone, and DAM settlement point prices.

Every layout is read as ERCOT publishes it: a CSV, an ``.xlsx`` workbook (all its
sheets), or a zip holding either. Times are Central Prevailing Time, hour ending.

Native load (``Native_Load_YYYY.zip`` holding ``Native_Load_YYYY.xlsx``, one sheet)::

    Hour Ending,COAST,EAST,FWEST,NORTH,NCENT,SOUTH,SCENT,WEST,ERCOT
    01/01/2023 01:00,8514.6,...
    01/01/2023 24:00,...            <- hour 24 ends at midnight of the next day
    11/05/2023 02:00 DST,...        <- the repeated hour of the autumn DST day (second, in CST)

  A cell may be stored as an Excel date-time instead of text (``Native_Load_2022``
  has one); the 2016 workbook stores them all so, a few milliseconds off the hour,
  with the zones ``FAR_WEST, NORTH_C, SOUTHERN, SOUTH_C`` (read as ``FWEST, NCENT,
  SOUTH, SCENT``), midnight as a bare date, the autumn repeated hour as a second
  equal stamp and the spring hour as clock time (``03:00`` ends 01:00–03:00 CDT).

DAM settlement point prices, hubs and load zones: the yearly workbook (report
NP4-180-ER, ``rpt.00013060…DAMLZHBSPP_YYYY.xlsx``, one sheet per month) and the
daily CSV of every settlement point (NP4-190-CD, ``cdr.00012331…DAMSPNP4190.csv``)::

    Delivery Date,Hour Ending,Repeated Hour Flag,Settlement Point,Settlement Point Price
    11/07/2021,02:00,Y,HB_HOUSTON,28.14     <- Y marks the repeated hour (CST)
    DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag
    11/07/2021,02:00,HB_HOUSTON,28.14,Y     <- the same, daily CSV names

Interval starts are ``date + hour_ending - 1 h`` local; the spring DST day has
no hour ending 03:00. The result is a UTC-indexed :class:`TimeSeries`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from powergrid_datasets.errors import DataFileError
from powergrid_datasets.files import files_of_report, numeric, pick_series, read_csv_members, row_place
from powergrid_datasets.timeseries import TimeSeries

TZ = "America/Chicago"
ZONES = ("COAST", "EAST", "FWEST", "NORTH", "NCENT", "SOUTH", "SCENT", "WEST", "ERCOT")
#: Weather-zone columns of the 2016 native load workbook, by today's name.
OLD_ZONES = {"FAR_WEST": "FWEST", "NORTH_C": "NCENT", "SOUTHERN": "SOUTH", "SOUTH_C": "SCENT"}
SPP_COLUMNS = ("Delivery Date", "Hour Ending", "Settlement Point", "Settlement Point Price")
#: Column names of the daily DAMSPNP4190 CSV, by their name in the yearly workbook.
DAILY_SPP_NAMES = {"DeliveryDate": "Delivery Date", "HourEnding": "Hour Ending", "SettlementPoint": "Settlement Point",
                   "SettlementPointPrice": "Settlement Point Price", "DSTFlag": "Repeated Hour Flag"}
RTM_SPP_COLUMNS = ("Delivery Hour", "Delivery Interval", "Settlement Point Name")


def detect_report(columns: Sequence[str]) -> str | None:
    """``load``, ``spp``, ``rtm`` (15-minute real-time prices, not read) or None."""
    cols = {DAILY_SPP_NAMES.get(c, c) for c in columns}
    if set(SPP_COLUMNS) <= cols:
        return "spp"
    if set(RTM_SPP_COLUMNS) <= cols or {"DeliveryHour", "DeliveryInterval", "SettlementPointName"} <= set(columns):
        return "rtm"
    if "Hour Ending" in cols and cols & (set(ZONES) | set(OLD_ZONES)):
        return "load"
    return None


def _check(expected: str):
    names = {"load": "native load", "spp": "DAM settlement point price"}

    def check(columns: list[str]) -> None:
        found = detect_report(columns)
        if found == "rtm":
            raise ValueError("this is ERCOT's 15-minute real-time settlement point price layout (Delivery Hour, "
                             "Delivery Interval); this reader takes the DAM prices (NP4-180-ER yearly workbook or "
                             "NP4-190-CD daily CSV)")
        if found is not None and found != expected:
            raise ValueError(f"this is an ERCOT {names[found]} report, not {names[expected]}")
        if found is None and expected == "load" and "Hour Ending" in columns:
            raise ValueError(f"no weather-zone column ({', '.join(ZONES)}) in an ERCOT native load file")
        if found is None and expected == "spp":
            raise ValueError(f"expected the columns {', '.join(SPP_COLUMNS)} (yearly workbook) or "
                             f"{', '.join(DAILY_SPP_NAMES)} (daily DAMSPNP4190 CSV)")

    return check


def _starts_utc(end: pd.Series, repeated: np.ndarray, clock: np.ndarray, where: object) -> pd.DatetimeIndex:
    """UTC interval starts from local interval ends (naive), the repeated-hour flag, and whether each end is a
    clock time (a date-time cell) rather than an hour number: only a clock end of 03:00 on the spring day
    starts an hour before a time that does not exist (at 01:00 CST)."""
    start = pd.DatetimeIndex(end - pd.Timedelta(hours=1))
    # clock ends carry no flag: of two equal stamps the second is the repeated hour
    repeated = repeated | (clock & pd.Series(start).duplicated(keep="first").to_numpy())
    out = np.empty(len(start), dtype="datetime64[ns]")
    for mask, nonexistent in ((~clock, "raise"), (clock, pd.Timedelta(hours=-1))):
        if not mask.any():
            continue
        try:
            local = start[mask].tz_localize(TZ, ambiguous=~repeated[mask], nonexistent=nonexistent)
        except Exception as exc:  # pytz/zoneinfo NonExistentTimeError, AmbiguousTimeError
            raise DataFileError(where, f"a local hour that does not exist or is not flagged as repeated ({exc})") from None
        out[mask] = local.tz_convert("UTC").tz_localize(None).to_numpy()
    return pd.DatetimeIndex(out).tz_localize("UTC")


def _bad_row(path: Path, bad: np.ndarray, *cells: pd.Series) -> DataFileError:
    """The error for the first ``bad`` row, naming its file, zip member or sheet, and line or row."""
    i = int(np.flatnonzero(bad)[0])
    where, place = row_place(path, i)
    return DataFileError(where, f"bad date/hour ending {' '.join(repr(c.iloc[i]) for c in cells)} ({place})")


def _hour_number(cell: object) -> object:
    """An hour-ending cell stored as a number, time, duration or date-time, as its hour number 1–24."""
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return cell
    if isinstance(cell, _dt.timedelta):
        return cell.total_seconds() / 3600
    if isinstance(cell, (_dt.time, _dt.datetime)):
        hour = cell.hour + cell.minute / 60 + cell.second / 3600
        return round(hour, 3) or 24  # 00:00 is hour ending 24
    return cell


def _date_text(cell: object) -> object:
    return f"{cell:%m/%d/%Y}" if isinstance(cell, (_dt.date, _dt.datetime)) else cell


def read_load_file(path: Path) -> pd.DataFrame:
    """A native load file as a long frame ``time`` (UTC interval start), ``zone``, ``value`` (MW)."""
    raw = read_csv_members(Path(path), required=("Hour Ending",), check_header=_check("load"), dtype={"Hour Ending": "string"})
    raw = raw.rename(columns=OLD_ZONES)
    cells = raw["Hour Ending"]
    is_text = cells.map(lambda c: isinstance(c, str)).to_numpy(dtype=bool)
    text = cells.where(is_text).astype("string").str.strip()
    repeated = text.str.upper().str.endswith("DST").fillna(False).to_numpy(dtype=bool)
    parts = text.str.replace(r"\s*DST$", "", regex=True, case=False).str.extract(r"^(\d{1,2}/\d{1,2}/\d{4})\s+(\d{1,2}):00$")
    day = pd.to_datetime(parts[0], format="%m/%d/%Y", errors="coerce")
    hour = pd.to_numeric(parts[1], errors="coerce")
    end = day + pd.to_timedelta(hour, unit="h")
    clock = ~is_text
    if clock.any():  # date-time cells: the clock time at the end of the hour (ms jitter rounded away)
        stamps = pd.to_datetime(cells[clock].map(lambda c: c if isinstance(c, (_dt.date, _dt.datetime)) else None), errors="coerce")
        end[clock] = stamps.dt.round("min")
    bad = (end.isna() | (is_text & ((hour < 1) | (hour > 24)).fillna(True))).to_numpy() | (clock & (end.dt.minute != 0).to_numpy())
    if bad.any():
        raise _bad_row(path, bad, cells)
    time = _starts_utc(end, repeated, clock, path)
    zones = [c for c in raw.columns if c in ZONES]
    frame = pd.DataFrame({z: numeric(raw[z], path, z).to_numpy() for z in zones}, index=time)
    return frame.rename_axis("time").reset_index().melt(id_vars="time", var_name="zone", value_name="value")


def _per_value(cells: pd.Series, parse) -> np.ndarray:
    """``parse`` applied once per distinct cell value (a year of prices repeats 365 dates and 24 hours)."""
    codes, distinct = pd.factorize(cells, use_na_sentinel=False)
    return np.asarray(parse(pd.Series(distinct, dtype=object)))[codes]


def read_spp_file(path: Path) -> pd.DataFrame:
    """A DAM settlement point price file (yearly workbook or daily CSV) as ``time``, ``point``, ``value`` ($/MWh)."""
    raw = read_csv_members(Path(path), required=(), check_header=_check("spp"), dtype="string")
    raw = raw.rename(columns=DAILY_SPP_NAMES)
    day = _per_value(raw["Delivery Date"], lambda u: pd.to_datetime(
        u.map(_date_text).astype("string").str.strip(), format="%m/%d/%Y", errors="coerce"))
    he = _per_value(raw["Hour Ending"], lambda u: pd.to_numeric(
        u.map(_hour_number).astype("string").str.strip().str.split(":", n=1).str[0], errors="coerce")).astype(float)
    flags = raw["Repeated Hour Flag"] if "Repeated Hour Flag" in raw.columns else pd.Series("N", index=raw.index)
    repeated = _per_value(flags, lambda u: u.astype("string").str.strip().str.upper().eq("Y").fillna(False)).astype(bool)
    bad = np.isnat(day) | np.isnan(he) | ~((he >= 1) & (he <= 24) & (he % 1 == 0))
    if bad.any():
        raise _bad_row(path, bad, raw["Delivery Date"], raw["Hour Ending"])
    end = pd.Series(day + pd.to_timedelta(he, unit="h").to_numpy())
    time = _starts_utc(end, repeated, np.zeros(len(raw), dtype=bool), path)
    point = _per_value(raw["Settlement Point"], lambda u: u.astype("string").str.strip())
    price = numeric(raw["Settlement Point Price"], path, "Settlement Point Price")
    return pd.DataFrame({"time": time, "point": point, "value": price.to_numpy()})


def read_location(location: Path, report: str) -> tuple[pd.DataFrame, str]:
    """Every ERCOT file of ``report`` ("load" or "spp") at ``location`` (file or folder), concatenated."""
    location = Path(location)
    files = files_of_report(location, report, detect_report)
    if not files:
        raise DataFileError(location, f"no ERCOT {report} files here (.csv, .xlsx or .zip)")
    reader = read_load_file if report == "load" else read_spp_file
    return pd.concat([reader(p) for p in files], ignore_index=True), str(location)


def load_series(location: Path, zone: str = "ERCOT") -> TimeSeries:
    frame, source = read_location(location, "load")
    return pick_series(frame, "zone", zone, unit="MW", source=source, what="weather zone", step="1h")


def price_series(location: Path, point: str = "HB_HOUSTON") -> TimeSeries:
    frame, source = read_location(location, "spp")
    return pick_series(frame, "point", point, unit="$/MWh", source=source, what="settlement point", step="1h")

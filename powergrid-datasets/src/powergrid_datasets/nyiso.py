"""NYISO public CSV layouts (``mis.nyiso.com/public``): real-time load and LBMP by zone.

Real-time load (``YYYYMMDDpal.csv``, 5-minute)::

    "Time Stamp","Time Zone","Name","PTID","Load"
    "11/05/2023 01:55:00","EDT","N.Y.C.",61761,4520.1
    "11/05/2023 01:00:00","EST","N.Y.C.",61761,4400.3   <- the repeated hour, told apart by the zone

LBMP (``YYYYMMDDdamlbmp_zone.csv`` hourly, ``…realtime_zone.csv`` 5-minute)::

    "Time Stamp","Name","PTID","LBMP ($/MWHr)","Marginal Cost Losses ($/MWHr)","Marginal Cost Congestion ($/MWHr)"

Time stamps are Eastern prevailing time. With a ``Time Zone`` column (EST/EDT)
the offset is explicit; without it, the repeated autumn hour is resolved by
row order within each zone (the files list the EDT hour first). Monthly zips of
daily CSVs are read whole. Load time stamps are rounded to the 5-minute grid
(NYISO's readings are occasionally a few seconds off); values landing on the
same slot are averaged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from powergrid_datasets.errors import DataFileError
from powergrid_datasets.files import files_of_report, numeric, pick_series, read_csv_members, report_check
from powergrid_datasets.timeseries import TimeSeries

TZ = "America/New_York"
LOAD_COLUMNS = ("Time Stamp", "Time Zone", "Name", "Load")
LBMP_COLUMNS = ("Time Stamp", "Name", "LBMP ($/MWHr)")
COMPONENTS = {
    "lbmp": "LBMP ($/MWHr)",
    "losses": "Marginal Cost Losses ($/MWHr)",
    "congestion": "Marginal Cost Congestion ($/MWHr)",
}
OFFSETS = {"EST": "-05:00", "EDT": "-04:00"}


def detect_report(columns: Sequence[str]) -> str | None:
    cols = set(columns)
    if "LBMP ($/MWHr)" in cols:
        return "lbmp"
    if "Load" in cols and "Time Stamp" in cols:
        return "load"
    return None


def _with_zone(stamps: pd.Series, zones: pd.Series, where: object) -> pd.Series:
    offsets = zones.str.strip().str.upper().map(OFFSETS)
    if offsets.isna().any():
        bad = zones[offsets.isna()].iloc[0]
        raise DataFileError(where, f"unknown Time Zone {bad!r} (expected EST or EDT)")
    try:
        return pd.to_datetime(stamps.str.strip() + offsets, format="%m/%d/%Y %H:%M:%S%z", utc=True)
    except ValueError:
        try:
            return pd.to_datetime(stamps.str.strip() + offsets, format="%m/%d/%Y %H:%M%z", utc=True)
        except ValueError as exc:
            raise DataFileError(where, f"bad Time Stamp ({exc})") from None


def _prevailing(stamps: pd.Series, names: pd.Series, where: object) -> pd.Series:
    naive = pd.to_datetime(stamps.str.strip(), format="mixed", dayfirst=False, errors="coerce")
    if naive.isna().any():
        raise DataFileError(where, f"bad Time Stamp {stamps[naive.isna()].iloc[0]!r}")
    out = pd.Series(pd.NaT, index=stamps.index, dtype="datetime64[ns, UTC]")
    for _, idx in names.groupby(names, sort=False).groups.items():
        local = pd.DatetimeIndex(naive.loc[idx])
        try:
            out.loc[idx] = local.tz_localize(TZ, ambiguous="infer").tz_convert("UTC")
        except Exception as exc:
            raise DataFileError(where, f"cannot place the local time stamps in {TZ} ({exc})") from None
    return out


def read_load_file(path: Path) -> pd.DataFrame:
    """A real-time load file as ``time`` (UTC, 5-minute grid), ``zone``, ``value`` (MW)."""
    raw = read_csv_members(Path(path), required=LOAD_COLUMNS, check_header=report_check(detect_report, "a NYISO", "load"),
                           dtype={"Time Stamp": "string", "Time Zone": "string", "Name": "string"})
    time = _with_zone(raw["Time Stamp"], raw["Time Zone"], path).dt.round("5min")
    frame = pd.DataFrame({"time": time, "zone": raw["Name"].str.strip(), "value": numeric(raw["Load"])})
    return frame.groupby(["zone", "time"], as_index=False, sort=False)["value"].mean()


def read_lbmp_file(path: Path, component: str = "lbmp") -> pd.DataFrame:
    """An LBMP file as ``time`` (UTC), ``zone``, ``value`` ($/MWh) of ``component`` (lbmp, losses, congestion)."""
    column = COMPONENTS[component]
    raw = read_csv_members(Path(path), required=(*LBMP_COLUMNS, column), check_header=report_check(detect_report, "a NYISO", "lbmp"),
                           dtype={"Time Stamp": "string", "Name": "string", "Time Zone": "string"})
    names = raw["Name"].str.strip()
    if "Time Zone" in raw.columns:
        time = _with_zone(raw["Time Stamp"], raw["Time Zone"], path)
    else:
        time = _prevailing(raw["Time Stamp"], names, path)
    return pd.DataFrame({"time": time, "zone": names, "value": numeric(raw[column])})


def read_location(location: Path, report: str, component: str = "lbmp") -> tuple[pd.DataFrame, str]:
    location = Path(location)
    files = files_of_report(location, report, detect_report)
    if not files:
        raise DataFileError(location, f"no NYISO {report} files here")
    if report == "load":
        parts = [read_load_file(p) for p in files]
    else:
        parts = [read_lbmp_file(p, component) for p in files]
    return pd.concat(parts, ignore_index=True), str(location)


def load_series(location: Path, zone: str = "N.Y.C.") -> TimeSeries:
    frame, source = read_location(location, "load")
    return pick_series(frame, "zone", zone, unit="MW", source=source, what="zone", step="5min")


def price_series(location: Path, zone: str = "N.Y.C.", component: str = "lbmp") -> TimeSeries:
    frame, source = read_location(location, "lbmp", component)
    return pick_series(frame, "zone", zone, unit="$/MWh", source=source, what="zone", step="1h")

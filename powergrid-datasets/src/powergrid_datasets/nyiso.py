"""NYISO public CSV layouts (``mis.nyiso.com/public``): real-time load and zonal LBMP, day-ahead and real-time.

Daily CSVs, or the monthly zips of them (``YYYYMM01<report>_csv.zip``), are read as published.

Real-time load (``pal``: ``YYYYMMDDpal.csv``, 5-minute readings, stamp = start of the interval)::

    "Time Stamp","Time Zone","Name","PTID","Load"
    "11/02/2025 01:55:00","EDT","CAPITL",61757,1076.7329
    "11/02/2025 01:00:00","EST","CAPITL",61757,1065.0978   <- the repeated hour, told apart by the zone

Zonal LBMP, two markets told apart by the file name and checked against its stamps:

* ``DAM``: ``YYYYMMDDdamlbmp_zone.csv``, hourly, stamp = start of the hour;
* ``RT``: ``YYYYMMDDrealtime_zone.csv``, 5-minute, stamp = END of the interval
  (``00:05:00`` … ``00:00:00`` of the next day), plus extra readings off the
  grid when the real-time dispatch ran between its regular times (``01:57:48``).

A file whose name names neither market is DAM when all its stamps are on the hour,
RT otherwise. ``rtlbmp`` (hourly integrated real-time) and ``hamlbmp`` (hour-ahead) are refused::

    "Time Stamp","Name","PTID","LBMP ($/MWHr)","Marginal Cost Losses ($/MWHr)","Marginal Cost Congestion ($/MWHr)"

Time stamps are Eastern prevailing time. With a ``Time Zone`` column (EST/EDT)
the offset is explicit; without it, the repeated autumn hour is resolved by
row order within each zone (the files list the EDT hour first).

5-minute readings are put on the 5-minute grid by one rule: each reading covers
the time from its stamp to the next reading (``pal``: the stamp starts it) or from
the previous reading to its stamp (``RT``: the stamp ends it), and belongs to
exactly one grid interval, the one holding that stamp (``pal``: the interval
starting at or before the stamp; ``RT``: the one ending at or after it). An
interval's value is the mean of its readings weighted by the time each covers
inside that interval; an interval with one on-grid reading keeps it unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from powergrid_datasets.errors import DataFileError
from powergrid_datasets.files import files_of_report, numeric, pick_series, read_csv_members, report_check, row_place
from powergrid_datasets.timeseries import TimeSeries

TZ = "America/New_York"
LOAD_COLUMNS = ("Time Stamp", "Time Zone", "Name", "Load")
LBMP_COLUMNS = ("Time Stamp", "Name", "LBMP ($/MWHr)")
COMPONENTS = {
    "lbmp": "LBMP ($/MWHr)",
    "losses": "Marginal Cost Losses ($/MWHr)",
    "congestion": "Marginal Cost Congestion ($/MWHr)",
}
MARKETS = ("DAM", "RT")
OFFSETS = {"EST": "-05:00", "EDT": "-04:00"}
GRID = pd.Timedelta(minutes=5)


def detect_report(columns: Sequence[str]) -> str | None:
    cols = set(columns)
    if "LBMP ($/MWHr)" in cols:
        return "lbmp"
    if "Load" in cols and "Time Stamp" in cols:
        return "load"
    return None


def market_of_name(path: Path) -> str | None:
    """The LBMP market a file name names (``damlbmp`` → DAM, ``realtime`` → RT), None if it names none."""
    name = Path(path).name.lower()
    for tag, what in (("rtlbmp", "hourly integrated real-time"), ("hamlbmp", "hour-ahead")):
        if tag in name:
            raise DataFileError(path, f"{tag} files ({what} LBMP) are not read: use realtime_zone (market RT, "
                                      "5-minute) or damlbmp_zone (market DAM, hourly)")
    if "damlbmp" in name:
        return "DAM"
    if "realtime" in name:
        return "RT"
    return None


def _bad_cell(path: Path, bad: pd.Series, cells: pd.Series, what: str) -> DataFileError:
    """The error for the first ``bad`` cell: its file, line and value."""
    i = int(bad.to_numpy().argmax())
    where, place = row_place(path, i)
    return DataFileError(where, f"{place}: {what} {cells.iloc[i]!r}")


def _with_zone(stamps: pd.Series, zones: pd.Series, path: Path) -> pd.Series:
    offsets = zones.str.strip().str.upper().map(OFFSETS)
    if offsets.isna().any():
        raise _bad_cell(path, offsets.isna(), zones, "expected Time Zone EST or EDT, found")
    text = stamps.str.strip() + offsets
    time = pd.to_datetime(text, format="%m/%d/%Y %H:%M:%S%z", utc=True, errors="coerce")
    short = time.isna()
    if short.any():  # stamps without seconds
        time[short] = pd.to_datetime(text[short], format="%m/%d/%Y %H:%M%z", utc=True, errors="coerce")
    if time.isna().any():
        raise _bad_cell(path, time.isna(), stamps, "expected a Time Stamp like 07/01/2023 00:05:00, found")
    return time


def _prevailing(stamps: pd.Series, names: pd.Series, where: Path) -> pd.Series:
    naive = pd.to_datetime(stamps.str.strip(), format="mixed", dayfirst=False, errors="coerce")
    if naive.isna().any():
        raise _bad_cell(where, naive.isna(), stamps, "expected a Time Stamp like 07/01/2023 00:00, found")
    out = pd.Series(pd.NaT, index=stamps.index, dtype="datetime64[ns, UTC]")
    for _, idx in names.groupby(names, sort=False).groups.items():
        local = pd.DatetimeIndex(naive.loc[idx])
        try:
            out.loc[idx] = local.tz_localize(TZ, ambiguous="infer").tz_convert("UTC")
        except Exception as exc:
            raise DataFileError(where, f"cannot place the local time stamps in {TZ} ({exc})") from None
    return out


def on_grid(frame: pd.DataFrame, stamp_ends: bool) -> pd.DataFrame:
    """5-minute readings (``time`` UTC, ``zone``, ``value``) on the 5-minute grid of interval starts (module doc)."""
    frame = frame.dropna(subset=["value"]).drop_duplicates(["zone", "time"], keep="last")
    frame = frame.sort_values(["zone", "time"], kind="stable")
    t = frame["time"]
    by_zone = frame.groupby("zone", sort=False)["time"]
    if stamp_ends:
        start = t.dt.ceil(GRID) - GRID
        prev = by_zone.shift(1)
        weight = t - prev.where(prev > start, start)
    else:
        start = t.dt.floor(GRID)
        after = by_zone.shift(-1)
        weight = after.where(after < start + GRID, start + GRID) - t
    w = weight.dt.total_seconds().to_numpy()
    parts = pd.DataFrame({"zone": frame["zone"].to_numpy(), "time": start, "wv": w * frame["value"].to_numpy(), "w": w})
    sums = parts.groupby(["zone", "time"], as_index=False, sort=False)[["wv", "w"]].sum()
    sums["value"] = (sums["wv"] / sums["w"]).where(sums["w"] > 0)
    return sums[["time", "zone", "value"]]


def read_load_file(path: Path) -> pd.DataFrame:
    """A real-time load file as ``time`` (UTC interval start, 5-minute grid), ``zone``, ``value`` (MW)."""
    raw = read_csv_members(Path(path), required=LOAD_COLUMNS, check_header=report_check(detect_report, "a NYISO", "load"),
                           dtype={"Time Stamp": "string", "Time Zone": "string", "Name": "string"})
    time = _with_zone(raw["Time Stamp"], raw["Time Zone"], path)
    frame = pd.DataFrame({"time": time, "zone": raw["Name"].str.strip(), "value": numeric(raw["Load"], path, "Load")})
    return on_grid(frame, stamp_ends=False)


def read_lbmp_file(path: Path, component: str = "lbmp") -> tuple[pd.DataFrame, str]:
    """An LBMP file as ``time`` (UTC interval start), ``zone``, ``value`` ($/MWh) of ``component``
    (lbmp, losses, congestion), and its market (DAM hourly, or RT on the 5-minute grid)."""
    path = Path(path)
    column = COMPONENTS[component]
    named = market_of_name(path)
    raw = read_csv_members(path, required=(*LBMP_COLUMNS, column), check_header=report_check(detect_report, "a NYISO", "lbmp"),
                           dtype={"Time Stamp": "string", "Name": "string", "Time Zone": "string"})
    names = raw["Name"].str.strip()
    if "Time Zone" in raw.columns:
        time = _with_zone(raw["Time Stamp"], raw["Time Zone"], path)
    else:
        time = _prevailing(raw["Time Stamp"], names, path)
    sub_hourly = bool((time != time.dt.floor("h")).any())
    market = named or ("RT" if sub_hourly else "DAM")
    if market == "DAM" and sub_hourly:
        raise DataFileError(path, "named a day-ahead file (damlbmp) but holds stamps off the hour: is it a real-time file?")
    frame = pd.DataFrame({"time": time, "zone": names, "value": numeric(raw[column], path, column)})
    if market == "RT":
        return on_grid(frame, stamp_ends=True), market
    return frame, market


def read_location(location: Path, report: str, component: str = "lbmp", market: str = "DAM") -> tuple[pd.DataFrame, str]:
    """Every NYISO file of ``report`` ("load" or "lbmp") at ``location``; LBMP files of ``market`` only."""
    location = Path(location)
    files = files_of_report(location, report, detect_report)
    if not files:
        raise DataFileError(location, f"no NYISO {report} files here")
    if report == "load":
        return pd.concat([read_load_file(p) for p in files], ignore_index=True), str(location)
    parts, other = [], []
    for p in files:
        if location.is_dir():
            try:
                market_of_name(p)
            except DataFileError:  # rtlbmp / hamlbmp: another market, passed over in a folder like RT or DAM
                other.append(p.name)
                continue
        frame, found = read_lbmp_file(p, component)
        (parts if found == market else other).append(frame if found == market else p.name)
    if not parts:
        raise DataFileError(location, f"no NYISO {market} LBMP files here (found only other markets: {', '.join(other)}; "
                                      f"set market: {'RT' if market == 'DAM' else 'DAM'})")
    return pd.concat(parts, ignore_index=True), str(location)


def load_series(location: Path, zone: str = "N.Y.C.") -> TimeSeries:
    frame, source = read_location(location, "load")
    return pick_series(frame, "zone", zone, unit="MW", source=source, what="zone", step="5min")


def price_series(location: Path, zone: str = "N.Y.C.", component: str = "lbmp", market: str = "DAM") -> TimeSeries:
    """The zonal price of ``market`` (DAM hourly, RT 5-minute), $/MWh."""
    if market not in MARKETS:
        raise ValueError(f"market must be one of {', '.join(MARKETS)}, not {market!r}")
    frame, source = read_location(location, "lbmp", component, market)
    step = "1h" if market == "DAM" else "5min"
    return pick_series(frame, "zone", zone, unit="$/MWh", source=source, what="zone", step=step)

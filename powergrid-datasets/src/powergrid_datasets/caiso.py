"""CAISO OASIS report files: parsing (zip or CSV, as OASIS serves them) and SingleZip query URLs.

Three reports are understood (one row per interval and series, rows unsorted,
series interleaved; ``INTERVALSTARTTIME_GMT`` gives the UTC start, ``OPR_DT`` /
``OPR_HR`` the local operating day and hour ending, 1–24, 25 for the repeated
hour of the autumn DST day):

==============  ==========================================  =================  =======
report          series key columns                          value column       unit
==============  ==========================================  =================  =======
``SLD_FCST``    ``TAC_AREA_NAME`` (+ ``MARKET_RUN_ID``)     ``MW``             MW
``PRC_LMP``     ``NODE``, ``LMP_TYPE``, ``MARKET_RUN_ID``   ``MW`` (in $/MWh)  $/MWh
``SLD_REN_FCST`` ``TRADING_HUB``, ``RENEWABLE_TYPE``        ``MW``             MW
==============  ==========================================  =================  =======

The UTC index comes from ``INTERVALSTARTTIME_GMT`` only, so the 23-hour spring
operating day and the 25-hour autumn one need no special handling: they are
23 and 25 consecutive UTC hours.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from powergrid_datasets import cache
from powergrid_datasets.errors import DataFileError, DataUnavailableError
from powergrid_datasets.files import list_data_files, read_csv_members
from powergrid_datasets.timeseries import TimeSeries

URL_ENV = "POWERGRID_CAISO_URL"
DEFAULT_URL = "https://oasis.caiso.com/oasisapi/SingleZip"
PAUSE_ENV = "POWERGRID_CAISO_PAUSE"


@dataclass(frozen=True)
class Report:
    name: str           # OASIS query name
    alias: str          # the name used in YAML
    keys: tuple[str, ...]
    signature: str      # a column only this report has
    unit: str
    market_run_id: str  # the default market of the download query
    version: int
    folder: str         # sub-folder of a data dir laid out like ../shared/data/caiso


REPORTS = {
    "SLD_FCST": Report("SLD_FCST", "load", ("TAC_AREA_NAME",), "TAC_AREA_NAME", "MW", "ACTUAL", 1, "load"),
    "PRC_LMP": Report("PRC_LMP", "lmp", ("NODE", "LMP_TYPE"), "LMP_TYPE", "$/MWh", "DAM", 12, "price"),
    "SLD_REN_FCST": Report("SLD_REN_FCST", "renewables", ("TRADING_HUB", "RENEWABLE_TYPE"), "TRADING_HUB", "MW",
                           "ACTUAL", 1, "solar_wind"),
}
BY_ALIAS = {r.alias: r for r in REPORTS.values()}
TIME_COLUMN = "INTERVALSTARTTIME_GMT"
VALUE_COLUMN = "MW"


def report_of(name: str) -> Report:
    key = name.upper()
    if key in REPORTS:
        return REPORTS[key]
    if name.lower() in BY_ALIAS:
        return BY_ALIAS[name.lower()]
    raise ValueError(f"unknown CAISO report {name!r} (known: {', '.join(BY_ALIAS)} = {', '.join(REPORTS)})")


def detect_report(columns: Sequence[str], filename: str = "") -> Report | None:
    """The report a file holds, from its columns (or, failing that, its name)."""
    cols = set(columns)
    for report in REPORTS.values():
        if report.signature in cols:
            return report
    upper = filename.upper()
    for report in sorted(REPORTS.values(), key=lambda r: -len(r.name)):
        if f"_{report.name}_" in upper:
            return report
    return None


def _header_check(report: Report):
    def check(columns: list[str]) -> None:
        found = detect_report(columns)
        if found is not None and found is not report:
            raise ValueError(f"this is an OASIS {found.name} report, not {report.name} ({report.alias})")
        if found is None and report.signature not in columns:
            raise ValueError(f"not an OASIS {report.name} report: no {report.signature} column "
                             f"(the file has: {', '.join(columns)})")

    return check


def read_file(path: Path | str, report: Report | str) -> pd.DataFrame:
    """One OASIS file as a long frame: ``time`` (UTC), the key columns, ``MARKET_RUN_ID`` if present, ``value``."""
    report = report_of(report) if isinstance(report, str) else report
    path = Path(path)
    wanted = [TIME_COLUMN, *report.keys, VALUE_COLUMN]
    optional = ["MARKET_RUN_ID"]
    frame = read_csv_members(path, required=wanted, check_header=_header_check(report),
                             usecols=lambda c: c in wanted or c in optional,  # type: ignore[arg-type]
                             dtype={k: "string" for k in (*report.keys, *optional)} | {VALUE_COLUMN: "float64"})
    try:
        times = pd.to_datetime(frame[TIME_COLUMN], utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise DataFileError(path, f"bad {TIME_COLUMN} value ({exc})") from None
    out = frame.drop(columns=[TIME_COLUMN]).rename(columns={VALUE_COLUMN: "value"})
    out.insert(0, "time", times)
    return out


@functools.lru_cache(maxsize=16)
def _read_files_cached(files: tuple[tuple[str, float, int], ...], report_name: str) -> pd.DataFrame:
    parts = [read_file(Path(p), REPORTS[report_name]) for p, _mtime, _size in files]
    return pd.concat(parts, ignore_index=True)


def read_files(paths: Sequence[Path], report: Report | str) -> pd.DataFrame:
    """Several OASIS files of one report concatenated (parsed once per process while unchanged)."""
    report = report_of(report) if isinstance(report, str) else report
    key = tuple((str(Path(p).resolve()), Path(p).stat().st_mtime, Path(p).stat().st_size) for p in paths)
    return _read_files_cached(key, report.name)


def files_in(location: Path, report: Report) -> list[Path]:
    """The files of ``report`` at ``location``: the file itself, or every matching file in a folder.

    In a folder, files are matched by name (``_SLD_FCST_`` …) under the folder, its
    ``caiso/`` sub-folder or its report sub-folder (``load/``, ``price/``, ``solar_wind/``).
    """
    location = Path(location)
    if location.is_file():
        return [location]
    if not location.is_dir():
        raise DataUnavailableError(f"{location}: no such file or folder")
    pattern = f"_{report.name}_"
    found = [p for p in list_data_files(location, [pattern])
             if not (report.name == "SLD_FCST" and "_SLD_REN_FCST_" in p.name.upper())]
    return found


def select(frame: pd.DataFrame, report: Report, *, source: str, market: str | None = None,
           **where: str) -> TimeSeries:
    """The one series of ``frame`` picked by key values, e.g. ``TAC_AREA_NAME="AVA"``, as a :class:`TimeSeries`."""
    mask = pd.Series(True, index=frame.index)
    for column, wanted in where.items():
        present = frame[column]
        hit = present.str.upper() == str(wanted).upper()
        if not hit.any():
            choices = sorted(present.dropna().unique())
            raise DataFileError(source, f"no {column} = {wanted!r} in the {report.name} data "
                                        f"(available: {', '.join(choices)})")
        mask &= hit
    if market is not None and "MARKET_RUN_ID" in frame.columns:
        hit = frame["MARKET_RUN_ID"].str.upper() == market.upper()
        if not (mask & hit).any():
            choices = sorted(frame.loc[mask, "MARKET_RUN_ID"].dropna().unique())
            raise DataFileError(source, f"no MARKET_RUN_ID = {market!r} in the {report.name} data "
                                        f"(available: {', '.join(choices)})")
        mask &= hit
    if not mask.any():
        keys = list(where)
        combos = sorted({" ".join(map(str, c)) for c in frame[keys].dropna().drop_duplicates().itertuples(index=False)})
        raise DataFileError(source, f"no {report.name} series with " + " and ".join(f"{k} = {v!r}" for k, v in where.items())
                            + f" (available: {', '.join(combos)})")
    rows = frame.loc[mask, ["time", "value"]]
    # the same interval in two files (overlapping downloads): keep the later file's row
    rows = rows.drop_duplicates("time", keep="last").set_index("time")["value"]
    label = ",".join(f"{v}" for v in where.values())
    return TimeSeries.from_frame(rows.rename(label or "value"), report.unit, step="1h" if len(rows) < 2 else None,
                                 source=source, meta={"report": report.name, **where})


# -- download -------------------------------------------------------------------
def base_url(override: str | None = None) -> str:
    return override or os.environ.get(URL_ENV) or DEFAULT_URL


def query_url(report: Report, start: pd.Timestamp, end: pd.Timestamp, *, market: str | None = None,
              url: str | None = None, **filters: str) -> str:
    """The OASIS SingleZip query for ``report`` from ``start`` to ``end`` (UTC), CSV result format."""
    fmt = "%Y%m%dT%H:%M-0000"
    params = {
        "resultformat": "6",
        "queryname": report.name,
        "version": str(report.version),
        "market_run_id": market or report.market_run_id,
        "startdatetime": start.tz_convert("UTC").strftime(fmt),
        "enddatetime": end.tz_convert("UTC").strftime(fmt),
    }
    params.update({k.lower(): v for k, v in filters.items()})
    return base_url(url) + "?" + "&".join(f"{k}={quote(str(v), safe=':-_')}" for k, v in params.items())


def month_starts(year: int, tz: str = "America/Los_Angeles") -> list[pd.Timestamp]:
    """The local midnights starting each month of ``year`` and the next January, in UTC (OASIS allows ≤ 31 days a query)."""
    return [pd.Timestamp(year + (m // 12), m % 12 + 1, 1).tz_localize(tz).tz_convert("UTC") for m in range(13)]


def download_year(report: Report, year: int, *, market: str | None = None, url: str | None = None,
                  **filters: str) -> list[Path]:
    """The monthly OASIS zips of ``report`` for ``year`` through the cache (``caiso/`` sub-folder)."""
    edges = month_starts(year)
    root = base_url(url)
    pause = float(os.environ.get(PAUSE_ENV, "5" if root == DEFAULT_URL else "0"))
    paths = []
    for i, (a, b) in enumerate(zip(edges, edges[1:])):
        q = query_url(report, a, b, market=market, url=url, **filters)
        tag = "_".join(str(v).replace(" ", "-").replace("/", "-") for v in filters.values())
        fname = f"{a.strftime('%Y%m%d')}_{b.strftime('%Y%m%d')}_{report.name}_{market or report.market_run_id}_{tag}.zip"
        before = (cache.cache_dir("caiso") / fname).exists()
        paths.append(cache.fetch(q, fname, subdir="caiso", hint=OFFLINE_HINT))
        if i < 11 and pause > 0 and not before:
            import time

            time.sleep(pause)  # OASIS rejects more than one request every few seconds
    return paths


OFFLINE_HINT = ("To work offline, put the OASIS zips in a folder and set the dataset's `path` parameter "
                "or the POWERGRID_DATA_DIR environment variable.")

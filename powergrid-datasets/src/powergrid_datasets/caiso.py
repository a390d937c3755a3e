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
import hashlib
import math
import os
import re
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from powergrid_datasets import cache
from powergrid_datasets.errors import DataFileError, DatasetError, DataUnavailableError
from powergrid_datasets.files import list_data_files, read_csv_members, row_place, xml_error_text
from powergrid_datasets.timeseries import TimeSeries, step_text

URL_ENV = "POWERGRID_CAISO_URL"
DEFAULT_URL = "https://oasis.caiso.com/oasisapi/SingleZip"
BAD_VALUES = ("error", "missing")
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
        if found is None and report.signature not in columns:  # the message never quotes the file
            raise ValueError(f"not an OASIS {report.name} report: no {report.signature} column")

    return check


def read_file(path: Path | str, report: Report | str, bad_values: str = "error") -> pd.DataFrame:
    """One OASIS file as a long frame: ``time`` (UTC), the key columns, ``MARKET_RUN_ID`` if present, ``value``.

    A value cell that is not a finite number (``12o4``, ``inf``, ``-inf``) or a time cell that is not a timestamp
    is an error naming the file (and zip member), its line (1 = the header, blank lines counted) and column; with
    ``bad_values="missing"`` such a value cell becomes a missing value (all of them reported in one warning). Empty
    cells and pandas' missing markers (``pandas.read_csv``'s default ``na_values``: ``NA``, ``N/A``, ``n/a``,
    ``NaN``, ``nan``, ``-nan``, ``NULL``, ``null``, ``None``, ``#N/A``, ``<NA>`` and a few more, case as written)
    are missing values.
    """
    report = report_of(report) if isinstance(report, str) else report
    if bad_values not in BAD_VALUES:
        raise ValueError(f"bad_values must be one of {', '.join(BAD_VALUES)}, got {bad_values!r}")
    path = Path(path)
    wanted = [TIME_COLUMN, *report.keys, VALUE_COLUMN]
    optional = ["MARKET_RUN_ID"]
    frame = read_csv_members(path, required=wanted, check_header=_header_check(report),
                             usecols=lambda c: c in wanted or c in optional,  # type: ignore[arg-type]
                             dtype={k: "string" for k in (*wanted, *optional)})
    times = pd.to_datetime(frame[TIME_COLUMN], utc=True, format="ISO8601", errors="coerce")
    values = pd.to_numeric(frame[VALUE_COLUMN].str.strip(), errors="coerce").astype("float64")
    infinite = np.isinf(values)  # no load or price is infinite: a damaged cell, not a gap to fill
    values[infinite] = np.nan
    bad = {TIME_COLUMN: times.isna() & frame[TIME_COLUMN].notna(),
           VALUE_COLUMN: values.isna() & frame[VALUE_COLUMN].str.strip().fillna("").ne("")}
    count = sum(int(m.sum()) for m in bad.values())
    if count:
        column = next(c for c, m in bad.items() if m.any())
        first = int(bad[column].to_numpy().argmax())
        file, line = row_place(path, first)
        where, cells = f"{line}, column {column}", int(bad[column].sum())
        if column == TIME_COLUMN:  # bad_values applies to numbers only: a row without its time cannot be placed
            raise DataFileError(file, f"{where}: not a timestamp ({cells} such cell(s); expected ISO 8601 such as "
                                      f"2023-01-01T08:00:00-00:00)")
        if bad_values == "error":
            what = "not a finite number (inf)" if infinite.to_numpy()[first] else "not a number"
            raise DataFileError(file, f"{where}: {what} ({cells} such cell(s); expected a finite number in {report.unit}; "
                                      f"set the dataset's bad_values: missing to read such cells as missing values)")
        inf = f", {int(infinite.sum())} of them inf or -inf" if infinite.any() else ""
        warnings.warn(f"{file}: {count} value cell(s) that are not numbers read as missing (first at {where}{inf})",
                      RuntimeWarning, stacklevel=2)
    out = frame.drop(columns=[TIME_COLUMN, VALUE_COLUMN])
    out.insert(0, "time", times)
    out["value"] = values.astype("float64")
    out["file"] = str(path)
    out["row"] = range(len(out))  # the data row in the file, for errors (see files.row_place)
    return out


@functools.lru_cache(maxsize=16)
def _read_files_cached(files: tuple[tuple[str, float, int], ...], report_name: str, bad_values: str) -> pd.DataFrame:
    parts = [read_file(Path(p), REPORTS[report_name], bad_values) for p, _mtime, _size in files]
    return pd.concat(parts, ignore_index=True)


def read_files(paths: Sequence[Path], report: Report | str, bad_values: str = "error") -> pd.DataFrame:
    """Several OASIS files of one report concatenated (parsed once per process while unchanged)."""
    report = report_of(report) if isinstance(report, str) else report
    key = tuple((str(Path(p).resolve()), Path(p).stat().st_mtime, Path(p).stat().st_size) for p in paths)
    return _read_files_cached(key, report.name, bad_values)


def files_in(location: Path, report: Report) -> list[Path]:
    """The files of ``report`` at ``location``: the file itself, or every matching file in a folder.

    In a folder, files are matched by name (``_SLD_FCST_`` …) under the folder, its
    ``caiso/`` sub-folder or its report sub-folder (``load/``, ``price/``, ``solar_wind/``).
    """
    location = Path(location)
    if location.is_file():
        return [location]
    if not location.is_dir():
        raise DataUnavailableError(f"{location}: " + ("not a regular file or folder" if location.exists() else "no such file or folder"))
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
    picked = frame.loc[mask]
    _check_grid(picked)
    _warn_conflicts(picked, report)
    # the same interval in two files (overlapping downloads): keep the later file's row
    kept = picked.drop_duplicates("time", keep="last").set_index("time")
    label = ",".join(f"{v}" for v in where.values())
    # the file and data row of each value, so that a warning about a value can name its line (TimeSeries._place)
    origin = {"rows": kept[["file", "row"]], "value_column": VALUE_COLUMN} if "file" in kept else {}
    return TimeSeries.from_frame(kept["value"].rename(label or "value"), report.unit, step="1h" if len(kept) < 2 else None,
                                 source=source, meta={"report": report.name, **where, **origin})


def _check_grid(rows: pd.DataFrame) -> None:
    """Every timestamp on the grid of the most common step: else an error naming the file, the time and the step."""
    times = pd.Series(rows["time"].dropna().unique()).sort_values()
    steps = times.diff().dropna()
    if steps.empty:
        return
    step = steps.mode().iloc[0]
    off = ((times - times.iloc[0]) % step) != pd.Timedelta(0)
    if off.any():
        when = times[off].iloc[0]
        file = rows.loc[rows["time"] == when, "file"].iloc[0] if "file" in rows else "the data"
        raise DataFileError(file, f"timestamp {when} is off the {step_text(step)} grid of the other rows "
                                  f"(which starts at {times.iloc[0]})")


def _warn_conflicts(rows: pd.DataFrame, report: Report) -> None:
    """Warn when two files give different values for one interval (the later file's value is used); one file that
    gives an interval two values is an error naming its lines (which value is right cannot be told)."""
    if "file" not in rows:
        return
    dup = rows[rows.duplicated("time", keep=False)]
    if dup.empty:
        return
    twice = dup.groupby(["time", "file"], sort=False)["value"].nunique(dropna=False)
    if (twice > 1).any():
        when, file = twice.index[(twice > 1).to_numpy().argmax()]
        both = dup[(dup["time"] == when) & (dup["file"] == file)]
        places = [row_place(Path(file), int(r)) for r in both["row"]]
        raise DataFileError(places[0][0], f"{' and '.join(line for _, line in places)} give the interval "
                                          f"starting {when} different values ({', '.join(map(str, both['value']))})")
    spread = dup.groupby("time")["value"].agg(lambda v: v.max() - v.min() if v.notna().all() else float("inf"))
    clash = spread[spread > 1e-9]
    if clash.empty:
        return
    when = clash.index[0]
    first = dup[dup["time"] == when]
    a, b = first.iloc[0], first.iloc[-1]
    warnings.warn(f"{report.name}: {len(clash)} interval(s) have different values in two files, e.g. {when}: "
                  f"{a['value']} in {a['file']} and {b['value']} in {b['file']}; the later file ({b['file']}) is used",
                  RuntimeWarning, stacklevel=3)


# -- download -------------------------------------------------------------------
def base_url(allow_url: str | None = None) -> str:
    """The OASIS SingleZip URL: ``allow_url`` (explicitly allowed), else ``$POWERGRID_CAISO_URL``, else the official one."""
    url = allow_url or os.environ.get(URL_ENV) or DEFAULT_URL
    if not re.match(r"https?://[^/\s]+", url):
        raise ValueError(f"expected an http(s) URL for the OASIS SingleZip service, got {url!r}")
    return url


#: Characters of an identifier kept in a cache file name (a 300-character area made a name the file system refused;
#: the SHA-256 of the query in the name keeps names cut alike apart).
NAME_PART_MAX = 40


def file_part(text: str) -> str:
    """``text`` made safe inside a file name: letters, digits, ``-_.`` only (no separators, no ``..``), at most
    :data:`NAME_PART_MAX` characters."""
    return re.sub(r"[^A-Za-z0-9_]+", "-", str(text))[:NAME_PART_MAX].strip("-") or "x"


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


def validate_reply(path: Path) -> None:
    """Raise :class:`DataFileError` unless ``path`` is a complete zip holding a CSV: an OASIS error reply (HTTP 200,
    a zip of one XML message, e.g. a rate limit) is refused with its text, so it is never kept in the cache."""
    cache.validate_zip(path)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        if not any(n.lower().endswith(".csv") for n in names):
            xml = [n for n in names if n.lower().endswith(".xml")]
            detail = f": {xml_error_text(zf.read(xml[0]))}" if xml else ""
            raise DataFileError(path, f"an OASIS reply without data (it holds: {', '.join(names) or 'nothing'}){detail}")


def request_pause(root: str) -> float:
    """Seconds between OASIS requests: ``$POWERGRID_CAISO_PAUSE``, else 5 for the official host and 0 for another."""
    text = os.environ.get(PAUSE_ENV, "").strip()
    if not text:
        return 5.0 if root == DEFAULT_URL else 0.0
    try:
        pause = float(text)
    except ValueError:
        pause = math.nan
    if not (math.isfinite(pause) and pause >= 0):
        raise DatasetError(f"{PAUSE_ENV}: expected a number of seconds ≥ 0, got {text!r}")
    return pause


def download_year(report: Report, year: int, *, market: str | None = None, url: str | None = None,
                  **filters: str) -> list[Path]:
    """The monthly OASIS zips of ``report`` for ``year`` through the cache (``caiso/`` sub-folder), each named
    after its month, report, market and filters, made safe, and the start of the SHA-256 of its query URL.

    ``url`` is an explicitly allowed non-official SingleZip URL (see :func:`base_url`).
    """
    edges = month_starts(year)
    root = base_url(url)
    pause = request_pause(root)
    paths = []
    for i, (a, b) in enumerate(zip(edges, edges[1:])):
        q = query_url(report, a, b, market=market, url=url, **filters)
        tag = "_".join(file_part(v) for v in filters.values())
        key = hashlib.sha256(q.encode()).hexdigest()[:12]  # names made safe can coincide ('A/B', 'A B'): the query tells
        fname = (f"{a.strftime('%Y%m%d')}_{b.strftime('%Y%m%d')}_{report.name}_{file_part(market or report.market_run_id)}"
                 f"_{tag}_{key}.zip")
        before = (cache.cache_path("caiso") / fname).exists()
        paths.append(cache.fetch(q, fname, subdir="caiso", hint=OFFLINE_HINT, validate=validate_reply, retry_pause=pause))
        if i < 11 and pause > 0 and not before:
            import time

            time.sleep(pause)  # OASIS rejects more than one request every few seconds
    return paths


OFFLINE_HINT = ("To work offline, put the OASIS zips in a folder and set the dataset's `path` parameter "
                "or the POWERGRID_DATA_DIR environment variable.")

"""Build the CAISO 2023 extract that powergrid-datasets ships (``caiso_2023.csv.gz`` and ``caiso_2023.json``).

    python scripts/extract_caiso.py [--data-dir ../shared/data/caiso] [--out powergrid-datasets/src/powergrid_datasets/data]

Reads the monthly OASIS report zips (``load/``, ``price/``, ``solar_wind/``) with the
pack's own parser (:mod:`powergrid_datasets.caiso`), keeps the series listed in
:func:`powergrid_datasets.embedded.columns` (values exactly as parsed: MW, $/MWh), and
writes them on one hourly UTC grid with their provenance. The output is byte-for-byte
reproducible (gzip without a timestamp), so a rebuild from the same zips changes nothing.

Every series must cover calendar year 2023 in Pacific time with no run of more than
``MAX_MISSING_HOURS`` absent hours (a month's zip left out is refused, not shipped as a gap);
a missing folder or a damaged zip is one error line, and nothing is written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import pandas as pd

from powergrid_datasets import caiso, embedded
from powergrid_datasets.errors import DatasetError
from powergrid_datasets.timeseries import _runs

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "caiso"
DEFAULT_OUT = REPO / "powergrid-datasets" / "src" / "powergrid_datasets" / "data"
TERMS = ("Public market and grid data of the California Independent System Operator (CAISO), published on its "
         "OASIS site (https://oasis.caiso.com). Use is subject to CAISO's terms of use (https://www.caiso.com); "
         "cite the California ISO OASIS as the source. This file is a derived extract: selected series, "
         "values unchanged.")
YEAR = 2023
#: the longest run of absent hours a series may have (the providers' default max_gap_hours fills it)
MAX_MISSING_HOURS = 3


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extract(data_dir: Path) -> tuple[pd.DataFrame, dict]:
    """The extract table (UTC hourly index ``time``, one column per series) and its metadata."""
    wanted = embedded.columns()
    series, meta_columns, sources = {}, {}, {}
    for alias in dict.fromkeys(alias for alias, _ in wanted.values()):
        report = caiso.report_of(alias)
        files = caiso.files_in(data_dir / report.folder, report)
        if not files:
            raise SystemExit(f"extract_caiso: error: {data_dir / report.folder}: no OASIS {report.name} files")
        frame = caiso.read_files(files, report)
        sources[report.name] = {
            "market_run_id": report.market_run_id,
            "version": report.version,
            "folder": report.folder,
            "files": [{"name": f.name, "bytes": f.stat().st_size, "sha256": _sha256(f)} for f in files],
        }
        for column, (col_alias, keys) in wanted.items():
            if col_alias != alias:
                continue
            ts = caiso.select(frame, report, source=str(data_dir), market=report.market_run_id, **keys)
            series[column] = ts.data.iloc[:, 0]
            valid = ts.valid()
            meta_columns[column] = {
                "report": report.name, "market_run_id": report.market_run_id, "keys": keys, "unit": report.unit,
                "hours": int(valid.sum()), "missing_hours": int((~valid).sum()),
                "first": ts.index[0].isoformat(), "last": ts.index[-1].isoformat(),
            }
    first, end = caiso.month_starts(YEAR)[0], caiso.month_starts(YEAR)[-1]
    table = pd.DataFrame(series).reindex(pd.date_range(first, end, freq="1h", inclusive="left", name="time"))
    for column in table.columns:
        _check_coverage(table[column], column, data_dir)
    meta = {
        "title": "CAISO OASIS 2023 hourly extract: TAC-area load, day-ahead LMP, hub solar and wind",
        "source": "California ISO OASIS (https://oasis.caiso.com), reports SLD_FCST, PRC_LMP, SLD_REN_FCST",
        "terms": TERMS,
        "period_utc": [table.index[0].isoformat(), (table.index[-1] + pd.Timedelta(hours=1)).isoformat()],
        "time": "UTC start of each hour (OASIS INTERVALSTARTTIME_GMT); an empty cell is an hour the report lacks",
        "built_by": "scripts/extract_caiso.py",
        "file_names": "<first day>_<day after the last>_<report>_<market>_<OASIS generation time YYYYMMDD_HH_MM_SS>_v<version>.zip",
        "reports": sources,
        "columns": meta_columns,
    }
    return table, meta


def _check_coverage(values: pd.Series, column: str, data_dir: Path) -> None:
    """Raise SystemExit (one line) when ``column`` has a run of more than MAX_MISSING_HOURS absent hours in the year."""
    runs = [(a, b) for a, b in _runs(values.isna().to_numpy()) if b - a > MAX_MISSING_HOURS]
    if runs:
        a, b = runs[0]
        raise SystemExit(f"extract_caiso: error: {data_dir}: series {column} lacks {b - a} hours from {values.index[a]} "
                         f"to {values.index[b - 1]} (expected every hour of {YEAR} in Pacific time, at most "
                         f"{MAX_MISSING_HOURS} absent in a row; {len(runs)} such run(s)): is a monthly zip missing?")


def write(table: pd.DataFrame, meta: dict, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    data_path, meta_path = out / embedded.DATA_FILE, out / embedded.META_FILE
    stamped = table.copy()
    stamped.index = stamped.index.strftime("%Y-%m-%dT%H:%MZ")
    stamped.to_csv(data_path, compression={"method": "gzip", "mtime": 0, "compresslevel": 9}, lineterminator="\n")
    meta_path.write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return data_path, meta_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="folder with load/, price/, solar_wind/")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write the two files to")
    args = parser.parse_args(argv)
    try:
        table, meta = extract(args.data_dir)
    except DatasetError as exc:  # a missing folder, a damaged zip, a file of another report
        raise SystemExit(f"extract_caiso: error: {exc}") from None
    for path in write(table, meta, args.out):
        print(f"{path}: {path.stat().st_size / 1024:.0f} kB")
    print(f"{len(table)} hours x {len(table.columns)} series: {', '.join(table.columns)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

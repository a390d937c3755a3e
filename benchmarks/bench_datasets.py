"""Parse CPU time of a year of CAISO OASIS files (12 monthly zips per report), median of 5 cold parses.

Run with ``nox -s bench`` or ``python benchmarks/bench_datasets.py [CAISO_DIR]`` (default:
``../shared/data/caiso`` beside the repository).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from powergrid_datasets import caiso

FOLDERS = {"load": "SLD_FCST", "lmp": "PRC_LMP", "renewables": "SLD_REN_FCST"}


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data" / "caiso"
    if not root.is_dir():
        print(f"bench_datasets: no CAISO files at {root}; skipped")
        return
    print(f"{'report':<14}{'files':>6}{'rows':>10}{'parse CPU s (median)':>22}{'select AVA/node/hub CPU s':>28}")
    for alias, name in FOLDERS.items():
        report = caiso.report_of(alias)
        files = caiso.files_in(root, report)
        times, frame = [], None
        for _ in range(5):
            t0 = time.process_time()
            caiso._read_files_cached.cache_clear()  # a cold parse each time
            frame = caiso.read_files(files, report)
            times.append(time.process_time() - t0)
        where = {"load": {"TAC_AREA_NAME": "AVA"}, "lmp": {"NODE": "0096WD_7_N001", "LMP_TYPE": "LMP"},
                 "renewables": {"TRADING_HUB": "NP15", "RENEWABLE_TYPE": "Solar"}}[alias]
        t0 = time.process_time()
        caiso.select(frame, report, source=str(root), **where)
        select_s = time.process_time() - t0
        print(f"{name:<14}{len(files):>6}{len(frame):>10}{statistics.median(times):>22.3f}{select_s:>28.3f}")


if __name__ == "__main__":
    main()

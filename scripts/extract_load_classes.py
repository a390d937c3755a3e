"""Build the customer-class load shapes that powergrid-core ships (``powergrid/data/load_classes.csv``).

    pip install simbench   # or: pip install 'powergrid-datasets[simbench]'
    python scripts/extract_load_classes.py [--out powergrid-core/src/powergrid/data/load_classes.csv]

Source: the SimBench data set's ``LoadProfile.csv`` (15-minute active-power profiles
of 2016, relative values, German local time), as installed with the ``simbench``
package. Per customer class, season and day type the script averages the profile
at each of the 96 quarter hours of the local clock:

- classes (SimBench profile names; each profile is first divided by its annual mean):
  residential = mean of the household profiles H0-B, H0-C, H0-G and H0-L (H0-A, with
  electric storage heating, and the flat H0-H are left out); commercial = G0-A
  (commerce in general, the BDEW G0 group); industrial = G3-M (continuous operation,
  a medium-voltage customer); agricultural = L0-A (agriculture in general);
- seasons as in the BDEW standard load profiles: winter 1 Nov–20 Mar, summer
  15 May–14 Sep, transition otherwise;
- day types as in BDEW: weekday (Mon–Fri), saturday, sunday; the nationwide German
  public holidays of 2016 count as Sundays;
- scaling: per class and season the week-weighted mean (5 weekdays, a Saturday and a
  Sunday) is 1, so a class shape carries the within-day and within-week pattern but no
  seasonal level (the scenario's ``load`` profile sets that).

The output is a small CSV (4 decimals), byte-for-byte reproducible, with its
provenance and licence (SimBench: ODbL 1.0 / DbCL 1.0) in its header lines.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from powergrid_datasets.simbench_provider import data_folder

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "powergrid-core" / "src" / "powergrid" / "data" / "load_classes.csv"
CLASSES = {
    "residential": ("H0-B", "H0-C", "H0-G", "H0-L"),
    "commercial": ("G0-A",),
    "industrial": ("G3-M",),
    "agricultural": ("L0-A",),
}
SEASONS = ("winter", "summer", "transition")
DAYS = ("weekday", "saturday", "sunday")
DAY_WEIGHTS = np.array([5.0, 1.0, 1.0]) / 7.0
#: nationwide public holidays in Germany in 2016 (the year of the SimBench profiles)
HOLIDAYS_2016 = ("2016-01-01", "2016-03-25", "2016-03-28", "2016-05-01", "2016-05-05", "2016-05-16",
                 "2016-10-03", "2016-12-25", "2016-12-26")
HEADER = """\
# Customer-class load shapes: pu of the class's week mean, per season, day type and local quarter hour.
# Built by scripts/extract_load_classes.py from the SimBench data set (simbench {version}, LoadProfile.csv,
# 15-minute profiles of 2016): residential = mean of H0-B, H0-C, H0-G, H0-L; commercial = G0-A;
# industrial = G3-M; agricultural = L0-A. Seasons and day types as in the BDEW standard load profiles
# (winter 1 Nov-20 Mar, summer 15 May-14 Sep, transition otherwise; German public holidays as Sundays).
# Per class and season, (5 * mean(weekday) + mean(saturday) + mean(sunday)) / 7 = 1.
# Columns q00..q95: the quarter hours 00:00-00:15 ... 23:45-24:00 of the local clock.
# Source: SimBench, https://www.simbench.net, Copyright (c) 2019-2026 University of Kassel, TU Dortmund,
# RWTH Aachen University and Fraunhofer IEE Kassel. The SimBench database is made available under the
# Open Database License (ODbL 1.0, http://opendatacommons.org/licenses/odbl/1.0/), its contents under the
# Database Contents License (DbCL 1.0, http://opendatacommons.org/licenses/dbcl/1.0/). This file is a
# derived database (averages of SimBench profiles) and is likewise made available under the ODbL 1.0.
"""


def season_of(day: dt.date) -> str:
    """BDEW season of a date: winter 1 Nov–20 Mar, summer 15 May–14 Sep, transition otherwise."""
    md = (day.month, day.day)
    if md >= (11, 1) or md <= (3, 20):
        return "winter"
    if (5, 15) <= md <= (9, 14):
        return "summer"
    return "transition"


def day_type(day: dt.date) -> str:
    if day.isoformat() in HOLIDAYS_2016 or day.weekday() == 6:
        return "sunday"
    return "saturday" if day.weekday() == 5 else "weekday"


def read_profiles() -> pd.DataFrame:
    """The SimBench active-power profiles the classes use, each ÷ its annual mean, on local clock time."""
    names = sorted({p for group in CLASSES.values() for p in group})
    path = data_folder() / "LoadProfile.csv"
    frame = pd.read_csv(path, sep=";", usecols=["time", *(f"{p}_pload" for p in names)])
    frame.index = pd.to_datetime(frame.pop("time"), format="%d.%m.%Y %H:%M")
    frame.columns = [c.removesuffix("_pload") for c in frame.columns]
    return frame / frame.mean()


def class_shapes(profiles: pd.DataFrame) -> dict[tuple[str, str, str], np.ndarray]:
    """``{(class, season, day type): 96 values}`` scaled so that each class's week mean per season is 1."""
    index = profiles.index
    days = pd.Series(index.date, index=index)
    season = days.map(season_of).to_numpy()
    kind = days.map(day_type).to_numpy()
    quarter = (index.hour * 4 + index.minute // 15).to_numpy()
    shapes = {}
    for name, members in CLASSES.items():
        values = profiles[list(members)].mean(axis=1).to_numpy()
        for s in SEASONS:
            table = np.empty((len(DAYS), 96))
            for j, d in enumerate(DAYS):
                mask = (season == s) & (kind == d)
                table[j] = np.bincount(quarter[mask], values[mask], 96) / np.bincount(quarter[mask], minlength=96)
            table /= DAY_WEIGHTS @ table.mean(axis=1)
            for j, d in enumerate(DAYS):
                shapes[(name, s, d)] = table[j]
    return shapes


def write(shapes: dict[tuple[str, str, str], np.ndarray], out: Path, version: str) -> None:
    lines = [HEADER.format(version=version).rstrip("\n"),
             ",".join(["class", "season", "day", *(f"q{q:02d}" for q in range(96))])]
    for (name, s, d), values in shapes.items():
        lines.append(",".join([name, s, d, *(f"{v:.4f}" for v in values)]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    from importlib.metadata import version

    write(class_shapes(read_profiles()), args.out, version("simbench"))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

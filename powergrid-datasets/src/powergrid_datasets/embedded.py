"""The embedded CAISO 2023 extract and the ``caiso_2023`` provider that reads it, offline.

``data/caiso_2023.csv.gz`` holds hourly series of calendar year 2023 from the
public CAISO OASIS reports, one column each, on a UTC hourly grid (each
timestamp is the start of its hour; an empty cell is an hour the report does
not have):

=========================  ===================================  =====  ======================
column                     OASIS report, selection               unit   market
=========================  ===================================  =====  ======================
``load:<area>``            ``SLD_FCST``, ``TAC_AREA_NAME``        MW     ``ACTUAL``
``lmp:<node>:<type>``      ``PRC_LMP``, ``NODE``, ``LMP_TYPE``    $/MWh  ``DAM`` (day-ahead)
``solar:<hub>``            ``SLD_REN_FCST``, ``TRADING_HUB``      MW     ``ACTUAL``
``wind:<hub>``             ``SLD_REN_FCST``, ``TRADING_HUB``      MW     ``ACTUAL``
=========================  ===================================  =====  ======================

``data/caiso_2023.json`` gives its provenance (report, market and version, the
name, size and SHA-256 of every source zip), the unit of every column and the
terms. ``scripts/extract_caiso.py`` rebuilds both files from the OASIS zips with
:mod:`powergrid_datasets.caiso`'s parser; the tables below are what it extracts.

Fixed split of the days, for train / validation / test without leakage: a local
day (in the provider's ``tz``) belongs to ``train`` if its day of month is 1–21,
``validation`` if 22–26, ``test`` if 27–31 — every split covers every month
and weekday (2023: 252, 60 and 53 days).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from importlib import resources
from typing import Any

import attrs
import numpy as np
import pandas as pd

from powergrid.params import choice
from powergrid_datasets.providers import EpisodeParams, SeriesProvider, fixed_start, timezone
from powergrid_datasets.timeseries import TimeSeries

DATA_FILE = "caiso_2023.csv.gz"
META_FILE = "caiso_2023.json"
TZ = "America/Los_Angeles"

AREAS = ("AVA", "CA ISO-TAC", "PGE-TAC", "SCE-TAC", "SDGE-TAC")
NODES = ("0096WD_7_N001",)
LMP_TYPES = ("LMP", "MCE", "MCC", "MCL", "MGHG")
SOLAR_HUBS = ("NP15", "SP15", "ZP26")
WIND_HUBS = ("NP15", "SP15")  # OASIS reports no wind at ZP26

SPLITS = {"train": (1, 21), "validation": (22, 26), "test": (27, 31)}  # days of the month, inclusive


def columns() -> dict[str, tuple[str, dict[str, str]]]:
    """Every column of the extract: ``name -> (OASIS report alias, key column -> value)``."""
    out: dict[str, tuple[str, dict[str, str]]] = {}
    out.update({f"load:{a}": ("load", {"TAC_AREA_NAME": a}) for a in AREAS})
    out.update({f"lmp:{n}:{t}": ("lmp", {"NODE": n, "LMP_TYPE": t}) for n in NODES for t in LMP_TYPES})
    out.update({f"solar:{h}": ("renewables", {"TRADING_HUB": h, "RENEWABLE_TYPE": "Solar"}) for h in SOLAR_HUBS})
    out.update({f"wind:{h}": ("renewables", {"TRADING_HUB": h, "RENEWABLE_TYPE": "Wind"}) for h in WIND_HUBS})
    return out


def _data_path() -> Any:
    return resources.files("powergrid_datasets") / "data"


@functools.lru_cache(maxsize=1)
def metadata() -> dict[str, Any]:
    """The extract's provenance, terms and column units (``caiso_2023.json``)."""
    return json.loads((_data_path() / META_FILE).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    with (_data_path() / DATA_FILE).open("rb") as fh:
        frame = pd.read_csv(fh, compression="gzip", index_col="time", float_precision="round_trip")
    frame.index = pd.to_datetime(frame.index, utc=True, format="ISO8601")
    return frame


def series(column: str) -> TimeSeries:
    """One column of the extract as a :class:`TimeSeries` (hourly, from its first to its last value)."""
    table = _table()
    if column not in table.columns:
        raise KeyError(f"the CAISO 2023 extract has no column {column!r} (it has: {', '.join(table.columns)})")
    meta = metadata()["columns"][column]
    values = table[column].dropna()
    return TimeSeries.from_frame(values, meta["unit"], step="1h", source=f"caiso_2023 extract ({column})",
                                 meta={"report": meta["report"], **meta["keys"]})


def split_days(index: pd.DatetimeIndex, split: str, tz: str) -> np.ndarray:
    """Boolean mask: the local day (in ``tz``) of each timestamp belongs to ``split`` (see the module doc)."""
    first, last = SPLITS[split]
    day = index.tz_convert(tz).day
    return np.asarray((day >= first) & (day <= last))


@attrs.frozen
class Caiso2023Params(EpisodeParams):
    area: str = choice(AREAS, "CA ISO-TAC", doc="load: TAC area (SLD_FCST TAC_AREA_NAME)")
    node: str = choice(NODES, NODES[0], doc="price: pricing node of the day-ahead LMP")
    lmp_type: str = choice(LMP_TYPES, "LMP", doc="price: the LMP or its energy / congestion / loss / GHG component")
    hub: str = choice(SOLAR_HUBS, "NP15", doc="solar/wind: trading hub (no wind at ZP26)")
    split: str = choice(("all", *SPLITS), "all",
                        doc="days episodes come from: train (day of month 1–21), validation (22–26), test (27–31)")
    tz: str = timezone(TZ, doc="time zone whose midnights are the possible episode starts (and split days)")


class Caiso2023Provider(SeriesProvider):
    """Real CAISO 2023 hourly load, day-ahead LMP, solar and wind shipped with the pack (offline)."""

    Params = Caiso2023Params
    ROLES = ("load", "price", "solar", "wind")
    NAME = "caiso_2023"

    def __init__(self, params: Any, role: str) -> None:
        super().__init__(params, role)
        if role == "wind" and params.hub not in WIND_HUBS:
            raise ValueError(f"caiso_2023 has no wind at {params.hub} (wind hubs: {', '.join(WIND_HUBS)})")
        if params.start is not None and params.split != "all":
            start = fixed_start(params).tz_convert(params.tz)  # the local day of the first value
            first, last = SPLITS[params.split]
            if not first <= start.day <= last:
                raise ValueError(f"start {params.start} ({start} in {params.tz}) is not a {params.split} day "
                                 f"(days {first}–{last} of a month)")

    def column(self) -> str:
        p = self.params
        return {"load": f"load:{p.area}", "price": f"lmp:{p.node}:{p.lmp_type}"}.get(self.role, f"{self.role}:{p.hub}")

    def describe(self) -> str:
        return f"caiso_2023 {self.column()}"

    def raw_series(self) -> TimeSeries:
        ts = series(self.column())
        return ts if self.params.split == "all" else dataclasses.replace(ts, source=f"{ts.source}, {self.params.split} days")

    def whole_params(self) -> Any:
        """As :meth:`SeriesProvider.whole_params`, every split's days too."""
        return attrs.evolve(super().whole_params(), split="all")

    def episode_rules(self, index: pd.DatetimeIndex) -> list[tuple[np.ndarray, str, str]]:
        """The ``date_from``/``date_to`` rules and, with a split, the split's days."""
        rules = super().episode_rules(index)
        p = self.params
        if p.split != "all":
            first, last = SPLITS[p.split]
            rules.append((split_days(index, p.split, p.tz), f"not a {p.split} day (days {first}–{last} of a month)",
                          f"in the {p.split} days"))
        return rules

"""The five benchmark tasks: a config under ``configs/bench/`` each, on real CAISO 2023 days.

Every task trains on the dataset pack's ``train`` days (day of month 1–21, a random day per
episode) and is scored on fixed ``test`` days (day of month 27–31): :data:`TEST_DAYS`, the 27th
of every month of 2023, taken in order (``--days N`` uses the first N). A test day is run by
setting every dataset role's ``start`` to that day (and ``split: test``), so every policy of a
task sees the same prices, loads and sun.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
import yaml

from powergrid.config import EnvConfig
from powergrid.errors import PowerGridError

#: The test days, in the order ``--days N`` takes them (local dates, America/Los_Angeles).
TEST_DAYS = ("2023-07-27", "2023-01-27", "2023-04-27", "2023-10-27", "2023-03-27", "2023-09-27",
             "2023-05-27", "2023-12-27", "2023-02-27", "2023-06-27", "2023-08-27", "2023-11-27")

def train_days(count: int | None = None, seed: int = 0) -> list[str]:
    """The first ``count`` (all 252 if None) training days of 2023 — day of month 1–21, local dates —
    in a random order drawn with ``seed``, so a few days still cover the seasons."""
    days = [d.strftime("%Y-%m-%d") for d in pd.date_range("2023-01-01", "2023-12-31", freq="D") if d.day <= 21]
    order = np.random.default_rng(seed).permutation(len(days))
    return [days[i] for i in order[:count]]


#: Folder of the task configs; ``POWERGRID_BENCH_CONFIGS`` overrides it.
CONFIG_ENV = "POWERGRID_BENCH_CONFIGS"

#: Import name → distribution of each first-party pack a task can need.
PACKS = {"powergrid_devices": "powergrid-devices", "powergrid_protocols": "powergrid-protocols",
         "powergrid_datasets": "powergrid-datasets"}


class BenchError(PowerGridError):
    """A benchmark that cannot run: unknown task, missing pack or config folder."""


@attrs.frozen
class Task:
    """One benchmark task: its config file, what it measures, and the packs it needs."""

    number: int
    name: str
    title: str
    config_file: str
    packs: tuple[str, ...] = ("powergrid_devices", "powergrid_protocols", "powergrid_datasets")

    def config_path(self) -> Path:
        return config_dir() / self.config_file

    def check_packs(self) -> None:
        """Raise :class:`BenchError` naming the pip command when a pack this task needs is missing."""
        missing = [PACKS[p] for p in self.packs if importlib.util.find_spec(p) is None]
        if missing:
            raise BenchError(f"task {self.name!r} needs {', '.join(missing)}: pip install {' '.join(missing)}")

    def raw(self) -> dict[str, Any]:
        path = self.config_path()
        if not path.is_file():
            raise BenchError(f"task {self.name!r}: config {path} not found (run from the repository root "
                             f"or set {CONFIG_ENV})")
        return yaml.safe_load(path.read_text(encoding="utf-8"))

    def config(self, day: str | None = None, *, split: str = "test", dispatch_view: bool = False) -> EnvConfig:
        """The task's config; on a ``day`` (``YYYY-MM-DD``) of ``split`` every data role starts that day.

        ``dispatch_view``: every grid agent learned (what the oracle replays its dispatch through).
        """
        self.check_packs()
        if day is None and not dispatch_view:
            return EnvConfig.from_yaml(self.config_path())
        data = self.raw()
        if day is not None:
            for params in data["datasets"].values():
                params.update(start=day, split=split)
        if dispatch_view:
            for agent in data["agents"]:
                if agent.get("kind") == "grid":
                    agent["policy"] = "learned"
        return EnvConfig.from_dict(data)


def config_dir() -> Path:
    """``$POWERGRID_BENCH_CONFIGS``, else ``configs/bench`` in the working directory or the source checkout."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    here = Path.cwd() / "configs" / "bench"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[4] / "configs" / "bench"


TASKS = {t.name: t for t in (
    Task(1, "voltage_pv", "Voltage regulation with PV inverters (IEEE 123)", "voltage_pv.yaml"),
    Task(2, "dispatch_mg", "Economic dispatch of one microgrid under its feeder limit (IEEE 123)", "dispatch_mg.yaml"),
    Task(3, "peak_shaving", "Peak shaving with storage under a demand charge (IEEE 123)", "peak_shaving.yaml"),
    Task(4, "p2p_trading", "Three-microgrid P2P trading (IEEE 34 + 3 × IEEE 13)", "p2p_trading.yaml"),
    Task(5, "hierarchy", "ISO → microgrids → devices (IEEE 34 + 3 × IEEE 13)", "hierarchy.yaml"),
)}


def task_named(name: str) -> Task:
    if name not in TASKS:
        raise BenchError(f"unknown task {name!r}: expected one of {', '.join(TASKS)} or all")
    return TASKS[name]

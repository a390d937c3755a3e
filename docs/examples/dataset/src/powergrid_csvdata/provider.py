"""Hourly profile values from a CSV file (a header ``hour,<role>,…``, one row per hour of a day)."""

from __future__ import annotations

import csv
from pathlib import Path

import attrs
import numpy as np

from powergrid.params import quantity, text
from powergrid.profiles import ProfileProvider


@attrs.frozen
class CsvParams:
    path: str = text(doc="the CSV file; a relative path is relative to the scenario file")
    scale: float = quantity("1", 1.0, gt=0, doc="factor on every value")


class CsvProfile(ProfileProvider):
    """The file's column named after the role (``price`` in $/MWh, ``load`` in pu…), held over each
    hour and repeated day after day; the same day every episode (``rng`` is not needed)."""

    Params = CsvParams

    def episode(self, n_steps: int, step_minutes: float, rng: np.random.Generator) -> np.ndarray:
        path = Path(self.params.path)
        if not path.is_file():  # FileNotFoundError: `fallback:` in the scenario takes over
            raise FileNotFoundError(f"{path}: no such file (the dataset's `path` parameter)")
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows or self.role not in rows[0]:
            columns = ", ".join(rows[0]) if rows else "none"
            raise ValueError(f"{path}: expected a column {self.role!r}, found {columns}")
        values = np.empty(len(rows))
        for i, row in enumerate(rows):
            try:
                values[i] = float(row[self.role])
            except (TypeError, ValueError):  # a blank or text cell, a short row (None)
                values[i] = np.nan
            if not np.isfinite(values[i]):  # 'nan' and 'inf' parse as floats
                raise ValueError(f"{path}:{i + 2} {self.role}: expected a finite number, got {row[self.role]!r}")
        values *= self.params.scale
        hours = (np.arange(n_steps) * step_minutes / 60.0).astype(int)
        return values[hours % len(values)]

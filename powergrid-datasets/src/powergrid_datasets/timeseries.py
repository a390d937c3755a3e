"""One time-series type for every provider, and the operations between parsing and an episode.

A :class:`TimeSeries` is a regular grid: a UTC ``DatetimeIndex`` at a fixed
step (each timestamp is the *start* of its interval), float64 columns with a
unit each, and a provenance code for every value:

=============  ==============================================================
``MEASURED``   the value as read from the source file
``INTERPOLATED`` derived by resampling to a finer step
``FILLED``     a gap of at most ``max_gap`` filled by linear interpolation
``MISSING``    no value (NaN); windows touching it are never sampled
=============  ==============================================================

Resampling is by unit: energy units (``MWh``, ``kWh``, ``Wh``) are summed when
the step grows and split evenly when it shrinks; every other unit (``MW``,
``$/MWh``, ``pu``, ``°C``) is an interval mean when the step grows, and a
mean-preserving linear interpolation when it shrinks (linear through the
interval midpoints, then shifted per source interval so its mean is the source
value). Both directions therefore conserve energy exactly.

The values and provenance of a series are never modified in place (every
operation returns a new series), so the masks an episode draw needs (valid
values, window starts) are computed once per series and kept.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from powergrid_datasets.errors import DataFileError

MEASURED, INTERPOLATED, FILLED, MISSING = 0, 1, 2, 3
#: With ``outlier_z`` off, a column whose largest |value| is at least this many times the median of its nonzero
#: |values| gets one warning (the real 2023 OASIS series reach 51×, a price component; 1e9 MW in a 1,300 MW load
#: is 10^6×; such a value also sets a peak normalisation's divisor).
SPIKE_RATIO = 1e3
#: Clipping negative values to 0 gets one warning per column when a clipped value is below ``-CLIP_NOTE`` × the
#: column's largest value (the night-time solar and wind readings of the real 2023 OASIS files reach -0.8 % of their
#: peak: clipped without a word, as documented).
CLIP_NOTE = 0.02
PROVENANCE_NAMES = {MEASURED: "measured", INTERPOLATED: "interpolated", FILLED: "filled", MISSING: "missing"}
ENERGY_UNITS = {"MWh": 1.0, "kWh": 1.0, "Wh": 1.0, "GWh": 1.0}


def is_energy(unit: str) -> bool:
    """Whether values in ``unit`` add up over time (summed on aggregation) rather than average."""
    return unit in ENERGY_UNITS


def to_timedelta(step: Any) -> pd.Timedelta:
    """``step`` (minutes as a number, a string like ``"15min"``, or a Timedelta) as a Timedelta."""
    if isinstance(step, (int, float)) and not isinstance(step, bool):
        if step <= 0:
            raise ValueError(f"a time step must be > 0, got {step} minutes")
        seconds = step * 60.0
        if abs(seconds - round(seconds)) > 1e-6:
            raise ValueError(f"a time step must be a whole number of seconds, got {step} minutes")
        return pd.Timedelta(seconds=round(seconds))
    td = pd.Timedelta(step)
    if td <= pd.Timedelta(0):
        raise ValueError(f"a time step must be > 0, got {step}")
    return td


def step_text(step: pd.Timedelta) -> str:
    """A step for messages: ``1h``, ``15min``, ``30s``."""
    seconds = int(step.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{step.total_seconds():g}s"


@dataclass(frozen=True)
class TimeSeries:
    """Regular UTC time series with units and per-value provenance. Build with :meth:`from_frame`."""

    data: pd.DataFrame
    units: dict[str, str]
    provenance: pd.DataFrame
    step: pd.Timedelta
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    #: read-only arrays computed once, by their arguments: ``valid``, ``window_starts`` and the columns' values
    _memo: dict[tuple, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)
    #: :meth:`sample_episode`'s checked fixed starts: their first timestamp and position, by its arguments
    _starts: dict[tuple, tuple[pd.Timestamp, int]] = field(default_factory=dict, init=False, repr=False, compare=False)

    # -- construction -------------------------------------------------
    @classmethod
    def from_frame(cls, frame: pd.DataFrame | pd.Series, units: dict[str, str] | str, *, step: Any = None,
                   source: str = "", meta: dict[str, Any] | None = None) -> TimeSeries:
        """A regular series from a frame indexed by timestamps (tz-aware, any zone).

        Missing timestamps inside the range become ``MISSING`` rows; NaN values
        are ``MISSING`` too. Duplicate timestamps are an error.
        """
        if isinstance(frame, pd.Series):
            frame = frame.to_frame(frame.name if frame.name is not None else "value")
        if isinstance(units, str):
            units = {c: units for c in frame.columns}
        missing_units = [c for c in frame.columns if c not in units]
        if missing_units:
            raise ValueError(f"no unit given for column(s) {missing_units}")
        index = frame.index
        if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
            raise ValueError("a TimeSeries needs a timezone-aware DatetimeIndex")
        frame = frame.copy()
        frame.index = index.tz_convert("UTC")
        if frame.index.has_duplicates:
            dups = frame.index[frame.index.duplicated()].unique()
            raise ValueError(f"duplicate timestamps in {source or 'series'}: {', '.join(map(str, dups[:5]))}")
        frame = frame.sort_index().astype(np.float64)
        if step is None:
            if len(frame) < 2:
                raise ValueError(f"cannot infer the step of {source or 'series'} from {len(frame)} value(s)")
            step = pd.Series(frame.index).diff().dropna().mode().iloc[0]  # the usual step, not an odd one
        step = to_timedelta(step)
        if len(frame):
            off = (frame.index - frame.index[0]) % step != pd.Timedelta(0)
            if off.any():
                raise DataFileError(source or "series", f"timestamp {frame.index[off][0]} is off the {step_text(step)} grid "
                                                        f"(which starts at {frame.index[0]})")
            full = pd.date_range(frame.index[0], frame.index[-1], freq=step)
            frame = frame.reindex(full)
        prov = pd.DataFrame(np.where(frame.isna().to_numpy(), MISSING, MEASURED).astype(np.int8),
                            index=frame.index, columns=frame.columns)
        return cls(frame, dict(units), prov, step, source, dict(meta or {}))

    def _replace(self, data: pd.DataFrame, provenance: pd.DataFrame, step: pd.Timedelta | None = None) -> TimeSeries:
        return TimeSeries(data, self.units, provenance, self.step if step is None else step, self.source, self.meta)

    # -- views --------------------------------------------------------
    @property
    def index(self) -> pd.DatetimeIndex:
        return self.data.index  # type: ignore[return-value]

    @property
    def columns(self) -> list[str]:
        return list(self.data.columns)

    def __len__(self) -> int:
        return len(self.data)

    def values(self, column: str | None = None) -> np.ndarray:
        return self.data[self._col(column)].to_numpy(dtype=np.float64)

    def valid(self, column: str | None = None) -> np.ndarray:
        """Boolean mask (read-only): the value exists (not ``MISSING``) — in ``column`` or in every column."""
        cols = [self._col(column)] if column is not None or len(self.columns) == 1 else self.columns

        def compute() -> np.ndarray:
            prov = self.provenance[cols].to_numpy()
            vals = self.data[cols].to_numpy()
            return ((prov != MISSING) & np.isfinite(vals)).all(axis=1)

        return self._memoized(("valid", *cols), compute)

    def _memoized(self, key: tuple, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """``compute()`` the first time ``key`` is asked for, then the same read-only array."""
        if key not in self._memo:
            array = compute()
            array.flags.writeable = False
            self._memo[key] = array
        return self._memo[key]

    def provenance_counts(self) -> dict[str, int]:
        codes, counts = np.unique(self.provenance.to_numpy(), return_counts=True)
        return {PROVENANCE_NAMES[int(c)]: int(n) for c, n in zip(codes, counts)}

    def _col(self, column: str | None) -> str:
        if column is None:
            if len(self.columns) != 1:
                raise ValueError(f"name a column: the series has {self.columns}")
            return self.columns[0]
        if column not in self.data.columns:
            raise KeyError(f"no column {column!r} (columns: {self.columns})")
        return column

    # -- selection ----------------------------------------------------
    def between(self, start: Any = None, end: Any = None) -> TimeSeries:
        """The values with ``start <= t < end`` (dates or timestamps; naive ones are UTC)."""
        mask = np.ones(len(self), dtype=bool)
        if start is not None:
            mask &= self.index >= _utc(start)
        if end is not None:
            mask &= self.index < _utc(end)
        return self._replace(self.data[mask], self.provenance[mask])

    def only(self, keep: np.ndarray) -> TimeSeries:
        """The series with every value where ``keep`` (a boolean mask of the index) is False made ``MISSING``."""
        cells = np.broadcast_to(np.asarray(keep, dtype=bool)[:, None], self.data.shape)
        return self._replace(self.data.where(cells), self.provenance.where(cells, MISSING).astype(np.int8))

    def split(self, **ranges: tuple[Any, Any]) -> dict[str, TimeSeries]:
        """Named date ranges, e.g. ``split(train=("2023-01-01", "2023-10-01"), test=("2023-10-01", None))``.

        Overlapping ranges are an error, so a test period never leaks into training.
        """
        bounds = sorted(((_utc(a) if a is not None else self.index[0], _utc(b) if b is not None else self.index[-1] + self.step, n)
                         for n, (a, b) in ranges.items()), key=lambda x: x[0])
        for (_a1, b1, n1), (a2, _b2, n2) in zip(bounds, bounds[1:]):
            if a2 < b1:
                raise ValueError(f"date ranges {n1!r} and {n2!r} overlap")
        return {n: self.between(a, b) for a, b, n in bounds}

    # -- resampling ---------------------------------------------------
    def resample(self, step: Any, origin: pd.Timestamp | None = None) -> TimeSeries:
        """The series at ``step`` (see the module doc for the rules). Non-multiple steps go via their gcd.

        A coarser grid passes through ``origin`` (a time on this series' grid; default: the epoch), e.g. a
        local midnight that the epoch-aligned grid misses (07:00 UTC with 2-hour steps).
        """
        new = to_timedelta(step)
        if new == self.step:
            return self
        old_ns, new_ns = self.step.value, new.value
        if new_ns % old_ns == 0:
            return self._downsample(new, origin)
        if old_ns % new_ns == 0:
            return self._upsample(new)
        return self._upsample(pd.Timedelta(math.gcd(old_ns, new_ns), unit="ns"))._downsample(new, origin)

    def _downsample(self, new: pd.Timedelta, origin: pd.Timestamp | None = None) -> TimeSeries:
        k = new.value // self.step.value
        # bins aligned to the epoch (or origin), so 15-min data starting at :45 fall in the right hour
        if len(self) == 0:
            return self._replace(self.data, self.provenance, new)
        if origin is None:
            first, last = self.index[0].floor(new), self.index[-1].floor(new)
        else:
            first = origin + ((self.index[0] - origin) // new) * new
            last = origin + ((self.index[-1] - origin) // new) * new
        full = pd.date_range(first, last + new - self.step, freq=self.step)
        data = self.data.reindex(full)
        prov = self.provenance.reindex(full).fillna(MISSING).astype(np.int8)
        n_bins = len(full) // k
        out_index = pd.date_range(first, periods=n_bins, freq=new)
        out, out_prov = {}, {}
        for col in self.columns:
            v = data[col].to_numpy().reshape(n_bins, k)
            p = prov[col].to_numpy().reshape(n_bins, k)
            agg = v.sum(axis=1) if is_energy(self.units[col]) else v.mean(axis=1)
            worst = p.max(axis=1)
            agg = np.where(worst == MISSING, np.nan, agg)
            out[col], out_prov[col] = agg, worst.astype(np.int8)
        return self._replace(pd.DataFrame(out, index=out_index), pd.DataFrame(out_prov, index=out_index), new)

    def _upsample(self, new: pd.Timedelta) -> TimeSeries:
        k = self.step.value // new.value
        n = len(self)
        out_index = pd.date_range(self.index[0], periods=n * k, freq=new) if n else pd.DatetimeIndex([], tz="UTC")
        out, out_prov = {}, {}
        for col in self.columns:
            v = self.data[col].to_numpy()
            p = self.provenance[col].to_numpy()
            if is_energy(self.units[col]):
                fine = np.repeat(v / k, k)
            else:
                fine = _mean_preserving_interp(v, k)
            prov = np.repeat(np.maximum(p, INTERPOLATED), k)
            prov = np.where(np.repeat(p, k) == MISSING, MISSING, prov)
            out[col], out_prov[col] = fine, prov.astype(np.int8)
        return self._replace(pd.DataFrame(out, index=out_index), pd.DataFrame(out_prov, index=out_index), new)

    # -- cleaning -----------------------------------------------------
    def fill_gaps(self, max_gap: Any) -> TimeSeries:
        """Linear interpolation over runs of at most ``max_gap`` missing values (steps, or a duration).

        Longer runs, and runs at either end, stay ``MISSING``; filled values are ``FILLED``.
        """
        if isinstance(max_gap, (int, np.integer)):
            limit = int(max_gap)
        else:  # a number is minutes; 0 fills nothing
            limit = int((pd.Timedelta(minutes=max_gap) if isinstance(max_gap, float) else pd.Timedelta(max_gap)) // self.step)
        if limit < 0:
            raise ValueError(f"max_gap must be ≥ 0, got {max_gap}")
        data, prov = self.data.copy(), self.provenance.copy()
        for col in self.columns:
            v = data[col].to_numpy().copy()
            p = prov[col].to_numpy().copy()
            miss = (p == MISSING) | ~np.isfinite(v)
            for start, stop in _runs(miss):
                if start == 0 or stop == len(v) or stop - start > limit:
                    v[start:stop] = np.nan
                    p[start:stop] = MISSING
                    continue
                a, b = v[start - 1], v[stop]
                frac = np.arange(1, stop - start + 1) / (stop - start + 1)
                v[start:stop] = a + (b - a) * frac
                p[start:stop] = FILLED
            data[col], prov[col] = v, p
        return self._replace(data, prov)

    def apply_negative_policy(self, policy: str) -> TimeSeries:
        """``keep`` negative values, ``clip`` them to 0 (kept as measured), or mark them ``invalid`` (missing)."""
        if policy == "keep":
            return self
        if policy not in ("clip", "invalid"):
            raise ValueError(f"negative-value policy must be keep, clip or invalid, got {policy!r}")
        data, prov = self.data.copy(), self.provenance.copy()
        neg = data.to_numpy() < 0
        if policy == "clip":
            for j, col in enumerate(self.columns):
                values = data[col].to_numpy()
                if neg[:, j].any() and values[neg[:, j]].min() < -CLIP_NOTE * np.nanmax(np.abs(values)):
                    where, first = self._place(col, neg[:, j])
                    self._warn_once(("clip", col), f"{int(neg[:, j].sum())} value(s) clipped to 0 in {where}, first at "
                                                   f"{first} (lowest {values[neg[:, j]].min():,.6g} {self.units[col]}; "
                                                   f"the dataset's negative setting: keep or invalid to change it)")
            data = data.clip(lower=0.0)
        else:
            data = data.mask(neg)
            prov = prov.mask(neg, MISSING).astype(np.int8)
        return self._replace(data, prov)

    def mark_outliers(self, z: float, window: Any = "3h") -> TimeSeries:
        """Mark values farther than ``z`` robust deviations from a centred rolling median as ``MISSING``.

        The residual is ``x - rolling_median(x, window)`` (at least 5 values wide); its
        scale is 1.4826 × the median absolute step-to-step change over the whole series
        (a robust noise level that a smooth daily cycle does not inflate), at least 1 % of
        the median level. ``z <= 0`` is off.
        """
        if z <= 0:
            self._warn_spikes()
            return self
        n_win = max(5, int(to_timedelta(window) // self.step) | 1)
        data, prov = self.data.copy(), self.provenance.copy()
        for col in self.columns:
            s = data[col]
            resid = (s - s.rolling(n_win, center=True, min_periods=1).median()).abs()
            if not resid.notna().any():
                continue
            steps = np.abs(np.diff(s.to_numpy()))
            scale = 1.4826 * float(np.nanmedian(steps)) if np.isfinite(steps).any() else 0.0
            # a series that often repeats its value has no step-to-step noise: floor at 1 % of its typical level
            scale = max(scale, 0.01 * float(np.nanmedian(np.abs(s.to_numpy()))), 1e-9)
            bad = (resid > z * scale).to_numpy()
            data[col] = s.mask(bad)
            prov[col] = np.where(bad, MISSING, prov[col].to_numpy()).astype(np.int8)
        return self._replace(data, prov)

    def _warn_spikes(self) -> None:
        """One warning per column whose largest |value| is at least :data:`SPIKE_RATIO` × the median nonzero one."""
        for col in self.columns:
            values = self.data[col].to_numpy()
            size = np.where(np.isfinite(values), np.abs(values), 0.0)
            nonzero = size[size > 0]
            if nonzero.size and size.max() >= SPIKE_RATIO * (median := float(np.median(nonzero))):
                at = int(size.argmax())
                where, first = self._place(col, np.arange(len(values)) == at)
                unit = self.units[col]
                self._warn_once(("spike", col), f"max {values[at]:,.6g} {unit} is 10^{int(math.log10(size[at] / median))} × "
                                                f"the median ({median:,.6g} {unit}) in {where}, at {first}; set the "
                                                f"dataset's outlier_z (e.g. 6) to screen it")

    def _place(self, column: str, mask: np.ndarray) -> tuple[str, str]:
        """Where the values of ``column`` under ``mask`` are, for a warning: (``FILE column C (series)`` and how many
        other files hold some, the line of the first one) when the series knows the file and row of each time
        (``meta["rows"]``, ``meta["value_column"]``: see :func:`powergrid_datasets.caiso.select`), else (the source,
        the first time)."""
        times = self.index[mask]
        rows = self.meta.get("rows")
        if rows is None or times[0] not in rows.index:
            return f"{self.source or 'the series'} column {column}", str(times[0])
        from powergrid_datasets.files import row_place

        files = rows["file"].reindex(times).dropna()
        file, line = row_place(files.iloc[0], int(rows.at[times[0], "row"]))
        others = files.nunique() - 1
        where = f"{file} column {self.meta.get('value_column', column)} ({column})"
        return where + (f" and {others} other file(s)" if others else ""), line

    def _warn_once(self, key: tuple, message: str) -> None:
        """Warn ``message`` unless this series, or the one it was derived from, already warned ``key`` (a provider
        cleans its whole series and the part its episodes may use: one warning)."""
        warned = self.meta.setdefault("warned", set())
        if key not in warned:
            warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    def scaled(self, factor: float, unit: str | None = None) -> TimeSeries:
        data = self.data * factor
        units = {c: unit or u for c, u in self.units.items()}
        return TimeSeries(data, units, self.provenance, self.step, self.source, self.meta)

    # -- episodes -----------------------------------------------------
    def window_starts(self, n_steps: int, *, day_tz: str = "UTC", column: str | None = None,
                      start_hour: float = 0.0) -> np.ndarray:
        """Positions (read-only) ``start_hour`` hours after local midnights (in ``day_tz``) where ``n_steps``
        values are all valid."""
        n = len(self)

        def compute() -> np.ndarray:
            if n_steps <= 0 or n_steps > n:
                return np.empty(0, dtype=np.int64)
            bad = (~self.valid(column)).astype(np.int64)
            csum = np.concatenate([[0], np.cumsum(bad)])
            local = (self.index - pd.Timedelta(hours=start_hour)).tz_convert(day_tz)
            midnight = (local.hour == 0) & (local.minute == 0) & (local.second == 0)
            starts = np.flatnonzero(midnight[: n - n_steps + 1])
            ok = csum[starts + n_steps] - csum[starts] == 0
            return starts[ok]

        return self._memoized(("window_starts", n_steps, day_tz, column, start_hour), compute)

    def sample_episode(self, n_steps: int, rng: np.random.Generator, *, day_tz: str = "UTC", start: Any = None,
                       column: str | None = None, start_hour: float = 0.0) -> tuple[pd.Timestamp, np.ndarray]:
        """``n_steps`` valid values from ``start_hour`` hours after the midnight of a random day (or from the fixed
        ``start``), and their first timestamp."""
        key = (start, day_tz, column, n_steps)
        if start is not None and key in self._starts:  # checked before: same first timestamp and position
            first, pos = self._starts[key]
            return first, self._column(column)[pos: pos + n_steps].copy()
        col = self._col(column)
        if start is not None:
            t0 = _utc(start, tz=day_tz)
            try:
                pos = self.index.get_loc(t0)
            except KeyError:
                pos = -1
            if pos < 0:
                where = ("outside the data" if not len(self) or not self.index[0] <= t0 <= self.index[-1]
                         else f"not on its {step_text(self.step)} grid")
                span = f"{self.index[0]} … {self.index[-1]}" if len(self) else "no values"
                raise DataFileError(self.source, f"start {t0.tz_convert(day_tz)} ({day_tz}) is {where} "
                                                 f"({span}, every {step_text(self.step)})")
            window = slice(pos, pos + n_steps)
            if pos + n_steps > len(self) or not self.valid(col)[window].all():
                raise DataFileError(self.source, f"the {n_steps} steps from {start} are not all valid "
                                                 f"(the series ends at {self.index[-1]} or has an unfilled gap there)")
            self._starts[key] = (self.index[pos], pos)
        else:
            starts = self.window_starts(n_steps, day_tz=day_tz, column=col, start_hour=start_hour)
            if len(starts) == 0:
                at = f"{start_hour:g} h after a midnight" if start_hour else "at a midnight"
                raise DataFileError(self.source, f"no window of {n_steps} steps of {self.step} starting {at} "
                                                 f"({day_tz}) without unfilled gaps ({len(self)} values, "
                                                 f"{int((~self.valid(col)).sum())} missing)")
            pos = int(starts[rng.integers(len(starts))])
        return self.index[pos], self._column(col)[pos: pos + n_steps].copy()

    def _column(self, column: str | None) -> np.ndarray:
        """:meth:`values` of ``column``, computed once (a read-only copy: the frame's own array stays writable)."""
        return self._memoized(("values", self._col(column)), lambda: self.values(column).copy())


def align(series: Sequence[TimeSeries], *, step: Any = None, start: Any = None, end: Any = None) -> list[TimeSeries]:
    """The series resampled to a common ``step`` (default: the coarsest) and cut to their common range."""
    if not series:
        return []
    target = to_timedelta(step) if step is not None else max(s.step for s in series)
    resampled = [s.resample(target) for s in series]
    lo = max(s.index[0] for s in resampled)
    hi = min(s.index[-1] for s in resampled) + target
    if start is not None:
        lo = max(lo, _utc(start))
    if end is not None:
        hi = min(hi, _utc(end))
    if lo >= hi:
        raise ValueError("the series have no time range in common")
    return [s.between(lo, hi) for s in resampled]


def _utc(value: Any, tz: str = "UTC") -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize(tz)
    return ts.tz_convert("UTC")


def _runs(mask: np.ndarray) -> Iterable[tuple[int, int]]:
    """``(start, stop)`` of every run of True in ``mask``."""
    if not mask.any():
        return []
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2], edges[1::2]))


def _mean_preserving_interp(v: np.ndarray, k: int) -> np.ndarray:
    """Split each interval mean ``v[i]`` into ``k`` sub-interval values whose mean is exactly ``v[i]``."""
    n = len(v)
    if n == 0:
        return np.empty(0)
    centres = np.arange(n) + 0.5
    fine_t = (np.arange(n * k) + 0.5) / k
    finite = np.isfinite(v)
    if finite.sum() >= 2:
        lin = np.interp(fine_t, centres[finite], v[finite])
    else:
        lin = np.repeat(np.where(finite, v, 0.0), k)
    lin = lin.reshape(n, k)
    lin += (v - lin.mean(axis=1))[:, None]
    return lin.reshape(-1)

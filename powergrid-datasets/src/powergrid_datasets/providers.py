"""The ProfileProvider classes of the pack: ``Provider(params, role).episode(n_steps, step_minutes, rng)``.

File-backed providers (caiso, ercot, nyiso, simbench) share one pipeline, run
once per process and parameter set:

1. parse the source into a :class:`~powergrid_datasets.timeseries.TimeSeries` at its own step; the times outside
   ``date_from``–``date_to`` (and outside ``caiso_2023``'s ``split``) are missing from step 2 on, so that no
   cleaning of an episode's values reads a held-out one;
2. negative values: ``negative`` (``auto`` = clip for load/solar/wind, keep for price);
3. outliers: values more than ``outlier_z`` robust deviations from a centred 3-hour rolling
   median (at least 5 values) become missing (off by default);
4. gaps of at most ``max_gap_hours`` are filled linearly; longer gaps stay missing
   and no episode window ever touches them;
5. normalisation by role (``normalize: auto``): load ÷ the series mean (``mean``) or
   peak (``peak``) → pu multiplier; solar/wind ÷ ``capacity_mw`` if given, else ÷ the
   peak → 0–1; price and temperature as is; then × ``scale``. The divisor is taken
   over the whole series, so train and test periods share one scale;
6. at every episode: resample to ``step_minutes``, pick a random local day (in ``tz``)
   between ``date_from`` and ``date_to`` whose window from ``start_hour`` hours after its
   midnight is valid (or the fixed ``start``), and return ``n_steps`` float64 values;
7. after an episode, :meth:`SeriesProvider.previous_day` gives the values of the local day before it (from
   ``start_hour`` hours after that day's midnight) from the whole series (the past known when the episode starts: the
   level of the loads' forecast and the bench's persistence features).
"""

from __future__ import annotations

import calendar
import datetime as _dt
import functools
import os
import threading
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np
import pandas as pd

from powergrid.loads import day_type, episode_start
from powergrid.params import Check, choice, flag, integer, quantity, text
from powergrid.profiles import ProfileProvider
from powergrid_datasets import cache, caiso, ercot, nyiso, pvlib_provider, simbench_provider, synthetic
from powergrid_datasets.errors import DataFileError, DataUnavailableError
from powergrid_datasets.timeseries import TimeSeries

DATA_ENV = "POWERGRID_DATA_DIR"


# -- parameter fields that core does not have -------------------------------------
def optional_text(*, doc: str = "") -> Any:
    """A string field that may be left out (``None``)."""

    def convert(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise ValueError("a non-empty string")
        return value

    check = Check("a non-empty string", convert)
    return attrs.field(default=None, converter=convert, metadata={"unit": "", "check": check, "doc": doc})


def optional_date(*, doc: str = "") -> Any:
    """A date or timestamp (``2023-07-01``, ``2023-07-01T06:00``); YAML dates are accepted too."""
    expected = "a date like 2023-07-01 (or a timestamp)"

    def convert(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, (_dt.date, _dt.datetime)):
            return value.isoformat()
        if not isinstance(value, str):
            raise ValueError(expected)
        try:
            pd.Timestamp(value)
        except (ValueError, TypeError):
            raise ValueError(expected) from None
        return value

    check = Check(expected, convert)
    return attrs.field(default=None, converter=convert, metadata={"unit": "", "check": check, "doc": doc})


def timezone(default: str, *, doc: str = "") -> Any:
    """A time zone name that pandas knows (IANA such as ``America/Los_Angeles``, or ``UTC``)."""
    expected = "a time zone name such as America/Los_Angeles or UTC (IANA)"

    def convert(value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise ValueError(expected)
        try:
            pd.Timestamp("2000-01-01").tz_localize(value)
        except Exception:  # zoneinfo, pytz and dateutil each raise their own error for an unknown name
            raise ValueError(expected) from None
        return value

    check = Check(expected, convert)
    return attrs.field(default=default, converter=convert, metadata={"unit": "", "check": check, "doc": doc})


def check_times(params: Any) -> None:
    """Raise ``ValueError`` naming the parameter when ``start``, ``date_from`` or ``date_to`` is not a time in
    ``tz`` (a clock time skipped or repeated by a DST change), when ``date_from`` is not before ``date_to`` or
    when a ``start`` timestamp is not ``start_hour`` hours after its local midnight (the clock's hour at tick 0)."""
    for name in ("start", "date_from", "date_to"):
        value = getattr(params, name, None)
        if value is not None:
            try:
                _local(value, params.tz)
            except Exception as exc:  # NonExistentTimeError, AmbiguousTimeError
                raise ValueError(f"{name}: {value} is not one time in {params.tz}: the clock skips or repeats it "
                                 f"on a DST change ({type(exc).__name__}); give another time or a date") from None
    lo, hi = getattr(params, "date_from", None), getattr(params, "date_to", None)
    if lo is not None and hi is not None and _local(lo, params.tz) >= _local(hi, params.tz):
        raise ValueError(f"date_from ({lo}) must be before date_to ({hi}): episodes lie in [date_from, date_to)")
    start = getattr(params, "start", None)
    if start is not None and _date_only(start) is None:
        t0 = _local(start, params.tz)
        hours = (t0 - _midnight_utc(t0.tz_convert(params.tz).date(), params.tz)) / pd.Timedelta(hours=1)
        if hours != params.start_hour:
            raise ValueError(f"start: {start} is {hours:g} h after its local midnight but start_hour is "
                             f"{params.start_hour} (time.start_hour: the clock's hour at tick 0); give a date, "
                             f"or a time {params.start_hour} h after midnight")


def optional_quantity(unit: str, *, gt: float = 0.0, doc: str = "") -> Any:
    expected = f"a number > {gt} ({unit})"

    def convert(value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= gt:
            raise ValueError(expected)
        return float(value)

    check = Check(expected, convert)
    return attrs.field(default=None, converter=convert, metadata={"unit": unit, "check": check, "doc": doc})


@attrs.frozen
class EpisodeParams:
    """Parameters every series-backed provider shares (episode window, cleaning, normalisation)."""

    start: str | None = optional_date(doc="fixed episode start (local date in `tz`, or a timestamp); default: a random day")
    date_from: str | None = optional_date(doc="first date episodes may start on (train/test split)")
    date_to: str | None = optional_date(doc="episodes end before this date (exclusive)")
    tz: str = timezone("UTC", doc="time zone whose midnights are the possible episode starts")
    start_hour: int = integer(0, ge=0, le=23, doc="episodes start this many hours after a local midnight "
                                                  "(default: time.start_hour)")
    normalize: str = choice(("auto", "mean", "peak", "none"), "auto",
                            doc="auto: load→mean, solar/wind→peak (or capacity_mw), price/temperature→none")
    capacity_mw: float | None = optional_quantity("MW", doc="solar/wind: divide by this capacity instead of the peak")
    scale: float = quantity("1", 1.0, gt=0, doc="multiplies the normalised values")
    max_gap_hours: float = quantity("h", 3.0, ge=0, doc="longest gap filled by interpolation; longer gaps are never sampled")
    negative: str = choice(("auto", "clip", "keep", "invalid"), "auto",
                           doc="negative values: auto = keep for price, clip to 0 otherwise; invalid = treat as missing")
    outlier_z: float = quantity("1", 0.0, ge=0, doc="mark values this many robust deviations from a centred 3-hour "
                                                    "rolling median as missing (0: off)")


@attrs.frozen
class FileParams(EpisodeParams):
    path: str | None = optional_text(doc=f"file or folder of report files; default: ${DATA_ENV}")


_SERIES_CACHE: dict[tuple, TimeSeries] = {}
_LOCK = threading.Lock()


class SeriesProvider(ProfileProvider):
    """A provider whose data are one :class:`TimeSeries` (see the module doc for the pipeline)."""

    Params: ClassVar[type] = FileParams
    ROLES: ClassVar[tuple[str, ...]] = ()
    NAME: ClassVar[str] = ""

    def __init__(self, params: Any, role: str) -> None:
        super().__init__(params, role)
        if role not in self.ROLES:
            raise ValueError(f"dataset {self.NAME!r} has no {role!r} profile (it has: {', '.join(self.ROLES)})")
        check_times(params)
        if params.capacity_mw is not None and (role not in ("solar", "wind") or self.normalize_mode() == "none"):
            raise ValueError(f"capacity_mw divides a solar or wind series (normalize not none); it would be ignored "
                             f"for this {role} profile (normalize: {self.normalize_mode()})")
        self.last_start: pd.Timestamp | None = None
        self._peers: list[SeriesProvider] = []
        self._days: dict[tuple[int, float], set[_dt.date]] = {}
        self._common_days: dict[tuple[int, float], list[_dt.date]] = {}
        self._spans: set[tuple[int, float]] = set()  # (n_steps, step_minutes) whose fixed-start episode was checked
        self._windows: dict[tuple[float, Any], Any] = {}  # resampled windows by (step, grid); grids and pasts by step

    def __getstate__(self) -> dict[str, Any]:
        # the resampled windows are rebuilt on first use (they can be large: a year at the episode step)
        return {**self.__dict__, "_windows": {}}

    def bind(self, providers: Any) -> None:
        """Remember the scenario's other series providers: every role starts its episode on one common day."""
        unwrapped = (getattr(p, "primary", p) for p in providers.values())
        self._peers = [p for p in unwrapped if isinstance(p, SeriesProvider) and p is not self]
        self._common_days = {}

    # subclasses
    def raw_series(self) -> TimeSeries:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.NAME} {self.role}"

    # pipeline
    def normalize_mode(self) -> str:
        if self.params.normalize != "auto":
            return self.params.normalize
        return {"load": "mean", "solar": "peak", "wind": "peak"}.get(self.role, "none")

    def negative_mode(self) -> str:
        if self.params.negative != "auto":
            return self.params.negative
        return "keep" if self.role in ("price", "temperature") else "clip"

    def series(self) -> TimeSeries:
        """The cleaned, normalised series at the source step (cached per process and data folder)."""
        key = (type(self), self.params, self.role, os.environ.get(DATA_ENV))
        with _LOCK:
            if key not in _SERIES_CACHE:
                _SERIES_CACHE[key] = self._prepare()
            return _SERIES_CACHE[key]

    def episode_rules(self, index: pd.DatetimeIndex) -> list[tuple[np.ndarray, str, str]]:
        """Each rule that holds times out of episodes: (mask of the times of ``index`` it keeps, what a held-out
        time is not, where an episode must lie), here ``date_from`` ≤ t < ``date_to``."""
        p = self.params
        rules = []
        if p.date_from is not None:
            rules.append((np.asarray(index >= _local(p.date_from, p.tz)),
                          f"not on or after date_from ({p.date_from})", "on or after date_from"))
        if p.date_to is not None:
            rules.append((np.asarray(index < _local(p.date_to, p.tz)), f"not before date_to ({p.date_to})",
                          "before date_to"))
        return rules

    def episode_days(self, index: pd.DatetimeIndex) -> np.ndarray | None:
        """Mask of the times episodes may use (every :meth:`episode_rules` keeps them), or None: all of them."""
        rules = self.episode_rules(index)
        return np.logical_and.reduce([keep for keep, _, _ in rules]) if rules else None

    def check_span(self, start: pd.Timestamp, n_steps: int, step_minutes: float) -> None:
        """Raise naming the held-out local days that the episode from the fixed ``start`` runs into."""
        p = self.params
        index = pd.date_range(start, periods=int(n_steps), freq=pd.Timedelta(minutes=step_minutes))
        for keep, held_out, expected in self.episode_rules(index):
            if not keep.all():
                days = sorted(set(index[~keep].tz_convert(p.tz).date))
                named = ", ".join(map(str, days)) if len(days) <= 3 else f"{days[0]} … {days[-1]} ({len(days)} days)"
                first, end = (t.tz_convert(p.tz).strftime("%Y-%m-%d %H:%M") for t in (start, index[-1] + index.freq))
                raise DataFileError(self.series().source, f"start {p.start} ({first} {p.tz}): its {n_steps} "
                                                          f"steps of {step_minutes:g} min run to {end} and "
                                                          f"cross {named}, {held_out}; give a start whose whole "
                                                          f"episode lies {expected}")

    def _cleaned(self, ts: TimeSeries) -> TimeSeries:
        """Steps 2–4 of the module doc: negative values, outliers, short gaps."""
        p = self.params
        ts = ts.apply_negative_policy(self.negative_mode())
        ts = ts.mark_outliers(p.outlier_z)
        return ts.fill_gaps(pd.Timedelta(hours=p.max_gap_hours))

    def _prepare(self) -> TimeSeries:
        """The cleaned series, normalised by the whole series' divisor; the times outside :meth:`episode_days` are
        dropped before cleaning, so that no gap fill or outlier test of an episode uses a held-out value."""
        p = self.params
        raw = self.raw_series()
        whole = self._cleaned(raw)
        keep = self.episode_days(raw.index)
        ts = whole if keep is None or keep.all() else self._cleaned(raw.only(keep))
        values = whole.values()
        mode = self.normalize_mode()
        if mode == "none":
            divisor, unit = 1.0, ts.units[ts.columns[0]]
        else:
            if self.role in ("solar", "wind") and p.capacity_mw is not None:
                divisor = p.capacity_mw
            else:
                finite = values[np.isfinite(values)]
                divisor = float(finite.mean() if mode == "mean" else finite.max()) if finite.size else float("nan")
            if not np.isfinite(divisor) or divisor <= 0:
                raise DataFileError(ts.source, f"cannot normalise {self.describe()} by its {mode} ({divisor})")
            unit = "pu"
        ts = ts.scaled(p.scale / divisor, unit)
        ts.meta.update(divisor=divisor, normalize=mode)
        return ts

    def _window(self, step_minutes: float, origin: pd.Timestamp | None = None) -> TimeSeries:
        """The series between ``date_from`` and ``date_to``, at the episode step (resampled once per step and
        grid; ``origin``: a time the grid passes through, see :meth:`_origins`)."""
        key = (float(step_minutes), origin)
        if key not in self._windows:
            p = self.params
            ts = self.series()
            if p.date_from is not None or p.date_to is not None:
                lo = _local(p.date_from, p.tz) if p.date_from else None
                hi = _local(p.date_to, p.tz) if p.date_to else None
                ts = ts.between(lo, hi)
            self._windows[key] = ts.resample(step_minutes) if origin is None else ts.resample(step_minutes, origin=origin)
        return self._windows[key]

    def _origins(self, step_minutes: float) -> list[pd.Timestamp | None]:
        """The grids whose windows start the episodes at this step: ``[None]`` (the default grid) when it holds
        every episode start (``start_hour`` after a local midnight) of the data, else one grid per position of
        the starts on it (with 2-hour steps Pacific midnights fall at 08:00 UTC in winter and 07:00 UTC in
        summer: two grids)."""
        key = (float(step_minutes), "origins")
        if key not in self._windows:
            base = self._window(step_minutes)
            origins: list[pd.Timestamp | None] = [None]
            if len(base):
                tz, after = self.params.tz, pd.Timedelta(hours=self.params.start_hour)
                starts = base.index.tz_convert(tz).normalize().unique().tz_convert("UTC") + after
                offsets = ((starts - base.index[0]) % base.step).unique()
                origins += [base.index[0] + offset for offset in sorted(offsets) if offset]
            self._windows[key] = origins
        return self._windows[key]

    def _window_at(self, start: pd.Timestamp | None, step_minutes: float) -> TimeSeries:
        """The window whose grid holds ``start`` (the default one when none does, or no start is given)."""
        origins = self._origins(step_minutes)
        if start is not None and len(origins) > 1:
            step = self._window(step_minutes).step
            for origin in origins[1:]:
                if (start - origin) % step == pd.Timedelta(0):
                    return self._window(step_minutes, origin)
        return self._window(step_minutes)

    def start_days(self, n_steps: int, step_minutes: float) -> set[_dt.date]:
        """The local days (in ``tz``) whose time ``start_hour`` starts ``n_steps`` valid values (cached)."""
        key = (int(n_steps), float(step_minutes))
        if key not in self._days:
            days: set[_dt.date] = set()
            after = pd.Timedelta(hours=self.params.start_hour)
            for origin in self._origins(step_minutes):
                ts = self._window(step_minutes, origin)
                starts = ts.window_starts(int(n_steps), day_tz=self.params.tz, start_hour=self.params.start_hour)
                days |= set((ts.index[starts] - after).tz_convert(self.params.tz).date)
            self._days[key] = days
        return self._days[key]

    def _common_start(self, n_steps: int, step_minutes: float, rng: np.random.Generator) -> pd.Timestamp | None:
        """A random day every series role of the scenario covers (the intersection), or None when alone.

        Each role draws with the same seed from the same sorted days, so all land on the same day.
        """
        if all(q.params.start for q in self._peers):
            return None
        key = (int(n_steps), float(step_minutes))
        if key not in self._common_days:
            self._common_days[key] = self._days_in_common(n_steps, step_minutes)
        days = self._common_days[key]
        return self._day_start(days[int(rng.integers(len(days)))])

    def _days_in_common(self, n_steps: int, step_minutes: float) -> list[_dt.date]:
        """The sorted days of :meth:`_common_start` (computed once per episode length and step).

        Roles without data (about to use their fallback), roles whose data cannot be read and roles with a fixed
        ``start`` do not constrain it: a peer's bad file is reported once, by that peer's own :meth:`episode` at its
        own ``datasets.<role>``, not blamed on this role.
        """
        peers = [q for q in self._peers if not q.params.start]
        days = self.start_days(n_steps, step_minutes)
        covered = [f"{self.role} ({self.describe()})"]
        for peer in peers:
            try:
                days = days & peer.start_days(n_steps, step_minutes)
            except (OSError, ValueError):  # FileNotFoundError: no data; else its own episode() raises the same
                continue
            covered.append(f"{peer.role} ({peer.describe()})")
        if not days:
            raise DataFileError(self.series().source, f"the datasets of {', '.join(covered)} have no day in common "
                                                      f"with {n_steps} valid steps of {step_minutes} min; give them "
                                                      f"overlapping data or one `start`")
        return sorted(days)

    def _day_start(self, day: _dt.date) -> pd.Timestamp:
        """The UTC time ``start_hour`` hours after the local midnight (in ``tz``) that starts ``day``."""
        return _midnight_utc(day, self.params.tz) + pd.Timedelta(hours=self.params.start_hour)

    def episode(self, n_steps: int, step_minutes: float, rng: np.random.Generator) -> np.ndarray:
        p = self.params
        if p.start and (int(n_steps), float(step_minutes)) not in self._spans:
            self.check_span(fixed_start(p), n_steps, step_minutes)
            self._spans.add((int(n_steps), float(step_minutes)))
        start = fixed_start(p) if p.start else self._common_start(n_steps, step_minutes, rng)
        if start is None and len(self._origins(step_minutes)) > 1:  # starts on two grids: draw the day here
            days = sorted(self.start_days(n_steps, step_minutes))
            if days:
                start = self._day_start(days[int(rng.integers(len(days)))])
        ts = self._window_at(start, step_minutes)
        self.last_start, values = ts.sample_episode(int(n_steps), rng, day_tz=p.tz, start=start,
                                                    start_hour=p.start_hour)
        return self._bounded(values)

    def _bounded(self, values: np.ndarray) -> np.ndarray:
        """Values at the episode step within the role's bounds (float64): solar and wind in [0, ``scale``] when
        normalised, others ≥ 0 under ``negative: clip`` (resampling up may overshoot 0 or the peak slightly)."""
        if self.role in ("solar", "wind") and self.normalize_mode() != "none":
            values = np.clip(values, 0.0, self.params.scale)
        elif self.negative_mode() == "clip":
            values = np.maximum(values, 0.0)
        return values.astype(np.float64)

    def whole_params(self) -> Any:
        """The parameters of this provider's series with every time of its source (no ``start``, ``date_from``,
        ``date_to``): the same cleaning and scale (the divisor is the whole series')."""
        return attrs.evolve(self.params, start=None, date_from=None, date_to=None)

    def previous_day(self, n_steps: int, step_minutes: float) -> np.ndarray | None:
        """The ``n_steps`` values at ``step_minutes`` from the start of the local day before the last episode's
        (``start_hour`` hours after its midnight in ``tz``: 23 or 25 h before the episode after a DST change), in the
        episode's units and bounds, or None before any episode: the past known when the episode starts, equal to
        the previous day's episode.

        Read from the whole series (:meth:`whole_params`): ``date_from``, ``date_to`` and a ``split`` hold days out
        of episodes, not out of the past, so a test day's previous day may be a validation day. When a value of the
        day before is missing (the first day of the data, or a gap longer than ``max_gap_hours``), the most recent
        earlier day of the episode's day type (weekday, Saturday or Sunday: :func:`powergrid.loads.day_type`) whose
        values are all there; when there is none, the whole series' mean at every step (1 pu times ``scale`` for a
        load normalised by its mean: no day's values), e.g. on the data's first day (caiso_2023: 2023-01-01).
        """
        if self.last_start is None:
            return None
        step = pd.Timedelta(minutes=step_minutes)
        today = episode_start(self)  # a date: last_start is a time
        past = self._past(step_minutes, self.last_start)
        back = 1
        while len(past) and (first := self._day_start(today - _dt.timedelta(days=back))) >= past.index[0]:
            if back == 1 or day_type(today - _dt.timedelta(days=back)) == day_type(today):
                ticks = pd.date_range(first, periods=int(n_steps), freq=step)  # on the grid through that day's start
                values = self._past(step_minutes, first).reindex(ticks).to_numpy(np.float64)
                if np.isfinite(values).all():
                    return self._bounded(values)
            back += 1
        finite = past.to_numpy(np.float64)
        finite = finite[np.isfinite(finite)]
        return self._bounded(np.full(int(n_steps), finite.mean() if finite.size else 0.0))

    def _past(self, step_minutes: float, start: pd.Timestamp) -> pd.Series:
        """The whole series (:meth:`whole_params`) at ``step_minutes`` on the grid through ``start`` (once per step
        and grid)."""
        step = pd.Timedelta(minutes=step_minutes)
        offset = (start - pd.Timestamp(0, tz="UTC")) % step
        key = (float(step_minutes), ("past", offset))
        if key not in self._windows:
            whole = type(self)(self.whole_params(), self.role).series()
            ts = whole.resample(step) if not offset else whole.resample(step, origin=start)
            self._windows[key] = ts.data.iloc[:, 0]
        return self._windows[key]


@functools.lru_cache(maxsize=4096)  # bounded: a process may read many datasets and zones
def _midnight_utc(day: _dt.date, tz: str) -> pd.Timestamp:
    """The UTC time of the local midnight (in ``tz``) that starts ``day``."""
    return pd.Timestamp(day).tz_localize(tz).tz_convert("UTC")


def _local(value: str, tz: str) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return (ts.tz_localize(tz) if ts.tzinfo is None else ts).tz_convert("UTC")


def _date_only(value: str) -> _dt.date | None:
    """The date of a ``start`` that names a day without a time (``2023-07-04``), else None."""
    try:
        return _dt.date.fromisoformat(value)
    except ValueError:
        return None


def fixed_start(params: Any) -> pd.Timestamp:
    """The UTC time of a fixed ``start``: a date at ``start_hour`` hours after its local midnight, a timestamp as is."""
    day = _date_only(params.start)
    if day is None:
        return _local(params.start, params.tz)
    return _midnight_utc(day, params.tz) + pd.Timedelta(hours=params.start_hour)


def data_dir(provider: str) -> Path | None:
    """``$POWERGRID_DATA_DIR/<provider>`` if it exists, else ``$POWERGRID_DATA_DIR``, else None."""
    env = os.environ.get(DATA_ENV)
    if not env:
        return None
    base = Path(env).expanduser()
    if not base.is_dir():
        raise DataUnavailableError(f"{DATA_ENV}={env}: no such folder (expected a folder of {provider} report files)")
    return base / provider if (base / provider).is_dir() else base


def _given_path(path: str) -> Path:
    where = Path(path).expanduser()
    if not where.exists():
        raise DataUnavailableError(f"{where}: no such file or folder (the dataset's `path` parameter)")
    return where


def _offline_message(what: str, provider: str, role: str) -> str:
    return (f"no {what} data available locally: set the dataset's `path` parameter "
            f"(datasets.{role}.path in the scenario YAML) or the {DATA_ENV} environment variable "
            f"to a folder holding the {provider} report files")


# -- CAISO ---------------------------------------------------------------------------
REPORT_FOR_ROLE = {"load": "load", "price": "lmp", "solar": "renewables", "wind": "renewables"}


@attrs.frozen
class CaisoParams(FileParams):
    report: str = choice(("auto", "load", "lmp", "renewables"), "auto",
                         doc="OASIS report: load = SLD_FCST, lmp = PRC_LMP, renewables = SLD_REN_FCST; auto: by role")
    area: str = text("CA ISO-TAC", doc="load: TAC_AREA_NAME (AVA, PGE-TAC, SCE-TAC, …)")
    node: str = text("0096WD_7_N001", doc="lmp: pricing node")
    market: str | None = optional_text(doc="MARKET_RUN_ID: default DAM for lmp, ACTUAL otherwise")
    lmp_type: str = choice(("LMP", "MCE", "MCC", "MCL", "MGHG"), "LMP", doc="lmp: price or component")
    hub: str = choice(("NP15", "SP15", "ZP26"), "NP15", doc="renewables: TRADING_HUB")
    type: str = choice(("auto", "solar", "wind"), "auto", doc="renewables: RENEWABLE_TYPE; auto: the role")
    year: int = integer(2023, ge=2009, le=2100, doc="year to download (with download: true) when no files are local")
    download: bool = flag(False, doc="download the year from OASIS into the cache when no files are local "
                                     "(never implicit; or run `powergrid datasets fetch caiso`)")
    allow_url: str | None = optional_text(doc=f"download from this SingleZip URL instead of the official "
                                              f"{caiso.DEFAULT_URL} (or ${caiso.URL_ENV})")
    bad_values: str = choice(caiso.BAD_VALUES, "error",
                             doc="a value cell that is not a number: error (naming file, line, column) or missing")
    tz: str = timezone("America/Los_Angeles", doc="time zone whose midnights are the possible episode starts")


class CaisoProvider(SeriesProvider):
    """CAISO OASIS: TAC-area load, nodal LMP (and components), hub solar/wind (files, or downloaded)."""

    Params = CaisoParams
    ROLES = ("load", "price", "solar", "wind")
    NAME = "caiso"

    def __init__(self, params: Any, role: str) -> None:
        super().__init__(params, role)
        report = self.report_alias()
        if REPORT_FOR_ROLE[role] != report:
            raise ValueError(f"caiso report {report!r} does not give a {role!r} profile "
                             f"(use report: {REPORT_FOR_ROLE[role]})")
        if report == "renewables" and params.type != "auto" and params.type != role:
            raise ValueError(f"caiso renewables type {params.type!r} used as the {role!r} profile")

    def report_alias(self) -> str:
        return REPORT_FOR_ROLE[self.role] if self.params.report == "auto" else self.params.report

    def selection(self) -> tuple[caiso.Report, dict[str, str], str]:
        p = self.params
        report = caiso.report_of(self.report_alias())
        market = p.market or report.market_run_id
        if report.name == "SLD_FCST":
            return report, {"TAC_AREA_NAME": p.area}, market
        if report.name == "PRC_LMP":
            return report, {"NODE": p.node, "LMP_TYPE": p.lmp_type}, market
        kind = self.role if p.type == "auto" else p.type
        return report, {"TRADING_HUB": p.hub, "RENEWABLE_TYPE": kind.capitalize()}, market

    def describe(self) -> str:
        report, where, market = self.selection()
        return f"caiso {report.name} {market} " + " ".join(f"{k}={v}" for k, v in where.items())

    def files(self) -> list[Path]:
        report, where, market = self.selection()
        if self.params.path:
            location = _given_path(self.params.path)
            found = caiso.files_in(location, report)
            if not found:
                raise DataUnavailableError(f"{location}: no OASIS {report.name} files (names containing "
                                           f"_{report.name}_) here (the dataset's `path` parameter)")
            return found
        location = data_dir("caiso")
        if location is not None and location.is_dir():
            found = caiso.files_in(location, report)
            if found:
                return found
        if not self.params.download:
            raise DataUnavailableError(f"{_offline_message('CAISO ' + report.name, 'CAISO OASIS', self.role)}; or set "
                                       f"download: true (or run `powergrid datasets fetch caiso`) to download "
                                       f"{self.params.year} from OASIS")
        filters = {"tac_area_name": where["TAC_AREA_NAME"]} if report.name == "SLD_FCST" else \
            {"node": where["NODE"]} if report.name == "PRC_LMP" else {}
        try:
            return caiso.download_year(report, self.params.year, market=market, url=self.params.allow_url, **filters)
        except DataUnavailableError as exc:
            # the cause first, then what to do (the cache's message ends with it): no scenario YAML is involved in
            # `powergrid datasets fetch`
            failed = "the cache cannot supply it" if cache.offline() else "the download failed"
            raise DataUnavailableError(f"no CAISO {report.name} data available locally and {failed}: {exc}") from None

    def raw_series(self) -> TimeSeries:
        report, where, market = self.selection()
        files = self.files()
        frame = caiso.read_files(files, report, self.params.bad_values)
        source = str(files[0].parent) if len(files) > 1 else str(files[0])
        return caiso.select(frame, report, source=source, market=market, **where)


# -- ERCOT ---------------------------------------------------------------------------
@attrs.frozen
class ErcotParams(FileParams):
    report: str = choice(("auto", "load", "spp"), "auto", doc="load = native load by weather zone, spp = DAM settlement point prices")
    zone: str = choice(ercot.ZONES, "ERCOT", doc="load: weather zone column (ERCOT = system total)")
    settlement_point: str = text("HB_HOUSTON", doc="spp: settlement point (HB_*, LZ_*, or a resource node)")
    tz: str = timezone(ercot.TZ, doc="time zone whose midnights are the possible episode starts")


class LocalFileProvider(SeriesProvider):
    """A provider of load and price from local report files only (no download)."""

    ROLES = ("load", "price")
    #: The report that gives each role.
    REPORT_FOR_ROLE: ClassVar[dict[str, str]] = {}

    def __init__(self, params: Any, role: str) -> None:
        super().__init__(params, role)
        want = self.REPORT_FOR_ROLE[role]
        if params.report not in ("auto", want):
            raise ValueError(f"{self.NAME} report {params.report!r} does not give a {role!r} profile (use report: {want})")

    def location(self) -> Path:
        if self.params.path:
            return _given_path(self.params.path)
        location = data_dir(self.NAME)
        if location is None:
            label = self.NAME.upper()
            raise DataUnavailableError(_offline_message(label, label, self.role) + f" ({label} data are not downloaded automatically)")
        return location


class ErcotProvider(LocalFileProvider):
    """ERCOT: hourly native load by weather zone, DAM settlement point prices (local files)."""

    Params = ErcotParams
    NAME = "ercot"
    REPORT_FOR_ROLE = {"load": "load", "price": "spp"}

    def raw_series(self) -> TimeSeries:
        if self.role == "load":
            return ercot.load_series(self.location(), self.params.zone)
        return ercot.price_series(self.location(), self.params.settlement_point)


# -- NYISO ---------------------------------------------------------------------------
@attrs.frozen
class NyisoParams(FileParams):
    report: str = choice(("auto", "load", "lbmp"), "auto", doc="load = real-time load (pal), lbmp = zonal LBMP")
    zone: str = text("N.Y.C.", doc="Name column: CAPITL, CENTRL, DUNWOD, GENESE, HUD VL, LONGIL, MHK VL, MILLWD, N.Y.C., NORTH, WEST")
    component: str = choice(tuple(nyiso.COMPONENTS), "lbmp", doc="lbmp: the LBMP or its losses / congestion component")
    market: str = choice(nyiso.MARKETS, "DAM", doc="lbmp: DAM = day-ahead (damlbmp, hourly), RT = real-time (realtime, 5-minute)")
    tz: str = timezone(nyiso.TZ, doc="time zone whose midnights are the possible episode starts")


class NyisoProvider(LocalFileProvider):
    """NYISO: 5-minute real-time zonal load, zonal LBMP and components (local files)."""

    Params = NyisoParams
    NAME = "nyiso"
    REPORT_FOR_ROLE = {"load": "load", "price": "lbmp"}

    def raw_series(self) -> TimeSeries:
        if self.role == "load":
            return nyiso.load_series(self.location(), self.params.zone)
        return nyiso.price_series(self.location(), self.params.zone, self.params.component, self.params.market)


# -- SimBench ------------------------------------------------------------------------
@attrs.frozen
class SimbenchParams(EpisodeParams):
    profile: str | None = optional_text(doc="load: H0-A, G1-B, L0-A, …; solar: PV1–PV8; wind: WP1–WP12 (default H0-A / PV3 / WP4)")
    tz: str = timezone(simbench_provider.TZ, doc="time zone whose midnights are the possible episode starts")


class SimbenchProvider(SeriesProvider):
    """SimBench 15-minute load, PV and wind profiles of 2016 (needs the simbench package)."""

    Params = SimbenchParams
    ROLES = ("load", "solar", "wind")
    NAME = "simbench"

    def raw_series(self) -> TimeSeries:
        return simbench_provider.read_profile(self.role, self.params.profile or simbench_provider.DEFAULTS[self.role])


# -- pvlib -----------------------------------------------------------------------------
@attrs.frozen
class PvlibParams:
    latitude: float = quantity("deg", 37.87, ge=-90, le=90, doc="site latitude")
    longitude: float = quantity("deg", -122.27, ge=-180, le=180, doc="site longitude")
    altitude: float = quantity("m", 0.0, ge=-500, le=9000, doc="site altitude")
    tilt: float = quantity("deg", 20.0, ge=0, le=90, doc="panel tilt from horizontal")
    azimuth: float = quantity("deg", 180.0, ge=0, lt=360, doc="panel azimuth (180 = south)")
    model: str = choice(("ineichen", "haurwitz", "simplified_solis"), "ineichen", doc="pvlib clear-sky model")
    year: int = integer(2023, ge=1950, le=2100, doc="year of the random start days")
    start: str | None = optional_date(doc="fixed episode start (local date in `tz`); default: a random day of `year`")
    tz: str = timezone("UTC", doc="time zone whose midnights start the episodes")
    start_hour: int = integer(0, ge=0, le=23, doc="episodes start this many hours after a local midnight "
                                                  "(default: time.start_hour)")
    scale: float = quantity("1", 1.0, gt=0, le=1, doc="derating factor applied to the clear-sky output")


class PvlibProvider(ProfileProvider):
    """Clear-sky PV output (pu) at a site, from pvlib's clear-sky and transposition models."""

    Params = PvlibParams

    def __init__(self, params: Any, role: str) -> None:
        super().__init__(params, role)
        if role != "solar":
            raise ValueError(f"dataset 'pvlib' has only a 'solar' profile, not {role!r}")
        check_times(params)
        self.last_start: pd.Timestamp | None = None

    def episode(self, n_steps: int, step_minutes: float, rng: np.random.Generator) -> np.ndarray:
        p = self.params
        if p.start:
            t0 = fixed_start(p)
        else:
            days = 366 if calendar.isleap(p.year) else 365
            day = _dt.date(p.year, 1, 1) + _dt.timedelta(days=int(rng.integers(days)))
            t0 = _midnight_utc(day, p.tz) + pd.Timedelta(hours=p.start_hour)
        step = pd.Timedelta(minutes=step_minutes)
        times = pd.date_range(t0 + step / 2, periods=int(n_steps), freq=step)
        self.last_start = t0
        values = pvlib_provider.clear_sky_pu(times, latitude=p.latitude, longitude=p.longitude, altitude=p.altitude,
                                             tilt=p.tilt, azimuth=p.azimuth, model=p.model)
        return (values * p.scale).astype(np.float64)


# -- synthetic -------------------------------------------------------------------------
@attrs.frozen
class SyntheticParams:
    noise: float = quantity("1", 0.05, ge=0, le=1, doc="noise level (0: the pure shapes); see the formulas")
    start: str | None = optional_date(doc="fixed start date (its day of year is used); default: a random day")
    start_hour: int = integer(0, ge=0, le=23, doc="hour of day of the first step")
    scale: float = quantity("1", 1.0, gt=0, doc="multiplies the profile")


class SyntheticProvider(ProfileProvider):
    """Seeded synthetic daily/seasonal load, solar, wind, price and temperature (no data files)."""

    Params = SyntheticParams

    def __init__(self, params: Any, role: str) -> None:
        super().__init__(params, role)
        if role not in synthetic.ROLES:
            raise ValueError(f"dataset 'synthetic' has no {role!r} profile (it has: {', '.join(synthetic.ROLES)})")
        self.last_start_day: int | None = None

    def episode(self, n_steps: int, step_minutes: float, rng: np.random.Generator) -> np.ndarray:
        p = self.params
        day = pd.Timestamp(p.start).dayofyear - 1 if p.start else int(rng.integers(365))
        self.last_start_day = day
        values = synthetic.profile(self.role, day, p.start_hour, int(n_steps), float(step_minutes), p.noise, rng)
        return values * p.scale


PROVIDERS = {
    "caiso": CaisoProvider,
    "ercot": ErcotProvider,
    "nyiso": NyisoProvider,
    "simbench": SimbenchProvider,
    "pvlib": PvlibProvider,
    "synthetic": SyntheticProvider,
}

"""Per-load demand multipliers: customer-class shapes, per-load scaling and seeded jitter.

Every network load ``i`` (a row of ``net.load``, base ``P_i`` MW and ``Q_i`` Mvar)
draws ``P_i·m_i(t)`` and ``Q_i·m_i(t)`` at tick ``t`` (constant power factor). With
``loads: {profile: classes}`` (the default) the multiplier (pu) is::

    m_i(t) = s_i · L̄_d · g_d · c_k(i)(t) · max(0, 1 + ε_i(t))

- ``L(t)`` (pu) is the scenario's ``load`` profile (real data or the built-in shape)
  and ``L̄_d`` its mean over the ticks of calendar day ``d`` of the episode: the data
  set the level of each day (day-to-day and seasonal variation), the classes the shape
  within the day;
- ``c_k(t)`` (pu) is the shape of customer class ``k`` (residential, commercial,
  industrial, agricultural) at the season, day type (weekday, Saturday, Sunday) and
  local time of tick ``t``, averaged over the tick; the shapes are SimBench profiles
  (``data/load_classes.csv``, built by ``scripts/extract_load_classes.py``; provenance
  and licence, ODbL 1.0, in its header), each with a week mean of 1 in every season;
- ``ε_i(t)`` is seeded AR(1) jitter, one independent series per load, with standard
  deviation ``jitter`` and correlation time ``τ = jitter_hours``:
  ``ε(t) = φ·ε(t−1) + √(1−φ²)·jitter·η(t)``, ``φ = exp(−Δt/τ)``, ``η ~ N(0, 1)``,
  started from its stationary law;
- ``g_d = n_d·ΣP_i / Σ_{t∈d} Σ_i P_i·c_k(i)(t)·(1 + ε_i(t))`` (weights ``|P_i|``) makes
  the feeder total keep the uniform mode's energy: with every ``s_i = 1``,
  ``Σ_{t∈d} Σ_i P_i·m_i(t) = Σ_{t∈d} Σ_i P_i·L(t)`` for every day ``d`` of every episode
  (MWh after × ``Δt``). Peaks and the time of the feeder peak differ: that is the point;
- ``s_i`` (pu, default 1) is the per-load ``scale`` of the configuration.

The calendar: the day of year and weekday of the episode's first day come from the
``load`` profile's provider when it reports its episode start (``last_start``, as the
dataset pack's file-backed providers do); otherwise they are drawn from the seeded
stream. Seasons and day types are those of the BDEW standard load profiles.

``loads: {profile: uniform}`` is the previous behaviour: ``m_i(t) = s_i·L(t)``, one
shape for every load.

The (ticks × loads) matrix is built once per reset by :meth:`LoadModel.multipliers`;
the step loop only multiplies the base values by one of its rows. :meth:`LoadModel.episode` builds it with the
episode's forecast: the same calendar and customer classes without the jitter (``ε = 0``, ``g_d`` of the shapes
alone), each day at a level known before it. On a dataset's days (a provider with :func:`previous_day`, e.g.
``caiso_2023``, whose ``load`` is the day's actual load) that level is the day before's actual load (``L̄_d`` of the
local day before, with the provider's fallbacks when that day is missing; an episode's second day is levelled on
its first, already played); a profile without a past (the built-in shape, the synthetic generator) is a plan, and
the forecast keeps its level. :class:`LoadGroup` gives protocols both
for the loads behind a meter.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import importlib.resources
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import attrs
import numpy as np
from scipy.signal import lfilter

if TYPE_CHECKING:
    from powergrid.config import LoadsConfig, Source
    from powergrid.devices import StepContext

CLASSES = ("residential", "commercial", "industrial", "agricultural")
PROFILES = ("classes", "uniform")
SEASONS = ("winter", "summer", "transition")
DAYS = ("weekday", "saturday", "sunday")
DATA_FILE = "load_classes.csv"
#: size rule of ``default_class: auto``: a load of at least these multiples of the network's median load
COMMERCIAL_RATIO, INDUSTRIAL_RATIO = 3.0, 10.0
#: CIGRE benchmark load names: ``Load R…`` residential, ``Load C…``/``Load CI…`` commercial, ``Load I…`` industrial
CIGRE_PREFIXES = (("Load CI", "commercial"), ("Load R", "residential"), ("Load C", "commercial"), ("Load I", "industrial"))


@functools.cache
def class_shapes() -> np.ndarray:
    """The shipped class shapes: an array (class, season, day type, 96 quarter hours) in pu, classes as in ``CLASSES``."""
    text = importlib.resources.files("powergrid").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    rows = [r for r in csv.reader(line for line in text.splitlines() if not line.startswith("#"))][1:]
    shapes = np.full((len(CLASSES), len(SEASONS), len(DAYS), 96), np.nan)
    for name, season, day, *values in rows:
        shapes[CLASSES.index(name), SEASONS.index(season), DAYS.index(day)] = [float(v) for v in values]
    if np.isnan(shapes).any():
        raise RuntimeError(f"powergrid/data/{DATA_FILE} lacks some class × season × day rows")
    return shapes


def season_of(day: dt.date) -> int:
    """Index in ``SEASONS`` of a date (BDEW: winter 1 Nov–20 Mar, summer 15 May–14 Sep, transition otherwise)."""
    md = (day.month, day.day)
    if md >= (11, 1) or md <= (3, 20):
        return 0
    return 1 if (5, 15) <= md <= (9, 14) else 2


def day_type(day: dt.date) -> int:
    """Index in ``DAYS`` of a date: weekday, Saturday or Sunday (public holidays are not known here)."""
    return {5: 1, 6: 2}.get(day.weekday(), 0)


def episode_start(provider: Any) -> dt.date | None:
    """The local date of the first day of a provider's last episode, when it reports one.

    Reads ``last_start`` (a date or datetime; an aware datetime is converted to the
    provider's ``params.tz``) of the provider, or of the provider a fallback made active.
    """
    provider = getattr(provider, "active", provider)
    start = getattr(provider, "last_start", None)
    if isinstance(start, dt.datetime):
        params = getattr(provider, "params", None)
        tz = getattr(params, "tz", None)
        if start.tzinfo is not None and isinstance(tz, str):  # the day start_hour (elapsed) hours after whose midnight
            start = (start - dt.timedelta(hours=getattr(params, "start_hour", 0))).astimezone(ZoneInfo(tz))
        return start.date()
    return start if isinstance(start, dt.date) else None


def previous_day(provider: Any, n_steps: int, step_minutes: float) -> np.ndarray | None:
    """The ``n_steps`` values at ``step_minutes`` (the provider's units) of a provider's profile from the start of
    the local day before its last episode's (``start_hour`` after that day's midnight: 23 or 25 h back after a DST
    change), or None: a provider without a past (no ``previous_day`` method: the built-in shape, the
    synthetic generator) or before any episode.

    Calls ``previous_day(n_steps, step_minutes)`` of the provider, or of the provider a fallback made active (the
    dataset pack's series providers: the data's day before, with their fallbacks when it is missing). The one source
    of the past for the loads' forecast (:meth:`LoadModel.episode`) and the bench's persistence features
    (:func:`powergrid.bench.residual.yesterday`).
    """
    method = getattr(getattr(provider, "active", provider), "previous_day", None)
    return None if method is None else np.asarray(method(int(n_steps), float(step_minutes)), dtype=np.float64)


def auto_class(names: Sequence[str], p_mw: np.ndarray) -> list[str]:
    """The ``default_class: auto`` assignment.

    CIGRE benchmark loads keep their published type (``Load R…`` residential, ``Load C…``
    and ``Load CI…`` commercial, ``Load I…`` industrial). Otherwise, by size: the loads of
    a feeder template aggregate customers, so a load of at least 10× the network's median
    base P is one large (industrial) customer, 3–10× a commercial-sized service, and the
    rest (the IEEE distributed loads and small spot loads) residential groups.
    """
    median = float(np.median(np.abs(p_mw))) if len(p_mw) else 0.0
    out = []
    for name, p in zip(names, np.abs(p_mw)):
        cigre = next((k for prefix, k in CIGRE_PREFIXES if name.startswith(prefix) and name[len(prefix):].isdigit()), None)
        if cigre is not None:
            out.append(cigre)
        elif median > 0 and p >= INDUSTRIAL_RATIO * median:
            out.append("industrial")
        elif median > 0 and p >= COMMERCIAL_RATIO * median:
            out.append("commercial")
        else:
            out.append("residential")
    return out


def _label(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _matches(patterns: Mapping[str, Any], names: Sequence[str], buses: Sequence[str], where: str,
             source: Source) -> list[tuple[np.ndarray, Any]]:
    """``(mask of loads, value)`` per pattern; a pattern matches a load's name or its bus's name (glob)."""
    out = []
    for pattern, value in patterns.items():
        mask = np.array([fnmatchcase(n, pattern) or fnmatchcase(b, pattern) for n, b in zip(names, buses)], dtype=bool)
        if not mask.any():
            examples = ", ".join(list(dict.fromkeys(n or b for n, b in zip(names, buses)))[:6])
            raise source.error(f"{where}.{pattern}", f"expected a glob pattern matching a load name or bus name "
                                                     f"(loads: {examples}…), got {pattern!r}: it matches no load")
        out.append((mask, value))
    return out


@attrs.frozen(eq=False)
class LoadModel:
    """The resolved load configuration of one network: each load's class index and scale, and the weights."""

    profile: str
    names: tuple[str, ...]
    classes: np.ndarray  # (loads,) index into CLASSES
    scale: np.ndarray  # (loads,) pu
    weight: np.ndarray  # (loads,) |P_i| MW
    jitter: float
    jitter_hours: float

    @classmethod
    def build(cls, config: LoadsConfig, net: Any, source: Source) -> LoadModel:
        """Resolve ``config`` against ``net.load``; a pattern that matches no load is a ConfigError."""
        names = [_label(n) for n in net.load.name]
        bus_name = dict(zip(net.bus.index, net.bus.name))
        buses = [_label(bus_name[b]) for b in net.load.bus]
        p_mw = net.load.p_mw.to_numpy(float)
        kinds = auto_class(names, p_mw) if config.default_class == "auto" else [config.default_class] * len(names)
        index = np.array([CLASSES.index(k) for k in kinds], dtype=np.int64)
        for mask, kind in _matches(config.classes, names, buses, "loads.classes", source):
            index[mask] = CLASSES.index(kind)
        scale = np.ones(len(names))
        for mask, factor in _matches(config.scale, names, buses, "loads.scale", source):
            scale[mask] = factor
        return cls(config.profile, tuple(n or b for n, b in zip(names, buses)), index, scale, np.abs(p_mw),
                   config.jitter, config.jitter_hours)

    def assignment(self) -> dict[str, str]:
        """``{load name (or its bus name): class}``."""
        return {n: CLASSES[k] for n, k in zip(self.names, self.classes)}

    def multipliers(self, level: np.ndarray, *, step_minutes: float, start_hour: float, start: dt.date | None,
                    rng: np.random.Generator) -> np.ndarray:
        """The (ticks × loads) multipliers m_i(t) in pu for one episode (see the module docstring).

        ``level`` is the episode's ``load`` profile L(t); ``start`` the date of its first day
        (drawn from ``rng`` when None); ``start_hour`` the local hour of tick 0.
        """
        return self.episode(level, step_minutes=step_minutes, start_hour=start_hour, start=start, rng=rng)[0]

    def episode(self, level: np.ndarray, *, step_minutes: float, start_hour: float, start: dt.date | None,
                rng: np.random.Generator, known: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The episode's actual multipliers (:meth:`multipliers`: what the flow serves, the jitter included) and its
        forecast: the same calendar without the jitter (ε = 0, the day's gain of the shapes alone) at the level of
        ``known``, both (ticks × loads) pu.

        ``known`` (pu, as ``level``) is the load profile each day's forecast is levelled on, e.g. :func:`previous_day`
        of a dataset (the local day before each day, so known before it): the forecast takes each day's mean ``L̄_d``
        from it (under the uniform profile the values themselves). None: ``level`` is a plan and the forecast keeps it;
        then without jitter (``jitter`` 0 or the uniform profile) the same array twice.
        """
        level = np.asarray(level, dtype=np.float64)
        past = level if known is None else np.asarray(known, dtype=np.float64)
        if past.shape != level.shape:
            raise ValueError(f"the forecast's level has shape {past.shape}; expected the profile's {level.shape}")
        if self.profile == "uniform":
            actual = level[:, None] * self.scale[None, :]
            return actual, actual if known is None else past[:, None] * self.scale[None, :]
        n = len(level)
        if start is None:  # a date of a non-leap year, and an independent weekday
            start = dt.date(2023, 1, 1) + dt.timedelta(days=int(rng.integers(365)))
            start += dt.timedelta(days=(int(rng.integers(7)) - start.weekday()) % 7)
        day = (_tick_minutes(n, start_hour, step_minutes) // 1440.0).astype(np.int64)  # local day of each tick
        dates = [start + dt.timedelta(days=d) for d in range(int(day[-1]) + 2 if n else 1)]  # one more: the last tick's end
        calendar = tuple((season_of(d), day_type(d)) for d in dates)
        shapes = _tick_shapes(calendar, n, start_hour, step_minutes)[:, self.classes]  # (ticks, loads)
        forecast = self._levelled(shapes, day, past)
        if self.jitter <= 0:
            return (forecast if known is None else self._levelled(shapes, day, level)), forecast
        phi = self.persistence(step_minutes)
        eta = rng.standard_normal(shapes.shape)
        eta[1:] *= np.sqrt(1.0 - phi * phi)
        # in place: a product in a new array may change the layout, and the sums below their last bit
        shapes *= np.maximum(1.0 + self.jitter * lfilter([1.0], [1.0, -phi], eta, axis=0), 0.0)
        return self._levelled(shapes, day, level), forecast

    def persistence(self, step_minutes: float) -> float:
        """φ = exp(−Δt/τ) of the jitter (pu per tick of ``step_minutes``): the share of a load's deviation from its
        forecast that persists to the next tick; 0.0 without jitter (``jitter`` 0 or the uniform profile)."""
        if self.profile == "uniform" or self.jitter <= 0:
            return 0.0
        return float(np.exp(-step_minutes / (60.0 * self.jitter_hours)))

    def _levelled(self, raw: np.ndarray, day: np.ndarray, level: np.ndarray) -> np.ndarray:
        """``raw`` (ticks × loads: the class shapes, times the jitter if any) at each day's level: ``s_i·L̄_d·g_d·raw``."""
        total = raw @ self.weight  # Σ_i P_i·c·(1+ε) per tick
        days = np.bincount(day)
        sum_w = float(self.weight.sum())
        daily = np.bincount(day, total)
        gain = np.divide(days * sum_w, daily, out=np.ones_like(daily), where=daily > 0)
        mean_level = np.bincount(day, level) / np.maximum(days, 1)
        return raw * (mean_level * gain)[day][:, None] * self.scale[None, :]


@attrs.define(eq=False)
class LoadGroup:
    """Network loads a protocol forecasts, e.g. those behind a meter (:meth:`at`): their columns of
    ``ctx.load_multipliers`` (actual) and ``ctx.load_forecast`` and their MW at multiplier 1 (``p_mw·scaling``).

    The forecast is the episode's load schedule without its jitter, each day at a level known before it
    (:meth:`LoadModel.episode`: the customer classes, on a dataset's days at the level of the day before's actual
    load); the flow serves the actual multipliers, so the forecast misses the loads by their jitter and, on a dataset's
    days, by the change of the daily level. The last reading is known, and the
    jitter persists (AR(1), φ = ``ctx.load_persistence`` per tick, :meth:`LoadModel.persistence`): each load is
    predicted at ``f(t)·(1 + φ·ε(t−1))``, its forecast now times the share φ of its last deviation ``ε(t−1) =
    a(t−1)/f(t−1) − 1`` (actual ``a``, forecast ``f``), and :meth:`forecast_change_mw` is that prediction less the
    actual loads at the last tick.
    """

    rows: np.ndarray  # (loads,) rows of net.load (columns of ctx.load_multipliers and ctx.load_forecast)
    mw: np.ndarray  # (loads,) MW at multiplier 1
    #: the forecast and actual multipliers the MW below were computed from, and by tick the forecast MW and the
    #: forecast change from the last tick's actual MW
    _of_forecast: np.ndarray | None = attrs.field(default=None, init=False, repr=False)
    _of_actual: np.ndarray | None = attrs.field(default=None, init=False, repr=False)
    _forecast: list[float] = attrs.field(factory=list, init=False, repr=False)
    _changes: list[float] = attrs.field(factory=list, init=False, repr=False)

    @classmethod
    def at(cls, net: Any, buses: Any) -> LoadGroup:
        """The in-service loads of ``net`` at the in-service buses among ``buses`` (positions in ``net.bus``, e.g. a
        GridConnection's ``billed_buses(net)``)."""
        pos = net.bus.index.get_indexer(net.load.bus)
        keep = net.load.in_service.to_numpy(bool) & np.isin(pos, np.asarray(buses)) & net.bus.in_service.to_numpy(bool)[pos]
        p = net.load.p_mw.to_numpy(float) * (net.load.scaling.to_numpy(float) if "scaling" in net.load else 1.0)
        return cls(np.flatnonzero(keep), p[keep])

    def forecast_mw(self, ctx: StepContext) -> float:
        """MW the loads are forecast to draw at ``ctx.tick`` (``ctx.load_forecast``; 0.0 past the schedule)."""
        self._compute(ctx)
        return self._forecast[ctx.tick] if 0 <= ctx.tick < len(self._forecast) else 0.0

    def forecast_change_mw(self, ctx: StepContext) -> float:
        """MW by which the loads are predicted to change from the last tick's actual MW (the last reading) to
        ``ctx.tick``: the forecast now with the share φ of the last deviation that persists (see the class docstring);
        0.0 at the first tick (no last tick: a plan before any reading takes :meth:`forecast_mw`) and past the
        schedule."""
        self._compute(ctx)
        return self._changes[ctx.tick] if 0 <= ctx.tick < len(self._changes) else 0.0

    def _compute(self, ctx: StepContext) -> None:
        """Every tick's forecast MW and change, once per episode: the first time asked after the environment sets
        ``ctx.load_forecast`` and ``ctx.load_multipliers``."""
        forecast, actual = ctx.load_forecast, ctx.load_multipliers
        if forecast is not self._of_forecast or actual is not self._of_actual:
            self._of_forecast, self._of_actual = forecast, actual
            f, a, phi = forecast[:, self.rows], actual[:, self.rows], ctx.load_persistence
            # per load f(t)·(1 + φ·ε(t−1)) = f(t)·(1 − φ + φ·a(t−1)/f(t−1)) (ε = 0 where the forecast is 0); tick 0
            # has no reading; φ = 0 leaves f exactly
            ratio = np.divide(a[:-1], f[:-1], out=np.ones_like(f[:-1]), where=f[:-1] > 0)
            predicted = f.copy()
            predicted[1:] *= (1.0 - phi) + phi * ratio
            self._forecast = (f @ self.mw).tolist()
            self._changes = [0.0, *((predicted @ self.mw)[1:] - (a @ self.mw)[:-1]).tolist()]


def _tick_minutes(n: int, start_hour: float, step_minutes: float) -> np.ndarray:
    """The start of each of ``n`` ticks in minutes since the first local midnight."""
    return start_hour * 60.0 + np.arange(n) * step_minutes


@functools.lru_cache(maxsize=256)
def _tick_shapes(calendar: tuple[tuple[int, int], ...], n: int, start_hour: float, step_minutes: float) -> np.ndarray:
    """Each class's shape averaged over each tick [t0, t0 + Δt) (ticks × classes, pu, read-only).

    ``calendar`` gives the (season, day type) indices of the consecutive days from the first
    local midnight; the result depends on nothing else, so it is computed once per calendar.
    """
    shapes = class_shapes()
    seq = np.concatenate([shapes[:, season, kind] for season, kind in calendar], axis=1)  # (classes, quarters)
    grid = np.arange(seq.shape[1] + 1) * 15.0
    cumulative = np.concatenate([np.zeros((len(CLASSES), 1)), np.cumsum(seq, axis=1) * 15.0], axis=1)
    t0 = _tick_minutes(n, start_hour, step_minutes)
    t1 = t0 + step_minutes
    out = np.stack([(np.interp(t1, grid, c) - np.interp(t0, grid, c)) / step_minutes for c in cumulative], axis=1)
    out.flags.writeable = False
    return out

"""Reading actions and writing observations, shared by every device of the pack.

Two kinds of action:

- :class:`BoxAction` — named continuous entries with bounds. A missing action
  (``None``) means the default; a NaN or infinite entry is replaced by its
  default and counts as the full range of that entry in the projection
  distance; finite entries are clipped to the bounds, their move counted up to
  that range (as :func:`powergrid.devices.clip_action`).
  A device holding one (:class:`BoxDevice`) gives that default as its
  :attr:`~powergrid.devices.Device.default_action`, which a horizontal protocol
  puts in place of a non-finite pending setpoint: the same value either way.
- :class:`StepAction` — an integer position (shunt steps, transformer taps) as
  a ``Discrete`` space, or as a ``Box`` rounded to the nearest integer (the
  ``setpoint`` protocol and the ``random`` policy need Box spaces).

Devices then project the bounded action onto their state-dependent feasible set
(state of charge, ramp limits, tank level…) and add that distance too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import gymnasium
import numpy as np

from powergrid.devices import Device, Kernel, box
from powergrid.devices import observation as observation  # re-exported: the pack's devices use it


class BoxAction:
    """A continuous action of named entries in ``[low, high]`` with a default for missing entries."""

    def __init__(self, names: Sequence[str], low: Sequence[float], high: Sequence[float],
                 default: Sequence[float]) -> None:
        self.names = tuple(names)
        self.space = box(low, high)
        self.low = np.asarray(low, np.float64).reshape(-1)  # the physics uses the exact (float64) bounds
        self.high = np.asarray(high, np.float64).reshape(-1)
        self.default = np.clip(np.asarray(default, np.float64), self.low, self.high)
        if not len(self.names) == self.low.size == self.default.size:
            raise ValueError("names, bounds and default must have the same length")
        if not (np.isfinite(self.low).all() and np.isfinite(self.high).all()):
            raise ValueError(f"action bounds must be finite, got low {self.low.tolist()}, high {self.high.tolist()}")
        # plain-Python copies: for the one- or two-entry actions of devices a Python loop beats numpy calls
        self._bounds = list(zip(self.low.tolist(), self.high.tolist(), self.default.tolist()))

    def index(self, name: str) -> int:
        return self.names.index(name)

    def read(self, action: Any) -> tuple[list[float], float]:
        """The action clipped to its bounds (one float per name) and the projection distance."""
        if action is None:
            return [default for _, _, default in self._bounds], 0.0
        if type(action) is np.ndarray and action.ndim == 1 and action.dtype.char in "fd":  # float32/64: no copy
            values = action.tolist()
        else:
            values = np.asarray(action, dtype=np.float64).reshape(-1).tolist()
        if len(values) != len(self._bounds):
            raise ValueError(f"expected an action of {len(self._bounds)} values ({', '.join(self.names)}), got {len(values)}")
        clipped, distance = [], 0.0
        for x, (lo, hi, default) in zip(values, self._bounds):
            if lo <= x <= hi:  # feasible: kept, adds 0 (NaN and ±inf fail this test: the bounds are finite)
                clipped.append(x)
            elif math.isfinite(x):
                c = lo if x < lo else hi
                clipped.append(c)
                distance += min(abs(c - x), hi - lo)
            else:
                clipped.append(default)
                distance += hi - lo
        return clipped, distance

    def pack(self, **values: float) -> np.ndarray:
        """An action vector from named values (the default for the others), as float32 inside the space."""
        out = self.default.copy()
        for name, value in values.items():
            out[self.names.index(name)] = value
        return np.clip(out.astype(np.float32), self.space.low, self.space.high)


class BoxDevice(Device):
    """Base of the pack's devices whose action is a :class:`BoxAction` (set as ``self.actions`` in ``__init__``):
    their :attr:`~powergrid.devices.Device.default_action` is that action's default, the values
    :meth:`BoxAction.read` puts in place of a missing action and of a NaN or infinite entry."""

    actions: BoxAction

    @property
    def default_action(self) -> np.ndarray:
        return self.actions.default.copy()


class BoxRows:
    """:meth:`BoxAction.read` for many devices at once: their bounds and defaults stacked as ``(n, k)`` arrays."""

    def __init__(self, actions: Sequence[BoxAction]) -> None:
        self.low = np.array([a.low for a in actions], np.float64)
        self.high = np.array([a.high for a in actions], np.float64)
        self.default = np.array([a.default for a in actions], np.float64)
        self.width = self.high - self.low
        self.ones = np.ones(len(actions))

    def read(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every row clipped to its bounds (NaN/inf: the default) and each row's projection distance."""
        values = np.minimum(np.maximum(a, self.low), self.high)
        distance = np.abs(values - a)  # inf or NaN where a is not finite
        rows = distance[:, 0] if distance.shape[1] == 1 else distance.sum(axis=1)
        if rows.dot(self.ones) == 0.0:  # every entry inside its bounds (a NaN fails the test): ≈ 0.45 µs cheaper than
            return values, rows          # rows.any() or isfinite(a).all()
        finite = np.isfinite(a)
        values = np.where(finite, values, self.default)
        return values, np.where(finite, np.minimum(np.abs(values - a), self.width), self.width).sum(axis=1)


class StepAction:
    """An integer position in ``[low, high]``: ``Discrete`` or a rounded ``Box`` (``kind="box"``)."""

    def __init__(self, low: int, high: int, kind: str = "discrete") -> None:
        self.low, self.high = int(low), int(high)
        self.kind = kind
        if kind == "discrete":
            self.space: gymnasium.spaces.Space = gymnasium.spaces.Discrete(self.high - self.low + 1, start=self.low)
        else:
            self.space = box(self.low, self.high)

    def read(self, action: Any, hold: int) -> tuple[int, float]:
        """The nearest feasible position and the projection distance, at most the range ``high − low`` (a missing
        action holds ``hold``; a NaN or inf also holds it, at the range)."""
        if action is None:
            return hold, 0.0
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.size != 1:
            raise ValueError(f"expected one integer position, got {a.size} values")
        x = float(a[0])
        if not np.isfinite(x):
            return hold, float(self.high - self.low)
        position = int(min(max(np.rint(x), self.low), self.high))
        return position, min(abs(position - x), float(self.high - self.low))

    def encode(self, position: int) -> Any:
        """``position`` as an element of the space."""
        position = int(min(max(position, self.low), self.high))
        return position if self.kind == "discrete" else np.array([position], np.float32)


def observation_rows(low: np.ndarray, high: np.ndarray, *columns: np.ndarray) -> np.ndarray:
    """:func:`observation` for many devices: ``columns`` side by side, NaN as 0, clipped to ``(n, m)`` bounds, float32."""
    values = np.array(columns).T  # a copy, like np.stack(columns, axis=1) but in a third of its time
    values[np.isnan(values)] = 0.0
    return np.minimum(np.maximum(values, low), high).astype(np.float32)


class BoxKernel(Kernel):
    """Base of the pack's kernels for devices with a :class:`BoxAction` (``actions``): stacked bounds
    (:class:`BoxRows`), observation bounds, the parameters named in ``params`` as arrays on ``self.p``, and
    ``zero``, 0.0 for every device (read only: as an operand it saves ~0.2 µs a numpy call over a Python 0.0)."""

    params: tuple[str, ...] = ()

    def __init__(self, devices: list[Device]) -> None:
        super().__init__(devices)
        self.box = BoxRows([d.actions for d in devices])
        self.obs_low = np.array([d.observation_space.low for d in devices], np.float64)
        self.obs_high = np.array([d.observation_space.high for d in devices], np.float64)
        self.p = SimpleNamespace(**{name: self.param(name) for name in self.params})
        self.zero = np.zeros(len(devices))
        self.zero.flags.writeable = False

    @staticmethod
    def layout(device: Device) -> Any:
        return device.actions.names

    def defaults(self) -> np.ndarray:
        return self.box.default.copy()

    def observe(self) -> np.ndarray:
        return observation_rows(self.obs_low, self.obs_high, *self.observe_values())


def largest_feasible(f: Any, lo: float, hi: float, limit: float, iterations: int = 40) -> float:
    """The largest ``x`` in ``[lo, hi]`` with ``f(x) ≤ limit`` for an increasing ``f`` (``lo`` when none).

    Bisection; used to invert efficiency curves (hydrogen, heat) against a storage limit.
    """
    if f(hi) <= limit:
        return hi
    if f(lo) > limit:
        return lo
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if f(mid) <= limit:
            lo = mid
        else:
            hi = mid
    return lo


def uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """``rng.uniform(low, high)`` bit for bit, as a Python float: numpy's ``low + (high − low)·u`` on the same
    draw ``u = rng.random()``, without ``uniform``'s argument checks (they cost about 3× the draw), so only for
    ``low ≤ high`` with a finite ``high − low`` (e.g. ``±spread`` of a validated parameter)."""
    return low + (high - low) * rng.random()


def price_thresholds(mean: float, band: float) -> tuple[float, float]:
    """The (cheap, dear) prices of a price rule ($/MWh): ``mean ∓ band·|mean|`` around the running ``mean``, that is
    ``(1 ∓ band)·mean`` at a positive mean, swapped at a negative one (else the cheap one lay above the dear one: no
    idle band, and a price at the mean was both)."""
    low, high = (1.0 - band) * mean, (1.0 + band) * mean
    return (low, high) if mean >= 0.0 else (high, low)


class RunningMean:
    """The mean of the values seen so far (e.g. the price, for arbitrage thresholds)."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget every value seen."""
        self.total, self.count = 0.0, 0

    def add(self, value: float) -> None:
        if math.isfinite(value):
            self.total += float(value)
            self.count += 1

    def peek(self, value: float) -> float:
        """The mean including ``value`` without recording it."""
        if not math.isfinite(value):
            return self.total / self.count if self.count else 0.0
        return (self.total + value) / (self.count + 1)

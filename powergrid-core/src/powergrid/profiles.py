"""Profile providers: the time series (load, solar, wind, price, temperature) that drive a scenario.

A provider is a dataset plugin. The environment asks each configured provider
for one episode of values at reset; the step loop only indexes arrays.

Conventions of the profile names the devices read:

=============  ====================================================
``load``       multiplier of every network load's base P and Q (pu)
``solar``      PV output per unit of rated power (pu, 0–1)
``wind``       wind output per unit of rated power (pu, 0–1)
``price``      energy price ($/MWh)
``temperature`` outdoor air temperature (°C)
=============  ====================================================
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import numpy as np

from powergrid.params import NoParams, integer

PROFILE_NAMES = ("load", "solar", "wind", "price", "temperature")


class ProfileProvider(abc.ABC):
    """A dataset plugin: ``Provider(params, role)`` then ``episode(...)`` at every reset."""

    Params: ClassVar[type] = NoParams

    def __init__(self, params: Any, role: str) -> None:
        self.params = params
        self.role = role

    @abc.abstractmethod
    def episode(self, n_steps: int, step_minutes: float, rng: np.random.Generator) -> np.ndarray:
        """``n_steps`` finite values of this profile, ``step_minutes`` apart, for one episode (float64; the
        environment checks them at reset with :func:`check_episode`)."""

    def bind(self, providers: Mapping[str, ProfileProvider]) -> None:
        """Called once when the scenario is built with all its providers by role (default: nothing).

        Data providers use it to start every role's episode on one common day.
        """


def check_episode(role: str, provider: ProfileProvider, values: np.ndarray, n_steps: int) -> None:
    """Raise ``ValueError`` (naming the provider, what was expected and the first bad step) unless ``values``, the
    ``role`` episode of ``provider``, is one-dimensional with at least ``n_steps`` values, the first ``n_steps`` finite.
    The environment reports it at ``datasets.<role>`` with the file and line (:func:`powergrid.builder.draw_episode`)."""
    name = type(getattr(provider, "active", provider)).__name__
    array = np.asarray(values)
    if array.ndim != 1 or len(array) < n_steps:
        raise ValueError(f"provider {name} returned shape {array.shape} for the {role} profile of an episode of "
                         f"{n_steps} steps; expected {n_steps} values")
    bad = np.flatnonzero(~np.isfinite(array[:n_steps]))
    if len(bad):
        raise ValueError(f"provider {name} returned {array[bad[0]]} at step {bad[0]} of the {role} profile (of "
                         f"{n_steps}; {len(bad)} non-finite value(s)); expected finite values: fix or fill the data")


@attrs.frozen
class DailyShapeParams:
    start_hour: int = integer(0, ge=0, le=23)


class DailyShape(ProfileProvider):
    """Built-in deterministic daily shapes (no data files, no randomness).

    With ``h`` the hour of day (0–24):

    - load: ``0.6 + 0.25·exp(-((h-8)/2.5)²) + 0.4·exp(-((h-19)/3)²)`` pu — a
      morning and a larger evening peak (min 0.6 at night, max ≈ 1.0 at 19 h);
    - solar: ``max(0, sin(π·(h-6)/12))`` pu, from 6 h to 18 h, peak 1.0 at noon;
    - wind: ``0.35 + 0.15·cos(2π·(h-3)/24)`` pu, windier at night;
    - price: ``30 + 25·load_shape - 10·solar`` $/MWh (a duck-curve shape);
    - temperature: ``18 + 7·sin(2π·(h-9)/24)`` °C, warmest at 15 h.
    """

    Params = DailyShapeParams

    def episode(self, n_steps: int, step_minutes: float, rng: np.random.Generator) -> np.ndarray:
        hours = (self.params.start_hour + np.arange(n_steps) * step_minutes / 60.0) % 24.0
        return daily_value(self.role, hours)


def daily_value(role: str, h: np.ndarray) -> np.ndarray:
    """The built-in daily shape of ``role`` at hours ``h`` (see :class:`DailyShape`)."""
    load = 0.6 + 0.25 * np.exp(-(((h - 8.0) / 2.5) ** 2)) + 0.4 * np.exp(-(((h - 19.0) / 3.0) ** 2))
    solar = np.maximum(0.0, np.sin(np.pi * (h - 6.0) / 12.0))
    shapes = {
        "load": lambda: load,
        "solar": lambda: solar,
        "wind": lambda: 0.35 + 0.15 * np.cos(2 * np.pi * (h - 3.0) / 24.0),
        "price": lambda: 30.0 + 25.0 * load - 10.0 * solar,
        "temperature": lambda: 18.0 + 7.0 * np.sin(2 * np.pi * (h - 9.0) / 24.0),
    }
    if role not in shapes:
        raise KeyError(f"the built-in daily shape has no profile {role!r} (it has: {', '.join(shapes)})")
    return np.asarray(shapes[role](), dtype=np.float64)


class FallbackProvider(ProfileProvider):
    """``primary``, or ``fallback`` when the primary has no data (it raised ``FileNotFoundError``).

    Named in YAML as ``datasets: {price: {provider: caiso, …, fallback: synthetic}}``.
    The switch is announced once with a warning that gives the primary's reason.
    """

    def __init__(self, primary: ProfileProvider, fallback: ProfileProvider, where: str) -> None:
        super().__init__(primary.params, primary.role)
        self.primary, self.fallback, self.where = primary, fallback, where
        self.active: ProfileProvider = primary

    def bind(self, providers: Mapping[str, ProfileProvider]) -> None:
        self.primary.bind(providers)

    def episode(self, n_steps: int, step_minutes: float, rng: np.random.Generator) -> np.ndarray:
        if self.active is self.primary:
            try:
                return self.primary.episode(n_steps, step_minutes, rng)
            except FileNotFoundError as exc:
                reason = str(exc).split(";")[0]
                warnings.warn(f"{self.where}: no data ({reason}); using the fallback {type(self.fallback).__name__}",
                              RuntimeWarning, stacklevel=2)
                self.active = self.fallback
        return self.fallback.episode(n_steps, step_minutes, rng)

"""Synthetic profiles: deterministic daily and seasonal shapes plus seeded noise, no data files.

With ``h`` the hour of day (0–24), ``d`` the day of year (0–365) and
``S = 2π/365``:

- load (pu): ``(0.6 + 0.25·g(h; 8, 2.5) + 0.4·g(h; 19, 3)) · (1 + 0.12·cos(S·(d-200)) + 0.08·cos(2S·(d-15)))
  · (1 + ε)``, with ``g(h; c, w) = exp(-((h-c)/w)²)`` — morning and evening peaks,
  a summer (cooling) and a smaller winter (heating) maximum;
- solar (pu, 0–1): daylength ``L = 12 + 3·sin(S·(d-80))`` h, sunrise ``12 - L/2``;
  ``sin(π·(h-sunrise)/L)`` while the sun is up, times the seasonal peak
  ``0.75 + 0.25·sin(S·(d-80))``, times ``1 - c`` with a cloud factor ``c`` in [0, 0.8];
- wind (pu, 0–1): ``clip(0.35 + 0.1·cos(S·d) + 0.15·cos(2π·(h-3)/24) + ε_w, 0, 1)``
  (windier at night and in winter);
- price ($/MWh): ``30 + 25·load_shape - 12·solar_shape + ε_p`` (the noise-free
  load and solar shapes above: a duck curve);
- temperature (°C): ``15 - 10·cos(S·(d-15)) + 6·sin(2π·(h-9)/24) + ε_t``.

Every ``ε`` is an AR(1) process with one-hour correlation ``φ = exp(-Δt/1 h)`` and
stationary standard deviation ``noise × σ_role`` (σ: load 1, solar clouds 2,
wind 1.5, price 20, temperature 20, so ``noise = 0.05`` gives 5 % load noise,
±1 $/MWh price noise …). The cloud factor is ``clip(|ε_c|, 0, 0.8)``.
The noise comes from the episode's ``rng``, so an episode is a pure function of the seed.
"""

from __future__ import annotations

import numpy as np

ROLES = ("load", "solar", "wind", "price", "temperature")
NOISE_SCALE = {"load": 1.0, "solar": 2.0, "wind": 1.5, "price": 20.0, "temperature": 20.0}
S = 2 * np.pi / 365.0


def _g(h: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-(((h - centre) / width) ** 2))


def load_shape(h: np.ndarray, d: np.ndarray) -> np.ndarray:
    daily = 0.6 + 0.25 * _g(h, 8.0, 2.5) + 0.4 * _g(h, 19.0, 3.0)
    return daily * (1.0 + 0.12 * np.cos(S * (d - 200.0)) + 0.08 * np.cos(2 * S * (d - 15.0)))


def solar_shape(h: np.ndarray, d: np.ndarray) -> np.ndarray:
    length = 12.0 + 3.0 * np.sin(S * (d - 80.0))
    sunrise = 12.0 - length / 2.0
    up = (h > sunrise) & (h < sunrise + length)
    peak = 0.75 + 0.25 * np.sin(S * (d - 80.0))
    return np.where(up, np.sin(np.pi * np.clip(h - sunrise, 0.0, None) / length), 0.0) * peak


def ar1(n: int, step_hours: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """A stationary AR(1) series with correlation time 1 h and standard deviation ``sigma``."""
    if sigma <= 0 or n == 0:
        return np.zeros(n)
    phi = float(np.exp(-step_hours / 1.0))
    shocks = rng.standard_normal(n) * sigma * np.sqrt(1.0 - phi**2)
    out = np.empty(n)
    out[0] = rng.standard_normal() * sigma
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return out


def profile(role: str, start_day: float, start_hour: float, n_steps: int, step_minutes: float, noise: float,
            rng: np.random.Generator) -> np.ndarray:
    """``n_steps`` values of ``role`` from day ``start_day`` (0–364) at ``start_hour``, per the module formulas."""
    if role not in ROLES:
        raise ValueError(f"synthetic has no profile {role!r} (it has: {', '.join(ROLES)})")
    t_hours = start_hour + np.arange(n_steps) * step_minutes / 60.0
    h = t_hours % 24.0
    d = (start_day + t_hours // 24.0) % 365.0
    eps = ar1(n_steps, step_minutes / 60.0, noise * NOISE_SCALE[role], rng)
    if role == "load":
        out = load_shape(h, d) * (1.0 + eps)
    elif role == "solar":
        clouds = np.clip(np.abs(eps), 0.0, 0.8)
        out = solar_shape(h, d) * (1.0 - clouds)
    elif role == "wind":
        out = np.clip(0.35 + 0.1 * np.cos(S * d) + 0.15 * np.cos(2 * np.pi * (h - 3.0) / 24.0) + eps, 0.0, 1.0)
    elif role == "price":
        out = 30.0 + 25.0 * load_shape(h, d) - 12.0 * solar_shape(h, d) + eps
    else:
        out = 15.0 - 10.0 * np.cos(S * (d - 15.0)) + 6.0 * np.sin(2 * np.pi * (h - 9.0) / 24.0) + eps
    return np.asarray(out, dtype=np.float64)

"""Reactive-power capability of inverters and generators, and the Q of loads at a power factor.

Generator convention: ``p`` > 0 injects, ``q`` > 0 injects reactive power (capacitive).

- Apparent-power limit of an inverter rated ``S`` MVA, with active-power priority:
  ``|q| ≤ sqrt(S² - p²)``.
- Power-factor limit ``pf_min`` (0 < pf ≤ 1): ``|q| ≤ |p|·tan(acos(pf_min))``.
- A load consuming ``|p|`` at a lagging power factor ``pf`` absorbs
  ``|p|·tan(acos(pf))`` Mvar, so with ``p < 0`` its ``q = p·tan(acos(pf)) < 0``.
"""

from __future__ import annotations

import math

import numpy as np


def tan_phi(pf: float) -> float:
    """``tan(acos(pf))``: Mvar per MW at power factor ``pf`` (0 < pf ≤ 1)."""
    return math.sqrt(max(1.0 - pf * pf, 0.0)) / pf


def q_limit(p_mw: float, s_max_mva: float = math.inf, pf_min: float = 0.0) -> float:
    """The largest ``|q|`` (Mvar) at active power ``p_mw`` under an S limit and/or a power-factor limit.

    ``pf_min = 0`` means no power-factor limit; ``s_max_mva = inf`` no apparent-power limit.
    """
    limit = math.inf
    if math.isfinite(s_max_mva):
        limit = math.sqrt(max(s_max_mva * s_max_mva - p_mw * p_mw, 0.0))
    if pf_min > 0.0:
        limit = min(limit, abs(p_mw) * tan_phi(pf_min))
    return limit


def q_limit_rows(p_mw: np.ndarray, s_max_mva: np.ndarray) -> np.ndarray:
    """:func:`q_limit` under an S limit for many devices at once: ``sqrt(max(S² − p², 0))`` Mvar per row."""
    return np.sqrt(np.maximum(s_max_mva * s_max_mva - p_mw * p_mw, 0.0))


def load_q(p_mw: float, pf: float) -> float:
    """Reactive power (generator convention) of a consumption ``p_mw ≤ 0`` at lagging power factor ``pf``."""
    return p_mw * tan_phi(pf) if pf < 1.0 else 0.0

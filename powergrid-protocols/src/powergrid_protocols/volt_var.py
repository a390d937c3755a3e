"""Local inverter and generator control laws (pure functions).

**Volt–var** (IEEE 1547-2018, §5.3.3, Category B default): reactive power as a
piecewise-linear function of the voltage at the terminal, in per unit of the
rated apparent power, flat beyond the end points::

    V (pu):  V1 = 0.92   V2 = 0.98   V3 = 1.02   V4 = 1.08
    Q (pu):  Q1 = +0.44  Q2 = 0      Q3 = 0      Q4 = −0.44

``Q > 0`` injects reactive power (raises the voltage, at low V); ``Q < 0``
absorbs (at high V). Generator convention, as every device in PowerGrid.

**Droop**: primary P–f droop shares an active-power imbalance ΔP (MW) among
units with droop ``R_i`` (pu on their rating ``S_i``) and nominal frequency
``f0``::

    K_i = S_i / (R_i · f0)              (MW/Hz)
    Δf  = −ΔP / (Σ K_i + D)             (D: load damping, MW/Hz)
    ΔP_i = −K_i · Δf                    (unit i's pick-up, clipped to its headroom;
                                         a saturated unit drops out and Δf is recomputed)

Q–V droop: ``Q_i = −S_i·(V_i − V0)/R_q``, clipped to ``±S_i``.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

#: IEEE 1547-2018 Category B default volt-var curve: ((V1, Q1), (V2, Q2), (V3, Q3), (V4, Q4)).
IEEE1547_CAT_B = ((0.92, 0.44), (0.98, 0.0), (1.02, 0.0), (1.08, -0.44))
#: IEEE 1547-2018 Category A default curve (V2 = V3 = 1.0, Q = ±0.25).
IEEE1547_CAT_A = ((0.90, 0.25), (1.00, 0.0), (1.00, 0.0), (1.10, -0.25))


def volt_var_q(v_pu: float | np.ndarray, curve: Sequence[tuple[float, float]] = IEEE1547_CAT_B) -> np.ndarray:
    """Reactive power (pu of rated apparent power) at voltage ``v_pu`` on a piecewise-linear ``curve``."""
    vs = np.array([p[0] for p in curve], float)
    qs = np.array([p[1] for p in curve], float)
    if np.any(np.diff(vs) < 0):
        raise ValueError(f"curve voltages must be non-decreasing, got {vs}")
    v = np.asarray(v_pu, float)
    out = np.interp(v, vs, qs)  # constant beyond the end points
    return out


def check_curve(curve: Sequence[tuple[float, float]]) -> None:
    """Raise ValueError unless the curve is a 1547-style monotone (non-increasing Q) curve."""
    vs = [p[0] for p in curve]
    qs = [p[1] for p in curve]
    if any(b < a for a, b in zip(vs, vs[1:])):
        raise ValueError(f"expected V1 ≤ V2 ≤ V3 ≤ V4, got {vs}")
    if any(b > a for a, b in zip(qs, qs[1:])):
        raise ValueError(f"expected Q1 ≥ Q2 ≥ Q3 ≥ Q4 (inject at low V, absorb at high V), got {qs}")


@attrs.frozen
class DroopShare:
    delta_f_hz: float
    delta_p_mw: np.ndarray
    unserved_mw: float


def pf_droop(delta_p_mw: float, rating_mw: Sequence[float], droop_pu: Sequence[float], *, f0_hz: float = 60.0,
             damping_mw_per_hz: float = 0.0, up_mw: Sequence[float] | None = None,
             down_mw: Sequence[float] | None = None) -> DroopShare:
    """Share an imbalance ``delta_p_mw`` (> 0: more load than generation) by P–f droop (see the module docstring).

    ``up_mw``/``down_mw`` are each unit's headroom to raise/lower its output (default: unlimited).
    """
    s = np.asarray(rating_mw, float)
    r = np.asarray(droop_pu, float)
    k = s / (r * f0_hz)
    n = len(s)
    up = np.full(n, np.inf) if up_mw is None else np.asarray(up_mw, float)
    dn = np.full(n, np.inf) if down_mw is None else np.asarray(down_mw, float)
    share = np.zeros(n)
    free = np.ones(n, bool)
    remaining = float(delta_p_mw)
    df = 0.0
    for _ in range(n + 1):
        kk = k[free].sum() + damping_mw_per_hz
        df = -remaining / kk if kk > 0 else df  # all saturated: keep the last frequency
        trial = np.where(free, -k * df, 0.0)
        over = free & ((trial > up - share) | (-trial > dn + share))
        if not over.any():
            share = share + trial
            remaining = 0.0
            break
        # saturate the units that hit a limit, then recompute the others
        for i in np.flatnonzero(over):
            limit = up[i] if trial[i] > 0 else -dn[i]
            remaining -= limit
            share[i] = limit
            free[i] = False
    served = share.sum()
    unserved = float(delta_p_mw - served - (-df * damping_mw_per_hz))
    return DroopShare(float(df), share, unserved if abs(unserved) > 1e-12 else 0.0)


def qv_droop(v_pu: np.ndarray, rating_mva: np.ndarray, droop_pu: float = 0.05, v0_pu: float = 1.0) -> np.ndarray:
    """Q–V droop (Mvar per unit): ``−S·(V − V0)/R``, clipped to ``±S``."""
    s = np.asarray(rating_mva, float)
    q = -s * (np.asarray(v_pu, float) - v0_pu) / droop_pu
    return np.clip(q, -s, s)

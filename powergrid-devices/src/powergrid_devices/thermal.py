"""Thermal models shared by HVAC, heat pump, water heater and CHP.

**First-order RC node.** A thermal mass ``C`` (kWh/°C) coupled to an ambient
``T_a`` (°C) through a resistance ``R`` (°C/kW) with a heat input ``Q`` (kW,
> 0 heats) obeys ``C·dT/dt = (T_a − T)/R + Q``. Over a step of ``dt`` hours
with ``T_a`` and ``Q`` constant its exact solution is::

    T' = T∞ + (T − T∞)·exp(−dt/(R·C)),   T∞ = T_a + R·Q

so ``T'`` is affine in ``Q``; :func:`heat_to_reach` inverts it. Two parallel
couplings (conductances ``1/R₁`` to ``T₁`` and ``G₂`` to ``T₂``, e.g. tank
losses and a hot-water draw) combine into one (:func:`parallel`).

**Space-heating demand** (degree-hour model): ``D = UA·max(T_base − T_out, 0)``.

**Heat-pump COP.** Carnot fraction: ``COP = η·(T_sink + 273.15)/max(T_sink − T_source, 5)`` (°C; the lift is taken
as at least 5 °C, :func:`carnot_cop`'s ``min_lift_c``, so a sink near or below the source does not give an unbounded
COP); or a linear fit ``COP = a + b·T_source``; both limited to ``[1, COP_max]``.

**Thermostat.** Bang-bang with a deadband (hysteresis): heating switches on
below the lower threshold and off above the upper one; cooling mirrors it.

**Stored heat** (:func:`stored_heat_mwh`): a node's heat relative to its start as the electricity it saves or
costs the conditioning to come, the store the reward values at the episode's end (``Device.stored_mwh``).
"""

from __future__ import annotations

import math
from typing import Any

KELVIN = 273.15
#: Specific heat of water, kWh/(kg·°C) (4.186 kJ/(kg·K)); 1 L of water ≈ 1 kg.
CP_WATER_KWH = 4.186 / 3600.0


def rc_step(t_c: float, t_ambient_c: float, r_c_per_kw: float, c_kwh_per_c: float, q_kw: float, dt_h: float) -> float:
    """Temperature after ``dt_h`` hours of the RC node (exact solution, see the module docstring)."""
    t_inf = t_ambient_c + r_c_per_kw * q_kw
    return t_inf + (t_c - t_inf) * math.exp(-dt_h / (r_c_per_kw * c_kwh_per_c))


def heat_to_reach(t_c: float, t_ambient_c: float, r_c_per_kw: float, c_kwh_per_c: float, t_target_c: float,
                  dt_h: float) -> float:
    """The constant heat input (kW) that brings the node from ``t_c`` to ``t_target_c`` in ``dt_h`` hours."""
    decay = math.exp(-dt_h / (r_c_per_kw * c_kwh_per_c))
    return (t_target_c - t_c * decay - t_ambient_c * (1.0 - decay)) / (r_c_per_kw * (1.0 - decay))


def parallel(r1_c_per_kw: float, t1_c: float, g2_kw_per_c: float, t2_c: float) -> tuple[float, float]:
    """One equivalent coupling ``(R, T_a)`` for a resistance to ``t1`` in parallel with a conductance to ``t2``."""
    g = 1.0 / r1_c_per_kw + g2_kw_per_c
    return 1.0 / g, (t1_c / r1_c_per_kw + g2_kw_per_c * t2_c) / g


def heat_demand_kw(ua_kw_per_c: float, t_base_c: float, t_out_c: float) -> float:
    """Space-heating demand (kW) by the degree-hour model."""
    return ua_kw_per_c * max(t_base_c - t_out_c, 0.0)


def carnot_cop(t_sink_c: float, t_source_c: float, fraction: float, cop_max: float, min_lift_c: float = 5.0) -> float:
    """A fraction of the Carnot heating COP, limited to ``[1, cop_max]`` (lift at least ``min_lift_c``)."""
    lift = max(t_sink_c - t_source_c, min_lift_c)
    return min(max(fraction * (t_sink_c + KELVIN) / lift, 1.0), cop_max)


def stored_heat_mwh(c_kwh_per_c: float, t_c: float, t_start_c: float, t_min_c: float, t_max_c: float,
                    t_eq_c: float, cop_heat: float, cop_cool: float | None = None) -> float:
    """The electric MWh the heat of a node at ``t_c`` relative to its start ``t_start_c`` saves (> 0) or costs (< 0)
    the conditioning that keeps it in its band ``[t_min_c, t_max_c]`` (°C); 0 at the start.

    The season is where the node left unconditioned would settle, ``t_eq_c``: heating when below ``t_min_c``,
    cooling (only with a ``cop_cool``) when above ``t_max_c``, else 0 MWh (it floats inside the band, or nothing can
    cool it: no conditioning is to come, so its heat saves none). Heating: ``C·(min(T, T_max) − min(T_0, T_max))/
    COP_h``, a warmer node saves heat; cooling: ``C·(max(T_0, T_min) − max(T, T_min))/COP_c`` (``C`` kWh/°C, ÷ 1000 to
    MWh). Heat beyond the band's far edge (heating above ``T_max``, cooling below ``T_min``) is worth nothing, so it
    cannot be banked; a node ending on the wrong side of the near edge owes the whole of it. First order: a warmer
    node loses its extra heat faster before it is used, so the credit is an upper bound of what it saves.
    """
    if t_eq_c < t_min_c:
        return c_kwh_per_c * (min(t_c, t_max_c) - min(t_start_c, t_max_c)) / cop_heat / 1000.0
    if cop_cool is not None and t_eq_c > t_max_c:
        return c_kwh_per_c * (max(t_start_c, t_min_c) - max(t_c, t_min_c)) / cop_cool / 1000.0
    return 0.0


class Hysteresis:
    """Bang-bang switching state with a deadband ``[low, high]``."""

    def __init__(self) -> None:
        self.on = False
        self.heating = True

    def update(self, t_c: float, low_c: float, high_c: float, heating: bool) -> bool:
        if heating != self.heating:
            self.heating, self.on = heating, False
        if heating:
            if t_c < low_c:
                self.on = True
            elif t_c > high_c:
                self.on = False
        else:
            if t_c > high_c:
                self.on = True
            elif t_c < low_c:
                self.on = False
        return self.on


def thermostat_act(device: Any, state: Hysteresis, ctx: Any) -> Any:
    """The action of a thermostatic device (``thermostat_reading``/``thermostat_action``) under bang-bang control."""
    t_c, low_c, high_c, heating = device.thermostat_reading(ctx)
    return device.thermostat_action(state.update(t_c, low_c, high_c, heating), heating)

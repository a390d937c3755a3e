"""Shared base of electrically heated thermal stores (heat pump buffer, water heater).

A store of capacitance ``C`` (kWh/°C) at temperature ``T`` is heated by
``Q_h = k·P`` kW (``P`` electric kW; ``k`` the COP or the element efficiency),
loses heat through a coupling ``(R, T_a)`` and delivers a heat draw ``Q_d`` kW::

    C·dT/dt = (T_a − T)/R + k·P − Q_d

stepped exactly with :func:`~powergrid_devices.thermal.rc_step`. A store with a floor ``T_f`` °C (:meth:`floor_c`;
the heat pump's: the room its buffer heats) serves only the part of ``Q_d`` that leaves ``T' ≥ T_f``,
``Q_s = min(Q_d, max(k·P − Q_f, 0))`` kW with ``Q_f`` the net heat input that brings ``T`` to ``T_f`` in the step
(:func:`~powergrid_devices.thermal.heat_to_reach`), and the step runs with ``Q_s`` in place of ``Q_d``: a store cannot
give heat it does not hold. The rest, ``Q_u = Q_d − Q_s`` kW, is unmet (``unmet_kwh = Q_u·dt``).

Action ``[u] ∈ [0, 1]``: ``P = u·P_max``. Projection: a high-limit cutout —
``u`` is lowered so that ``T' ≤ T_max`` (:func:`~powergrid_devices.thermal.heat_to_reach`).
Safety: ``max(T_min − T', 0) + max(T' − T_max, 0)`` °C (a store too cold to
serve its draw), plus, when a draw is unmet, the subclass's :meth:`unmet_c` of it. ``p = −P``, ``q = p·tan φ``. Observation:
``[(T − T_set)/(T_max − T_min), u, Q_d/(k·P_max)]`` (clipped to ±5, [0, 1], [0, 2]).

Store (:meth:`HeatedStore.stored_mwh`): the store's heat relative to its temperature at reset, as the electricity
it saves or costs the heating to come, so that the reward values a tank left to cool at the end like a drained
battery (``reward.storage_value``).
"""

from __future__ import annotations

import attrs
import numpy as np

from powergrid.devices import StepContext, box
from powergrid.params import quantity
from powergrid_devices.actions import BoxAction, BoxDevice, observation, uniform
from powergrid_devices.inverter import load_q
from powergrid_devices.thermal import Hysteresis, heat_to_reach, rc_step, stored_heat_mwh, thermostat_act


@attrs.frozen
class HeatedStoreParams:
    """Fields common to heated stores; subclasses add theirs and may change defaults."""

    p_max_mw: float = quantity("MW", 0.02, gt=0, doc="electric power at full output")
    t_min_c: float = quantity("°C", 35.0, doc="lowest useful store temperature")
    t_max_c: float = quantity("°C", 55.0, doc="high-limit cutout")
    t_set_c: float = quantity("°C", 45.0, doc="thermostat setpoint")
    deadband_c: float = quantity("°C", 6.0, gt=0, doc="thermostat deadband (total)")
    t_init_c: float = quantity("°C", 45.0)
    t_init_spread: float = quantity("°C", 0.0, ge=0, doc="±uniform spread of the initial temperature")
    pf: float = quantity("1", 1.0, gt=0, le=1)

    def __attrs_post_init__(self) -> None:
        if not self.t_min_c < self.t_max_c:
            raise ValueError(f"expected t_min_c < t_max_c, got {self.t_min_c} ≥ {self.t_max_c}")
        if not self.t_min_c <= self.t_set_c <= self.t_max_c:
            raise ValueError(f"expected t_min_c ≤ t_set_c ≤ t_max_c, got {self.t_set_c}")


class HeatedStore(BoxDevice):
    """See the module docstring. Subclasses define :meth:`heat_per_kw`, :meth:`coupling` and ``c_kwh_per_c``."""

    c_kwh_per_c: float

    def __init__(self, params: HeatedStoreParams, dt_h: float) -> None:
        super().__init__(params, dt_h)
        self.actions = BoxAction(["u"], [0.0], [1.0], [0.0])
        self.action_space = self.actions.space
        self.observation_space = box([-5.0, 0.0, 0.0], [5.0, 1.0, 2.0])
        self.t_c = self.t_start_c = self.t_eq_c = params.t_init_c
        self.u = 0.0
        self.draw_kw = 0.0
        self.k = 1.0
        self.unmet_kwh = 0.0
        self.thermostat = Hysteresis()

    def floor_c(self) -> float | None:
        """The temperature (°C) below which the store serves none of its draw; None: no floor (the draw is served
        whatever the temperature)."""
        return None

    def unmet_c(self, unmet_kw: float) -> float:
        """The safety (°C) of ``unmet_kw`` kW of draw the store could not serve (only stores with a floor have any)."""
        raise NotImplementedError

    def heat_per_kw(self, ctx: StepContext) -> float:
        """kW of heat per kW of electricity now (COP or efficiency)."""
        raise NotImplementedError

    def coupling(self, ctx: StepContext) -> tuple[float, float, float]:
        """``(R °C/kW, T_a °C, Q_d kW)`` now: the loss coupling and a fixed heat draw."""
        raise NotImplementedError

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        p = self.params
        self.t_c = p.t_init_c + (uniform(rng, -p.t_init_spread, p.t_init_spread) if p.t_init_spread else 0.0)
        self.t_start_c = self.t_eq_c = self.t_c
        self.u = self.draw_kw = self.unmet_kwh = 0.0
        self.k = 1.0  # the last step's heat per kW is not this episode's
        self.thermostat = Hysteresis()

    def load(self, action: object, ctx: StepContext) -> tuple[float, float, float, float, float, float, float]:
        """``(u, P, distance, k, R, T_a, Q_d)``: the load :meth:`step` runs under ``action`` (physical) from the
        temperature now (after the cutout), its electric kW, its projection distance, and :meth:`heat_per_kw` and
        :meth:`coupling`."""
        p = self.params
        (u,), distance = self.actions.read(action)
        k = self.heat_per_kw(ctx)
        r, t_a, draw_kw = self.coupling(ctx)
        q_cutout = heat_to_reach(self.t_c, t_a, r, self.c_kwh_per_c, p.t_max_c, self.dt_h) + draw_kw
        u_max = min(max(q_cutout / (k * p.p_max_mw * 1000.0), 0.0), 1.0)
        if u > u_max:
            distance += u - u_max
            u = u_max
        return u, u * p.p_max_mw * 1000.0, distance, k, r, t_a, draw_kw

    def injection_mw(self, action: object, ctx: StepContext) -> float:
        """The ``p_mw`` (MW, generator convention: ≤ 0) :meth:`step` would set under ``action`` now; changes
        nothing."""
        return -self.load(action, ctx)[1] / 1000.0

    def step(self, action: object, ctx: StepContext) -> None:
        p, dt = self.params, self.dt_h
        u, power_kw, distance, self.k, r, t_a, self.draw_kw = self.load(action, ctx)
        self.t_eq_c = t_a - r * self.draw_kw  # where the store left unheated would settle under this step's coupling
        heat_kw, c = self.k * power_kw, self.c_kwh_per_c
        t_c, unmet_kw, floor = rc_step(self.t_c, t_a, r, c, heat_kw - self.draw_kw, dt), 0.0, self.floor_c()
        if floor is not None and t_c < floor:  # the draw may not take the store below its floor: serve what lands on it
            served_kw = min(max(heat_kw - heat_to_reach(self.t_c, t_a, r, c, floor, dt), 0.0), self.draw_kw)
            unmet_kw = self.draw_kw - served_kw
            t_c = rc_step(self.t_c, t_a, r, c, heat_kw - served_kw, dt)
        self.unmet_kwh = unmet_kw * dt
        self.t_c = t_c
        self.u = float(u)
        self.p_mw = -power_kw / 1000.0
        self.q_mvar = load_q(self.p_mw, p.pf)
        self.projection = distance
        self.cost = 0.0
        self.safety = max(p.t_min_c - self.t_c, 0.0) + max(self.t_c - p.t_max_c - 1e-9, 0.0)
        if unmet_kw > 0.0:
            self.safety += self.unmet_c(unmet_kw)

    def stored_mwh(self) -> float:
        """The electric MWh the store's heat relative to its temperature at reset ``T_0`` saves (> 0) or costs (< 0)
        the heating to come, ``C·(min(T, T_max) − min(T_0, T_max))/k`` at the last step's heat per kW ``k``
        (:func:`~powergrid_devices.thermal.stored_heat_mwh`); 0 at reset, so the reward values the change over the
        episode. Heat above the cutout ``T_max`` is worth nothing; a store that left unheated would settle at or
        above ``T_min`` (``T_a − R·Q_d`` under the last step's coupling) needs no heating, so its heat saves none."""
        p = self.params
        return stored_heat_mwh(self.c_kwh_per_c, self.t_c, self.t_start_c, p.t_min_c, p.t_max_c, self.t_eq_c, self.k)

    def thermostat_reading(self, ctx: StepContext) -> tuple[float, float, float, bool]:
        p = self.params
        return self.t_c, p.t_set_c - p.deadband_c / 2, p.t_set_c + p.deadband_c / 2, True

    def thermostat_action(self, on: bool, heating: bool) -> np.ndarray:
        return self.actions.pack(u=1.0 if on else 0.0)

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        return thermostat_act(self, self.thermostat, ctx)

    def observe(self) -> np.ndarray:
        p = self.params
        full_kw = self.k * p.p_max_mw * 1000.0
        return observation(self.observation_space,
                           [(self.t_c - p.t_set_c) / (p.t_max_c - p.t_min_c), self.u, self.draw_kw / full_kw])

    def state_dict(self) -> dict[str, float]:
        return {"t_c": self.t_c, "p_mw": self.p_mw, "draw_kw": self.draw_kw, "heat_per_kw": self.k}

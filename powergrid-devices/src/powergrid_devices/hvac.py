"""Building HVAC: a first-order RC thermal model with heating and cooling."""

from __future__ import annotations

import attrs
import numpy as np

from powergrid.devices import StepContext, box
from powergrid.params import quantity
from powergrid_devices.actions import BoxAction, BoxDevice, observation, uniform
from powergrid_devices.inverter import load_q
from powergrid_devices.thermal import heat_to_reach, rc_step, stored_heat_mwh


@attrs.frozen
class HVACParams:
    p_max_mw: float = quantity("MW", 0.05, gt=0, doc="electric power at full heating or cooling")
    cop_heat: float = quantity("1", 3.0, gt=0, le=10)
    cop_cool: float = quantity("1", 3.0, gt=0, le=10, doc="cooling COP (W/W; a datasheet EER in Btu/Wh ÷ 3.412)")
    r_c_per_kw: float = quantity("°C/kW", 0.1, gt=0, doc="envelope thermal resistance")
    c_kwh_per_c: float = quantity("kWh/°C", 100.0, gt=0, doc="building thermal capacitance")
    gain_kw: float = quantity("kW", 5.0, ge=0, doc="internal and solar gains")
    t_min_c: float = quantity("°C", 20.0, doc="comfort band, lower edge")
    t_max_c: float = quantity("°C", 24.0, doc="comfort band, upper edge")
    t_init_c: float = quantity("°C", 22.0)
    t_init_spread: float = quantity("°C", 0.0, ge=0, doc="±uniform spread of the initial temperature")
    deadband_c: float = quantity("°C", 1.0, gt=0, doc="thermostat deadband around the band centre")
    margin_c: float = quantity("°C", 0.25, ge=0, doc="rule: holds the room this far inside each band edge")
    discomfort_cost: float = quantity("$/°Ch", 0.0, ge=0, doc="cost per degree-hour outside the comfort band")
    pf: float = quantity("1", 0.95, gt=0, le=1)

    def __attrs_post_init__(self) -> None:
        if self.t_min_c >= self.t_max_c:
            raise ValueError(f"expected t_min_c < t_max_c, got {self.t_min_c} ≥ {self.t_max_c}")
        if 2 * self.margin_c >= self.t_max_c - self.t_min_c:
            raise ValueError(f"expected margin_c < half the comfort band ({(self.t_max_c - self.t_min_c) / 2} °C), "
                             f"got {self.margin_c}")


class HVAC(BoxDevice):
    """One thermal zone, ``C·dT/dt = (T_out − T)/R + Q``, with ``T_out = temperature[t]``.

    Action ``[u] ∈ [−1, 1]``: ``u > 0`` heats with ``P = u·P_max`` (``Q = COP_h·P``),
    ``u < 0`` cools with ``P = |u|·P_max`` (``Q = −COP_c·P``); ``Q`` in kW adds
    the gains. The temperature follows the exact RC step
    (:func:`~powergrid_devices.thermal.rc_step`). ``p = −P``, ``q = p·tan φ``.

    Safety: degrees outside the comfort band after the step,
    ``max(T_min − T, 0) + max(T − T_max, 0)`` °C. Cost: ``discomfort_cost``
    $ per °C·h of that violation. Observation:
    ``[(T − T_mid)/half_band, (T_out − T_mid)/10, u]`` clipped to ±10.

    Store (:meth:`stored_mwh`): the room's heat relative to its temperature at reset, as the electricity it saves or
    costs the conditioning to come, so that the reward values the change of the room's temperature over an episode
    like a battery's charge (``reward.storage_value``).

    Rule (:meth:`rule_action`): the least conditioning that keeps the room inside
    ``[T_min + margin, T_max − margin]`` after the step — the room floats inside the band and is
    heated or cooled only up to an edge. The ``thermostat`` policy instead holds the band centre
    (bang-bang, ``deadband_c``), heating while it is colder outside than the centre, else cooling.
    """

    Params = HVACParams
    profiles_used = ("temperature",)

    def __init__(self, params: HVACParams, dt_h: float) -> None:
        super().__init__(params, dt_h)
        self.actions = BoxAction(["u"], [-1.0], [1.0], [0.0])
        self.action_space = self.actions.space
        self.observation_space = box([-10.0, -10.0, -1.0], [10.0, 10.0, 1.0])
        self.t_c = params.t_init_c
        self.t_out_c = params.t_init_c
        self.t_start_c = params.t_init_c
        self.u = 0.0

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        p = self.params
        self.t_c = p.t_init_c + (uniform(rng, -p.t_init_spread, p.t_init_spread) if p.t_init_spread else 0.0)
        self.t_out_c = self.t_c
        self.t_start_c = self.t_c
        self.u = 0.0

    def power_kw(self, u: float) -> float:
        """Electric kW at the action ``u`` (heating or cooling)."""
        return abs(u) * self.params.p_max_mw * 1000.0

    def injection_mw(self, action: object, ctx: StepContext) -> float:
        """The ``p_mw`` (MW, generator convention: ≤ 0) :meth:`step` would set under ``action``; changes nothing."""
        return -self.power_kw(self.actions.read(action)[0][0]) / 1000.0

    def step(self, action: object, ctx: StepContext) -> None:
        p = self.params
        (u,), self.projection = self.actions.read(action)
        self.t_out_c = ctx.profile("temperature")
        power_kw = self.power_kw(u)
        q_kw = (p.cop_heat if u >= 0 else -p.cop_cool) * power_kw + p.gain_kw
        self.t_c = rc_step(self.t_c, self.t_out_c, p.r_c_per_kw, p.c_kwh_per_c, q_kw, self.dt_h)
        self.u = float(u)
        self.p_mw = -power_kw / 1000.0
        self.q_mvar = load_q(self.p_mw, p.pf)
        self.safety = max(p.t_min_c - self.t_c, 0.0) + max(self.t_c - p.t_max_c, 0.0)
        self.cost = p.discomfort_cost * self.safety * self.dt_h

    def stored_mwh(self) -> float:
        """The electric MWh the room's heat content relative to its temperature at reset ``T_0`` saves (> 0) or costs
        (< 0) the conditioning to come (:func:`~powergrid_devices.thermal.stored_heat_mwh`); 0 at reset, so the reward
        values the change over the episode.

        The season is that of the last step's outdoor temperature, by where the room left off would settle,
        ``T_eq = T_out + R·gain`` °C: heating when ``T_eq < T_min`` (``C·(min(T, T_max) − min(T_0, T_max))/COP_h``),
        cooling when ``T_eq > T_max`` (``C·(max(T_0, T_min) − max(T, T_min))/COP_c``), and 0 MWh in between (the room
        floats inside the band, so no conditioning is to come and its heat saves none). First order: a warmer room
        loses its extra heat faster before it is used (on building_hvac's day the rule from a start 1 °C warmer draws
        ~80 % of the credit less).
        """
        p = self.params
        return stored_heat_mwh(p.c_kwh_per_c, self.t_c, self.t_start_c, p.t_min_c, p.t_max_c,
                               self.t_out_c + p.r_c_per_kw * p.gain_kw, p.cop_heat, p.cop_cool)

    def thermostat_reading(self, ctx: StepContext) -> tuple[float, float, float, bool]:
        """``(T, low, high, heating)``: heat while it is colder outside than the band centre, else cool."""
        p = self.params
        mid = 0.5 * (p.t_min_c + p.t_max_c)
        return self.t_c, mid - p.deadband_c / 2, mid + p.deadband_c / 2, ctx.profile("temperature") < mid

    def thermostat_action(self, on: bool, heating: bool) -> np.ndarray:
        return self.actions.pack(u=(1.0 if heating else -1.0) if on else 0.0)

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        """Heat or cool just enough to end the step at the nearer edge of ``[T_min + margin, T_max − margin]`` when
        the room would leave it with the HVAC off (:func:`~powergrid_devices.thermal.heat_to_reach`), else off."""
        p, t_out = self.params, ctx.profile("temperature")
        free = rc_step(self.t_c, t_out, p.r_c_per_kw, p.c_kwh_per_c, p.gain_kw, self.dt_h)
        low, high = p.t_min_c + p.margin_c, p.t_max_c - p.margin_c
        if low <= free <= high:
            return self.actions.pack(u=0.0)
        target = low if free < low else high
        q_kw = heat_to_reach(self.t_c, t_out, p.r_c_per_kw, p.c_kwh_per_c, target, self.dt_h) - p.gain_kw
        u = q_kw / (p.cop_heat if q_kw > 0 else p.cop_cool) / (p.p_max_mw * 1000.0)
        return self.actions.pack(u=u)  # clipped to [−1, 1]

    def observe(self) -> np.ndarray:
        p = self.params
        mid, half = 0.5 * (p.t_min_c + p.t_max_c), 0.5 * (p.t_max_c - p.t_min_c)
        return observation(self.observation_space, [(self.t_c - mid) / half, (self.t_out_c - mid) / 10.0, self.u])

    def state_dict(self) -> dict[str, float]:
        return {"t_c": self.t_c, "t_out_c": self.t_out_c, "p_mw": self.p_mw}

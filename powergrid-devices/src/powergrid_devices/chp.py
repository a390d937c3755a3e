"""Combined heat and power unit (gas engine, back-pressure operation) serving a heat demand."""

from __future__ import annotations

import attrs
import numpy as np

from powergrid.devices import StepContext, box
from powergrid.params import quantity
from powergrid_devices.actions import BoxAction, BoxDevice, observation
from powergrid_devices.thermal import heat_demand_kw


@attrs.frozen
class CHPParams:
    p_max_mw: float = quantity("MW", 0.4, gt=0, doc="electric rating")
    min_load: float = quantity("1", 0.5, ge=0, lt=1, doc="minimum stable load, fraction of p_max")
    eta_e: float = quantity("1", 0.35, gt=0, le=1, doc="electric efficiency (fuel LHV basis)")
    eta_th: float = quantity("1", 0.45, gt=0, le=1, doc="thermal efficiency (fuel LHV basis)")
    fuel_price: float = quantity("$/MWh", 30.0, ge=0, doc="fuel price per MWh of fuel energy")
    om_cost: float = quantity("$/MWh", 10.0, ge=0, doc="operation and maintenance per MWh electric")
    ua_kw_per_c: float = quantity("kW/°C", 30.0, ge=0, doc="heat-loss coefficient of the served buildings")
    t_base_c: float = quantity("°C", 18.0, doc="heating base temperature")
    boiler_cost: float = quantity("$/MWh", 40.0, ge=0, doc="cost of heat from the backup boiler (unmet CHP heat)")

    def __attrs_post_init__(self) -> None:
        if self.eta_e + self.eta_th > 1.0:
            raise ValueError(f"expected eta_e + eta_th ≤ 1, got {self.eta_e} + {self.eta_th}")


class CHP(BoxDevice):
    """Back-pressure CHP: fuel ``F = P/η_e``, heat ``H = η_th·F = (η_th/η_e)·P`` (MW).

    Action ``[u] ∈ [0, 1]``, ``P = u·P_max``; ``0 < u < u_min`` goes to the nearer
    of 0 and ``u_min``. The heat serves ``D = UA·max(T_base − T_out, 0)``
    (``T_out = temperature[t]``); a backup boiler covers ``max(D − H, 0)``, and
    surplus heat is dumped. Cost over ``dt`` hours:
    ``(fuel_price·F + om_cost·P + boiler_cost·max(D − H, 0))·dt`` $. Safety: 0.
    ``p = P``, ``q = 0``. Observation: ``[u, D/H_max (0–2), min(H, D)/H_max]``.
    """

    Params = CHPParams
    profiles_used = ("temperature",)

    def __init__(self, params: CHPParams, dt_h: float) -> None:
        super().__init__(params, dt_h)
        self.actions = BoxAction(["u"], [0.0], [1.0], [0.0])
        self.action_space = self.actions.space
        self.observation_space = box([0.0, 0.0, 0.0], [1.0, 2.0, 1.0])
        self.heat_max_mw = params.eta_th / params.eta_e * params.p_max_mw
        self.u = self.heat_mw = self.demand_mw = 0.0

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        self.u = self.heat_mw = self.demand_mw = 0.0

    def load(self, action: object) -> tuple[float, float]:
        """``(u, projection distance)``: the load :meth:`step` runs under ``action`` (physical)."""
        min_load = self.params.min_load
        (requested,), distance = self.actions.read(action)
        u = requested
        if 0 < u < min_load:
            u = 0.0 if u < min_load / 2 else min_load
        return u, distance + abs(u - requested)

    def injection_mw(self, action: object, ctx: StepContext) -> float:
        """The ``p_mw`` (MW, generator convention) :meth:`step` would set under ``action``; changes nothing."""
        return self.load(action)[0] * self.params.p_max_mw

    def step(self, action: object, ctx: StepContext) -> None:
        p, dt = self.params, self.dt_h
        u, self.projection = self.load(action)
        power = u * p.p_max_mw
        fuel = power / p.eta_e
        self.heat_mw = p.eta_th * fuel
        self.demand_mw = heat_demand_kw(p.ua_kw_per_c, p.t_base_c, ctx.profile("temperature")) / 1000.0
        boiler = max(self.demand_mw - self.heat_mw, 0.0)
        self.u = float(u)
        self.p_mw, self.q_mvar = power, 0.0
        self.cost = (p.fuel_price * fuel + p.om_cost * power + p.boiler_cost * boiler) * dt
        self.safety = 0.0

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        """Heat-led: follow the heat demand (within the load range)."""
        p = self.params
        demand = heat_demand_kw(p.ua_kw_per_c, p.t_base_c, ctx.profile("temperature")) / 1000.0
        u = min(demand / self.heat_max_mw, 1.0)
        return self.actions.pack(u=u if u >= p.min_load / 2 else 0.0)

    def observe(self) -> np.ndarray:
        h = self.heat_max_mw
        return observation(self.observation_space, [self.u, self.demand_mw / h, min(self.heat_mw, self.demand_mw) / h])

    def state_dict(self) -> dict[str, float]:
        return {"p_mw": self.p_mw, "heat_mw": self.heat_mw, "demand_mw": self.demand_mw}

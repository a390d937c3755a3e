"""Flexible demand: curtailable and shiftable load with a discomfort cost."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from powergrid.devices import StepContext, box
from powergrid.params import quantity
from powergrid_devices.actions import BoxAction, BoxDevice, RunningMean, observation, price_thresholds, uniform
from powergrid_devices.inverter import load_q


@attrs.frozen
class FlexibleLoadParams:
    p_base_mw: float = quantity("MW", 0.2, gt=0, doc="demand at a load multiplier of 1 pu")
    pf: float = quantity("1", 0.95, gt=0, le=1, doc="lagging power factor")
    curtail_max: float = quantity("1", 0.3, ge=0, le=1, doc="largest fraction of demand that may be shed")
    shift_max_mw: float = quantity("MW", 0.05, ge=0, doc="largest deferral or recovery rate")
    backlog_max_mwh: float = quantity("MWh", 0.2, ge=0, doc="largest deferred energy")
    curtail_cost: float = quantity("$/MWh", 200.0, ge=0, doc="discomfort of shed energy")
    delay_cost: float = quantity("$/MWh/h", 5.0, ge=0, doc="discomfort of energy waiting in the backlog")
    backlog_init_spread: float = quantity("1", 0.0, ge=0, le=1, doc="initial backlog U(0, spread)·backlog_max")
    price_band: float = quantity("1", 0.1, ge=0, lt=1, doc="rule: defer above mean + band·abs(mean) price")


class FlexibleLoad(BoxDevice):
    """Demand ``D = p_base·m(t)`` MW that can be shed or shifted in time.

    ``m(t)`` (pu) is the multiplier of the network loads at the device's bus (weighted by their
    base ``|P|``; :mod:`powergrid.loads`: their customer class's shape, the day's level of the
    ``load`` profile, their jitter and scale), so the flexible demand has the shape of the
    customers it sits with; at a bus without network loads it is the ``load`` profile ``L(t)``.

    Action ``[c, s]``: ``c ∈ [0, curtail_max]`` sheds ``c·D`` (lost);
    ``s ∈ [−1, 1]``: ``s > 0`` defers ``s·shift_max`` MW into the backlog,
    ``s < 0`` recovers ``|s|·shift_max`` MW from it. Projection: deferral to
    at most the remaining demand ``(1−c)·D`` and the backlog room
    ``(B_max − B)/dt``; recovery to at most ``B/dt``.

    - consumption ``L = (1−c)·D − defer + recover``; ``p = −L``, ``q = p·tan φ``;
    - backlog ``B' = B + (defer − recover)·dt`` MWh;
    - cost ``curtail_cost·c·D·dt + delay_cost·B'·dt`` $;
    - safety: the backlog left unserved at the last tick of the episode, ``B'/dt`` (MWh over the step, h, so the
      reward, which prices safety ``safety_weight·dt`` per unit, charges ``safety_weight`` $ per MWh at any step).

    Observation: ``[D/p_base (0–3), B/B_max, L/p_base (0–3)]``.
    """

    Params = FlexibleLoadParams
    profiles_used = ("load",)

    def __init__(self, params: FlexibleLoadParams, dt_h: float) -> None:
        super().__init__(params, dt_h)
        self.actions = BoxAction(["c", "s"], [0.0, -1.0], [params.curtail_max, 1.0], [0.0, 0.0])
        self.action_space = self.actions.space
        self.observation_space = box([0.0, 0.0, 0.0], [3.0, 1.0, 3.0])
        self.backlog = 0.0
        self.demand = 0.0
        self.prices = RunningMean()
        self.load_rows = np.zeros(0, np.int64)  # the net.load rows at the bus, and their weights (sum 1)
        self.load_weights = np.zeros(0)

    def attach(self, net: Any, bus: int) -> None:
        """Find the network loads at the bus, whose multipliers the demand follows."""
        super().attach(net, bus)
        self.load_rows = np.flatnonzero(net.load.bus.to_numpy() == int(net.bus.index[bus]))
        weights = np.abs(net.load.p_mw.to_numpy(float)[self.load_rows])
        total = weights.sum()
        self.load_weights = weights / total if total > 0 else np.full(len(weights), 1.0 / max(len(weights), 1))

    def multiplier(self, ctx: StepContext) -> float:
        """``m(t)`` (pu): the weighted multiplier of the bus's network loads now (``ctx.load_multipliers``), or
        the ``load`` profile where there are none (no load at the bus; a context without multipliers)."""
        if len(self.load_rows) and ctx.tick < len(ctx.load_multipliers):
            return float(ctx.load_multipliers[ctx.tick, self.load_rows] @ self.load_weights)
        return ctx.profile("load")

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        p = self.params
        self.backlog = uniform(rng, 0.0, p.backlog_init_spread) * p.backlog_max_mwh if p.backlog_init_spread else 0.0
        self.demand = 0.0
        self.prices = RunningMean()

    def flows(self, action: object, ctx: StepContext) -> tuple[float, float, float, float, float, float]:
        """``(c, D, defer, recover, L, distance)`` (MW but ``c``) :meth:`step` sets under ``action`` (physical)
        from the backlog now."""
        p, dt = self.params, self.dt_h
        (c, s), distance = self.actions.read(action)
        demand = p.p_base_mw * max(self.multiplier(ctx), 0.0)
        served = (1.0 - c) * demand
        want = s * p.shift_max_mw
        if want >= 0:
            defer = min(want, served, max(p.backlog_max_mwh - self.backlog, 0.0) / dt)
            recover = 0.0
            distance += (want - defer) / p.shift_max_mw if p.shift_max_mw else 0.0
        else:
            defer = 0.0
            recover = min(-want, self.backlog / dt)
            distance += (-want - recover) / p.shift_max_mw if p.shift_max_mw else 0.0
        return c, demand, defer, recover, served - defer + recover, distance

    def injection_mw(self, action: object, ctx: StepContext) -> float:
        """The ``p_mw`` (MW, generator convention: ≤ 0) :meth:`step` would set under ``action`` now; changes nothing."""
        return -self.flows(action, ctx)[4]

    def step(self, action: object, ctx: StepContext) -> None:
        p, dt = self.params, self.dt_h
        c, self.demand, defer, recover, consumption, distance = self.flows(action, ctx)
        self.backlog = min(max(self.backlog + (defer - recover) * dt, 0.0), p.backlog_max_mwh)
        self.p_mw = -consumption
        self.q_mvar = load_q(self.p_mw, p.pf)
        self.projection = distance
        self.cost = p.curtail_cost * c * self.demand * dt + p.delay_cost * self.backlog * dt
        last = ctx.tick >= len(ctx.profiles["load"]) - 1
        self.safety = self.backlog / dt if last else 0.0  # priced safety_weight·dt: per MWh
        self.prices.add(ctx.price)

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        """Never shed; defer at full rate when the price is high, recover the backlog otherwise."""
        high = ctx.price > price_thresholds(self.prices.peek(ctx.price), self.params.price_band)[1]
        last = ctx.tick >= len(ctx.profiles["load"]) - 1
        return self.actions.pack(c=0.0, s=1.0 if high and not last else -1.0 if self.backlog > 0 else 0.0)

    def observe(self) -> np.ndarray:
        p = self.params
        fill = self.backlog / p.backlog_max_mwh if p.backlog_max_mwh else 0.0
        return observation(self.observation_space, [self.demand / p.p_base_mw, fill, -self.p_mw / p.p_base_mw])

    def state_dict(self) -> dict[str, float]:
        return {"p_mw": self.p_mw, "demand_mw": self.demand, "backlog_mwh": self.backlog}

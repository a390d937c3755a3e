"""Dispatchable generator (diesel, gas engine) with unit commitment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from powergrid.devices import Device, StepContext, box
from powergrid.params import choice, flag, numbers, quantity
from powergrid_devices.actions import BoxAction, observation
from powergrid_devices.inverter import tan_phi
from powergrid_devices.kernel import ARRAY, SCALAR, Kernel, clip

UNLIMITED = 1e9


@attrs.frozen
class DGParams:
    p_min_mw: float = quantity("MW", 0.0, ge=0, doc="minimum stable output while on")
    p_max_mw: float = quantity("MW", 0.6, gt=0)
    cost_curve: str = choice(("quadratic", "piecewise"), "quadratic")
    cost_a: float = quantity("$/MW²h", 10.0, ge=0, doc="quadratic fuel-cost coefficient")
    cost_b: float = quantity("$/MWh", 50.0, ge=0, doc="linear fuel-cost coefficient")
    cost_c: float = quantity("$/h", 0.0, ge=0, doc="no-load cost while on and producing")
    pwl_mw: tuple = numbers("MW", (0.0, 0.6), ge=0, doc="piecewise-linear cost: output breakpoints")
    pwl_cost_per_h: tuple = numbers("$/h", (0.0, 36.0), ge=0, doc="piecewise-linear cost: fuel cost at each breakpoint")
    ramp_up_mw_per_h: float = quantity("MW/h", UNLIMITED, gt=0)
    ramp_down_mw_per_h: float = quantity("MW/h", UNLIMITED, gt=0)
    commitment: bool = flag(False, doc="add an on/off action (start-up cost, minimum up/down time)")
    startup_cost: float = quantity("$", 0.0, ge=0)
    min_up_h: float = quantity("h", 0.0, ge=0)
    min_down_h: float = quantity("h", 0.0, ge=0)
    on_init: bool = flag(True)
    init_spread: float = quantity("1", 0.0, ge=0, le=1,
                                  doc="initial output p_min + U(0, spread)·(p_max − p_min) and time in state")
    pf_min: float = quantity("1", 1.0, gt=0, le=1, doc="power-factor limit; < 1 adds a reactive-power action")

    def __attrs_post_init__(self) -> None:
        if self.p_min_mw > self.p_max_mw:
            raise ValueError(f"expected p_min_mw ≤ p_max_mw, got {self.p_min_mw} > {self.p_max_mw}")
        if self.cost_curve == "piecewise":
            mw, cost = self.pwl_mw, self.pwl_cost_per_h
            if len(mw) != len(cost) or len(mw) < 2:
                raise ValueError(f"expected pwl_mw and pwl_cost_per_h of the same length ≥ 2, got {len(mw)} and {len(cost)}")
            if any(b <= a for a, b in zip(mw, mw[1:])):
                raise ValueError(f"expected pwl_mw strictly increasing, got {list(mw)}")
            if mw[0] > self.p_min_mw or mw[-1] < self.p_max_mw:
                raise ValueError(f"expected pwl_mw to cover [p_min_mw, p_max_mw] = [{self.p_min_mw}, {self.p_max_mw}], "
                                 f"got [{mw[0]}, {mw[-1]}]")


def dg_can_switch(o: Any, on: Any, hours: Any, p_prev: Any, commitment: Any, p: Any, dt: Any) -> Any:
    """Whether a unit may switch now: committed, min up/down time served, off only from the shut-down ramp."""
    may_stop = (hours >= p.min_up_h - 1e-9) & (p_prev <= o.maximum(p.p_min_mw, p.ramp_down_mw_per_h * dt) + 1e-9)
    return commitment & o.where(on, may_stop, hours >= p.min_down_h - 1e-9)


def dg_dispatch(o: Any, on: Any, hours: Any, p_prev: Any, u: Any, power: Any, q: Any, commitment: Any,
                tan: Any, p: Any, dt: Any) -> tuple[Any, ...]:
    """Commitment, ramps and the power-factor limit of :class:`DG` for a request (``u`` on/off, ``power`` MW,
    ``q`` Mvar) inside the action bounds; ``tan`` is ``tan(acos(pf_min))`` (0 without a Q action).

    Returns ``(on', switched, p, q, hours', projection)``.
    """
    want_on = u >= 0.5
    request = commitment & (want_on != on)
    can = dg_can_switch(o, on, hours, p_prev, commitment, p, dt)
    switched = request & can
    new_on = o.where(switched, want_on, on)
    low = o.where(switched, p.p_min_mw, o.maximum(p.p_min_mw, p_prev - p.ramp_down_mw_per_h * dt))
    high = o.where(switched, o.minimum(p.p_max_mw, o.maximum(p.p_min_mw, p.ramp_up_mw_per_h * dt)),
                   o.minimum(p.p_max_mw, p_prev + p.ramp_up_mw_per_h * dt))
    applied = o.where(new_on, clip(o, power, low, high), 0.0)
    limit = o.abs(applied) * tan
    q_applied = clip(o, q, -limit, limit)
    # a refused switch counts 1; a unit kept off while wanted on did not honour its power request either
    distance = (o.where(request & o.not_(can), 1.0, 0.0)
                + o.where(new_on, o.abs(applied - power), o.where(commitment & want_on, o.abs(power), 0.0))
                + o.abs(q_applied - q))
    return new_on, switched, applied, q_applied, o.where(switched, dt, hours + dt), distance


def quadratic_fuel(o: Any, power: Any, p: Any) -> Any:
    """Quadratic fuel cost rate ($/h) at ``power`` MW while on: ``a·p² + b·p + c`` (``c`` only while ``p > 0``)."""
    return p.cost_a * (power * power) + p.cost_b * power + o.where(power > 0, p.cost_c, 0.0)


def dg_cost(o: Any, on: Any, switched: Any, fuel_per_h: Any, p: Any, dt: Any) -> Any:
    """Fuel over ``dt`` hours while on plus the start-up cost when switched on ($)."""
    return o.where(on, fuel_per_h * dt, 0.0) + o.where(switched & on, p.startup_cost, 0.0)


class DGKernel(Kernel):
    """All DG instances of one action shape in one :func:`dg_dispatch` call."""

    params = ("p_min_mw", "p_max_mw", "ramp_up_mw_per_h", "ramp_down_mw_per_h", "min_up_h", "min_down_h",
              "startup_cost", "cost_a", "cost_b", "cost_c")

    def __init__(self, devices: Sequence[Device]) -> None:
        super().__init__(devices)
        self.commitment = np.array([d.params.commitment for d in self.devices])
        self.tan = np.array([d.tan_phi for d in self.devices])
        # each device's action column of u, p and q (-1: none), as [u p] and [p q] have the same shape
        self.rows = np.arange(len(self.devices))
        self.cols = {name: np.array([d.actions.names.index(name) if name in d.actions.names else -1
                                     for d in self.devices]) for name in ("u", "p", "q")}
        self.piecewise = [i for i, d in enumerate(self.devices) if d.params.cost_curve == "piecewise"]

    def step(self, actions: Sequence[Any], ctxs: Sequence[StepContext]) -> None:
        values, distance = self.read(actions)
        devices = self.devices
        on = np.array([d.on for d in devices])
        u, power, q = (np.where(c >= 0, values[self.rows, c], default)
                       for c, default in zip(self.cols.values(), (on.astype(float), 0.0, 0.0)))
        on, switched, power, q, hours, projection = dg_dispatch(
            ARRAY, on, np.array([d.hours_in_state for d in devices]), np.array([d.p_prev for d in devices]),
            u, power, q, self.commitment, self.tan, self.p, self.dt)
        fuel = quadratic_fuel(ARRAY, power, self.p)
        for i in self.piecewise:
            fuel[i] = devices[i].fuel_cost_per_h(float(power[i]))
        cost = dg_cost(ARRAY, on, switched, fuel, self.p, self.dt)
        rows = zip(devices, on.tolist(), hours.tolist(), power.tolist(), q.tolist(), (projection + distance).tolist(),
                   cost.tolist())
        for d, d.on, d.hours_in_state, d.p_mw, d.q_mvar, d.projection, d.cost in rows:
            d.p_prev = d.p_mw
            d.safety = 0.0


class DG(Device):
    """Dispatchable generator: fuel cost, ramp limits, minimum stable output, unit commitment, PF-limited Q.

    Action: ``[u]`` (on/off, only with ``commitment``; ``u ≥ 0.5`` means on) +
    ``[p]`` MW + ``[q]`` Mvar (only with ``pf_min < 1``).

    - Fuel cost over ``dt`` hours while on: quadratic ``(a·p² + b·p + c)·dt`` $
      (``c`` only while ``p > 0``) or piecewise linear ``F(p)·dt`` interpolating
      ``(pwl_mw, pwl_cost_per_h)``. Start-up: ``startup_cost`` $ when switched on.
    - On: ``p ∈ [max(p_min, p₀ − RD·dt), min(p_max, p₀ + RU·dt)]``; in the step it
      starts, ``p ∈ [p_min, max(p_min, RU·dt)]``. It may shut down only when
      ``p₀ ≤ max(p_min, RD·dt)`` (shut-down ramp), after ``min_up_h`` hours on; it
      may start after ``min_down_h`` hours off. An on/off request that cannot
      be honoured keeps the state and counts 1 in the projection.
    - ``|q| ≤ p·tan(acos(pf_min))``.

    Safety: 0 (every limit is enforced by projection). Observation:
    ``[p/p_max, on, can_switch]`` (+ ``q/q_max``).
    """

    Params = DGParams
    Kernel = DGKernel

    def __init__(self, params: DGParams, dt_h: float) -> None:
        super().__init__(params, dt_h)
        p = params
        self.tan_phi = tan_phi(p.pf_min) if p.pf_min < 1 else 0.0
        self.q_max = p.p_max_mw * self.tan_phi
        names, low, high, default = ["p"], [0.0 if p.commitment else p.p_min_mw], [p.p_max_mw], [p.p_min_mw]
        if p.commitment:
            names, low, high, default = ["u"] + names, [0.0] + low, [1.0] + high, [1.0 if p.on_init else 0.0] + default
        if self.q_max > 0:
            names, low, high, default = names + ["q"], low + [-self.q_max], high + [self.q_max], default + [0.0]
        self.actions = BoxAction(names, low, high, default)
        self.action_space = self.actions.space
        n_obs = 3 + (1 if self.q_max > 0 else 0)
        self.observation_space = box([0.0, 0.0, 0.0] + [-1.0] * (n_obs - 3), [1.0] * n_obs)
        self.on = p.on_init or not p.commitment
        self.hours_in_state = 0.0
        self.p_prev = 0.0

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        p = self.params
        self.on = p.on_init or not p.commitment
        draw = rng.uniform(0.0, p.init_spread, size=2) if p.init_spread else np.zeros(2)
        self.p_prev = p.p_min_mw + draw[0] * (p.p_max_mw - p.p_min_mw) if self.on else 0.0
        self.hours_in_state = float(draw[1] * max(p.min_up_h, p.min_down_h))
        self.p_mw = self.p_prev

    def fuel_cost_per_h(self, power: float) -> float:
        """Fuel cost rate ($/h) at ``power`` MW while on."""
        p = self.params
        if p.cost_curve == "piecewise":
            return float(np.interp(power, p.pwl_mw, p.pwl_cost_per_h))
        return quadratic_fuel(SCALAR, power, p)

    def can_switch(self) -> bool:
        return bool(dg_can_switch(SCALAR, self.on, self.hours_in_state, self.p_prev, self.params.commitment,
                                  self.params, self.dt_h))

    def step(self, action: object, ctx: StepContext) -> None:
        a = self.actions
        values, distance = a.read(action)
        u = values[a.index("u")] if self.params.commitment else float(self.on)
        q = values[a.index("q")] if self.q_max > 0 else 0.0
        on, switched, power, self.q_mvar, self.hours_in_state, projection = dg_dispatch(
            SCALAR, self.on, self.hours_in_state, self.p_prev, u, values[a.index("p")], q, self.params.commitment,
            self.tan_phi, self.params, self.dt_h)
        self.cost = dg_cost(SCALAR, on, switched, self.fuel_cost_per_h(power), self.params, self.dt_h)
        self.on, self.p_prev, self.p_mw = bool(on), power, power
        self.projection = projection + distance
        self.safety = 0.0

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        """Profit-maximising output at ``ctx.price`` over a grid of outputs; commit when the profit is positive."""
        p = self.params
        grid = np.linspace(p.p_min_mw, p.p_max_mw, 61)
        profit = np.array([ctx.price * x - self.fuel_cost_per_h(x) for x in grid])
        best = int(np.argmax(profit))
        values = {"p": float(grid[best])}
        if p.commitment:
            values["u"] = 1.0 if profit[best] > 0 else 0.0
        return self.actions.pack(**values)

    def observe(self) -> np.ndarray:
        p = self.params
        values = [self.p_mw / p.p_max_mw, float(self.on), float(self.can_switch())]
        if self.q_max > 0:
            values.append(self.q_mvar / self.q_max)
        return observation(self.observation_space, values)

    def state_dict(self) -> dict[str, float]:
        return {"p_mw": self.p_mw, "q_mvar": self.q_mvar, "on": float(self.on), "hours_in_state": self.hours_in_state}

"""Dispatchable generator (diesel, gas engine) with unit commitment."""

from __future__ import annotations

import attrs
import numpy as np

from powergrid.devices import Device, StepContext, box
from powergrid.params import choice, flag, numbers, quantity
from powergrid_devices.actions import BoxAction, observation
from powergrid_devices.inverter import q_limit, tan_phi

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

    def __init__(self, params: DGParams, dt_h: float) -> None:
        super().__init__(params, dt_h)
        p = params
        self.q_max = p.p_max_mw * tan_phi(p.pf_min) if p.pf_min < 1 else 0.0
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
        return p.cost_a * power**2 + p.cost_b * power + (p.cost_c if power > 0 else 0.0)

    def can_switch(self) -> bool:
        p, dt = self.params, self.dt_h
        if not p.commitment:
            return False
        if self.on:
            return self.hours_in_state >= p.min_up_h - 1e-9 and self.p_prev <= max(p.p_min_mw, p.ramp_down_mw_per_h * dt) + 1e-9
        return self.hours_in_state >= p.min_down_h - 1e-9

    def step(self, action: object, ctx: StepContext) -> None:
        p, dt, a = self.params, self.dt_h, self.actions
        values, distance = a.read(action)
        on, switched = self.on, False
        if p.commitment:
            want_on = values[a.index("u")] >= 0.5
            if want_on != self.on:
                if self.can_switch():
                    on, switched = want_on, True
                else:
                    distance += 1.0
        requested = values[a.index("p")]
        if not on:
            power = 0.0
            if p.commitment and values[a.index("u")] >= 0.5:  # wanted on: the power request was not honoured either
                distance += abs(requested)
        else:
            if switched:
                low, high = p.p_min_mw, min(p.p_max_mw, max(p.p_min_mw, p.ramp_up_mw_per_h * dt))
            else:
                low = max(p.p_min_mw, self.p_prev - p.ramp_down_mw_per_h * dt)
                high = min(p.p_max_mw, self.p_prev + p.ramp_up_mw_per_h * dt)
            power = min(max(requested, low), high)
            distance += abs(power - requested)
        q = 0.0
        if self.q_max > 0:
            limit = q_limit(power, pf_min=p.pf_min)
            q = min(max(values[a.index("q")], -limit), limit)
            distance += abs(q - values[a.index("q")])
        self.hours_in_state = dt if switched else self.hours_in_state + dt
        self.on = on
        self.p_prev = power
        self.p_mw, self.q_mvar = float(power), float(q)
        self.projection = distance
        self.cost = (self.fuel_cost_per_h(power) * dt if on else 0.0) + (p.startup_cost if switched and on else 0.0)
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

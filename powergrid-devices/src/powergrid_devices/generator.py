"""Dispatchable generator (diesel, gas engine) with unit commitment."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from powergrid.devices import StepContext, box
from powergrid.params import UNLIMITED, choice, flag, numbers, quantity
from powergrid_devices.actions import BoxAction, BoxDevice, BoxKernel, uniform
from powergrid_devices.inverter import q_limit, tan_phi


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


def quadratic_fuel_per_h(power: Any, a: Any, b: Any, no_load: Any) -> Any:
    """Quadratic fuel cost rate ``a·p² + b·p + c`` ($/h) at ``power`` MW (floats or arrays; ``no_load`` is ``c``
    while producing, else 0)."""
    return a * power**2 + b * power + no_load


class DGKernel(BoxKernel):
    """Every DG of one action layout stepped on arrays (the physics of :class:`DG`; piecewise fuel curves
    are interpolated device by device)."""

    params = ("p_min_mw", "p_max_mw", "cost_a", "cost_b", "cost_c", "ramp_up_mw_per_h", "ramp_down_mw_per_h",
              "startup_cost", "min_up_h", "min_down_h")
    state = {**BoxKernel.state, "on": ("on", np.bool_), "hours_in_state": ("hours", np.float64)}

    def __init__(self, devices: list[Any]) -> None:
        super().__init__(devices)
        names = devices[0].actions.names
        self.iu = names.index("u") if "u" in names else -1
        self.ip = names.index("p")
        self.iq = names.index("q") if "q" in names else -1
        self.q_max = np.array([d.q_max for d in devices], np.float64)
        self.tan = np.array([tan_phi(d.params.pf_min) if d.q_max > 0 else 0.0 for d in devices], np.float64)
        self.piecewise = [(i, d.params.pwl_mw, d.params.pwl_cost_per_h) for i, d in enumerate(devices)
                          if d.params.cost_curve == "piecewise"]
        self.ramp_up, self.ramp_down = self.p.ramp_up_mw_per_h * self.dt, self.p.ramp_down_mw_per_h * self.dt  # MW a step

    def can_switch(self) -> np.ndarray:
        """:meth:`DG.can_switch` of every device."""
        if self.iu < 0:
            return np.zeros(len(self.devices), bool)
        p = self.p
        up = (self.hours >= p.min_up_h - 1e-9) & (self.p_mw <= np.maximum(p.p_min_mw, self.ramp_down) + 1e-9)
        return np.where(self.on, up, self.hours >= p.min_down_h - 1e-9)

    def step(self, actions: np.ndarray, prices: np.ndarray, ctx: StepContext) -> None:
        p, dt = self.p, self.dt
        values, distance = self.box.read(actions)
        if self.iu < 0:
            self._step_always_on(values, distance)
            return
        on, switched = self.on, np.zeros(len(self.devices), bool)
        if self.iu >= 0:
            want_on = values[:, self.iu] >= 0.5
            differs = want_on != on
            allowed = self.can_switch()
            switched = differs & allowed
            distance += np.where(differs & ~allowed, 1.0, 0.0)
            on = np.where(switched, want_on, on)
        requested = values[:, self.ip]
        if self.iu >= 0:  # wanted on but off: the power request was not honoured either
            distance += np.where(~on & want_on, np.abs(requested), 0.0)
        low = np.where(switched, p.p_min_mw, np.maximum(p.p_min_mw, self.p_mw - self.ramp_down))
        high = np.where(switched, np.minimum(p.p_max_mw, np.maximum(p.p_min_mw, self.ramp_up)),
                        np.minimum(p.p_max_mw, self.p_mw + self.ramp_up))
        held = np.minimum(np.maximum(requested, low), high)
        distance += np.where(on, np.abs(held - requested), 0.0)
        power = np.where(on, held, 0.0)
        q, fuel = self._q_and_fuel(values, power, distance)
        self.hours = np.where(switched, dt, self.hours + dt)
        self.on = on
        self.p_mw, self.q_mvar, self.projection = power, q, distance
        self.cost = np.where(on, fuel * dt, 0.0) + np.where(switched & on, p.startup_cost, 0.0)
        # safety stays 0 (from the devices' reset)

    def _q_and_fuel(self, values: np.ndarray, power: np.ndarray, distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reactive power (Mvar) within the power-factor limit (its clipping added to ``distance``) and
        fuel cost ($/h) at ``power`` (MW)."""
        p = self.p
        q = np.zeros(len(power))
        if self.iq >= 0:
            limit = np.abs(power) * self.tan
            q = np.minimum(np.maximum(values[:, self.iq], -limit), limit)
            distance += np.abs(q - values[:, self.iq])
        # c while producing, else 0: c·(p > 0) is np.where(power > 0, c, 0.0) for c ≥ 0 (same floats, faster)
        fuel = quadratic_fuel_per_h(power, p.cost_a, p.cost_b, p.cost_c * (power > self.zero))
        for i, mw, cost in self.piecewise:
            fuel[i] = np.interp(power[i], mw, cost)
        return q, fuel

    def _step_always_on(self, values: np.ndarray, distance: np.ndarray) -> None:
        """:meth:`step` without a commitment action: always on, never switched (the same arithmetic, fewer calls)."""
        p = self.p
        requested = values[:, self.ip]
        low = np.maximum(p.p_min_mw, self.p_mw - self.ramp_down)
        high = np.minimum(p.p_max_mw, self.p_mw + self.ramp_up)
        power = np.minimum(np.maximum(requested, low), high)
        distance += np.abs(power - requested)
        q, fuel = self._q_and_fuel(values, power, distance)
        self.hours = self.hours + self.dt
        self.p_mw, self.q_mvar, self.projection = power, q, distance
        self.cost = fuel * self.dt + self.zero  # + 0: the per-object step's start-up term (same floats)

    def observe_values(self) -> list[np.ndarray]:
        columns = [self.p_mw / self.p.p_max_mw, self.on.astype(np.float64), self.can_switch().astype(np.float64)]
        if self.iq >= 0:
            columns.append(self.q_mvar / self.q_max)
        return columns


class DG(BoxDevice):
    """Dispatchable generator: fuel cost, ramp limits, minimum stable output, unit commitment, PF-limited Q.

    Action: ``[p]`` MW + ``[u]`` (on/off, only with ``commitment``; ``u ≥ 0.5`` means on) +
    ``[q]`` Mvar (only with ``pf_min < 1``); ``p`` first, the MW setpoint protocols move.

    - Fuel cost over ``dt`` hours while on: quadratic ``(a·p² + b·p + c)·dt`` $
      (``c`` only while ``p > 0``) or piecewise linear ``F(p)·dt`` interpolating
      ``(pwl_mw, pwl_cost_per_h)``. Start-up: ``startup_cost`` $ when switched on.
    - On: ``p ∈ [max(p_min, p₀ − RD·dt), min(p_max, p₀ + RU·dt)]`` with ``p₀`` the last output (``p_mw``, MW); in the step it
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
        self.q_max = p.p_max_mw * tan_phi(p.pf_min) if p.pf_min < 1 else 0.0
        # p first: protocols move the MW setpoint, the first entry (powergrid.protocols.set_pending_mw)
        names, low, high, default = ["p"], [0.0 if p.commitment else p.p_min_mw], [p.p_max_mw], [p.p_min_mw]
        if p.commitment:
            names, low, high, default = names + ["u"], low + [0.0], high + [1.0], default + [1.0 if p.on_init else 0.0]
        if self.q_max > 0:
            names, low, high, default = names + ["q"], low + [-self.q_max], high + [self.q_max], default + [0.0]
        self.actions = BoxAction(names, low, high, default)
        self.action_space = self.actions.space
        self._iu, self._ip, self._iq = (names.index(n) if n in names else -1 for n in ("u", "p", "q"))
        n_obs = 3 + (1 if self.q_max > 0 else 0)
        self.observation_space = box([0.0, 0.0, 0.0] + [-1.0] * (n_obs - 3), [1.0] * n_obs)
        self.on = p.on_init or not p.commitment
        self.hours_in_state = 0.0
        # the outputs the rule weighs (MW) and their fuel cost ($/h): fixed by the params, built once
        self._grid = np.linspace(p.p_min_mw, p.p_max_mw, 61)
        self._grid_fuel = np.array([self.fuel_cost_per_h(x) for x in self._grid])

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        p = self.params
        self.on = p.on_init or not p.commitment
        draw = (uniform(rng, 0.0, p.init_spread), uniform(rng, 0.0, p.init_spread)) if p.init_spread else (0.0, 0.0)
        self.p_mw = p.p_min_mw + draw[0] * (p.p_max_mw - p.p_min_mw) if self.on else 0.0
        self.hours_in_state = draw[1] * max(p.min_up_h, p.min_down_h)

    def draws_at_reset(self) -> bool:
        """Only with a spread of the initial output (or a subclass's own ``reset``)."""
        return type(self).reset is not DG.reset or self.params.init_spread > 0

    def fuel_cost_per_h(self, power: float) -> float:
        """Fuel cost rate ($/h) at ``power`` MW while on."""
        p = self.params
        if p.cost_curve == "piecewise":
            return float(np.interp(power, p.pwl_mw, p.pwl_cost_per_h))
        return quadratic_fuel_per_h(power, p.cost_a, p.cost_b, p.cost_c if power > 0 else 0.0)

    def commitment(self, want_on: bool | None) -> tuple[bool, bool]:
        """``(on, switched)`` over the next step after an on/off request (None: none); honoured when
        :meth:`can_switch`."""
        if want_on is None or want_on == self.on or not self.can_switch():
            return self.on, False
        return want_on, True

    def output_range(self, on: bool, switched: bool) -> tuple[float, float]:
        """The (min, max) MW over the next step in the state :meth:`commitment` gives: ``(0, 0)`` off; in the step it
        starts ``[p_min, min(p_max, max(p_min, RU·dt))]``; else ``[max(p_min, p₀ − RD·dt), min(p_max, p₀ + RU·dt)]``
        around the last output ``p₀``."""
        p, dt = self.params, self.dt_h
        if not on:
            return 0.0, 0.0
        if switched:
            return p.p_min_mw, min(p.p_max_mw, max(p.p_min_mw, p.ramp_up_mw_per_h * dt))
        # max(p_min, p₀ − RD·dt), min(p_max, p₀ + RU·dt) as conditionals (same floats, faster)
        low = self.p_mw - p.ramp_down_mw_per_h * dt
        high = self.p_mw + p.ramp_up_mw_per_h * dt
        return (low if low > p.p_min_mw else p.p_min_mw), (high if high < p.p_max_mw else p.p_max_mw)

    def feasible_range(self, action: object = None) -> tuple[float, float]:
        """The (min, max) MW the unit holds over the next step under ``action`` (its on/off request honoured when it
        can switch; None: no request), the range :meth:`step` projects onto (protocols dispatch within it:
        :func:`powergrid.protocols.mw_range`)."""
        want_on = None
        if self.params.commitment and action is not None:
            want_on = self.actions.read(action)[0][self._iu] >= 0.5
        return self.output_range(*self.commitment(want_on))

    def can_switch(self) -> bool:
        p, dt = self.params, self.dt_h
        if not p.commitment:
            return False
        if self.on:
            return self.hours_in_state >= p.min_up_h - 1e-9 and self.p_mw <= max(p.p_min_mw, p.ramp_down_mw_per_h * dt) + 1e-9
        return self.hours_in_state >= p.min_down_h - 1e-9

    def step(self, action: object, ctx: StepContext) -> None:
        p, dt = self.params, self.dt_h
        values, distance = self.actions.read(action)
        want_on = values[self._iu] >= 0.5 if p.commitment else None
        on, switched = self.commitment(want_on)
        if want_on is not None and want_on != on:  # an on/off request not honoured
            distance += 1.0
        requested = values[self._ip]
        if not on:
            power = 0.0
            if want_on:  # wanted on: the power request was not honoured either
                distance += abs(requested)
        else:
            low, high = self.output_range(on, switched)
            power = low if requested < low else requested  # min(max(requested, low), high)
            power = high if power > high else power
            distance += abs(power - requested)
        q = 0.0
        if self.q_max > 0:
            limit = q_limit(power, pf_min=p.pf_min)
            x = values[self._iq]
            q = -limit if x < -limit else limit if x > limit else x
            distance += abs(q - x)
        self.hours_in_state = dt if switched else self.hours_in_state + dt
        self.on = on
        self.p_mw, self.q_mvar = power, q
        self.projection = distance
        self.cost = (self.fuel_cost_per_h(power) * dt if on else 0.0) + (p.startup_cost if switched and on else 0.0)
        self.safety = 0.0

    def best_output(self, price: float) -> tuple[float, float]:
        """``(MW, $/h)``: the output among 61 evenly spaced on ``[p_min, p_max]`` that maximises the profit
        ``price·p − fuel_cost_per_h(p)`` at ``price`` $/MWh, and that profit."""
        profit = price * self._grid - self._grid_fuel
        best = int(np.argmax(profit))
        return float(self._grid[best]), float(profit[best])

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        """:meth:`best_output` at ``ctx.price``; commit when its profit is positive."""
        mw, profit = self.best_output(ctx.price)
        values = {"p": mw}
        if self.params.commitment:
            values["u"] = 1.0 if profit > 0 else 0.0
        return self.actions.pack(**values)

    def observe_values(self) -> list[float]:
        p = self.params
        values = [self.p_mw / p.p_max_mw, float(self.on), float(self.can_switch())]
        if self.q_max > 0:
            values.append(self.q_mvar / self.q_max)
        return values

    def state_dict(self) -> dict[str, float]:
        return {"p_mw": self.p_mw, "q_mvar": self.q_mvar, "on": float(self.on), "hours_in_state": self.hours_in_state}

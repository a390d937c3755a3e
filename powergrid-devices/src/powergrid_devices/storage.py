"""Energy storage system (battery)."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from powergrid.devices import StepContext, box
from powergrid.params import quantity
from powergrid_devices.actions import BoxAction, BoxDevice, BoxKernel, price_thresholds, uniform
from powergrid_devices.inverter import q_limit, q_limit_rows


@attrs.frozen
class ESSParams:
    p_max_mw: float = quantity("MW", 0.5, gt=0, doc="charge and discharge power limit")
    capacity_mwh: float = quantity("MWh", 2.0, gt=0)
    soc_min: float = quantity("1", 0.1, ge=0, le=1)
    soc_max: float = quantity("1", 0.9, ge=0, le=1)
    soc_init: float = quantity("1", 0.5, ge=0, le=1)
    soc_init_spread: float = quantity("1", 0.0, ge=0, le=0.5, doc="±uniform spread of the initial SOC")
    eta_charge: float = quantity("1", 0.95, gt=0, le=1)
    eta_discharge: float = quantity("1", 0.95, gt=0, le=1)
    self_discharge: float = quantity("1/h", 0.0, ge=0, lt=1, doc="fraction of the stored energy lost per hour")
    degradation_cost: float = quantity("$/MWh", 0.0, ge=0, doc="cycle degradation: cost per MWh of throughput")
    s_max_mva: float = quantity("MVA", 0.0, ge=0, doc="inverter rating; > 0 adds a reactive-power action")
    arbitrage_band: float = quantity("1", 0.1, ge=0, lt=1,
                                     doc="price_arbitrage policy: charge below mean − band·abs(mean) price, discharge above "
                                         "mean + band·abs(mean)")

    def __attrs_post_init__(self) -> None:
        if not self.soc_min <= self.soc_init <= self.soc_max:
            raise ValueError(f"expected soc_min ≤ soc_init ≤ soc_max, got {self.soc_min}, {self.soc_init}, {self.soc_max}")
        if 0 < self.s_max_mva < self.p_max_mw:
            raise ValueError(f"expected s_max_mva ≥ p_max_mw (or 0), got {self.s_max_mva} < {self.p_max_mw}")


def headroom(kept: Any, p: Any, dt: Any) -> tuple[Any, Any]:
    """(max charge, max discharge) MW that keep the SOC in ``[soc_min, soc_max]`` for ``dt`` hours, before the
    ``p_max`` limit, from the SOC ``kept = soc·(1 − σ)^dt`` left after self-discharge (floats, or arrays of many
    batteries; ``p`` holds the :class:`ESSParams` fields)."""
    return (p.soc_max - kept) * p.capacity_mwh / (p.eta_charge * dt), (kept - p.soc_min) * p.capacity_mwh * p.eta_discharge / dt


def soc_after(kept: Any, charge_mw: Any, discharge_mw: Any, p: Any, dt: Any) -> Any:
    """``kept + η_c·P_c·dt/E − P_d·dt/(η_d·E)`` with ``kept = soc·(1 − σ)^dt`` (floats or arrays), before clipping
    to [0, 1]."""
    return kept + charge_mw * p.eta_charge * dt / p.capacity_mwh - discharge_mw * dt / (p.eta_discharge * p.capacity_mwh)


class ESSKernel(BoxKernel):
    """Every ESS of one action layout stepped on arrays (the physics of :class:`ESS`)."""

    params = ("p_max_mw", "capacity_mwh", "soc_min", "soc_max", "eta_charge", "eta_discharge", "self_discharge",
              "degradation_cost", "s_max_mva")
    state = {**BoxKernel.state, "soc": ("soc", np.float64)}

    def __init__(self, devices: list[Any]) -> None:
        super().__init__(devices)
        self.keep = np.array([d.keep for d in devices], np.float64)  # each ESS's own float: numpy's pow may round apart

    def step(self, actions: np.ndarray, prices: np.ndarray, ctx: StepContext) -> None:
        p, dt, zero = self.p, self.dt, self.zero
        values, distance = self.box.read(actions)
        requested = values[:, 0]
        kept = self.soc * self.keep
        max_charge, max_discharge = headroom(kept, p, dt)
        low = -np.minimum(p.p_max_mw, np.maximum(max_charge, zero))
        high = np.minimum(p.p_max_mw, np.maximum(max_discharge, zero))
        power = np.minimum(np.maximum(requested, low), high)
        distance += np.abs(power - requested)
        q = np.zeros(len(power))
        if values.shape[1] > 1:
            limit = q_limit_rows(power, p.s_max_mva)
            q = np.minimum(np.maximum(values[:, 1], -limit), limit)
            distance += np.abs(q - values[:, 1])
        soc = soc_after(kept, np.maximum(-power, zero), np.maximum(power, zero), p, dt)
        self.soc = np.minimum(np.maximum(soc, zero), 1.0)
        self.p_mw, self.q_mvar, self.projection = power, q, distance
        self.cost = p.degradation_cost * np.abs(power) * dt
        self.safety = np.maximum(p.soc_min - self.soc - 1e-12, zero) * p.capacity_mwh

    def observe_values(self) -> list[np.ndarray]:
        p = self.p
        columns = [self.soc, self.p_mw / p.p_max_mw]
        if self.obs_low.shape[1] > 2:
            columns.append(self.q_mvar / p.s_max_mva)
        return columns


class ESS(BoxDevice):
    """Battery with separate charge/discharge efficiencies, self-discharge and an optional inverter Q capability.

    Action: ``[p]`` MW (generator convention: > 0 discharges into the grid), or
    ``[p, q]`` (q in Mvar, > 0 injects) when ``s_max_mva > 0``. State of charge
    over a step of ``dt`` hours, capacity ``E`` MWh, self-discharge ``σ`` (the fraction lost per hour):

    - ``soc' = soc·(1 − σ)^dt + η_c·P_c·dt/E − P_d·dt/(η_d·E)``
      with ``P_c = max(−p, 0)``, ``P_d = max(p, 0)``.

    Projection: ``p`` to ``[−p_max, p_max]`` and to what keeps ``soc'`` in
    ``[soc_min, soc_max]``; then ``q`` to ``|q| ≤ sqrt(S² − p²)`` (active power
    first). Cost: ``degradation_cost·|p|·dt`` $ (cycle degradation: about
    replacement cost / (2 · cycle life · usable MWh)). Safety: MWh below
    ``soc_min`` when self-discharge drains an idle battery under its floor.
    Observation: ``[soc, p/p_max]`` (+ ``q/s_max``).
    """

    Params = ESSParams
    Kernel = ESSKernel

    def __init__(self, params: ESSParams, dt_h: float) -> None:
        super().__init__(params, dt_h)
        p = params
        self.soc = p.soc_init
        # the fraction of the SOC self-discharge leaves over a step, compounded: an hour loses σ at any step and no
        # step more than it holds (1 − σ·dt lost less over an hour of short steps and went negative past dt = 1/σ)
        self.keep = (1.0 - p.self_discharge) ** self.dt_h
        names, low, high = ["p"], [-p.p_max_mw], [p.p_max_mw]
        if p.s_max_mva > 0:
            names, low, high = names + ["q"], low + [-p.s_max_mva], high + [p.s_max_mva]
        self.actions = BoxAction(names, low, high, [0.0] * len(names))
        self.action_space = self.actions.space
        self.observation_space = box([0.0] + [-1.0] * len(names), [1.0] * (len(names) + 1))

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        p = self.params
        spread = uniform(rng, -p.soc_init_spread, p.soc_init_spread) if p.soc_init_spread else 0.0
        self.soc = min(max(p.soc_init + spread, p.soc_min), p.soc_max)

    def draws_at_reset(self) -> bool:
        """Only with a spread of the initial SOC (or a subclass's own ``reset``)."""
        return type(self).reset is not ESS.reset or self.params.soc_init_spread > 0

    def stored_mwh(self) -> float:
        """``soc·E·η_d``: the MWh the battery could discharge into the grid from its present charge."""
        p = self.params
        return self.soc * p.capacity_mwh * p.eta_discharge

    def feasible_range(self, action: object = None) -> tuple[float, float]:
        """The (min, max) power in MW the battery can hold for the whole next step (whatever ``action``)."""
        return self._range(self.soc * self.keep)

    def _range(self, kept: float) -> tuple[float, float]:
        """:meth:`feasible_range` from the SOC ``kept`` that self-discharge leaves over the step."""
        p_max = self.params.p_max_mw
        charge, discharge = headroom(kept, self.params, self.dt_h)
        # -min(p_max, max(charge, 0)), min(p_max, max(discharge, 0)) as conditionals (same floats, ~5x faster)
        charge = 0.0 if charge < 0.0 else charge
        discharge = 0.0 if discharge < 0.0 else discharge
        return -(charge if charge < p_max else p_max), discharge if discharge < p_max else p_max

    def step(self, action: object, ctx: StepContext) -> None:
        p, dt = self.params, self.dt_h
        values, distance = self.actions.read(action)
        soc = self.soc * self.keep  # kept over the step
        low, high = self._range(soc)
        x = values[0]
        power = low if x < low else high if x > high else x  # min(max(x, low), high): low ≤ high
        distance += abs(power - x)
        q = 0.0
        if p.s_max_mva > 0:
            limit = q_limit(power, p.s_max_mva)
            x = values[1]
            q = -limit if x < -limit else limit if x > limit else x
            distance += abs(q - x)
        # soc_after with one of its two terms zero, as a branch (a call costs ~10 % of this step)
        if power < 0:
            soc += -power * p.eta_charge * dt / p.capacity_mwh
        else:
            soc -= power * dt / (p.eta_discharge * p.capacity_mwh)
        self.soc = soc = 0.0 if soc < 0.0 else 1.0 if soc > 1.0 else soc
        self.p_mw, self.q_mvar = power, q
        self.projection = distance
        self.cost = p.degradation_cost * abs(power) * dt
        # only self-discharge can take the SOC under its floor (the projection keeps p feasible);
        # tolerance for float rounding of the projected boundary
        below = p.soc_min - soc - 1e-12
        self.safety = (0.0 if below < 0.0 else below) * p.capacity_mwh

    def arbitrage_action(self, price: float, mean_price: float) -> np.ndarray:
        """The ``price_arbitrage`` policy: full feasible charge below ``mean − band·abs(mean)``, discharge above
        ``mean + band·abs(mean)`` (:func:`~powergrid_devices.actions.price_thresholds`), else idle."""
        return self._between(price, *price_thresholds(mean_price, self.params.arbitrage_band))

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        """Trade against what the reward pays for a stored MWh at the episode's end, ``V = ctx.store_price`` $/MWh
        (the day's mean day-ahead price; 0 under ``storage_value: none``): full feasible charge while the price is
        below ``η_c·η_d·V − c``, discharge above ``V + c`` (``c`` the degradation cost), else idle. Each MWh so
        bought or sold gains against keeping the charge to the end (η_c·η_d·V − price − c, price − c − V $ per
        grid-side MWh), so where each MWh it moves is billed at ``ctx.price`` the rule never falls behind an idle
        battery (an export paid below the price, a meter or voltage limit are its parent's to weigh). Under a parent's
        price signal ``ctx.price`` is that signal."""
        p = self.params
        value, wear = ctx.store_price, p.degradation_cost
        return self._between(ctx.price, p.eta_charge * p.eta_discharge * value - wear, value + wear)

    def _between(self, price: float, cheap: float, dear: float) -> np.ndarray:
        """Full feasible charge below ``cheap``, discharge above ``dear`` ($/MWh), else idle."""
        low, high = self.feasible_range()
        power = low if price < cheap else high if price > dear else 0.0
        return self.actions.pack(p=power)

    def observe_values(self) -> list[float]:
        p = self.params
        values = [self.soc, self.p_mw / p.p_max_mw]
        if p.s_max_mva > 0:
            values.append(self.q_mvar / p.s_max_mva)
        return values

    def state_dict(self) -> dict[str, float]:
        return {"soc": self.soc, "p_mw": self.p_mw, "q_mvar": self.q_mvar}

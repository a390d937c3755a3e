"""Hydrogen storage and part-load efficiency curves, shared by Electrolyzer and FuelCell.

Energy content: lower heating value ``LHV = 33.33 kWh/kg``. With an
efficiency ``η`` (LHV basis) at load fraction ``u = P/P_max``:

- electrolyzer production: ``ṁ = 1000·P·η(u)/LHV`` kg/h (P in MW);
- fuel-cell consumption:   ``ṁ = 1000·P/(η(u)·LHV)`` kg/h.

``η(u)`` interpolates linearly between the breakpoints ``(eff_load, eff)``
(constant beyond the ends).

A tank holds ``level`` kg in ``[min_kg, capacity_kg]``. A non-empty ``tank``
name shares one tank among every device of the scenario that names it (an
electrolyzer filling what a fuel cell burns); the first device attached owns
it and draws its initial level at reset. Devices sharing a tank must agree on
its capacity, minimum and ``h2_price`` (a kg valued once).

Value of hydrogen: at ``h2_price > 0`` every kg is priced when made (credited to the electrolyzer) and when burnt
(charged to the fuel cell), so a tank's change over an episode is settled at ``h2_price`` and no device reports it as
a store. At 0, hydrogen's only value is the electricity a fuel cell makes of it: the first fuel cell on a tank reports
the tank as its store (:meth:`~powergrid_devices.fuel_cell.FuelCell.stored_mwh`; the others have none), which the
reward values at the episode's end like a battery's charge; so the tank's initial hydrogen is not burnt for free. The
rules value a kg as that store does (:meth:`HydrogenDevice.kg_value`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np

from powergrid.devices import StepContext, box
from powergrid.params import quantity, text
from powergrid_devices.actions import BoxAction, BoxDevice, largest_feasible, observation, uniform

LHV_KWH_PER_KG = 33.33

#: Key of the pandapower net under which shared tanks live (they travel with the net when pickled).
_NET_KEY = "powergrid_hydrogen_tanks"


@attrs.frozen
class HydrogenParams:
    """Fields common to hydrogen devices (a subclass sets the power and curve defaults)."""

    tank: str = text("", doc="name of a tank shared with other hydrogen devices; empty: an own tank")
    tank_capacity_kg: float = quantity("kg", 100.0, gt=0)
    tank_min_kg: float = quantity("kg", 0.0, ge=0)
    tank_init: float = quantity("1", 0.5, ge=0, le=1, doc="initial level, fraction of capacity")
    tank_init_spread: float = quantity("1", 0.0, ge=0, le=0.5, doc="±uniform spread of the initial level")
    h2_price: float = quantity("$/kg", 0.0, ge=0, doc="value of hydrogen")

    def check_hydrogen(self, loads: tuple[float, ...], effs: tuple[float, ...], min_load: float,
                       produces: bool) -> None:
        """Cross-field checks (call from ``__attrs_post_init__``); hydrogen flow must grow with load."""
        if self.tank_min_kg >= self.tank_capacity_kg:
            raise ValueError(f"expected tank_min_kg < tank_capacity_kg, got {self.tank_min_kg} ≥ {self.tank_capacity_kg}")
        if len(loads) != len(effs):
            raise ValueError(f"expected eff_load and eff of the same length, got {len(loads)} and {len(effs)}")
        if any(b <= a for a, b in zip(loads, loads[1:])):
            raise ValueError(f"expected eff_load strictly increasing, got {list(loads)}")
        if min_load > loads[-1]:
            raise ValueError(f"expected min_load ≤ the last eff_load breakpoint, got {min_load} > {loads[-1]}")
        grid = np.linspace(max(min_load, 1e-3), 1.0, 50)
        eta = np.interp(grid, loads, effs)
        flow = grid * eta if produces else grid / eta
        if np.any(np.diff(flow) < -1e-12):
            raise ValueError(f"expected the hydrogen flow (load{'·' if produces else '/'}eff) to increase with load; check eff")


class EfficiencyCurve:
    """Part-load efficiency ``η(u)`` by linear interpolation of breakpoints."""

    def __init__(self, loads: tuple[float, ...], effs: tuple[float, ...]) -> None:
        self.loads = np.asarray(loads, np.float64)
        self.effs = np.asarray(effs, np.float64)

    def __call__(self, load: float) -> float:
        return float(np.interp(load, self.loads, self.effs))


@attrs.define
class HydrogenTank:
    """A hydrogen store (kg) in ``[min_kg, capacity_kg]``."""

    capacity_kg: float
    min_kg: float
    level_kg: float
    owner: Any = None
    #: the fuel cell that reports the tank's hydrogen as its store (the first attached burning from it; None: none)
    valuer: Any = None

    @property
    def room_kg(self) -> float:
        return max(self.capacity_kg - self.level_kg, 0.0)

    @property
    def available_kg(self) -> float:
        return max(self.level_kg - self.min_kg, 0.0)

    @property
    def fraction(self) -> float:
        return self.level_kg / self.capacity_kg


def new_tank(owner: Any, p: HydrogenParams) -> HydrogenTank:
    return HydrogenTank(p.tank_capacity_kg, p.tank_min_kg, p.tank_init * p.tank_capacity_kg, owner)


def shared_tank(owner: Any, p: HydrogenParams, net: Any) -> HydrogenTank:
    """The tank named ``p.tank`` in ``net`` (created by the first device naming it)."""
    tanks = net[_NET_KEY] if _NET_KEY in net else None
    if tanks is None:
        tanks = {}
        net[_NET_KEY] = tanks
    tank = tanks.get(p.tank)
    if tank is None:
        tank = tanks[p.tank] = new_tank(owner, p)
        return tank
    if (tank.capacity_kg, tank.min_kg) != (p.tank_capacity_kg, p.tank_min_kg):
        raise ValueError(f"tank {p.tank!r} is already defined with tank_capacity_kg={tank.capacity_kg}, "
                         f"tank_min_kg={tank.min_kg}; use the same values on every device sharing it")
    price = tank.owner.params.h2_price
    if price != p.h2_price:  # else a kg is credited at one price when made and burnt at another: cycling pays
        raise ValueError(f"tank {p.tank!r} is shared with a device valuing hydrogen at h2_price={price}; "
                         f"use the same h2_price on every device sharing it (got {p.h2_price})")
    return tank


def reset_tank(tank: HydrogenTank, owner: Any, p: HydrogenParams, rng: np.random.Generator) -> None:
    """Draw the initial level (only the owner of a shared tank does)."""
    if tank.owner is not owner:
        return
    spread = uniform(rng, -p.tank_init_spread, p.tank_init_spread) if p.tank_init_spread else 0.0
    tank.level_kg = min(max((p.tank_init + spread) * p.tank_capacity_kg, p.tank_min_kg), p.tank_capacity_kg)


class HydrogenDevice(BoxDevice):
    """Shared physics of electrolyzer and fuel cell: load ``u = P/P_max`` against a tank.

    Action ``[u] ∈ [0, 1]``. Projection: ``0 < u < u_min`` goes to the nearer of
    0 and ``u_min``; then ``u`` is lowered so the step's hydrogen flow fits the
    tank (room when producing, ``level − min`` when consuming), or 0 when not
    even ``u_min`` fits. Observation: ``[u, level/capacity]``.
    Subclasses define :meth:`hydrogen_kg` and :meth:`electrical`.

    Rule (:meth:`rule_action`): the device runs only at a gain, valuing hydrogen at ``w`` $/kg (:meth:`kg_value`:
    ``h2_price``, or at ``h2_price`` 0 what the reward credits a kg left in the tank). One MWh of electricity at
    efficiency ``η`` makes ``1000·η/LHV`` kg (electrolyzer) or takes ``1000/(η·LHV)`` kg (fuel cell), so the
    break-even electricity price ($/MWh) at a load ``u`` is ``w·1000·η(u)/LHV − om_cost`` for an electrolyzer (it
    gains below it) and ``w·1000/(η(u)·LHV) + om_cost`` for a fuel cell (it gains above it). ``rule_loads``
    (``u_min``, the efficiency breakpoints above it, and 1) are set when the device is built, their ``break_even``
    prices then at ``h2_price`` and again when the episode's ``ctx.store_price`` changes (once per episode); at a
    price the rule takes the load of the largest gain ``u·|price − break_even|`` on the gaining side, or 0 when none
    gains.
    """

    #: True when the device fills the tank (electrolyzer), False when it empties it (fuel cell).
    produces: ClassVar[bool] = True

    def __init__(self, params: Any, dt_h: float) -> None:
        super().__init__(params, dt_h)
        self.curve = EfficiencyCurve(params.eff_load, params.eff)
        self.tank: HydrogenTank = new_tank(self, params)
        self.actions = BoxAction(["u"], [0.0], [1.0], [0.0])
        self.action_space = self.actions.space
        self.observation_space = box([0.0, 0.0], [1.0, 1.0])
        self.u = 0.0
        self.h2_kg = 0.0
        self.rule_loads, self.break_even = self.break_even_prices(params.h2_price)
        self._valued_at = 0.0  # the ctx.store_price break_even was last computed for (none yet: h2_price's)

    def attach(self, net: Any, bus: int) -> None:
        if self.params.tank:
            self.tank = shared_tank(self, self.params, net)

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        reset_tank(self.tank, self, self.params, rng)
        self.u = self.h2_kg = 0.0

    def hydrogen_kg(self, u: float) -> float:
        """Hydrogen produced or burnt over one step at load ``u`` (kg, ≥ 0, increasing in ``u``)."""
        raise NotImplementedError

    def electrical(self, u: float) -> None:
        """Set ``p_mw``, ``q_mvar`` and ``cost`` for load ``u`` (``h2_kg`` is set)."""
        raise NotImplementedError

    def power_mw(self, u: float) -> float:
        """``p`` (MW, generator convention) at load ``u``."""
        raise NotImplementedError

    def load(self, action: object) -> tuple[float, float]:
        """``(u, projection distance)``: the load :meth:`step` runs under ``action`` (physical) from the tank now."""
        p = self.params
        (requested,), distance = self.actions.read(action)
        u = requested
        if 0 < u < p.min_load:
            u = 0.0 if u < p.min_load / 2 else p.min_load
        limit = self.tank.room_kg if self.produces else self.tank.available_kg
        if u > 0 and self.hydrogen_kg(u) > limit:
            u = largest_feasible(self.hydrogen_kg, p.min_load, u, limit)
            if self.hydrogen_kg(u) > limit:
                u = 0.0
        return u, distance + abs(u - requested)

    def injection_mw(self, action: object, ctx: StepContext) -> float:
        """The ``p_mw`` (MW, generator convention) :meth:`step` would set under ``action`` now; changes nothing."""
        return self.power_mw(self.load(action)[0])

    def step(self, action: object, ctx: StepContext) -> None:
        u, self.projection = self.load(action)
        self.h2_kg = self.hydrogen_kg(u)
        level = self.tank.level_kg + (self.h2_kg if self.produces else -self.h2_kg)
        self.tank.level_kg = min(max(level, 0.0), self.tank.capacity_kg)
        self.u = float(u)
        self.electrical(u)
        self.safety = 0.0

    def kg_value(self, store_price: float) -> float:
        """What a kg of hydrogen is worth to the reward ($/kg): ``h2_price`` when positive (each kg is priced when
        made and burnt); at 0, what the episode's end credits a kg above the minimum of a tank a fuel cell values,
        ``store_price·η_max·LHV/1000`` (``store_price`` $/MWh, ``ctx.store_price``; the tank's value per kg of
        :meth:`~powergrid_devices.fuel_cell.FuelCell.stored_mwh`), or 0 when no fuel cell values the tank."""
        if self.params.h2_price > 0:
            return self.params.h2_price
        valuer = self.tank.valuer
        return 0.0 if valuer is None else store_price * valuer.mwh_per_kg

    def break_even_prices(self, kg_value: float) -> tuple[np.ndarray, np.ndarray]:
        """The loads the rule chooses from (fractions of ``p_max``) and their break-even prices ($/MWh) with hydrogen
        worth ``kg_value`` $/kg."""
        p = self.params
        loads = np.unique(np.clip([p.min_load, *p.eff_load, 1.0], p.min_load, 1.0))
        loads = loads[loads > 0]
        eta = np.interp(loads, self.curve.loads, self.curve.effs)
        if self.produces:
            return loads, kg_value * 1000.0 * eta / LHV_KWH_PER_KG - p.om_cost
        return loads, kg_value * 1000.0 / (eta * LHV_KWH_PER_KG) + p.om_cost

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        """The load of the largest gain at ``ctx.price`` (see the class docstring): below the break-even prices when
        the device makes hydrogen, above them when it burns it; 0 when no load gains."""
        if ctx.store_price != self._valued_at:  # a new episode's store price: hydrogen's value at h2_price 0 follows
            self._valued_at = ctx.store_price
            self.break_even = self.break_even_prices(self.kg_value(ctx.store_price))[1]
        margin = self.break_even - ctx.price if self.produces else ctx.price - self.break_even
        gain = self.rule_loads * margin
        best = int(np.argmax(gain))
        return self.actions.pack(u=float(self.rule_loads[best]) if gain[best] > 0.0 else 0.0)

    def observe(self) -> np.ndarray:
        return observation(self.observation_space, [self.u, self.tank.fraction])

    def state_dict(self) -> dict[str, float]:
        return {"p_mw": self.p_mw, "h2_kg": self.h2_kg, "tank_kg": self.tank.level_kg}

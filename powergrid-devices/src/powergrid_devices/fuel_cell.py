"""PEM fuel cell generating power from a hydrogen tank."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from powergrid.params import numbers, quantity
from powergrid_devices.hydrogen import LHV_KWH_PER_KG, HydrogenDevice, HydrogenParams


@attrs.frozen
class FuelCellParams(HydrogenParams):
    p_max_mw: float = quantity("MW", 0.5, gt=0)
    min_load: float = quantity("1", 0.05, ge=0, lt=1, doc="minimum stable load, fraction of p_max")
    eff_load: tuple = numbers("1", (0.05, 0.25, 0.5, 0.75, 1.0), ge=0, le=1, doc="load breakpoints of the efficiency curve")
    eff: tuple = numbers("1", (0.42, 0.55, 0.52, 0.49, 0.45), ge=0.01, le=1, doc="LHV efficiency at each breakpoint")
    om_cost: float = quantity("$/MWh", 0.0, ge=0, doc="operation and stack wear per MWh generated")

    def __attrs_post_init__(self) -> None:
        self.check_hydrogen(self.eff_load, self.eff, self.min_load, produces=False)


class FuelCell(HydrogenDevice):
    """Fuel cell: ``P = u·P_max`` MW burns ``ṁ = 1000·P/(η(u)·LHV)`` kg/h from the tank.

    Load, projection and observation: :class:`~powergrid_devices.hydrogen.HydrogenDevice`
    (the use must fit the hydrogen above the tank minimum). ``p = P``, ``q = 0``.
    Cost: ``h2_price·ṁ·dt + om_cost·P·dt`` $. Safety: 0.
    Rule: runs only at a gain at its break-even prices (:class:`~powergrid_devices.hydrogen.HydrogenDevice`).
    Store (:meth:`stored_mwh`): at ``h2_price`` 0, the tank's hydrogen as the electricity it makes (the first fuel
    cell on a tank; the others, and every one at ``h2_price > 0``, have none).
    """

    Params = FuelCellParams
    produces = False

    def __init__(self, params: FuelCellParams, dt_h: float) -> None:
        super().__init__(params, dt_h)
        self.tank.valuer = self
        #: MWh of electricity per kg at the best efficiency of the curve over ``[min_load, 1]`` (the tank's value per kg)
        self.mwh_per_kg = LHV_KWH_PER_KG * float(np.interp(self.rule_loads, self.curve.loads, self.curve.effs).max()) / 1000.0

    def attach(self, net: Any, bus: int) -> None:
        super().attach(net, bus)
        if self.tank.valuer is None:  # a shared tank: the first fuel cell on it values it
            self.tank.valuer = self

    def stored_mwh(self) -> float | None:
        """The electricity (MWh) the tank's hydrogen above its minimum makes at the curve's best efficiency,
        ``(level − min)·LHV·η_max/1000``, when hydrogen is valued at ``h2_price`` 0 and this fuel cell values the tank
        (the first on it: a shared tank counts once); else None, no store: at ``h2_price > 0`` each kg is already
        priced when made and burnt, so valuing the tank too would count it twice. The reward values its change over an
        episode at the episode's mean price, so the tank's initial hydrogen burnt by the end is paid for as a drained
        battery's charge is; the rules value a kg alike (:meth:`~powergrid_devices.hydrogen.HydrogenDevice.kg_value`)."""
        if self.params.h2_price > 0 or self.tank.valuer is not self:
            return None
        return self.tank.available_kg * self.mwh_per_kg

    def hydrogen_kg(self, u: float) -> float:
        return 1000.0 * u * self.params.p_max_mw / (self.curve(u) * LHV_KWH_PER_KG) * self.dt_h if u > 0 else 0.0

    def power_mw(self, u: float) -> float:
        return u * self.params.p_max_mw

    def electrical(self, u: float) -> None:
        p = self.params
        self.p_mw, self.q_mvar = self.power_mw(u), 0.0
        self.cost = p.h2_price * self.h2_kg + p.om_cost * self.p_mw * self.dt_h

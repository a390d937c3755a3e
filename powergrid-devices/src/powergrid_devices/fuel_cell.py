"""PEM fuel cell generating power from a hydrogen tank."""

from __future__ import annotations

import attrs

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
    """

    Params = FuelCellParams
    produces = False

    def hydrogen_kg(self, u: float) -> float:
        return 1000.0 * u * self.params.p_max_mw / (self.curve(u) * LHV_KWH_PER_KG) * self.dt_h if u > 0 else 0.0

    def power_mw(self, u: float) -> float:
        return u * self.params.p_max_mw

    def electrical(self, u: float) -> None:
        p = self.params
        self.p_mw, self.q_mvar = self.power_mw(u), 0.0
        self.cost = p.h2_price * self.h2_kg + p.om_cost * self.p_mw * self.dt_h

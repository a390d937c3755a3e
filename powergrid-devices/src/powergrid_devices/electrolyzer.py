"""PEM electrolyzer producing hydrogen into a tank."""

from __future__ import annotations

import attrs

from powergrid.params import numbers, quantity
from powergrid_devices.hydrogen import LHV_KWH_PER_KG, HydrogenDevice, HydrogenParams
from powergrid_devices.inverter import load_q


@attrs.frozen
class ElectrolyzerParams(HydrogenParams):
    p_max_mw: float = quantity("MW", 1.0, gt=0)
    min_load: float = quantity("1", 0.1, ge=0, lt=1, doc="minimum stable load, fraction of p_max")
    eff_load: tuple = numbers("1", (0.1, 0.25, 0.5, 0.75, 1.0), ge=0, le=1, doc="load breakpoints of the efficiency curve")
    eff: tuple = numbers("1", (0.55, 0.64, 0.65, 0.63, 0.60), ge=0.01, le=0.85,
                         doc="LHV efficiency at each breakpoint (a stack above the 1.48 V thermoneutral: ≤ 0.85; systems ~0.75)")
    om_cost: float = quantity("$/MWh", 0.0, ge=0, doc="operation and stack wear per MWh consumed")
    pf: float = quantity("1", 1.0, gt=0, le=1)

    def __attrs_post_init__(self) -> None:
        self.check_hydrogen(self.eff_load, self.eff, self.min_load, produces=True)


class Electrolyzer(HydrogenDevice):
    """Electrolyzer: ``ṁ = 1000·P·η(u)/LHV`` kg/h at ``P = u·P_max`` MW, into the tank.

    Load, projection and observation: :class:`~powergrid_devices.hydrogen.HydrogenDevice`
    (the production must fit the tank room). ``p = −P``, ``q = p·tan φ``.
    Cost: ``om_cost·P·dt − h2_price·ṁ·dt`` $ (the hydrogen is sold or valued).
    Safety: 0. Rule: runs only at a gain at its break-even prices (:class:`~powergrid_devices.hydrogen.HydrogenDevice`).
    """

    Params = ElectrolyzerParams
    produces = True

    def hydrogen_kg(self, u: float) -> float:
        return 1000.0 * u * self.params.p_max_mw * self.curve(u) / LHV_KWH_PER_KG * self.dt_h if u > 0 else 0.0

    def power_mw(self, u: float) -> float:
        return -u * self.params.p_max_mw

    def electrical(self, u: float) -> None:
        p = self.params
        self.p_mw = self.power_mw(u)
        self.q_mvar = load_q(self.p_mw, p.pf)
        self.cost = p.om_cost * u * p.p_max_mw * self.dt_h - p.h2_price * self.h2_kg

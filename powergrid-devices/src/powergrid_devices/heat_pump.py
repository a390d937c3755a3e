"""Air-source heat pump charging a buffer store that serves a space-heating demand."""

from __future__ import annotations

import attrs

from powergrid.devices import StepContext
from powergrid.params import choice, quantity
from powergrid_devices.heated_store import HeatedStore, HeatedStoreParams
from powergrid_devices.thermal import carnot_cop, heat_demand_kw


@attrs.frozen
class HeatPumpParams(HeatedStoreParams):
    cop_model: str = choice(("carnot", "linear"), "carnot")
    carnot_fraction: float = quantity("1", 0.45, gt=0, le=1, doc="COP as a fraction of the Carnot COP")
    cop_a: float = quantity("1", 3.0, gt=0, doc="linear COP fit: value at 0 °C outdoor")
    cop_b: float = quantity("1/°C", 0.08, doc="linear COP fit: change per °C outdoor")
    cop_max: float = quantity("1", 6.0, ge=1, le=20)
    c_kwh_per_c: float = quantity("kWh/°C", 5.0, gt=0, doc="buffer capacitance (water: 1.163 kWh/°C per m³)")
    r_c_per_kw: float = quantity("°C/kW", 20.0, gt=0, doc="buffer loss resistance to the room")
    t_room_c: float = quantity("°C", 20.0)
    ua_kw_per_c: float = quantity("kW/°C", 3.0, ge=0, doc="building heat-loss coefficient (demand)")
    t_base_c: float = quantity("°C", 18.0, doc="heating base temperature (demand)")


class HeatPump(HeatedStore):
    """Heat pump with a temperature-dependent COP and a buffer store (see :mod:`~powergrid_devices.heated_store`).

    ``k = COP``: Carnot fraction ``η·(T + 273.15)/(T − T_out)`` with the store
    temperature ``T`` as the sink, or the linear fit ``a + b·T_out``, both in
    ``[1, COP_max]``; ``T_out = temperature[t]``. Heat draw: the building's
    space-heating demand ``Q_d = UA·max(T_base − T_out, 0)`` kW. Losses: ``R``
    to the room at ``T_room``.
    """

    Params = HeatPumpParams
    profiles_used = ("temperature",)

    def __init__(self, params: HeatPumpParams, dt_h: float) -> None:
        self.c_kwh_per_c = params.c_kwh_per_c
        super().__init__(params, dt_h)

    def cop(self, t_out_c: float) -> float:
        p = self.params
        if p.cop_model == "carnot":
            return carnot_cop(self.t_c, t_out_c, p.carnot_fraction, p.cop_max)
        return min(max(p.cop_a + p.cop_b * t_out_c, 1.0), p.cop_max)

    def heat_per_kw(self, ctx: StepContext) -> float:
        return self.cop(ctx.profile("temperature"))

    def coupling(self, ctx: StepContext) -> tuple[float, float, float]:
        p = self.params
        return p.r_c_per_kw, p.t_room_c, heat_demand_kw(p.ua_kw_per_c, p.t_base_c, ctx.profile("temperature"))

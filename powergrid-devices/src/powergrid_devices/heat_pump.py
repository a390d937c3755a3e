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

    Buffer at ``T`` °C, capacitance ``C`` kWh/°C, losses through ``R`` °C/kW to the room at ``T_room`` °C, electric
    input ``P = u·P_max`` kW, heat served to the building ``Q_s`` kW; stepped exactly over ``dt`` h::

        C·dT/dt = (T_room − T)/R + COP·P − Q_s

    ``COP``: the Carnot fraction ``η·(T + 273.15)/max(T − T_out, 5)`` with the
    store temperature ``T`` as the sink and a lift of at least 5 °C, or the linear fit ``a + b·T_out``, both in
    ``[1, COP_max]``; ``T_out = temperature[t]`` °C. Demand: the building's
    space heating ``Q_d = UA·max(T_base − T_out, 0)`` kW (``UA`` kW/°C). A buffer at or below the room cannot heat it
    (:meth:`floor_c`: ``T_room``): the store serves ``Q_s = Q_d`` while that leaves ``T' ≥ T_room``, else the ``Q_s``
    that brings it to ``T_room`` (at ``T_room``: ``min(Q_d, COP·P)``, the pump's heat passes straight through); the rest,
    ``Q_u = Q_d − Q_s`` kW, is unmet (``unmet_kwh = Q_u·dt`` in :meth:`state_dict`). Safety (°C): the store's
    ``max(T_min − T', 0) + max(T' − T_max, 0)`` plus the degrees the building's heating falls short, ``Q_u/UA``
    (:meth:`unmet_c`; all of the demand unmet: ``T_base − T_out``, the building unheated).

    The defaults (20 kW electric, UA 3 kW/°C, a 5 kWh/°C buffer ≈ 4.3 m³ of water) are a small commercial unit
    sized for ``T_out ≥ ~0 °C``: with the store at 45 °C the full-power heat ``20·COP`` meets the demand down to
    about −2 °C (at −10 °C: 52 kW against 84 kW).
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

    def floor_c(self) -> float:
        """The room (``T_room`` °C): a buffer at or below it has no heat to give the building."""
        return self.params.t_room_c

    def unmet_c(self, unmet_kw: float) -> float:
        """The degrees (°C) the building's heating falls short, ``Q_u/UA``: the delivered heat holds the building
        that far below the base temperature the demand is counted from."""
        return unmet_kw / self.params.ua_kw_per_c

    def heat_per_kw(self, ctx: StepContext) -> float:
        return self.cop(ctx.profile("temperature"))

    def coupling(self, ctx: StepContext) -> tuple[float, float, float]:
        p = self.params
        return p.r_c_per_kw, p.t_room_c, heat_demand_kw(p.ua_kw_per_c, p.t_base_c, ctx.profile("temperature"))

    def state_dict(self) -> dict[str, float]:
        return {**super().state_dict(), "unmet_kwh": self.unmet_kwh}

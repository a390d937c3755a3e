"""Electric storage water heater: a fully mixed tank with a hot-water draw profile."""

from __future__ import annotations

import attrs
import numpy as np

from powergrid.devices import StepContext
from powergrid.params import numbers, quantity
from powergrid_devices.actions import uniform
from powergrid_devices.heated_store import HeatedStore, HeatedStoreParams
from powergrid_devices.thermal import CP_WATER_KWH, parallel

#: Typical residential hot-water use by hour of day (relative weights; morning and evening peaks).
DEFAULT_DRAW_SHAPE = (0.3, 0.2, 0.2, 0.2, 0.3, 1.0, 3.0, 4.0, 3.0, 2.0, 1.5, 1.5,
                      1.5, 1.2, 1.0, 1.0, 1.2, 2.0, 3.0, 3.5, 3.0, 2.0, 1.2, 0.6)


@attrs.frozen
class WaterHeaterParams(HeatedStoreParams):
    p_max_mw: float = quantity("MW", 0.0045, gt=0, doc="heating element rating")
    efficiency: float = quantity("1", 0.98, gt=0, le=1, doc="element efficiency")
    volume_l: float = quantity("L", 200.0, gt=0)
    ua_w_per_c: float = quantity("W/°C", 2.0, gt=0, doc="tank standby loss coefficient")
    t_ambient_c: float = quantity("°C", 20.0, doc="air around the tank")
    t_inlet_c: float = quantity("°C", 10.0, doc="cold mains water")
    daily_draw_l: float = quantity("L/day", 200.0, ge=0)
    draw_shape: tuple = numbers("1", DEFAULT_DRAW_SHAPE, ge=0, doc="24 hourly weights of the daily draw")
    draw_spread: float = quantity("1", 0.2, ge=0, lt=1, doc="the episode's daily volume is ±U(spread) of daily_draw_l")
    t_min_c: float = quantity("°C", 45.0, doc="lowest acceptable hot-water temperature")
    t_max_c: float = quantity("°C", 75.0, doc="high-limit cutout")
    t_set_c: float = quantity("°C", 60.0)
    deadband_c: float = quantity("°C", 8.0, gt=0)
    t_init_c: float = quantity("°C", 60.0)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if len(self.draw_shape) != 24 or sum(self.draw_shape) <= 0:
            raise ValueError(f"expected draw_shape of 24 weights with a positive sum, got {len(self.draw_shape)} values")


class WaterHeater(HeatedStore):
    """Fully mixed tank (see :mod:`~powergrid_devices.heated_store`) with ``k = η`` (resistive element).

    ``C = V·c_p`` (4.186 kJ/(kg·°C), 1 kg/L). Hot-water draw ``ṁ(h) = V_day·w[h]/Σw``
    L/h at clock hour ``h``, with the episode's daily volume ``V_day`` drawn at
    reset within ±``draw_spread``. The draw replaces hot water with mains water,
    a conductance ``ṁ·c_p`` to ``T_inlet`` in parallel with the standby loss
    ``UA`` to ``T_ambient``.
    """

    Params = WaterHeaterParams

    def __init__(self, params: WaterHeaterParams, dt_h: float) -> None:
        self.c_kwh_per_c = params.volume_l * CP_WATER_KWH
        super().__init__(params, dt_h)
        shape = np.asarray(params.draw_shape, np.float64)
        self.hourly = shape / shape.sum()
        self.set_daily(params.daily_draw_l)
        self.draw_l_per_h = 0.0

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        p = self.params
        self.set_daily(p.daily_draw_l * (1.0 + (uniform(rng, -p.draw_spread, p.draw_spread) if p.draw_spread else 0.0)))
        self.draw_l_per_h = 0.0

    def set_daily(self, daily_l: float) -> None:
        """Set the daily volume ``daily_l`` (L) and, per clock hour, the draw (L/h) and the coupling ``(R, T_a, 0)``."""
        p = self.params
        self.daily_l = daily_l
        self.draws = [daily_l * w for w in self.hourly]
        self.couplings = [(*parallel(1000.0 / p.ua_w_per_c, p.t_ambient_c, d * CP_WATER_KWH, p.t_inlet_c), 0.0)
                          for d in self.draws]

    def heat_per_kw(self, ctx: StepContext) -> float:
        return self.params.efficiency

    def coupling(self, ctx: StepContext) -> tuple[float, float, float]:
        return self.couplings[int(ctx.hour) % 24]

    def state_dict(self) -> dict[str, float]:
        return {**super().state_dict(), "draw_l_per_h": self.draw_l_per_h}

    def step(self, action: object, ctx: StepContext) -> None:
        super().step(action, ctx)
        self.draw_l_per_h = self.draws[int(ctx.hour) % 24]
        # heat leaving with the draw (informational: it is inside the coupling of the RC step)
        self.draw_kw = self.draw_l_per_h * CP_WATER_KWH * max(self.t_c - self.params.t_inlet_c, 0.0)

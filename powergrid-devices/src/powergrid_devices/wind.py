"""Wind turbine: power curve from wind speed, or a power profile."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from powergrid.devices import StepContext
from powergrid.params import quantity, text
from powergrid_devices.renewable import CurtailableKernel, CurtailableSource, check_rating


@attrs.frozen
class WindParams:
    p_rated_mw: float = quantity("MW", 1.0, gt=0)
    v_cut_in: float = quantity("m/s", 3.0, ge=0)
    v_rated: float = quantity("m/s", 12.0, gt=0)
    v_cut_out: float = quantity("m/s", 25.0, gt=0)
    speed_profile: str = text("", doc="profile of hub-height wind speed (m/s); empty: read 'wind' as pu of rated")
    s_max_mva: float = quantity("MVA", 0.0, ge=0, doc="converter rating; > 0 adds a reactive-power action")

    def __attrs_post_init__(self) -> None:
        if not self.v_cut_in < self.v_rated < self.v_cut_out:
            raise ValueError(f"expected v_cut_in < v_rated < v_cut_out, got {self.v_cut_in}, {self.v_rated}, {self.v_cut_out}")
        check_rating(self.s_max_mva, self.p_rated_mw)


def power_curve(v: float, p_rated: float, v_in: float, v_rated: float, v_out: float) -> float:
    """Turbine output (MW) at wind speed ``v`` m/s: 0 below cut-in and from cut-out,
    ``P_r·(v³ − v_in³)/(v_r³ − v_in³)`` between cut-in and rated, ``P_r`` from rated to cut-out."""
    if v < v_in or v >= v_out:
        return 0.0
    if v >= v_rated:
        return p_rated
    return p_rated * (v**3 - v_in**3) / (v_rated**3 - v_in**3)


class WindKernel(CurtailableKernel):
    """Every wind turbine of one action layout on arrays: ``P_rated·wind[t]`` vectorised, the power curves of
    turbines with a ``speed_profile`` device by device."""

    params = ("s_max_mva", "p_rated_mw")

    def __init__(self, devices: list[Any]) -> None:
        super().__init__(devices)
        self.curves = [i for i, d in enumerate(devices) if d.params.speed_profile]

    def available(self, ctx: StepContext) -> np.ndarray:
        out = self.p.p_rated_mw * ctx.profile("wind")
        for i in self.curves:
            out[i] = self.devices[i].available_mw(ctx)
        return out


class Wind(CurtailableSource):
    """Wind turbine with curtailment and converter Q capability.

    Available power: :func:`power_curve` of the wind speed in profile
    ``speed_profile`` (m/s; give it a provider under ``datasets:``), or, when
    ``speed_profile`` is empty, ``P_rated·wind[t]`` (``wind`` in pu of rated).
    Action, projection, observation: see :class:`~powergrid_devices.renewable.CurtailableSource`.
    """

    Params = WindParams
    Kernel = WindKernel
    profiles_used = ("wind",)

    def __init__(self, params: WindParams, dt_h: float) -> None:
        self.rated_mw = params.p_rated_mw
        super().__init__(params, dt_h)
        if params.speed_profile:  # instance-level: read by the builder once core honours it
            self.profiles_used = ("wind", params.speed_profile)

    def available_mw(self, ctx: StepContext) -> float:
        p = self.params
        if not p.speed_profile:
            return p.p_rated_mw * ctx.profile("wind")
        if p.speed_profile not in ctx.profiles:
            raise KeyError(f"Wind reads wind speed from profile {p.speed_profile!r}; configure it under 'datasets:'")
        return power_curve(ctx.profile(p.speed_profile), p.p_rated_mw, p.v_cut_in, p.v_rated, p.v_cut_out)

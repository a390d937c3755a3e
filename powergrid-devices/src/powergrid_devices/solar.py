"""Photovoltaic unit driven by a solar profile or by irradiance with cell-temperature derating."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from powergrid.devices import StepContext
from powergrid.params import choice, quantity
from powergrid_devices.renewable import CurtailableKernel, CurtailableSource, check_rating


@attrs.frozen
class PVParams:
    p_max_mw: float = quantity("MW", 0.1, gt=0, doc="rated (peak, STC) power")
    model: str = choice(("profile", "irradiance"), "profile",
                        doc="profile: solar is pu of rated output; irradiance: solar is G/1000 W/m²")
    gamma_per_c: float = quantity("1/°C", -0.004, le=0, ge=-0.02, doc="power temperature coefficient")
    noct_c: float = quantity("°C", 45.0, gt=20, le=80, doc="nominal operating cell temperature")
    s_max_mva: float = quantity("MVA", 0.0, ge=0, doc="inverter rating; > 0 adds a reactive-power action")

    def __attrs_post_init__(self) -> None:
        check_rating(self.s_max_mva, self.p_max_mw)


def irradiance_power(p_max_mw: Any, solar: Any, t_ambient: Any, gamma_per_c: Any, noct_c: Any) -> Any:
    """PVWatts-style output (MW) at ``G = 1000·solar`` W/m² and ambient ``t_ambient`` °C (floats or arrays)."""
    g = 1000.0 * solar
    t_cell = t_ambient + (noct_c - 20.0) * g / 800.0
    return p_max_mw * (g / 1000.0) * (1.0 + gamma_per_c * (t_cell - 25.0))


class PVKernel(CurtailableKernel):
    """Every PV unit of one action layout on arrays: :meth:`PV.available_mw` vectorised."""

    params = ("s_max_mva", "p_max_mw", "gamma_per_c", "noct_c")

    def __init__(self, devices: list[Any]) -> None:
        super().__init__(devices)
        self.irradiance = np.array([d.params.model == "irradiance" for d in devices])
        self.any_irradiance = bool(self.irradiance.any())

    def available(self, ctx: StepContext) -> np.ndarray:
        p = self.p
        solar = max(ctx.profile("solar"), 0.0)
        out = p.p_max_mw * solar
        if self.any_irradiance:
            derated = irradiance_power(p.p_max_mw, solar, ctx.profile("temperature"), p.gamma_per_c, p.noct_c)
            out = np.where(self.irradiance, derated, out)
        return out


class PV(CurtailableSource):
    """PV unit with curtailment and inverter Q capability.

    Available power (MW):

    - ``model: profile``: ``P_av = P_max·solar[t]`` (``solar`` in pu of rated);
    - ``model: irradiance``: with ``G = 1000·solar[t]`` W/m² (plane of array) and
      the ambient temperature ``T_a = temperature[t]`` °C, the cell temperature
      is ``T_c = T_a + (NOCT − 20)·G/800`` and
      ``P_av = P_max·(G/1000)·(1 + γ·(T_c − 25))`` (PVWatts-style derating).

    Action, projection, observation: see :class:`~powergrid_devices.renewable.CurtailableSource`.
    """

    Params = PVParams
    Kernel = PVKernel
    profiles_used = ("solar", "temperature")

    def __init__(self, params: PVParams, dt_h: float) -> None:
        self.rated_mw = params.p_max_mw
        super().__init__(params, dt_h)

    def available_mw(self, ctx: StepContext) -> float:
        p = self.params
        solar = ctx.profile("solar")
        solar = 0.0 if solar < 0.0 else solar  # max(solar, 0), faster
        if p.model == "profile":
            return p.p_max_mw * solar
        return irradiance_power(p.p_max_mw, solar, ctx.profile("temperature"), p.gamma_per_c, p.noct_c)

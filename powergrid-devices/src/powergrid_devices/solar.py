"""Photovoltaic unit driven by a solar profile."""

from __future__ import annotations

import attrs
import numpy as np

from powergrid.devices import Device, StepContext, box
from powergrid.params import quantity, text


@attrs.frozen
class PVParams:
    p_max_mw: float = quantity("MW", 0.1, gt=0, doc="rated (peak) power")
    profile: str = text("solar", doc="profile giving available power in pu of rated")


class PV(Device):
    """PV unit: available power ``p_max·solar[t]`` MW; the action curtails it.

    Action: fraction of the available power to inject, in ``[0, 1]`` (1 = MPPT).
    Observation: ``[available/p_max, p/p_max]``. No cost.
    """

    Params = PVParams
    profiles_used = ("solar",)

    def __init__(self, params: PVParams, dt_h: float) -> None:
        super().__init__(params, dt_h)
        self.available_mw = 0.0
        self.action_space = box(0.0, 1.0)
        self.observation_space = box([0.0, 0.0], [1.0, 1.0])

    def step(self, action: object, ctx: StepContext) -> None:
        p = self.params
        self.available_mw = p.p_max_mw * min(max(float(ctx.profiles[p.profile][ctx.tick]), 0.0), 1.0)
        requested = float(np.asarray(action, dtype=np.float64).reshape(-1)[0]) if action is not None else 1.0
        fraction = min(max(requested, 0.0), 1.0) if np.isfinite(requested) else 1.0
        self.projection = abs(fraction - requested) if np.isfinite(requested) else 1.0
        self.p_mw, self.q_mvar = fraction * self.available_mw, 0.0
        self.cost = self.safety = 0.0

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        return np.ones(1, np.float32)

    def observe(self) -> np.ndarray:
        p = self.params
        return np.array([self.available_mw / p.p_max_mw, self.p_mw / p.p_max_mw], np.float32)

    def state_dict(self) -> dict[str, float]:
        return {"p_mw": self.p_mw, "available_mw": self.available_mw}

"""A local (unpackaged) device plugin, loaded with ``powergrid.load_plugins``."""

from __future__ import annotations

import attrs
import numpy as np

from powergrid import register_device
from powergrid.devices import Device, box
from powergrid.params import quantity


@attrs.frozen
class ConstantPowerParams:
    p_mw: float = quantity("MW", 0.1)
    q_mvar: float = quantity("Mvar", 0.0)
    scale_max: float = quantity("1", 2.0, gt=0)


@register_device("ConstantPower")
class ConstantPower(Device):
    """Injects ``scale·p_mw`` / ``scale·q_mvar``; the action is the scale in [0, scale_max]."""

    Params = ConstantPowerParams

    def __init__(self, params: ConstantPowerParams, dt_h: float) -> None:
        super().__init__(params, dt_h)
        self.action_space = box(0.0, params.scale_max)
        self.observation_space = box(0.0, params.scale_max)
        self.scale = 1.0

    def step(self, action, ctx) -> None:
        a = np.asarray(action, np.float64).reshape(-1)
        self.scale = float(np.clip(a[0], 0.0, self.params.scale_max)) if np.isfinite(a[0]) else 1.0
        self.projection = abs(self.scale - a[0]) if np.isfinite(a[0]) else self.params.scale_max
        self.p_mw = self.scale * self.params.p_mw
        self.q_mvar = self.scale * self.params.q_mvar
        self.cost = 10.0 * self.p_mw * self.dt_h

    def rule_action(self, ctx):
        return np.ones(1, np.float32)

    def observe(self) -> np.ndarray:
        return np.array([self.scale], np.float32)

"""Dispatchable generator (diesel, gas engine)."""

from __future__ import annotations

import attrs
import numpy as np

from powergrid.devices import Device, StepContext, box
from powergrid.params import quantity


@attrs.frozen
class DGParams:
    p_min_mw: float = quantity("MW", 0.0, ge=0)
    p_max_mw: float = quantity("MW", 0.6, gt=0)
    cost_a: float = quantity("$/MW²h", 10.0, ge=0, doc="quadratic fuel-cost coefficient")
    cost_b: float = quantity("$/MWh", 50.0, ge=0, doc="linear fuel-cost coefficient")
    cost_c: float = quantity("$/h", 0.0, ge=0, doc="no-load cost while producing")

    def __attrs_post_init__(self) -> None:
        if self.p_min_mw > self.p_max_mw:
            raise ValueError(f"expected p_min_mw ≤ p_max_mw, got {self.p_min_mw} > {self.p_max_mw}")


class DG(Device):
    """Dispatchable generator with a quadratic fuel cost.

    Action: ``p`` in MW, projected to ``[p_min, p_max]``. Cost over ``dt`` hours:
    ``(a·p² + b·p + c)·dt`` $ (``c`` only while ``p > 0``). Observation: ``[p/p_max]``.
    """

    Params = DGParams

    def __init__(self, params: DGParams, dt_h: float) -> None:
        super().__init__(params, dt_h)
        self.action_space = box(params.p_min_mw, params.p_max_mw)
        self.observation_space = box(0.0, 1.0)

    def step(self, action: object, ctx: StepContext) -> None:
        p = self.params
        requested = float(np.asarray(action, dtype=np.float64).reshape(-1)[0]) if action is not None else p.p_min_mw
        power = min(max(requested, p.p_min_mw), p.p_max_mw) if np.isfinite(requested) else p.p_min_mw
        self.projection = abs(power - requested) if np.isfinite(requested) else p.p_max_mw - p.p_min_mw
        self.p_mw, self.q_mvar = power, 0.0
        running = p.cost_c if power > 0 else 0.0
        self.cost = (p.cost_a * power**2 + p.cost_b * power + running) * self.dt_h
        self.safety = 0.0

    def observe(self) -> np.ndarray:
        return np.array([self.p_mw / self.params.p_max_mw], np.float32)

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        """Run when the price exceeds the marginal cost at minimum output, at the output where MC = price."""
        p = self.params
        marginal = (ctx.price - p.cost_b) / (2 * p.cost_a) if p.cost_a > 0 else (p.p_max_mw if ctx.price > p.cost_b else 0.0)
        return np.array([min(max(marginal, p.p_min_mw), p.p_max_mw)], np.float32)

    def state_dict(self) -> dict[str, float]:
        return {"p_mw": self.p_mw}

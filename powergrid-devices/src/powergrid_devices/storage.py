"""Energy storage system (battery)."""

from __future__ import annotations

import attrs
import numpy as np

from powergrid.devices import Device, StepContext, box
from powergrid.params import quantity


@attrs.frozen
class ESSParams:
    p_max_mw: float = quantity("MW", 0.5, gt=0)
    capacity_mwh: float = quantity("MWh", 2.0, gt=0)
    soc_min: float = quantity("1", 0.1, ge=0, le=1)
    soc_max: float = quantity("1", 0.9, ge=0, le=1)
    soc_init: float = quantity("1", 0.5, ge=0, le=1)
    soc_init_spread: float = quantity("1", 0.0, ge=0, le=0.5, doc="±uniform spread of the initial SOC")
    eta_charge: float = quantity("1", 0.95, gt=0, le=1)
    eta_discharge: float = quantity("1", 0.95, gt=0, le=1)
    degradation_cost: float = quantity("$/MWh", 0.0, ge=0, doc="cost per MWh of throughput")

    def __attrs_post_init__(self) -> None:
        if not self.soc_min <= self.soc_init <= self.soc_max:
            raise ValueError(f"expected soc_min ≤ soc_init ≤ soc_max, got {self.soc_min}, {self.soc_init}, {self.soc_max}")


class ESS(Device):
    """Battery with separate charge/discharge efficiencies.

    Action: ``p`` in MW (generator convention: > 0 discharges into the grid).
    State of charge over a step of ``dt`` hours, capacity ``E`` MWh:

    - charging (p < 0):    ``soc' = soc + (-p)·η_c·dt / E``
    - discharging (p > 0): ``soc' = soc - p·dt / (η_d·E)``

    ``p`` is projected to ``[-p_max, p_max]`` and to what keeps ``soc`` in
    ``[soc_min, soc_max]``. Cost: ``degradation_cost·|p|·dt`` $.
    Observation: ``[soc, p/p_max]``.
    """

    Params = ESSParams

    def __init__(self, params: ESSParams, dt_h: float) -> None:
        super().__init__(params, dt_h)
        self.soc = params.soc_init
        self.action_space = box(-params.p_max_mw, params.p_max_mw)
        self.observation_space = box([0.0, -1.0], [1.0, 1.0])

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        p = self.params
        spread = rng.uniform(-p.soc_init_spread, p.soc_init_spread) if p.soc_init_spread else 0.0
        self.soc = float(np.clip(p.soc_init + spread, p.soc_min, p.soc_max))

    def feasible_range(self) -> tuple[float, float]:
        """The (min, max) power in MW the battery can hold for the whole next step."""
        p, dt = self.params, self.dt_h
        max_discharge = (self.soc - p.soc_min) * p.capacity_mwh * p.eta_discharge / dt
        max_charge = (p.soc_max - self.soc) * p.capacity_mwh / (p.eta_charge * dt)
        return -min(p.p_max_mw, max(max_charge, 0.0)), min(p.p_max_mw, max(max_discharge, 0.0))

    def step(self, action: object, ctx: StepContext) -> None:
        p = self.params
        requested = float(np.asarray(action, dtype=np.float64).reshape(-1)[0]) if action is not None else 0.0
        low, high = self.feasible_range()
        power = min(max(requested, low), high) if np.isfinite(requested) else 0.0
        self.projection = abs(power - requested) if np.isfinite(requested) else 2 * p.p_max_mw
        if power < 0:
            self.soc += -power * p.eta_charge * self.dt_h / p.capacity_mwh
        else:
            self.soc -= power * self.dt_h / (p.eta_discharge * p.capacity_mwh)
        self.soc = min(max(self.soc, p.soc_min), p.soc_max)  # rounding only; the projection already holds it
        self.p_mw, self.q_mvar = power, 0.0
        self.cost = p.degradation_cost * abs(power) * self.dt_h
        self.safety = 0.0

    def observe(self) -> np.ndarray:
        return np.array([self.soc, self.p_mw / self.params.p_max_mw], np.float32)

    def state_dict(self) -> dict[str, float]:
        return {"soc": self.soc, "p_mw": self.p_mw}

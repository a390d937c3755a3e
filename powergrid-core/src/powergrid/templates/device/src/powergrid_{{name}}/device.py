"""{{Class}}: an energy store — replace the physics with your device's.

Everything a PowerGrid device does is here: typed parameters with units, the
action and observation spaces (built once), a seeded reset, and a step that
projects the action, advances the state and reports ``p_mw``/``q_mvar``
(generator convention: > 0 injects), ``cost`` ($), ``safety`` (≥ 0) and
``projection`` (distance between the requested and the applied action).
"""

from __future__ import annotations

import attrs
import numpy as np

from powergrid.devices import Device, StepContext, box, clip_action
from powergrid.params import quantity


@attrs.frozen
class {{Class}}Params:
    """Parameters: each field has a unit and bounds; a bad value is a config error naming the field."""

    p_max_mw: float = quantity("MW", 0.05, gt=0, doc="charge and discharge limit")
    capacity_mwh: float = quantity("MWh", 0.1, gt=0)
    efficiency: float = quantity("1", 0.9, gt=0, le=1, doc="round-trip efficiency, applied on charging")
    level_init: float = quantity("1", 0.5, ge=0, le=1, doc="initial level, fraction of capacity")
    level_spread: float = quantity("1", 0.1, ge=0, le=0.5, doc="±uniform spread of the initial level")
    cost_per_mwh: float = quantity("$/MWh", 5.0, ge=0, doc="wear per MWh of throughput")

    def __attrs_post_init__(self) -> None:  # cross-field checks raise ValueError (reported as a config error)
        if self.level_spread > min(self.level_init, 1.0 - self.level_init):
            raise ValueError(f"expected level_spread ≤ min(level_init, 1 − level_init), got {self.level_spread}")


class {{Class}}(Device):
    """Energy store: level ``x`` (fraction of ``E`` MWh), action ``[p]`` MW (> 0 discharges).

    ``x' = x + η·max(−p, 0)·dt/E − max(p, 0)·dt/E``. Projection: ``p`` to
    ``[−p_max, p_max]`` and to what keeps ``x'`` in ``[0, 1]``. Cost:
    ``cost_per_mwh·|p|·dt`` $. Safety: 0. Observation: ``[x, p/p_max]``.
    """

    Params = {{Class}}Params
    profiles_used = ()  # e.g. ("temperature",) if step() reads ctx.profile("temperature")

    def __init__(self, params: {{Class}}Params, dt_h: float) -> None:
        super().__init__(params, dt_h)
        self.level = params.level_init
        self.action_space = box(-params.p_max_mw, params.p_max_mw)
        self.observation_space = box([0.0, -1.0], [1.0, 1.0])

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        p = self.params
        self.level = p.level_init + float(rng.uniform(-p.level_spread, p.level_spread))

    def step(self, action: object, ctx: StepContext) -> None:
        p, dt = self.params, self.dt_h
        requested, distance = clip_action(action if action is not None else [0.0], self.action_space, self.default_action)
        power = float(requested[0])
        # state-dependent limits over the whole step
        low = -(1.0 - self.level) * p.capacity_mwh / (p.efficiency * dt)
        high = self.level * p.capacity_mwh / dt
        applied = min(max(power, low), high)
        self.projection = distance + abs(applied - power)
        if applied < 0:
            self.level += -applied * p.efficiency * dt / p.capacity_mwh
        else:
            self.level -= applied * dt / p.capacity_mwh
        self.level = min(max(self.level, 0.0), 1.0)
        self.p_mw, self.q_mvar = applied, 0.0
        self.cost = p.cost_per_mwh * abs(applied) * dt
        self.safety = 0.0

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        """Default policy: hold (no exchange)."""
        return np.zeros(1, np.float32)

    def observe(self) -> np.ndarray:
        obs = np.array([self.level, self.p_mw / self.params.p_max_mw], np.float32)
        return np.clip(obs, self.observation_space.low, self.observation_space.high)

    def state_dict(self) -> dict[str, float]:
        return {"level": self.level, "p_mw": self.p_mw}

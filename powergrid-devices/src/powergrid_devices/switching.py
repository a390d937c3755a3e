"""Shared base of switched network equipment (shunt steps, transformer taps).

The state is an integer position in ``[low, high]``. A request is projected to
the nearest position at most ``max_moves`` positions from the current one
(operating mechanism); every position moved costs ``switch_cost`` $ (contact
and mechanism wear). The bus voltage of the last converged power flow is kept
from ``settle`` for rules and observations.

:meth:`SwitchedDevice.network_setting` names the admittance change the
position stands for, for an environment that applies it through the solver
(``set_shunt_step``/``set_trafo_tap``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from powergrid.devices import Device, StepContext
from powergrid.solvers.base import PowerFlowResult
from powergrid_devices.actions import StepAction


class SwitchedDevice(Device):
    """Integer position with a move limit, a switching cost and a measured bus voltage."""

    #: Kind of network setting (``"shunt_step"`` or ``"trafo_tap"``).
    setting_kind = ""

    def __init__(self, params: Any, dt_h: float, low: int, high: int) -> None:
        super().__init__(params, dt_h)
        self.positions = StepAction(low, high, params.action)
        self.action_space = self.positions.space
        self.position = self.initial_position()
        self.moves = 0
        self.bus = -1
        self.row = -1
        self.vm_pu = 1.0
        #: Set by an environment that applies :meth:`network_setting` to the solver (then no Q is injected).
        self.network_applied = False

    def initial_position(self) -> int:
        return int(min(max(self.params.init, self.positions.low), self.positions.high))

    def attach(self, net: Any, bus: int) -> None:
        self.bus = bus

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        low, high = self.positions.low, self.positions.high
        self.position = int(rng.integers(low, high + 1)) if self.params.init_random else self.initial_position()
        self.moves = 0
        self.vm_pu = 1.0

    @property
    def default_action(self) -> np.ndarray:
        """The current position (a missing, NaN or infinite request holds it) as a Box action; empty for a
        ``Discrete`` one (no entry can be non-finite)."""
        if self.positions.kind == "discrete":
            return np.zeros(0, np.float64)
        return np.array([float(self.position)], np.float64)

    def move(self, action: object) -> None:
        """Project ``action`` and move; sets ``projection``, ``cost``, ``moves``."""
        target, distance = self.positions.read(action, self.position)
        limit = self.params.max_moves
        new = int(min(max(target, self.position - limit), self.position + limit))
        self.moves = abs(new - self.position)
        self.position = new
        self.projection = distance + abs(target - new)
        self.cost = self.params.switch_cost * self.moves
        self.safety = 0.0

    def injection_mw(self, action: object, ctx: StepContext) -> float:
        """0 MW (generator convention): the equipment draws no active power under any action (``step`` sets
        ``p_mw = 0``)."""
        return 0.0

    def step_toward(self, direction: int) -> Any:
        """The action moving one position in ``direction`` (−1, 0, +1)."""
        return self.positions.encode(self.position + direction)

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> None:
        if result.converged and self.bus >= 0:
            self.vm_pu = float(result.vm_pu[self.bus])

    def network_setting(self) -> tuple[str, int, int]:
        """``(kind, row, position)``: what the environment should set in the solver."""
        return self.setting_kind, self.row, self.position

    def state_dict(self) -> dict[str, float]:
        return {"position": float(self.position), "vm_pu": self.vm_pu, "p_mw": self.p_mw, "q_mvar": self.q_mvar}

"""Agents: DeviceAgent (level 1), GridAgent (level 2), SystemAgent (level 3).

An agent acts at ticks ``offset + k·period`` (multi-rate; the environment derives the
tick from the durations of the scenario, see :mod:`powergrid.clock`), and also on events
when configured; between its actions it holds its last action, and before its first
one its devices follow their own rule. Who chooses the action when it acts:

1. the last directive it received from its parent's vertical protocol, when it carries an action;
2. otherwise, for ``policy: learned``, the RL algorithm (through the environment);
3. otherwise its internal policy (a ``policy`` plugin such as ``rule`` or ``random``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import attrs
import gymnasium
import numpy as np

from powergrid.devices import Device, StepContext
from powergrid.protocols import VerticalProtocol


class Agent:
    """Base class: an id, a period and an offset (ticks), a policy name, a parent and children."""

    level: ClassVar[int] = 0

    def __init__(self, agent_id: str, *, period: int = 1, offset: int = 0, policy: str = "rule") -> None:
        self.id = agent_id
        self.period = period
        self.offset = offset
        self.policy = policy
        self.parent: Agent | None = None
        self.children: list[Agent] = []
        self.last_action: Any = None

    @property
    def learned(self) -> bool:
        return self.policy == "learned"

    @property
    def own_action_space(self) -> gymnasium.spaces.Box:
        raise NotImplementedError

    def rule_action(self, ctx: StepContext) -> Any:
        raise NotImplementedError

    def is_due(self, tick: int) -> bool:
        """Whether ``tick`` is one of the agent's periodic action ticks (events come on top, see the environment)."""
        return tick >= self.offset and (tick - self.offset) % self.period == 0

    def ticks_to_next(self, tick: int) -> int:
        """Ticks from ``tick`` until the agent's next periodic action (0 when it is one)."""
        return self.offset - tick if tick < self.offset else (self.offset - tick) % self.period

    def devices(self) -> list[DeviceAgent]:
        """Every device agent below this agent (itself if it is one), depth first."""
        found: list[DeviceAgent] = []
        for child in self.children:
            found.extend(child.devices())
        return found

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"


@attrs.define(slots=True)
class ReactiveSetpoint:
    """Reactive power a protocol sets for a device (Mvar), applied after the device's own physics.

    ``q_mvar=None`` leaves the device's own Q. With ``limit`` and ``s_mva > 0`` the setpoint is
    clipped to the inverter capability ``±√(S² − P²)`` at the P the device reached (MVA, MW).
    """

    q_mvar: float | None = None
    s_mva: float = 0.0
    limit: bool = False

    def apply(self, device: Device) -> None:
        if self.q_mvar is None:
            return
        q = float(self.q_mvar)
        if self.limit and self.s_mva > 0:
            room = math.sqrt(max(self.s_mva**2 - device.p_mw**2, 0.0))
            q = min(max(q, -room), room)
        device.q_mvar = q


class DeviceAgent(Agent):
    """Wraps one :class:`~powergrid.devices.Device` at one bus."""

    level = 1

    def __init__(self, agent_id: str, device: Device, bus: int, *, period: int = 1, offset: int = 0,
                 policy: str = "rule") -> None:
        super().__init__(agent_id, period=period, offset=offset, policy=policy)
        self.device = device
        self.bus = bus
        #: Position of the device's static generator in ``net.sgen`` (set by the builder).
        self.sgen_row = -1
        #: The action and price the device applies at the current tick (set while deciding).
        self.pending: Any = None
        self.price = 0.0
        #: A protocol's reactive-power setpoint (volt-var, Q–V droop); applied by the environment.
        self.reactive = ReactiveSetpoint()

    @property
    def own_action_space(self) -> gymnasium.spaces.Space:
        return self.device.action_space

    def rule_action(self, ctx: StepContext) -> Any:
        return self.device.rule_action(ctx)

    def devices(self) -> list[DeviceAgent]:
        return [self]


class GridAgent(Agent):
    """A microgrid controller: coordinates its children through its vertical protocol.

    ``zone`` holds the positions (rows of ``net.bus``) of the buses whose voltages count towards this agent's safety
    and observation, and whose lines (by ``from_bus``) and transformers (by HV bus) it answers for.
    """

    level = 2

    def __init__(self, agent_id: str, *, period: int = 1, offset: int = 0, policy: str = "rule") -> None:
        super().__init__(agent_id, period=period, offset=offset, policy=policy)
        self.protocol: VerticalProtocol | None = None
        self.zone: np.ndarray = np.zeros(0, dtype=np.int64)

    @property
    def own_action_space(self) -> gymnasium.spaces.Space:
        assert self.protocol is not None
        return self.protocol.action_space()

    def rule_action(self, ctx: StepContext) -> Any:
        assert self.protocol is not None
        return self.protocol.rule_action(ctx)


class SystemAgent(GridAgent):
    """The ISO level (level 3): coordinates its GridAgents through its vertical protocol; no market of its own. In the
    shipped configs that protocol is ``price_signal``: it sends the microgrids a price ($/MWh; its rule passes the
    market price on, clipped to ``[price_min, price_max]``). Nodal market clearing with LMPs is the ``lmp_market``
    horizontal protocol's."""

    level = 3

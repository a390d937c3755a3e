"""Coordination protocols.

- A **vertical** protocol is owned by a parent agent (GridAgent, SystemAgent).
  It defines the parent's action space and turns the parent's action into
  directives for its children: a setpoint (an action the child applies) and/or
  a price signal (the child's own policy responds to ``ctx.price``).
  Hierarchy is vertical protocols applied recursively.
- A **horizontal** protocol is owned by the environment and couples peers
  (P2P trading, consensus, ADMM, markets). It may add a part to each
  participant's action and observation, and cost to each participant after the
  power flow.

Helpers for protocol authors: :func:`pending_mw`, :func:`mw_range` and :func:`set_pending_mw`
read and move a device agent's MW setpoint in physical units (whatever the action convention
the learned agents use, protocols see physical actions).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import gymnasium
import numpy as np

from powergrid import scaling
from powergrid.params import NoParams
from powergrid.scaling import Feature

if TYPE_CHECKING:
    from powergrid.agents import Agent, DeviceAgent
    from powergrid.devices import StepContext
    from powergrid.solvers.base import PowerFlowResult


@attrs.define(slots=True)
class Directive:
    """What a parent tells one child this tick: an action to apply and/or a price ($/MWh)."""

    action: Any = None
    price: float | None = None


EMPTY_BOX = gymnasium.spaces.Box(0.0, 0.0, (0,), np.float32)


def pending_mw(device_agent: DeviceAgent) -> float:
    """The MW setpoint a device agent is about to apply: the first entry of its pending (physical)
    action; with none, its device's ``default_action`` entry (what it applies for a missing action: a DG its
    ``p_min_mw``), 0 when that is empty; 0 for a non-finite entry (a horizontal protocol's ``project_pending`` has
    replaced it by that default first)."""
    if device_agent.pending is None:
        default = np.asarray(device_agent.device.default_action, dtype=np.float64).reshape(-1)
        return float(default[0]) if default.size and np.isfinite(default[0]) else 0.0
    value = float(np.asarray(device_agent.pending, dtype=np.float64).reshape(-1)[0])
    return value if np.isfinite(value) else 0.0


def mw_range(device_agent: DeviceAgent, action: Any = None) -> tuple[float, float]:
    """The MW (low, high) a dispatchable device can hold over the next step under ``action`` (physical; default:
    its pending action): its ``feasible_range(action)`` when it has one (an ESS near empty or full; a DG that
    starts or stops on the action's on/off request), else the bounds of its action's first entry."""
    dev = device_agent.device
    if hasattr(dev, "feasible_range"):
        if _range_takes_action(dev):
            lo, hi = dev.feasible_range(device_agent.pending if action is None else action)
        else:  # a device written before the action argument: ``feasible_range(self)``
            lo, hi = dev.feasible_range()
        return float(lo), float(hi)
    space = dev.action_space
    return float(np.asarray(space.low).reshape(-1)[0]), float(np.asarray(space.high).reshape(-1)[0])


_TAKES_ACTION: dict[type, bool] = {}


def _range_takes_action(dev: Any) -> bool:
    """Whether ``dev.feasible_range`` accepts the action (``feasible_range(self, action)``), read once per class."""
    kind = type(dev)
    takes = _TAKES_ACTION.get(kind)
    if takes is None:
        try:
            params = inspect.signature(dev.feasible_range).parameters.values()
        except (TypeError, ValueError):  # no signature to read (a builtin): pass the action
            takes = True
        else:
            positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            takes = any(p.kind in positional or p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
        _TAKES_ACTION[kind] = takes
    return takes


def set_pending_mw(device_agent: DeviceAgent, mw: float) -> None:
    """Set the MW setpoint (first action entry, physical units) a device agent applies this step,
    keeping its other entries (its device's ``default_action`` when it has no pending action: a missing action).
    Protocols call it in ``coordinate`` (before the device physics)."""
    shape = device_agent.device.action_space.shape
    pending = device_agent.pending
    current = np.array(device_agent.device.default_action if pending is None else pending, np.float32).reshape(shape)
    flat = current.reshape(-1)
    flat[0] = mw
    device_agent.pending = flat.reshape(shape)


class VerticalProtocol:
    """Base class: ``Protocol(params, parent)``; the parent's children are ``parent.children``.

    ``price_directives``: whether its directives carry a price; a learned agent below such a protocol then
    observes the price it received ("signal", $/MWh).
    """

    Params: ClassVar[type] = NoParams
    price_directives: ClassVar[bool] = False
    #: The horizontal protocols the parent takes part in, in the order they were built (each adds itself when
    #: constructed, so one built outside a scenario, e.g. for inspection, is asked too).
    horizontal: tuple[HorizontalProtocol, ...] = ()

    def __init__(self, params: Any, parent: Agent) -> None:
        self.params = params
        self.parent = parent

    def action_space(self) -> gymnasium.spaces.Space:
        """The parent's action space under this protocol (empty: the parent takes no action)."""
        return EMPTY_BOX

    def attach(self, net: Any) -> None:
        """Called once when the scenario is built, with the pandapower net (e.g. to find the loads behind a meter)."""

    def reset(self, rng: np.random.Generator) -> None:
        """Clear the protocol's state at the start of an episode (called by the environment's ``reset``)."""

    def directives(self, action: Any, ctx: StepContext) -> Sequence[Directive | None]:
        """One directive per child (in ``parent.children`` order); ``None`` lets the child decide."""
        return [None] * len(self.parent.children)

    def info(self) -> dict[str, Any]:
        """Diagnostics of the last step (e.g. a reserve allocation), merged into the parent's infos."""
        return {}

    def action_slices(self) -> list[slice] | None:
        """When :meth:`directives` only hands each child its slice of the (flat) action as its action, those
        slices (in child order), so the environment may route them as index maps; else None (the default)."""
        return None

    def rule_action(self, ctx: StepContext) -> Any:
        """The parent's action when it runs a rule-based policy."""
        space = self.action_space()
        if isinstance(space, gymnasium.spaces.Box):
            return np.clip(np.zeros(space.shape, np.float32), space.low, space.high)
        return space.sample()


class NoProtocol(VerticalProtocol):
    """No coordination: every child acts on its own policy."""


class HorizontalProtocol:
    """Base class: ``Protocol(params, participants)`` among peer agents, owned by the environment.

    Call order in a step: ``coordinate`` (after agents chose actions, before
    device physics), then ``settle`` (after the power flow).
    """

    Params: ClassVar[type] = NoParams
    #: The device agents whose store the reward values at the episode's end (:attr:`Scenario.valued_stores`: behind a
    #: billing meter), set by the builder before :meth:`attach`; None for a protocol built outside the builder.
    valued_stores: frozenset[str] | None = None
    #: The agent kinds (``"grid"``, ``"system"``, ``"device"``) a scenario may list in ``participants``; the builder
    #: reports any other as a config error naming the participant. A protocol among microgrid controllers narrows it
    #: to ``("grid", "system")``, so a device listed instead of its controller is not silently another experiment.
    participant_kinds: ClassVar[tuple[str, ...]] = ("grid", "system", "device")

    def __init__(self, params: Any, participants: Sequence[Agent]) -> None:
        self.params = params
        self.participants = list(participants)
        for agent in self.participants:  # a participant's vertical protocol may ask it (e.g. export_taken_mw)
            protocol = getattr(agent, "protocol", None)
            if isinstance(protocol, VerticalProtocol):
                protocol.horizontal = (*protocol.horizontal, self)

    def attach(self, net: Any) -> None:
        """Called once when the scenario is built, with the pandapower net (e.g. to build a DC model)."""

    def action_space(self, agent: Agent) -> gymnasium.spaces.Box:
        """The extra action this protocol takes from ``agent`` (appended to its own action)."""
        return EMPTY_BOX

    def observation_features(self, agent: Agent) -> Sequence[Feature]:
        """Units, bounds and scaling of each extra observation entry (:mod:`powergrid.scaling`)."""
        return ()

    def observation_space(self, agent: Agent) -> gymnasium.spaces.Box:
        """The extra observation this protocol gives ``agent`` (raw units, from its features)."""
        features = self.observation_features(agent)
        return scaling.space(features) if features else EMPTY_BOX

    def reset(self, rng: np.random.Generator) -> None:
        """Clear the protocol's state at the start of an episode."""

    def rule_extra(self, agent: Agent, parts: list[np.ndarray] | None, ctx: StepContext) -> np.ndarray | None:
        """The extra action (physical units) ``agent`` sends under its rule, what :meth:`coordinate` does for a rule
        participant, from its own rule's setpoints ``parts`` (one array per child, physical units; the protocol may
        change them in place as its rule changes the pending setpoints; None when its vertical protocol does not hand
        each child its slice of the action: the rule from what the protocol reads itself). None (the default): zeros."""
        return None

    def export_taken_mw(self, agent: Agent, parts: list[np.ndarray], ctx: StepContext) -> float:
        """MW of ``agent``'s predicted export (its meter's) that this protocol's rule takes over this tick, under its
        vertical protocol's rule setpoints ``parts`` (physical, one array per child): that rule leaves that much of
        the export to it rather than valuing it at the grid's export price. 0.0 (the default): none."""
        return 0.0

    def load_change_mw(self, agent: Agent, ctx: StepContext) -> float:
        """MW by which the loads behind ``agent``'s meter change from its last reading to this tick, as this protocol
        knows them (the LMP market: their forecast, the schedule without its jitter with the share of the last deviation
        that persists, less their actual MW at the last reading): a vertical protocol's rule adds it to the import it
        predicts. 0.0 (the default): not known, the rest of the microgrid as it was."""
        return 0.0

    def coordinate(self, actions: Mapping[str, np.ndarray], ctx: StepContext) -> None:
        """Run the mechanism on the participants' extra actions (by agent id)."""

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> Mapping[str, tuple[float, float]]:
        """``{agent id: (cost $, safety)}`` added to each participant after the power flow."""
        return {}

    def observe(self, agent: Agent) -> np.ndarray:
        """The extra observation of ``agent`` (inside ``observation_space(agent)``)."""
        return np.zeros(0, np.float32)

    def info(self) -> dict[str, Any]:
        """Diagnostics of the last step (iterations, cleared price…), put in every participant's infos."""
        return {}

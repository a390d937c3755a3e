"""Internal (non-learned) policies: ``Policy(agent, rng)`` then ``act(ctx)`` when the agent is due."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium
import numpy as np

if TYPE_CHECKING:
    from powergrid.agents import Agent
    from powergrid.devices import StepContext


class Policy:
    """Base class of internal policies."""

    def __init__(self, agent: Agent, rng: np.random.Generator) -> None:
        self.agent = agent
        self.rng = rng

    def act(self, ctx: StepContext) -> Any:
        raise NotImplementedError


class RandomPolicy(Policy):
    """Uniform samples of the agent's own action space (drawn from the environment's seeded rng)."""

    def act(self, ctx: StepContext) -> Any:
        space = self.agent.own_action_space
        if isinstance(space, gymnasium.spaces.Discrete):
            return int(self.rng.integers(space.start, space.start + space.n))
        return self.rng.uniform(space.low, space.high).astype(np.float32)


class RulePolicy(Policy):
    """The agent's built-in rule: ``Device.rule_action`` or the vertical protocol's ``rule_action``."""

    def act(self, ctx: StepContext) -> Any:
        return self.agent.rule_action(ctx)

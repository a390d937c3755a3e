"""A gymnasium single-agent view of one learned agent, for Stable-Baselines3 and other single-agent libraries.

The other learned agents follow fixed policies (by default their rule actions).
One ``step`` is one decision of the viewed agent: the environment runs ticks until
the agent acts again (its period or an event; others act when they do) and the reward,
``cost``, ``safety``, ``penalty`` and ``projection`` are summed over those ticks, as in :mod:`powergrid.rl.rllib`
(the ticks before an agent's first action, an offset, in its first step).
A ``Discrete`` action space that starts at ``s ≠ 0`` (a tap changer's positions) is exposed from 0, as SB3 samples it:
action ``k`` is the environment's ``s + k`` (:attr:`SingleAgentView.action_start`).
The records of devices with no learned agent at or above them (the env's ``infos["__common__"]``, e.g. a rule-driven
meter's ``comm`` faults) of the ticks a step ran are in its ``info["__common__"]`` (``{"comm": {device agent id:
records}}``, records in tick order), only at a step with some; those of the ticks before the first action, in
``reset``'s info.

A scenario's top-level ``seed`` is each view's default stream, so views built apart (the workers of a ``SubprocVecEnv``)
replay the same episodes unless seeded apart: ``PPO(..., seed=s)`` or ``venv.seed(s)`` resets worker ``i`` with ``s + i``.

Picklable, so it works with ``SubprocVecEnv(..., start_method="spawn")``; pass
``functools.partial(SingleAgentView, "path/to/scenario.yaml", "mg1")`` as the env
factory so workers build their own environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium
import numpy as np

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.rl._common import Accumulator, make_env, zero_based

__all__ = ["Policy", "SingleAgentView", "rule_policy"]

#: ``policy(env, agent_id, observation) -> action`` for the other learned agents.
Policy = Callable[[MultiAgentPowerGridEnv, str, np.ndarray], Any]


def rule_policy(env: MultiAgentPowerGridEnv, agent_id: str, observation: np.ndarray | None = None) -> np.ndarray:
    """The agent's own rule action (:meth:`MultiAgentPowerGridEnv.rule_action`)."""
    return env.rule_action(agent_id)


class SingleAgentView(gymnasium.Env):
    """``agent_id`` of ``env`` as a gymnasium ``Env``; the other learned agents follow ``policies``.

    ``env`` is a :class:`~powergrid.env.MultiAgentPowerGridEnv` or anything its
    ``from_config`` takes (a YAML path, a mapping). ``policies`` is one
    :data:`Policy` for every other agent or a mapping ``{agent id: Policy}``
    (missing agents use :func:`rule_policy`).
    """

    metadata = {"render_modes": []}

    def __init__(self, env: Any, agent_id: str, policies: Policy | Mapping[str, Policy] | None = None,
                 *, solver: str | None = None) -> None:
        super().__init__()
        self.env = make_env(env, solver=solver)
        if agent_id not in self.env.possible_agents:
            raise ValueError(f"{agent_id!r} is not a learned agent; learned agents: {self.env.possible_agents}")
        self.agent_id = agent_id
        others = [a for a in self.env.possible_agents if a != agent_id]
        if policies is None or callable(policies):
            policy = policies or rule_policy
            self.policies: dict[str, Policy] = dict.fromkeys(others, policy)
        else:
            unknown = set(policies) - set(others)
            if unknown:
                raise ValueError(f"policies for unknown or viewed agents: {sorted(unknown)}")
            self.policies = {a: policies.get(a, rule_policy) for a in others}
        self.observation_space = self.env.observation_space(agent_id)
        self.action_space, start = zero_based(self.env.action_space(agent_id))
        #: added to the view's actions for the environment: a ``Discrete`` space's start (SB3 samples ``0 … n − 1``)
        self.action_start = start
        self._others = others
        self._acc = Accumulator([agent_id])
        self._obs: dict[str, np.ndarray] = {}

    def _other_actions(self) -> dict[str, Any]:
        env = self.env
        return {a: self.policies[a](env, a, self._obs.get(a)) for a in self._others if env.is_acting(a)}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._obs, infos = self.env.reset(seed=seed, options=options)
        self._acc.clear()
        self._acc.hold_common(infos)
        info = dict(infos[self.agent_id], ticks=0)
        if not self.env.is_acting(self.agent_id):  # an offset: run until its first action; the reward, cost, … of
            terminated, truncated, last = self._advance({})  # those ticks count in the first step's sums
            if terminated or truncated:  # a failed flow, or an agent on events only (offset ≥ episode) saw none
                why = last["failure"] or "no event, and its offset is not before the episode's end"
                raise RuntimeError(f"the episode ended at {self.env.time_s} s, before {self.agent_id!r} first acted "
                                   f"({why}): the view has no step to play")
            info = self._acc.unsummed(last)
        self._acc.pop_common(info)
        return self._obs[self.agent_id], info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.action_start:
            action = action + self.action_start
        reward, terminated, truncated, info = self._run({self.agent_id: action})
        return self._obs[self.agent_id], reward, terminated, truncated, info

    def _run(self, own: dict[str, Any]) -> tuple[float, bool, bool, dict]:
        """Step ticks until the viewed agent is due again or the episode ends; the sums since the last pop."""
        terminated, truncated, info = self._advance(own)
        reward, info = self._acc.pop(self.agent_id, info)
        self._acc.pop_common(info)
        return reward, terminated, truncated, info

    def _advance(self, own: dict[str, Any]) -> tuple[bool, bool, dict]:
        """Step ticks (accumulated) until the viewed agent is due again or the episode ends: whether it terminated,
        was truncated, and the viewed agent's info of the last tick."""
        aid = self.agent_id
        while True:
            actions = {**self._other_actions(), **own}
            own = {}
            self._obs, rewards, terminations, truncations, infos = self.env.step(actions)
            self._acc.add(rewards, infos)
            terminated = bool(terminations[aid])
            truncated = bool(truncations[aid]) or not self.env.agents
            if terminated or truncated or self.env.is_acting(aid):
                return terminated, truncated and not terminated, infos[aid]

    def render(self) -> None:
        return None

    def close(self) -> None:
        self.env.close()

"""Infos reduced to numbers, for libraries that make a tensor of every info entry (TorchRL's ``PettingZooWrapper``).

The env's infos also hold text (``failure``, ``timestamp``), nested records (protocols' ``comm``, ``infos["__common__"]``)
and ``None``, on which ``torchrl.envs.PettingZooWrapper`` fails (``TypeError: new(): invalid data type 'str'``).
:class:`NumericInfos` keeps the cost signal of constrained RL and drops the rest::

    from torchrl.envs import PettingZooWrapper
    env = PettingZooWrapper(NumericInfos(MultiAgentPowerGridEnv.from_config("configs/ieee34_3mg.yaml")),
                            use_mask=False, categorical_actions=False, done_on_any=False)
    # a rollout carries ("next", group, "info", "cost"), ... per agent
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from pettingzoo.utils.env import ParallelEnv
from pettingzoo.utils.wrappers import BaseParallelWrapper

__all__ = ["KEYS", "NumericInfos"]

#: the entries :class:`NumericInfos` keeps by default (docs/rl.md, "infos")
KEYS = ("cost", "safety", "penalty", "projection", "converged", "acting")
#: the entries that are flags (``bool``); the others are ``float32``
FLAGS = frozenset({"converged", "acting"})


class NumericInfos(BaseParallelWrapper):
    """A PettingZoo parallel env whose ``infos[agent]`` holds only ``keys``, as numbers: ``float32``, and ``bool`` for
    the flags ``converged`` and ``acting``; entries outside the agents (``infos["__common__"]``) are dropped.

    The default keys, per agent and tick: ``cost`` ($), ``safety`` (constraint violation in each limit's unit, per
    physics step), ``penalty`` (reward units: what failed flows charge), ``projection`` (in the action's physical
    units), ``converged`` (the tick's flow converged) and ``acting`` (the agent's next action will be used). Any other
    info entry that is a number may be named; an agent's info without one of ``keys`` is a KeyError.
    """

    def __init__(self, env: ParallelEnv, keys: Iterable[str] = KEYS) -> None:
        super().__init__(env)
        self.keys = tuple(keys)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        observations, infos = super().reset(seed=seed, options=options)  # sets self.agents (pettingzoo 1.24)
        return observations, self._numeric(infos)

    def step(self, actions: dict) -> tuple[dict, dict, dict, dict, dict]:
        observations, rewards, terminations, truncations, infos = super().step(actions)
        return observations, rewards, terminations, truncations, self._numeric(infos)

    def _numeric(self, infos: dict[str, Any]) -> dict[str, dict[str, Any]]:
        agents = self.possible_agents
        try:
            return {a: {k: bool(info[k]) if k in FLAGS else np.float32(info[k]) for k in self.keys}
                    for a, info in infos.items() if a in agents}
        except KeyError:
            a, k = next((a, k) for a, info in infos.items() if a in agents for k in self.keys if k not in info)
            raise KeyError(f"NumericInfos: agent {a!r}'s info has no {k!r} (expected keys {list(self.keys)}; "
                           f"found {sorted(infos[a])})") from None

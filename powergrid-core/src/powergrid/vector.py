"""A vectorized environment: N independent copies of one scenario stepped together.

:class:`VectorPowerGridEnv` holds ``n`` :class:`~powergrid.env.MultiAgentPowerGridEnv`
copies (each its own network, solver and random streams) and exposes a batched
dict-of-arrays API keyed by the learned agents' ids::

    venv = VectorPowerGridEnv("configs/ieee34_3mg.yaml", n=8)
    obs, infos = venv.reset(seed=0)          # obs["mg1"].shape == (8, obs_dim)
    actions = {a: np.stack([venv.action_space(a).sample() for _ in range(8)]) for a in venv.possible_agents}
    obs, rewards, terminations, truncations, infos = venv.step(actions)
    # rewards["mg1"].shape == (8,); infos is a list of the 8 copies' per-agent info dicts

``reset(seed)`` seeds copy ``i`` with ``seed + i`` (``None`` keeps each copy's own stream).
A copy whose episode ends is **reset automatically** inside ``step``: the observation
it returns is the first one of the new episode, and that copy's ``infos[i]`` holds
``"final_observation"`` (per-agent observations at the end of the finished episode) and
``"final_info"`` (its per-agent infos). The auto-reset draws from the copy's own
random stream, exactly like calling ``reset()`` without a seed on a standalone env.

Copies are stepped one after the other in this process (no worker processes), so the
throughput per core is the single-env throughput minus the batching overhead; run one
vector env per worker process to use several cores.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np

from powergrid.config import EnvConfig
from powergrid.env import MultiAgentPowerGridEnv


class VectorPowerGridEnv:
    """``n`` copies of one scenario with batched ``(n, ...)`` observations, actions and rewards."""

    def __init__(self, config_or_path: str | os.PathLike[str] | EnvConfig | Mapping[str, Any], n: int,
                 **kwargs: Any) -> None:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if isinstance(config_or_path, Mapping):
            config = EnvConfig.from_dict(config_or_path)
        elif isinstance(config_or_path, EnvConfig):
            config = config_or_path
        else:
            config = EnvConfig.from_yaml(config_or_path)
        self.config = config
        self.num_envs = n
        #: the copies; ``envs[i]`` is an ordinary PettingZoo parallel env
        self.envs = [MultiAgentPowerGridEnv(config, **kwargs) for _ in range(n)]
        first = self.envs[0]
        self.possible_agents = list(first.possible_agents)
        self._obs_dims = {a: int(np.prod(first.observation_space(a).shape)) for a in self.possible_agents}

    # ------------------------------------------------------------------ spaces (of one copy)
    def observation_space(self, agent: str) -> gymnasium.spaces.Space:
        """The observation space of ``agent`` in one copy (the batch adds a leading axis of ``n``)."""
        return self.envs[0].observation_space(agent)

    def action_space(self, agent: str) -> gymnasium.spaces.Space:
        """The action space of ``agent`` in one copy (the batch adds a leading axis of ``n``)."""
        return self.envs[0].action_space(agent)

    # ------------------------------------------------------------------ batched API
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
        """Reset every copy (copy ``i`` with ``seed + i``); observations ``{agent: (n, obs_dim)}``."""
        obs = self._empty_obs()
        infos: list[dict[str, Any]] = []
        for i, env in enumerate(self.envs):
            o, info = env.reset(seed=None if seed is None else seed + i, options=options)
            for a, row in o.items():
                obs[a][i] = row
            infos.append(info)
        return obs, infos

    def step(self, actions: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray],
                                                        dict[str, np.ndarray], dict[str, np.ndarray],
                                                        list[dict[str, Any]]]:
        """Step every copy with row ``i`` of each ``actions[agent]``; finished copies are reset.

        Returns ``obs {agent: (n, obs_dim) float32}``, ``rewards {agent: (n,) float64}``,
        ``terminations`` and ``truncations`` ``{agent: (n,) bool}`` and ``infos`` (one dict per copy).
        """
        n, agents = self.num_envs, self.possible_agents
        obs = self._empty_obs()
        rewards = {a: np.zeros(n) for a in agents}
        terminations = {a: np.zeros(n, bool) for a in agents}
        truncations = {a: np.zeros(n, bool) for a in agents}
        infos: list[dict[str, Any]] = []
        batch = {a: actions[a] for a in agents if a in actions}
        for i, env in enumerate(self.envs):
            o, r, te, tr, info = env.step({a: act[i] for a, act in batch.items()})
            for a in r:
                rewards[a][i] = r[a]
                terminations[a][i] = te[a]
                truncations[a][i] = tr[a]
            if not env.agents:  # the episode ended: auto-reset, keep the final step's data in infos
                info = dict(info)
                info["final_observation"], info["final_info"] = o, dict(info)
                o, reset_info = env.reset()
                info["reset_info"] = reset_info
            for a, row in o.items():
                obs[a][i] = row
            infos.append(info)
        return obs, rewards, terminations, truncations, infos

    def _empty_obs(self) -> dict[str, np.ndarray]:
        return {a: np.zeros((self.num_envs, d), np.float32) for a, d in self._obs_dims.items()}

    def close(self) -> None:
        for env in self.envs:
            env.close()

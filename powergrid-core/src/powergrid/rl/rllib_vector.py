"""RLlib (new API stack) over the batched vector env: a ``VectorMultiAgentEnv`` and the env runner that uses it.

What RLlib 2.60 accepts: ``MultiAgentEnvRunner.make_env`` always builds its vector env itself
with ``ray.rllib.env.vector.registration.make_vec``, which for a ``MultiAgentEnv`` implements
only ``gym_env_vectorize_mode="sync"``: a ``SyncVectorMultiAgentEnv`` of
``num_envs_per_env_runner`` independent ``MultiAgentEnv`` instances stepped one after another.
No configuration key hands it a batched multi-agent vector env. It does take a custom env
runner class (``config.env_runners(env_runner_cls=...)``), so :class:`VectorEnvRunner` is
RLlib's ``MultiAgentEnvRunner`` whose ``make_env`` builds :class:`BatchedVectorMultiAgentEnv`:
the same contract as ``SyncVectorMultiAgentEnv`` (lists of per-copy dicts, a finished copy reset
at its next step), stepping the copies of one :class:`~powergrid.vector.VectorPowerGridEnv` (their power
flows in one batched call from :data:`powergrid.vector.BATCH_FROM` copies on).

Each copy keeps the semantics of :class:`~powergrid.rl.rllib.RLlibPowerGridEnv` (only agents due
to act observe; rewards summed over the ticks an action was held)::

    config = (PPOConfig().environment(RLlibPowerGridEnv, env_config={"scenario": "/abs/ieee34_3mg.yaml"})
              .env_runners(env_runner_cls=VectorEnvRunner, num_envs_per_env_runner=16))

Needs the ``rllib`` extra. The ``on_environment_created`` callback is not called by this runner.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium
import numpy as np

from powergrid.errors import ActionError
from powergrid.rl._common import missing_extra, offset_default_seed, runner_offset

try:
    import ray
    from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
    from ray.rllib.env.vector.vector_multi_agent_env import VectorMultiAgentEnv
except ImportError as err:  # tests/rl/test_missing_extras.py
    raise missing_extra(err, 'powergrid.rl.rllib_vector needs ray[rllib] 2.44 or later (its vectorized '
                             'MultiAgentEnvRunner): pip install "powergrid-core[rllib]"') from err

from powergrid.rl.rllib import RLlibPowerGridEnv
from powergrid.vector import VectorPowerGridEnv

if tuple(int(part) for part in ray.__version__.split(".")[:2]) < (2, 44):  # 2.43 has the vector env, not the runner
    raise ImportError(f"powergrid.rl.rllib_vector needs ray[rllib] 2.44 or later (its vectorized MultiAgentEnvRunner); "
                      f"found ray {ray.__version__}")

__all__ = ["BatchedVectorMultiAgentEnv", "VectorEnvRunner"]

StepResult = tuple[dict, dict, dict, dict, dict]


class BatchedVectorMultiAgentEnv(VectorMultiAgentEnv):
    """``num_envs`` copies of ``config = {"scenario": ..., "solver": name?}`` (as :class:`RLlibPowerGridEnv` takes
    it) as an RLlib ``VectorMultiAgentEnv``; ``envs[i]`` is copy ``i``'s :class:`RLlibPowerGridEnv` view.

    Every seed is shifted by :attr:`seed_offset` ``= 1000·worker_index`` (the env runner's index), as in
    :class:`RLlibPowerGridEnv`: copy ``i`` plays the scenario's ``seed + seed_offset + i`` or, after ``reset(seed=s)``,
    ``s + seed_offset + i``."""

    def __init__(self, config: Mapping[str, Any] | None, num_envs: int, *, worker_index: int = 0) -> None:
        super().__init__()
        config = dict(config or {})
        scenario = config.get("scenario")
        if scenario is None:
            raise ValueError("no scenario: pass a YAML path or a mapping as env_config['scenario']")
        if isinstance(scenario, os.PathLike):
            scenario = os.fspath(scenario)
        self.vector = VectorPowerGridEnv(scenario, num_envs, solver=config.get("solver"))
        #: added to every seed (see the class docstring)
        self.seed_offset = runner_offset(worker_index)
        if self.seed_offset:  # copy i's default stream: the vector env's seed + i, shifted
            for i, env in enumerate(self.vector.envs):
                offset_default_seed(env, self.seed_offset + i)
        self.envs = [RLlibPowerGridEnv({"scenario": env}) for env in self.vector.envs]
        self.num_envs = num_envs
        first = self.envs[0]
        self.single_observation_spaces = dict(first.observation_spaces)
        self.single_action_spaces = dict(first.action_spaces)
        self.single_observation_space = gymnasium.spaces.Dict(self.single_observation_spaces)
        self.single_action_space = gymnasium.spaces.Dict(self.single_action_spaces)
        self.metadata = {**first.metadata, "autoreset_mode": "next_step"}
        self._autoreset = np.zeros(num_envs, bool)

    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
              ) -> tuple[list[dict], list[dict]]:
        """Reset every copy (copy ``i`` with ``seed + i``, or ``seed[i]``; each plus :attr:`seed_offset`)."""
        super().reset(seed=seed if isinstance(seed, int) else None)
        n = self.num_envs
        seeds = [None] * n if seed is None else [seed + i for i in range(n)] if isinstance(seed, int) else list(seed)
        if len(seeds) != n:
            raise ValueError(f"reset: {len(seeds)} seeds for {n} copies")
        seeds = [None if s is None else s + self.seed_offset for s in seeds]
        observations, infos = zip(*(env.reset(seed=s, options=options) for env, s in zip(self.envs, seeds)))
        self._autoreset[:] = False
        return list(observations), list(infos)

    def step(self, actions: Sequence[Mapping[str, Any]]) -> tuple[list, list, list, list, list]:
        """Step every copy (a copy that finished at the last step is reset instead, RLlib's ``next_step`` mode);
        the copies due for a tick are stepped together until each has an agent due or has finished."""
        if len(actions) != self.num_envs:
            raise ActionError(f"step: expected one action dict per copy ({self.num_envs}), got {len(actions)}")
        out: list[StepResult | None] = [None] * self.num_envs
        copies = np.flatnonzero(~self._autoreset).tolist()
        # the first tick checks every stepped copy's actions before any copy moves; the finished copies reset after it
        ticks = self.vector.step_copies(copies, [self.envs[i].env_actions(actions[i]) for i in copies])
        for i in np.flatnonzero(self._autoreset).tolist():
            env = self.envs[i]
            obs, info = env.reset()
            zeros = dict.fromkeys(env.possible_agents, 0.0)
            flags = {**dict.fromkeys(env.possible_agents, False), "__all__": False}
            out[i] = (obs, zeros, dict(flags), dict(flags), info)
        while copies:
            held = []
            for i, tick in zip(copies, ticks):
                result = self.envs[i].advance(tick)
                if result is None:  # no agent due yet: the next tick, actions held
                    held.append(i)
                else:
                    out[i] = result
            copies = held
            ticks = self.vector.step_copies(copies, [{}] * len(copies)) if copies else []
        observations, rewards, terminateds, truncateds, infos = (list(column) for column in zip(*out))
        self._autoreset = np.array([t["__all__"] or u["__all__"] for t, u in zip(terminateds, truncateds)])
        return observations, rewards, terminateds, truncateds, infos

    def render(self) -> None:
        return None

    def close_extras(self, **kwargs: Any) -> None:
        self.vector.close()


class VectorEnvRunner(MultiAgentEnvRunner):
    """RLlib's ``MultiAgentEnvRunner`` stepping a :class:`BatchedVectorMultiAgentEnv` of
    ``num_envs_per_env_runner`` copies of ``env_config`` (instead of independent copies of ``config.env``)."""

    def make_env(self) -> None:
        if self.env is not None:
            self.env.close()
        self.env = BatchedVectorMultiAgentEnv(self.config.env_config, self.config.num_envs_per_env_runner,
                                              worker_index=self.worker_index or 0)
        self.num_envs = self.env.num_envs
        self._needs_initial_reset = True

"""Adapters from :class:`~powergrid.env.MultiAgentPowerGridEnv` to RL libraries.

* :mod:`powergrid.rl.rllib` — :class:`RLlibPowerGridEnv`, an RLlib ``MultiAgentEnv``
  with RLlib's asynchronous multi-rate semantics (needs the ``rllib`` extra);
* :mod:`powergrid.rl.gym` — :class:`SingleAgentView`, a gymnasium single-agent
  view of one learned agent for Stable-Baselines3 (needs only gymnasium);
* :mod:`powergrid.rl.sb3` — :class:`PowerGridVecEnv`, an SB3 ``VecEnv`` over the batched
  vector env, one slot per (copy, agent) as SuperSuit lays them out (needs the ``sb3`` extra);
* :mod:`powergrid.rl.rllib_vector` — :class:`VectorEnvRunner`, RLlib's multi-agent env runner
  on the batched vector env (needs the ``rllib`` extra);
* :mod:`powergrid.rl.numeric_infos` — :class:`NumericInfos`, a PettingZoo wrapper whose infos hold only numbers
  (cost, safety, …), for TorchRL's ``PettingZooWrapper`` (needs only pettingzoo).

Nothing here imports ray, torch or stable-baselines3 at import time.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NumericInfos", "PowerGridVecEnv", "RLlibPowerGridEnv", "SingleAgentView", "VectorEnvRunner", "register", "rule_policy"]


def __getattr__(name: str) -> Any:
    if name in ("RLlibPowerGridEnv", "register"):
        from powergrid.rl import rllib

        return getattr(rllib, name)
    if name == "PowerGridVecEnv":
        from powergrid.rl import sb3

        return sb3.PowerGridVecEnv
    if name == "VectorEnvRunner":
        from powergrid.rl import rllib_vector

        return rllib_vector.VectorEnvRunner
    if name == "NumericInfos":
        from powergrid.rl import numeric_infos

        return numeric_infos.NumericInfos
    if name in ("SingleAgentView", "rule_policy"):
        from powergrid.rl import gym

        return getattr(gym, name)
    raise AttributeError(f"module 'powergrid.rl' has no attribute {name!r}")

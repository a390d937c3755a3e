"""Adapters from :class:`~powergrid.env.MultiAgentPowerGridEnv` to RL libraries.

* :mod:`powergrid.rl.rllib` — :class:`RLlibPowerGridEnv`, an RLlib ``MultiAgentEnv``
  with RLlib's asynchronous multi-rate semantics (needs the ``rllib`` extra);
* :mod:`powergrid.rl.gym` — :class:`SingleAgentView`, a gymnasium single-agent
  view of one learned agent for Stable-Baselines3 (needs only gymnasium).

Nothing here imports ray, torch or stable-baselines3 at import time.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RLlibPowerGridEnv", "SingleAgentView", "register", "rule_policy"]


def __getattr__(name: str) -> Any:
    if name in ("RLlibPowerGridEnv", "register"):
        from powergrid.rl import rllib

        return getattr(rllib, name)
    if name in ("SingleAgentView", "rule_policy"):
        from powergrid.rl import gym

        return getattr(gym, name)
    raise AttributeError(f"module 'powergrid.rl' has no attribute {name!r}")

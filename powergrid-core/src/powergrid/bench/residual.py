"""Residual actions on the rule and day-ahead features: what a trained policy may know and start from.

:class:`RuleResidual` wraps a :class:`~powergrid.env.MultiAgentPowerGridEnv` (PettingZoo parallel
API) so that a learned agent's action is a *correction* to its own rule: the env receives
``clip(rule + scale·a, low, high)`` (normalised actions), so a policy whose output is zero plays the
rule exactly (residual RL). Each observation is the env's own, followed by :func:`features`: the
rule's action and the information an operator has when dispatching the coming hour — nothing
from the future that is not published in advance:

- the hour of day (sin, cos);
- the day-ahead LMP of the next ``horizon`` hours ($/MWh ÷ 100): the CAISO extract's price *is*
  the DAM price, published the day before, so it is known for the whole day at midnight;
- the load and solar of the same ``horizon`` hours *yesterday* (a persistence forecast: the
  extract's load and solar are actuals, ``SLD_FCST``/``SLD_REN_FCST`` market ``ACTUAL``, so today's
  values are not known in advance; yesterday's are, and the loads' forecast the rule uses is
  levelled on the same day, :func:`yesterday`), in the provider's units (load ÷ its 2023 mean,
  solar ÷ its 2023 peak), minus 1 for the load;
- today's load minus yesterday's at the last hour already played (0 at the first hour).

Past the end of the day the last hour's values repeat. Yesterday's ``load`` and ``solar`` come from the dataset pack's
series providers (the CAISO and file providers); a role without a past (no such role, or a provider of a plan such as
the synthetic one) gives zeros, as no ``price`` profile does. ``horizon`` counts hours at a step that divides an hour:
the features are the values every :func:`ticks_per_hour` ticks (every 4th at 15 min, so ``ieee34_3mg`` sees 6 h of
prices as the hourly tasks do); at a step of an hour or more, every tick. Yesterday's series is resampled to the env's
step as the episode's own is.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from pettingzoo.utils.wrappers import BaseParallelWrapper

from powergrid.loads import previous_day

#: Hours ahead of the day-ahead price and of the persistence forecast in the observation.
HORIZON = 6
#: $/MWh per unit of the price features.
PRICE_UNIT = 100.0


def feature_size(action_size: int, horizon: int = HORIZON) -> int:
    """Length of :func:`features` for an agent with ``action_size`` action entries."""
    return action_size + 2 + 3 * horizon + 1


def yesterday(env: Any, role: str) -> np.ndarray | None:
    """The ``role`` profile of the local day before the episode (from ``start_hour`` after its midnight) at the env's
    step (provider units), or None.

    :func:`powergrid.loads.previous_day`, the past the loads' forecast is levelled on: read from the provider's
    whole-year series (same cleaning and scale as the episode's), so a training day's yesterday may be a test day:
    only its *past* actuals are used, as an operator would. On the data's first day (2023-01-01) there is none: the
    series' mean (the provider's fallbacks).
    """
    provider = env.scenario.providers.get(role)
    return None if provider is None else previous_day(provider, env.max_ticks, env.config.time.step_minutes)


def _ahead(values: np.ndarray, tick: int, horizon: int, stride: int) -> np.ndarray:
    idx = np.minimum(tick + stride * np.arange(horizon), values.size - 1)
    return values[idx]


def ticks_per_hour(env: Any) -> int:
    """Env ticks per hour, rounded, at least 1: the spacing of the features ahead (whole hours at 15, 20 or 30 min)."""
    return max(1, round(1.0 / env.dt_h))


def features(env: Any, rule: np.ndarray, past: dict[str, np.ndarray | None], horizon: int = HORIZON) -> np.ndarray:
    """The rule's action and the day-ahead information for the hour ``env.tick`` about to be played (module doc).

    ``past``: :func:`yesterday` of ``load`` and ``solar`` for the current episode.
    """
    t = min(env.tick, env.max_ticks - 1)
    angle = 2.0 * np.pi * t / env.max_ticks
    price = env.ctx.profiles.get("price")
    load, solar = past.get("load"), past.get("solar")
    zeros = np.zeros(horizon)
    stride = ticks_per_hour(env)
    now = 0.0
    if load is not None and t > 0:
        now = float(env.ctx.profiles["load"][t - 1] - load[t - 1])
    return np.concatenate([
        np.asarray(rule, np.float64).reshape(-1), [np.sin(angle), np.cos(angle)],
        _ahead(price, t, horizon, stride) / PRICE_UNIT if price is not None else zeros,
        _ahead(load, t, horizon, stride) - 1.0 if load is not None else zeros,
        _ahead(solar, t, horizon, stride) if solar is not None else zeros,
        [now]]).astype(np.float32)


class RuleResidual(BaseParallelWrapper):
    """Actions are corrections to each agent's rule; observations carry :func:`features` (module doc).

    ``scale``: the correction is ``scale·a`` for an action ``a`` in [−1, 1] (normalised actions),
    added to the rule's action and clipped to the action bounds.
    """

    def __init__(self, env: Any, scale: float = 1.0, horizon: int = HORIZON) -> None:
        super().__init__(env)
        self.scale = float(scale)
        self.horizon = int(horizon)
        self._past: dict[str, np.ndarray | None] = {}
        self._rule: dict[str, np.ndarray] = {}
        self._spaces = {}
        for agent_id in env.possible_agents:
            obs, act = env.observation_space(agent_id), env.action_space(agent_id)
            if not isinstance(act, gymnasium.spaces.Box) or not np.allclose(act.low, -1) or not np.allclose(act.high, 1):
                raise ValueError(f"RuleResidual needs normalised Box actions; {agent_id} has {act}")
            n = feature_size(int(np.prod(act.shape)), self.horizon)
            bound = np.full(n, 5.0, np.float32)  # |features| ≤ 5: prices up to 500 $/MWh, load within ±5 pu
            self._spaces[agent_id] = gymnasium.spaces.Box(np.concatenate([obs.low.reshape(-1), -bound]),
                                                          np.concatenate([obs.high.reshape(-1), bound]),
                                                          dtype=np.float32)

    def observation_space(self, agent: str) -> gymnasium.spaces.Space:
        return self._spaces[agent]

    def observe(self, observations: dict[str, Any]) -> dict[str, np.ndarray]:
        """The env's ``observations`` extended by the features; remembers each agent's rule action."""
        if self.env.tick == 0:  # a new day, however it was reset
            self._past = {role: yesterday(self.env, role) for role in ("load", "solar")}
        out = {}
        for agent_id, obs in observations.items():
            self._rule[agent_id] = np.asarray(self.env.rule_action(agent_id), np.float32)
            extra = features(self.env, self._rule[agent_id], self._past, self.horizon)
            space = self._spaces[agent_id]
            out[agent_id] = np.clip(np.concatenate([np.asarray(obs, np.float32).reshape(-1), extra]),
                                    space.low, space.high)
        return out

    def compose(self, actions: dict[str, Any]) -> dict[str, np.ndarray]:
        """The env actions: each agent's rule plus ``scale`` × its correction, clipped to [−1, 1]."""
        return {a: np.clip(self._rule[a] + self.scale * np.asarray(x, np.float32).reshape(self._rule[a].shape),
                           -1.0, 1.0).astype(np.float32) for a, x in actions.items()}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        obs, infos = self.env.reset(seed=seed, options=options)
        return self.observe(obs), infos

    def step(self, actions: dict[str, Any]) -> tuple:
        obs, rewards, terms, truncs, infos = self.env.step(self.compose(actions))
        return self.observe(obs), rewards, terms, truncs, infos

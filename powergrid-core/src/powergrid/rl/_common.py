"""What the RL adapters share: building the environment and accumulating between an agent's actions."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import gymnasium

from powergrid.env import COMMON_INFO, MultiAgentPowerGridEnv

#: info keys summed over the ticks between two actions of an agent (``penalty``: the failed flows' charges in the reward)
SUMMED = ("cost", "safety", "penalty", "projection")


def missing_extra(err: ImportError, message: str) -> ImportError:
    """The error an adapter raises when importing its library failed with ``err``: ``message`` (the extra to install)
    and the module not found, as a ``ModuleNotFoundError`` naming it when ``err`` is one, so that
    ``pytest.importorskip`` (which skips on that class only, pytest 9) and a caller's ``except ModuleNotFoundError`` see
    a missing extra; an ``ImportError`` when the library is there but fails to import."""
    if isinstance(err, ModuleNotFoundError):
        return ModuleNotFoundError(f"{message} (no module named {err.name!r})", name=err.name, path=err.path)
    return ImportError(f"{message} ({err})", name=err.name, path=err.path)


def make_env(scenario: Any, *, solver: str | None = None) -> MultiAgentPowerGridEnv:
    """An environment from a YAML path, a mapping, an ``EnvConfig`` or an environment (returned as is)."""
    if isinstance(scenario, MultiAgentPowerGridEnv):
        return scenario
    if scenario is None:
        raise ValueError("no scenario: pass a YAML path or a mapping as config['scenario']")
    if isinstance(scenario, (str, os.PathLike)):
        scenario = os.fspath(scenario)
    return MultiAgentPowerGridEnv.from_config(scenario, solver=solver)


def zero_based(space: gymnasium.spaces.Space) -> tuple[gymnasium.spaces.Space, int]:
    """``space`` as Stable-Baselines3 and RLlib sample it, and what to add to their actions: a ``Discrete`` that
    starts at ``s ≠ 0`` (a tap changer's positions) as ``Discrete(n)`` and ``s`` (they sample ``0 … n − 1``); any
    other space as it is, and 0."""
    if isinstance(space, gymnasium.spaces.Discrete) and space.start != 0:
        return gymnasium.spaces.Discrete(int(space.n)), int(space.start)
    return space, 0


#: how far apart the seeds of two RLlib env runners are (:func:`runner_offset`)
RUNNER_STRIDE = 1000


def runner_offset(worker_index: int | None, vector_index: int | None = 0) -> int:
    """What copy ``vector_index`` of RLlib env runner ``worker_index`` adds to every seed it plays (the scenario's
    ``seed`` and those of ``reset(seed=...)``): ``RUNNER_STRIDE·worker_index + vector_index``, 0 outside RLlib.

    RLlib 2.60's ``MultiAgentEnvRunner`` resets every env it builds with ``seed=42`` (its env check) and then with
    ``seed=None`` unless ``config.seed`` is set, so without the offset every runner would play the same episodes."""
    worker, vector = worker_index or 0, vector_index or 0
    if worker < 0 or not 0 <= vector < RUNNER_STRIDE:
        raise ValueError(f"worker_index {worker} / vector_index {vector}: expected worker_index ≥ 0 and "
                         f"0 ≤ vector_index < {RUNNER_STRIDE}")
    return RUNNER_STRIDE * worker + vector


def offset_default_seed(env: MultiAgentPowerGridEnv, offset: int) -> None:
    """Shift the default stream (that of ``reset()`` without a seed) of ``env``'s scenario ``seed`` by ``offset``:
    the stream of ``reset(seed=seed + offset)``. Nothing without a scenario seed (each env draws OS entropy)."""
    if offset and env.config.seed is not None:
        env._seed(env.config.seed + offset)


class Accumulator:
    """Per agent: reward, cost, safety, penalty and projection summed since the agent last received them, whether
    every flow of those ticks converged and the first non-empty ``failure`` text among them; and the env's own entry
    ``infos["__common__"]`` (``{key: {device agent id: records}}``) of the ticks since it was last popped, each
    device's records in tick order.

    An agent that acts every ``period`` ticks is told, when it next acts, the sum of
    the per-tick rewards (and costs, safety, penalties, projections) of the ticks its action was held for.
    """

    def __init__(self, agents: Iterable[str]) -> None:
        self.agents = list(agents)
        self.clear()

    def clear(self) -> None:
        self.reward = dict.fromkeys(self.agents, 0.0)
        self.sums = {a: dict.fromkeys(SUMMED, 0.0) for a in self.agents}
        self.ticks = dict.fromkeys(self.agents, 0)
        self.converged = dict.fromkeys(self.agents, True)
        self.failure = dict.fromkeys(self.agents, "")
        self.common: dict[str, dict[str, list]] = {}

    def add(self, rewards: Mapping[str, float], infos: Mapping[str, Mapping[str, Any]]) -> None:
        """One environment tick: add every agent's reward and info."""
        for a in self.agents:
            self.reward[a] += float(rewards.get(a, 0.0))
            info = infos.get(a, {})
            sums = self.sums[a]
            for key in SUMMED:
                sums[key] += float(info.get(key, 0.0))
            self.ticks[a] += 1
            self.converged[a] = self.converged[a] and bool(info.get("converged", True))
            self.failure[a] = self.failure[a] or str(info.get("failure", ""))
        self.hold_common(infos)

    def hold_common(self, infos: Mapping[str, Any]) -> None:
        """Hold the records of ``infos["__common__"]`` (a reset's or a tick's) until :meth:`pop_common`."""
        common = infos.get(COMMON_INFO)
        if common:  # only at a tick with records of devices outside every learned agent
            for key, by_device in common.items():
                held = self.common.setdefault(key, {})
                for device, records in by_device.items():
                    held[device] = held.get(device, []) + records

    def pop_common(self, info: dict[str, Any]) -> dict[str, dict[str, list]]:
        """The ``infos["__common__"]`` records held since the last pop (empty: none), also put in
        ``info["__common__"]`` when there are some; resets."""
        common, self.common = self.common, {}
        if common:
            info[COMMON_INFO] = common
        return common

    @staticmethod
    def unsummed(info: Mapping[str, Any]) -> dict[str, Any]:
        """``info`` for an observation that delivers nothing (an agent's first): the summed keys 0, ``ticks`` 0."""
        return dict(info, **dict.fromkeys(SUMMED, 0.0), ticks=0)

    def pop(self, agent: str, info: Mapping[str, Any]) -> tuple[float, dict[str, Any]]:
        """The agent's summed reward and its info (``info`` with the summed keys, ``ticks``, ``converged`` and the
        first ``failure`` of the ticks summed); resets."""
        out = dict(info)
        out.update(self.sums[agent])
        out["ticks"] = self.ticks[agent]
        out["converged"] = self.converged[agent]
        out["failure"] = self.failure[agent]
        reward = self.reward[agent]
        self.reward[agent] = 0.0
        self.sums[agent] = dict.fromkeys(SUMMED, 0.0)
        self.ticks[agent] = 0
        self.converged[agent] = True
        self.failure[agent] = ""
        return reward, out

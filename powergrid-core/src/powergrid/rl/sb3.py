"""A Stable-Baselines3 ``VecEnv`` over :class:`~powergrid.vector.VectorPowerGridEnv`: one slot per (copy, agent).

The layout of SuperSuit's ``concat_vec_envs_v1(pettingzoo_env_to_vec_env_v1(env), n)``: slot
``copy · len(agents) + k`` is learned agent ``possible_agents[k]`` of copy ``copy``, so one
SB3 policy is shared by every agent (parameter sharing) and trained on all copies, while the
copies step together (their power flows in one batched call from :data:`powergrid.vector.BATCH_FROM` copies on).
Every learned agent needs the same observation and action space (as for SuperSuit). A finished copy is reset at once: its
slots report ``done`` with ``infos[slot]["terminal_observation"]`` and
``"TimeLimit.truncated"`` (SB3's conventions) and return the new episode's first observation, its reset's infos in
``reset_infos`` (as after :meth:`~PowerGridVecEnv.reset`). The records of a copy's devices with no learned agent at or
above them (its ``infos["__common__"]``, e.g. a rule-driven meter's ``comm`` faults) are in every slot of the copy, as
``infos[slot]["__common__"]`` (one dict shared by the copy's slots: count it once per copy, at slot
``copy · len(agents)``), only at a step with some. SuperSuit's ``pettingzoo_env_to_vec_env_v1`` keeps only the agents'
infos and drops that entry.

Every agent's action is sent at every step; an agent that is not due (multi-rate) has its
action ignored, as in the PettingZoo API (a ``UserWarning`` at construction names such agents). A ``Discrete``
action space that starts at ``s ≠ 0`` (a tap changer's positions) is exposed from 0, which is all SB3 samples:
action ``k`` is the agents' ``s + k``. Needs the ``sb3`` extra.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium
import numpy as np

from powergrid.clock import format_duration
from powergrid.config import EnvConfig
from powergrid.env import COMMON_INFO
from powergrid.errors import ActionError
from powergrid.rl._common import missing_extra, zero_based
from powergrid.vector import VectorPowerGridEnv

try:
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn
except ImportError as err:  # tests/rl/test_missing_extras.py
    raise missing_extra(err, 'powergrid.rl.sb3 needs stable-baselines3: pip install "powergrid-core[sb3]"') from err

__all__ = ["PowerGridVecEnv"]


class PowerGridVecEnv(VecEnv):
    """``n`` copies of a scenario × its learned agents as ``n · len(agents)`` SB3 slots.

    ``scenario`` is a :class:`VectorPowerGridEnv` or anything it takes (a YAML path, a mapping,
    an ``EnvConfig``; then ``n`` copies are built, with ``kwargs`` for each copy).
    """

    def __init__(self, scenario: VectorPowerGridEnv | str | os.PathLike[str] | EnvConfig | Mapping[str, Any],
                 n: int = 1, **kwargs: Any) -> None:
        venv = scenario if isinstance(scenario, VectorPowerGridEnv) else VectorPowerGridEnv(scenario, n, **kwargs)
        agents = venv.possible_agents
        if not agents:
            raise ValueError("PowerGridVecEnv needs at least one learned agent")
        first = agents[0]
        for a in agents[1:]:
            for kind, space in (("observation", venv.observation_space), ("action", venv.action_space)):
                if space(a) != space(first):
                    mine, theirs = _brief(space(a), space(first))
                    raise ValueError(f"PowerGridVecEnv shares one policy, so every learned agent needs the same "
                                     f"spaces: the {kind} space of {a!r} ({mine}) differs from that of {first!r} "
                                     f"({theirs}); train agents whose spaces differ with RLlibPowerGridEnv (a module "
                                     f"per agent) or SingleAgentView")
        _warn_per_tick(venv)
        self.venv = venv
        self.agents = list(agents)
        action_space, start = zero_based(venv.action_space(first))
        #: added to SB3's actions of a ``Discrete`` space that starts elsewhere than 0 (SB3 samples ``0 … n − 1``)
        self.action_start = start
        super().__init__(venv.num_envs * len(agents), venv.observation_space(first), action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        seed = self._seeds[0]
        obs, infos = self.venv.reset_arrays(seed=seed, options=self._options[0] or None)
        self.reset_infos = [slot for info in infos for slot in self._slots(info)]
        self._reset_seeds()
        self._reset_options()
        return obs.reshape(self.num_envs, *self.observation_space.shape)

    def step_async(self, actions: np.ndarray) -> None:
        """Take one action per slot: a numeric array of shape ``(num_envs, *action_space.shape)``."""
        actions = np.asarray(actions)
        expected = (self.num_envs, *self.action_space.shape)
        if actions.shape != expected or actions.dtype.kind not in "iuf":
            raise ActionError(f"PowerGridVecEnv: expected numeric actions of shape {expected} (one per slot: "
                              f"{self.venv.num_envs} copies × agents {self.agents}), got {actions.dtype} array of "
                              f"shape {actions.shape}")
        self._actions = actions + self.action_start if self.action_start else actions

    def step_wait(self) -> VecEnvStepReturn:
        assert self._actions is not None, "step_async first"
        n_agents = len(self.agents)
        acts = self._actions.reshape(self.venv.num_envs, n_agents, *self._actions.shape[1:])
        out = self.venv.step_arrays({a: acts[:, k] for k, a in enumerate(self.agents)})
        self._actions = None
        slot_infos: list[dict[str, Any]] = []
        for copy, (info, terminated, truncated) in enumerate(zip(out.infos, out.terminated.tolist(),
                                                                 out.truncated.tolist())):
            final = info.get("final_observation")
            slots = self._slots(info)
            if final is not None:
                self.reset_infos[copy * n_agents:(copy + 1) * n_agents] = self._slots(info["reset_info"])
                for slot, a in zip(slots, self.agents):
                    slot["terminal_observation"] = final[a]
                    slot["TimeLimit.truncated"] = truncated and not terminated
            slot_infos += slots
        # (copies, agents) rows in slot order: copy-major
        return (out.observations.reshape(self.num_envs, *self.observation_space.shape),
                out.rewards.reshape(-1).astype(np.float32), np.repeat(out.terminated | out.truncated, n_agents),
                slot_infos)

    def _slots(self, info: Mapping[str, Any]) -> list[dict[str, Any]]:
        """A copy's infos as its slots' info dicts, each with the copy's ``infos["__common__"]`` (one dict) if any."""
        common = info.get(COMMON_INFO)
        if common is None:
            return [dict(info[a]) for a in self.agents]
        return [dict(info[a], **{COMMON_INFO: common}) for a in self.agents]

    def close(self) -> None:
        self.venv.close()

    def _indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The attribute of the copy behind each slot (``render_mode`` for SB3's checks)."""
        n_agents = len(self.agents)
        return [getattr(self.venv.envs[i // n_agents], attr_name) for i in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        n_agents = len(self.agents)
        for i in self._indices(indices):
            setattr(self.venv.envs[i // n_agents], attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
                   ) -> list[Any]:
        """Call the method once on each copy behind ``indices`` (its agents' slots share it) and give each slot
        its copy's result."""
        n_agents = len(self.agents)
        copies = [i // n_agents for i in self._indices(indices)]
        results = {c: getattr(self.venv.envs[c], method_name)(*method_args, **method_kwargs) for c in dict.fromkeys(copies)}
        return [results[c] for c in copies]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]


def _brief(space: Any, other: Any) -> tuple[str, str]:
    """``space`` and ``other``, which differ, each in a few words: a Box's bounds would print as hundreds of numbers,
    so a Box is its shape and dtype, and where both are equal, the first bounds that differ."""
    if not (isinstance(space, gymnasium.spaces.Box) and isinstance(other, gymnasium.spaces.Box)):
        return str(space), str(other)
    brief = [f"Box{x.shape} {x.dtype}" for x in (space, other)]
    if brief[0] != brief[1]:
        return brief[0], brief[1]
    low, high, other_low, other_high = (np.ravel(b) for b in (space.low, space.high, other.low, other.high))
    i = int(np.flatnonzero((low != other_low) | (high != other_high))[0])
    return f"{brief[0]}, entry {i} in [{low[i]:g}, {high[i]:g}]", f"in [{other_low[i]:g}, {other_high[i]:g}]"


def _warn_per_tick(venv: VectorPowerGridEnv) -> None:
    """A ``UserWarning`` naming the learned agents that do not act at every tick (a longer period or an offset; events
    only add actions)."""
    env = venv.envs[0]
    tick = env.tick_s
    configs = {a.id: a for a in env.config.agents}
    slow = []
    for aid in venv.possible_agents:
        a = configs[aid]
        if a.period_s == tick and not a.offset_s:
            continue
        when = f"every {format_duration(a.period_s)}" + (f", offset {format_duration(a.offset_s)}" if a.offset_s else "")
        slow.append(f"{aid!r} ({when}{' and on events' if a.events else ''}, ticks of {format_duration(tick)})")
    if slow:
        warnings.warn(f"PowerGridVecEnv gives SB3 a transition from every slot at every tick, but the learned agents "
                      f"{', '.join(slow)} do not act at every tick: their actions at the other ticks are ignored "
                      f"(info['acting'] is False there) and rewards, advantages and discounting are per tick. For "
                      f"per-decision training use RLlibPowerGridEnv or SingleAgentView (docs/rl.md, Multi-rate agents)",
                      UserWarning, stacklevel=3)

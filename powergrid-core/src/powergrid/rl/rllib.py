"""RLlib (new API stack) multi-agent environment over :class:`~powergrid.env.MultiAgentPowerGridEnv`.

Multi-rate agents use RLlib's native asynchronous semantics: the observation dict
returned by ``reset``/``step`` holds only the agents acting at the current tick
(at their period or on an event: ``env.acting_agents()``); the rewards of an agent
between two of its actions are summed and delivered
when it next appears (or at the end of the episode, when every agent gets a final
observation). Ticks at which no learned agent is due are stepped internally
(agents hold their last action), so every RLlib step asks at least one agent to act.
The ticks before an agent's first action (an ``offset``) are delivered with its first action's reward, as in
:class:`~powergrid.rl.gym.SingleAgentView`: its first observation carries reward 0 and ``ticks`` 0, since RLlib
keeps no reward that comes with an agent's first observation. An agent whose episode ends before its first action
has no transition; RLlib records nothing of it.

A ``Discrete`` action space that starts at ``s ≠ 0`` (a tap changer's positions) is exposed from 0, as RLlib samples
it: action ``k`` is the environment's ``s + k``. In env runner ``w`` every seed is shifted by ``1000·w`` (plus the
``EnvContext``'s ``vector_index``), so runners do not replay one another's episodes.

``infos[agent]`` carries ``cost`` ($), ``safety`` (≥ 0) and ``penalty`` (the failed flows' charges) summed over the
same ticks as the reward, ``ticks`` (how many), ``converged`` (every power flow of those
ticks converged) and the environment's other info keys from the last tick.
The records of devices with no learned agent at or above them (e.g. a rule-driven meter's ``comm`` faults) of the
ticks a step ran are in ``infos["__common__"]`` (RLlib's key for infos of no agent; ``{"comm": {device agent id:
records}}``, records in tick order), only at a step with some. RLlib 2.x's ``MultiAgentEpisode`` drops that key
(ray-project/ray#58668): ``config.callbacks(on_episode_step=keep_common_infos)`` keeps them in
``episode.custom_data["__common__"]``.

Needs the ``rllib`` extra: ``pip install "powergrid-core[rllib]"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from powergrid.env import COMMON_INFO
from powergrid.rl._common import Accumulator, make_env, missing_extra, offset_default_seed, runner_offset, zero_based

try:
    from ray.rllib.env.multi_agent_env import MultiAgentEnv
except ImportError as err:  # tests/rl/test_missing_extras.py
    raise missing_extra(err, 'powergrid.rl.rllib needs ray[rllib]: pip install "powergrid-core[rllib]"') from err

__all__ = ["RLlibPowerGridEnv", "keep_common_infos", "module_per_agent", "register"]


class RLlibPowerGridEnv(MultiAgentEnv):
    """An RLlib ``MultiAgentEnv`` built from ``config = {"scenario": path_or_mapping, "solver": name?}``.

    ``scenario`` is a YAML path (make it absolute: RLlib builds the environment in
    its worker processes), a mapping with the YAML's structure, or an ``EnvConfig``.
    Agent ids, spaces and per-tick rewards are those of the PettingZoo environment
    (``self.env``); only learned agents are RLlib agents.

    Built from RLlib's ``EnvContext``, every seed it plays is shifted by :attr:`seed_offset`
    ``= 1000·worker_index + vector_index``: the scenario's ``seed`` (the stream of ``reset()`` without a seed) and
    ``reset(seed=s)``'s, which plays a single environment's ``reset(seed=s + seed_offset)``. So env runners do not
    replay one another's episodes, not even after RLlib's env check resets them all with ``seed=42``.
    """

    metadata = {"render_modes": []}

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        #: added to every seed (see the class docstring); 0 unless built from an ``EnvContext``
        self.seed_offset = runner_offset(getattr(config, "worker_index", 0), getattr(config, "vector_index", 0))
        config = dict(config or {})
        self.env = make_env(config.get("scenario"), solver=config.get("solver"))
        offset_default_seed(self.env, self.seed_offset)
        super().__init__()
        env = self.env
        self.possible_agents = list(env.possible_agents)
        self.agents = list(self.possible_agents)
        self.observation_spaces = {a: env.observation_space(a) for a in self.possible_agents}
        spaces = {a: zero_based(env.action_space(a)) for a in self.possible_agents}
        self.action_spaces = {a: space for a, (space, _) in spaces.items()}
        self._starts = {a: start for a, (_, start) in spaces.items() if start}
        self._acc = Accumulator(self.possible_agents)
        self._seen: set[str] = set()  # the agents that have had their first observation this episode
        #: the ``infos["__common__"]`` entry of the last ``reset``/``step`` (empty: none), for callbacks
        #: (:func:`keep_common_infos`): RLlib's ``MultiAgentEpisode`` does not keep that key
        self.common_info: dict[str, dict[str, list]] = {}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            seed = seed + self.seed_offset
        observations, infos = self.env.reset(seed=seed, options=options)
        self._acc.clear()
        self._acc.hold_common(infos)
        self.agents = list(self.possible_agents)
        due = self.env.acting_agents()
        self._seen = set(due)
        out = {a: dict(infos[a], ticks=0) for a in due}
        self.common_info = self._acc.pop_common(out)
        return {a: observations[a] for a in due}, out

    def env_actions(self, action_dict: Mapping[str, Any]) -> dict[str, Any]:
        """RLlib's actions as the environment takes them: ``s`` added to an action of a ``Discrete`` space that starts
        at ``s ≠ 0`` (RLlib samples ``0 … n − 1``; :attr:`action_spaces` start at 0)."""
        actions = dict(action_dict)
        for a, start in self._starts.items():
            if a in actions:
                actions[a] = actions[a] + start
        return actions

    def step(self, action_dict: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        out = self.advance(self.env.step(self.env_actions(action_dict)))
        while out is None:  # agents that are not due hold their last action
            out = self.advance(self.env.step({}))
        return out

    def advance(self, tick: tuple[dict, dict, dict, dict, dict]) -> tuple[dict, dict, dict, dict, dict] | None:
        """Take one tick's PettingZoo step result; RLlib's step result once an agent is due or the episode
        ended, else None (step the environment again with no actions)."""
        observations, rewards, terminations, truncations, infos = tick
        self._acc.add(rewards, infos)
        terminated = all(terminations.values()) if terminations else False
        truncated = (not self.env.agents or all(truncations.values())) and not terminated
        due = self.env.acting_agents()
        if not (terminated or truncated or due):
            return None
        done = terminated or truncated
        ready = self.possible_agents if done else due
        obs, rew, info = {}, {}, {}
        for a in ready:
            obs[a] = observations[a]
            if done or a in self._seen:
                rew[a], info[a] = self._acc.pop(a, infos[a])
            else:  # its first observation: the ticks so far go with its first action's reward
                rew[a], info[a] = 0.0, self._acc.unsummed(infos[a])
                self._seen.add(a)
        terminateds = {a: bool(terminations.get(a, False)) or terminated for a in ready}
        truncateds = {a: bool(truncations.get(a, False)) or truncated for a in ready}
        terminateds["__all__"] = terminated
        truncateds["__all__"] = truncated
        if done:
            self.agents = []
        self.common_info = self._acc.pop_common(info)
        return obs, rew, terminateds, truncateds, info

    def render(self) -> None:
        return None

    def close(self) -> None:
        self.env.close()


def register(name: str = "powergrid") -> str:
    """Register :class:`RLlibPowerGridEnv` with Ray Tune as ``name`` (for ``config.environment(name, env_config=...)``)."""
    from ray.tune.registry import register_env

    register_env(name, RLlibPowerGridEnv)
    return name


def module_per_agent(agent_id: str, episode: Any = None, **kwargs: Any) -> str:
    """``policy_mapping_fn`` giving every agent its own RLModule (named after the agent).

    Importable, so Ray pickles it by reference into its worker processes.
    """
    return agent_id


def keep_common_infos(*, episode: Any, env: Any, env_index: int, **kwargs: Any) -> None:
    """``on_episode_step`` callback (``config.callbacks(on_episode_step=keep_common_infos)``) appending each step's
    ``infos["__common__"]`` to ``episode.custom_data["__common__"]`` as ``(episode.env_t, entry)`` pairs (only steps with
    one). ``env`` is the env runner's vector env; copy ``env_index`` is an :class:`RLlibPowerGridEnv`."""
    common = env.envs[env_index].unwrapped.common_info
    if common:
        episode.custom_data.setdefault(COMMON_INFO, []).append((episode.env_t, common))

"""A vectorized environment: N independent copies of one scenario stepped together.

:class:`VectorPowerGridEnv` holds ``n`` :class:`~powergrid.env.MultiAgentPowerGridEnv`
copies (each its own network, solver and random streams) and exposes a batched
dict-of-arrays API keyed by the learned agents' ids::

    venv = VectorPowerGridEnv("configs/ieee34_3mg.yaml", n=8)
    obs, infos = venv.reset(seed=0)          # obs["mg1"].shape == (8, obs_dim)
    actions = {a: np.stack([venv.action_space(a).sample() for _ in range(8)]) for a in venv.possible_agents}
    obs, rewards, terminations, truncations, infos = venv.step(actions)
    # rewards["mg1"].shape == (8,); infos is a list of the 8 copies' per-agent info dicts

``reset(seed)`` seeds copy ``i`` with ``seed + i`` (``None`` keeps each copy's own stream; a scenario's top-level
``seed``, the default of ``reset()`` without one, is ``seed + i`` for copy ``i``).
A copy whose episode ends is **reset automatically** inside ``step``: the observation
it returns is the first one of the new episode, and that copy's ``infos[i]`` holds
``"final_observation"`` (per-agent observations at the end of the finished episode) and
``"final_info"`` (its per-agent infos). The auto-reset draws from the copy's own
random stream, exactly like calling ``reset()`` without a seed on a standalone env.
:meth:`~VectorPowerGridEnv.step_arrays` and :meth:`~VectorPowerGridEnv.reset_arrays` give the same as arrays
(:class:`VectorStep`: observations ``(n, obs_size)``, each copy's agents one after another, rewards ``(n, agents)``,
terminated and truncated ``(n,)``), which each copy writes its row of.

One step runs each copy's step up to its power flow (actions, protocols, device physics,
injections), then the flows of all copies, including the regulators' control rounds, then
each copy finishes its step from its flow. The flows are solved in **one batched call**
(:class:`~powergrid.solvers.batched.BatchedSolver`; the relays read each copy's flow and the copies whose taps
moved are re-solved together; results are derived once, at the final taps) or by each copy on its own (its
:class:`~powergrid.solvers.fast.FastSolver`: lightsim2grid's Newton–Raphson). Below
:data:`~powergrid.solvers.batched.FIXED_POINT_FROM` copies the batched call keeps each copy's own
Newton–Raphson and does the rest for all copies at once (bus powers, relays' readings, results: the same floats,
so the copies equal single envs bit for bit); from there it runs a Z-bus fixed point over all copies (results
within solver tolerance), with numpy's BLAS held to one thread (:mod:`powergrid.solvers.blas_threads`, through
threadpoolctl: its threads made the small batched products 40–240× slower on a busy 2-core machine).
``batched_flows=None`` (the default) batches from :data:`BATCH_FROM` copies on, where it pays (measured in
docs/performance-history.md, *Since 4da8c77*); for the fixed point with a BLAS whose threads it cannot hold, only
when ``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS`` is 1.
Everything runs in this process; run one vector env per worker process to use several
cores. Copies whose solver is not a :class:`~powergrid.solvers.fast.FastSolver`
(``solver="pandapower"``) and a single copy always solve one by one.

Adapters: :class:`powergrid.rl.sb3.PowerGridVecEnv` (a Stable-Baselines3 ``VecEnv``, one slot
per copy and agent) and :class:`powergrid.rl.rllib_vector.VectorEnvRunner` (RLlib).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import gymnasium
import numpy as np

from powergrid.config import EnvConfig
from powergrid.controllers import TapControl, TapReading
from powergrid.env import PICKLE_FORMAT, MultiAgentPowerGridEnv, check_pickle_format
from powergrid.errors import ActionError, ConfigError
from powergrid.solvers import blas_threads
from powergrid.solvers.base import PowerFlowResult
from powergrid.solvers.batched import FIXED_POINT_FROM, BatchedSolver
from powergrid.solvers.fast import FastSolver

#: the fewest copies whose flows ``batched_flows=None`` solves in one batched call
BATCH_FROM = 8

#: One copy's step: observations, rewards, terminations, truncations and infos (dicts by agent).
StepTuple = tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool], dict[str, Any]]


class VectorStep(NamedTuple):
    """One step of every copy as arrays, row ``i`` for copy ``i`` (a finished copy already reset)."""

    observations: np.ndarray
    """``(n, obs_size)`` float32: each copy's learned agents' observations one after another (``possible_agents``
    order), of the new episode for a copy that reset."""
    rewards: np.ndarray
    """``(n, agents)`` float64: each learned agent's reward."""
    terminated: np.ndarray
    """``(n,)`` bool: the copy's episode terminated (for all its agents)."""
    truncated: np.ndarray
    """``(n,)`` bool: the copy's episode reached its time limit (for all its agents)."""
    infos: list[dict[str, Any]]
    """Each copy's per-agent infos; a copy that reset adds ``final_observation``, ``final_info`` and ``reset_info``."""


class VectorPowerGridEnv:
    """``n`` copies of one scenario with batched ``(n, ...)`` observations, actions and rewards.

    ``batched_flows``: True solves the copies' flows in one batched call, False each on its own, None (default)
    batched from :data:`BATCH_FROM` copies on (from :data:`~powergrid.solvers.batched.FIXED_POINT_FROM` on, when
    numpy's BLAS runs the fixed point on one thread).
    """

    def __init__(self, config_or_path: str | os.PathLike[str] | EnvConfig | Mapping[str, Any], n: int,
                 batched_flows: bool | None = None, **kwargs: Any) -> None:
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
        first = MultiAgentPowerGridEnv(config, **kwargs)
        if n > 1 and (shared := [a.id for a in first.scenario.device_agents if type(a.device).drives_equipment]):
            raise ConfigError(f"{n} copies of a scenario whose devices drive real equipment ({', '.join(map(repr, shared))}): "
                              f"every copy would write the same setpoint and measure the same P; expected n = 1 "
                              f"(one environment per piece of equipment)")
        #: the copies; ``envs[i]`` is an ordinary PettingZoo parallel env
        self.envs = [first, *(MultiAgentPowerGridEnv(config, **kwargs) for _ in range(n - 1))]
        if config.seed is not None:  # the scenario's default seed: copy i's is seed + i, as reset(seed) gives
            for i, env in enumerate(self.envs[1:], 1):
                env._seed(config.seed + i)
        self.possible_agents = list(first.possible_agents)
        self._obs_columns = dict(zip(self.possible_agents, first._obs_slices))  # in a copy's flat observations
        self._obs_size = int(first._obs_starts[-1])
        #: the ``(n, *action shape)`` batch of each Box action (its rows need no further check)
        self._batch_shapes = {a: (n, *shape) for a, shape in first._action_shapes.items() if shape is not None}
        self._requested = batched_flows
        self._batch = self._batched_solver()

    def _batched_solver(self, kept: BatchedSolver | None = None) -> BatchedSolver | None:
        """The batched solver over the copies' fast solvers, as ``batched_flows`` asks in this process (None: each
        copy solves its own): ``kept`` (an unpickled one, its factored state as the original's) or a new one; sets
        :attr:`batched_flows`."""
        batched = self._requested
        if batched is None:
            batched = self.num_envs >= BATCH_FROM and (self.num_envs < FIXED_POINT_FROM or blas_threads.controllable()
                                                       or any(os.environ.get(v) == "1"
                                                              for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")))
        solvers = [env.solver for env in self.envs]
        #: whether the copies' flows are solved in one batched call
        self.batched_flows = bool(batched) and len(solvers) > 1 and all(isinstance(s, FastSolver) for s in solvers)
        if not self.batched_flows:
            return None
        if kept is None:
            return BatchedSolver(solvers, fixed_point_from=FIXED_POINT_FROM)
        kept.solvers = solvers
        return kept

    def __getstate__(self) -> dict[str, Any]:
        batch = self._batch
        if batch is not None:  # pickled without its copies (each env pickles its own solver), given them back on load
            batch = copy.copy(batch)
            batch.solvers = []
        return {**self.__dict__, "_batch": batch, "_pickle_format": PICKLE_FORMAT}

    def __setstate__(self, state: dict[str, Any]) -> None:
        check_pickle_format(type(self), state, "_pickle_format")  # (its copies have checked their own: unpickled first)
        self.__dict__.update(state)
        del self._pickle_format
        self._batch = self._batched_solver(self._batch)  # batched or not: decided again in this process

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
        obs, infos = self.reset_arrays(seed, options)
        return self._by_agent(obs), infos

    def reset_arrays(self, seed: int | None = None, options: dict[str, Any] | None = None
                     ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """:meth:`reset` with the observations in one ``(n, obs_size)`` array (as :attr:`VectorStep.observations`)."""
        obs = np.empty((self.num_envs, self._obs_size), np.float32)
        infos = [env._reset(None if seed is None else seed + i, options, obs[i])[1] for i, env in enumerate(self.envs)]
        return obs, infos

    def step(self, actions: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray],
                                                        dict[str, np.ndarray], dict[str, np.ndarray],
                                                        list[dict[str, Any]]]:
        """Step every copy with row ``i`` of each ``actions[agent]`` (a batch of ``n`` rows per agent sent; an agent not
        sent leaves its devices at their defaults, as in a single env); finished copies are reset.

        Returns ``obs {agent: (n, obs_dim) float32}``, ``rewards {agent: (n,) float64}``,
        ``terminations`` and ``truncations`` ``{agent: (n,) bool}`` and ``infos`` (one dict per copy).
        """
        out = self.step_arrays(actions)
        agents = self.possible_agents
        rewards = {a: out.rewards[:, k].copy() for k, a in enumerate(agents)}
        return (self._by_agent(out.observations), rewards, {a: out.terminated.copy() for a in agents},
                {a: out.truncated.copy() for a in agents}, out.infos)

    def step_arrays(self, actions: Mapping[str, Any]) -> VectorStep:
        """:meth:`step` with each copy's results in rows of ``(n, ...)`` arrays (see :class:`VectorStep`)."""
        n, envs = self.num_envs, self.envs
        rows = self._action_rows(actions)
        out = VectorStep(np.empty((n, self._obs_size), np.float32), np.empty((n, len(self.possible_agents))),
                         np.empty(n, bool), np.empty(n, bool), [])
        obs, rewards, terminated, truncated, infos = out
        flows = self._up_to_flows(range(n), rows)
        for i, env in enumerate(envs):
            _, rewards[i], terminated[i], truncated[i], info = env._after_flow(flows.get(i), obs[i])
            if not env.agents:  # the episode ended: auto-reset, keep the final step's data in infos
                final = env._obs_dict(obs[i].copy())
                info = {**info, "final_observation": final, "final_info": info}
                info["reset_info"] = env._reset(None, None, obs[i])[1]
            infos.append(info)
        return out

    def step_copies(self, copies: Iterable[int], actions: Sequence[Mapping[str, Any]]) -> list[StepTuple]:
        """Step copies ``copies`` (``actions[k]`` for copy ``copies[k]``, as ``MultiAgentPowerGridEnv.step`` takes
        it) with their power flows solved together; no auto-reset. Returns each copy's step tuple, in order."""
        envs, idx = self.envs, list(copies)
        for i, a in zip(idx, actions):  # every copy's actions checked before any copy moves
            envs[i]._check_actions(a)
        flows = self._up_to_flows(idx, actions)
        return [envs[i]._step_dicts(*envs[i]._after_flow(flows.get(i))) for i in idx]

    def _up_to_flows(self, copies: Iterable[int], actions: Iterable[Mapping[str, Any]]) -> dict[int, PowerFlowResult]:
        """Each copy's step up to its flow (checked ``actions``, in the order of ``copies``), then the flows of those
        at a physics tick (:meth:`_flows`), by copy."""
        envs = self.envs
        physics = [(i, envs[i]._before_flow(a)) for i, a in zip(copies, actions)]
        return self._flows([(i, k) for i, k in physics if k is not None])

    def _action_rows(self, actions: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """Each copy's actions ``{agent: actions[agent][i]}``, checked as each copy's ``step`` checks them: the
        same errors (a finished episode's too), raised before any copy moves. A batch of ``n`` rows is needed for
        every agent sent."""
        if not isinstance(actions, Mapping):
            raise ActionError(f"expected a mapping of learned agent id → (n, ...) action batch, "
                              f"got {type(actions).__name__}")
        n, shapes = self.num_envs, self._batch_shapes
        checked = True  # every batch a numeric ndarray of (n, *action shape): its rows pass each copy's check
        for a, batch in actions.items():
            try:
                size = len(batch)
            except TypeError:
                size = None
            if size != n:
                raise ActionError(f"agent {a!r}: expected a batch of {n} actions (one per copy), got "
                                  f"{type(batch).__name__}" + (f" of {size}" if size is not None else ""))
            checked = checked and MultiAgentPowerGridEnv._is_ready_action(batch, shapes.get(a))
        rows = [dict(zip(actions, row)) for row in zip(*actions.values())] if actions else [{} for _ in range(n)]
        for env, row in zip(self.envs, rows):
            if checked:
                env._check_running()
            else:
                env._check_actions(row)
        return rows

    def _flows(self, due: list[tuple[int, int]]) -> dict[int, PowerFlowResult]:
        """The power flows of copies ``i`` at physics steps ``k`` (``due`` pairs): one batched solve, then
        regulator rounds re-solving together the copies whose taps moved (as ``TapControl.solve`` does for one)."""
        envs = self.envs
        if self._batch is None or not due:
            return {i: envs[i]._solve(k) for i, k in due}
        for i, k in due:
            envs[i]._set_loads(k)
        idx = [i for i, _ in due]
        controls = [envs[i].tap_control for i in idx]
        converged = self._batch.flow([envs[i]._injections for i in idx], idx)
        for control in controls:
            control.begin()
        # the relays read each copy's flow, its regulators move; the copies whose taps moved re-solve together
        moved = [k for k, reading in enumerate(self._readings(idx, controls, converged)) if controls[k].move(reading)]
        while moved:
            converged = self._batch.reflow([envs[idx[k]]._injections for k in moved], [idx[k] for k in moved])
            readings = self._readings([idx[k] for k in moved], [controls[k] for k in moved], converged)
            moved = [k for k, reading in zip(moved, readings) if controls[k].move(reading)]
        return dict(zip(idx, self._batch.results(idx)))

    def _readings(self, copies: list[int], controls: list[TapControl], converged: list[bool]) -> list[TapReading]:
        """The relays' readings of the last flows of ``copies`` (their tap controls ``controls``): of the converged
        copies in one pass (:meth:`BatchedSolver.probe`) when their regulators are alike, else each on its own."""
        assert self._batch is not None
        first = controls[0]
        ok = [k for k, c in enumerate(converged) if c]
        arrays = None
        if ok and first.regulators and all(c.buses == first.buses and c.rows == first.rows for c in controls):
            arrays = self._batch.probe([copies[k] for k in ok], first.buses, first.rows)
        if arrays is None:
            return [c.probe(done) for c, done in zip(controls, converged)]
        readings = [TapReading(False, [], [], [])] * len(copies)
        vm, p, q = (a.tolist() for a in arrays)
        for row, k in enumerate(ok):
            readings[k] = TapReading(True, vm[row], p[row], q[row])
        return readings

    def _by_agent(self, observations: np.ndarray) -> dict[str, np.ndarray]:
        """``(n, obs_size)`` observations as ``{agent: (n, obs_dim)}`` (copies of the columns)."""
        return {a: np.ascontiguousarray(observations[:, where]) for a, where in self._obs_columns.items()}

    def close(self) -> None:
        for env in self.envs:
            env.close()

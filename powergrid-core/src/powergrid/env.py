"""The multi-agent environment: a PettingZoo ``ParallelEnv`` over an AC power flow.

One step (one tick of ``time.step_minutes``):

1. actions in: learned agents' actions; internal policies for the others;
   agents not due this tick hold their last action (multi-rate);
2. vertical protocols, top down: parents turn their action into directives;
3. horizontal protocols coordinate the peers;
4. device physics over the tick; injections gathered into arrays;
5. AC power flow (a non-converged flow is flagged and penalised, never raised);
6. cost ($), safety (≥ 0) and reward per agent; observations out.

``infos[agent]`` holds ``cost``, ``safety``, ``converged``, ``acting`` (whether
the agent's next action will be used: multi-rate agents act every ``period``
ticks), ``ticks_to_next`` and ``projection`` (how far its devices had to move
the requested actions to make them feasible).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from powergrid.agents import Agent, DeviceAgent, GridAgent
from powergrid.builder import Scenario, build_scenario
from powergrid.config import EnvConfig
from powergrid.devices import Device, StepContext, clip_action
from powergrid.plugins import Registry
from powergrid.protocols import Directive
from powergrid.solvers.base import Injections, PowerFlowResult

#: Features every learned agent observes: price ($/MWh), sin and cos of the hour,
#: acting flag (1 when its action is used this tick), fraction of its period until it next acts.
COMMON_FEATURES = 5


class MultiAgentPowerGridEnv(ParallelEnv):
    """Hierarchical multi-agent power-grid environment (PettingZoo parallel API).

    Build it from a YAML file with :meth:`from_config` or from an
    :class:`~powergrid.config.EnvConfig`. PettingZoo agents are the agents with
    ``policy: learned``.
    """

    metadata = {"name": "powergrid_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, config: EnvConfig, *, registry: Registry | None = None, solver: str | None = None) -> None:
        self.config = config
        self.scenario: Scenario = build_scenario(config, registry, solver=solver)
        s = self.scenario
        self.net = s.net
        self.solver = s.solver
        self.dt_h = config.time.dt_h
        self.max_ticks = config.time.steps_per_episode
        self.possible_agents = [a.id for a in config.agents if s.agents[a.id].learned]
        self.agents: list[str] = []
        self._learned = [s.agents[i] for i in self.possible_agents]
        self._n_sgen = len(self.net.sgen)
        self._sgen_rows = np.array([d.sgen_row for d in s.device_agents], dtype=np.int64)
        self._base_sgen_p = self.net.sgen.p_mw.to_numpy(float).copy()
        self._base_sgen_q = self.net.sgen.q_mvar.to_numpy(float).copy()
        self._base_load_p = self.net.load.p_mw.to_numpy(float).copy()
        self._base_load_q = self.net.load.q_mvar.to_numpy(float).copy()
        self._settling = [d for d in s.device_agents if type(d.device).settle is not Device.settle]
        self._grid_agents = [a for a in s.agents.values() if isinstance(a, GridAgent)]
        self._zone_lines = {a.id: self._lines_in(a.zone) for a in self._grid_agents}
        self._extra_slices = self._horizontal_slices()
        self._action_spaces = {a.id: self._build_action_space(a) for a in self._learned}
        self._observation_spaces = {a.id: self._build_observation_space(a) for a in self._learned}
        self._rng = np.random.default_rng(config.seed)
        self._policies: dict[str, Any] = {}
        self.ctx = StepContext(dt_h=self.dt_h, profiles={})
        self.tick = 0
        self.last_result: PowerFlowResult | None = None
        self._costs: dict[str, float] = {}
        self._safety: dict[str, float] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | EnvConfig | Mapping[str, Any], **kwargs: Any) -> MultiAgentPowerGridEnv:
        """Build from a YAML file path, a mapping with the same structure, or an :class:`EnvConfig`."""
        if isinstance(path, EnvConfig):
            config = path
        elif isinstance(path, Mapping):
            config = EnvConfig.from_dict(path)
        else:
            config = EnvConfig.from_yaml(path)
        return cls(config, **kwargs)

    def _lines_in(self, zone: np.ndarray) -> np.ndarray:
        bus_pos = {int(b): p for p, b in enumerate(self.net.bus.index)}
        from_pos = np.array([bus_pos[int(b)] for b in self.net.line.from_bus], dtype=np.int64)
        return np.flatnonzero(np.isin(from_pos, zone)) if len(from_pos) else np.zeros(0, np.int64)

    def _horizontal_slices(self) -> dict[str, list[tuple[Any, slice]]]:
        """Where each horizontal protocol's extra action sits in a learned agent's action vector."""
        slices: dict[str, list[tuple[Any, slice]]] = {}
        for agent in self._learned:
            start = _flat_size(agent.own_action_space)
            for proto in self.scenario.horizontal:
                if agent in proto.participants:
                    size = _flat_size(proto.action_space(agent))
                    slices.setdefault(agent.id, []).append((proto, slice(start, start + size)))
                    start += size
        return slices

    def _build_action_space(self, agent: Agent) -> gymnasium.spaces.Space:
        own = agent.own_action_space
        extras = [proto.action_space(agent) for proto, _ in self._extra_slices.get(agent.id, [])]
        extras = [e for e in extras if _flat_size(e)]
        if not extras:
            return own
        if not isinstance(own, gymnasium.spaces.Box):
            raise TypeError(f"agent {agent.id!r}: horizontal protocols need a Box own action space, got {own}")
        low = np.concatenate([own.low.ravel()] + [e.low.ravel() for e in extras])
        high = np.concatenate([own.high.ravel()] + [e.high.ravel() for e in extras])
        return gymnasium.spaces.Box(low, high, dtype=np.float32)

    def _build_observation_space(self, agent: Agent) -> gymnasium.spaces.Box:
        parts_low: list[np.ndarray] = []
        parts_high: list[np.ndarray] = []
        for device_agent in agent.devices():
            space = device_agent.device.observation_space
            parts_low.append(space.low.ravel())
            parts_high.append(space.high.ravel())
        n_free = COMMON_FEATURES + (1 if isinstance(agent, DeviceAgent) else 4)
        for proto in self.scenario.horizontal:
            if agent in proto.participants:
                space = proto.observation_space(agent)
                parts_low.append(space.low.ravel())
                parts_high.append(space.high.ravel())
        low = np.concatenate([np.full(n_free, -np.inf)] + parts_low).astype(np.float32)
        high = np.concatenate([np.full(n_free, np.inf)] + parts_high).astype(np.float32)
        return gymnasium.spaces.Box(low, high, dtype=np.float32)

    # ------------------------------------------------------------------ PettingZoo API
    def observation_space(self, agent: str) -> gymnasium.spaces.Space:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> gymnasium.spaces.Space:
        return self._action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        s = self.scenario
        streams = self._rng.spawn(3 + len(s.device_agents) + len(s.agents) + len(s.horizontal))
        profile_rng, *rest = streams
        # every provider gets the same seed, so data providers pick the same start day for all roles
        profile_seed = int(profile_rng.integers(2**63))
        self.ctx.profiles = {role: p.episode(self.max_ticks, self.config.time.step_minutes, np.random.default_rng(profile_seed))
                             for role, p in s.providers.items()}
        for d in s.device_agents:
            d.device.reset(rest.pop())
            d.pending, d.last_action, d.price = None, None, 0.0
        self._policies = {}
        for agent_id, cls in s.policies.items():
            agent = s.agents[agent_id]
            agent.last_action = None
            self._policies[agent_id] = cls(agent, rest.pop()) if cls is not None else None
        for proto in s.horizontal:
            proto.reset(rest.pop())
        self.tick = 0
        self.agents = list(self.possible_agents)
        self._set_time(0)
        self._costs = dict.fromkeys(s.agents, 0.0)
        self._safety = dict.fromkeys(s.agents, 0.0)
        self._device_injections()
        result = self._solve(0)
        observations = {a.id: self._observe(a) for a in self._learned}
        infos = {a.id: self._info(a, result, 0) for a in self._learned}
        return observations, infos

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        s, ctx, t = self.scenario, self.ctx, self.tick
        self._set_time(t)
        market_price = ctx.price
        extra: dict[Any, dict[str, np.ndarray]] = {proto: {} for proto in s.horizontal}
        for root in s.roots:
            self._decide(root, None, actions, market_price, extra)
        for proto in s.horizontal:
            proto.coordinate(extra[proto], ctx)
        for d in s.device_agents:
            ctx.price = d.price
            d.device.step(d.pending, ctx)
        ctx.price = market_price
        self._device_injections()
        result = self._solve(t)
        for d in self._settling:
            d.device.settle(result, ctx)
        self._account(result)
        self.tick = t + 1
        done = self.tick >= self.max_ticks
        observations, rewards, terminations, truncations, infos = {}, {}, {}, {}, {}
        rw = self.config.reward
        penalty = 0.0 if result.converged else rw.divergence_penalty
        self._set_time(min(self.tick, self.max_ticks - 1))
        for agent in self._learned:
            aid = agent.id
            observations[aid] = self._observe(agent)
            rewards[aid] = float(-(rw.cost_weight * self._costs[aid] + rw.safety_weight * self._safety[aid]) - penalty)
            terminations[aid] = False
            truncations[aid] = done
            infos[aid] = self._info(agent, result, t)
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    # ------------------------------------------------------------------ step parts
    def _set_time(self, tick: int) -> None:
        ctx = self.ctx
        ctx.tick = tick
        ctx.hour = (self.config.time.start_hour + tick * self.dt_h) % 24.0
        ctx.price = float(ctx.profiles["price"][tick])

    def _decide(self, agent: Agent, directive: Directive | None, actions: Mapping[str, Any], price: float,
                extra: dict[Any, dict[str, np.ndarray]]) -> None:
        """Choose ``agent``'s action this tick and pass directives down to its children."""
        if directive is not None and directive.price is not None:
            price = directive.price
        if directive is not None and directive.action is not None:
            action = directive.action
        elif agent.is_due(self.tick) or agent.last_action is None:
            if agent.learned:
                action = self._learned_action(agent, actions.get(agent.id), extra)
            else:
                self.ctx.price = price
                action = self._policies[agent.id].act(self.ctx)
            agent.last_action = action
        else:
            action = agent.last_action
        if isinstance(agent, DeviceAgent):
            agent.pending, agent.price = action, price
            return
        self.ctx.price = price
        assert isinstance(agent, GridAgent) and agent.protocol is not None
        for child, child_directive in zip(agent.children, agent.protocol.directives(action, self.ctx)):
            self._decide(child, child_directive, actions, price, extra)

    def _learned_action(self, agent: Agent, action: Any, extra: dict[Any, dict[str, np.ndarray]]) -> Any:
        """Split a learned agent's action into its own part and each horizontal protocol's part."""
        space = self._action_spaces[agent.id]
        if action is None:  # an agent that sent nothing holds still (zero action, projected)
            action = np.zeros(space.shape, np.float32) if isinstance(space, gymnasium.spaces.Box) else 0
        slices = self._extra_slices.get(agent.id)
        if not slices:
            return action
        flat, _ = clip_action(action, space)
        for proto, where in slices:
            extra[proto][agent.id] = flat[where]
        return flat[: slices[0][1].start]

    def _device_injections(self) -> None:
        p = self._base_sgen_p.copy()
        q = self._base_sgen_q.copy()
        devices = self.scenario.device_agents
        p[self._sgen_rows] = [d.device.p_mw for d in devices]
        q[self._sgen_rows] = [d.device.q_mvar for d in devices]
        self._sgen_p, self._sgen_q = p, q

    def _solve(self, tick: int) -> PowerFlowResult:
        load = self.ctx.profiles["load"][tick]
        injections = Injections(self._base_load_p * load, self._base_load_q * load, self._sgen_p, self._sgen_q)
        result = self.solver.solve(injections)
        if result.converged:
            self.last_result = result
        elif self.last_result is None:
            self.last_result = PowerFlowResult.failed(*self.solver.shape)
        self._converged = result.converged
        return result

    def _account(self, result: PowerFlowResult) -> None:
        """Cost ($) and safety (≥ 0) of every agent this tick."""
        s, rw = self.scenario, self.config.reward
        costs = {d.id: d.device.cost for d in s.device_agents}
        safety = {d.id: d.device.safety for d in s.device_agents}
        vm = result.vm_pu
        loading = result.line_loading_percent
        for agent in self._grid_agents:
            devices = agent.devices()
            costs[agent.id] = sum(costs[d.id] for d in devices)
            violation = 0.0
            if result.converged:
                v = vm[agent.zone]
                violation = float(np.maximum(v - rw.v_max_pu, 0.0).sum() + np.maximum(rw.v_min_pu - v, 0.0).sum())
                lines = self._zone_lines[agent.id]
                if lines.size:
                    violation += float(np.maximum(loading[lines] / rw.max_loading_percent - 1.0, 0.0).sum())
            safety[agent.id] = sum(safety[d.id] for d in devices) + violation
        for proto in s.horizontal:
            for agent_id, (cost, unsafe) in proto.settle(result, self.ctx).items():
                costs[agent_id] += cost
                safety[agent_id] += unsafe
        self._costs, self._safety = costs, safety

    def _observe(self, agent: Agent) -> np.ndarray:
        ctx, vm = self.ctx, self.last_result.vm_pu if self.last_result is not None else None
        angle = 2.0 * np.pi * ctx.hour / 24.0
        acting = 1.0 if agent.is_due(self.tick) else 0.0
        common = [ctx.price, np.sin(angle), np.cos(angle), acting, agent.ticks_to_next(self.tick) / agent.period]
        devices = agent.devices()
        if isinstance(agent, DeviceAgent):
            local = [vm[agent.bus] if vm is not None else 1.0]
        else:
            assert isinstance(agent, GridAgent)
            zone_v = vm[agent.zone] if vm is not None and agent.zone.size else np.ones(1)
            local = [sum(d.device.p_mw for d in devices), zone_v.min(), zone_v.mean(), zone_v.max()]
        parts = [np.asarray(common + local, np.float64)]
        parts += [d.device.observe() for d in devices]
        parts += [proto.observe(agent) for proto in self.scenario.horizontal if agent in proto.participants]
        obs = np.concatenate(parts).astype(np.float32)
        return np.nan_to_num(obs, nan=0.0, posinf=0.0, neginf=0.0)

    def _info(self, agent: Agent, result: PowerFlowResult, tick: int) -> dict[str, Any]:
        info = {
            "cost": self._costs[agent.id],
            "safety": self._safety[agent.id],
            "converged": bool(result.converged),
            "acting": agent.is_due(self.tick),
            "ticks_to_next": agent.ticks_to_next(self.tick),
            "projection": float(sum(d.device.projection for d in agent.devices())),
        }
        for proto in self.scenario.horizontal:
            if agent in proto.participants:
                info[type(proto).__name__] = proto.info()
        return info

    # ------------------------------------------------------------------ helpers
    def agent_costs(self) -> dict[str, tuple[float, float]]:
        """``{agent id: (cost $, safety)}`` of every agent (learned or not) in the last step."""
        return {a: (self._costs[a], self._safety[a]) for a in self.scenario.agents}

    def render(self) -> None:
        return None

    def close(self) -> None:
        return None

    def state(self) -> np.ndarray:
        """Global state: every bus voltage (pu) of the last converged power flow."""
        return self.last_result.vm_pu.astype(np.float32) if self.last_result is not None else np.zeros(0, np.float32)


def _flat_size(space: gymnasium.spaces.Space) -> int:
    return int(gymnasium.spaces.flatdim(space)) if space is not None else 0


"""The multi-agent environment: a PettingZoo ``ParallelEnv`` over an AC power flow.

One step (one tick of ``time.step_minutes``):

1. actions in: learned agents' actions; internal policies for the others;
   agents not due this tick hold their last action (multi-rate);
2. vertical protocols, top down: parents turn their action into directives;
3. horizontal protocols coordinate the peers;
4. device physics over the tick; injections gathered into arrays;
5. AC power flow;
6. cost ($), safety (≥ 0) and reward per agent; observations out.

A failed step (the flow diverged, or its result or a cost holds NaN/inf) is an event, never
raised and never a gain: it is settled on the last sound flow, every learned agent loses the
penalty of :class:`~powergrid.config.RewardConfig` and, by default, the episode terminates
for all (a blackout). No NaN reaches observations, rewards, infos or :meth:`state`.

``infos[agent]`` holds ``cost``, ``safety``, ``converged`` (the step's flow was sound),
``failure`` (why not, else ""), ``penalty``, ``acting`` (whether
the agent's next action will be used: multi-rate agents act every ``period``
ticks), ``ticks_to_next`` and ``projection`` (how far its devices had to move
the requested actions to make them feasible).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from functools import partial
from operator import attrgetter
from typing import Any

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from powergrid.agents import Agent, DeviceAgent, GridAgent
from powergrid.builder import Scenario, build_scenario
from powergrid.config import EnvConfig
from powergrid.controllers import TapControl
from powergrid.devices import Device, StepContext, clip_action
from powergrid.errors import ActionError
from powergrid.loads import LoadModel, episode_start
from powergrid.plugins import Registry
from powergrid.protocols import Directive
from powergrid.solvers.base import Injections, PowerFlowResult

#: Features every learned agent observes: price ($/MWh), sin and cos of the hour,
#: acting flag (1 when its action is used this tick), fraction of its period until it next acts.
COMMON_FEATURES = 5

#: Observation scaling (``spaces.observation: normalized``): a feature ``x`` is seen as
#: ``(x − ref)/scale``. Price: ref 50 $/MWh, scale 100 $/MWh; voltages: ref 1 pu, scale 0.05 pu
#: (±1 at the edges of range A); a grid agent's device power: scale = its zone's base load (MW).
#: Device and protocol features keep their own bounds when inside [−1, 1], else are mapped onto it.
#: Raw bounds (both modes clip to them): price −2,000 to 20,000 $/MWh, voltage 0–2 pu, power ±10,000 MW.
PRICE_REF, PRICE_SCALE, PRICE_BOUNDS = 50.0, 100.0, (-2000.0, 20000.0)
V_REF, V_SCALE, V_BOUNDS = 1.0, 0.05, (0.0, 2.0)
P_BOUNDS = (-1e4, 1e4)


class MultiAgentPowerGridEnv(ParallelEnv):
    """Hierarchical multi-agent power-grid environment (PettingZoo parallel API).

    Build it from a YAML file with :meth:`from_config` or from an
    :class:`~powergrid.config.EnvConfig`. PettingZoo agents are the agents with
    ``policy: learned``.
    """

    metadata = {"name": "powergrid_v0", "render_modes": ["human", "rgb_array"], "is_parallelizable": True,
                "render_fps": 4}

    def __init__(self, config: EnvConfig, *, registry: Registry | None = None, solver: str | None = None,
                 render_mode: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: expected one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode
        self._figure: Any = None
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
        self._sgen_rows = np.array([d.sgen_row for d in s.device_agents], dtype=np.int64)
        self._base_sgen_p = self.net.sgen.p_mw.to_numpy(float).copy()
        self._base_sgen_q = self.net.sgen.q_mvar.to_numpy(float).copy()
        self._base_load_p = self.net.load.p_mw.to_numpy(float).copy()
        self._base_load_q = self.net.load.q_mvar.to_numpy(float).copy()
        self.loads = LoadModel.build(config.loads, self.net, config.source)
        #: every load's multiplier (pu) at every tick of the episode (ticks × loads), built at reset
        self.load_multipliers = np.ones((0, len(self._base_load_p)))
        self._settling = [d for d in s.device_agents if type(d.device).settle is not Device.settle]
        self._grid_agents = [a for a in s.agents.values() if isinstance(a, GridAgent)]
        self._zone_lines = {a.id: self._lines_in(a.zone) for a in self._grid_agents}
        self._extra_slices = self._horizontal_slices()
        self._bus_pos = {int(b): p for p, b in enumerate(self.net.bus.index)}
        #: physical action spaces (device units); learned agents see ``_exposed_spaces``
        self._action_spaces = {a.id: self._build_action_space(a) for a in self._learned}
        self._exposed_spaces = {a.id: self._build_exposed_action_space(a) for a in self._learned}
        self._action_maps = {aid: ((sp.high.astype(np.float64) + sp.low) / 2, (sp.high.astype(np.float64) - sp.low) / 2)
                             for aid, sp in self._action_spaces.items()
                             if self._exposed_spaces[aid] is not sp}
        self._observation_spaces = {a.id: self._build_observation_space(a) for a in self._learned}
        n_state = len(self.net.bus)
        v_lo, v_hi = V_BOUNDS
        if config.spaces.observation == "normalized":
            v_lo, v_hi = (v_lo - V_REF) / V_SCALE, (v_hi - V_REF) / V_SCALE
        self.state_space = gymnasium.spaces.Box(v_lo, v_hi, (n_state,), dtype=np.float32)
        self._rng = np.random.default_rng(config.seed)
        self._policies: dict[str, Any] = {}
        self.ctx = StepContext(dt_h=self.dt_h, profiles={})
        self.tick = 0
        self.last_result: PowerFlowResult | None = None
        n_bus, n_line, n_trafo, n_ext = self.solver.shape
        zeros = np.zeros
        self._nominal = PowerFlowResult(False, np.ones(n_bus), zeros(n_bus), zeros(n_line), zeros(n_line),
                                        zeros(n_trafo), zeros(n_trafo), zeros(n_ext), zeros(n_ext))
        self._worst_loss = 0.0  # the largest per-tick loss of any learned agent seen so far (for the penalty)
        self._failure = ""
        self._costs: dict[str, float] = {}
        self._safety: dict[str, float] = {}
        self._precompute()


    def _precompute(self) -> None:
        """Everything the step loop needs that does not change between steps (built once)."""
        s = self.scenario
        devices = s.device_agents
        self._devices = [d.device for d in devices]
        self._network_devices = [d for d in self._devices if type(d).network_setting is not Device.network_setting]
        for device in self._network_devices:
            device.network_applied = True
        self._network_setters = {"trafo_tap": self.solver.set_trafo_tap, "shunt_step": self.solver.set_shunt_step}
        self._applied_settings: dict[tuple[str, int], int] = {}
        self._n_dev = len(devices)
        dev_pos = {d.id: i for i, d in enumerate(devices)}
        #: every agent's device agents (depth first), cached: ``Agent.devices()`` rebuilds the list each call
        self._devices_of = {aid: a.devices() for aid, a in s.agents.items()}
        self._get_pq = attrgetter("p_mw", "q_mvar")
        self._get_cost = attrgetter("cost", "safety", "projection", "p_mw")
        self._agent_ids = list(s.agents)
        self._agent_pos = {aid: i for i, aid in enumerate(self._agent_ids)}
        self._dev_agent_pos = np.array([self._agent_pos[d.id] for d in devices], dtype=np.int64)
        # grid agents: their devices and zone buses as flat index arrays with a group id each
        def groups(members: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            idx = np.concatenate(members).astype(np.int64) if members else np.zeros(0, np.int64)
            gid = np.repeat(np.arange(len(members)), [len(m) for m in members]) if members else np.zeros(0, np.int64)
            return idx, gid.astype(np.int64)
        ga = self._grid_agents
        self._n_grid = len(ga)
        self._grid_pos = np.array([self._agent_pos[a.id] for a in ga], dtype=np.int64)
        self._grid_dev_idx, self._grid_dev_gid = groups(
            [np.array([dev_pos[d.id] for d in self._devices_of[a.id]], np.int64) for a in ga])
        self._grid_zone_idx, self._grid_zone_gid = groups([np.asarray(a.zone, np.int64) for a in ga])
        self._grid_line_idx, self._grid_line_gid = groups([self._zone_lines[a.id] for a in ga])
        # injections: preallocated arrays and one reused Injections object
        self._sgen_p = self._base_sgen_p.copy()
        self._sgen_q = self._base_sgen_q.copy()
        self._load_p = self._base_load_p.copy()
        self._load_q = self._base_load_q.copy()
        self._injections = Injections(self._load_p, self._load_q, self._sgen_p, self._sgen_q)
        # learned agents: one flat observation buffer, each agent a slice of it
        learned = self._learned
        self._n_learned = len(learned)
        dims = [int(self._observation_spaces[a.id].shape[0]) for a in learned]
        self._obs_starts = np.concatenate([[0], np.cumsum(dims)]).astype(np.int64)
        self._obs_slices = [slice(int(a), int(b)) for a, b in zip(self._obs_starts[:-1], self._obs_starts[1:])]
        self._obs_buf = np.zeros(int(self._obs_starts[-1]), np.float64)
        scaling = [self._observation_scaling(a) for a in learned]
        normalized = self.config.spaces.observation == "normalized"
        self._obs_ref = np.concatenate([c[2] for c in scaling]) if normalized and scaling else 0.0
        self._obs_scale = np.concatenate([c[3] for c in scaling]) if normalized and scaling else 1.0
        self._obs_low = np.concatenate([self._observation_spaces[a.id].low for a in learned]) if learned else None
        self._obs_high = np.concatenate([self._observation_spaces[a.id].high for a in learned]) if learned else None
        self._periods = np.array([a.period for a in learned], dtype=np.int64)
        starts = self._obs_starts[:-1]
        self._obs_common = starts
        self._learned_dev_idx, self._learned_dev_gid = groups(
            [np.array([dev_pos[d.id] for d in self._devices_of[a.id]], np.int64) for a in learned])
        # device-agent learners observe their bus voltage; grid-agent learners their devices' p and zone min/mean/max
        n_bus = len(self.net.bus)
        ldev = [i for i, a in enumerate(learned) if isinstance(a, DeviceAgent)]
        lgrid = [i for i, a in enumerate(learned) if not isinstance(a, DeviceAgent)]
        self._ldev_at = starts[ldev] + COMMON_FEATURES if ldev else np.zeros(0, np.int64)
        self._ldev_bus = np.array([learned[i].bus for i in ldev], dtype=np.int64)
        self._lgrid = np.array(lgrid, dtype=np.int64)
        self._lgrid_at = starts[lgrid] + COMMON_FEATURES if lgrid else np.zeros(0, np.int64)
        # an empty zone observes ones: index ``n_bus`` is a sentinel 1.0 appended to the voltages
        zones = [np.asarray(learned[i].zone, np.int64) if learned[i].zone.size else np.array([n_bus], np.int64)
                 for i in lgrid]
        self._lgrid_zone_idx, self._lgrid_zone_gid = groups(zones)
        self._lgrid_zone_start = (np.concatenate([[0], np.cumsum([len(z) for z in zones])[:-1]]).astype(np.int64)
                                  if zones else np.zeros(0, np.int64))
        self._lgrid_zone_n = np.array([len(z) for z in zones], dtype=np.float64)
        self._vm_ext = np.ones(n_bus + 1, np.float64)
        # per learned agent: (device, slice) pairs and (protocol, slice) pairs in observation order
        self._obs_parts: list[list[tuple[Any, Any, slice]]] = []
        for a, start in zip(learned, starts):
            at = int(start) + COMMON_FEATURES + (1 if isinstance(a, DeviceAgent) else 4)
            parts = []
            for d in self._devices_of[a.id]:
                size = int(np.prod(d.device.observation_space.shape))
                parts.append((d.device.observe, slice(at, at + size)))
                at += size
            for proto in s.horizontal:
                if a in proto.participants:
                    size = int(np.prod(proto.observation_space(a).shape))
                    parts.append((partial(proto.observe, a), slice(at, at + size)))
                    at += size
            self._obs_parts.append(parts)
        self._flat_parts = [p for parts in self._obs_parts for p in parts]
        self._info_protos = [[p for p in s.horizontal if a in p.participants] for a in learned]
        # devices with per-step records (``info()``: e.g. HIL communication faults), merged into their agent's infos
        self._info_devices = [[d.device.info for d in self._devices_of[a.id] if hasattr(d.device, "info")]
                              for a in learned]

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

    def _observation_scaling(self, agent: Agent) -> tuple[np.ndarray, ...]:
        """Raw bounds and the (ref, scale) of every feature of ``agent``'s observation (see PRICE_REF …)."""
        hour = [(-1.0, 1.0, 0.0, 1.0)] * 2 + [(0.0, 1.0, 0.0, 1.0)] * 2
        price = (*PRICE_BOUNDS, PRICE_REF, PRICE_SCALE)
        volt = (*V_BOUNDS, V_REF, V_SCALE)
        if isinstance(agent, DeviceAgent):
            free = [price, *hour, volt]
        else:
            zone_load = float(self._base_load_p[np.isin(self.net.load.bus.map(self._bus_pos).to_numpy(),
                                                        agent.zone)].sum()) if len(self._base_load_p) else 0.0
            free = [price, *hour, (*P_BOUNDS, 0.0, zone_load if zone_load > 0 else 1.0), volt, volt, volt]
        spaces = [d.device.observation_space for d in agent.devices()]
        spaces += [p.observation_space(agent) for p in self.scenario.horizontal if agent in p.participants]
        parts = []
        for space in spaces:
            for lo, hi in zip(space.low.ravel().tolist(), space.high.ravel().tolist()):
                lo, hi = max(lo, -1e6), min(hi, 1e6)
                inside = -1.0 <= lo and hi <= 1.0
                parts.append((lo, hi, 0.0 if inside else (lo + hi) / 2, 1.0 if inside or hi <= lo else (hi - lo) / 2))
        return tuple(np.array(column, np.float64) for column in zip(*(free + parts)))

    def _build_observation_space(self, agent: Agent) -> gymnasium.spaces.Box:
        low, high, ref, scale = self._observation_scaling(agent)
        if self.config.spaces.observation == "normalized":
            low, high = (low - ref) / scale, (high - ref) / scale
        return gymnasium.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)

    def _build_exposed_action_space(self, agent: Agent) -> gymnasium.spaces.Space:
        """``[-1, 1]`` per entry of a Box action in ``normalized`` mode (Discrete spaces as they are)."""
        space = self._action_spaces[agent.id]
        if self.config.spaces.action == "physical" or not isinstance(space, gymnasium.spaces.Box):
            return space
        return gymnasium.spaces.Box(-1.0, 1.0, space.shape, dtype=np.float32)

    def _physical_actions(self, actions: Mapping[str, Any]) -> Mapping[str, Any]:
        """Normalized Box actions mapped to physical units: ``mid + half·a`` (outside [-1, 1] stays outside)."""
        if not self._action_maps:
            return actions
        mapped = dict(actions)
        for agent_id, (mid, half) in self._action_maps.items():
            action = actions.get(agent_id)
            if action is not None:
                a = np.asarray(action, np.float64)
                if a.shape == mid.shape:
                    mapped[agent_id] = mid + half * a
        return mapped

    def rule_action(self, agent_id: str) -> Any:
        """``agent_id``'s own rule (its device's or protocol's) as the action it would send now.

        Physical rule values are padded with zeros for horizontal-protocol entries, clipped to the
        physical space and expressed in the configured action convention.
        """
        agent = self.scenario.agents[agent_id]
        space = self._action_spaces[agent_id]
        own = agent.rule_action(self.ctx)
        if not isinstance(space, gymnasium.spaces.Box):
            return own
        own = np.asarray(own, np.float64).reshape(-1)
        padded = np.concatenate([own, np.zeros(int(np.prod(space.shape)) - own.size)]).reshape(space.shape)
        return self.action_from_physical(agent_id, padded.clip(space.low, space.high)).astype(np.float32)

    def action_from_physical(self, agent_id: str, physical: Any) -> Any:
        """The action that ``agent_id`` sends for ``physical`` (device units), in the configured convention."""
        if agent_id not in self._action_maps:
            return physical
        mid, half = self._action_maps[agent_id]
        safe = np.where(half > 0, half, 1.0)
        return np.where(half > 0, (np.asarray(physical, np.float64) - mid) / safe, 0.0).astype(np.float32)

    # ------------------------------------------------------------------ PettingZoo API
    def observation_space(self, agent: str) -> gymnasium.spaces.Space:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> gymnasium.spaces.Space:
        return self._exposed_spaces[agent]

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
        time = self.config.time
        self.load_multipliers = self.loads.multipliers(
            self.ctx.profiles["load"], step_minutes=time.step_minutes, start_hour=time.start_hour,
            start=episode_start(s.providers["load"]), rng=profile_rng.spawn(1)[0])
        for d in s.device_agents:
            d.device.reset(rest.pop())
            d.pending, d.last_action, d.price = None, None, 0.0
            d.reactive.q_mvar = None
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
        self._applied_settings.clear()
        self._apply_network_settings()
        if not hasattr(self, "tap_control"):  # built once; transformers an OLTC device drives stay out of it
            self.tap_control = TapControl.from_net(self.solver, {row for kind, row in self._applied_settings
                                                                 if kind == "trafo_tap"})
        self.tap_control.reset()
        self._device_injections()
        self.last_result = None
        sound = self._accept(self._solve(0))
        self._failure = "" if sound else "power flow failed at reset"
        self._proj = np.zeros(self._n_dev)
        observations = self._observe_all()
        infos = self._infos(sound, 0.0)
        return observations, infos

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        self._check_actions(actions)
        s, ctx, t = self.scenario, self.ctx, self.tick
        self._set_time(t)
        market_price = ctx.price
        extra: dict[Any, dict[str, np.ndarray]] = {proto: {} for proto in s.horizontal}
        actions = self._physical_actions(actions)
        for root in s.roots:
            self._decide(root, None, actions, market_price, extra)
        for proto in s.horizontal:
            proto.coordinate(extra[proto], ctx)
        for d in s.device_agents:
            ctx.price = d.price
            d.device.step(d.pending, ctx)
            if d.reactive.q_mvar is not None:
                d.reactive.apply(d.device)
        ctx.price = market_price
        self._apply_network_settings()
        self._device_injections()
        result = self._solve(t)
        sound = self._accept(result)
        flow = self.last_result  # a failed step is settled on the last sound flow, never on NaN or zeros
        for d in self._settling:
            d.device.settle(flow, ctx)
        self._account(flow)
        self.tick = t + 1
        rw = self.config.reward
        costs, safety = self._costs, self._safety
        cw, sw = rw.cost_weight, rw.safety_weight
        rewards = {aid: -(cw * costs[aid] + sw * safety[aid]) for aid in self.possible_agents}
        if sound and not all(map(np.isfinite, rewards.values())):
            sound, self._failure = False, "non-finite cost or safety"
        elif not sound:
            self._failure = "power flow diverged" if not result.converged else "power flow gave non-finite values"
        terminate = False
        penalty = 0.0
        if sound:
            self._failure = ""
            if rewards:
                self._worst_loss = max(self._worst_loss, -min(rewards.values()))
        else:
            for table in (costs, safety):
                table.update((aid, 0.0) for aid, v in table.items() if not np.isfinite(v))
            terminate = rw.on_divergence == "terminate"
            ticks_lost = self.max_ticks - t if terminate else 1
            penalty = max(rw.divergence_penalty, self._worst_loss) * ticks_lost
            # the failed tick itself scores no better than the worst sound tick seen (no gain from causing it)
            floor = -self._worst_loss
            rewards = {aid: (min(r, floor) if np.isfinite(r) else floor) - penalty for aid, r in rewards.items()}
        done = self.tick >= self.max_ticks
        self._set_time(min(self.tick, self.max_ticks - 1))
        observations = self._observe_all()
        terminations = dict.fromkeys(self.possible_agents, terminate)
        truncations = dict.fromkeys(self.possible_agents, done and not terminate)
        infos = self._infos(sound, penalty)
        if done or terminate:
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
        action = _checked_action(agent.id, action, space)
        slices = self._extra_slices.get(agent.id)
        if not slices:
            return action
        flat, _ = clip_action(action, space)
        for proto, where in slices:
            extra[proto][agent.id] = flat[where]
        # the own part as sent: its devices project it (NaN, inf, out of bounds) and report the distance
        return action.reshape(-1)[: slices[0][1].start]

    def _check_actions(self, actions: Mapping[str, Any]) -> None:
        """Refuse a step after the episode ended, action keys that are not learned agents, and malformed actions."""
        if not self.agents and (self.possible_agents or self.tick >= self.max_ticks):
            raise RuntimeError("step() called on a finished episode; call reset() first")
        if not isinstance(actions, Mapping):
            raise ActionError(f"expected a mapping of learned agent id → action, got {type(actions).__name__}")
        for agent_id in actions:
            if agent_id not in self._action_spaces:
                agent = self.scenario.agents.get(agent_id)
                what = "an unknown agent id" if agent is None else f"not a learned agent (policy: {agent.policy})"
                raise ActionError(f"action for {agent_id!r}: {what}; only learned agents act "
                                  f"({', '.join(self.possible_agents) or 'none'})")
            if actions[agent_id] is not None:
                _checked_action(agent_id, actions[agent_id], self.action_space(agent_id))

    def _apply_network_settings(self) -> None:
        """Tap positions and shunt steps of devices that stand for admittance changes, when they change."""
        for device in self._network_devices:
            kind, row, position = device.network_setting()
            if self._applied_settings.get((kind, row)) != position:
                self._network_setters[kind](row, position)
                self._applied_settings[(kind, row)] = position

    def _device_injections(self) -> None:
        """Gather the devices' injections into the preallocated sgen arrays (in place)."""
        if self._n_dev:
            pq = np.array(list(map(self._get_pq, self._devices)), dtype=np.float64).reshape(-1, 2)
            self._sgen_p[self._sgen_rows] = pq[:, 0]
            self._sgen_q[self._sgen_rows] = pq[:, 1]
            self._dev_p = pq[:, 0]
        else:
            self._dev_p = np.zeros(0)

    def _set_loads(self, tick: int) -> None:
        """Every network load's P and Q (MW, Mvar) at ``tick``: base values times its multiplier (in place)."""
        m = self.load_multipliers[tick]
        np.multiply(self._base_load_p, m, out=self._load_p)
        np.multiply(self._base_load_q, m, out=self._load_q)

    def _solve(self, tick: int) -> PowerFlowResult:
        self._set_loads(tick)
        return self.tap_control.solve(self._injections)  # solve, regulators move, re-solve

    def _accept(self, result: PowerFlowResult) -> bool:
        """Keep ``result`` as the last sound flow when it converged with finite voltages; return whether it did.

        Before any sound flow of the episode the last one is the nominal flat profile (1 pu, no flows).
        """
        sound = bool(result.converged) and bool(np.isfinite(result.vm_pu).all())
        if sound:
            self.last_result = result
        elif self.last_result is None:
            self.last_result = self._nominal
        return sound

    def _account(self, result: PowerFlowResult) -> None:
        """Cost ($) and safety (≥ 0) of every agent this tick."""
        s, rw = self.scenario, self.config.reward
        n_agents = len(self._agent_ids)
        cost = np.zeros(n_agents)
        safe = np.zeros(n_agents)
        if self._n_dev:
            css = np.array(list(map(self._get_cost, self._devices)), dtype=np.float64).reshape(-1, 4)
            self._proj, self._dev_p = css[:, 2], css[:, 3]
            cost[self._dev_agent_pos] = css[:, 0]
            safe[self._dev_agent_pos] = css[:, 1]
            if self._n_grid:
                cost[self._grid_pos] = np.bincount(self._grid_dev_gid, css[self._grid_dev_idx, 0], self._n_grid)
                safe[self._grid_pos] = np.bincount(self._grid_dev_gid, css[self._grid_dev_idx, 1], self._n_grid)
        else:
            self._proj = np.zeros(0)
        if self._n_grid and result.converged:
            v = result.vm_pu[self._grid_zone_idx]
            bus_violation = np.maximum(v - rw.v_max_pu, 0.0) + np.maximum(rw.v_min_pu - v, 0.0)
            violation = np.bincount(self._grid_zone_gid, bus_violation, self._n_grid)
            if self._grid_line_idx.size:
                over = np.maximum(result.line_loading_percent[self._grid_line_idx] / rw.max_loading_percent - 1.0, 0.0)
                violation += np.bincount(self._grid_line_gid, over, self._n_grid)
            safe[self._grid_pos] += violation
        costs = dict(zip(self._agent_ids, cost.tolist()))
        safety = dict(zip(self._agent_ids, safe.tolist()))
        for proto in s.horizontal:
            for agent_id, (c, unsafe) in proto.settle(result, self.ctx).items():
                costs[agent_id] += c
                safety[agent_id] += unsafe
        self._costs, self._safety = costs, safety

    def _observe_all(self) -> dict[str, np.ndarray]:
        """Every learned agent's observation, written into one preallocated buffer at precomputed slices."""
        buf = self._obs_buf
        if not self._n_learned:
            return {}
        ctx, tick = self.ctx, self.tick
        vm = self.last_result.vm_pu if self.last_result is not None else None
        angle = 2.0 * np.pi * ctx.hour / 24.0
        at = self._obs_common
        periods = self._periods
        buf[at] = ctx.price
        buf[at + 1] = np.sin(angle)
        buf[at + 2] = np.cos(angle)
        buf[at + 3] = tick % periods == 0
        buf[at + 4] = ((-tick) % periods) / periods
        if self._ldev_at.size:
            buf[self._ldev_at] = vm[self._ldev_bus] if vm is not None else 1.0
        if self._lgrid.size:
            ext = self._vm_ext
            if vm is not None:
                ext[:-1] = vm
            else:
                ext[:] = 1.0
            g, n = self._lgrid_at, self._lgrid.size
            buf[g] = np.bincount(self._learned_dev_gid, self._dev_p[self._learned_dev_idx],
                                 self._n_learned)[self._lgrid] if self._n_dev else 0.0
            zv = ext[self._lgrid_zone_idx]
            starts = self._lgrid_zone_start
            buf[g + 1] = np.minimum.reduceat(zv, starts)
            buf[g + 2] = np.bincount(self._lgrid_zone_gid, zv, n) / self._lgrid_zone_n
            buf[g + 3] = np.maximum.reduceat(zv, starts)
        for observe, where in self._flat_parts:
            buf[where] = observe()
        obs = ((buf - self._obs_ref) / self._obs_scale).astype(np.float32)
        bad = ~np.isfinite(obs)
        if bad.any():
            obs[bad] = 0.0
        np.clip(obs, self._obs_low, self._obs_high, out=obs)
        return {aid: obs[where] for aid, where in zip(self.possible_agents, self._obs_slices)}

    def _infos(self, sound: bool, penalty: float) -> dict[str, dict[str, Any]]:
        tick = self.tick
        if self._n_dev and self._learned_dev_idx.size:
            proj = np.bincount(self._learned_dev_gid, self._proj[self._learned_dev_idx], self._n_learned).tolist()
        else:
            proj = [0.0] * self._n_learned
        costs, safety = self._costs, self._safety
        infos = {}
        for agent, projection, protos, reports in zip(self._learned, proj, self._info_protos, self._info_devices):
            aid, period = agent.id, agent.period
            info = {
                "cost": costs[aid],
                "safety": safety[aid],
                "converged": sound,
                "failure": self._failure,
                "penalty": penalty,
                "acting": tick % period == 0,
                "ticks_to_next": (-tick) % period,
                "projection": projection,
            }
            for proto in protos:
                info[type(proto).__name__] = proto.info()
            if isinstance(agent, GridAgent) and agent.protocol is not None:
                own = agent.protocol.info()
                if own:
                    info[type(agent.protocol).__name__] = own
            for report in reports:
                for key, records in report().items():
                    info[key] = info.get(key, []) + records
            infos[aid] = info
        return infos

    # ------------------------------------------------------------------ helpers
    def agent_costs(self) -> dict[str, tuple[float, float]]:
        """``{agent id: (cost $, safety)}`` of every agent (learned or not) in the last step."""
        return {a: (self._costs[a], self._safety[a]) for a in self.scenario.agents}

    def render(self) -> np.ndarray | None:
        """``rgb_array``: the voltage profile and dispatch as an ``H × W × 3`` array; ``human``: a window."""
        if self.render_mode is None:
            return None
        from powergrid import render

        self._figure = render.draw(self, self._figure)
        if self.render_mode == "rgb_array":
            return render.to_rgb(self._figure)
        import matplotlib.pyplot as plt

        plt.pause(1.0 / self.metadata["render_fps"])
        return None

    def close(self) -> None:
        if self._figure is not None:
            import matplotlib.pyplot as plt

            plt.close(self._figure)
            self._figure = None

    def __getstate__(self) -> dict[str, Any]:
        """The whole state as one in-band pickle: no numpy buffer travels out of band.

        Ray's object store and pickle protocol 5 hand out-of-band buffers back read-only,
        and the step writes into its preallocated arrays. The open figure is not pickled.
        """
        state = {**self.__dict__, "_figure": None}
        return {"state": pickle.dumps(state, protocol=4)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(pickle.loads(state["state"]))

    def state(self) -> np.ndarray:
        """Global state: every bus voltage of the last sound power flow (1 pu before the first); see ``state_space``.

        In pu, or ``(V − 1)/0.05`` with ``spaces.observation: normalized``.
        """
        result = self.last_result if self.last_result is not None else self._nominal
        vm = result.vm_pu if self.config.spaces.observation == "raw" else (result.vm_pu - V_REF) / V_SCALE
        return np.clip(vm, self.state_space.low, self.state_space.high).astype(np.float32)


def _checked_action(agent_id: str, action: Any, space: gymnasium.spaces.Space) -> Any:
    """``action`` as a float64 array of ``space``'s shape (a Box), or one number (a Discrete); else :class:`ActionError`."""
    try:
        a = np.asarray(action)
    except ValueError:  # ragged nested lists
        a = np.asarray(None)
    shape = space.shape or (1,)
    if a.dtype.kind not in "iuf" or not (a.shape == shape or (a.ndim == 0 and shape == (1,))):
        got = f"{a.dtype} array of shape {a.shape}" if a.dtype.kind != "O" else type(action).__name__
        raise ActionError(f"agent {agent_id!r}: expected real numbers of shape {shape} for its action space {space}, "
                          f"got {got}")
    return a.astype(np.float64).reshape(shape) if isinstance(space, gymnasium.spaces.Box) else action


def _flat_size(space: gymnasium.spaces.Space) -> int:
    return int(gymnasium.spaces.flatdim(space)) if space is not None else 0


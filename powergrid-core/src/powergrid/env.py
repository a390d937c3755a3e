"""The multi-agent environment: a PettingZoo ``ParallelEnv`` over an AC power flow.

One step is one *tick*: the greatest common divisor of the physics step (``time.physics``),
every agent's period and offset and every link delay (see :mod:`powergrid.clock` and
``docs/time.md``); the physics runs at the ticks that start a physics step. One step:

1. actions in: agents acting this tick (their period or an event) choose — the last directive
   received from the parent when it carries an action, else the learned action or internal
   policy; the others hold their last action (multi-rate);
2. vertical protocols, top down: parents turn their action into directives, which reach each
   child at once (ideal link) or through the link's channel (delay, loss, capacity);
3. at a physics tick: horizontal protocols coordinate the peers; device physics over the physics
   step; injections gathered into arrays; AC power flow; measurements sent up the links;
4. cost ($), safety (≥ 0) and reward per agent (zero at a tick without physics); who acts next
   (period, events); observations out.

A failed step (the flow diverged, or its result or a cost holds NaN/inf) is an event, never
raised and never a gain: it is settled on the last sound flow, every learned agent loses the
penalty of :class:`~powergrid.config.RewardConfig` and, by default, the episode terminates
for all (a blackout). No NaN reaches observations, rewards, infos or :meth:`state`. An out-of-service bus is
no failure: its NaN voltage is 0 pu in the accepted flow (its branches carry nothing) and it counts in no zone.

``infos[agent]`` holds ``cost`` ($), ``safety`` (the step's violation, not multiplied by the step), ``converged``
(the step's flow was sound), ``failure`` (why not, else ""), ``penalty`` (so that ``reward = -(cost_weight·cost +
safety_weight·Δt_h·safety) - penalty``, Δt_h the physics step in h), ``acting`` (whether
the agent's next action will be used: multi-rate agents act at their periods and events),
``ticks_to_next`` and ``next_action_s`` (until its next periodic action), ``time_s`` (seconds since
the episode start), ``timestamp`` (the data's wall-clock time, ISO 8601, when the dataset
provider reports its episode start, else None), ``projection`` (how far its devices had to move
the requested actions to make them feasible), and with non-ideal links ``directive_age_s`` and
``measurement_age_s`` (by child). At a physics tick ``projection`` also counts how far the agent's extra actions
for horizontal protocols were clipped to their bounds and what its protocols report in ``info()["projection"]``: a
number from its vertical protocol (e.g. ``price_signal``'s price clipped to ``[price_min, price_max]``, $/MWh), the
entries of a horizontal protocol's mapping keyed by the agent or its device agents (NaN setpoints).

A device's per-step records (``Device.info()``, e.g. a HIL device's ``comm`` faults) go into the infos of the
learned agent at or above it (``infos[agent]["comm"]``, a list); a device with no learned agent at or above it
(a rule-driven meter beside the learned agents) reports into the env's entry ``infos["__common__"]`` as
``{"comm": {device agent id: records}}``, present only at a step with such records.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import pickle
import warnings
import zlib
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import attrs
import gymnasium
import numpy as np
import pandas as pd
from pettingzoo import ParallelEnv

from powergrid import plugins, scaling
from powergrid.agents import Agent, DeviceAgent, GridAgent
from powergrid.batching import DeviceGroups, FastSetpoints, whole_or
from powergrid.builder import Scenario, build_scenario, draw_episode
from powergrid.channels import Channel, ChannelParams, Link
from powergrid.config import MAX_TICKS, EnvConfig, LinkConfig
from powergrid.controllers import TapControl
from powergrid.devices import Device, StepContext, clip_action
from powergrid.errors import ActionError, PluginError, plugin_failure
from powergrid.loads import episode_start, previous_day
from powergrid.plugins import Registry, origin
from powergrid.protocols import Directive, VerticalProtocol
from powergrid.scaling import Feature
from powergrid.solvers.base import Injections, PowerFlowResult
from powergrid.solvers.fast import all_finite

#: Features every learned agent observes first: price ($/MWh), sin and cos of the hour,
#: acting flag (1 when its action is used this tick), fraction of its period until it next acts. Then its own: a
#: device agent's bus voltage (pu), a grid agent's devices' power (MW) and its zone's min, mean and max voltage (pu);
#: then, for an agent whose reward counts a store's credit (among its devices the meter billing a valued store,
#: ``Scenario.store_payers``), the store price ($/MWh, ``ctx.store_price``); then its
#: devices' and horizontal protocols' features, the price signal received, message ages and measurements, and the
#: global state (``observation: global``).
COMMON_FEATURES = 5
#: The ``res_*`` columns a :class:`PowerFlowResult` holds: (table, element table, ((column, result field), ...)).
_RESULT_COLUMNS = (("res_bus", "bus", (("vm_pu", "vm_pu"), ("va_degree", "va_degree"))),
                   ("res_line", "line", (("p_from_mw", "line_p_from_mw"), ("loading_percent", "line_loading_percent"))),
                   ("res_trafo", "trafo", (("p_hv_mw", "trafo_p_hv_mw"), ("p_lv_mw", "trafo_p_lv_mw"),
                                           ("q_lv_mvar", "trafo_q_lv_mvar"), ("loading_percent", "trafo_loading_percent"))),
                   ("res_ext_grid", "ext_grid", (("p_mw", "ext_grid_p_mw"), ("q_mvar", "ext_grid_q_mvar"))))
#: Age of a message (s) as an observation feature: raw 0 to 10 years, normalized ``age / AGE_SCALE``.
AGE_SCALE, AGE_BOUNDS = 3600.0, (0.0, 10 * 366 * 86400.0)
#: A measurement sent up a link: the child's device power (MW) and its zone's min, mean and max voltage (pu).
MEASUREMENT = 4
#: Episodes of at most this many ticks get their ``infos`` timestamps as strings once per reset (≈ 80 bytes a tick;
#: longer episodes: per step).
STAMP_TICKS = 2_000
#: The env's own ``infos`` entry (not an agent; PettingZoo's ``parallel_api_test`` passes, with a warning at the steps
#: that have it; RLlib reads ``__common__`` as one): the records of devices with no learned agent at or above them, only
#: at a step that has some.
COMMON_INFO = "__common__"
#: The layout of a pickled :class:`MultiAgentPowerGridEnv` and :class:`~powergrid.vector.VectorPowerGridEnv` (their own
#: state and every object pickled inside it: devices and their kernels, links, solvers…). Bump it whenever a change
#: alters what a pickle holds (e.g. c062e27 changed ``FastSetpoints``' state, 1655405 a lossy link's): a pickle of
#: another format is refused on load (:func:`check_pickle_format`) instead of failing deep inside an object.
PICKLE_FORMAT = 1


def check_pickle_format(kind: type, state: Any, key: str) -> None:
    """Raise one :class:`pickle.UnpicklingError` when the pickled ``state`` of a ``kind`` does not hold
    :data:`PICKLE_FORMAT` at ``key`` (an older or newer PowerGrid wrote it)."""
    found = state.get(key) if isinstance(state, dict) else None
    if type(found) is int and found == PICKLE_FORMAT:
        return
    shown = "not recorded (pickled by a PowerGrid from before format versions)" if found is None else repr(found)
    raise pickle.UnpicklingError(
        f"cannot load this pickled {kind.__name__}: its state format is {shown}, expected format {PICKLE_FORMAT} (written "
        f"by another PowerGrid version, whose pickled layout differs); rebuild the env from its scenario "
        f"({kind.__name__}(<scenario YAML or config>), then reset(seed=...)) instead of unpickling it")


class _NoAction:
    """The action of a learned agent that sent none (None, or its key absent) and its held form: its protocol is not
    asked, its device agents apply their defaults (``pending`` None: idle, MPPT…). One instance, kept by pickle and
    copy."""

    __slots__ = ()

    def __reduce__(self) -> str:
        return "_NO_ACTION"

    def __repr__(self) -> str:
        return "_NO_ACTION"


_NO_ACTION = _NoAction()
#: What a parent that sent no action hands the device children its actions drive: their default.
_DEFAULTS = Directive(action=_NO_ACTION)

#: Observation scaling (``spaces.observation: normalized``): a feature ``x`` is seen as
#: ``(x − ref)/scale`` with the constants of :mod:`powergrid.scaling` (price and store price (p − 50)/100 $/MWh,
#: voltage (V − 1)/0.05 pu, a grid agent's device power / its zone's base load); protocols
#: declare their features, device features keep their own bounds when inside [−1, 1].


class MultiAgentPowerGridEnv(ParallelEnv):
    """Hierarchical multi-agent power-grid environment (PettingZoo parallel API).

    Build it from a YAML file with :meth:`from_config` or from an
    :class:`~powergrid.config.EnvConfig`. PettingZoo agents are the agents with
    ``policy: learned``.
    """

    metadata = {"name": "powergrid_v0", "render_modes": ["human", "rgb_array"], "is_parallelizable": True,
                "render_fps": 4}
    #: under ``on_divergence: penalize`` with valued stores, their MWh before the physics step's device physics (a list,
    #: set at every physics tick); None otherwise (and in a pickle from before it): a failed flow bills what they took in
    _stores_before: list[float] | None = None

    def __init__(self, config: EnvConfig, *, registry: Registry | None = None, solver: str | None = None,
                 render_mode: str | None = None) -> None:
        if not isinstance(config, EnvConfig):
            raise TypeError(f"MultiAgentPowerGridEnv(config): expected an EnvConfig, got {type(config).__name__}; build "
                            f"from a YAML path or a mapping with MultiAgentPowerGridEnv.from_config(...)")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: expected one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode
        self._figure: Any = None
        self.config = config
        self.scenario: Scenario = build_scenario(config, registry, solver=solver)
        s = self.scenario
        self.solver = s.solver
        self.dt_h = config.time.dt_h
        #: the reward's weight of one physics step's safety (reward.safety_weight per unit per hour × the step, h)
        self._safety_w = config.reward.safety_per_step(self.dt_h)
        #: the least reward lost per physics step left after a failed flow (reward.divergence_penalty per hour × the
        #: step, h)
        self._divergence_w = config.reward.divergence_per_step(self.dt_h)
        #: in-service buses (positions); an out-of-service bus has no voltage (NaN in a flow, 0 pu once accepted) and
        #: counts in no zone's safety, observation, event or measurement
        self._bus_on = self.net.bus.in_service.to_numpy(bool)
        self._all_on = bool(self._bus_on.all())
        self._build_clock()
        self.possible_agents = [a.id for a in config.agents if s.agents[a.id].learned]
        self.agents: list[str] = []
        self._learned = [s.agents[i] for i in self.possible_agents]
        self._agent_cfg = {a.id: a for a in config.agents}
        self._build_links()
        # where the devices' injections go in net.sgen's arrays
        self._sgen_rows = whole_or(np.array([d.sgen_row for d in s.device_agents], dtype=np.int64), len(self.net.sgen))
        self._base_sgen_p = self.net.sgen.p_mw.to_numpy(float).copy()
        self._base_sgen_q = self.net.sgen.q_mvar.to_numpy(float).copy()
        self._base_load_p = self.net.load.p_mw.to_numpy(float).copy()
        self._base_load_q = self.net.load.q_mvar.to_numpy(float).copy()
        self.loads = s.loads
        self.ctx = StepContext(dt_h=self.dt_h, profiles={}, load_multipliers=np.ones((0, len(self._base_load_p))),
                               load_persistence=self.loads.persistence(config.time.step_minutes))
        self._grid_agents = [a for a in s.agents.values() if isinstance(a, GridAgent)]
        self._extra_slices = self._horizontal_slices()
        self._bus_pos = {int(b): p for p, b in enumerate(self.net.bus.index)}
        #: physical action spaces (device units); learned agents see ``_exposed_spaces``
        self._action_spaces = {a.id: self._build_action_space(a) for a in self._learned}
        self._check_something_to_learn()
        # the horizontal protocols' extra actions of each learned agent (after its own part) as one Box, and how far
        # the agent's last extra action was projected onto it (by agent position; counted in infos at physics ticks)
        self._extra_boxes = {}
        for aid, slices in self._extra_slices.items():
            space, own = self._action_spaces[aid], slices[0][1].start
            if isinstance(space, gymnasium.spaces.Box):
                self._extra_boxes[aid] = gymnasium.spaces.Box(space.low[own:], space.high[own:], dtype=np.float32)
        self._extra_proj = np.zeros(len(self._agent_ids))
        self._exposed_spaces = {a.id: self._build_exposed_action_space(a) for a in self._learned}
        self._action_maps = {aid: ((sp.high.astype(np.float64) + sp.low) / 2, (sp.high.astype(np.float64) - sp.low) / 2)
                             for aid, sp in self._action_spaces.items()
                             if self._exposed_spaces[aid] is not sp}
        self._observation_spaces = {a.id: self._build_observation_space(a) for a in self._learned}
        n_state = len(self.net.bus)
        self._n_bus = n_state
        v_lo, v_hi = scaling.VOLTAGE.low, scaling.VOLTAGE.high
        if config.spaces.observation == "normalized":
            v_lo, v_hi = (v_lo - scaling.VOLTAGE.ref) / scaling.VOLTAGE.scale, (v_hi - scaling.VOLTAGE.ref) / scaling.VOLTAGE.scale
        self.state_space = gymnasium.spaces.Box(v_lo, v_hi, (n_state,), dtype=np.float32)
        self._seed(config.seed)
        self._policies: dict[str, Any] = {}
        self._unchecked_policies: set[str] = set()  # policies whose first action this episode is not checked yet
        self._unchecked_directives: set[str] = set()  # parents whose protocol has handed no action down this episode
        self.tick = 0
        self._t0: dt.datetime | None = None
        self._stamps: list[str] | None = None
        #: The flow of the last step (voltages pu and degrees, flows MW/Mvar, loadings % in the net's table row order);
        #: a failed flow keeps the last sound one (or, at a reset, 1 pu and no flow); None before the first reset.
        self.last_result: PowerFlowResult | None = None
        n_bus, n_line, n_trafo, n_ext = self.solver.shape
        zeros = np.zeros
        self._nominal = PowerFlowResult(False, np.ones(n_bus), zeros(n_bus), zeros(n_line), zeros(n_line),
                                        zeros(n_trafo), zeros(n_trafo), zeros(n_ext), zeros(n_ext))
        self._worst_loss = 0.0  # the largest per-tick loss of any learned agent in this episode so far (the penalty)
        self._failure = ""
        self._ended = False  # the episode is over (its last tick, or a failed flow that terminates it)
        #: every agent's cost ($, row 0) and safety (≥ 0, row 1) in the last step, in ``_agent_ids`` order
        self._cost_safe = np.zeros((2, len(self._agent_ids)))
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
        # the devices with a store whose energy is valued at the episode's end at the mean price (those behind a
        # billing meter, Scenario.valued_stores); what the others hold is worth 0
        self._stores = [i for i, d in enumerate(devices) if d.id in s.valued_stores]
        self._stores_before = [] if self._stores and self.config.reward.on_divergence == "penalize" else None
        #: every agent's device agents (depth first), cached: ``Agent.devices()`` rebuilds the list each call
        self._devices_of = {aid: a.devices() for aid, a in s.agents.items()}
        # a store's credit is its payer's (Scenario.store_payers: the meter billing the energy that filled it). The
        # grid agents sum it on the store's row (_account), so one over the store and its meter sums as before; it
        # is then moved (_move_store_credit): taken from those over the store only, given to those over the meter
        # only (a device agent's own row never holds it: the meter's agent is given it, the store's keeps its own)
        pairs = [(devices[i].id, s.store_payers[devices[i].id]) for i in self._stores]
        moves = []  # (agent position, store, ±1): +1 takes the credit back, −1 gives it
        for aid, agent in s.agents.items():
            ids = {d.id for d in self._devices_of[aid]}
            summed = ids if isinstance(agent, GridAgent) else set()  # the stores' rows its sum holds credited
            for k, (store, payer) in enumerate(pairs):
                if sign := float(store in summed) - float(payer in ids):
                    moves.append((self._agent_pos[aid], k, sign))
        self._credit_at = np.array([m[0] for m in moves], np.int64)
        self._credit_of = np.array([m[1] for m in moves], np.int64)
        self._credit_sign = np.array([m[2] for m in moves], np.float64)
        self._dev_agent_pos = np.array([self._agent_pos[d.id] for d in devices], dtype=np.int64)

        # grid agents: their devices and zone buses as flat index arrays with a group id each
        def groups(members: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            idx = np.concatenate(members).astype(np.int64) if members else np.zeros(0, np.int64)
            gid = np.repeat(np.arange(len(members)), [len(m) for m in members]) if members else np.zeros(0, np.int64)
            return idx, gid.astype(np.int64)
        # measurements sent up non-ideal links: the child's devices and the buses of its zone, as flat groups
        self._up_dev_idx, self._up_dev_gid = groups([np.array([dev_pos[d.id] for d in self._devices_of[aid]], np.int64)
                                                     for aid in self._up_links])
        zones = [self._zone_of(aid) for aid in self._up_links]
        self._up_zone_idx, self._up_zone_gid = groups(zones)
        self._up_zone_start = np.concatenate([[0], np.cumsum([len(z) for z in zones])[:-1]]).astype(np.int64)
        self._up_zone_n = np.array([len(z) for z in zones], np.float64)
        ga = self._grid_agents
        self._n_grid = len(ga)
        self._grid_pos = np.array([self._agent_pos[a.id] for a in ga], dtype=np.int64)
        self._grid_dev_idx, grid_dev_gid = groups(
            [np.array([dev_pos[d.id] for d in self._devices_of[a.id]], np.int64) for a in ga])
        # the cost and safety of a grid agent's devices summed in one bincount: bins 0..n-1 cost, n..2n-1 safety
        self._grid_dev_gid2 = np.concatenate([grid_dev_gid, grid_dev_gid + self._n_grid])
        # flat positions: the devices' costs then safeties in the (n, 4) rows of DeviceGroups.costs, and where the
        # devices' and grid agents' (cost, safety) go in the (2, agents) array of _account
        n_agents = len(self._agent_ids)
        self._dev_cost_from = np.concatenate([4 * np.arange(self._n_dev), 4 * np.arange(self._n_dev) + 1])
        self._dev_cost_at = np.concatenate([self._dev_agent_pos, n_agents + self._dev_agent_pos])
        self._grid_dev_from = np.concatenate([4 * self._grid_dev_idx, 4 * self._grid_dev_idx + 1])
        self._grid_cost_at = np.concatenate([self._grid_pos, n_agents + self._grid_pos])
        self._grid_zone_idx, self._grid_zone_gid = groups([self._energized(np.asarray(a.zone, np.int64)) for a in ga])
        # the reward's limits as arrays the size of the zones' buses and branches (a ufunc is slower with a Python float)
        rw, nz = self.config.reward, len(self._grid_zone_idx)
        self._v_band = (np.full(nz, rw.v_max_pu), np.full(nz, rw.v_min_pu), np.zeros(nz))
        # the branches each zone sends (its lines' from_bus, its transformers' HV bus in it): the rows of the lines and
        # of the transformers, and the agent of each, lines first
        lines, line_gid = groups([self._sent_from(self.net.line.from_bus, a.zone) for a in ga])
        trafos, trafo_gid = groups([self._sent_from(self.net.trafo.hv_bus, a.zone) for a in ga])
        self._grid_branch_rows, self._grid_branch_gid = (lines, trafos), np.concatenate([line_gid, trafo_gid])
        nb = len(self._grid_branch_gid)
        self._branch_limit = (np.full(nb, rw.max_loading_percent), np.ones(nb), np.zeros(nb))
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
        self._obs_scaled = np.zeros_like(self._obs_buf)  # (buf − ref)/scale before float32
        self._obs_dim = dims[0] if dims and len(set(dims)) == 1 else 0  # 0: the sizes differ
        # the terminations and truncations a step returns, all False or all True, copied (faster than fromkeys)
        self._flag_dicts = {flag: dict.fromkeys(self.possible_agents, flag) for flag in (False, True)}
        scaling = [self._observation_scaling(a) for a in learned]
        normalized = self.config.spaces.observation == "normalized"
        self._obs_ref = np.concatenate([c[2] for c in scaling]) if normalized and scaling else 0.0
        self._obs_scale = np.concatenate([c[3] for c in scaling]) if normalized and scaling else 1.0
        self._obs_low = np.concatenate([self._observation_spaces[a.id].low for a in learned]) if learned else None
        self._obs_high = np.concatenate([self._observation_spaces[a.id].high for a in learned]) if learned else None
        self._periods = np.array([a.period for a in learned], dtype=np.int64)
        # every agent acting at every tick (one-tick periods, no offsets or events): one schedule for all ticks
        self._every_tick = not self._events and bool((self._all_periods == 1).all() and (self._all_offsets == 0).all())
        self._all_acting = np.ones(len(self._all_periods), bool)
        self._all_acting_list = self._all_acting.tolist()
        self._no_wait = np.zeros(len(learned), np.int64)
        self._all_acting.flags.writeable = self._no_wait.flags.writeable = False
        self._offsets = np.array([a.offset for a in learned], dtype=np.int64)
        self._learned_pos = np.array([self._agent_pos[a.id] for a in learned], dtype=np.int64)
        starts = self._obs_starts[:-1]
        self._obs_clock_at = (starts[:, None] + np.arange(3)).ravel()  # per agent: price, sin and cos of the hour
        self._obs_acting_at, self._obs_ahead_at = starts + 3, starts + 4  # whether it acts, ticks to its next action
        if self._every_tick:  # always acting, never waiting: written once
            self._obs_buf[self._obs_acting_at], self._obs_buf[self._obs_ahead_at] = 1.0, 0.0
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
        zones = [self._energized(np.asarray(learned[i].zone, np.int64)) for i in lgrid]
        zones = [z if z.size else np.array([n_bus], np.int64) for z in zones]
        self._lgrid_zone_idx, self._lgrid_zone_gid = groups(zones)
        self._lgrid_zone_start = (np.concatenate([[0], np.cumsum([len(z) for z in zones])[:-1]]).astype(np.int64)
                                  if zones else np.zeros(0, np.int64))
        self._lgrid_zone_n = np.array([len(z) for z in zones], dtype=np.float64)
        self._vm_ext = np.ones(n_bus + 1, np.float64)
        self._lgrid_no_sentinel = not (self._lgrid_zone_idx == n_bus).any()  # no empty zone: the voltages themselves
        self._lgrid_at4 = tuple(self._lgrid_at + j for j in range(4))  # a grid learner's p, zone min, mean, max
        # per learned agent: (device, slice) pairs and (protocol, slice) pairs in observation order
        self._obs_parts: list[list[tuple[Any, Any, slice]]] = []
        self._obs_down: list[tuple[int, Link]] = []  # where a directive's age goes
        self._obs_up: list[tuple[int, Link]] = []  # where a received measurement and its age go
        self._obs_global: list[slice] = []  # where the global state goes
        signal_at, signal_pos = [], []  # where the price a learned agent below a price signal saw goes, and its agent
        store_at = []  # where the store price goes (learned agents whose reward counts a store's credit)
        for a, start in zip(learned, starts):
            at = int(start) + COMMON_FEATURES + (1 if isinstance(a, DeviceAgent) else 4)
            if self._holds_store(a):
                store_at.append(at)
                at += 1
            parts = []
            for d in self._devices_of[a.id]:
                size = int(np.prod(d.device.observation_space.shape))
                if size:  # a device that observes nothing (e.g. a PCC meter) is not called
                    parts.append((d.device.observe, slice(at, at + size)))
                at += size
            for proto in s.horizontal:
                if a in proto.participants:
                    size = int(np.prod(proto.observation_space(a).shape))
                    parts.append((partial(proto.observe, a), slice(at, at + size)))
                    at += size
            self._obs_parts.append(parts)
            if self._sees_signal(a):
                signal_at.append(at)
                signal_pos.append(self._agent_pos[a.id])
                at += 1
            # received messages (non-ideal links), then the global state
            if a.id in self._down_links:
                self._obs_down.append((at, self._down_links[a.id]))
                at += 1
            for child in a.children:
                if child.id in self._up_links:
                    self._obs_up.append((at, self._up_links[child.id]))
                    at += MEASUREMENT + 1
            if self._agent_cfg[a.id].observation == "global":
                self._obs_global.append(slice(at, at + n_bus))
        self._obs_signal_at = np.array(signal_at, np.int64)
        self._obs_signal_pos = np.array(signal_pos, np.int64)
        self._obs_store_at = np.array(store_at, np.int64)  # written at reset: the store price holds for the episode
        # each observed device or protocol part once per step, copied to every agent that observes it
        flat: dict[Any, list[slice]] = {}
        for parts in self._obs_parts:
            for observe, where in parts:
                flat.setdefault(observe, []).append(where)
        self._info_protos = [[p for p in s.horizontal if a in p.participants] for a in learned]
        # devices with per-step records (``info()``: e.g. HIL communication faults), merged into their agent's infos
        self._info_devices = [[d.device.info for d in self._devices_of[a.id] if hasattr(d.device, "info")]
                              for a in learned]
        # ... and those with no learned agent at or above them, into infos[COMMON_INFO] (empty: nothing per step)
        self._common_reports = [(d.id, d.device.info) for d in devices
                                if hasattr(d.device, "info") and not _learned_at_or_above(d)]
        # devices stepped by kernels or object by object; setpoint parents routed as index maps (powergrid.batching)
        self._groups = DeviceGroups(devices, list(flat.items()), reactive=bool(s.horizontal))
        self._fast = FastSetpoints(s.roots if not s.horizontal else [], self._action_spaces, self._action_maps,
                                   self._down_links, self._agent_pos, self._groups.batches)
        fast_ids = set(self._fast.ids)
        self._fast_children = {c.id for a in self._fast.agents for c in a.children}

        # grid protocols whose reset does something, with their stream's key (children 2.. of the profiles' stream)
        self._grid_resets = [(2 + j, a) for j, a in enumerate(self._grid_agents)
                             if type(a.protocol).reset is not VerticalProtocol.reset]
        # devices that draw nothing at reset (Device.draws_at_reset, asked at every reset: parameters may change between
        # episodes): their own stream is not built (its key is still taken), they get this generator, which nothing
        # draws from (building a stream costs ~7 µs)
        self._unused_rng = np.random.default_rng(0)
        self._slow_roots = [r for r in s.roots if r.id not in fast_ids]
        self._slow_action_maps = {aid: m for aid, m in self._action_maps.items() if aid not in fast_ids}
        # the learned agents whose infos add entries: down link, up links by child, protocols, own protocol,
        # reports, and the ids a horizontal protocol's projection of the agent is keyed by (its own, its device agents')
        info_parts = [(a.id, self._down_links.get(a.id),
                       [(c.id, self._up_links[c.id]) for c in a.children if c.id in self._up_links], protos,
                       a.protocol if isinstance(a, GridAgent) and a.protocol is not None
                       and type(a.protocol).info is not VerticalProtocol.info else None, reports,
                       frozenset([a.id, *(d.id for d in self._devices_of[a.id])]))
                      for a, protos, reports in zip(learned, self._info_protos, self._info_devices)]
        self._info_parts = [(aid, down, ups, protos, own, reports, ids)
                            for aid, down, ups, protos, own, reports, ids in info_parts
                            if down is not None or ups or protos or own is not None or reports]
        # an ndarray of this shape and a numeric dtype is a valid action (others get the full check)
        self._action_shapes = {aid: sp.shape if isinstance(sp, gymnasium.spaces.Box) else None
                               for aid, sp in self._exposed_spaces.items()}

    # ------------------------------------------------------------------ construction
    def _build_clock(self) -> None:
        """The tick (s) and what follows from it, once: ticks per physics step, the episode in ticks,
        every agent's period and offset (ticks) as arrays, and the event conditions."""
        config, s = self.config, self.scenario
        time = config.time
        self.tick_s = config.tick_s
        self._tpp = time.physics_s // self.tick_s  # ticks per physics step
        self._tick_h = self.tick_s / 3600.0
        self.n_steps = time.steps_per_episode  # physics steps (the length of every profile)
        self.max_ticks = time.episode_s // self.tick_s
        if self.max_ticks > MAX_TICKS:
            raise config.source.error("time", f"the tick derived from the physics step, periods, offsets and link delays "
                                              f"is {self.tick_s} s, so an episode has {self.max_ticks:,} ticks (at most "
                                              f"{MAX_TICKS:,}); use durations with a larger common divisor")
        self._agent_ids = list(s.agents)
        self._agent_pos = {aid: i for i, aid in enumerate(self._agent_ids)}
        agents = list(s.agents.values())
        n = len(agents)
        self._all_periods = np.array([a.period for a in agents], np.int64)
        self._all_offsets = np.array([a.offset for a in agents], np.int64)
        #: actions taken by every agent (``_agent_ids`` order) in this episode; physics steps run
        self.action_counts = np.zeros(n, np.int64)
        self.physics_steps = 0
        self._last_act = np.zeros(n, np.int64)
        self._price_seen = np.zeros(n)  # the price each agent saw at the last tick, or a delayed one since arrived ($/MWh)
        self._signal = np.full(n, np.nan)  # the price its parent's last directive carried ($/MWh; NaN: none)
        self._acting = np.zeros(n, bool)
        self._acting_list = [False] * n
        self._events = []
        for a in config.agents:
            ev = a.events
            if ev is None:
                continue
            agent = s.agents[a.id]
            parent = agent.parent
            self._events.append(_Event(self._agent_pos[a.id], self._zone_of(a.id) if ev.voltage else None, ev.price_above,
                                       ev.message, self._agent_pos[parent.id] if parent is not None else -1,
                                       max(1, math.ceil(ev.min_interval_s / self.tick_s))))

    def _zone_of(self, agent_id: str) -> np.ndarray:
        """The bus positions an agent watches: its device's bus, or its zone (grid and system agents)."""
        agent = self.scenario.agents[agent_id]
        zone = np.array([agent.bus], np.int64) if isinstance(agent, DeviceAgent) else np.asarray(agent.zone, np.int64)
        return self._energized(zone if zone.size else np.unique(np.array([d.bus for d in agent.devices()], np.int64)))

    def _energized(self, buses: np.ndarray) -> np.ndarray:
        """The in-service ones of the bus positions ``buses``."""
        return buses if self._all_on else buses[self._bus_on[buses]]

    def _build_links(self) -> None:
        """A :class:`~powergrid.channels.Link` for every non-ideal direction of a parent–child link."""
        self._down_links: dict[str, Link] = {}
        self._up_links: dict[str, Link] = {}
        for a in self.config.agents:
            parent = self.scenario.agents[a.id].parent
            if parent is None:
                continue
            for cfg, table, sender, recipient in ((a.down, self._down_links, parent.id, a.id),
                                                  (a.up, self._up_links, a.id, parent.id)):
                if cfg is not None:
                    table[a.id] = Link(self._channel(cfg), sender, recipient)
        self._links = [*self._down_links.values(), *self._up_links.values()]
        # each link's loss stream is keyed by its two ends (crc32, stable across processes), not by its place in
        # _links: adding or removing another agent or link leaves this link's losses unchanged
        self._link_keys = [zlib.crc32(f"{link.sender}>{link.recipient}".encode()) for link in self._links]
        self._up_list = list(self._up_links.values())
        self._down_pos = [(link, self._agent_pos[aid]) for aid, link in self._down_links.items()]
        for ev in self._events:  # a message event watches the agent's down link (ideal: its parent acting)
            ev.link = self._down_links.get(self._agent_ids[ev.pos])

    def _channel(self, link: LinkConfig) -> Channel:
        return Channel(ChannelParams(delay=link.delay_s // self.tick_s, loss=link.loss, capacity=link.capacity))

    @property
    def net(self) -> Any:
        """The pandapower net (through the solver: tap positions the regulators moved are current when read). Its
        load and sgen tables keep the values of the build; its ``res_*`` tables those of the build's flow (solver
        ``pandapower``: of its last run), not the last step's: that is :attr:`last_result`, which
        :meth:`write_results` copies into them."""
        return self.solver.net

    def write_results(self) -> None:
        """Copy :attr:`last_result` into the net's ``res_bus`` (vm_pu, va_degree), ``res_line`` (p_from_mw,
        loading_percent), ``res_trafo`` (p_hv_mw, p_lv_mw, q_lv_mvar, loading_percent) and ``res_ext_grid`` (p_mw,
        q_mvar); their other columns become NaN (the result has no value for them). On demand, never per step.
        Before the first :meth:`reset` there is no flow: a RuntimeError."""
        if self.last_result is None:
            raise RuntimeError("write_results() called before reset(): no power flow yet; call reset() first")
        net, result = self.net, self.last_result
        for table, element, columns in _RESULT_COLUMNS:
            frame = pd.DataFrame(np.nan, index=net[element].index, columns=net[table].columns, dtype=np.float64)
            for column, field in columns:
                values = getattr(result, field)
                if len(values) == len(frame):
                    frame[column] = values
            net[table] = frame

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

    def _sent_from(self, ends: pd.Series, zone: np.ndarray) -> np.ndarray:
        """The rows of a branch table whose sending end (``ends``: ``net.line.from_bus`` or ``net.trafo.hv_bus``) is a
        bus of ``zone`` (bus positions): the branches whose loading a grid agent's safety counts."""
        sending = np.array([self._bus_pos[int(b)] for b in ends], dtype=np.int64)
        return np.flatnonzero(np.isin(sending, zone)) if len(sending) else np.zeros(0, np.int64)

    def _check_something_to_learn(self) -> None:
        """A learned agent whose action space is empty has nothing to learn: a device agent (e.g. a read-only HIL map)
        is a ConfigError at its ``policy``; a grid or system agent (e.g. ``setpoint`` over meters only, or protocol
        ``none``) one UserWarning there, as it still observes and is scored like a learned agent (the core's own tests
        use such an observer, core having no protocol that acts)."""
        for agent in self._learned:
            space = self._action_spaces[agent.id]
            if _flat_size(space):
                continue
            if isinstance(agent, DeviceAgent):
                found = f"its device {type(agent.device).__name__} takes no action"
            else:
                kids = ", ".join(repr(c.id) for c in agent.children)
                found = f"its protocol {type(agent.protocol).__name__} takes no action over its children ({kids})"
            error = self.config.source.error(f"{self._agent_cfg[agent.id].path}.policy", (
                f"agent {agent.id!r} is learned but has nothing to act on: {found}, so its action space "
                f"{type(space).__name__}{space.shape} is empty; expected a learned agent with at least one action entry "
                "(a device or protocol action, or a horizontal protocol's extra action); remove 'policy: learned' (its "
                "rule then runs it)"))
            if isinstance(agent, DeviceAgent):
                raise error
            warnings.warn(str(error), UserWarning, stacklevel=3)

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
        """Raw bounds and the (ref, scale) of every feature of ``agent``'s observation (see :mod:`powergrid.scaling`)."""
        hour = [scaling.UNIT] * 2 + [scaling.FLAG] * 2
        price, volt = scaling.PRICE, scaling.VOLTAGE
        if isinstance(agent, DeviceAgent):
            free = [price, *hour, volt]
        else:
            zone_load = float(self._base_load_p[np.isin(self.net.load.bus.map(self._bus_pos).to_numpy(),
                                                        agent.zone)].sum()) if len(self._base_load_p) else 0.0
            free = [price, *hour, scaling.power(zone_load), volt, volt, volt]
        if self._holds_store(agent):
            free.append(price)  # the store price
        parts = [Feature.from_bounds(lo, hi) for d in agent.devices()
                 for lo, hi in zip(d.device.observation_space.low.ravel().tolist(),
                                   d.device.observation_space.high.ravel().tolist())]
        for proto in self.scenario.horizontal:
            if agent in proto.participants:
                features = list(proto.observation_features(agent))
                space = proto.observation_space(agent)
                parts += features if features else [Feature.from_bounds(lo, hi) for lo, hi in
                                                    zip(space.low.ravel().tolist(), space.high.ravel().tolist())]
        if self._sees_signal(agent):
            parts.append(price)
        age = Feature(*AGE_BOUNDS, 0.0, AGE_SCALE)
        tail = [age] if agent.id in self._down_links else []
        for child in agent.children:
            if child.id in self._up_links:
                tail += [scaling.power(1.0), volt, volt, volt, age]
        if self._agent_cfg[agent.id].observation == "global":
            tail += [volt] * len(self.net.bus)
        features = free + parts + tail
        return tuple(np.array([getattr(f, k) for f in features], np.float64) for k in ("low", "high", "ref", "scale"))

    def _holds_store(self, agent: Agent) -> bool:
        """Whether ``agent``'s reward counts a store's end-of-episode credit: a meter among its devices bills a valued
        store's energy (``Scenario.store_payers``). A learned agent there observes ``ctx.store_price``."""
        payers = set(self.scenario.store_payers.values())  # asked while the spaces are built, at init only
        return any(d.id in payers for d in agent.devices())

    @staticmethod
    def _sees_signal(agent: Agent) -> bool:
        """Whether a protocol above ``agent`` sends prices (``VerticalProtocol.price_directives``): a learned agent
        there observes the price it received."""
        above = agent.parent
        while above is not None:
            if getattr(above.protocol, "price_directives", False):
                return True
            above = above.parent
        return False

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
        """Normalized Box actions mapped to physical units: ``mid + half·a`` (outside [-1, 1] stays outside).

        The fast setpoint parents are mapped by :class:`~powergrid.batching.FastSetpoints`."""
        if not self._slow_action_maps:
            return actions
        mapped = dict(actions)
        for agent_id, (mid, half) in self._slow_action_maps.items():
            action = actions.get(agent_id)
            if action is not None:
                a = np.asarray(action, np.float64)
                if a.shape == mid.shape or (a.ndim == 0 and mid.shape == (1,)):  # (one number for a one-entry Box)
                    mapped[agent_id] = mid + half * a
        return mapped

    def rule_action(self, agent_id: str) -> Any:
        """``agent_id``'s own rule (its device's or protocol's) as the action it would send now.

        The :meth:`physical_rule` values, followed by each horizontal protocol's :meth:`rule_extra` (what it does
        for a rule participant; zeros from a protocol without one), clipped to the physical space and expressed in the
        configured action convention. With several horizontal protocols a later one sees the setpoints as the earlier
        ones' rules left them. Under a price signal it answers the price last received: a parent that sends a new
        price at this tick decides in the same step as the learned agents, so at the parent's period boundary a rule
        child inside the step (which sees that tick's price) can act differently from a learned twin sent
        ``rule_action`` (hierarchy task: its GridAgents' DG differ by up to 0.57 MW at the ISO's 4-hour boundaries).
        """
        own = self.physical_rule(agent_id)
        space = self._action_spaces[agent_id]
        if not isinstance(space, gymnasium.spaces.Box):
            return own
        full = self._with_rule_extras(agent_id, np.asarray(own, np.float64).reshape(-1)).reshape(space.shape)
        return self.action_from_physical(agent_id, full.clip(space.low, space.high)).astype(np.float32)

    def _with_rule_extras(self, agent_id: str, own: np.ndarray) -> np.ndarray:
        """``own`` (physical) followed by each horizontal protocol's rule extra, in the action's layout."""
        entries = self._extra_slices.get(agent_id)
        if not entries:
            return own
        agent = self.scenario.agents[agent_id]
        protocol = getattr(agent, "protocol", None)
        slices = protocol.action_slices() if protocol is not None else None
        parts = [own[where].copy() for where in slices] if slices else None
        extras = []
        for proto, where in entries:
            value = proto.rule_extra(agent, parts, self.ctx)
            extras.append(np.zeros(where.stop - where.start) if value is None else np.asarray(value, np.float64))
        return np.concatenate([np.concatenate(parts) if parts is not None else own, *extras])

    def physical_rule(self, agent_id: str) -> Any:
        """``agent_id``'s own rule now in device units (MW, $/MWh, …), as its internal policy would act: at the
        nearest price signal above it (a parent passes its price on), else at the market price."""
        agent = self.scenario.agents[agent_id]
        ctx, signal, above = self.ctx, math.nan, agent
        while signal != signal and above is not None:  # the nearest signal down to it: a parent passes its price on
            signal, above = self._signal[self._agent_pos[above.id]], above.parent
        market = ctx.price
        if signal == signal:  # under a price signal the rule answers that price, as the internal policy does
            ctx.price = float(signal)
        try:
            return agent.rule_action(ctx)
        finally:
            ctx.price = market

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

    def _seed(self, seed: Any) -> None:
        """Seed the episodes' streams: ``np.random.default_rng(seed)``'s seed sequence and how many children
        it had spawned (each reset takes the next ones, as ``Generator.spawn`` does)."""
        self._seed_seq = np.random.default_rng(seed).bit_generator.seed_seq
        self._spawned = self._seed_seq.n_children_spawned

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        observations, infos = self._reset(seed, options)
        return self._obs_dict(observations), infos

    def _reset(self, seed: int | None, options: dict[str, Any] | None, out: np.ndarray | None = None
               ) -> tuple[np.ndarray, dict[str, dict[str, Any]]]:
        """:meth:`reset` with the observations as one flat float32 array (written into ``out`` when given)."""
        if seed is not None:
            self._seed(seed)
        s = self.scenario
        # the streams ``Generator.spawn(n)`` of the env's seed gives, each built only for a consumer that takes one
        # (a Generator costs ~10 us): the profiles' first, then the others from the last child down
        root, first = self._seed_seq, self._spawned
        self._spawned += 3 + len(s.device_agents) + len(s.agents) + len(s.horizontal)
        keys = iter(range(self._spawned - 1, first, -1))
        profile_rng = _stream(root, first)
        profile_seq = profile_rng.bit_generator.seed_seq
        # every provider gets the same seed, so data providers pick the same start day for all roles
        profile_seed = int(profile_rng.integers(2**63))
        self.ctx.profiles = {}
        for role, provider in s.providers.items():  # the data's fault named here, not charged to the agents later
            self.ctx.profiles[role] = draw_episode(self.config, role, provider, np.random.default_rng(profile_seed))
        self._t0 = _episode_t0(s.providers)
        self._stamps = _iso_stamps(self._t0, self.tick_s, self.max_ticks)
        time, load = self.config.time, s.providers["load"]
        self.ctx.load_multipliers, self.ctx.load_forecast = self.loads.episode(
            self.ctx.profiles["load"], step_minutes=time.step_minutes, start_hour=time.start_hour,
            start=episode_start(load), rng=_stream(profile_seq, 0),
            known=previous_day(load, len(self.ctx.profiles["load"]), time.step_minutes))
        self._freeze_schedule()
        for d in s.device_agents:
            key = next(keys)
            d.device.reset(_stream(root, key) if d.device.draws_at_reset() else self._unused_rng)
            d.pending, d.last_action, d.price = None, None, 0.0
            d.reactive.q_mvar = None
        self._groups.load()
        # the $/MWh a store's energy is worth at the end (reward.storage_value), and the stores' MWh at the start
        self.ctx.store_price = float(np.mean(self.ctx.profiles["price"][:self.n_steps])) if self._stores else 0.0
        if self._stores:
            self._stored0 = np.array([self._devices[i].stored_mwh() for i in self._stores])
        self._obs_buf[self._obs_store_at] = self.ctx.store_price
        self._policies = {}
        for agent_id, cls in s.policies.items():
            agent = s.agents[agent_id]
            agent.last_action = None
            if cls is not None:
                key = next(keys)
                if agent_id not in self._fast_children:  # the fast setpoint children never ask their policy
                    self._policies[agent_id] = cls(agent, _stream(root, key))
        self._unchecked_policies = set(self._policies)
        self._unchecked_directives = {a.id for a in self._grid_agents}
        for proto in s.horizontal:
            proto.reset(_stream(root, next(keys)))
        for link, key in zip(self._links, self._link_keys):  # seeded from child _link_keys[k] of the profiles' child 1
            link.reset(int(_child(profile_seq, 1, key).generate_state(1, np.uint64)[0]))
        for key, grid in self._grid_resets:  # after the links' seeds, so their streams are unchanged
            grid.protocol.reset(_stream(profile_seq, key))
        self.action_counts[:] = 0
        self.physics_steps = 0
        self._worst_loss = 0.0  # the penalty depends on this episode only: reset(seed) repeats its rewards
        self._last_act[:] = -self.max_ticks - 1
        self._held_extra: dict[str, list[tuple[Any, np.ndarray]]] = {}  # learned agents' last horizontal parts
        self._extra_proj[:] = 0.0
        self._signal[:] = np.nan
        self._fast.reset()
        self.tick = 0
        self.agents = list(self.possible_agents)
        self._ended = False
        self._set_time(0)
        self._price_seen = np.full(len(self._agent_ids), self.ctx.price)  # before any directive: the market price
        self._schedule(0)
        self._cost_safe = np.zeros((2, len(self._agent_ids)))
        if hasattr(self, "tap_control"):  # regulators at their initial taps first: a shunt's recompile below is
            self.tap_control.rewind()  # there, and the restart after it finds no tap away (no second recompile)
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
        self._groups.check_counts()
        observations = self._observe(out)
        zeros = [0.0] * self._n_learned
        infos = self._infos(sound, 0.0, zeros, zeros)
        return observations, infos

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        self._check_actions(actions)
        physics_step = self._before_flow(actions)
        return self._step_dicts(*self._after_flow(self._solve(physics_step) if physics_step is not None else None))

    def _step_dicts(self, observations: np.ndarray, rewards: list[float], terminate: bool, truncate: bool,
                    infos: dict[str, dict[str, Any]]) -> tuple[dict, dict, dict, dict, dict]:
        """:meth:`_after_flow`'s arrays as :meth:`step`'s PettingZoo dicts by learned agent."""
        flags = self._flag_dicts
        return (self._obs_dict(observations), dict(zip(self.possible_agents, rewards)), flags[terminate].copy(),
                flags[truncate].copy(), infos)

    def _before_flow(self, actions: Mapping[str, Any]) -> int | None:
        """The part of :meth:`step` up to the power flow, for actions :meth:`_check_actions` accepted: actions,
        protocols and, at a physics tick, device physics, network settings and the devices' injections
        (``self._injections``; :meth:`_solve` adds the loads).

        Returns the physics step whose flow :meth:`_after_flow` takes next, or None at a tick without physics.
        """
        s, ctx, t = self.scenario, self.ctx, self.tick
        self._set_time(t)
        market_price = ctx.price
        extra: dict[Any, dict[str, np.ndarray]] = {proto: {} for proto in s.horizontal}
        actions = self._physical_actions(actions)
        self._decide_roots(actions, market_price, extra)
        if t % self._tpp:
            return None
        if s.horizontal:  # the market (the ISO's horizontal protocols) sees the market price, not a child's signal
            signal, ctx.price = ctx.price, market_price
            for proto in s.horizontal:
                proto.coordinate(extra[proto], ctx)
            ctx.price = signal
        if self._stores_before is not None:  # penalize: what a failed flow bills is the stores' change from here
            self._stores_before = [self._devices[i].stored_mwh() for i in self._stores]
        self._groups.step(ctx)
        ctx.price = market_price
        self._apply_network_settings()
        self._device_injections()
        return t // self._tpp

    def _after_flow(self, result: PowerFlowResult | None, out: np.ndarray | None = None
                    ) -> tuple[np.ndarray, list[float], bool, bool, dict[str, dict[str, Any]]]:
        """The part of :meth:`step` from the tick's flow ``result`` (None at a tick without physics): accept or
        fail, settle, cost and safety, rewards, the next tick's schedule, observations and infos.

        Returns the learned agents' observations (one flat float32 array, written into ``out`` when given), rewards
        (in ``possible_agents`` order), whether the episode terminated or was truncated (for all), and the infos.
        """
        ctx, t = self.ctx, self.tick
        rw = self.config.reward
        sound = stores_settled = True
        if result is not None:
            sound = self._accept(result)
            flow = self.last_result  # a failed step is settled on the last sound flow, never on NaN or zeros
            self._groups.settle(flow, ctx)
            # the stores are settled at the episode's last physics step, or at a failed flow that ends it here
            stores_settled = t + self._tpp >= self.max_ticks or (not sound and rw.on_divergence == "terminate")
            self._account(flow, last=stores_settled)
            self.physics_steps += 1
            self._measure(t + 1)
        else:  # no physics: nothing spent, violated or projected at this tick
            self._cost_safe = np.zeros((2, len(self._agent_ids)))
            self._proj = np.zeros(self._n_dev)
        self.tick = t + 1
        for link in self._links:  # what has arrived by the next tick is observed, and may trigger events
            link.poll(self.tick)
        for link, pos in self._down_pos:  # an arrived price is seen at once, with its age (a non-finite one fails at use)
            if link.arrived and link.last is not None and link.last.price is not None and math.isfinite(link.last.price):
                self._signal[pos] = self._price_seen[pos] = link.last.price
            elif link.arrived and link.last is None:  # a price_signal parent that sent none: no signal from now on
                self._signal[pos] = math.nan
        cw, sw = rw.cost_weight, self._safety_w
        cost, safe = self._cost_safe[:, self._learned_pos].tolist()
        rewards = [-(cw * c + sw * s) for c, s in zip(cost, safe)]
        # every agent's cost and safety, learned or not (r40 F3), and the rewards: a finite cost can overflow there
        if sound and not (all_finite(self._cost_safe) and all(map(math.isfinite, rewards))):
            if self._n_dev:  # a non-finite cost or safety set by a device's step: its plugin's bug, named (PluginError)
                self._groups.check_step_costs()
            names = ", ".join(repr(self._agent_ids[i]) for i in np.flatnonzero(self._unweighable()))
            sound, self._failure = False, f"non-finite cost or safety of {names}"
        elif not sound:
            assert result is not None
            if self._n_dev and not all_finite(self._cost_safe):
                self._groups.check_step_costs()
            self._failure = ("power flow diverged" if not result.converged else "power flow gave non-finite values") \
                + self._culprits()
        terminate = False
        penalty = 0.0
        if sound:
            self._failure = ""
            if rewards:
                self._worst_loss = max(self._worst_loss, -min(rewards))
        else:
            terminate = rw.on_divergence == "terminate"
            billed = None  # what the stores took in at a failed flow, billed below the floor (penalize, reward units)
            if terminate and not stores_settled and self._stores:  # a non-finite cost ends the episode here
                self._credit_failed_step(self._store_change())
                rewards = [-(cw * c + sw * s) for c, s in zip(*self._cost_safe[:, self._learned_pos].tolist())]
            elif self._stores_before is not None and not stores_settled and self._failure.startswith("power flow"):
                # penalize, a failed flow before the last step: settled on the last sound flow, whose import paid for
                # nothing the stores took in at this step, so their change over it is billed at the store price to
                # whoever their credit pays (the episode's end credits it back): the credit never pays for energy no
                # meter billed (r47a F1). At the last step the credit is settled here, under the floor, as at terminate
                stored = [self._devices[i].stored_mwh() for i in self._stores]
                change = (np.array(self._stores_before) - stored) * self.ctx.store_price  # a credit: < 0 when charged
                before = self._cost_safe[0, self._learned_pos]
                self._credit_failed_step(change)
                bill = cw * (self._cost_safe[0, self._learned_pos] - before)
                billed = np.nan_to_num(np.maximum(bill, 0.0), nan=0.0, posinf=0.0).tolist()
                rewards = [-(cw * c + sw * s) for c, s in zip(*self._cost_safe[:, self._learned_pos].tolist())]
            self._cost_safe[~np.isfinite(self._cost_safe)] = 0.0
            self._cost_safe[:, self._unweighable()] = 0.0  # a finite cost that overflows is no cost either
            cost, safe = self._cost_safe[:, self._learned_pos].tolist()
            ticks_lost = -(-(self.max_ticks - t) // self._tpp) if terminate else 1  # physics steps lost
            penalty = max(self._divergence_w, self._worst_loss) * ticks_lost
            # the failed tick itself scores no better than the worst sound tick seen (no gain from causing it)
            floor = -self._worst_loss
            if billed is None:
                rewards = [(min(r, floor) if np.isfinite(r) else floor) - penalty for r in rewards]
            else:  # a store's bill lowers the tick below the floor; a refund (a store emptied) lifts it at most to it
                rewards = [(min(r, floor - b) if np.isfinite(r) else floor - b) - penalty for r, b in zip(rewards, billed)]
            # what each agent is charged beyond its reported cost and safety: the penalty and the floor's difference
            penalty = [-(cw * c + sw * s) - r for c, s, r in zip(cost, safe, rewards)]
        done = self.tick >= self.max_ticks
        self._set_time(min(self.tick, self.max_ticks - 1))
        self._schedule(self.tick)
        observations = self._observe(out)
        infos = self._infos(sound, penalty, cost, safe, result is not None)
        self._ended = done or terminate
        if self._ended:
            self.agents = []
        return observations, rewards, terminate, done and not terminate, infos

    def _culprits(self, top: int = 3) -> str:
        """For a failed flow's text (the failure path only): the ``top`` largest device injections of the step (MW,
        generator convention), each with its agent, plugin and bus, against the network's load at the tick — a plugin's
        kW for MW or a huge setpoint stands out (``"; largest injections: 'tank' (device 'TankKW' from …) -30 MW at bus
        'Bus R11'; network load 0.43 MW"``)."""
        if not self._n_dev:
            return ""
        p = self._sgen_p[self._sgen_rows]
        order = [i for i in np.argsort(-np.abs(p), kind="stable")[:top].tolist() if p[i] != 0.0]
        if not order:
            return ""
        parts = []
        for i in order:
            agent = self._groups.device_agents[i]
            name = self.net.bus.name.get(agent.bus) if "name" in self.net.bus else None
            bus = repr(name) if isinstance(name, str) and name else str(agent.bus)
            plugin = origin(agent.device).rsplit(", ", 1)[0]  # without its file: the text stays one line
            parts.append(f"{agent.id!r} ({plugin}) {p[i]:.4g} MW at bus {bus}")
        return f"; largest injections: {', '.join(parts)}; network load {float(self._load_p.sum()):.4g} MW"

    def _unweighable(self) -> np.ndarray:
        """Which agents' weighted cost and safety (``cost_weight·cost + safety_weight·safety``) is not finite: a
        NaN or inf in either, or finite ones whose weighted sum overflows."""
        rw = self.config.reward
        with np.errstate(over="ignore", invalid="ignore"):
            return ~np.isfinite(rw.cost_weight * self._cost_safe[0] + self._safety_w * self._cost_safe[1])

    # ------------------------------------------------------------------ step parts
    def _schedule(self, tick: int) -> None:
        """Who acts at ``tick``: agents at a periodic tick, and agents whose event condition held at the
        end of the tick before (at least ``min_interval`` after their last action)."""
        if self._every_tick:  # the same at every tick: all act, none waits
            self._acting, self._acting_list, self._ahead = self._all_acting, self._all_acting_list, self._no_wait
            for link in self._links:
                link.arrived = False
            return
        due = (tick >= self._all_offsets) & ((tick - self._all_offsets) % self._all_periods == 0)
        if self._events and 0 < tick < self.max_ticks:  # no tick before the first: no event at a reset
            vm = self.last_result.vm_pu  # the flow of the tick before (after a reset's solve: never None)
            rw = self.config.reward
            was_acting = self._acting_list
            for ev in self._events:
                pos = ev.pos
                if due[pos] or tick - self._last_act[pos] < ev.min_ticks:
                    continue
                fire = False
                if ev.zone is not None:
                    v = vm[ev.zone]
                    fire = bool((v < rw.v_min_pu).any() or (v > rw.v_max_pu).any())
                if not fire and ev.price_above is not None:
                    fire = self._price_seen[pos] > ev.price_above
                if not fire and ev.message:
                    fire = ev.link.arrived if ev.link is not None else ev.parent >= 0 and was_acting[ev.parent]
                due[pos] = fire
        self._acting = due
        self._acting_list = due.tolist()
        self._ahead = self._next_ticks(tick)
        for link in self._links:
            link.arrived = False

    def _next_ticks(self, tick: int) -> np.ndarray:
        """Ticks from ``tick`` until every learned agent next acts (0 when it acts then)."""
        off = self._offsets
        ahead = np.where(tick < off, off - tick, (off - tick) % self._periods)
        return np.where(self._acting[self._learned_pos], 0, ahead)

    def _measure(self, tick: int) -> None:
        """Send up every non-ideal up link its child's measurement at the end of a physics step (at ``tick``):
        device power (MW), zone min/mean/max voltage (pu)."""
        if not self._up_list:
            return
        n = len(self._up_list)
        v = self.last_result.vm_pu[self._up_zone_idx]
        rows = np.stack([np.bincount(self._up_dev_gid, self._dev_p[self._up_dev_idx], n),
                         np.minimum.reduceat(v, self._up_zone_start), np.bincount(self._up_zone_gid, v, n) / self._up_zone_n,
                         np.maximum.reduceat(v, self._up_zone_start)], axis=1)
        for link, row in zip(self._up_list, rows):
            link.send(row, tick)

    def is_acting(self, agent_id: str) -> bool:
        """Whether ``agent_id``'s action is used at the current tick (its period or an event)."""
        return self._acting_list[self._agent_pos[agent_id]]

    def acting_agents(self) -> list[str]:
        """The learned agents whose actions the next :meth:`step` uses."""
        acting = self._acting_list
        return [aid for aid, pos in zip(self.possible_agents, self._learned_pos.tolist()) if acting[pos]]

    def action_count(self, agent_id: str) -> int:
        """How many actions ``agent_id`` took in this episode so far."""
        return int(self.action_counts[self._agent_pos[agent_id]])

    @property
    def time_s(self) -> int:
        """Seconds since the episode start."""
        return self.tick * self.tick_s

    @property
    def ended(self) -> bool:
        """Whether the episode is over: its last tick played, or a failed power flow under ``on_divergence:
        terminate`` (``env.agents`` is then empty, but a scenario without learned agents has none at any time)."""
        return self._ended

    @property
    def failure(self) -> str:
        """Why the last step's power flow failed ("" when it was sound; every learned agent's ``infos`` says the
        same, but a scenario without learned agents has no agents' infos)."""
        return self._failure

    @property
    def timestamp(self) -> dt.datetime | None:
        """The data's wall-clock time now, when the dataset provider reports its episode start (``last_start``)."""
        return self._t0 + dt.timedelta(seconds=self.time_s) if self._t0 is not None else None

    def _set_time(self, tick: int) -> None:
        """The context at ``tick``: ``ctx.tick`` is the physics step (the index of every profile)."""
        ctx = self.ctx
        ctx.tick = tick // self._tpp
        ctx.hour = (self.config.time.start_hour + tick * self._tick_h) % 24.0
        ctx.price = float(ctx.profiles["price"][ctx.tick])

    def _decide_roots(self, actions: Mapping[str, Any], price: float, extra: dict[Any, dict[str, np.ndarray]]) -> None:
        """Every agent's action this tick: the fast setpoint parents as arrays, the other roots down their trees."""
        if self._fast:
            self._fast.decide(actions, price, self.tick, self._acting, self.action_counts, self._last_act,
                              self._price_seen, self.ctx, every_tick=self._every_tick)
        for root in self._slow_roots:
            self._decide(root, None, actions, price, extra)

    def _decide(self, agent: Agent, directive: Directive | None, actions: Mapping[str, Any], price: float,
                extra: dict[Any, dict[str, np.ndarray]]) -> None:
        """Choose ``agent``'s action this tick and pass directives down to its children.

        ``directive`` is the parent's directive now; over a non-ideal link the agent has the last
        one its channel delivered instead. It acts when :meth:`_schedule` says so (the directive's
        action when it carries one); before its first action it follows its own rule.
        """
        pos = self._agent_pos[agent.id]
        link = self._down_links.get(agent.id)
        if link is not None:
            if self._acting_list[self._agent_pos[link.sender]]:
                link.send(directive, self.tick)
                if not link.channel.delay:  # else it cannot arrive before the next tick's poll
                    link.poll(self.tick)
            directive = link.last
        if directive is not None and directive.price is not None:
            price = directive.price
            if not math.isfinite(price):
                raise PluginError(f"{_protocol_where(agent.parent, self.ctx)} sent agent {agent.id!r} the price {price}; "
                                  "a directive's price must be finite ($/MWh)")
            self._signal[pos] = price
        self._price_seen[pos] = price
        if self._acting_list[pos]:
            if directive is not None and directive.action is not None:
                action = directive.action
            elif agent.learned:
                action = self._learned_action(agent, actions.get(agent.id), extra)
            else:
                self.ctx.price = price
                action = self._policies[agent.id].act(self.ctx)
                if self._unchecked_policies and agent.id in self._unchecked_policies:
                    self._check_policy_action(agent, action)
            agent.last_action = action
            self.action_counts[pos] += 1
            self._last_act[pos] = self.tick
        elif agent.last_action is not None:  # between its actions an agent holds its action and its protocol parts
            action = agent.last_action
            for proto, part in self._held_extra.get(agent.id, ()):
                extra[proto][agent.id] = part
        else:  # before its first action: its own rule (or its parent's current setpoint)
            self.ctx.price = price
            action = directive.action if directive is not None and directive.action is not None else agent.rule_action(self.ctx)
        if isinstance(agent, DeviceAgent):
            agent.pending, agent.price = (None if action is _NO_ACTION else action), price
            return
        self.ctx.price = price
        assert isinstance(agent, GridAgent) and agent.protocol is not None
        if action is _NO_ACTION:  # it sent none: its protocol is not asked; the device children its actions drive
            drives = not agent.protocol.price_directives  # apply their defaults, the others decide on their own
            for child in agent.children:
                if not drives and child.id not in self._down_links:  # no signal now: physical_rule at the market price
                    self._signal[self._agent_pos[child.id]] = math.nan
                self._decide(child, _DEFAULTS if drives and isinstance(child, DeviceAgent) and not child.learned else None,
                             actions, price, extra)
            return
        try:
            directives = agent.protocol.directives(action, self.ctx)
        except Exception as exc:  # a protocol's bug: named once, chained
            raise plugin_failure(exc, _protocol_where(agent, self.ctx)) from exc
        if len(directives) != len(agent.children):
            raise PluginError(f"{_protocol_where(agent, self.ctx)} returned {len(directives)} directive(s) for "
                              f"{len(agent.children)} children; expected one per child (None lets a child decide)")
        if self._unchecked_directives and agent.id in self._unchecked_directives:
            self._check_directives(agent, directives)
        for child, child_directive in zip(agent.children, directives):
            self._decide(child, child_directive, actions, price, extra)

    def _check_directives(self, agent: GridAgent, directives: Sequence[Directive | None]) -> None:
        """Raise :class:`PluginError` when a directive's action has not the size of its child's own Box space (else the
        child's step reports a reshape error, or applies zeros); each tick until the parent's protocol first hands an
        action down in an episode (a protocol of price directives: its first tick only)."""
        if agent.protocol is not None and agent.protocol.price_directives:
            self._unchecked_directives.discard(agent.id)
        for child, directive in zip(agent.children, directives):
            if directive is None or directive.action is None:
                continue
            self._unchecked_directives.discard(agent.id)
            space = child.own_action_space
            if isinstance(space, gymnasium.spaces.Box) and np.size(directive.action) != int(np.prod(space.shape)):
                raise PluginError(f"{_protocol_where(agent, self.ctx)} gave child {child.id!r} an action of shape "
                                  f"{np.shape(directive.action)}, expected shape {space.shape} (its action space {space})")

    def _check_policy_action(self, agent: Agent, action: Any) -> None:
        """Raise :class:`ActionError` when an internal policy's action has not the size of its agent's own Box space
        (else a protocol splits it wrongly and a child device reports the mistake); once per policy and episode."""
        self._unchecked_policies.discard(agent.id)
        space = agent.own_action_space
        if action is None or not isinstance(space, gymnasium.spaces.Box):
            return
        if np.size(action) != int(np.prod(space.shape)):
            raise ActionError(f"policy {agent.policy!r} of agent {agent.id!r} returned an action of shape {np.shape(action)}, "
                              f"expected shape {space.shape} (its own action space {space})")
        try:
            finite = bool(np.isfinite(np.asarray(action, np.float64)).all())
        except (TypeError, ValueError):  # not numbers: the device's step names it
            return
        if not finite:  # projected to the middle of its bounds, the policy would play another action silently
            owner = agent.device if isinstance(agent, DeviceAgent) else getattr(agent, "protocol", None)
            rule = agent.policy == "rule" and owner is not None  # the device's or protocol's own rule: its plugin's bug
            who = (f"agent {agent.id!r} ({origin(owner)}): {type(owner).__name__}.rule_action()" if rule
                   else f"policy {agent.policy!r} of agent {agent.id!r}")
            error = PluginError if rule else ActionError
            raise error(f"{who} at ctx.tick {self.tick} returned {np.asarray(action).tolist()}; a policy's action must be "
                        f"finite (a NaN or inf entry would be projected to the middle of its bounds: another action than "
                        f"the policy's, silently)")

    def _learned_action(self, agent: Agent, action: Any, extra: dict[Any, dict[str, np.ndarray]]) -> Any:
        """Split a learned agent's action into its own part and each horizontal protocol's part."""
        space = self._action_spaces[agent.id]
        slices = self._extra_slices.get(agent.id)
        if action is None:  # it sent none: its devices apply their defaults (idle, MPPT…), no horizontal protocol part
            if slices:
                self._extra_proj[self._agent_pos[agent.id]] = 0.0
                self._held_extra[agent.id] = []
            return _NO_ACTION
        action = _checked_action(agent.id, action, space)
        if not slices:
            return action
        own = slices[0][1].start
        extras, distance = clip_action(np.asarray(action, np.float64).reshape(-1)[own:], self._extra_boxes[agent.id])
        self._extra_proj[self._agent_pos[agent.id]] = distance
        held = self._held_extra[agent.id] = [(proto, extras[where.start - own:where.stop - own]) for proto, where in slices]
        for proto, part in held:
            extra[proto][agent.id] = part
        # the own part as sent: its devices project it (NaN, inf, out of bounds) and report the distance
        return action.reshape(-1)[: slices[0][1].start]

    def _check_running(self) -> None:
        """Refuse a step before the first reset and after the episode ended."""
        if not self.ctx.profiles:
            raise RuntimeError("step() called before reset(); call reset() first")
        if not self.agents and (self.possible_agents or self.tick >= self.max_ticks):
            raise RuntimeError("step() called on a finished episode; call reset() first")

    @staticmethod
    def _is_ready_action(a: Any, shape: tuple[int, ...] | None) -> bool:
        """Whether ``a`` is a numeric ndarray of exactly ``shape`` (a Box action's shape, or a batch of them):
        such actions need no further check."""
        return type(a) is np.ndarray and a.shape == shape and a.dtype.kind in "iuf"

    def _check_actions(self, actions: Mapping[str, Any]) -> None:
        """Refuse a step after the episode ended, action keys that are not learned agents, and malformed actions."""
        self._check_running()
        if not isinstance(actions, Mapping):
            raise ActionError(f"expected a mapping of learned agent id → action, got {type(actions).__name__}")
        spaces, shapes, ready = self._action_spaces, self._action_shapes, self._is_ready_action
        for agent_id, a in actions.items():
            if agent_id not in spaces:
                agent = self.scenario.agents.get(agent_id)
                what = "an unknown agent id" if agent is None else f"not a learned agent (policy: {agent.policy})"
                raise ActionError(f"action for {agent_id!r}: {what}; only learned agents act "
                                  f"({', '.join(self.possible_agents) or 'none'})")
            if a is not None and not ready(a, shapes[agent_id]):
                _checked_action(agent_id, a, self.action_space(agent_id))

    def _apply_network_settings(self) -> None:
        """Tap positions and shunt steps of devices that stand for admittance changes, when they change."""
        for device in self._network_devices:
            kind, row, position = device.network_setting()
            if self._applied_settings.get((kind, row)) != position:
                self._network_setters[kind](row, position)
                self._applied_settings[(kind, row)] = position

    def _device_injections(self) -> None:
        """Gather the devices' injections into the preallocated sgen arrays (in place)."""
        p, q = self._groups.injections()
        self._sgen_p[self._sgen_rows] = p
        self._sgen_q[self._sgen_rows] = q
        self._dev_p = p

    @property
    def load_multipliers(self) -> np.ndarray:
        """Every load's multiplier (pu) at every tick of the episode (ticks × loads), built at reset.

        The step context's array (``ctx.load_multipliers``): protocols see the loads the flow serves; their forecast
        (the same schedule without the jitter) is ``ctx.load_forecast``. Both are read-only (what protocols derive
        from them is computed once an episode): assign a new array to change the schedule (the forecast is not changed).
        """
        return self.ctx.load_multipliers

    @load_multipliers.setter
    def load_multipliers(self, value: np.ndarray) -> None:
        """Serve ``value`` (ticks × loads, pu; a read-only copy) from now on; ``ctx.load_forecast`` stays as it is."""
        self.ctx.load_multipliers = np.array(value, dtype=np.float64)
        self._freeze_schedule()

    def _freeze_schedule(self) -> None:
        """Make the episode's load multipliers and their forecast read-only: protocols derive from them once an episode
        (e.g. :class:`~powergrid.loads.LoadGroup`), so a write in place would leave what they derived stale."""
        for m in (self.ctx.load_multipliers, self.ctx.load_forecast):
            m.flags.writeable = False

    def _set_loads(self, tick: int) -> None:
        """Every network load's P and Q (MW, Mvar) at ``tick``: base values times its multiplier (in place)."""
        m = self.ctx.load_multipliers[tick]
        np.multiply(self._base_load_p, m, out=self._load_p)
        np.multiply(self._base_load_q, m, out=self._load_q)

    def _solve(self, tick: int) -> PowerFlowResult:
        self._set_loads(tick)
        return self.tap_control.solve(self._injections)  # solve, regulators move, re-solve

    def _accept(self, result: PowerFlowResult) -> bool:
        """Keep ``result`` as the last sound flow when it converged with finite voltages; return whether it did.

        Before any sound flow of the episode the last one is the nominal flat profile (1 pu, no flows).
        """
        sound = bool(result.converged) and all_finite(result.vm_pu if self._all_on else result.vm_pu[self._bus_on])
        if sound:
            self.last_result = result if self._all_on else _deenergized_as_zero(result)
        elif self.last_result is None:
            self.last_result = self._nominal
        return sound

    def _store_change(self) -> np.ndarray:
        """What the stores' change of deliverable energy since the reset is worth at the episode's mean price ($)."""
        stored = np.array([self._devices[i].stored_mwh() for i in self._stores])
        return (stored - self._stored0) * self.ctx.store_price

    def _credit_failed_step(self, change: np.ndarray) -> None:
        """Credit the stores' ``change`` ($, :meth:`_store_change`; < 0 bills) into a failed step's settled costs
        (``_cost_safe``): summed by the grid agents on the stores' rows, then moved to each store's payer."""
        term = np.zeros((self._n_dev, 4))
        term[self._stores, 0] = change
        self._cost_safe -= self._by_agent(np.zeros(term.size), grid_values=term.ravel())
        self._move_store_credit(self._cost_safe[0], change)

    def _move_store_credit(self, cost: np.ndarray, change: np.ndarray) -> None:
        """Give each store's credit ``change`` ($, :meth:`_store_change`) to the agents over its payer (the meter
        billing the energy that filled it, ``Scenario.store_payers``), into the agents' ``cost`` row: the grid agents'
        sums hold it on the store's row, so it is taken from those over the store only, given to those over the meter
        only and to the meter's own agent."""
        np.add.at(cost, self._credit_at, self._credit_sign * change[self._credit_of])

    def _by_agent(self, values: np.ndarray, violation: np.ndarray | None = None,
                  grid_values: np.ndarray | None = None) -> np.ndarray:
        """The ``(2, agents)`` cost and safety of device rows ``values`` (flat, device after device: cost, safety,
        projection, p): each device agent's own, each grid agent's sums over its devices (of ``grid_values`` when
        given: the rows with the stores' credits) plus its ``violation``."""
        cost_safe = np.zeros((2, len(self._agent_ids)))
        cost_safe.put(self._dev_cost_at, values[self._dev_cost_from])
        if n_grid := self._n_grid:  # bins 0..n-1 cost, n..2n-1 safety
            summed = values if grid_values is None else grid_values
            grid = np.bincount(self._grid_dev_gid2, summed[self._grid_dev_from], 2 * n_grid)
            if violation is not None:
                grid[n_grid:] += violation
            cost_safe.put(self._grid_cost_at, grid)
        return cost_safe

    def _account(self, result: PowerFlowResult, last: bool) -> None:
        """Cost ($) and safety (≥ 0) of every agent this tick (``last``: the episode ends here, its stores are settled)."""
        n_grid = self._n_grid
        violation = None  # the grid agents' zones' voltage and line and transformer loading violations
        if n_grid and result.converged:
            v = result.vm_pu[self._grid_zone_idx]
            v_max, v_min, zero = self._v_band
            bus_violation = np.maximum(v - v_max, zero) + np.maximum(v_min - v, zero)
            violation = np.bincount(self._grid_zone_gid, bus_violation, n_grid)
            if self._grid_branch_gid.size:
                lines, trafos = self._grid_branch_rows
                loading = result.line_loading_percent[lines]
                if trafos.size:
                    loading = np.concatenate((loading, result.trafo_loading_percent[trafos]))
                limit, one, zero = self._branch_limit
                violation += np.bincount(self._grid_branch_gid, np.maximum(loading / limit - one, zero), n_grid)
        if self._n_dev:
            dev = self._groups.costs()
            self._proj, self._dev_p = dev[:, 2], dev[:, 3]
            if self._stores and last:  # the grid agents sum the stores' credits on the stores' rows, then moved
                change = self._store_change()
                credited = dev.copy()
                credited[self._stores, 0] -= change
                cost_safe = self._by_agent(dev.ravel(), violation, credited.ravel())
                self._move_store_credit(cost_safe[0], change)
            else:
                cost_safe = self._by_agent(dev.ravel(), violation)
        else:  # no devices, so no grid agents (each has a device under it)
            self._proj = np.zeros(0)
            cost_safe = np.zeros((2, len(self._agent_ids)))
        for proto in self.scenario.horizontal:
            for agent_id, (c, unsafe) in proto.settle(result, self.ctx).items():
                pos = self._agent_pos[agent_id]
                cost_safe[0, pos] += c
                cost_safe[1, pos] += unsafe
        self._cost_safe = cost_safe

    def _obs_dict(self, observations: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`_observe`'s flat array split by learned agent (views)."""
        if self._obs_dim:  # one size for all: the rows of a 2-D view
            return dict(zip(self.possible_agents, observations.reshape(self._n_learned, self._obs_dim)))
        return {aid: observations[where] for aid, where in zip(self.possible_agents, self._obs_slices)}

    def _observe(self, out: np.ndarray | None = None) -> np.ndarray:
        """Every learned agent's observation as one flat float32 array (agent after agent, ``possible_agents``
        order; written into ``out`` when given), computed in one preallocated buffer at precomputed slices."""
        buf = self._obs_buf
        if not self._n_learned:
            return np.zeros(0, np.float32) if out is None else out
        ctx, tick = self.ctx, self.tick
        vm = self.last_result.vm_pu if self.last_result is not None else None
        angle = 2.0 * math.pi * ctx.hour / 24.0
        buf.put(self._obs_clock_at, (ctx.price, math.sin(angle), math.cos(angle)))  # put repeats the 3 for every agent
        if self._obs_signal_at.size:  # the price each learned agent below a price signal saw at the last tick
            buf[self._obs_signal_at] = self._price_seen[self._obs_signal_pos]
        if not self._every_tick:
            buf[self._obs_acting_at] = self._acting[self._learned_pos]
            buf[self._obs_ahead_at] = self._ahead / self._periods
        if self._ldev_at.size:
            buf[self._ldev_at] = vm[self._ldev_bus] if vm is not None else 1.0
        if self._lgrid.size:
            if vm is not None and self._lgrid_no_sentinel:
                zv = vm[self._lgrid_zone_idx]
            else:
                ext = self._vm_ext
                if vm is not None:
                    ext[:-1] = vm
                else:
                    ext[:] = 1.0
                zv = ext[self._lgrid_zone_idx]
            g, g1, g2, g3 = self._lgrid_at4
            buf[g] = np.bincount(self._learned_dev_gid, self._dev_p[self._learned_dev_idx],
                                 self._n_learned)[self._lgrid] if self._n_dev else 0.0
            starts = self._lgrid_zone_start
            buf[g1] = np.minimum.reduceat(zv, starts)
            buf[g2] = np.bincount(self._lgrid_zone_gid, zv, self._lgrid.size) / self._lgrid_zone_n
            buf[g3] = np.maximum.reduceat(zv, starts)
        self._groups.observe(buf)
        for i, link in self._obs_down:
            buf[i] = (tick - link.sent_tick) * self.tick_s
        for i, link in self._obs_up:
            if link.last is not None:
                buf[i:i + MEASUREMENT] = link.last
            else:
                buf[i:i + MEASUREMENT] = (0.0, 1.0, 1.0, 1.0)
            buf[i + MEASUREMENT] = (tick - link.sent_tick) * self.tick_s
        for where in self._obs_global:
            buf[where] = vm if vm is not None else 1.0
        scaled = self._obs_scaled
        np.subtract(buf, self._obs_ref, out=scaled)
        np.divide(scaled, self._obs_scale, out=scaled)
        if out is None:
            obs = scaled.astype(np.float32)
        else:
            obs = out
            obs[:] = scaled
        if not all_finite(obs):
            self._groups.warn_non_finite(buf)  # a plugin's observe() that gave NaN or inf: one warning per device
            obs[~np.isfinite(obs)] = 0.0
        return np.minimum(np.maximum(obs, self._obs_low, out=obs), self._obs_high, out=obs)

    def _infos(self, sound: bool, penalty: float | list[float], costs: list[float], safety: list[float],
               physics: bool = False) -> dict[str, dict[str, Any]]:
        """Every learned agent's infos (and the env's entry ``COMMON_INFO`` at a step with records for it); ``costs``
        ($), ``safety`` and ``penalty`` (one for all, or per agent) of the learned agents in their order; ``physics``:
        the tick ran the physics (its protocols' projections count)."""
        tick = self.tick
        if self._n_dev and self._learned_dev_idx.size:
            proj = np.bincount(self._learned_dev_gid, self._proj[self._learned_dev_idx], self._n_learned).tolist()
        else:
            proj = [0.0] * self._n_learned
        if physics and self._extra_slices:  # the extra actions in force, as projected (_learned_action)
            proj = (np.array(proj) + self._extra_proj[self._learned_pos]).tolist()
        time_s = self.time_s
        if self._stamps is not None:
            stamp = self._stamps[tick]
        else:
            now = self.timestamp
            stamp = now.isoformat() if now is not None else None
        infos = {}
        tick_s = self.tick_s
        # the entries every agent shares (acting now, as every agent does at every tick unless multi-rate), copied
        # (faster than a literal) and then the agent's own set in place
        base = {"cost": 0.0, "safety": 0.0, "converged": sound, "failure": self._failure, "penalty": penalty,
                "acting": True, "ticks_to_next": 0, "next_action_s": 0, "time_s": time_s, "timestamp": stamp,
                "projection": 0.0}
        for aid, c, unsafe, projection in zip(self.possible_agents, costs, safety, proj):
            info = base.copy()
            info["cost"] = c
            info["safety"] = unsafe
            info["projection"] = projection
            infos[aid] = info
        if isinstance(penalty, list):
            for info, charged in zip(infos.values(), penalty):
                info["penalty"] = charged
        if not self._every_tick:  # multi-rate: who acts, and how long the others wait
            for info, now, next_tick in zip(infos.values(), self._acting[self._learned_pos].tolist(), self._ahead.tolist()):
                info["acting"] = now
                info["ticks_to_next"] = next_tick
                info["next_action_s"] = next_tick * tick_s
        for aid, down, ups, protos, own, reports, ids in self._info_parts:  # the agents whose infos add entries
            info = infos[aid]
            if down is not None:
                info["directive_age_s"] = (tick - down.sent_tick) * tick_s
            if ups:
                info["measurement_age_s"] = {cid: (tick - link.sent_tick) * tick_s for cid, link in ups}
            for proto in protos:
                proto_info = info[type(proto).__name__] = proto.info()
                if physics and "projection" in proto_info:
                    info["projection"] += _protocol_projection(proto_info["projection"], ids)
            if own is not None:
                own_info = own.info()
                if own_info:
                    info[type(own).__name__] = own_info
                    if physics and "projection" in own_info:
                        info["projection"] += _protocol_projection(own_info["projection"], ids)
            for report in reports:
                for key, records in report().items():
                    info[key] = info.get(key, []) + records
        if self._common_reports:
            common: dict[str, dict[str, list]] = {}
            for aid, report in self._common_reports:
                for key, records in report().items():
                    if records:
                        common.setdefault(key, {})[aid] = records
            if common:
                infos[COMMON_INFO] = common
        return infos

    # ------------------------------------------------------------------ helpers
    def agent_costs(self) -> dict[str, tuple[float, float]]:
        """``{agent id: (cost $, safety)}`` of every agent (learned or not) in the last step."""
        cost, safe = self._cost_safe.tolist()
        return dict(zip(self._agent_ids, zip(cost, safe)))

    def render(self) -> np.ndarray | None:
        """``rgb_array``: the voltage profile and dispatch as an ``H × W × 3`` array; ``human``: a window."""
        if self.render_mode is None:
            return None
        from powergrid import plots

        if self.render_mode == "rgb_array":
            self._figure = plots.draw_state(self, self._figure)
            return plots.to_rgb(self._figure)
        import matplotlib.pyplot as plt

        if self._figure is None:
            self._figure = plt.figure(figsize=(9, 4.5), layout="constrained")
        plots.draw_state(self, self._figure)
        plt.pause(1.0 / self.metadata["render_fps"])
        return None

    def close(self) -> None:
        """Close the render window and every device's outside resources (:meth:`Device.close`: e.g. a HIL
        device's Modbus connection, which equipment allows few of)."""
        for device in self._devices:
            device.close()
        if self._figure is not None and self.render_mode == "human":
            import matplotlib.pyplot as plt

            plt.close(self._figure)
        self._figure = None

    def __getstate__(self) -> dict[str, Any]:
        """The whole state as one in-band pickle: no numpy buffer travels out of band.

        Ray's object store and pickle protocol 5 hand out-of-band buffers back read-only,
        and the step writes into its preallocated arrays. The open figure is not pickled.
        """
        self.solver.net  # noqa: B018 (reading it writes the solver's tap positions into the net before it is pickled)
        state = {**self.__dict__, "_figure": None}
        return {"format": PICKLE_FORMAT, "state": pickle.dumps(state, protocol=4), "local_plugins": plugins.local_plugin_files()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        check_pickle_format(type(self), state, "format")  # before any object inside is unpickled
        # a spawned worker imports the local plugins the pickled devices may come from (POWERGRID_PLUGIN_PATH)
        self.__dict__.update(plugins.unpickle(state["state"], state["local_plugins"]))
        self._freeze_schedule()  # arrays come back writeable from a pickle

    def state(self) -> np.ndarray:
        """Global state: every bus voltage of the last sound power flow (1 pu before the first); see ``state_space``.

        In pu, or ``(V − 1)/0.05`` with ``spaces.observation: normalized``.
        """
        result = self.last_result if self.last_result is not None else self._nominal
        vm = result.vm_pu if self.config.spaces.observation == "raw" else (result.vm_pu - scaling.VOLTAGE.ref) / scaling.VOLTAGE.scale
        return np.clip(vm, self.state_space.low, self.state_space.high).astype(np.float32)


@attrs.define(slots=True)
class _Event:
    """One agent's event conditions: its position, the buses watched for the voltage band (or None), the price
    threshold ($/MWh, or None), whether a message arriving counts, its parent's position (−1: none), the minimum
    interval (ticks) and its down link (None: ideal)."""

    pos: int
    zone: np.ndarray | None
    price_above: float | None
    message: bool
    parent: int
    min_ticks: int
    link: Link | None = None


def _protocol_where(agent: GridAgent, ctx: StepContext) -> str:
    """The grid agent, its vertical protocol's plugin and the call, for an error the protocol's code caused."""
    return f"agent {agent.id!r} ({origin(agent.protocol)}): {type(agent.protocol).__name__}.directives() at ctx.tick {ctx.tick}"


def _deenergized_as_zero(result: PowerFlowResult) -> PowerFlowResult:
    """A sound flow's NaN values (the out-of-service buses and the branches touching them) as 0: no voltage, no flow."""
    return attrs.evolve(result, **{f.name: np.nan_to_num(v, nan=0.0) for f in attrs.fields(PowerFlowResult)
                                   if isinstance(v := getattr(result, f.name), np.ndarray)})


def _episode_t0(providers: Mapping[str, Any]) -> dt.datetime | None:
    """The wall-clock start of the episode's data: ``last_start`` of the price (else load) provider, when it has one."""
    for role in ("price", "load"):
        provider = providers.get(role)
        provider = getattr(provider, "active", provider)
        start = getattr(provider, "last_start", None)
        if isinstance(start, dt.datetime):
            return start.to_pydatetime() if hasattr(start, "to_pydatetime") else start
        if isinstance(start, dt.date):
            return dt.datetime.combine(start, dt.time())
    return None


def _child(parent: np.random.SeedSequence, *keys: int) -> np.random.SeedSequence:
    """The descendant of ``parent`` at ``keys`` as ``SeedSequence.spawn`` builds it (spawn key extended by them), built
    alone."""
    return np.random.SeedSequence(parent.entropy, spawn_key=(*parent.spawn_key, *keys), pool_size=parent.pool_size)


def _stream(parent: np.random.SeedSequence, key: int) -> np.random.Generator:
    """Child ``key`` of ``parent`` as ``Generator.spawn`` builds it (spawn key extended by ``key``), built alone."""
    return np.random.Generator(np.random.PCG64(_child(parent, key)))


def _iso_stamps(t0: dt.datetime | None, tick_s: int, ticks: int) -> list[str] | None:
    """``(t0 + k·tick_s).isoformat()`` for every tick ``k`` of an episode (0 to ``ticks``; ``tick_s`` in s), from the
    dates of its days and each tick's time of day (:func:`_stamp_tails`, kept per start time); None without a start,
    when the start has microseconds or a time zone that is not a fixed offset, or for an episode longer than
    :data:`STAMP_TICKS`."""
    if t0 is None or t0.microsecond or not (t0.tzinfo is None or isinstance(t0.tzinfo, dt.timezone)) \
            or ticks > STAMP_TICKS:
        return None
    days, tails = _stamp_tails(t0.hour * 3600 + t0.minute * 60 + t0.second, tick_s, ticks, t0.isoformat()[19:])
    start = t0.date()
    dates = [(start + dt.timedelta(days=d)).isoformat() for d in range(days[-1] + 1)]
    return [dates[d] + tail for d, tail in zip(days, tails)]


@functools.lru_cache(maxsize=16)
def _stamp_tails(day_s: int, tick_s: int, ticks: int, offset: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """For :func:`_iso_stamps` of a start ``day_s`` seconds after its midnight (with the UTC ``offset``, "" or
    "+HH:MM"): each tick's day after the start's and its ``"THH:MM:SS" + offset``."""
    seconds = [day_s + k * tick_s for k in range(ticks + 1)]
    return (tuple(s // 86400 for s in seconds),
            tuple(f"T{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}{offset}" for s in seconds))


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


def _learned_at_or_above(agent: Agent) -> bool:
    """Whether ``agent`` or one of its parents is learned (its infos then report the agent's devices)."""
    node: Agent | None = agent
    while node is not None:
        if node.learned:
            return True
        node = node.parent
    return False


def _protocol_projection(value: Any, ids: frozenset[str]) -> float:
    """A protocol's ``info()["projection"]`` for the agent of ``ids`` (its own and its device agents' ids): a number
    as it is (a vertical protocol's, of its parent's action), a mapping by id summed over ``ids`` (a horizontal
    protocol's); anything else counts 0."""
    if isinstance(value, Mapping):
        return float(sum(v for k, v in value.items() if k in ids))
    return float(value) if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) else 0.0


def _flat_size(space: gymnasium.spaces.Space) -> int:
    return int(gymnasium.spaces.flatdim(space)) if space is not None else 0


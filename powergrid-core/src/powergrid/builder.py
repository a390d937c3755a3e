"""Build a runnable scenario from a checked configuration, resolving every registry name.

Everything that can be computed once is computed here: the network, device
and agent objects, bus positions, zones, protocol objects, the compiled solver
and the profile providers. Each failure is one :class:`ConfigError` with the
file, line and YAML path of the offending value.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandapower as pp

from powergrid.agents import Agent, DeviceAgent, GridAgent, SystemAgent
from powergrid.config import LEARNED, AgentConfig, EnvConfig, PluginSpec
from powergrid.devices import Device, observation_problem
from powergrid.errors import BusError, ConfigError, PluginError, PluginLoadError, UnknownPluginError, closest
from powergrid.loads import LoadModel
from powergrid.params import build_params, params_of
from powergrid.plugins import Registry, get_registry, origin
from powergrid.policies import Policy
from powergrid.profiles import FallbackProvider, ProfileProvider, check_episode, daily_value
from powergrid.protocols import HorizontalProtocol, VerticalProtocol
from powergrid.slacks import slack_buses
from powergrid.solvers.base import PowerFlowSolver

#: Profiles every scenario has (the base load multiplier and the energy price).
BASE_PROFILES = ("load", "price")


@attrs.define
class Scenario:
    """Everything the environment needs, built once."""

    config: EnvConfig
    net: Any
    agents: dict[str, Agent]
    roots: list[Agent]
    device_agents: list[DeviceAgent]
    policies: dict[str, Policy | None]
    horizontal: list[HorizontalProtocol]
    solver: PowerFlowSolver
    providers: dict[str, ProfileProvider]
    loads: LoadModel
    #: each valued store's payer: the billing meter whose bill holds the energy that fills it, and whose reward the
    #: store's credit goes to (:func:`store_payers`)
    store_payers: dict[str, str] = attrs.Factory(dict)

    @property
    def valued_stores(self) -> frozenset[str]:
        """The device agents whose store is valued at the episode's end: those with a payer (:attr:`store_payers`)."""
        return frozenset(self.store_payers)


def _lookup(registry: Registry, kind: str, spec_type: str, path: str, config: EnvConfig, base: type | None = None) -> Any:
    """The plugin ``spec_type`` of ``kind``; an unknown one is a ConfigError at ``path`` (offering the subclasses of
    ``base`` only, when given: a vertical or horizontal protocol's slot)."""
    try:
        return registry.load(kind, spec_type, base)
    except (UnknownPluginError, PluginLoadError) as exc:
        raise config.source.error(path, str(exc)) from None


def _params(cls: Any, raw: Mapping[str, Any], path: str, config: EnvConfig, name: str | None = None) -> Any:
    return build_params(params_of(cls, name), raw, path=path, locate=config.source.locate, owner=name)


@contextlib.contextmanager
def _reported_at(config: EnvConfig, path: str, bus_path: str | None = None) -> Iterator[None]:
    """A ``ValueError`` a plugin raises while built becomes a :class:`ConfigError` at ``path`` (a :class:`BusError` at
    ``bus_path`` when given; one that is already a ConfigError keeps its own place)."""
    try:
        yield
    except ConfigError:
        raise
    except ValueError as exc:
        raise config.source.error(bus_path if bus_path and isinstance(exc, BusError) else path, str(exc)) from None


def _instantiate(factory: Any, params: Any) -> Any:
    """Call a network factory with its parameters as keywords (none for ``NoParams``)."""
    return factory(**attrs.asdict(params)) if attrs.fields(type(params)) else factory()


def build_network(config: EnvConfig, registry: Registry) -> Any:
    spec = config.network
    factory = _lookup(registry, "network", spec.type, f"{spec.path}.type" if spec.params else spec.path, config)
    params = _params(factory, spec.params, f"{spec.path}.params", config, f"network {spec.type!r}")
    with _reported_at(config, f"{spec.path}.params" if spec.params else spec.path):  # values beyond the declared bounds
        return _instantiate(factory, params)


def bus_positions(net: Any) -> dict[str | int, int]:
    """Map every bus name (as a string) and index (int) to its row position in ``net.bus``."""
    table: dict[str | int, int] = {}
    for pos, (index, name) in enumerate(zip(net.bus.index, net.bus.name)):
        table[int(index)] = pos
        if name is not None and str(name) != "nan":
            table[str(name)] = pos
    return table


def _resolve_bus(agent: AgentConfig, buses: Mapping[str | int, int], net: Any, config: EnvConfig) -> int:
    """The row of ``agent.bus``: a name, or an index; an unquoted number (YAML reads ``bus: 632`` as an int) that is
    only a name is that name, and one that is an index and the name of another bus is an error."""
    if isinstance(agent.bus, int) and not isinstance(agent.bus, bool) and str(agent.bus) in buses:
        named, indexed = buses[str(agent.bus)], buses.get(agent.bus)
        if indexed is not None and indexed != named:
            raise config.source.error(
                f"{agent.path}.bus", f"bus {agent.bus} is ambiguous on network {config.network.type!r}: the bus named "
                f"'{agent.bus}' or the bus of index {agent.bus}, named {str(net.bus.name.iloc[indexed])!r}; write the name "
                f"in quotes: bus: '{agent.bus}' or bus: '{net.bus.name.iloc[indexed]}'")
        return named
    if agent.bus in buses:
        return buses[agent.bus]
    names = [str(n) for n in net.bus.name[:8]]
    indices = [int(i) for i in net.bus.index]
    shown = (f"0–{len(indices) - 1}" if indices == list(range(len(indices)))  # pandapower's, not row positions
             else f"of net.bus: {', '.join(map(str, indices[:8]))}{'…' if len(indices) > 8 else ''}")
    raise config.source.error(
        f"{agent.path}.bus",
        f"expected a bus of network {config.network.type!r} (a name such as {', '.join(names)}… or an index "
        f"{shown}), got {agent.bus!r}{_close_bus(agent.bus, [n for n in buses if isinstance(n, str)])}",
    )


def _close_bus(text: Any, names: list[str]) -> str:
    """``; did you mean 'X'?`` for the bus name ``text`` differs from in case only, else the closest one, else ''
    (nothing for an index)."""
    if not isinstance(text, str):
        return ""
    close = closest(text, names, cutoff=0.8)
    return f"; did you mean {close!r}?" if close else ""


def _check_tree(config: EnvConfig) -> None:
    parent_of: dict[str, str] = {}
    for agent in config.agents:
        for i, child in enumerate(agent.children):
            if child in parent_of:
                raise config.source.error(f"{agent.path}.children[{i}]",
                                          f"agent {child!r} already has the parent {parent_of[child]!r}")
            if child == agent.id:
                raise config.source.error(f"{agent.path}.children[{i}]", "an agent cannot be its own child")
            parent_of[child] = agent.id
    for agent in config.agents:  # a cycle has no root above it
        seen, node = set(), agent.id
        while node in parent_of:
            if node in seen:
                raise config.source.error(f"{agent.path}.children", f"the agent tree has a cycle through {agent.id!r}")
            seen.add(node)
            node = parent_of[node]
        if agent.kind == "system" and agent.id in parent_of:
            raise config.source.error(f"{agent.path}.kind", f"a system agent is the top level; {parent_of[agent.id]!r} is its parent")


def build_scenario(config: EnvConfig, registry: Registry | None = None, *, solver: str | None = None) -> Scenario:
    """Resolve names, build objects and compile the solver; raises one ConfigError per problem found first."""
    registry = registry or get_registry()
    net = build_network(config, registry)
    buses = bus_positions(net)
    _check_tree(config)
    dt_h = config.time.dt_h
    tick = config.tick_s
    agents: dict[str, Agent] = {}
    for a in config.agents:
        if a.kind == "device":
            assert a.type is not None
            cls = _lookup(registry, "device", a.type, f"{a.path}.type", config)
            if not (isinstance(cls, type) and issubclass(cls, Device)):
                raise config.source.error(f"{a.path}.type", f"plugin {a.type!r} is not a Device class")
            params = _params(cls, a.params, f"{a.path}.params", config, f"device {a.type!r}")
            with _reported_at(config, f"{a.path}.params"):  # e.g. a parameter that does not fit the time step
                device = cls(params, dt_h)
            if problem := observation_problem(device):
                raise PluginError(f"agent {a.id!r} ({origin(device)}): {problem}")
            bus = _resolve_bus(a, buses, net, config)
            with _reported_at(config, f"{a.path}.params", f"{a.path}.bus"):  # a parameter or bus that does not fit the network
                device.attach(net, bus)
            agents[a.id] = DeviceAgent(a.id, device, bus, period=a.period_s // tick, offset=a.offset_s // tick,
                                       policy=a.policy)
        else:
            agents[a.id] = (SystemAgent if a.kind == "system" else GridAgent)(
                a.id, period=a.period_s // tick, offset=a.offset_s // tick, policy=a.policy)
    for a in config.agents:
        for child in a.children:
            agents[a.id].children.append(agents[child])
            agents[child].parent = agents[a.id]
    check_energised(net, config)
    check_impedances(net, config)
    device_agents = [agents[a.id] for a in config.agents if a.kind == "device"]
    assert all(isinstance(d, DeviceAgent) for d in device_agents)
    payers = bus_payers(net, device_agents)
    stores = store_payers(config, device_agents, payers)
    _warn_unbilled_learners(config, agents, payers)
    loads = LoadModel.build(config.loads, net, config.source)  # before the devices' sgens: loads only
    first_row = len(net.sgen)
    for i, d in enumerate(device_agents):
        pp.create_sgen(net, int(net.bus.index[d.bus]), p_mw=0.0, q_mvar=0.0, name=d.id)
        d.sgen_row = first_row + i
    zones = net.bus.zone.astype(str).to_numpy() if "zone" in net.bus else np.array([], dtype=str)
    # children's protocols first: a parent's protocol may read its children's action spaces (e.g. setpoint)
    for a in sorted(config.agents, key=lambda a: -_depth(agents[a.id])):
        agent = agents[a.id]
        if not isinstance(agent, GridAgent):
            continue
        if not a.children:
            raise config.source.error(f"{a.path}.children", f"a {a.kind} agent needs at least one child agent")
        if a.zone is not None:
            members = np.flatnonzero(zones == a.zone)
            if members.size == 0:
                known = sorted(set(zones) - {"None", "nan"})
                raise config.source.error(f"{a.path}.zone",
                                          f"expected a zone of the network ({', '.join(known) or 'none'}), got {a.zone!r}")
            agent.zone = members
        elif isinstance(agent, SystemAgent):  # the system operator answers for every bus and line of the network
            agent.zone = np.arange(len(net.bus))
        else:
            agent.zone = np.unique([d.bus for d in agent.devices()])
        where = f"{a.protocol.path}.type" if a.protocol.params else a.protocol.path
        cls = _lookup(registry, "protocol", a.protocol.type, where, config, VerticalProtocol)
        if not (isinstance(cls, type) and issubclass(cls, VerticalProtocol)):
            raise config.source.error(a.protocol.path, f"protocol {a.protocol.type!r} is not a vertical protocol")
        params = _params(cls, a.protocol.params, f"{a.protocol.path}.params", config, f"protocol {a.protocol.type!r}")
        with _reported_at(config, a.protocol.path):  # e.g. children the protocol cannot drive
            agent.protocol = cls(params, agent)
            agent.protocol.attach(net)
    horizontal = []
    config_kind = {a.id: a.kind for a in config.agents}
    for h in config.horizontal:
        cls = _lookup(registry, "protocol", h.type, f"{h.path}.type", config, HorizontalProtocol)
        if not (isinstance(cls, type) and issubclass(cls, HorizontalProtocol)):
            raise config.source.error(f"{h.path}.type", f"protocol {h.type!r} is not a horizontal protocol")
        params = _params(cls, h.params, f"{h.path}.params", config, f"protocol {h.type!r}")
        kinds = cls.participant_kinds
        for j, pid in enumerate(h.participants):  # a device listed for its controller: an error, not another experiment
            if (kind := config_kind[pid]) not in kinds:
                raise config.source.error(f"{h.path}.participants[{j}]", f"protocol {h.type!r} takes {' or '.join(kinds)} "
                                          f"agents as participants, got the {kind} agent {pid!r}")
        with _reported_at(config, h.path):
            proto = cls(params, [agents[p] for p in h.participants])
            proto.valued_stores = frozenset(stores)  # before attach: the stores the reward values (ADMM prices them so)
            proto.attach(net)
        horizontal.append(proto)
    policies: dict[str, Any] = {}
    for a in config.agents:
        if a.policy == LEARNED:
            policies[a.id] = None
        else:
            policies[a.id] = cls = _lookup(registry, "policy", a.policy, f"{a.path}.policy", config)
            try:  # built once here, so a policy that cannot drive its agent is a config error even if never asked
                cls(agents[a.id], np.random.default_rng(0))
            except (TypeError, ValueError) as exc:
                raise config.source.error(f"{a.path}.policy", str(exc)) from None
    roots = [agents[a.id] for a in config.agents if agents[a.id].parent is None]
    solver_obj = build_solver(config, registry, net, solver)
    providers = build_providers(config, registry, device_agents)
    return Scenario(config, net, agents, roots, device_agents, policies, horizontal, solver_obj, providers, loads,
                    stores)


def bus_payers(net: Any, device_agents: list[DeviceAgent]) -> dict[int, list[DeviceAgent]]:
    """Each billed bus row's meters: the device agents whose devices bill the energy drawn there
    (:attr:`Device.bills_energy`, :meth:`Device.billed_buses`, asked once), the innermost first where meters nest (the
    one billing the fewest buses; the first in the config of equals): the bus's payer. Unbilled buses are absent."""
    meters: dict[int, list[tuple[int, DeviceAgent]]] = {}
    for d in device_agents:
        if type(d.device).bills_energy:
            buses = d.device.billed_buses(net)
            rows = range(len(net.bus)) if buses is None else [int(b) for b in buses]
            for b in rows:
                meters.setdefault(b, []).append((len(rows), d))
    return {b: [d for _, d in sorted(m, key=lambda m: m[0])] for b, m in meters.items()}


def store_payers(config: EnvConfig, device_agents: list[DeviceAgent], payers: Mapping[int, list[DeviceAgent]]
                 ) -> dict[str, str]:
    """``{store: meter}``: the device agents with a store (:meth:`Device.stored_mwh` not None, asked once, the devices
    attached) whose energy ``reward.storage_value: mean_price`` values, each with the meter that bills its bus
    (:func:`bus_payers`). A stored MWh is credited to whoever pays for the energy that filled it: the meter's reward
    holds the credit, not the store's. What a store behind no meter holds is worth 0 $/MWh: one UserWarning names them
    at reward.storage_value; another names the stores behind nested meters (each bills, the innermost is credited)."""
    if config.reward.storage_value != "mean_price":
        return {}
    stores = [d for d in device_agents if d.device.stored_mwh() is not None]
    free = [d.id for d in stores if d.bus not in payers]
    if free:
        warnings.warn(str(config.source.error("reward.storage_value", (
            f"mean_price: the stores ({', '.join(free)}) are behind no device that bills grid energy (no "
            "GridConnection meters their bus), so what they hold at the episode's end (Device.stored_mwh) is valued "
            "at 0 $/MWh, as under 'none' (set it to none to say so)"))), UserWarning, stacklevel=3)
    nested = [f"{d.id!r} (billed by {' inside '.join(repr(m.id) for m in payers[d.bus])})"
              for d in stores if len(payers.get(d.bus, ())) > 1]
    if nested:
        warnings.warn(str(config.source.error("reward.storage_value", (
            f"mean_price: the stores {', '.join(nested)} are behind nested meters: each meter bills the energy that "
            "fills them, and only the innermost is credited what they hold at the episode's end, so an outer meter's "
            "agent pays for it and gets no credit"))), UserWarning, stacklevel=3)
    return {d.id: payers[d.bus][0].id for d in stores if d.bus in payers}


def _warn_unbilled_learners(config: EnvConfig, agents: Mapping[str, Agent], payers: Mapping[int, list[DeviceAgent]]
                            ) -> None:
    """One UserWarning at the first such agent's policy naming the learned agents whose devices' energy a meter
    outside their subtree bills (:func:`bus_payers`): that bill, and the store credit that goes with it, are in the
    meter's reward, so theirs sees no energy price."""
    found = []
    for a in config.agents:
        if a.policy != LEARNED:
            continue
        own = agents[a.id].devices()
        ids = {d.id for d in own}
        meters = sorted({payers[d.bus][0].id for d in own if d.bus in payers and not type(d.device).bills_energy} - ids)
        if meters:
            found.append((a, meters))
    if found:
        named = ", ".join(f"{a.id!r} (billed by {', '.join(map(repr, m))})" for a, m in found)
        they, their = ("agents", "their") if len(found) > 1 else ("agent", "its")
        warnings.warn(str(config.source.error(f"{found[0][0].path}.policy", (
            f"the learned {they} {named}: the energy {their} devices draw or deliver is billed by a meter outside "
            f"{their} subtree, so {their} reward sees no energy price (nor the end-of-episode store credit, which goes "
            "to the meter's reward): put the meter and the devices under one learned grid agent"))), UserWarning,
            stacklevel=3)


def check_energised(net: Any, config: EnvConfig) -> None:
    """Every in-service bus must reach a slack (an in-service ext_grid or slack generator) through closed,
    in-service branches; else a :class:`ConfigError` naming the network and the islanded buses.

    Runs after the devices attach, so a grid-forming device that creates its own slack energises its island.
    """
    import pandapower.topology as topology

    where = f"{config.network.path}.type" if config.network.params else config.network.path
    if not slack_buses(net):
        raise config.source.error(where, f"network {config.network.type!r} has no in-service slack "
                                         "(ext_grid or slack gen): nothing sets its voltage")
    islanded = sorted(topology.unsupplied_buses(net))
    if islanded:
        names = [str(net.bus.name.get(b, b)) for b in islanded]
        shown = ", ".join(names[:10]) + (f" … ({len(names)} in all)" if len(names) > 10 else "")
        raise config.source.error(where, f"network {config.network.type!r} has buses that no slack energises "
                                         f"(islanded, e.g. by an open switch): {shown}")


def check_impedances(net: Any, config: EnvConfig) -> None:
    """Every in-service line needs a series reactance x ≠ 0 and every in-service transformer a finite ``vk_percent`` ≠ 0:
    pandapower cannot build a power-flow case with a zero one (its start divides by x), so every flow would fail;
    else a :class:`ConfigError` naming the first such element, what it has and what is expected."""
    where = f"{config.network.path}.type" if config.network.params else config.network.path
    bus = net.bus.name.where(net.bus.name.notna(), net.bus.index.to_series()).astype(str)
    line = net.line[net.line.in_service.astype(bool)]
    x = (line.x_ohm_per_km * line.length_km).to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(x) | (x == 0))
    if bad.size:
        row = line.iloc[bad[0]]
        name = f" {row['name']!r}" if isinstance(row["name"], str) else ""
        more = f" ({bad.size} such lines in all)" if bad.size > 1 else ""
        raise config.source.error(where, (
            f"network {config.network.type!r}: line {line.index[bad[0]]}{name} from bus {bus[row.from_bus]} to "
            f"{bus[row.to_bus]} has r = {row.r_ohm_per_km * row.length_km:g} Ω and x = {x[bad[0]]:g} Ω (r_ohm_per_km "
            f"{row.r_ohm_per_km:g}, x_ohm_per_km {row.x_ohm_per_km:g}, length_km {row.length_km:g}){more}; expected "
            "x ≠ 0 (pandapower cannot build a power-flow case with it): join the two buses with a bus-bus switch "
            "(net.switch, et 'b'), or give the line a small impedance"))
    trafo = net.trafo[net.trafo.in_service.astype(bool)]
    vk = trafo.vk_percent.to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(vk) | (vk == 0))  # negative is a model's choice (case145 has 24): it flows
    if bad.size:
        row = trafo.iloc[bad[0]]
        name = f" {row['name']!r}" if isinstance(row["name"], str) else ""
        raise config.source.error(where, (
            f"network {config.network.type!r}: trafo {trafo.index[bad[0]]}{name} from bus {bus[row.hv_bus]} to "
            f"{bus[row.lv_bus]} has vk_percent {vk[bad[0]]:g}; expected a finite vk_percent ≠ 0 (its short-circuit "
            "impedance; pandapower cannot build a power-flow case with it)"))


def build_solver(config: EnvConfig, registry: Registry, net: Any, override: str | None = None) -> PowerFlowSolver:
    """The configured solver, else ``fast`` when registered, else the pandapower reference."""
    spec = PluginSpec(override) if override else config.solver
    if spec is None:
        spec = PluginSpec("fast" if ("solver", "fast") in registry else "pandapower", {}, "solver")
    cls = _lookup(registry, "solver", spec.type, spec.path or "solver", config)
    params = _params(cls, spec.params, f"{spec.path or 'solver'}.params", config, f"solver {spec.type!r}")
    with _reported_at(config, f"{spec.path or 'solver'}.params" if spec.params else spec.path or "solver"):
        return cls(net, params)


def build_providers(config: EnvConfig, registry: Registry, device_agents: list[DeviceAgent]) -> dict[str, ProfileProvider]:
    """One profile provider per role used; roles without a dataset use the built-in daily shape."""
    roles = set(BASE_PROFILES) | set(config.datasets)
    for d in device_agents:
        roles.update(d.device.profiles_used)
    providers: dict[str, ProfileProvider] = {}
    for role in sorted(roles):
        if role not in config.datasets:  # the built-in daily shape, which has five roles: else a KeyError at reset
            try:
                daily_value(role, np.zeros(1))
            except KeyError as exc:
                reader = next(d for d in device_agents if role in d.device.profiles_used)
                where = next(a.path for a in config.agents if a.id == reader.id)
                raise config.source.error(f"{where}.type", f"device {type(reader.device).__name__} reads the profile "
                                          f"{role!r}, which has no dataset, and {exc.args[0]}: add datasets: "
                                          f"{{{role}: {{provider: NAME, ...}}}}") from None
        spec = config.datasets.get(role, PluginSpec("daily_shape", {}, f"datasets.{role}"))
        providers[role] = _provider(registry, spec.type, spec.params, role, spec.path, config)
        if spec.fallback is not None:
            fallback = _provider(registry, spec.fallback, {}, role, f"{spec.path}.fallback", config)
            providers[role] = FallbackProvider(providers[role], fallback, spec.path)
    for provider in providers.values():
        provider.bind(providers)
    return providers


def _depth(agent: Agent) -> int:
    """How many parents are above ``agent``."""
    depth = 0
    while agent.parent is not None:
        agent, depth = agent.parent, depth + 1
    return depth


def draw_episode(config: EnvConfig, role: str, provider: ProfileProvider, rng: np.random.Generator) -> np.ndarray:
    """One episode of the ``role`` profile from ``provider``, checked (:func:`~powergrid.profiles.check_episode`); its
    failure to give one (no data, a file gone or unreadable, a NaN or too few values) is a ConfigError at
    ``datasets.<role>`` with the file and line."""
    try:
        values = provider.episode(config.time.steps_per_episode, config.time.step_minutes, rng)
        check_episode(role, provider, values, config.time.steps_per_episode)
        return values
    except ConfigError:
        raise
    except (ValueError, OSError) as exc:
        spec = config.datasets.get(role)
        raise config.source.error(spec.path if spec else f"datasets.{role}", str(exc)) from None


def _provider(registry: Registry, name: str, raw: Mapping[str, Any], role: str, path: str, config: EnvConfig) -> ProfileProvider:
    cls = _lookup(registry, "dataset", name, f"{path}.provider" if raw else path, config)
    if "start_hour" in attrs.fields_dict(params_of(cls)) and "start_hour" not in raw:
        raw = {**raw, "start_hour": config.time.start_hour}  # shapes by hour of day start at the clock's hour
    if isinstance(raw.get("path"), str) and config.source.file:  # relative to the scenario file, not the cwd
        folder = Path(os.path.abspath(config.source.file)).parent  # absolute now: the cwd may change before a reset
        raw = {**raw, "path": str(folder / Path(raw["path"]).expanduser())}
    with _reported_at(config, path):  # e.g. a provider that has no such role
        return cls(_params(cls, raw, path, config, f"dataset {name!r}"), role)


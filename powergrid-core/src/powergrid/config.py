"""Scenario configuration: YAML → typed, frozen attrs objects, with file/line/path errors.

A scenario file::

    name: one microgrid
    network: {type: cigre_mv}
    solver: {type: fast}                  # optional (default: fast, else pandapower)
    time: {step_minutes: 15, steps_per_episode: 96}
    reward: {cost_weight: 1.0, safety_weight: 10.0}
    datasets:                             # optional, per profile role
      price: {provider: caiso, report: lmp}
    agents:
      - {id: mg1, kind: grid, policy: learned, protocol: {type: setpoint}, children: [ess1, pv1]}
      - {id: ess1, type: ESS, bus: "Bus 5", params: {p_max_mw: 0.5, capacity_mwh: 2}}
      - {id: pv1, type: PV, bus: "Bus 5", params: {p_max_mw: 0.1}}
    horizontal: []                        # protocols among peers: {type, participants, params}

``type:`` values are registry names, never import paths, and files are read
with ``yaml.safe_load`` semantics only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml

from powergrid.errors import ConfigError
from powergrid.params import build_params, choice, integer, quantity

AGENT_KINDS = ("device", "grid", "system")
LEARNED = "learned"


@attrs.frozen
class Source:
    """Where a configuration came from: the file and the line of every YAML path."""

    file: str | None = None
    lines: Mapping[str, int] = attrs.field(factory=dict)

    def locate(self, path: str) -> tuple[str | None, int | None]:
        """File and line of ``path``, or of its nearest enclosing path that has one."""
        probe = path
        while probe:
            if probe in self.lines:
                return self.file, self.lines[probe]
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return self.file, self.lines.get("", None)

    def error(self, path: str, message: str) -> ConfigError:
        file, line = self.locate(path)
        return ConfigError(message, file=file, line=line, path=path)


@attrs.frozen
class PluginSpec:
    """A reference to a registered plugin: its registry name and raw parameters.

    ``fallback`` (datasets only) names a provider used when this one has no data.
    """

    type: str
    params: Mapping[str, Any] = attrs.field(factory=dict)
    path: str = ""
    fallback: str | None = None


@attrs.frozen
class TimeConfig:
    step_minutes: float = quantity("min", 15.0, gt=0, le=1440)
    steps_per_episode: int = integer(96, ge=1)
    start_hour: int = integer(0, ge=0, le=23)

    @property
    def dt_h(self) -> float:
        return self.step_minutes / 60.0


@attrs.frozen
class RewardConfig:
    """reward = -(cost_weight·cost + safety_weight·safety), per agent and tick.

    A failed power flow (diverged, or a result holding NaN/inf) is an event of the episode:
    its cost and safety come from the last sound flow, and every learned agent loses
    ``P = max(divergence_penalty, the worst per-tick loss seen so far)`` per tick left in the
    episode (``on_divergence: terminate``, the default: a blackout ends the episode for all) or
    ``P`` once (``penalize``: the episode goes on). So a failed step never scores better than
    a sound one.
    """

    cost_weight: float = quantity("1/$", 1.0, ge=0)
    safety_weight: float = quantity("1", 10.0, ge=0)
    divergence_penalty: float = quantity("1", 1000.0, ge=0,
                                         doc="reward lost per tick left after a failed power flow (at least)")
    on_divergence: str = choice(("terminate", "penalize"), "terminate",
                                doc="a failed power flow ends the episode, or only costs the penalty once")
    v_min_pu: float = quantity("pu", 0.95, gt=0)
    v_max_pu: float = quantity("pu", 1.05, gt=0)
    max_loading_percent: float = quantity("%", 100.0, gt=0)


@attrs.frozen
class AgentConfig:
    """One agent. ``kind: device`` agents name a device ``type`` and a ``bus``."""

    id: str
    kind: str
    path: str
    type: str | None = None
    bus: str | int | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict)
    policy: str = "rule"
    protocol: PluginSpec = PluginSpec("none")
    children: tuple[str, ...] = ()
    period: int = 1
    zone: str | None = None


@attrs.frozen
class HorizontalConfig:
    """A protocol among peers, owned by the environment."""

    type: str
    participants: tuple[str, ...]
    params: Mapping[str, Any]
    path: str


@attrs.frozen
class EnvConfig:
    """A whole scenario."""

    name: str
    network: PluginSpec
    agents: tuple[AgentConfig, ...]
    solver: PluginSpec | None = None
    time: TimeConfig = TimeConfig()
    reward: RewardConfig = RewardConfig()
    datasets: Mapping[str, PluginSpec] = attrs.field(factory=dict)
    horizontal: tuple[HorizontalConfig, ...] = ()
    seed: int | None = None
    source: Source = Source()

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> EnvConfig:
        """Read and check a scenario file (structure only; names are checked when the env is built)."""
        file = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the file: {exc.strerror or exc}", file=file) from None
        return cls.from_text(text, file=file)

    @classmethod
    def from_text(cls, text: str, *, file: str | None = None) -> EnvConfig:
        data, lines = load_yaml_with_lines(text, file)
        return parse_config(data, Source(file, lines))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnvConfig:
        return parse_config(data, Source())


PLAIN_TAGS = frozenset({"str", "int", "float", "bool", "null", "map", "seq", "timestamp"})


def load_yaml_with_lines(text: str, file: str | None = None) -> tuple[Any, dict[str, int]]:
    """Parse YAML safely, returning the data and the 1-based line of every YAML path."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML: {problem}", file=file, line=mark.line + 1 if mark else None) from None
    if node is None:
        raise ConfigError("the file is empty; expected a mapping with 'network' and 'agents'", file=file, line=1)
    lines: dict[str, int] = {}
    constructor = yaml.SafeLoader("")

    def build(n: yaml.Node, path: str) -> Any:
        lines[path] = n.start_mark.line + 1
        if n.tag.removeprefix("tag:yaml.org,2002:") not in PLAIN_TAGS:
            raise ConfigError(f"invalid YAML: unsupported tag {n.tag!r} (configs are plain data)",
                              file=file, line=n.start_mark.line + 1, path=path)
        if isinstance(n, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in n.value:
                key = constructor.construct_object(key_node, deep=True)
                if key in out:
                    raise ConfigError(f"duplicate key {key!r}", file=file, line=key_node.start_mark.line + 1,
                                      path=_join(path, key))
                out[key] = build(value_node, _join(path, key))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(item, f"{path}[{i}]") for i, item in enumerate(n.value)]
        return constructor.construct_object(n, deep=True)

    return build(node, ""), lines


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _mapping(value: Any, path: str, src: Source, what: str = "a mapping") -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise src.error(path, f"expected {what}, got {type(value).__name__} {value!r}")
    return dict(value)


def _reject_unknown(data: Mapping[str, Any], known: tuple[str, ...], path: str, src: Source) -> None:
    for key in data:
        if key not in known:
            raise src.error(_join(path, key), f"unknown key (expected one of: {', '.join(known)})")


def _name(value: Any, path: str, src: Source, what: str = "a name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise src.error(path, f"expected {what} (a non-empty string), got {value!r}")
    if ":" in value or "/" in value:
        raise src.error(path, f"expected a registry name, got {value!r} (import paths are not allowed in configs)")
    return value


def _plugin(value: Any, path: str, src: Source, key: str = "type") -> PluginSpec:
    if isinstance(value, str):
        return PluginSpec(_name(value, path, src), {}, path)
    data = _mapping(value, path, src, f"a registry name or a mapping with '{key}'")
    if key not in data:
        raise src.error(path, f"expected a mapping with '{key}' (a registry name), got keys {sorted(data)}")
    name = _name(data.pop(key), _join(path, key), src)
    if "params" in data:
        params = _mapping(data.pop("params"), _join(path, "params"), src)
        _reject_unknown(data, (key, "params"), path, src)
    else:  # short form: {type: x, a: 1} means params {a: 1}
        params = data
    return PluginSpec(name, params, path)


def _section(cls: type, value: Any, path: str, src: Source) -> Any:
    return build_params(cls, _mapping(value, path, src), path=path, locate=src.locate)


def _names(value: Any, path: str, src: Source) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise src.error(path, f"expected a list of agent ids, got {value!r}")
    return tuple(_name(v, f"{path}[{i}]", src, "an agent id") for i, v in enumerate(value))


TOP_KEYS = ("name", "network", "solver", "time", "reward", "datasets", "agents", "horizontal", "seed")
AGENT_KEYS = ("id", "kind", "type", "bus", "params", "policy", "protocol", "children", "period", "zone")


def parse_config(data: Any, src: Source) -> EnvConfig:
    """Check the structure of a scenario mapping and build the frozen :class:`EnvConfig`."""
    top = _mapping(data, "", src, "a mapping with 'network' and 'agents'")
    _reject_unknown(top, TOP_KEYS, "", src)
    for required in ("network", "agents"):
        if required not in top:
            raise src.error("", f"missing required key '{required}'")
    agents_raw = top["agents"]
    if not isinstance(agents_raw, list) or not agents_raw:
        raise src.error("agents", f"expected a non-empty list of agents, got {agents_raw!r}")
    agents = tuple(_agent(a, f"agents[{i}]", src) for i, a in enumerate(agents_raw))
    seen: dict[str, str] = {}
    for agent in agents:
        if agent.id in seen:
            raise src.error(f"{agent.path}.id", f"duplicate agent id {agent.id!r} (first defined at {seen[agent.id]})")
        seen[agent.id] = agent.path
    for agent in agents:
        for i, child in enumerate(agent.children):
            if child not in seen:
                raise src.error(f"{agent.path}.children[{i}]",
                                f"expected the id of an agent defined in 'agents', got {child!r} (defined: {', '.join(seen)})")
    horizontal = []
    for i, h in enumerate(top.get("horizontal") or []):
        path = f"horizontal[{i}]"
        h = _mapping(h, path, src)
        _reject_unknown(h, ("type", "participants", "params"), path, src)
        if "type" not in h:
            raise src.error(path, "missing required key 'type'")
        participants = _names(h.get("participants", []), f"{path}.participants", src)
        for j, p in enumerate(participants):
            if p not in seen:
                raise src.error(f"{path}.participants[{j}]", f"expected the id of a defined agent, got {p!r}")
        params = _mapping(h.get("params", {}), f"{path}.params", src)
        horizontal.append(HorizontalConfig(_name(h["type"], f"{path}.type", src), participants, params, path))
    datasets = {}
    for role, spec in _mapping(top.get("datasets", {}) or {}, "datasets", src).items():
        path = f"datasets.{role}"
        fallback = spec.get("fallback") if isinstance(spec, Mapping) else None
        if isinstance(spec, Mapping):
            spec = {k: v for k, v in spec.items() if k != "fallback"}
        plugin = _plugin(spec, path, src, key="provider")
        if fallback is not None:
            plugin = attrs.evolve(plugin, fallback=_name(fallback, f"{path}.fallback", src, "a dataset provider"))
        datasets[str(role)] = plugin
    seed = top.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise src.error("seed", f"expected an integer, got {seed!r}")
    name = top.get("name", Path(src.file).stem if src.file else "scenario")
    return EnvConfig(
        name=str(name),
        network=_plugin(top["network"], "network", src),
        agents=agents,
        solver=_plugin(top["solver"], "solver", src) if top.get("solver") is not None else None,
        time=_section(TimeConfig, top.get("time", {}), "time", src),
        reward=_section(RewardConfig, top.get("reward", {}), "reward", src),
        datasets=datasets,
        horizontal=tuple(horizontal),
        seed=seed,
        source=src,
    )


def _agent(value: Any, path: str, src: Source) -> AgentConfig:
    a = _mapping(value, path, src, "a mapping describing an agent")
    _reject_unknown(a, AGENT_KEYS, path, src)
    if "id" not in a:
        raise src.error(path, "missing required key 'id'")
    agent_id = _name(a["id"], f"{path}.id", src, "an agent id")
    kind = a.get("kind", "device")
    if kind not in AGENT_KINDS:
        raise src.error(f"{path}.kind", f"expected one of {', '.join(AGENT_KINDS)}, got {kind!r}")
    period = a.get("period", 1)
    if isinstance(period, bool) or not isinstance(period, int) or period < 1:
        raise src.error(f"{path}.period", f"expected an integer ≥ 1 (ticks between actions), got {period!r}")
    bus = a.get("bus")
    if kind == "device":
        if "type" not in a:
            raise src.error(path, "missing required key 'type' (the device type, a registry name)")
        if bus is None:
            raise src.error(path, "missing required key 'bus' (a bus name or index of the network)")
        if isinstance(bus, bool) or not isinstance(bus, (str, int)):
            raise src.error(f"{path}.bus", f"expected a bus name or index, got {bus!r}")
    else:
        for key in ("type", "bus", "params"):
            if key in a:
                raise src.error(f"{path}.{key}", f"a {kind} agent takes no '{key}' (only device agents do)")
    children = _names(a.get("children", []), f"{path}.children", src)
    if kind == "device" and children:
        raise src.error(f"{path}.children", "a device agent has no children")
    if kind != "device" and "protocol" in a:
        protocol = _plugin(a["protocol"], f"{path}.protocol", src)
    elif "protocol" in a:
        raise src.error(f"{path}.protocol", "a device agent owns no protocol")
    else:
        protocol = PluginSpec("none", {}, f"{path}.protocol")
    return AgentConfig(
        id=agent_id,
        kind=kind,
        path=path,
        type=_name(a["type"], f"{path}.type", src, "a device type") if kind == "device" else None,
        bus=bus,
        params=_mapping(a.get("params", {}), f"{path}.params", src),
        policy=_name(a.get("policy", "rule"), f"{path}.policy", src, "'learned' or a policy name"),
        protocol=protocol,
        children=children,
        period=period,
        zone=_name(a["zone"], f"{path}.zone", src) if "zone" in a else None,
    )


__all__ = ["LEARNED", "AgentConfig", "EnvConfig", "HorizontalConfig", "PluginSpec", "RewardConfig", "Source",
           "TimeConfig"]

"""Scenario configuration: YAML → typed, frozen attrs objects, with file/line/path errors.

A scenario file::

    name: one microgrid
    network: {type: cigre_mv}
    solver: {type: fast}                  # optional (default: fast, else pandapower)
    time: {physics: 15min, episode: 1d}     # durations: 30s, 15min, 1h, 1d
    reward: {cost_weight: 1.0, safety_weight: 40.0}   # safety: per unit of violation per hour
    datasets:                             # optional, per profile role
      price: {provider: caiso, report: lmp}
    agents:
      - {id: mg1, kind: grid, policy: learned, period: 1h, protocol: {type: setpoint}, children: [ess1, pv1]}
      - {id: ess1, type: ESS, bus: "Bus 5", params: {p_max_mw: 0.5, capacity_mwh: 2}}
      - {id: pv1, type: PV, bus: "Bus 5", params: {p_max_mw: 0.1}}
    horizontal: []                        # protocols among peers: {type, participants, params}

``type:`` values are registry names, never import paths, and files are read
with ``yaml.safe_load`` semantics only.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Mapping
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import attrs
import yaml

from powergrid.clock import format_duration, parse_duration, tick_seconds
from powergrid.errors import ConfigError, closest
from powergrid.loads import CLASSES as LOAD_CLASSES
from powergrid.loads import PROFILES as LOAD_PROFILES
from powergrid.params import build_params, choice, integer, quantity

AGENT_KINDS = ("device", "grid", "system")
LEARNED = "learned"
#: Scenario names become output file names: letters, digits, ``-``, ``_`` and ``.``, no separators.
SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
SAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
MAX_PERIOD = 1_000_000  # physics steps between an agent's actions (the longest episode)
MAX_STEPS = 1_000_000   # physics steps of an episode: about 2 years of 1-minute steps
MAX_TICKS = 10_000_000  # ticks of an episode (the tick: the common divisor of the physics step, periods, offsets, delays)
OBSERVATION_MODES = ("local", "global")


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
    """The physics step and the episode (whole seconds), and the local hour the episode starts at.

    YAML: ``time: {physics: 1min, episode: 1d, start_hour: 0}``. The older keys are accepted
    as equivalents: ``step_minutes: 15`` is ``physics: 15min``, ``steps_per_episode: 96`` is an
    episode of 96 physics steps (the default when no episode is given).
    """

    physics_s: int = 900
    episode_s: int = 86400
    start_hour: int = integer(0, ge=0, le=23)

    @property
    def step_minutes(self) -> float:
        """The physics step (min)."""
        return self.physics_s / 60.0

    @property
    def steps_per_episode(self) -> int:
        """Physics steps per episode."""
        return self.episode_s // self.physics_s

    @property
    def dt_h(self) -> float:
        """The physics step (h)."""
        return self.physics_s / 3600.0


@attrs.frozen
class _TimeNumbers:
    """The numeric keys of ``time:`` (the older spelling of the physics step and episode)."""

    step_minutes: float = quantity("min", 15.0, gt=0, le=1440)
    steps_per_episode: int = integer(96, ge=1, le=MAX_STEPS)
    start_hour: int = integer(0, ge=0, le=23)


@attrs.frozen
class RewardConfig:
    """reward = -(cost_weight·cost + safety_weight·safety·Δt_h), per agent and physics step (Δt_h: the step, h).

    ``safety`` is the step's violation (MW beyond a limit, pu outside the voltage band, a line's or transformer's
    loading beyond its limit as a fraction, °C outside a comfort band, ...), an instantaneous quantity;
    ``safety_weight`` is its price per unit per hour (e.g. $/MWh beyond a limit), so one violation lasting an hour
    costs the same whatever ``time.physics`` is. :meth:`safety_per_step` is the weight the env applies to a step's safety.

    A failed power flow (diverged, or a result holding NaN/inf) is an event of the episode:
    its cost and safety come from the last sound flow, and every learned agent loses
    ``P = max(divergence_penalty·Δt_h, the worst loss of one physics step so far in this episode)`` per physics
    step left in the episode, the failed one included (``on_divergence: terminate``, the default: a blackout
    ends the episode for all) or ``P`` once (``penalize``: the episode goes on); :meth:`divergence_per_step` is
    ``divergence_penalty·Δt_h``, so an hour of blackout costs at least ``divergence_penalty`` whatever
    ``time.physics`` is. So a failed step never scores better than a sound one; ending the episode by a failure
    gains nothing only while ``P`` per step left exceeds the losses still to come (a ``divergence_penalty``
    below their rate per hour can leave a gain).
    """

    cost_weight: float = quantity("1/$", 1.0, ge=0)
    safety_weight: float = quantity("1/h", 40.0, ge=0,
                                    doc="price of one unit of safety (MW beyond, pu outside the band, ...) held for "
                                        "an hour; 40 is the former default of 10 per 15-min step")
    divergence_penalty: float = quantity("1/h", 4000.0, ge=0,
                                         doc="reward lost per hour left after a failed power flow (at least); 4000 "
                                             "is the former default of 1000 per 15-min step")
    on_divergence: str = choice(("terminate", "penalize"), "terminate",
                                doc="a failed power flow ends the episode, or only costs the penalty once")
    storage_value: str = choice(("mean_price", "none"), "mean_price",
                                doc="at the episode's last step, the change of every store's energy (Device.stored_mwh, "
                                    "MWh) valued at the episode's mean price ($/MWh) enters its cost: energy taken from "
                                    "the next episode is paid back, energy left is credited")
    v_min_pu: float = quantity("pu", 0.95, gt=0)
    v_max_pu: float = quantity("pu", 1.05, gt=0)
    max_loading_percent: float = quantity("%", 100.0, gt=0,
                                          doc="loading of a line or transformer (% of its rating) above which a grid "
                                              "agent's safety counts it, as loading/limit − 1: the lines and "
                                              "transformers sent from its zone (a line's from_bus, a transformer's "
                                              "HV bus in the zone)")

    def safety_per_step(self, dt_h: float) -> float:
        """The weight of one physics step's safety in the reward: ``safety_weight·dt_h`` (``dt_h``: the step, h)."""
        return self.safety_weight * dt_h

    def divergence_per_step(self, dt_h: float) -> float:
        """The least reward lost per physics step left after a failed flow: ``divergence_penalty·dt_h`` (``dt_h``:
        the step, h)."""
        return self.divergence_penalty * dt_h

    def __attrs_post_init__(self) -> None:
        if self.v_min_pu >= self.v_max_pu:  # an empty band makes every bus unsafe at every tick
            raise ValueError(f"expected v_min_pu < v_max_pu, got {self.v_min_pu} ≥ {self.v_max_pu}")


@attrs.frozen
class LinkConfig:
    """One direction of a parent–child link: delay (s), loss probability, capacity (messages per tick; 0 = any)."""

    delay_s: int = 0
    loss: float = quantity("1", 0.0, ge=0, le=1, doc="probability that a message is lost")
    capacity: int = integer(0, ge=0, doc="messages delivered per tick; 0 = unlimited")

    @property
    def ideal(self) -> bool:
        return self.delay_s == 0 and self.loss == 0.0 and self.capacity == 0


@attrs.frozen
class EventsConfig:
    """When an agent acts besides its period: a bus of its zone outside the reward's voltage band,
    its price above ``price_above`` ($/MWh), a directive arriving from its parent; never sooner than
    ``min_interval_s`` (s) after its last action."""

    voltage: bool = False
    price_above: float | None = None
    message: bool = False
    min_interval_s: int = 0


@attrs.frozen
class AgentConfig:
    """One agent. ``kind: device`` agents name a device ``type`` and a ``bus``.

    ``period_s`` and ``offset_s`` (s): it acts at ``offset + k·period``; ``down`` and ``up``:
    the link from its parent (directives) and to it (measurements), ``None`` when ideal.
    """

    id: str
    kind: str
    path: str
    type: str | None = None
    bus: str | int | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict)
    policy: str = "rule"
    protocol: PluginSpec = PluginSpec("none")
    children: tuple[str, ...] = ()
    period_s: int = 900
    offset_s: int = 0
    zone: str | None = None
    down: LinkConfig | None = None
    up: LinkConfig | None = None
    events: EventsConfig | None = None
    observation: str = "local"


@attrs.frozen
class HorizontalConfig:
    """A protocol among peers, owned by the environment."""

    type: str
    participants: tuple[str, ...]
    params: Mapping[str, Any]
    path: str


@attrs.frozen
class LoadsConfig:
    """How the network loads vary in time; :mod:`powergrid.loads` gives the formula (units pu).

    ``classes`` and ``scale`` map glob patterns of load names or bus names to a customer
    class and to a factor (pu); a later pattern overrides an earlier one.
    """

    profile: str = choice(LOAD_PROFILES, "classes",
                          doc="classes: each load its customer-class shape; uniform: every load × the load profile")
    default_class: str = choice(("auto", *LOAD_CLASSES), "auto",
                                doc="class of the loads no pattern names; auto: the published type, else by size")
    jitter: float = quantity("1", 0.05, ge=0, le=0.5, doc="standard deviation of each load's AR(1) noise (pu)")
    jitter_hours: float = quantity("h", 1.0, gt=0, doc="correlation time of the noise")
    classes: Mapping[str, str] = attrs.field(factory=dict)
    scale: Mapping[str, float] = attrs.field(factory=dict)


@attrs.frozen
class SpacesConfig:
    """What learned agents observe and send; the scaling constants are in :mod:`powergrid.env`."""

    observation: str = choice(("normalized", "raw"), "normalized",
                              doc="normalized: every feature scaled to about [-1, 1]; raw: physical units")
    action: str = choice(("normalized", "physical"), "normalized",
                         doc="normalized: Box actions in [-1, 1] mapped to each device's range; physical: its units")


@attrs.frozen
class EnvConfig:
    """A whole scenario."""

    name: str
    network: PluginSpec
    agents: tuple[AgentConfig, ...]
    solver: PluginSpec | None = None
    time: TimeConfig = TimeConfig()
    reward: RewardConfig = RewardConfig()
    loads: LoadsConfig = LoadsConfig()
    spaces: SpacesConfig = SpacesConfig()
    datasets: Mapping[str, PluginSpec] = attrs.field(factory=dict)
    horizontal: tuple[HorizontalConfig, ...] = ()
    seed: int | None = None
    source: Source = Source()

    @property
    def tick_s(self) -> int:
        """The tick (s): the greatest common divisor of the physics step, every period, offset and link delay."""
        links = [link.delay_s for a in self.agents for link in (a.down, a.up) if link is not None]
        return tick_seconds([self.time.physics_s, *(a.period_s for a in self.agents), *(a.offset_s for a in self.agents),
                             *links])

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> EnvConfig:
        """Read and check a scenario file (structure only; names are checked when the env is built). Anything but a
        regular file (a FIFO or a device, whose read would block or never end) is refused from ``stat``, unopened."""
        file = str(path)
        limit = max_config_bytes()
        try:
            mode = os.stat(path).st_mode
            if not stat.S_ISREG(mode):
                kind = ("a folder" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
                        else "a socket" if stat.S_ISSOCK(mode) else "a device")
                raise ConfigError(f"expected a scenario YAML file, found {kind}", file=file)
            with open(path, "rb") as handle:
                raw = handle.read(limit + 1)
        except OSError as exc:
            raise ConfigError(f"cannot read the file: {exc.strerror or exc}", file=file) from None
        return cls.from_text(_decode(raw, limit, file), file=file)

    @classmethod
    def from_text(cls, text: str, *, file: str | None = None) -> EnvConfig:
        data, lines = load_yaml_with_lines(text, file)
        return parse_config(data, Source(file, lines))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnvConfig:
        return parse_config(data, Source())


PLAIN_TAGS = frozenset({"str", "int", "float", "bool", "null", "map", "seq", "timestamp"})
KEY_TAGS = frozenset({"str", "int", "float", "bool", "null"})
#: Largest scenario file read (bytes); ``POWERGRID_MAX_CONFIG_BYTES`` overrides it.
MAX_CONFIG_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 64          # nesting of mappings and lists
MAX_NODES = 200_000     # values after expanding aliases (a scenario has a few hundred)
MAX_INT = 2**63         # integers must lie in (-MAX_INT, MAX_INT)
MAX_FLOAT32 = 3.4028234663852886e38  # larger numbers become inf in the float32 spaces (numpy.finfo(numpy.float32).max)
#: A plain scalar in exponent notation without the dot or sign YAML 1.1 requires (``1e3``, ``1e-4``, ``1.0e3``).
EXPONENT_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+")
#: Plain scalars PyYAML reads by YAML 1.1 rules only, kept as the text YAML 1.2 reads: ``yes``/``no``/``on``/``off``
#: (booleans in 1.1), base-60 numbers (``1:30`` is 90 in 1.1) and binary ones (``0b1`` is 1 in 1.1).
YAML11_ONLY = re.compile(r"yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?"
                         r"|[-+]?0b[01_]+")
#: An octal integer of YAML 1.2 (``0o10`` is 8); text in YAML 1.1.
OCTAL12 = re.compile(r"0o[0-7]+")
#: An integer with a leading zero: octal in YAML 1.1 (``010`` is 8), decimal in YAML 1.2 (10).
LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def max_config_bytes() -> int:
    """The size limit of a scenario file (bytes): ``POWERGRID_MAX_CONFIG_BYTES`` or 10 MB."""
    value = os.environ.get("POWERGRID_MAX_CONFIG_BYTES", "").strip()
    if not value:
        return MAX_CONFIG_BYTES
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"POWERGRID_MAX_CONFIG_BYTES: expected a whole number of bytes ≥ 1, got {value!r}")
    return int(value)


def _decode(raw: bytes, limit: int, file: str | None) -> str:
    """``raw`` as text: at most ``limit`` bytes of UTF-8, else a :class:`ConfigError` with the line."""
    if len(raw) > limit:
        raise ConfigError(f"the file is larger than {limit:,} bytes, the limit for a scenario "
                          f"(set POWERGRID_MAX_CONFIG_BYTES to raise it)", file=file)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
                          f"(save the file as UTF-8)", file=file, line=raw.count(b"\n", 0, exc.start) + 1) from None


def _yaml_error(exc: yaml.YAMLError, file: str | None, source: str) -> ConfigError:
    """A YAML syntax error at its line and column, with PyYAML's context (what it was reading); ``source`` is the
    parsed text, whose line at the error tells a tab indent."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"{context}, {problem}" if context else problem
    lines = source.splitlines()
    at = lines[mark.line] if mark is not None and mark.line < len(lines) else ""
    if "tab" in problem or "\t" in at[: len(at) - len(at.lstrip())]:
        text += " (indent with spaces)"
    if "another document" in problem:
        text += " (a scenario file holds one document: remove the second '---' and what follows)"
    return ConfigError(f"invalid YAML: {text}", file=file, line=mark.line + 1 if mark else None,
                       column=mark.column + 1 if mark else None)


def _check_shape(text: str, file: str | None) -> None:
    """Reject deep nesting and alias bombs from the event stream, before any node is built."""
    depth, total = 0, 0
    sizes: dict[str, int] = {}          # anchor → number of values it expands to
    open_anchors: list[tuple[str | None, int]] = []
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            line = event.start_mark.line + 1
            if isinstance(event, yaml.AliasEvent):
                total += sizes.get(event.anchor, 1)
            elif isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
                total += 1
                if isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
                    open_anchors.append((event.anchor, total - 1))
                    if depth > MAX_DEPTH:
                        raise ConfigError(f"invalid YAML: nested more than {MAX_DEPTH} levels deep", file=file,
                                          line=line)
                elif event.anchor:
                    sizes[event.anchor] = 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
                anchor, before = open_anchors.pop()
                if anchor:
                    sizes[anchor] = total - before
            if total > MAX_NODES:
                raise ConfigError(f"invalid YAML: more than {MAX_NODES:,} values once aliases are expanded "
                                  f"(a scenario has a few hundred)", file=file, line=line)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, file, text) from None


def _scalar(constructor: yaml.SafeLoader, n: yaml.Node, path: str, file: str | None, *, key: bool = False) -> Any:
    """A plain scalar (finite number, integer in range, string, bool, null, date) read as YAML 1.2 reads it: a value
    (not a ``key``) written ``1e3`` or ``0o10`` is a number, ``yes``/``on``, ``1:30`` and ``0b1`` are text; ``010``
    (8 or 10) is refused."""
    line = n.start_mark.line + 1
    if not n.style and YAML11_ONLY.fullmatch(n.value):  # text before PyYAML's 1.1 constructor sees it (0b_ fails there)
        return n.value
    too_long = n.tag.endswith(":int") and len(str(n.value).lstrip("+-0").replace("_", "")) > 19
    if too_long:
        raise ConfigError(f"integer out of range (beyond 2**63): {str(n.value)[:20]}…", file=file, line=line, path=path)
    try:
        value = constructor.construct_object(n, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML value {str(n.value)[:40]!r}: {reason}", file=file, line=line,
                          path=path) from None
    if not n.style and LEADING_ZERO.fullmatch(n.value):
        reading = f"as octal ({value})" if isinstance(value, int) else "as text"  # 08, 09: not octal digits
        raise ConfigError(f"ambiguous number {n.value}: YAML 1.1 reads it {reading}, YAML 1.2 as decimal; "
                          f"write it without the leading zero, or quote it for text", file=file, line=line, path=path)
    if not key and isinstance(value, str) and not n.style and EXPONENT_FLOAT.fullmatch(value):
        value = float(value)  # YAML 1.2 reads 1e3, 1e-4, 1.0e3 as numbers; PyYAML's 1.1 rules as text
    if not key and isinstance(value, str) and not n.style and OCTAL12.fullmatch(value):
        value = int(value[2:], 8)  # likewise 0o10 (8)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"expected a finite number, got {n.value!r}", file=file, line=line, path=path)
    if isinstance(value, float) and abs(value) > MAX_FLOAT32:
        raise ConfigError(f"number out of range: {n.value} is beyond ±3.4e38, the float32 range of the observation "
                          f"and action spaces", file=file, line=line, path=path)
    if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT < value < MAX_INT:
        raise ConfigError(f"integer out of range (beyond 2**63): {n.value}", file=file, line=line, path=path)
    return value


def load_yaml_with_lines(text: str, file: str | None = None) -> tuple[Any, dict[str, int]]:
    """Parse YAML safely, returning the data and the 1-based line of every YAML path.

    Plain data only: no tags, no merge keys (``<<``), scalar keys; bounded size, depth and alias expansion.
    """
    limit = max_config_bytes()
    if len(text) > limit:
        raise ConfigError(f"the text is larger than {limit:,} characters, the limit for a scenario "
                          f"(set POWERGRID_MAX_CONFIG_BYTES to raise it)", file=file)
    _check_shape(text, file)
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, file, text) from None
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
                line = key_node.start_mark.line + 1
                tag = key_node.tag.removeprefix("tag:yaml.org,2002:")
                if tag == "merge":
                    raise ConfigError("invalid YAML: merge keys (<<) are not supported; write the keys out",
                                      file=file, line=line, path=path)
                if not isinstance(key_node, yaml.ScalarNode) or tag not in KEY_TAGS:
                    what = "a tagged key" if isinstance(key_node, yaml.ScalarNode) else \
                        f"a {'mapping' if isinstance(key_node, yaml.MappingNode) else 'list'} as a key"
                    raise ConfigError(f"invalid YAML: expected a plain name as a key, got {what} ({key_node.tag})",
                                      file=file, line=line, path=path)
                key = _scalar(constructor, key_node, path, file, key=True)
                if key in out:
                    raise ConfigError(f"duplicate key {key!r}", file=file, line=line, path=_join(path, key))
                out[key] = build(value_node, _join(path, key))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(item, f"{path}[{i}]") for i, item in enumerate(n.value)]
        return _scalar(constructor, n, path, file)

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
            close = closest(str(key).lower(), known)
            hint = f"did you mean {close!r}? " if close else ""
            raise src.error(_join(path, key), f"unknown key ({hint}expected one of: {', '.join(known)})")


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


TOP_KEYS = ("name", "network", "solver", "time", "reward", "loads", "spaces", "datasets", "agents", "horizontal", "seed")
AGENT_KEYS = ("id", "kind", "type", "bus", "params", "policy", "protocol", "children", "period", "offset", "zone", "link",
              "events", "observation")
TIME_KEYS = ("physics", "episode", "start_hour", "step_minutes", "steps_per_episode")
LINK_KEYS = ("delay", "loss", "capacity")
EVENT_KEYS = ("voltage", "price_above", "message", "min_interval")


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
    time = _time(top.get("time", {}), src)
    agents = tuple(_agent(a, f"agents[{i}]", src, time.physics_s, time.episode_s) for i, a in enumerate(agents_raw))
    seen: dict[str, str] = {}
    for agent in agents:
        if agent.offset_s >= time.episode_s and agent.events is None:  # with events it acts on them only
            raise src.error(f"{agent.path}.offset", f"{format_duration(agent.offset_s)} is not before the episode's end "
                                                    f"({format_duration(time.episode_s)}): the agent would never act "
                                                    f"(give it events to act on them only)")
        if agent.id in seen:
            raise src.error(f"{agent.path}.id", f"duplicate agent id {agent.id!r} (first defined at {seen[agent.id]})")
        if agent.id == "__common__":  # env.COMMON_INFO: the env's own infos entry
            raise src.error(f"{agent.path}.id", "'__common__' is reserved for the env's own infos entry; expected another id")
        seen[agent.id] = agent.path
    for agent in agents:
        for i, child in enumerate(agent.children):
            if child not in seen:
                raise src.error(f"{agent.path}.children[{i}]",
                                f"expected the id of an agent defined in 'agents', got {child!r} (defined: {', '.join(seen)})")
    children = {c for agent in agents for c in agent.children}
    for agent in agents:
        if (agent.down or agent.up) and agent.id not in children:
            raise src.error(f"{agent.path}.link", "a link joins an agent to its parent; this agent has none")
        if agent.events is not None and agent.events.message and agent.id not in children:
            raise src.error(f"{agent.path}.events.message", "messages come from a parent; this agent has none")
    horizontal = []
    if not isinstance(top.get("horizontal") or [], list):
        raise src.error("horizontal", f"expected a list of protocols among peers ({{type, participants, params}}), "
                                      f"got {type(top['horizontal']).__name__} {top['horizontal']!r}")
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
            if p in participants[:j]:
                raise src.error(f"{path}.participants[{j}]", f"{p!r} is listed twice")
        if len(participants) < 2:  # a protocol among peers with one or none does nothing, silently
            raise src.error(f"{path}.participants" if "participants" in h else path,
                            f"expected at least two participants (agent ids), got {list(participants)}")
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
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= seed < 2**63):
        raise src.error("seed", f"expected an integer from 0 to 2**63 - 1, got {seed!r}")
    if "name" in top:
        name = top["name"]
        if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or set(name) == {"."}:
            raise src.error("name", f"expected a name of letters, digits, '-', '_' and '.' (it names output files), "
                                    f"got {name!r}")
    else:
        stem = Path(src.file).stem if src.file else ""
        name = SAFE_NAME_CHARS.sub("_", stem)[:100].strip(".") or "scenario"
    config = EnvConfig(
        name=str(name),
        network=_plugin(top["network"], "network", src),
        agents=agents,
        solver=_plugin(top["solver"], "solver", src) if top.get("solver") is not None else None,
        time=time,
        reward=_section(RewardConfig, top.get("reward", {}), "reward", src),
        loads=_loads(top.get("loads", {}), src),
        spaces=_section(SpacesConfig, top.get("spaces", {}), "spaces", src),
        datasets=datasets,
        horizontal=tuple(horizontal),
        seed=None if seed is None else int(seed),
        source=src,
    )
    if time.episode_s // config.tick_s > MAX_TICKS:  # checked here, so that validate finds it and not only a run
        culprit = next((f"{a.path}.{key}" for a in agents for key, value in (("period", a.period_s), ("offset", a.offset_s))
                        if time.episode_s // math.gcd(time.physics_s, value) > MAX_TICKS), "time")
        raise src.error(culprit, f"the tick derived from the physics step, periods, offsets and link delays is "
                                 f"{config.tick_s} s, so an episode has {time.episode_s // config.tick_s:,} ticks (at most "
                                 f"{MAX_TICKS:,}); use durations with a larger common divisor")
    return config


def _loads(value: Any, src: Source) -> LoadsConfig:
    """The ``loads`` section: scalar fields checked like any section, patterns one by one."""
    data = _mapping(value, "loads", src)
    patterns: dict[str, dict[str, Any]] = {"classes": {}, "scale": {}}
    for key, patterns_of in patterns.items():
        path = _join("loads", key)
        for pattern, v in _mapping(data.pop(key, {}), path, src, "a mapping of load or bus name patterns").items():
            where = _join(path, pattern)
            if key == "classes" and v not in LOAD_CLASSES:
                raise src.error(where, f"expected a customer class ({', '.join(LOAD_CLASSES)}), got {v!r}")
            if key == "scale" and (isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v) or v < 0):
                raise src.error(where, f"expected a number ≥ 0 (pu), got {v!r}")
            patterns_of[str(pattern)] = v if key == "classes" else float(v)
    return attrs.evolve(build_params(LoadsConfig, data, path="loads", locate=src.locate), **patterns)


def _agent(value: Any, path: str, src: Source, physics_s: int, episode_s: int) -> AgentConfig:
    a = _mapping(value, path, src, "a mapping describing an agent")
    _reject_unknown(a, AGENT_KEYS, path, src)
    if "id" not in a:
        raise src.error(path, "missing required key 'id'")
    agent_id = _name(a["id"], f"{path}.id", src, "an agent id")
    kind = a.get("kind", "device")
    if kind not in AGENT_KINDS:
        raise src.error(f"{path}.kind", f"expected one of {', '.join(AGENT_KINDS)}, got {kind!r}")
    period_s = _steps_or_duration(a.get("period", 1), f"{path}.period", src, physics_s, zero=False)
    offset_s = _steps_or_duration(a.get("offset", 0), f"{path}.offset", src, physics_s, zero=True)
    observation = a.get("observation", "local")
    if observation not in OBSERVATION_MODES:
        raise src.error(f"{path}.observation", f"expected one of {', '.join(OBSERVATION_MODES)}, got {observation!r}")
    down, up = _link(a["link"], f"{path}.link", src, physics_s, episode_s) if "link" in a else (None, None)
    bus = a.get("bus")
    if kind == "device":
        if "type" not in a:
            raise src.error(path, "missing required key 'type' (the device type, a registry name)")
        if bus is None:
            raise src.error(path, "missing required key 'bus' (a bus name or index of the network)")
        if isinstance(bus, bool) or not isinstance(bus, (str, Integral)):
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
        bus=int(bus) if isinstance(bus, Integral) else bus,
        params=_mapping(a.get("params", {}), f"{path}.params", src),
        policy=_name(a.get("policy", "rule"), f"{path}.policy", src, "'learned' or a policy name"),
        protocol=protocol,
        children=children,
        period_s=period_s,
        offset_s=offset_s,
        zone=_name(a["zone"], f"{path}.zone", src) if "zone" in a else None,
        down=down,
        up=up,
        events=_events(a["events"], f"{path}.events", src, physics_s) if "events" in a else None,
        observation=observation,
    )


def _duration(value: Any, path: str, src: Source, *, zero: bool = False) -> int:
    """A duration string (``30s``, ``15min``, ``1h``, ``1d``) in whole seconds, else a ConfigError at ``path``."""
    try:
        return parse_duration(value, zero=zero)
    except ValueError as exc:
        raise src.error(path, f"expected {exc}, got {value!r}") from None


def _steps_or_duration(value: Any, path: str, src: Source, physics_s: int, *, zero: bool) -> int:
    """An agent's period or offset, or a link delay (s): a duration, or an integer count of physics steps."""
    if isinstance(value, Integral) and not isinstance(value, bool):  # numpy's integers too
        if not (0 if zero else 1) <= value <= MAX_PERIOD:
            raise src.error(path, f"expected a duration such as 5min or 1h, or an integer from {0 if zero else 1} to "
                                  f"{MAX_PERIOD:,} (physics steps), got {value!r}")
        return int(value) * physics_s
    if not isinstance(value, str):
        raise src.error(path, f"expected a duration such as 5min or 1h, or an integer (physics steps), got {value!r}")
    return _duration(value, path, src, zero=zero)


def _time(value: Any, src: Source) -> TimeConfig:
    """The ``time`` section: ``physics`` and ``episode`` durations, or the older numeric keys."""
    data = _mapping(value, "time", src)
    _reject_unknown(data, TIME_KEYS, "time", src)
    for new, old in (("physics", "step_minutes"), ("episode", "steps_per_episode")):
        if new in data and old in data:
            raise src.error(f"time.{old}", f"give '{new}' or '{old}', not both (they say the same)")
    numbers = build_params(_TimeNumbers, {k: v for k, v in data.items() if k in attrs.fields_dict(_TimeNumbers)},
                           path="time", locate=src.locate)
    if "physics" in data:
        physics_s = _duration(data["physics"], "time.physics", src)
    else:
        physics_s = round(numbers.step_minutes * 60.0)
        if abs(physics_s - numbers.step_minutes * 60.0) > 1e-6:
            raise src.error("time.step_minutes", f"expected whole seconds (a multiple of 1/60 min), got "
                                                 f"{numbers.step_minutes!r}")
    if physics_s > 86400:
        raise src.error("time.physics", f"expected a physics step of at most 1d, got {data.get('physics')!r}")
    if "episode" in data:
        episode_s = _duration(data["episode"], "time.episode", src)
        if episode_s % physics_s:
            raise src.error("time.episode", f"expected a whole number of physics steps ({physics_s} s), got "
                                            f"{data['episode']!r} ({episode_s} s)")
        if episode_s // physics_s > MAX_STEPS:
            raise src.error("time.episode", f"expected at most {MAX_STEPS:,} physics steps, got {episode_s // physics_s:,}")
    else:
        episode_s = numbers.steps_per_episode * physics_s
    return TimeConfig(physics_s=physics_s, episode_s=episode_s, start_hour=numbers.start_hour)


def _link(value: Any, path: str, src: Source, physics_s: int,
          episode_s: int) -> tuple[LinkConfig | None, LinkConfig | None]:
    """``link: {delay, loss, capacity}`` for both directions, with ``down:``/``up:`` overriding each (a key given in
    both: the direction's wins). An error names the key where it is written (``link.loss``, ``link.down.loss``); a
    delay as long as the episode or longer is one (nothing sent would arrive), as an offset that long is."""
    data = _mapping(value, path, src, "a mapping with delay, loss, capacity (and down/up)")
    _reject_unknown(data, (*LINK_KEYS, "down", "up"), path, src)
    shared = {k: v for k, v in data.items() if k in LINK_KEYS}
    build_params(LinkConfig, {k: v for k, v in shared.items() if k != "delay"}, path=path, locate=src.locate)
    out = []
    for direction in ("down", "up"):
        where = _join(path, direction)
        own = _mapping(data.get(direction, {}), where, src)
        _reject_unknown(own, LINK_KEYS, where, src)
        merged = {**shared, **own}
        delay_s = 0
        if "delay" in merged:
            at = _join(where, "delay") if "delay" in own else _join(path, "delay")
            delay_s = _steps_or_duration(merged.pop("delay"), at, src, physics_s, zero=True)
            if delay_s >= episode_s:
                raise src.error(at, f"{format_duration(delay_s)} is not shorter than the episode "
                                    f"({format_duration(episode_s)}): nothing sent over the link would ever arrive")
        numbers = build_params(LinkConfig, merged, path=where, locate=src.locate)
        link = attrs.evolve(numbers, delay_s=delay_s)
        out.append(None if link.ideal else link)
    return out[0], out[1]


def _events(value: Any, path: str, src: Source, physics_s: int) -> EventsConfig:
    """``events: {voltage: true, price_above: 120, message: true, min_interval: 5min}``."""
    data = _mapping(value, path, src, "a mapping of event conditions")
    _reject_unknown(data, EVENT_KEYS, path, src)
    for key in ("voltage", "message"):
        if key in data and not isinstance(data[key], bool):
            raise src.error(_join(path, key), f"expected true or false, got {data[key]!r}")
    price = data.get("price_above")
    if price is not None and (isinstance(price, bool) or not isinstance(price, Real) or not math.isfinite(price)):
        raise src.error(_join(path, "price_above"), f"expected a number ($/MWh), got {price!r}")
    events = EventsConfig(voltage=bool(data.get("voltage", False)), message=bool(data.get("message", False)),
                          price_above=None if price is None else float(price),
                          min_interval_s=_steps_or_duration(data.get("min_interval", 0), _join(path, "min_interval"),
                                                            src, physics_s, zero=True))
    if not (events.voltage or events.message or events.price_above is not None):
        raise src.error(path, "expected at least one condition: voltage: true, price_above: <$/MWh> or message: true")
    return events


__all__ = ["LEARNED", "AgentConfig", "EnvConfig", "EventsConfig", "HorizontalConfig", "LinkConfig", "LoadsConfig", "PluginSpec",
           "RewardConfig", "Source", "TimeConfig"]

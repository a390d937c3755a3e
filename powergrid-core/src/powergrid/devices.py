"""The device interface: physics only, no pandapower, no RL.

A device sits at one bus and injects ``p_mw``/``q_mvar`` (generator convention:
positive injects into the grid, a load is negative). Each tick the environment
calls ``step(action, ctx)``; the device projects the action onto what it can
do, advances its state over ``ctx.dt_h`` hours and sets:

- ``p_mw``, ``q_mvar`` — injection after the step (MW, Mvar),
- ``cost`` — money spent in this step ($; negative is revenue),
- ``safety`` — constraint violation in this step (≥ 0, 0 when safe),
- ``projection`` — distance between the requested and the applied action
  (0 when the action was feasible), reported in ``infos``.

After the power flow, ``settle(result, ctx)`` may add cost or safety that
depend on network quantities (e.g. the exchange at a point of common coupling).

A device type may also offer an array twin of its ``step``: a :class:`Kernel` subclass
as its ``Kernel`` attribute. The environment then steps all the devices of that type
(with the same :meth:`Kernel.layout`) in one call on arrays (struct of arrays); a type
without a kernel is stepped object by object.
"""

from __future__ import annotations

import copyreg
import functools
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import gymnasium
import numpy as np

from powergrid.params import NoParams
from powergrid.solvers.base import PowerFlowResult


@attrs.define(slots=True)
class StepContext:
    """What agents, protocols and devices see at one tick (one object, updated in place).

    ``profiles`` maps a profile name (``"load"`` pu of base load, ``"solar"`` pu of
    rated PV, ``"wind"`` pu of rated wind, ``"price"`` $/MWh, ``"temperature"`` °C)
    to its array over the episode; the value now is ``profiles[name][tick]``.
    ``price`` is the energy price that applies to the device now ($/MWh): the
    market price, or a parent's price signal. ``tick`` is the index of the current
    physics step in every profile array; ``hour`` the local hour of day now (h, in
    [0, 24), fractional: ``time.start_hour`` plus the time elapsed, wrapping at midnight).
    ``load_multipliers`` (ticks × loads, pu; set by the environment at reset, empty
    outside one) is each network load's multiplier at every physics step
    (:mod:`powergrid.loads`), columns in ``net.load`` row order: load ``i`` draws
    ``p_mw·scaling·load_multipliers[tick, i]`` MW (when in service, at an in-service bus).
    ``load_forecast`` (same shape, pu; set at reset) is their forecast: the same schedule without its random jitter
    each day at a level known before it (:meth:`powergrid.loads.LoadModel.episode`): on a dataset's days the day
    before's actual load (:func:`powergrid.loads.previous_day`), for a profile without a past (the built-in shape, the
    synthetic generator: a plan) the profile's own (then the same array as ``load_multipliers`` without jitter).
    ``load_persistence`` (pu, set when the environment is built) is the share of a load's deviation from that forecast
    that persists to the next tick (:meth:`powergrid.loads.LoadModel.persistence`: φ of the jitter's AR(1); 0.0
    without jitter).
    ``store_price`` ($/MWh, set at reset) is what the reward credits each MWh a store holds at the episode's
    end (``reward.storage_value``: the mean of the episode's prices; 0 under ``none``); a learned agent whose reward
    counts that credit (among its devices the meter billing the store) observes it (docs/rl.md).
    """

    dt_h: float
    profiles: Mapping[str, np.ndarray]
    tick: int = 0
    hour: float = 0.0
    price: float = 0.0
    store_price: float = 0.0
    load_persistence: float = 0.0
    load_multipliers: np.ndarray = attrs.field(factory=lambda: np.ones((0, 0)))
    load_forecast: np.ndarray = attrs.field(factory=lambda: np.ones((0, 0)))

    def profile(self, name: str) -> float:
        """The value of profile ``name`` at the current tick."""
        try:
            return float(self.profiles[name][self.tick])
        except KeyError:  # only on the failing call: the lookup above stays one dict access
            raise KeyError(f"profile {name!r} is not loaded (loaded: {', '.join(sorted(self.profiles)) or 'none'}); "
                           f"a device reading it names it in its class's profiles_used") from None


class Device:
    """Base class of device physics (see the module docstring for the contract).

    Subclasses set ``Params`` (a frozen attrs class made with
    :mod:`powergrid.params` fields) and build ``action_space`` and
    ``observation_space`` once in ``__init__``.
    """

    Params: ClassVar[type] = NoParams
    #: Profile names this device reads (validated against the scenario's profiles).
    profiles_used: ClassVar[tuple[str, ...]] = ()
    #: The array twin of :meth:`step` for many instances at once (a :class:`Kernel` subclass), or None.
    Kernel: ClassVar[type[Kernel] | None] = None
    #: Whether it bills the energy drawn from the grid (a PCC meter; :meth:`billed_buses` says where). The energy a
    #: store behind no such meter charges is free, and ``reward.storage_value: mean_price`` values it at 0 $/MWh (a
    #: warning says so).
    bills_energy: ClassVar[bool] = False
    #: Whether it drives real equipment (hardware in the loop): one environment may hold it, since copies of the
    #: scenario would all write the same equipment's setpoint (a vector env of more than one copy is refused).
    drives_equipment: ClassVar[bool] = False

    def __init__(self, params: Any, dt_h: float) -> None:
        self.params = params
        self.dt_h = float(dt_h)
        self.p_mw = 0.0
        self.q_mvar = 0.0
        self.cost = 0.0
        self.safety = 0.0
        self.projection = 0.0
        self.network_applied = False
        self.action_space: gymnasium.spaces.Space = gymnasium.spaces.Box(0.0, 0.0, (0,), np.float32)
        self.observation_space: gymnasium.spaces.Box = gymnasium.spaces.Box(0.0, 0.0, (0,), np.float32)

    def attach(self, net: Any, bus: int) -> None:
        """Called once when the scenario is built, with the pandapower net and the device's bus row.

        Network-aware devices resolve table rows here; raise ``ValueError`` for a
        parameter that does not fit the network (it becomes a config error).
        """

    def billed_buses(self, net: Any) -> np.ndarray | None:
        """The bus rows whose energy drawn from the grid it bills, when :attr:`bills_energy`; None (the default): every
        bus. Asked once, when the scenario is built."""
        return None

    def reset(self, rng: np.random.Generator) -> None:
        """Draw the initial state from ``rng`` and clear the step outputs."""
        self.p_mw = self.q_mvar = self.cost = self.safety = self.projection = 0.0

    def stored_mwh(self) -> float | None:
        """The energy (MWh) the device could deliver to the grid from its store now, or None (the default): no store.
        The environment values its change over an episode at the episode's mean price
        (:attr:`~powergrid.config.RewardConfig.storage_value`; 0 when no device bills the energy at its bus), so a store drained
        by the end earns nothing. Callable once :meth:`attach` has run, before any :meth:`reset`: the builder asks it
        then whether the device has a store, so from then on it returns None always or never."""
        return None

    def draws_at_reset(self) -> bool:
        """Whether :meth:`reset` may draw from its ``rng`` (default: when the type overrides ``reset``). The environment
        builds a device's random stream only when it does (a stream costs ~7 µs); the others get a generator that
        nothing draws from."""
        return type(self).reset is not Device.reset

    def step(self, action: Any, ctx: StepContext) -> None:
        """Apply ``action`` (projected to the feasible set) over ``ctx.dt_h`` hours."""
        raise NotImplementedError

    def observe(self) -> np.ndarray:
        """The device's observation (float32, inside ``observation_space``): :meth:`observe_values` through
        :func:`observation` (none by default)."""
        values = self.observe_values()
        return np.zeros(0, np.float32) if values is None else observation(self.observation_space, values)

    def observe_values(self) -> list[float] | None:
        """The observation's raw values (Python floats in ``observation_space`` order, before :func:`observation`), or
        None (the default) when the type overrides :meth:`observe` instead. With it the environment gathers the
        observations of many devices in one pass."""
        return None

    @property
    def default_action(self) -> np.ndarray:
        """The action the device applies for a missing action (``None``) and, entry by entry, for a NaN or ±inf
        entry: float64, in the action's physical units (MW, a fraction…), ``action_space.shape``, inside its Box
        bounds (up to their float32 rounding). A horizontal protocol puts its entries in place of a pending
        setpoint's non-finite ones before any device steps, so a NaN means the same with or without one.

        Default: zeros clipped to a Box's bounds (0, or the nearer bound when the range excludes 0); an empty array
        for a space that is not a Box. A device whose ``step`` reads a missing or non-finite entry as something
        else overrides it with that value (the pack's devices give their ``BoxAction`` default: a DG its
        ``p_min_mw``, a PV the fraction 1 of its available power, a tap changer in a Box its current position)."""
        space = self.action_space
        if not isinstance(space, gymnasium.spaces.Box):
            return np.zeros(0, np.float64)
        return np.zeros(space.shape, np.float64).clip(space.low, space.high)

    def rule_action(self, ctx: StepContext) -> Any:
        """The action of the device's default rule-based policy (used when no one else acts for it)."""
        space = self.action_space
        if isinstance(space, gymnasium.spaces.Box):
            return np.zeros(space.shape, np.float32).clip(space.low, space.high)
        if isinstance(space, gymnasium.spaces.Discrete):
            return int(space.start)
        return space.sample()

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> None:
        """Add network-dependent cost/safety after the power flow (default: nothing)."""

    def network_setting(self) -> tuple[str, int, int] | None:
        """An admittance change the device stands for, or None (the default: it only injects P/Q).

        ``("trafo_tap", trafo_row, tap_pos)`` or ``("shunt_step", shunt_row, step)``: the
        environment applies it through the solver whenever it changes, and sets
        ``network_applied`` so the device knows the network carries it.
        """
        return None

    def state_dict(self) -> dict[str, float]:
        """Named state values (for trajectories and tests), e.g. ``{"soc": 0.5}``."""
        return {}

    def close(self) -> None:
        """Release what the device holds outside the process, e.g. a Modbus connection (default: nothing);
        called by the environment's ``close``. A later step may open it again."""


def observation_problem(device: Device) -> str | None:
    """Why the observation of ``device`` would be dropped: its type overrides :meth:`Device.observe` or
    :meth:`Device.observe_values` but its ``observation_space`` is still the empty default; else None. Asked once per
    device when a scenario is built."""
    kind = type(device)
    if kind.observe is Device.observe and kind.observe_values is Device.observe_values:
        return None
    shape = getattr(device.observation_space, "shape", None)
    if shape is not None and int(np.prod(shape)) > 0:
        return None
    which = "observe()" if kind.observe is not Device.observe else "observe_values()"
    return (f"{kind.__name__} overrides {which} but its observation_space is empty (Device's default), so its "
            f"observation would be dropped; set self.observation_space in __init__, one entry per observed value "
            f"(e.g. self.observation_space = box([0.0, -1.0], [1.0, 1.0]))")


class Kernel:
    """Steps many devices of one type at once on arrays: the same results as their own ``step`` (to 1e-12).

    Built once with the devices (one type, one :meth:`layout`); the environment calls
    :meth:`load` after every reset, then per physics step :meth:`step` with the actions of
    all devices as an ``(n, k)`` float64 array (as sent: NaN, inf and out-of-bounds entries
    are projected like the per-object ``step`` does) and their prices ($/MWh). ``step`` fills
    the ``(n,)`` arrays ``p_mw``, ``q_mvar`` (MW, Mvar), ``cost`` ($), ``safety`` and
    ``projection`` and the type's other :attr:`state` arrays.
    :meth:`observe` gives all observations as one ``(n, m)`` array (:meth:`observe_values` their raw columns). A kernel with
    ``settles = True`` also implements :meth:`settle` for the whole type.

    The devices' state lives in the kernel once it is loaded: :meth:`load` copies each device's
    :attr:`state` attributes into the arrays and binds the device to its row (its class becomes a
    cached subclass of the same name whose attributes are properties over ``array[row]``). Nothing
    is written back per step; reading an attribute (``observe``, ``state_dict``, ``rule_action``,
    ``settle``, protocols, users) gives the kernel's value as a Python number, and writing one
    (``reset``, users) writes the kernel's array. A bound device pickles and copies as a plain
    object of its own type with its current values; an unpickled or deep-copied kernel binds its
    devices again. A kernel's ``step`` replaces or updates its state arrays, never an array
    another owner writes.
    """

    #: Whether :meth:`settle` replaces the devices' own ``settle``.
    settles: ClassVar[bool] = False
    #: The device attributes whose values live in the kernel: attribute → (the kernel's array, its dtype).
    state: ClassVar[dict[str, tuple[str, type]]] = {
        name: (name, np.float64) for name in ("p_mw", "q_mvar", "cost", "safety", "projection")}

    def __init__(self, devices: list[Device]) -> None:
        self.devices = devices
        self.dt = np.array([d.dt_h for d in devices], np.float64)

    @staticmethod
    def layout(device: Device) -> Any:
        """Devices of one type share a kernel when this key is equal (default: the action and observation shapes)."""
        return getattr(device.action_space, "shape", None), device.observation_space.shape

    def defaults(self) -> np.ndarray:
        """The ``(n, k)`` actions the devices apply for a missing one (``None``); default: zeros."""
        return np.zeros((len(self.devices), int(np.prod(self.devices[0].action_space.shape))), np.float64)

    def param(self, name: str) -> np.ndarray:
        """Parameter ``name`` of every device as a float64 array."""
        return np.array([float(getattr(d.params, name)) for d in self.devices], np.float64)

    def load(self) -> None:
        """Copy the devices' :attr:`state` (after their ``reset``) into the arrays and bind the devices to their rows;
        devices already bound to this kernel hold their state in it (their reset wrote it there): nothing to do."""
        devices = self.devices
        if devices and all(kernel is self and at == row for row, (kernel, at) in
                           enumerate(vars(d).get("_bound", (None, None)) for d in devices)):
            return
        for name, (array, dtype) in self.state.items():
            setattr(self, array, np.array([getattr(d, name) for d in devices], dtype))
        self._bind()

    def _bind(self) -> None:
        """Bind every device to its row of the state arrays (see the class docstring)."""
        fields = tuple((name, array) for name, (array, _) in self.state.items())
        for row, d in enumerate(self.devices):
            _bind(d, self, row, fields)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled (or deep-copied): the arrays as pickled, the devices (pickled with the same values) bound again."""
        self.__dict__.update(state)
        self._bind()

    def step(self, actions: np.ndarray, prices: np.ndarray, ctx: StepContext) -> None:
        """Step every device: row ``i`` of ``actions`` at price ``prices[i]`` for ``devices[i]``."""
        raise NotImplementedError

    def observe(self) -> np.ndarray:
        """Every device's observation as a row (float32 values, inside its ``observation_space``)."""
        return np.zeros((len(self.devices), 0), np.float32)

    def observe_values(self) -> list[np.ndarray] | None:
        """The observations' raw columns (one ``(n,)`` float64 array per observation entry, before NaN → 0, clipping
        and float32: :func:`observation` of each row gives :meth:`observe`), or None (the default) when the type
        overrides :meth:`observe` instead. With it the environment clips the observations of every kernel and solo
        device in one pass."""
        return None

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> None:
        """Every device's ``settle`` (only used when ``settles``)."""


def _bind(obj: Any, kernel: Kernel, row: int, fields: tuple[tuple[str, str], ...]) -> None:
    """Make ``obj``'s attributes ``fields`` (name → the kernel's array) read and write ``array[row]`` of ``kernel``:
    its class becomes :func:`_bound_class` of its own (the values are the kernel's from now on: copy them there
    first)."""
    own = vars(obj)
    for name, _ in fields:
        own.pop(name, None)
    own["_bound"] = (kernel, row)
    obj.__class__ = _bound_class(getattr(type(obj), "_unbound", type(obj)), fields)


@functools.cache
def _bound_class(cls: type, fields: tuple[tuple[str, str], ...]) -> type:
    """The subclass of ``cls`` (same name, no new slots) whose attributes ``fields`` are properties over the
    bound kernel's arrays."""
    def column(array: str) -> property:
        def get(self: Any) -> Any:
            kernel, row = self._bound
            return getattr(kernel, array).item(row)

        def put(self: Any, value: Any) -> None:
            kernel, row = self._bound
            getattr(kernel, array)[row] = value

        return property(get, put)

    namespace: dict[str, Any] = {"__slots__": (), "__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                 "__doc__": cls.__doc__, "_unbound": cls, "_columns": tuple(name for name, _ in fields),
                                 "__reduce_ex__": _reduce_unbound}
    namespace.update((name, column(array)) for name, array in fields)
    return type(cls.__name__, (cls,), namespace)


def _reduce_unbound(self: Any, protocol: int) -> tuple[Any, ...]:
    """A bound object pickles (and copies) as a plain object of its own class with its current values: the reduction
    of an unbound twin (so the class's own ``__getstate__``, ``__reduce__`` and slots apply), rebuilt by :func:`_new`."""
    cls = type(self)._unbound
    twin = cls.__new__(cls)
    vars(twin).update((name, value) for name, value in vars(self).items() if name != "_bound")
    vars(twin).update((name, getattr(self, name)) for name in type(self)._columns)
    for name in copyreg._slotnames(cls):
        if hasattr(self, name):
            setattr(twin, name, getattr(self, name))
    func, args, *rest = twin.__reduce_ex__(protocol)
    if func is copyreg.__newobj__:  # the pickler would refuse a class other than the bound object's own
        func, args = _new, (args[0], args[1:], {})
    elif func is copyreg.__newobj_ex__:
        func = _new
    return (func, args, *rest)


def _new(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """An uninitialised ``cls`` (what unpickling a bound object starts from)."""
    return cls.__new__(cls, *args, **kwargs)


def observation(space: gymnasium.spaces.Box, values: Any) -> np.ndarray:
    """``values`` as float32 inside ``space`` (NaN becomes 0, then clipped to the bounds)."""
    out = []
    for v, lo, hi in zip(values, space.low.tolist(), space.high.tolist()):
        if v != v:  # NaN
            v = 0.0
        out.append(lo if v < lo else hi if v > hi else v)
    return np.array(out, np.float32)


def box(low: Any, high: Any) -> gymnasium.spaces.Box:
    """A float32 Box from bounds (scalars or sequences)."""
    lo = np.atleast_1d(np.asarray(low, np.float32))
    hi = np.atleast_1d(np.asarray(high, np.float32))
    return gymnasium.spaces.Box(lo, hi, dtype=np.float32)


def clip_action(action: Any, space: gymnasium.spaces.Box, default: Any = None) -> tuple[np.ndarray, float]:
    """Project ``action`` onto a Box: returns the feasible action (float64) and the projection distance.

    The distance sums each entry's move to its bounds, capped at the entry's range (``high − low``): a NaN or
    infinite entry becomes the entry of ``default`` (a device's :attr:`Device.default_action`, taken as given) or,
    without one, the midpoint of its bounds, and counts as the full range; so does a finite entry further than that
    outside them (1e30 counts as the range, not 1e30). A device passes its ``default_action``, so that a NaN it reads
    is what a horizontal protocol makes of it (``clip_action(action, self.action_space, self.default_action)``).
    """
    a = np.asarray(action, dtype=np.float64).reshape(space.shape)
    clipped = np.clip(np.where(np.isfinite(a), a, (space.low + space.high) / 2.0), space.low, space.high)
    if default is not None:  # as given (float64), not rounded to the float32 bounds
        clipped = np.where(np.isfinite(a), clipped, np.asarray(default, np.float64).reshape(space.shape))
    # fmin ignores the NaN of a NaN entry's move: it counts the range
    distance = float(np.fmin(np.abs(clipped - a), space.high.astype(np.float64) - space.low).sum())
    return clipped, distance


def export_price(price: Any, sell_ratio: Any) -> Any:
    """$/MWh an export at a point of common coupling is paid: ``min(sell_ratio·price, price)`` (floats or arrays).

    At a negative price an export is billed the full price, never less than an import earns, so a zero-net round
    trip gains nothing (at ``sell_ratio·price`` it would earn ``(1 − sell_ratio)·|price|`` per MWh cycled).
    Shared by the GridConnection bill, the protocols' meter and the benchmark oracle.
    """
    return np.minimum(sell_ratio * price, price)

"""How an environment steps its devices and routes setpoints as arrays.

Two structures, built once per :class:`~powergrid.env.MultiAgentPowerGridEnv` from its scenario:

- :class:`DeviceGroups`: the devices whose type has an array kernel (:class:`powergrid.devices.Kernel`),
  grouped by kernel and layout into :class:`Batch` es of at least :data:`KERNEL_MIN_DEVICES` devices and
  stepped by one kernel call per group; the others (small groups, types without a kernel) are stepped
  object by object. It gathers their injections, costs and observations into the env's arrays.
- :class:`FastSetpoints`: learned root GridAgents whose vertical protocol only splits their action among
  their device children (:meth:`~powergrid.protocols.VerticalProtocol.action_slices`, e.g. ``setpoint``):
  their actions are concatenated once per tick and scattered to the children's action rows as index maps,
  instead of a walk down the agent tree (:meth:`MultiAgentPowerGridEnv._decide`). Same results.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any

import attrs
import gymnasium
import numpy as np

from powergrid.agents import Agent, DeviceAgent, GridAgent
from powergrid.devices import Device, Kernel, StepContext
from powergrid.errors import PluginError, plugin_failure
from powergrid.plugins import origin
from powergrid.solvers.base import PowerFlowResult

#: Devices of a type with an array kernel are stepped by it when at least this many share a layout: where n each of
#: the pack's ESS, DG and PV start to pay (alone, from ≈ 6 PV to ≈ 20 GridConnection; docs/performance.md, *Kernel
#: or objects*). The two paths agree to 1e-12, not in every bit: a kernel may give −0.0 where an object gives 0.0.
KERNEL_MIN_DEVICES = 10
#: Route plain setpoint directives of learned root GridAgents as index maps (:class:`FastSetpoints`);
#: False decides every agent through :meth:`MultiAgentPowerGridEnv._decide` (same results, for comparison).
FAST_SETPOINTS = True

#: ``(observe, places)``: a device's or protocol's ``observe`` and every slice of the observation buffer it fills
ObservedPart = tuple[Callable[[], np.ndarray], list[slice]]

_dtype = attrgetter("dtype")
#: the dtypes :meth:`FastSetpoints._joined` joins (others, e.g. long double, would be mapped at their own precision)
_JOINED = (np.dtype(np.float32), np.dtype(np.float64))
#: the number types devices' outputs have (others take the checked path of ``_refuse``: correct, slower)
_SCALARS = frozenset({float, int, bool, np.float64, np.float32, np.float16, np.bool_, np.int64, np.int32, np.int16, np.int8,
                      np.uint64, np.uint32, np.uint16, np.uint8})


def whole_or(rows: np.ndarray, n: int) -> np.ndarray | slice:
    """``rows`` to index an axis of length ``n``: ``slice(None)`` when they are ``0..n-1`` in order (writing through
    a slice is ≈ 0.3-0.7 µs cheaper than through an index array), else ``rows``."""
    return slice(None) if np.array_equal(rows, np.arange(n)) else rows


@attrs.define(eq=False)
class Batch:
    """Devices of one kernel type and layout: the kernel, their agents and positions in device order, the
    ``(n, k)`` action rows and prices it steps with, the rows fed by fast setpoints (``fast_rows`` from
    ``fast_src`` of the concatenated parent actions, for the children at ``fast_child``; ``fast_to``: ``fast_rows``
    as :func:`whole_or` gives them) and the other rows
    (``slow``: read from ``pending``), and where the observations of a kernel without ``observe_values`` go
    (``obs_rows`` → ``obs_at``; ``obs_rows`` None: every row once, in order; empty for the others)."""

    kernel: Kernel
    agents: list[DeviceAgent]
    idx: np.ndarray
    width: int = attrs.field(init=False)
    defaults: np.ndarray = attrs.field(init=False)
    actions: np.ndarray = attrs.field(init=False)
    prices: np.ndarray = attrs.field(init=False)
    fast_child: np.ndarray = attrs.field(init=False)
    fast_rows: np.ndarray = attrs.field(init=False)
    fast_src: np.ndarray = attrs.field(init=False)
    fast_to: np.ndarray | slice = attrs.field(init=False)
    slow: list[tuple[int, DeviceAgent]] = attrs.field(init=False)
    obs_rows: np.ndarray | None = attrs.field(init=False)
    obs_at: np.ndarray = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.width = int(np.prod(self.agents[0].device.action_space.shape))
        self.defaults = self.kernel.defaults()
        self.actions = self.defaults.copy()
        self.prices = np.zeros(len(self.agents))
        self.fast_child = self.fast_rows = self.fast_to = np.zeros(0, np.int64)
        self.fast_src = np.zeros((0, self.width), np.int64)
        self.slow = list(enumerate(self.agents))

    def gather(self) -> None:
        """The actions and prices of the rows not fed by fast setpoints, from their agents."""
        actions, prices = self.actions, self.prices
        for row, d in self.slow:
            prices[row] = d.price
            pending = d.pending
            if pending is None:
                actions[row] = self.defaults[row]
                continue
            a = np.asarray(pending, np.float64).reshape(-1)
            if a.size != self.width:
                d.device.step(pending, StepContext(d.device.dt_h, {}))  # raises the device's own error
                raise ValueError(f"device {d.id!r}: expected an action of {self.width} values, got {a.size}")
            actions[row] = a


class DeviceGroups:
    """The devices of a scenario as kernel batches and solo devices (stepped object by object).

    ``device_agents`` in device order (positions ``0..n-1`` of the env's device arrays); ``flat_parts`` the
    observed parts of the learned agents' observations: the parts of batched devices and of solo devices with
    ``observe_values`` are taken over (raw values clipped in one pass, or one kernel ``observe`` per batch,
    scattered), the others stay in :attr:`flat_parts`. ``reactive``: whether
    horizontal protocols may set reactive setpoints (then applied after the kernel step).
    """

    def __init__(self, device_agents: Sequence[DeviceAgent], flat_parts: list[ObservedPart], *, reactive: bool) -> None:
        dev_pos = {id(d): i for i, d in enumerate(device_agents)}
        groups: dict[tuple[type, Any], list[DeviceAgent]] = {}
        for d in device_agents:
            kernel = type(d.device).Kernel
            if kernel is not None:
                groups.setdefault((kernel, kernel.layout(d.device)), []).append(d)
        self.batches: list[Batch] = []
        batched: dict[int, tuple[Batch, int]] = {}
        for (kernel, _), members in groups.items():
            if len(members) < KERNEL_MIN_DEVICES:
                continue
            b = Batch(kernel([d.device for d in members]), members, np.array([dev_pos[id(d)] for d in members], np.int64))
            self.batches.append(b)
            batched.update((id(d.device), (b, row)) for row, d in enumerate(members))
        self.n = len(device_agents)
        self.device_agents = list(device_agents)
        self.ctx: StepContext | None = None  # the context of the last step (names the tick in errors)
        self.solo = [d for d in device_agents if id(d.device) not in batched]
        self.solo_idx = np.array([dev_pos[id(d)] for d in self.solo], np.int64)
        self.solo_devices = [d.device for d in self.solo]
        self.settling = [d for d in self.solo if type(d.device).settle is not Device.settle]
        self.settle_kernels = [b.kernel for b in self.batches if b.kernel.settles]
        # which devices (in device order) settle on the flow: their cost and safety may be settle's (flow-dependent)
        self._settles = np.zeros(self.n, bool)
        self._settles[[i for i, d in enumerate(self.device_agents) if type(d.device).settle is not Device.settle]] = True
        for b in self.batches:
            self._settles[b.idx] = b.kernel.settles
        self._warned: set[int] = set()  # the owners (ids) of observations already warned about (non-finite values)
        self.reactive = reactive
        self._get_pq = attrgetter("p_mw", "q_mvar")
        self._get_cost = attrgetter("cost", "safety", "projection", "p_mw")
        # the raw values of solo devices (Device.observe_values) and the raw columns of kernels (Kernel.observe_values):
        # gathered, clipped and scattered at once; other kernels: one observe call each, scattered to every place
        # that observes their devices
        self.flat_parts: list[ObservedPart] = []
        places: dict[int, tuple[list[int], list[np.ndarray]]] = {}
        self._values: list[Callable[[], list[float]]] = []
        self._columns: list[Callable[[], list[np.ndarray]]] = []
        self._counts: list[int] = []  # how many values each of _values gives (checked at reset: check_counts)
        self._column_counts: list[list[int]] = []  # each of _columns: one length (its devices) per column
        low: list[np.ndarray] = []
        high: list[np.ndarray] = []
        take: list[np.ndarray] = []
        value_at: list[np.ndarray] = []
        for observe, where in flat_parts:
            device = getattr(observe, "__self__", None)
            owner = batched.get(id(device))
            if owner is None and isinstance(device, Device) and type(device).observe is Device.observe \
                    and type(device).observe_values is not Device.observe_values:
                start = sum(map(len, low))
                space = device.observation_space
                self._values.append(device.observe_values)
                low.append(space.low.astype(np.float64).ravel())
                self._counts.append(len(low[-1]))
                high.append(space.high.astype(np.float64).ravel())
                for w in where:
                    take.append(np.arange(start, start + len(low[-1])))
                    value_at.append(np.arange(w.start, w.stop))
                continue
            if owner is None:
                self.flat_parts.append((observe, where))
                continue
            b, row = owner
            rows, at = places.setdefault(id(b), ([], []))
            for w in where:
                rows.append(row)
                at.append(np.arange(w.start, w.stop))
        for b in self.batches:
            rows, at = places.get(id(b), ([], []))
            size = int(np.prod(b.agents[0].device.observation_space.shape))
            if rows and type(b.kernel).observe_values is not Kernel.observe_values:  # after the solo values
                n, start = len(b.agents), sum(map(len, low))
                spaces = [d.device.observation_space for d in b.agents]
                low.append(np.array([s.low.ravel() for s in spaces], np.float64).T.ravel())  # column after column
                high.append(np.array([s.high.ravel() for s in spaces], np.float64).T.ravel())
                take += [start + row + n * np.arange(size) for row in rows]
                value_at += at
                self._columns.append(b.kernel.observe_values)
                self._column_counts.append([n] * size)
                rows, at = [], []
            b.obs_rows = None if rows == list(range(len(b.agents))) else np.array(rows, np.int64)
            b.obs_at = np.array(at, np.int64).reshape(len(rows), size)
        self._values_low = np.concatenate(low) if low else np.zeros(0)
        self._values_ones = np.ones(len(self._values_low))
        self._values_high = np.concatenate(high) if high else np.zeros(0)
        # the device (its position in device order) of every raw value, in the order observe gathers them
        agent_of = {id(d.device): i for i, d in enumerate(self.device_agents)}
        of_value = [agent_of[id(values.__self__)] for values, k in zip(self._values, self._counts) for _ in range(k)]
        for columns, counts in zip(self._columns, self._column_counts):
            b = next(b for b in self.batches if b.kernel is columns.__self__)
            of_value += [int(i) for _ in counts for i in b.idx]
        self._value_agent = np.array(of_value, np.int64)
        value_to = np.concatenate(value_at).astype(np.int64) if value_at else np.zeros(0, np.int64)
        taken = np.concatenate(take).astype(np.int64) if take else np.zeros(0, np.int64)
        if np.array_equal(np.sort(taken), np.arange(len(self._values_low))):  # every value once: put in their order
            self._values_at, self._values_take = value_to[np.argsort(taken)], None
        else:
            self._values_at, self._values_take = value_to, taken

    def _shape_error(self, observe: Callable[[], np.ndarray], value: Any, where: slice) -> str:
        """The message for an observed part whose value does not fit its place: the agent, the class, both shapes."""
        owner = _owner(observe)
        everyone = [*self.solo, *(a for b in self.batches for a in b.agents)]
        agent = next((d.id for d in everyone if d.device is owner), None)
        space = getattr(owner, "observation_space", None)
        return (f"{f'agent {agent!r}: ' if agent else ''}{type(owner).__name__}."
                f"{getattr(getattr(observe, 'func', observe), '__name__', 'observe')}()"
                f" returned shape {np.shape(value)}, expected {where.stop - where.start} value(s)"
                f"{f' (its observation_space has shape {space.shape})' if isinstance(space, gymnasium.spaces.Box) else ''}")

    def check_counts(self) -> None:
        """Raise ValueError naming the first ``observe_values`` or ``observe`` that gives another number of values than
        its space holds (called at every reset: each step checks only the total of the values, so one device short and
        another long by the same count would slide values between agents unseen, and an ``observe()`` of one value
        would fill every entry of its place)."""
        try:
            wrong = ([len(values()) for values in self._values] != self._counts
                     or [[len(c) for c in columns()] for columns in self._columns] != self._column_counts)
        except Exception:
            self._name_values_failure()
            raise
        if wrong:
            raise ValueError(self._count_error())
        for observe, places in self.flat_parts:
            try:
                value = observe()
            except Exception as exc:
                raise plugin_failure(exc, self._observer(observe)) from exc
            if np.size(value) != places[0].stop - places[0].start:
                raise ValueError(self._shape_error(observe, value, places[0]))
        for b in self.batches:
            if len(b.obs_at):
                try:
                    shape = np.shape(b.kernel.observe())
                except Exception as exc:
                    raise plugin_failure(exc, _kernel_where(b, "observe", None)) from exc
                if shape != (len(b.agents), b.obs_at.shape[1]):
                    raise ValueError(f"{_kernel_where(b, 'observe', None)} returned shape {shape}, expected "
                                     f"{(len(b.agents), b.obs_at.shape[1])} (a row per device, an entry per value of "
                                     f"its devices' observation_space {b.agents[0].device.observation_space.shape})")

    def _count_error(self) -> str:
        """The message for the first ``observe_values`` that gives another number of values than its space holds."""
        everyone = [*self.solo, *(a for b in self.batches for a in b.agents)]
        for values in self._values:
            device = values.__self__
            got, size = len(values()), int(np.prod(device.observation_space.shape))
            if got != size:
                agent = next(d.id for d in everyone if d.device is device)
                return (f"agent {agent!r}: {type(device).__name__}.observe_values() returned {got} value(s), expected "
                        f"{size} (its observation_space has shape {device.observation_space.shape})")
        for columns in self._columns:
            kernel = columns.__self__
            got, size, n = columns(), int(np.prod(kernel.devices[0].observation_space.shape)), len(kernel.devices)
            if len(got) != size:
                return (f"{type(kernel).__name__}.observe_values() returned {len(got)} column(s), expected {size} (the "
                        f"shape of its devices' observation_space, {kernel.devices[0].observation_space.shape})")
            if wrong := [len(c) for c in got if len(c) != n]:
                return f"{type(kernel).__name__}.observe_values() returned a column of {wrong[0]} value(s), expected {n} (one per device)"
        return "the devices' observe_values gave another number of values than their observation spaces hold"

    def load(self) -> None:
        """Every kernel reads its devices' state (after the devices' reset)."""
        self.ctx = None
        for b in self.batches:
            b.kernel.load()

    def step(self, ctx: StepContext) -> None:
        """Device physics over the physics step: batched types by their kernels, the others object by object.

        An exception of a device's (or kernel's) code is raised again, of its type, naming the agent, the plugin and
        the tick (:func:`~powergrid.errors.plugin_failure`)."""
        self.ctx = ctx
        try:
            for d in self.solo:
                ctx.price = d.price
                d.device.step(d.pending, ctx)
        except Exception as exc:
            raise plugin_failure(exc, _where(d, "step", ctx)) from exc
        try:
            for b in self.batches:
                b.gather()
                b.kernel.step(b.actions, b.prices, ctx)
        except Exception as exc:
            raise plugin_failure(exc, _kernel_where(b, "step", ctx)) from exc
        if self.reactive:  # the protocols' reactive setpoints, after the active-power step
            for d in self.solo:
                if d.reactive.q_mvar is not None:
                    d.reactive.apply(d.device)
            for b in self.batches:  # a batched device's q_mvar is its kernel's (powergrid.devices.Kernel)
                for d in b.agents:
                    if d.reactive.q_mvar is not None:
                        d.reactive.apply(d.device)

    def settle(self, flow: PowerFlowResult, ctx: StepContext) -> None:
        """Devices that settle on the flow (e.g. PCC exchange): solo ones, then the kernels."""
        try:
            for d in self.settling:
                d.device.settle(flow, ctx)
        except Exception as exc:
            raise plugin_failure(exc, _where(d, "settle", ctx)) from exc
        try:
            for kernel in self.settle_kernels:
                kernel.settle(flow, ctx)
        except Exception as exc:
            raise plugin_failure(exc, _kernel_where(next(b for b in self.batches if b.kernel is kernel), "settle", ctx)) from exc

    def injections(self) -> tuple[np.ndarray, np.ndarray]:
        """Every device's ``(p_mw, q_mvar)`` in device order (MW, Mvar); a non-finite one raises
        :class:`~powergrid.errors.PluginError` naming the device (:meth:`_raise_non_finite`)."""
        if not self.batches:  # every device is solo, in device order: the rows of a view, no copy
            pq = self._solo_values(self._get_pq, 2)
            p, q = pq.reshape(self.n, 2).T
            if not math.isfinite(pq.dot(pq)):  # a NaN or inf among them (or a sum too large: then nothing is raised)
                self._raise_non_finite({"p_mw": p, "q_mvar": q})
            return p, q
        p, q = np.empty(self.n), np.empty(self.n)
        if self.solo:
            pq = self._solo_values(self._get_pq, 2)
            p[self.solo_idx] = pq[0::2]
            q[self.solo_idx] = pq[1::2]
        for b in self.batches:
            p[b.idx] = b.kernel.p_mw
            q[b.idx] = b.kernel.q_mvar
        if not math.isfinite(p.dot(q)):  # NaN or inf in p or q (nan·0 and inf·0 are NaN), or a sum too large
            self._raise_non_finite({"p_mw": p, "q_mvar": q})
        return p, q

    def _raise_non_finite(self, outputs: Mapping[str, np.ndarray], call: str = "step") -> None:
        """Raise :class:`~powergrid.errors.PluginError` naming the first device whose output in ``outputs`` (name →
        values in device order) is NaN or infinite, if any. A device's output is never an agent's action (actions are
        projected into the device's space before its step), so a non-finite one is its plugin's bug, not a grid event
        (a NaN injection made the flow diverge: the learned parent paid the divergence penalty, the device unnamed)."""
        for name, values in outputs.items():
            if bad := np.flatnonzero(~np.isfinite(values)).tolist():
                d = self.device_agents[bad[0]]
                where = _where(d, call, self.ctx) if self.ctx is not None else _where(d, "reset", None)
                others = f" (and {len(bad) - 1} other device(s))" if len(bad) > 1 else ""
                # a solo device's own value: None was read as NaN
                own = getattr(d.device, name) if d in self.solo else values[bad[0]]
                if own is None:
                    raise PluginError(f"{where} set {name} = None{others}; expected a number (a Python or numpy float, "
                                      f"e.g. 0.0)")
                raise PluginError(f"{where} set {name} = {values[bad[0]]}{others}; a device's outputs must be finite: "
                                  f"its action is projected into its action space before the step, so the value is the "
                                  f"plugin's own")

    def check_step_costs(self) -> None:
        """Raise :class:`~powergrid.errors.PluginError` naming the first device that does not settle on the flow whose
        cost or safety this step is NaN or infinite: its ``step`` set it, with no flow involved, so it is its plugin's
        bug as a non-finite ``p_mw`` is. A device that settles (``settle``, or a kernel's ``settles``) may have set it
        from the flow: left to the environment's failure event. Called on the failure path only (a non-finite cost)."""
        out = self.costs()
        own = ~self._settles
        self._raise_non_finite({"cost": np.where(own, out[:, 0], 0.0), "safety": np.where(own, out[:, 1], 0.0)})

    def costs(self) -> np.ndarray:
        """Every device's cost ($), safety (≥ 0), projection and ``p_mw`` (MW) this step, in device order: the
        rows of an ``(n, 4)`` array (C order: ``ravel()`` is a view, device after device)."""
        if not self.batches:  # every device is solo, in device order
            return self._solo_values(self._get_cost, 4).reshape(self.n, 4)
        out = np.empty((self.n, 4))
        if self.solo:
            out[self.solo_idx] = self._solo_values(self._get_cost, 4).reshape(-1, 4)
        cost, safe, proj, p = out.T  # the columns, filled by index arrays
        for b in self.batches:
            k = b.kernel
            cost[b.idx], safe[b.idx], proj[b.idx], p[b.idx] = k.cost, k.safety, k.projection, k.p_mw
        return out

    def _solo_values(self, get: Callable[[Device], tuple[float, ...]], k: int) -> np.ndarray:
        """The ``k`` values of every solo device, device after device, as one flat array; a value that is not a number
        raises a TypeError naming the device and the attribute."""
        values = tuple(chain.from_iterable(map(get, self.solo_devices)))
        # a rarer type: an array is refused here, whatever its size (numpy < 2.4 reads a size-1 one as its element)
        if not _SCALARS.issuperset(map(type, values)):
            self._refuse()
        try:
            return np.fromiter(values, np.float64, k * len(self.solo))
        except (TypeError, ValueError) as exc:
            self._refuse(exc)
            raise

    def _refuse(self, exc: Exception | None = None) -> None:
        """Raise an error naming the first solo device whose output is an array (of any size) or, after ``exc`` (numpy
        failed to read the outputs), no number."""
        for d in self.solo:
            for name in ("p_mw", "q_mvar", "cost", "safety", "projection"):
                value = getattr(d.device, name)
                # bool: an int, as numpy reads it
                if np.ndim(value) != 0 or (exc is not None and not isinstance(value, (int, float, np.integer, np.floating))):
                    cause = exc if exc is not None else ValueError(f"an array of shape {np.shape(value)}")
                    raise plugin_failure(cause, f"{_where(d, 'step', self.ctx)} set {name} to {type(value).__name__} "
                                                f"{value!r}, expected a number (a Python or numpy float)") from cause

    def observe(self, buf: np.ndarray) -> None:
        """Write every observed device and protocol part into the observation buffer ``buf``.

        float32 values go in by ``ndarray.put``: 0.2-0.3 µs faster than an index assignment into float64."""
        try:
            parts = [c for columns in self._columns for c in columns()]
            if self._values:
                parts.insert(0, np.array([v for values in self._values for v in values()], np.float64))
        except Exception:
            self._name_values_failure()
            raise
        if parts:  # Device.observe's clipping on all the values at once: NaN as 0, bounds, float32
            x = np.concatenate(parts) if self._columns else parts[0]  # a new array (never a kernel's own column)
            try:
                # NaN or inf (or a sum too large: then nothing is found): cheaper than np.isfinite(x).all()
                odd = not math.isfinite(x.dot(self._values_ones))
            except ValueError:  # some observe_values gave a wrong number of values
                raise ValueError(self._count_error()) from None
            if odd:
                self._warn_values(x)
                x[np.isnan(x)] = 0.0
            x = np.minimum(np.maximum(x, self._values_low), self._values_high).astype(np.float32)
            buf.put(self._values_at, x if self._values_take is None else x[self._values_take])
        for observe, places in self.flat_parts:
            try:
                value = observe()
            except Exception as exc:
                raise plugin_failure(exc, self._observer(observe)) from exc
            try:
                for where in places:
                    buf[where] = value
            except ValueError:
                raise ValueError(self._shape_error(observe, value, places[0])) from None
        try:
            for b in self.batches:
                if len(b.obs_at):
                    observed = b.kernel.observe()
                    buf.put(b.obs_at, observed if b.obs_rows is None else observed[b.obs_rows])
        except Exception as exc:
            raise plugin_failure(exc, _kernel_where(b, "observe", None)) from exc

    def _warn_values(self, x: np.ndarray) -> None:
        """Warn once per device whose ``observe_values`` (or kernel column) gave a NaN or infinite value among the raw
        values ``x`` (NaN is observed as 0, ±inf as its space's bound: a plugin's bug hidden from the agent)."""
        for pos in np.flatnonzero(~np.isfinite(x)).tolist():
            i = int(self._value_agent[pos]) if pos < len(self._value_agent) else -1
            if i >= 0 and id(self.device_agents[i].device) not in self._warned:
                d = self.device_agents[i]
                self._warned.add(id(d.device))
                _warn_observed(f"{_where(d, 'observe_values', self.ctx)} gave {x[pos]}")

    def warn_non_finite(self, buf: np.ndarray) -> None:
        """Warn once per device or protocol whose ``observe()`` put a NaN or infinite value into the observation buffer
        ``buf`` (for the environment, after its test found a non-finite observation: observed as 0 or its bound)."""
        for observe, places in self.flat_parts:
            owner = _owner(observe)
            values = buf[places[0]]
            if id(owner) not in self._warned and not np.isfinite(values).all():
                self._warned.add(id(owner))
                _warn_observed(f"{self._observer(observe)} returned {values[~np.isfinite(values)][0]}")
        for b in self.batches:
            if len(b.obs_at):
                rows = b.obs_rows if b.obs_rows is not None else np.arange(len(b.agents))
                for row, at in zip(rows.tolist(), b.obs_at):
                    d = b.agents[row]
                    if id(d.device) not in self._warned and not np.isfinite(buf[at]).all():
                        self._warned.add(id(d.device))
                        _warn_observed(f"{_kernel_where(b, 'observe', self.ctx)} gave agent {d.id!r} "
                                       f"{buf[at][~np.isfinite(buf[at])][0]}")

    def _observer(self, observe: Callable[[], Any]) -> str:
        """Who ``observe`` (a device's or protocol's bound method) belongs to, for an error it raised."""
        owner = _owner(observe)
        agent = next((d for d in self.device_agents if d.device is owner), None)
        name = f"{type(owner).__name__}.{getattr(getattr(observe, 'func', observe), '__name__', 'observe')}()"
        return f"agent {agent.id!r} ({origin(owner)}): {name}" if agent else f"{name} ({origin(owner)})"

    def _name_values_failure(self) -> None:
        """After an exception while the devices' ``observe_values`` and the kernels' columns were gathered: raise it
        again named after the first of them that raises again or gives a value that is not a number (else return)."""
        for get in [*self._values, *self._columns]:
            try:
                np.array(get(), np.float64)
            except Exception as again:
                raise plugin_failure(again, self._observer(get)) from again


class FastSetpoints:
    """Learned root GridAgents whose protocol only splits their action among rule-driven device children (a learned
    child acts on its own action: such a parent is left to the tree walk), as index maps:
    their actions are concatenated into one vector each tick and scattered to their children's action rows
    (the kernel batches' rows, or a solo child's ``pending``); a parent whose last action was none leaves them at
    their defaults (held between its actions, forgotten by :meth:`reset`).

    ``roots``: the candidates (the scenario's roots; none when the scenario has horizontal protocols, which
    change directives); ``action_spaces`` physical spaces, ``action_maps`` the normalized→physical
    ``(mid, half)`` of agents with a normalized exposed space; ``down_links`` the children with a non-ideal
    link (those parents are left to the tree walk); ``agent_pos`` every agent's position in the env's arrays.
    """

    def __init__(self, roots: Sequence[Agent], action_spaces: Mapping[str, gymnasium.spaces.Space],
                 action_maps: Mapping[str, tuple[np.ndarray, np.ndarray]], down_links: Mapping[str, Any],
                 agent_pos: Mapping[str, int], batches: Sequence[Batch]) -> None:
        fast: list[GridAgent] = []
        if FAST_SETPOINTS:
            for root in roots:
                if (isinstance(root, GridAgent) and root.learned and root.protocol is not None
                        and root.protocol.action_slices() is not None and root.children
                        and isinstance(action_spaces[root.id], gymnasium.spaces.Box)
                        and all(isinstance(c, DeviceAgent) and not c.learned and c.id not in down_links
                                and isinstance(c.own_action_space, gymnasium.spaces.Box) for c in root.children)):
                    fast.append(root)
        self.agents = fast
        self.ids = [a.id for a in fast]
        # their actions: a tuple for two or more (one: the action itself); KeyError when one is not sent
        self._sent = itemgetter(*self.ids) if fast else None
        self._batches = list(batches)
        sizes = [int(np.prod(action_spaces[a.id].shape)) for a in fast]
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._pos = np.array([agent_pos[a.id] for a in fast], np.int64)
        self._of_element = np.repeat(np.arange(len(fast)), sizes).astype(np.int64)
        self._zeros = [np.zeros(k) for k in sizes]
        self._flat = np.zeros(int(starts[-1]))
        maps = [action_maps.get(a.id) for a in fast]
        self._mid = np.concatenate([m[0] if m else np.zeros(k) for m, k in zip(maps, sizes)]) if fast else np.zeros(0)
        self._half = np.concatenate([m[1] if m else np.ones(k) for m, k in zip(maps, sizes)]) if fast else np.zeros(0)
        self._normalized = any(m is not None for m in maps)
        children, spans, parent_of = [], [], []
        for i, (a, start) in enumerate(zip(fast, starts[:-1].tolist())):
            for child, where in zip(a.children, a.protocol.action_slices()):
                children.append(child)
                spans.append(slice(start + where.start, start + where.stop))
                parent_of.append(i)
        self._child_pos = np.array([agent_pos[c.id] for c in children], np.int64)
        # where every parent and child writes the same value (count, tick, price); disjoint: parents are roots,
        # children devices
        self._both = whole_or(np.sort(np.concatenate([self._pos, self._child_pos])), len(agent_pos))
        row_of = {id(d): (b, row) for b in batches for row, d in enumerate(b.agents)}
        # per parent, its children (index among all children, agent, batch and row; solo: None, 0) for their defaults
        self._kids: list[list[tuple[int, DeviceAgent, Batch | None, int]]] = [[] for _ in fast]
        for i, (child, p) in enumerate(zip(children, parent_of)):
            self._kids[p].append((i, child, *row_of.get(id(child), (None, 0))))
        self._missing: set[int] = set()  # the parents (indices) whose last action was none: see decide
        self._solo: list[tuple[int, DeviceAgent, slice]] = []  # a solo child takes a slice (a view) of the actions
        fed: dict[int, tuple[list[int], list[int], list[np.ndarray]]] = {}
        for i, (child, span) in enumerate(zip(children, spans)):
            owner = row_of.get(id(child))
            if owner is None:
                self._solo.append((i, child, span))
            else:
                b, row = owner
                idx, rows, srcs = fed.setdefault(id(b), ([], [], []))
                idx.append(i)
                rows.append(row)
                srcs.append(np.arange(span.start, span.stop, dtype=np.int64))
        for b in batches:
            idx, rows, srcs = fed.get(id(b), ([], [], []))
            b.fast_child = np.array(idx, np.int64)
            b.fast_rows = np.array(rows, np.int64)
            b.fast_src = np.array(srcs, np.int64).reshape(len(rows), b.width)
            b.fast_to = whole_or(b.fast_rows, len(b.agents))
            b.slow = [(row, d) for row, d in enumerate(b.agents) if row not in set(rows)]

    def __bool__(self) -> bool:
        return bool(self.agents)

    def reset(self) -> None:
        """Forget the parents' missing actions (at the env's reset: a new episode)."""
        self._missing = set()

    def _joined(self, actions: Mapping[str, Any]) -> np.ndarray | None:
        """The parents' actions as one flat array (read only) when ``actions`` is a plain dict holding each as a
        C-contiguous float32 or float64 array, all of one dtype (as policies send them): their bytes joined, ≈ 4x
        ``np.concatenate``'s speed. Else None, and :meth:`decide` reads them one by one with ``.get`` (another mapping:
        a defaultdict's lookup would add the parents it lacks; a missing action; lists, mixed or other dtypes, strided
        views)."""
        if type(actions) is not dict:
            return None
        try:
            sent = self._sent(actions) if len(self.ids) > 1 else (actions[self.ids[0]],)
            (dtype,) = set(map(_dtype, sent))
            return np.frombuffer(b"".join(sent), dtype) if dtype in _JOINED else None
        except (KeyError, AttributeError, ValueError, TypeError):
            return None

    def decide(self, actions: Mapping[str, Any], price: float, tick: int, acting: np.ndarray, counts: np.ndarray,
               last_act: np.ndarray, price_seen: np.ndarray, ctx: StepContext, *, every_tick: bool = False) -> None:
        """:meth:`MultiAgentPowerGridEnv._decide` for the fast parents and their children at once (same results).

        ``price`` ($/MWh) and ``tick`` are now's; ``acting``, ``counts`` (actions taken), ``last_act`` (tick of the
        last action) and ``price_seen`` are the env's per-agent arrays (updated in place). A parent acting takes its
        learned action, else holds its last one, or follows its rule before its first; a child takes its slice when it
        acts or has not acted yet, else holds its row. A parent whose last action was none (None, or its key absent)
        leaves the children that take it at their defaults (a kernel's ``defaults`` row, a solo device's ``pending``
        None: idle, MPPT…), as the tree walk does. ``every_tick``: every agent acts at every tick (``acting`` is all
        true; no periods, offsets or events), so the masks are not looked at.
        """
        pos, both = self._pos, self._both
        flat = self._joined(actions)
        if flat is not None:
            absent: Sequence[int] = ()
            if not self._normalized:
                flat = flat.astype(np.float64)
        else:
            sent = list(map(actions.get, self.ids))
            absent = [i for i, a in enumerate(sent) if a is None]
            parts = [z if a is None else a for a, z in zip(sent, self._zeros)] if absent else sent
            try:
                flat = np.concatenate(parts, dtype=np.float64)
            except ValueError:  # 0-d actions of one-entry spaces
                flat = np.concatenate([np.reshape(a, -1) for a in parts], dtype=np.float64)
        # a missing action's entries (placeholder zeros) are never applied: the children that take it get their defaults
        if self._normalized:  # float64 · float32: the float64 product
            flat = self._mid + self._half * flat
        cpos = self._child_pos
        if every_tick or (acting[pos].all() and acting[cpos].all()):  # every parent and child acts: all take the new actions
            self._flat = flat
            counts[both] += 1
            last_act[both] = tick
            every = True
            if absent or self._missing:
                self._missing = set(absent)
        else:
            now, child_now = acting[pos], acting[cpos]
            new = now[self._of_element]
            first = ~now & (counts[pos] == 0)
            if first.any():  # before its first action: the protocol's rule (its children's rules)
                ctx.price = price
                flat = flat.copy()
                for i in np.flatnonzero(first).tolist():
                    at = self._of_element == i
                    flat[at] = np.asarray(self.agents[i].rule_action(ctx), np.float64).reshape(-1)
                new = new | first[self._of_element]
            self._flat = flat = np.where(new, flat, self._flat)
            counts[pos] += now
            last_act[pos[now]] = tick
            take = child_now | (counts[cpos] == 0)
            counts[cpos] += child_now
            last_act[cpos[child_now]] = tick
            every = bool(take.all())
            if absent or self._missing:  # the parents acting now replace their missing state, the others hold it
                acts = now.tolist()
                self._missing = {i for i in self._missing if not acts[i]} | {i for i in absent if acts[i]}
        price_seen[both] = price
        for b in self._batches:
            if b.fast_rows.size:
                if every:
                    b.actions[b.fast_to] = flat[b.fast_src]
                else:
                    chosen = take[b.fast_child]
                    b.actions[b.fast_rows[chosen]] = flat[b.fast_src[chosen]]
                b.prices[b.fast_to] = price
        take_list = None if every else take.tolist()
        for i, d, src in self._solo:
            d.price = price
            if every or take_list[i]:
                d.pending = flat[src]
        for p in self._missing:
            for i, d, b, row in self._kids[p]:
                if every or take_list[i]:
                    if b is None:
                        d.pending = None
                    else:
                        b.actions[row] = b.defaults[row]


def _where(agent: DeviceAgent, call: str, ctx: StepContext | None) -> str:
    """The agent, its device's plugin and the call for an error raised by a device's code (``ctx``: at its tick)."""
    tick = f" at ctx.tick {ctx.tick}" if ctx is not None else ""
    return f"agent {agent.id!r} ({origin(agent.device)}): {type(agent.device).__name__}.{call}(){tick}"


def _warn_observed(what: str) -> None:
    """Warn that an observed value is not finite (``what``: who gave it and the value), once per device."""
    warnings.warn(f"{what} in its observation; observed as 0 (NaN) or its observation_space's bound (inf), so the agent "
                  f"does not see it: a bug of the plugin's observe? (warned once per device)", RuntimeWarning, stacklevel=2)


def _owner(observe: Callable[..., Any]) -> Any:
    """The device or protocol whose bound ``observe`` this is (a protocol's: bound to an agent with ``partial``)."""
    return getattr(getattr(observe, "func", observe), "__self__", None)


def _kernel_where(b: Batch, call: str, ctx: StepContext | None) -> str:
    """The agents of batch ``b``, its kernel's plugin and the call for an error raised by the kernel's code."""
    ids = [d.id for d in b.agents]
    agents = ", ".join(map(repr, ids[:3])) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
    tick = f" at ctx.tick {ctx.tick}" if ctx is not None else ""
    return f"agents {agents} ({origin(b.kernel)}): {type(b.kernel).__name__}.{call}(){tick}"

"""Helpers shared by the protocol adapters: device lookup, setpoint changes, PCC metering, reactive
setpoints, and one rule for non-finite inputs.

Reactive power: protocols act before device physics, so they set a device agent's
:class:`~powergrid.agents.ReactiveSetpoint` (``q_mvar``, clipped to ``±√(S² − P²)``
when ``limit`` is set), which the environment applies after the device's own step.

Non-finite inputs (one rule for every protocol): an action entry a protocol reads is projected
onto its Box (:func:`powergrid.devices.clip_action`), a NaN or ±inf entry counted as its full range
and a finite one clipped; a NaN or ±inf entry of a device agent's pending setpoint becomes the
device's :attr:`~powergrid.devices.Device.default_action` entry (what the device itself reads it
as: a DG's ``p_min_mw``, a PV's full available power, a battery's 0 MW), of a participant's extra
action the midpoint of its bounds. The projection distance is
reported in the protocol's ``info()["projection"]`` under the agent's id. A non-finite
measurement (voltage, PCC flow) is ignored: the protocol keeps its last finite value.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import gymnasium
import numpy as np

from powergrid.agents import ReactiveSetpoint
from powergrid.devices import StepContext, clip_action, export_price
from powergrid.errors import closest
from powergrid.params import integer, quantity, text
from powergrid.protocols import mw_range, pending_mw, set_pending_mw  # public in core
from powergrid_protocols.channel import Channel, ChannelParams, make_channel

#: Device classes treated as inverter-based (volt-var, Q–V droop) unless a protocol says otherwise.
INVERTER_TYPES = ("PV", "ESS", "Wind", "WindTurbine", "Inverter", "EVCharger", "FuelCell")
#: Device classes whose MW setpoint protocols move (in this order: generators first, then batteries).
DISPATCHABLE = ("DG", "ESS")


def kind(device_agent: Any) -> str:
    return type(device_agent.device).__name__


def is_renewable(device_agent: Any) -> bool:
    """Whether the device is a curtailable source whose available power (MW) comes from a profile or a power curve
    (PV, wind: it has ``available_now(ctx)``); its action's first entry is the fraction of it to inject."""
    return hasattr(device_agent.device, "available_now")


def pending_fraction(device_agent: Any) -> float:
    """The fraction (0–1) of its available power a renewable (:func:`is_renewable`) injects under its pending action."""
    return float(device_agent.device.actions.read(device_agent.pending)[0][0])


def check_kinds(field: str, given: str, defaults: Iterable[str], present: Iterable[str]) -> list[str]:
    """The class names of the comma-separated ``given`` (a protocol's ``params.<field>``); a ValueError names one that
    is neither in ``defaults``, among the classes ``present`` nor a registered device type (a misspelling beside a
    valid name: ``'DG,ESSS'``)."""
    from powergrid import get_registry

    kinds = [k.strip() for k in given.split(",") if k.strip()]
    registered = get_registry().names("device")
    for k in kinds:
        if k not in registered and k not in defaults and k not in present:
            close = closest(k, registered)
            hint = f" (did you mean {close!r}?)" if close else ""
            raise ValueError(f"params.{field}: expected registered device classes ({', '.join(registered)}), "
                             f"got {k!r} in {given!r}{hint}")
    return kinds


def devices_of(agent: Any, kinds: Iterable[str]) -> list[Any]:
    """The device agents below ``agent`` (or ``agent`` itself) whose device class name is in ``kinds``."""
    wanted = set(kinds)
    return [d for d in agent.devices() if kind(d) in wanted]


def rating_mva(device: Any, s_ratio: float = 1.0) -> float:
    """Rated apparent power: ``s_max_mva`` / ``s_rated_mva`` when the device has it, else ``s_ratio·p_max_mw``."""
    for name in ("s_max_mva", "s_rated_mva", "s_mva"):
        value = getattr(device.params, name, None)
        if value:
            return float(value)
    return s_ratio * float(getattr(device.params, "p_max_mw", 0.0) or 0.0)


def dg_marginal(d: Any, p_mw: float) -> float:
    """Marginal fuel cost of a DG device agent at ``p_mw`` ($/MWh): ``b + 2a·p`` on a quadratic curve, the slope of
    the piece from ``p_mw`` upwards on a piecewise-linear one (the last piece's at its end)."""
    p = d.device.params
    if getattr(p, "cost_curve", "quadratic") == "piecewise":
        mw, cost = p.pwl_mw, p.pwl_cost_per_h
        k = min(max(int(np.searchsorted(mw, p_mw, side="right")) - 1, 0), len(mw) - 2)
        return float((cost[k + 1] - cost[k]) / (mw[k + 1] - mw[k]))
    return float(p.cost_b + 2.0 * p.cost_a * p_mw)


def read_extra(agent: Any, actions: Mapping[str, np.ndarray], space: gymnasium.spaces.Box,
               projection: dict[str, float]) -> np.ndarray | None:
    """A participant's extra action projected onto ``space`` (None: it sent none, it follows the rule).

    A non-zero projection distance is recorded in ``projection[agent.id]`` (see the module docstring).
    """
    value = actions.get(agent.id)
    if value is None or np.size(value) == 0:
        return None
    clipped, distance = clip_action(value, space)
    if distance:
        projection[agent.id] = distance
    return clipped.reshape(-1)


def project_pending(participants: Iterable[Any], projection: dict[str, float]) -> None:
    """Replace every pending setpoint holding NaN/inf below ``participants`` by its projection (the distance
    recorded per device agent id, a non-finite entry counting its full range): finite entries clipped to the
    bounds, a non-finite one the device's :attr:`~powergrid.devices.Device.default_action` entry, so the device
    applies what it would for that NaN without a protocol (never the middle of its range)."""
    for d in (d for a in participants for d in a.devices()):
        space = d.device.action_space
        if d.pending is None or not isinstance(space, gymnasium.spaces.Box):
            continue
        action = np.asarray(d.pending, np.float64)
        if np.isfinite(action).all():
            continue
        # float64: a default entry exactly as the device's own step reads it (a DG's p_min_mw 0.15, not 0.1500000060)
        d.pending, distance = clip_action(action, space, _default_entries(d.device, space.shape))
        projection[d.id] = projection.get(d.id, 0.0) + distance


def _default_entries(device: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``device.default_action`` as float64 of ``shape`` (its action's); a ValueError names the class when it has
    another number of entries."""
    default = np.asarray(device.default_action, np.float64)
    if default.size != int(np.prod(shape)):
        raise ValueError(f"{type(device).__name__}.default_action has {default.size} entries, expected "
                         f"{int(np.prod(shape))} (one per entry of its action_space, shape {shape})")
    return default.reshape(shape)


def finite_or(value: Any, fallback: Any) -> np.ndarray:
    """``value`` where finite, else ``fallback`` (elementwise): a non-finite measurement is ignored."""
    value = np.asarray(value, np.float64)
    return np.where(np.isfinite(value), value, fallback)


def shift_setpoints(devices: Sequence[Any], setpoints: Sequence[np.ndarray], delta_mw: float) -> float:
    """Move the MW entries (the first) of ``setpoints`` (physical, one array per device of ``devices``, changed in
    place) by a total of ``delta_mw``, each within its device's range under it, in order (a non-finite entry counts
    as 0 MW). Returns the part that could not be placed (0 when all was)."""
    left = float(delta_mw)
    for d, a in zip(devices, setpoints):
        if abs(left) < 1e-12:
            break
        lo, hi = mw_range(d, a)
        now = min(max(float(finite_or(a[0], 0.0)), lo), hi)
        new = min(max(now + left, lo), hi)
        a[0] = new
        left -= new - now
    return left


def pending_setpoints(devices: Sequence[Any], fill: bool = False, dtype: Any = np.float32) -> list[np.ndarray]:
    """Flat copies (``dtype``) of the device agents' pending physical setpoints; a device without one (or an agent that
    is not a device agent): an empty array, or with ``fill`` its device's ``default_action`` (what it applies for a
    missing action)."""
    out = []
    for d in devices:
        pending = getattr(d, "pending", None)
        if pending is not None:
            out.append(np.array(pending, dtype).reshape(-1))
        else:
            out.append(np.array(d.device.default_action, dtype).reshape(-1) if fill else np.zeros(0, dtype))
    return out


def shift_generation(devices: Sequence[Any], delta_mw: float) -> float:
    """:func:`shift_setpoints` on the devices' pending setpoints (:func:`pending_setpoints`, a device without one:
    zeros); a moved setpoint is written back (:func:`set_pending_mw`)."""
    setpoints = pending_setpoints(devices, fill=True, dtype=np.float64)
    before = [float(a[0]) for a in setpoints]
    left = shift_setpoints(devices, setpoints, delta_mw)
    for d, a, b in zip(devices, setpoints, before):
        if a[0] != b:
            set_pending_mw(d, float(a[0]))
    return left


def injection_mw(device_agent: Any, action: Any, ctx: StepContext) -> float | None:
    """The MW (generator convention: > 0 injects) ``device_agent`` injects at ``ctx``'s tick under ``action``
    (physical), known before the power flow: its device's ``injection_mw(action, ctx)`` when it has one (every pack
    device but ESS and DG); the first action entry (its MW setpoint, read as its step reads it: a missing action or
    a non-finite entry is its ``default_action``'s) within :func:`mw_range` for a device with a ``feasible_range``
    (ESS, DG); else the ``p_mw`` of a copy of the device stepped under ``action`` (a plugin's device); None for a
    device that drives real equipment (its copy would write the equipment's setpoint)."""
    dev = device_agent.device
    if hasattr(dev, "injection_mw"):
        return float(dev.injection_mw(action, ctx))
    if hasattr(dev, "feasible_range"):
        lo, hi = mw_range(device_agent, action)
        reader = getattr(dev, "actions", None)  # the pack's BoxAction: NaN and ±inf read as the default
        if reader is not None:
            first = reader.read(action)[0][0]
        else:  # a plugin's: a missing action or a non-finite entry is its default_action's, as under project_pending
            default = _default_entries(dev, dev.action_space.shape).reshape(-1)
            first = float(default[0]) if action is None else float(np.asarray(action, np.float64).reshape(-1)[0])
            first = first if np.isfinite(first) else float(default[0])
        return min(max(first, lo), hi)
    if dev.drives_equipment:
        return None
    fixed = (dev.params, dev.action_space, dev.observation_space)  # built once, never changed by a step: shared
    probe = copy.deepcopy(dev, {id(x): x for x in fixed})
    probe.step(action, ctx)
    return float(probe.p_mw)


@attrs.define
class Meter:
    """The PCC of a GridAgent: its GridConnection device (element, row, sell ratio)."""

    element: str
    row: int
    sell_ratio: float
    device: Any

    def flow(self, result: Any) -> float:
        """The import (MW) the GridConnection bills (its ``sign`` turns a line fed from its to side)."""
        arrays = {"ext_grid": result.ext_grid_p_mw, "trafo": result.trafo_p_hv_mw, "line": result.line_p_from_mw}
        return float(arrays[self.element][self.row]) * float(getattr(self.device, "sign", 1.0))

    def loading(self, result: Any) -> float:
        arrays = {"trafo": result.trafo_loading_percent, "line": result.line_loading_percent}
        return float(arrays[self.element][self.row]) if self.element in arrays else float("nan")

    def bill(self, import_mw: float, price: float, dt_h: float) -> float:
        """What the GridConnection charges for ``import_mw`` (negative: export revenue)."""
        rate = price if import_mw >= 0 else float(export_price(price, self.sell_ratio))
        return rate * import_mw * dt_h


def meter_of(agent: Any) -> Meter | None:
    for d in agent.devices():
        if kind(d) == "GridConnection":
            p = d.device.params
            return Meter(p.element, int(getattr(d.device, "row", 0)), float(p.sell_ratio), d.device)
    return None


def q_setpoint(device_agent: Any, s_ratio: float = 1.0) -> ReactiveSetpoint:
    """The reactive setpoint of a device agent (applied by the environment after the device's physics),
    with its apparent-power rating filled in."""
    setpoint = device_agent.reactive
    setpoint.s_mva = rating_mva(device_agent.device, s_ratio)
    return setpoint


def q_step_field(default: float) -> Any:
    """The ``q_step`` parameter (default ``default``) of the protocols that set Q by a Q(V) law (volt-var, Q–V
    droop): one definition."""
    return quantity("1", default, gt=0, le=1,
                    doc="fraction of the way from last tick's Q to the law's Q at last tick's voltage that each tick "
                        "moves (1: no damping; see powergrid_protocols.common.step_q)")


def step_q(setpoints: Sequence[ReactiveSetpoint], target_mvar: Iterable[float], fraction: float) -> None:
    """Move each reactive setpoint ``fraction`` of the way from its last value (0 Mvar after a reset) to its
    target (Mvar): ``Q ← Q + α·(q(V) − Q)``, ``α = fraction``, ``q`` the Q(V) law, ``V`` last tick's voltage.

    The protocols see one power flow per physics tick (quasi-static: an inverter's response time, seconds under
    IEEE 1547-2018, is far below the step), so each tick is one control iteration towards the fixed point
    ``Q* = q(V(Q*))`` the inverter would settle at. Undamped (``α = 1``) the iteration converges only when the loop
    gain ``ρ`` (spectral radius of ``−diag(∂q/∂V)·∂V/∂Q`` at the inverters) is below 1; above it Q flips sign tick
    after tick (Q–V droop at 5 % on ieee34_3mg: ρ 1.62). Damped it has the same fixed point and converges for
    ``α·(1 + ρ) < 2`` (ρ < 3 at α 0.5), as limiting each control iteration's change does in quasi-static
    time-series tools (OpenDSS InvControl's DeltaQ_factor). The price: Q follows a changing voltage over
    ``≈ 1/α`` ticks, so a stable loop (1547 Category B volt-var on ieee34_3mg: ρ 0.59) is best left undamped."""
    keep = 1.0 - fraction
    for c, q in zip(setpoints, target_mvar):
        last = 0.0 if c.q_mvar is None else c.q_mvar
        c.q_mvar = float(keep * last + fraction * q)  # exactly q at fraction 1


@attrs.frozen
class ChannelFields:
    """Parameters of the message channel a protocol's messages go through (default: ideal)."""

    channel: str = text("ideal", doc="registered channel name: ideal, lossy, …")
    channel_delay: int = integer(0, ge=0, doc="ticks (or iterations) between send and delivery")
    channel_loss: float = quantity("1", 0.0, ge=0, le=1, doc="message loss probability (seeded)")
    channel_capacity: int = integer(0, ge=0, doc="messages delivered per tick; 0 = unlimited")


def build_channel(params: Any, sent: int = 0, what: str = "") -> Channel:
    """The protocol's channel from its :class:`ChannelFields` (``channel: lossy`` needs a delay, a loss or a capacity:
    with all three 0 it would silently be the ideal channel). ``sent``: the messages the protocol sends per tick of its
    clock (``what`` they are); a capacity below it would grow the backlog without end, so it is refused."""
    if params.channel == "lossy" and not (params.channel_delay or params.channel_loss or params.channel_capacity):
        raise ValueError("channel: lossy with channel_delay 0, channel_loss 0 and channel_capacity 0 loses, delays and "
                         "limits nothing; set channel_delay, channel_loss and/or channel_capacity (or use channel: ideal)")
    channel = make_channel(params.channel, delay=params.channel_delay, loss=params.channel_loss,
                           capacity=params.channel_capacity)
    if 0 < channel.capacity < sent:
        raise ValueError(f"expected channel_capacity ≥ {sent} ({what}) or 0 (unlimited), got {channel.capacity}: "
                         f"the backlog would grow without end")
    return channel


def clock_after(channel: Channel, clock: int, iterations: int) -> int:
    """The protocol's channel clock (ticks) after a solve of ``iterations`` ticks begun at ``clock``: past the delay
    and, with a capacity, the ⌈backlog/capacity⌉ ticks a backlog needs to clear; what is still in flight is
    dropped, before the next solve's first tick."""
    clock += iterations + channel.delay + 1
    if channel.capacity:
        clock += -(-channel.in_flight // channel.capacity)
    channel.receive(clock - 1)
    return clock


__all__ = ["DISPATCHABLE", "INVERTER_TYPES", "ChannelFields", "ChannelParams", "Meter", "build_channel", "clock_after",
           "devices_of", "dg_marginal", "finite_or", "injection_mw", "meter_of", "mw_range", "pending_mw", "pending_setpoints",
           "project_pending",
           "q_setpoint", "q_step_field", "rating_mva", "read_extra", "set_pending_mw", "shift_generation", "shift_setpoints", "step_q"]

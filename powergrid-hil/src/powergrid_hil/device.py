"""Devices behind Modbus, stepped like simulated ones: the shared link and fault handling, and ``ModbusDevice``.

A step projects the action to ``[p_min_mw, p_max_mw]`` (a missing, NaN or infinite
one is the default: 0 MW, or the nearer limit), writes it as the P setpoint and
reads the measured P (and Q, SOC) back; ``p_mw``/``q_mvar`` are the measurements.
Nothing raises out of a step. A fault — no connection, a timeout,
an exception response, a bad value (out of range, not available, malformed) or a
measurement older than ``max_age_s`` — adds one record to :meth:`LinkedDevice.info`
(``infos[agent]["comm"]``), adds ``failure_safety`` to ``safety`` and applies the
safe action ``on_failure``: ``hold`` the last good measurement or ``zero``. A
setpoint write the device refuses (an exception response from the device, not from a
gateway) is such a fault, but the step still reads: P, Q and SOC are committed only
when every read succeeded. A held value is used
at a step while its age is at most ``max_age_s`` of wall-clock time and at most
``max_hold_s`` of simulated time, its simulated age at the n-th faulty step after
the good one being n × the step length (the env does not wait for the wall clock):
with the defaults (3600 s both) it is held 4 steps of 15 min, 1 step of 1 h, none of 2 h,
whether or not the loop is paced to the wall clock.
Past that it is dropped (the device is out: 0 MW, a ``stale`` fault each step).
Reset, close and interpreter exit write the default setpoint over an open link (``on_close: safe``).
"""

from __future__ import annotations

import atexit
import math
import time
import weakref
from typing import Any

import attrs
import numpy as np

from powergrid.devices import Device, StepContext, box, clip_action
from powergrid.params import choice, integer, quantity, text
from powergrid_hil.client import CommError, ModbusLink
from powergrid_hil.registers import CLAMPED, OK, Reading, RegisterMap


def _registers(value: Any) -> RegisterMap:
    if isinstance(value, RegisterMap):
        return value
    return RegisterMap.from_mapping(value, base=attrs.evolve(RegisterMap(), soc=None))


@attrs.frozen
class LinkParams:
    host: str = text("127.0.0.1", doc="IP address or host name of the device")
    port: int = integer(502, ge=1, le=65535)
    unit_id: int = integer(1, ge=0, le=255, doc="Modbus unit (slave) id")
    framer: str = choice(("socket", "rtu"), "socket", doc="Modbus TCP, or RTU frames over TCP (serial gateways)")
    serial_port: str = text("", doc="serial device for Modbus RTU (e.g. /dev/ttyUSB0); empty: TCP")
    baudrate: int = integer(19200, ge=300, le=921600)
    timeout_s: float = quantity("s", 0.5, gt=0, doc="connect and response timeout")
    backoff_s: float = quantity("s", 0.5, ge=0, doc="first wait before reconnecting after a failure (doubles per failure)")
    backoff_max_s: float = quantity("s", 10.0, ge=0)
    p_min_mw: float = quantity("MW", -1.0, doc="lowest setpoint sent (negative: consume)")
    p_max_mw: float = quantity("MW", 1.0)
    on_failure: str = choice(("hold", "zero"), "hold",
                             doc="safe action on a fault: keep the last good P/Q (while fresh), or assume 0")
    max_age_s: float = quantity("s", 3600.0, gt=0,
                                doc="a held measurement older than this (wall clock) is stale; as max_hold_s, so that a "
                                    "loop paced to the wall clock holds as long as one that is not")
    max_hold_s: float = quantity("s", 3600.0, ge=0,
                                 doc="a held measurement is used while its simulated age (faulty steps × step length) ≤ this")
    failure_safety: float = quantity("1", 1.0, ge=0, doc="safety added for each step with a fault")
    on_close: str = choice(("safe", "leave"), "safe",
                           doc="at reset, close and interpreter exit, write the default setpoint (0 MW, or the nearer "
                               "limit) over an open link (safe), or leave the last setpoint in force")
    plausible_factor: float = quantity("1", 1.5, ge=1, doc="|P| or |Q| above this × max(|p_min|, |p_max|) is out of range")

    def __attrs_post_init__(self) -> None:
        if self.p_min_mw > self.p_max_mw:
            raise ValueError(f"expected p_min_mw ≤ p_max_mw, got {self.p_min_mw} > {self.p_max_mw}")


class LinkedDevice(Device):
    """A device reached over a :class:`~powergrid_hil.client.ModbusLink`; subclasses implement :meth:`exchange`.

    Action ``[p]`` MW (none when :attr:`writes` is False: read-only). Observation ``[p / p_ref, comm_ok]``
    (+ ``soc`` when read); ``comm_ok`` is 0 until the first step after a reset (nothing measured yet: p and
    soc read 0).
    """

    Params = LinkParams
    reads_soc = False
    writes = True  # a P setpoint is written each step
    drives_equipment = True  # copies of an env would share the equipment: one env per device

    def __init__(self, params: Any, dt_h: float, clock: Any = time.monotonic) -> None:
        super().__init__(params, dt_h)
        self.clock = clock
        if self.writes:
            self.action_space = box(params.p_min_mw, params.p_max_mw)
        size = 3 if self.reads_soc else 2
        self.observation_space = box([-1.0, 0.0, 0.0][:size], [1.0] * size)
        self.p_ref = max(abs(params.p_min_mw), abs(params.p_max_mw), 1e-9)
        self.plausible_mw = params.plausible_factor * self.p_ref  # a larger |P| reading is a fault
        self._link: Any = None
        self._safe_at: int | None = None  # link.reconnects when write_safe last wrote, None once a step may have written
        self._clear()

    def _clear(self) -> None:
        self.setpoint_mw = 0.0
        self.soc = float("nan")
        self.comm_ok = False  # nothing measured yet (after a reset): the first step's exchange sets it
        self.comm_failures = 0  # steps with a fault, this episode
        self.last_error = ""
        self.register_flags: dict[str, str] = {}
        self.records: list[dict[str, Any]] = []
        self.notices: list[dict[str, Any]] = []
        self.measured_at = self.clock()  # of the last good measurement, or of the reset before the first
        self.measured = False  # a good measurement since the reset
        self.held_s = 0.0  # simulated age of the last good measurement: faulty steps since it × step length

    # ------------------------------------------------------------------ link
    @property
    def link(self) -> ModbusLink:
        """The link (built, with pymodbus, on first use)."""
        if self._link is None:
            p = self.params
            self._link = ModbusLink(p.host, p.port, unit_id=p.unit_id, timeout_s=p.timeout_s, backoff_s=p.backoff_s,
                                    backoff_max_s=p.backoff_max_s, framer=p.framer, serial_port=p.serial_port,
                                    baudrate=p.baudrate, clock=self.clock)
            _LINKED.add(self)  # closed (safe setpoint written) at interpreter exit
        return self._link

    def close(self) -> None:
        """Write the default setpoint (:meth:`write_safe`), then close the connection (the next step reconnects)."""
        if self._link is not None:
            self.write_safe()
            self._link.close()

    def write_safe(self) -> bool:
        """Write :attr:`safe_setpoint_mw` over an open link (``on_close: safe``), so that the equipment idles between
        episodes and after the run; True when written. Nothing over a link never opened or closed (not ours to
        take back), on a read-only device, or while another controller has the setpoint (SunSpec, yielded). A
        failure is swallowed (reset and close report nowhere): it costs at most a reconnection and one request, each
        bounded by ``timeout_s``. Not written again (True) while the last one holds: no step since and no reconnection."""
        if self.params.on_close != "safe" or not self.writes or self._link is None or not self._link.connected:
            return False
        if self._safe_at == self._link.reconnects:  # already idling at it; a reconnected device may have lost it: written
            return True
        try:
            written = self.write_setpoint(self.safe_setpoint_mw)
        except Exception:  # a dead or refusing device: only its own watchdog can help now
            return False
        if written:
            self._safe_at = self._link.reconnects
        return written

    def write_setpoint(self, mw: float) -> bool:
        """Write ``mw`` (MW) as the P setpoint, nothing read; True when written. Raises :class:`CommError`."""
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the socket (a copy in a worker process opens its own connection)."""
        state = self.__dict__.copy()
        state["_link"] = None
        state["_safe_at"] = None  # a copy's own connection: write it again
        return state

    # ------------------------------------------------------------------ records
    def record(self, op: str, what: str, kind: str, detail: str = "", value: float | None = None,
               fault: bool = True) -> None:
        """One communication fault of this step: ``op`` read/write, ``what`` the value, ``kind`` the fault;
        ``device`` says which equipment (address and unit id: one agent may own several devices). With
        ``fault`` False a notice: reported the same way, but no safety and ``comm_ok`` unchanged."""
        p = self.params
        entry: dict[str, Any] = {"op": op, "what": what, "kind": kind, "detail": detail,
                                 "device": f"{p.serial_port or f'{p.host}:{p.port}'} unit {p.unit_id}"}
        if value is not None:
            entry["value"] = value
        (self.records if fault else self.notices).append(entry)

    def reading(self, name: str, reading: Any) -> float | None:
        """The value of a decoded reading, or None (recorded) when it is flagged."""
        if reading.ok:
            return float(reading.value)
        self.register_flags[name] = reading.flag
        self.record("read", name, reading.flag, f"{name}: {reading.flag}" + (f" ({reading.detail})" if reading.detail else ""))
        return None

    def info(self) -> dict[str, list[dict[str, Any]]]:
        """This step's communication faults and notices, for ``infos[agent]["comm"]`` (empty when all went well)."""
        return {"comm": self.records + self.notices}

    # ------------------------------------------------------------------ Device contract
    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        self.write_safe()  # between episodes (a training update) the equipment idles, not at the last action
        self._clear()

    def exchange(self) -> tuple[float | None, float | None, float | None]:
        """Write ``setpoint_mw``, read back ``(p, q, soc)`` (None: not read or flagged). Raises :class:`CommError`."""
        raise NotImplementedError

    @property
    def default_action(self) -> np.ndarray:
        """``[setpoint MW]``: 0, or the nearer limit when ``[p_min_mw, p_max_mw]`` excludes 0, from the parameters
        as given (float64, not the float32 bounds of ``action_space``); empty on a read-only device (no action)."""
        if not self.writes:
            return np.zeros(0, np.float64)
        return np.array([min(max(0.0, self.params.p_min_mw), self.params.p_max_mw)], np.float64)

    @property
    def safe_setpoint_mw(self) -> float:
        """The device's default setpoint (MW), the entry of :attr:`default_action`; 0 on a read-only device."""
        default = self.default_action
        return float(default[0]) if default.size else 0.0

    def read_action(self, action: Any) -> tuple[float, float]:
        """The setpoint (MW) and projection of ``action``, read as docs/devices.md (Actions) reads any device's: a
        missing action (None) is :attr:`safe_setpoint_mw` (:attr:`default_action`) and counts no projection; a NaN
        or infinite one is too and counts the full range (never the middle of the range, which :func:`clip_action`
        makes of it without a default)."""
        if action is None:
            return self.safe_setpoint_mw, 0.0  # 0 on a read-only device

        values, distance = clip_action(action, self.action_space, self.default_action)
        return (float(values[0]) if values.size else 0.0), distance  # read-only: no setpoint

    def step(self, action: Any, ctx: StepContext) -> None:
        self._safe_at = None  # this step may write a setpoint: the next reset or close writes the default again
        self.setpoint_mw, self.projection = self.read_action(action)
        self.cost = 0.0
        self.register_flags = {}
        self.records, self.notices = [], []
        p = q = soc = None
        try:
            p, q, soc = self.exchange()
        except CommError as exc:
            self.record(exc.op, exc.what, exc.kind, str(exc), exc.value)
        except Exception as exc:  # anything else on the wire never escapes step
            self.record("read", "link", "error", f"{type(exc).__name__}: {exc}")
        now, params = self.clock(), self.params
        if p is not None and not any(r["op"] == "read" for r in self.records):
            self.p_mw = p
            if q is not None:
                self.q_mvar = q
            if soc is not None:
                self.soc = soc
            self.measured_at, self.measured, self.held_s = now, True, 0.0
        else:
            self.held_s += ctx.dt_h * 3600.0
            age = now - self.measured_at
            if params.on_failure == "zero":
                self.p_mw = self.q_mvar = 0.0
            elif age > params.max_age_s or self.held_s > params.max_hold_s + 1e-6:  # 1e-6 s: sums of step lengths
                ages = f"{age:.1f} s (wall clock) and {self.held_s:g} s (simulated)"
                since = f"last good measurement {ages} old" if self.measured else \
                    f"no good measurement since the reset, {ages} ago"
                self.record("read", "p", "stale", f"{since} (max_age_s {params.max_age_s:g}, max_hold_s "
                            f"{params.max_hold_s:g}): out, 0 MW")
                self.p_mw = self.q_mvar = 0.0
        self.comm_ok = not self.records
        if self.records:
            self.comm_failures += 1
            self.last_error = self.records[0]["detail"]
            self.safety = self.params.failure_safety
        else:
            self.last_error = ""
            self.safety = 0.0

    def observe(self) -> np.ndarray:
        values = [np.clip(self.p_mw / self.p_ref, -1.0, 1.0), 1.0 if self.comm_ok else 0.0]
        if self.reads_soc:
            values.append(np.clip(np.nan_to_num(self.soc, nan=0.0), 0.0, 1.0))
        return np.asarray(values, np.float32)

    def state_dict(self) -> dict[str, float]:
        state = {"p_mw": self.p_mw, "q_mvar": self.q_mvar, "setpoint_mw": self.setpoint_mw,
                 "comm_ok": float(self.comm_ok), "comm_failures": float(self.comm_failures),
                 "register_flags": float(len(self.register_flags))}
        if self.reads_soc:
            state["soc"] = self.soc
        return state


@attrs.frozen
class ModbusDeviceParams(LinkParams):
    registers: RegisterMap = attrs.field(factory=lambda: _registers(None), converter=_registers)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        reg = self.registers.setpoint
        if reg is None:
            return
        low, high = reg.value_range
        low_ok, high_ok = _at_least(self.p_min_mw, low), _at_least(high, self.p_max_mw)
        if low_ok and high_ok:
            return
        by_limits = {bound == limit for bound, limit, ok in ((low, reg.min_value, low_ok),
                                                             (high, reg.max_value, high_ok)) if not ok}
        holds, advice = f"{reg.type} × {reg.scale:g} MW holds", "use a larger scale or a 32-bit type"
        if by_limits == {True}:  # the entry's own min/max is the limit, not its type or scale
            holds, advice = "min/max give", "widen min/max or narrow p_min_mw/p_max_mw"
        elif True in by_limits:
            holds, advice = f"{reg.type} × {reg.scale:g} MW within min/max holds", advice + ", and widen min/max"
        raise ValueError(f"registers.setpoint: {holds} [{low:g}, {high:g}] MW, narrower than the device's "
                         f"[p_min_mw, p_max_mw] = [{self.p_min_mw:g}, {self.p_max_mw:g}] MW ({advice})")


def _at_least(x: float, bound: float) -> bool:
    """``x ≥ bound`` up to float rounding of ``raw · scale``."""
    return x >= bound or math.isclose(x, bound, rel_tol=1e-9)


class ModbusDevice(LinkedDevice):
    """A device with a plain register map (``registers:``): writes the P setpoint, reads measured P (and Q, SOC).

    The map's entries give address, table, type (int16, uint16, int32, uint32,
    float32), word order, scale, units (converted to MW, Mvar, fraction) and access; see
    :meth:`~powergrid_hil.registers.RegisterMap.from_mapping`. The setpoint register must hold
    ``[p_min_mw, p_max_mw]`` (else a config error); a P (MW) or Q (Mvar) reading beyond
    ``plausible_factor`` × max(|p_min_mw|, |p_max_mw|) is an ``out_of_range`` fault. A map without a setpoint
    (``setpoint: null``) is a read-only device: no action, P/Q (and SOC) measured and put into the flow.
    """

    Params = ModbusDeviceParams

    def __init__(self, params: ModbusDeviceParams, dt_h: float, clock: Any = time.monotonic) -> None:
        self.registers = params.registers
        self.reads_soc = self.registers.soc is not None
        self.writes = self.registers.setpoint is not None
        super().__init__(params, dt_h, clock)

    def write_setpoint(self, mw: float) -> bool:
        setpoint = self.registers.setpoint
        assert setpoint is not None  # writes
        self.link.write(setpoint, setpoint.encode(mw)[0])
        return True

    def exchange(self) -> tuple[float | None, float | None, float | None]:
        link, regs = self.link, self.registers
        if regs.setpoint is not None:
            words, flag = regs.setpoint.encode(self.setpoint_mw)
            if flag != OK:
                self.register_flags["setpoint"] = flag
                self.record("write", "setpoint", flag, f"setpoint {self.setpoint_mw} MW: {flag}", self.setpoint_mw)
            try:
                link.write(regs.setpoint, words)
            except CommError as exc:
                if not exc.refused:
                    raise exc.tag("write", "setpoint", self.setpoint_mw) from None
                # refused (e.g. not in remote mode), but the device answers: P/Q/SOC are still measured
                self.record("write", "setpoint", exc.kind, str(exc), self.setpoint_mw)
        values: dict[str, float | None] = {}
        fallbacks = {"p": self.p_mw, "q": self.q_mvar, "soc": self.soc}
        for name, reg in regs.items():
            if name == "setpoint":
                continue
            try:
                words = link.read(reg)
            except CommError as exc:
                raise exc.tag("read", name) from None
            reading = reg.decode(words, fallback=fallbacks[name])
            if name in ("p", "q") and reading.ok and abs(reading.value) > self.plausible_mw:
                unit = "MW" if name == "p" else "Mvar"  # the limit in the reading's own unit
                reading = Reading(reading.value, CLAMPED, f"read {reading.value:g} {unit}, beyond ±{self.plausible_mw:g} "
                                  f"{unit}: plausible_factor {self.params.plausible_factor:g} × {self.p_ref:g}, the larger limit")
            values[name] = self.reading(name, reading)
        p, q = values.get("p"), values.get("q")
        if p is None or ("q" in values and q is None):
            p = q = None  # a half-good measurement is not committed
        return p, q, values.get("soc")


_LINKED: weakref.WeakSet[LinkedDevice] = weakref.WeakSet()  # devices whose link was built, in this process


@atexit.register
def _close_at_exit() -> None:
    """At interpreter exit (an uncaught exception included), write the default setpoint of every device still
    connected and close it (:meth:`LinkedDevice.close`). A killed process runs nothing: see docs/hil.md, Safe state."""
    for device in list(_LINKED):
        device.close()

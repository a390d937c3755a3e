"""Serve simulated devices as Modbus units, safely, for outside controllers (PLCs, SCADA, RL agents).

A :class:`ModbusServer` runs the pymodbus asyncio server in a background thread
and answers for a set of :class:`Unit` objects, one per unit id. Each unit holds
the register image of one device; the image lives here (under a lock), pymodbus'
datastore only spans the addresses and is filled through its access callback.
The server is safe by construction:

- only configured unit ids answer (any other gets exception 0x0B, gateway
  target failed to respond);
- a write is accepted only when every register it covers is writable in that
  unit's map and it covers every word of each multi-word point it touches (else
  exception 2, illegal address: a write of one word of a 32-bit setpoint would
  apply a torn value), and its value decodes and is in range (else 3, illegal
  value); in ``read_only`` mode every write is refused (exception 1);
- writes are rate-limited (``max_writes_per_s`` per server, token bucket; over
  the limit: exception 6, busy);
- clients connect only from the allow-list (addresses or networks; default
  localhost); others are disconnected at once;
- a write only stores a pending setpoint: it takes effect when the owner steps
  the device (:meth:`SimulatedDeviceServer.step`, or the scenario loop of
  :mod:`powergrid_hil.serve`); it never steps a device.

Refusals are counted in :attr:`ModbusServer.stats`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium
import numpy as np

from powergrid.devices import Device, StepContext
from powergrid_hil.client import quiet_pymodbus
from powergrid_hil.registers import RegisterMap

LOCALHOST = ("127.0.0.1", "::1")

# Modbus exception codes
ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE, DEVICE_FAILURE, BUSY, NO_TARGET = 1, 2, 3, 4, 6, 0x0B
_READ = {3: "holding", 4: "input", 6: "holding", 16: "holding", 23: "holding"}  # 6, 16: the read-back after a write
_WRITE = {6, 16, 23}


class Unit:
    """The register image of one device at one unit id: ``tables[table] = (first address, words)``.

    Subclasses lay out the image (:meth:`publish`), say which holding addresses
    accept writes (``writable``; ``points``: the address ranges of its writable points, a write must cover each
    one it touches whole) and turn accepted writes into the device's next action (:meth:`accept`, :meth:`action`).
    """

    def __init__(self, device: Device, tables: dict[str, tuple[int, list[int]]], writable: Iterable[int],
                 points: Iterable[range] = ()) -> None:
        self.device = device
        self.tables = tables
        self.writable = frozenset(writable)
        self.points = tuple(p for p in points if len(p) > 1)  # one-word points cannot be split

    def splits(self, address: int, count: int) -> bool:
        """Whether a write of ``count`` words from ``address`` covers part of a multi-word point only."""
        end = address + count
        return any(address < p.stop and p.start < end and not (address <= p.start and p.stop <= end) for p in self.points)

    def words(self, table: str, address: int, count: int) -> list[int] | None:
        """``count`` words from ``address``, or None when the range is outside the image."""
        if table not in self.tables:
            return None
        first, words = self.tables[table]
        if address < first or address + count > first + len(words):
            return None
        return words[address - first:address - first + count]

    def put(self, table: str, address: int, words: Sequence[int]) -> None:
        first, image = self.tables[table]
        image[address - first:address - first + len(words)] = [int(w) & 0xFFFF for w in words]

    def accept(self, address: int, words: list[int]) -> int | None:
        """Store a write (already checked writable); a Modbus exception code when its value is refused."""
        raise NotImplementedError

    def action(self, ctx: StepContext) -> Any:
        """The device's action for its next step (``ctx``: that step's context), from the accepted writes."""
        raise NotImplementedError

    def publish(self) -> None:
        """Write the device's state (after a step) into the image."""
        raise NotImplementedError


def measured(device: Device) -> tuple[float, float | None]:
    """What a meter at ``device`` reads: P (MW) and Q (Mvar, None when not measured); > 0 delivered to the network.

    A grid connection injects nothing itself: its P is its import (MW into the microgrid through
    its element), its Q is not measured.
    """
    imported = getattr(device, "import_mw", None)
    if imported is not None:
        return float(imported), None
    return float(device.p_mw), float(device.q_mvar)


def first_action(device: Device, value: float) -> Any:
    """An action with ``value`` as its first entry (defaults or zeros for the rest; empty stays empty)."""
    space = device.action_space
    if isinstance(space, gymnasium.spaces.Box):
        action = np.asarray(device.default_action, np.float32).reshape(space.shape).copy()
        if action.size:
            action.reshape(-1)[0] = value
        return action
    return value


class RegisterUnit(Unit):
    """A device under a plain :class:`~powergrid_hil.registers.RegisterMap`: setpoint written, P/Q/SOC read."""

    def __init__(self, device: Device, registers: RegisterMap | None = None) -> None:
        self.registers = registers or RegisterMap()
        tables = {}
        for table in ("holding", "input"):
            span = self.registers.span(table)
            if span is not None:
                tables[table] = (span[0], [0] * span[1])
        points = [reg.addresses for _, reg in self.registers.items() if reg.access == "RW"]
        super().__init__(device, tables, [a for p in points for a in p], points)
        # until a client writes: the device's own default action (PV f = 1, maximum power), as a disabled SunSpec control
        entries = np.asarray(device.default_action, np.float64).reshape(-1)
        self.setpoint_mw = float(entries[0]) if entries.size else 0.0
        self.publish()

    def accept(self, address: int, words: list[int]) -> int | None:
        sp = self.registers.setpoint
        staged = dict(zip(range(address, address + len(words)), words))
        current = self.words("holding", sp.address, sp.words) or []
        reading = sp.decode([staged.get(a, w) for a, w in zip(sp.addresses, current)], self.setpoint_mw)
        if not reading.ok:
            return ILLEGAL_VALUE
        self.put("holding", address, words)
        self.setpoint_mw = float(reading.value)
        return None

    def action(self, ctx: StepContext) -> Any:
        return first_action(self.device, self.setpoint_mw)

    def publish(self) -> None:
        m, d = self.registers, self.device
        p, q = measured(d)
        values = {"setpoint": self.setpoint_mw, "p": p, "q": math.nan if q is None else q,
                  "soc": float(d.state_dict().get("soc", math.nan))}
        for name, reg in m.items():
            words, flag = reg.encode(values[name])
            if flag and name != "setpoint":  # a measurement that does not fit is "not available", never clamped
                words = reg.encode(math.nan)[0]
            self.put(reg.table, reg.address, words)


class ModbusServer:
    """A Modbus server for ``units`` (unit id → :class:`Unit`): TCP on ``host:port`` (``framer="rtu"``: RTU
    frames over TCP), or Modbus RTU on ``serial_port`` (the allow-list then does not apply).

    ``port=0`` binds a free port (see :attr:`port` after :meth:`start`). Use as a
    context manager or call :meth:`start` / :meth:`stop`; :meth:`start` after
    :meth:`stop` serves again on the same port.
    """

    def __init__(self, units: dict[int, Unit], *, host: str = "127.0.0.1", port: int = 0,
                 allow: Sequence[str] = LOCALHOST, read_only: bool = False, max_writes_per_s: float = 20.0,
                 framer: str = "socket", serial_port: str = "", baudrate: int = 19200) -> None:
        if not units or any(not 1 <= u <= 247 for u in units):
            raise ValueError(f"unit ids: expected one or more in 1..247, got {sorted(units)}")
        self.units = dict(units)
        self.host, self.port = host, int(port)
        self.allow = [ipaddress.ip_network(a, strict=False) for a in allow]
        self.read_only = read_only
        self.max_writes_per_s = float(max_writes_per_s)
        self.framer = framer
        self.serial_port, self.baudrate = serial_port, int(baudrate)
        self.lock = threading.Lock()
        self.stats: Counter[str] = Counter()
        self._burst = max(self.max_writes_per_s, 1.0)  # the bucket holds at least one write (a rate below 1 per s)
        self._tokens = self._burst
        self._refilled = time.monotonic()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None

    # ------------------------------------------------------------------ policy
    def allowed(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in net for net in self.allow)

    def _take_token(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self.max_writes_per_s)
        self._refilled = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def handle(self, unit_id: int, function_code: int, address: int, count: int,
               values: Sequence[int] | None) -> list[int] | int:
        """Answer one request: the words read, or a Modbus exception code (the server's whole policy)."""
        with self.lock:
            unit = self.units.get(unit_id)
            if unit is None:
                self.stats["unknown_unit"] += 1
                return NO_TARGET
            if values is not None and function_code in _WRITE:
                if self.read_only:
                    self.stats["read_only"] += 1
                    return ILLEGAL_FUNCTION
                if any(a not in unit.writable for a in range(address, address + len(values))):
                    self.stats["not_writable"] += 1
                    return ILLEGAL_ADDRESS
                if unit.splits(address, len(values)):
                    self.stats["partial_point"] += 1
                    return ILLEGAL_ADDRESS
                if not self._take_token():
                    self.stats["rate_limited"] += 1
                    return BUSY
                code = unit.accept(address, [int(v) & 0xFFFF for v in values])
                self.stats["bad_value" if code else "writes"] += 1
                return code if code else list(values)
            table = _READ.get(function_code)
            words = unit.words(table, address, count) if table else None
            if words is None:
                self.stats["bad_address"] += 1
                return ILLEGAL_ADDRESS
            self.stats["reads"] += 1
            return words

    def publish(self) -> None:
        """Refresh every unit's image (call after stepping the devices)."""
        with self.lock:
            for unit in self.units.values():
                unit.publish()

    # ------------------------------------------------------------------ pymodbus glue
    async def _on_access(self, unit_id: int, function_code: int, start_address: int, address: int, count: int,
                         registers: list[int], set_values: list[int] | list[bool] | None) -> Any:
        from pymodbus.constants import ExcCodes

        answer = self.handle(unit_id, function_code, address, count,
                             None if set_values is None else [int(v) for v in set_values])
        if isinstance(answer, int):
            return ExcCodes(answer)
        if set_values is None:
            registers[address - start_address:address - start_address + count] = answer
        return None

    def _devices(self) -> list[Any]:
        from functools import partial

        from pymodbus.simulator import DataType, SimData, SimDevice

        def block(first: int, count: int) -> list[Any]:
            return [SimData(first, count=count, values=0, datatype=DataType.REGISTERS)]

        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        devices = []
        for unit_id, unit in self.units.items():
            tables = {t: block(first, len(words)) for t, (first, words) in unit.tables.items()}
            simdata = (list(bits), list(bits), tables.get("holding", block(0, 1)), tables.get("input", block(0, 1)))
            devices.append(SimDevice(unit_id, simdata=simdata, action=partial(self._on_access, unit_id)))
        return devices

    def _datastore(self, devices: list[Any]) -> Any:
        """pymodbus' datastore of ``devices``; a request to any other unit id goes to :meth:`handle` (0x0B, counted)
        at any address, before pymodbus would check the address against a unit's tables (a catch-all unit would
        need tables spanning all 65,536 addresses for that)."""
        from pymodbus.constants import ExcCodes
        from pymodbus.simulator.simcore import SimCore

        handle = self.handle

        class Datastore(SimCore):
            async def async_getValues(self, device_id: int, func_code: int, address: int, count: int = 1) -> Any:
                if device_id not in self.devices:
                    return ExcCodes(handle(device_id, func_code, address, count, None))
                return await super().async_getValues(device_id, func_code, address, count)

            async def async_setValues(self, device_id: int, func_code: int, address: int, values: Any) -> Any:
                if device_id not in self.devices:
                    return ExcCodes(handle(device_id, func_code, address, len(values), [int(v) for v in values]))
                return await super().async_setValues(device_id, func_code, address, values)

        return Datastore(devices)

    def _server(self) -> Any:
        from pymodbus import FramerType
        from pymodbus.server import ModbusSerialServer, ModbusTcpServer
        from pymodbus.server.requesthandler import ServerRequestHandler

        devices = self._devices()
        if self.serial_port:  # Modbus RTU on a serial line: no peers to filter
            server = ModbusSerialServer(devices, port=self.serial_port, baudrate=self.baudrate, framer=FramerType.RTU)
        else:
            owner = self

            class Handler(ServerRequestHandler):
                def connection_made(self, transport: Any) -> None:
                    peer = transport.get_extra_info("peername") or ("",)
                    if not owner.allowed(str(peer[0])):
                        owner.stats["refused_clients"] += 1
                        if getattr(self, "listener", None) is not None:  # never served: forget it at once
                            self.listener.active_connections.pop(self.unique_id, None)
                        transport.abort()
                        return
                    super().connection_made(transport)

            class Server(ModbusTcpServer):
                def callback_new_connection(self) -> Any:
                    return Handler(self, self.trace_packet, self.trace_pdu, self.trace_connect)

            server = Server(devices, address=(self.host, self.port), framer=FramerType(self.framer))
        server.context = self._datastore(devices)  # the server's own holds the same units, without the refusal
        return server

    async def _serve(self) -> None:
        self._stop_event = asyncio.Event()
        server = self._server()
        try:
            await server.serve_forever(background=True)
            sockets = getattr(server.transport, "sockets", None) or ()
            if sockets:
                self.port = int(sockets[0].getsockname()[1])
        except BaseException as exc:  # reported to start()
            self._start_error = exc
            self._ready.set()
            await server.shutdown()
            return
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await server.shutdown()
            await asyncio.sleep(0)  # let the transports close

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            finally:
                loop.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout_s: float = 5.0) -> ModbusServer:
        """Listen on ``host:port`` (returns once listening; raises ``OSError`` if the address cannot be bound)."""
        if self.running:
            return self
        reasons = quiet_pymodbus().reasons  # pymodbus logs a failed listen's OSError instead of raising it
        self._ready.clear()
        self._start_error = None
        self._thread = threading.Thread(target=self._run, name=f"modbus-server-{self.port}", daemon=True)
        self._thread.start()
        where = f"serial port {self.serial_port}" if self.serial_port else f"{self.host}:{self.port}"
        if not self._ready.wait(timeout_s):
            self.stop()
            raise TimeoutError(f"Modbus server on {where} did not start within {timeout_s} s")
        if self._start_error is not None:
            error = self._start_error
            self._thread.join(timeout_s)
            reason = reasons.pop(f"listen in thread {self._thread.ident}", None)
            self._thread = None
            raise OSError(f"Modbus server on {where} failed to start: {reason or error}") from error
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close the listener and every client connection; idempotent."""
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # loop already closed
                pass
        thread.join(timeout_s)
        self._thread = None

    def __enter__(self) -> ModbusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SimulatedDeviceServer(ModbusServer):
    """One simulated device served at ``unit_id`` under a register map (default :class:`RegisterMap`).

    Writes store the setpoint; :meth:`step` steps the device with it and
    republishes. ``unit`` is the :class:`Unit` (pass ``unit=`` to serve another
    layout, e.g. a :class:`~powergrid_hil.sunspec_unit.SunSpecUnit`).
    """

    def __init__(self, device: Device, *, registers: RegisterMap | None = None, unit: Unit | None = None,
                 unit_id: int = 1, ctx: StepContext | None = None, rng: np.random.Generator | None = None,
                 reset: bool = True, **server: Any) -> None:
        if reset:
            device.reset(rng if rng is not None else np.random.default_rng(0))
        self.device = device
        self.unit = unit or RegisterUnit(device, registers)
        self.ctx = ctx or StepContext(dt_h=device.dt_h, profiles={})
        self.steps = 0
        self.errors: list[str] = []
        super().__init__({unit_id: self.unit}, **server)

    def step(self) -> None:
        """Step the device once with the accepted setpoint and publish its new state.

        A device (or its unit making the action) that raises is recorded in :attr:`errors`; the image keeps its
        last state.
        """
        try:
            with self.lock:
                action = self.unit.action(self.ctx)
            self.device.step(action, self.ctx)
        except Exception as exc:  # a failing model must not take the server down
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return
        self.steps += 1
        self.publish()

    def raw(self, table: str, address: int) -> int:
        """The raw word at ``(table, address)``."""
        with self.lock:
            return (self.unit.words(table, address, 1) or [0])[0]

    def poke(self, table: str, address: int, words: list[int]) -> None:
        """Overwrite raw words (fault injection: "not available", out-of-range values); the next step republishes."""
        with self.lock:
            self.unit.put(table, address, words)

"""Serve a simulated powergrid device as a Modbus TCP slave, for outside controllers (PLCs, SCADA, RL agents).

The pymodbus asyncio server runs in a background thread with its own event loop.
The register values live here (guarded by a lock); pymodbus' datastore is only
the address range, kept in step through its access callback:

- a write that covers the setpoint holding register decodes the P setpoint (MW)
  and, with ``step_on="write"``, steps the device once with action ``[p, 0…]``;
  with ``step_on="manual"`` the device steps when :meth:`SimulatedDeviceServer.step`
  is called;
- input registers show the device after its last step: P, Q, SOC (from
  ``state_dict()["soc"]``) per the :class:`~powergrid_hil.registers.RegisterMap`.

A device that raises while stepping answers the write with Modbus exception 4
(server device failure); the server keeps running.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import gymnasium
import numpy as np

from powergrid.devices import Device, StepContext
from powergrid_hil.registers import OK, Register, RegisterMap

_READ_HOLDING = {3, 23}
_WRITE_HOLDING = {6, 16, 23}
_READ_INPUT = {4}


class SimulatedDeviceServer:
    """Modbus TCP server around a :class:`~powergrid.devices.Device` on ``host:port``.

    ``port=0`` binds a free port (see :attr:`port` after :meth:`start`). Use as a
    context manager or call :meth:`start` / :meth:`stop`; :meth:`start` after
    :meth:`stop` serves again on the same port.
    """

    def __init__(self, device: Device, *, host: str = "127.0.0.1", port: int = 0,
                 registers: RegisterMap | None = None, ctx: StepContext | None = None,
                 step_on: str = "write", rng: np.random.Generator | None = None, reset: bool = True) -> None:
        if step_on not in ("write", "manual"):
            raise ValueError(f"step_on: expected 'write' or 'manual', got {step_on!r}")
        self.device = device
        self.host = host
        self.port = int(port)
        self.registers = registers or RegisterMap()
        self.ctx = ctx or StepContext(dt_h=device.dt_h, profiles={})
        self.step_on = step_on
        self.lock = threading.Lock()
        self.setpoint_mw = 0.0
        self.setpoint_flag = OK
        self.steps = 0
        self.errors: list[str] = []
        self._store: dict[tuple[str, int], int] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        if reset:
            device.reset(rng if rng is not None else np.random.default_rng(0))
        self._publish()

    # ------------------------------------------------------------------ registers
    def _put(self, reg: Register | None, value: float) -> None:
        if reg is None:
            return
        words, _ = reg.encode(value)
        for address, word in zip(reg.addresses, words):
            self._store[(reg.kind, address)] = word

    def _publish(self) -> None:
        """Write the device's state and the current setpoint into the register store (lock held or not running)."""
        m, d = self.registers, self.device
        self._put(m.setpoint, self.setpoint_mw)
        self._put(m.p, d.p_mw)
        self._put(m.q, d.q_mvar)
        if m.soc is not None:
            self._put(m.soc, float(d.state_dict().get("soc", float("nan"))))

    def raw(self, kind: str, address: int) -> int:
        """The raw word at ``(kind, address)`` ("holding" or "input")."""
        with self.lock:
            return self._store.get((kind, address), 0)

    def poke(self, kind: str, address: int, words: list[int]) -> None:
        """Overwrite raw words (fault injection: "not available", out-of-range values); the next step republishes."""
        with self.lock:
            for i, word in enumerate(words):
                self._store[(kind, address + i)] = int(word) & 0xFFFF

    # ------------------------------------------------------------------ stepping
    def _action(self) -> Any:
        space = self.device.action_space
        if isinstance(space, gymnasium.spaces.Box):
            action = np.zeros(space.shape, np.float32)
            action.reshape(-1)[0] = self.setpoint_mw
            return action
        return self.setpoint_mw

    def _step_locked(self) -> None:
        self.device.step(self._action(), self.ctx)
        self.steps += 1
        self._publish()

    def step(self) -> None:
        """Step the device once with the current setpoint (``step_on="manual"``, or an extra step)."""
        with self.lock:
            self._step_locked()

    # ------------------------------------------------------------------ pymodbus callback
    async def _on_access(self, function_code: int, start_address: int, address: int, count: int,
                         registers: list[int], set_values: list[int] | list[bool] | None) -> Any:
        from pymodbus.constants import ExcCodes

        if function_code in _READ_INPUT:
            kind = "input"
        elif function_code in _READ_HOLDING | _WRITE_HOLDING:
            kind = "holding"
        else:
            return None
        with self.lock:
            if set_values is not None and function_code in _WRITE_HOLDING:
                for i, word in enumerate(set_values):
                    self._store[("holding", address + i)] = int(word) & 0xFFFF
                sp = self.registers.setpoint
                if address <= sp.address and address + len(set_values) >= sp.address + sp.words:
                    reading = sp.decode([self._store.get(("holding", a), 0) for a in sp.addresses], self.setpoint_mw)
                    self.setpoint_mw, self.setpoint_flag = float(reading.value), reading.flag
                    if self.step_on == "write":
                        try:
                            self._step_locked()
                        except Exception as exc:  # a failing model answers with Modbus exception 4
                            self.errors.append(f"{type(exc).__name__}: {exc}")
                            return ExcCodes.DEVICE_FAILURE
                return None
            for i in range(count):  # a read: refresh pymodbus' copy from the store
                offset = address - start_address + i
                if 0 <= offset < len(registers):
                    registers[offset] = self._store.get((kind, address + i), 0)
        return None

    # ------------------------------------------------------------------ server thread
    def _context(self) -> Any:
        from pymodbus.simulator import DataType, SimData, SimDevice

        def block(kind: str) -> list[Any]:
            span = self.registers.span(kind)
            first, count = span if span is not None else (0, 1)
            return [SimData(first, count=count, values=0, datatype=DataType.REGISTERS)]

        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        # id 0: answer every unit id
        return SimDevice(0, simdata=(list(bits), list(bits), block("holding"), block("input")), action=self._on_access)

    async def _serve(self) -> None:
        from pymodbus.server import ModbusTcpServer

        self._stop_event = asyncio.Event()
        server = ModbusTcpServer(self._context(), address=(self.host, self.port))
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

    def start(self, timeout_s: float = 5.0) -> SimulatedDeviceServer:
        """Listen on ``host:port`` (returns once listening; raises if the address cannot be bound)."""
        if self.running:
            return self
        self._ready.clear()
        self._start_error = None
        self._thread = threading.Thread(target=self._run, name=f"modbus-server-{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            self.stop()
            raise TimeoutError(f"Modbus server on {self.host}:{self.port} did not start within {timeout_s} s")
        if self._start_error is not None:
            error = self._start_error
            self._thread.join(timeout_s)
            self._thread = None
            raise OSError(f"Modbus server on {self.host}:{self.port} failed to start: {error}") from error
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

    def __enter__(self) -> SimulatedDeviceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

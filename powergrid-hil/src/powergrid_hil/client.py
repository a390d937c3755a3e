"""A synchronous Modbus link (TCP, RTU framing over TCP, or RTU over a serial port) with reconnection backoff.

Every failure is a :class:`CommError` with a ``kind``: ``connect`` (no
connection), ``backoff`` (waiting before the next attempt), ``timeout`` (no or
a broken answer), ``exception`` (a Modbus exception response), ``malformed`` (a
reply to another function than the request's). pymodbus is
imported when the first link is built, not when this module is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from powergrid_hil.registers import Register

#: Modbus exception codes (Modbus application protocol v1.1b3, section 7)
EXCEPTIONS = {1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "device failure",
              5: "acknowledge", 6: "device busy", 8: "memory parity error", 10: "gateway path unavailable",
              11: "gateway target failed to respond"}


class _Quiet(logging.Handler):
    """Keeps pymodbus's messages from stderr (every fault is a :class:`CommError` in infos, a server's failed start
    an ``OSError``) and keeps the reasons pymodbus logs instead of raising: each endpoint's last failed connection,
    and each server thread's failed listen."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: dict[str, str] = {}  # "Connection to (host, port)" → e.g. "[Errno 111] Connection refused"

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage().partition("\n")[0]
        where, failed, reason = line.partition(" failed: ")
        if failed and where.startswith("Connection to ("):
            self.reasons[where] = reason
        elif line.startswith(LISTEN_FAILED):
            self.reasons[f"listen in thread {record.thread}"] = line[len(LISTEN_FAILED):]


LISTEN_FAILED = "Failed to start server "  # pymodbus's message, then the OSError (address in use, not assignable…)
_QUIET = _Quiet()  # one instance: adding it again is a no-op


def quiet_pymodbus() -> _Quiet:
    """The handler that keeps pymodbus's messages off stderr and their reasons, attached to pymodbus's logger (once:
    attaching it again is a no-op). Every fault is reported by us (a link's :class:`CommError` in infos, a server's
    ``OSError``); pymodbus's own messages reach the application's logging handlers, if it has any, not stderr through
    Python's last-resort handler."""
    logging.getLogger("pymodbus").addHandler(_QUIET)
    return _QUIET


class CommError(Exception):
    """The device did not answer as expected; ``kind`` says how (connect, backoff, timeout, exception).

    ``op`` (read/write), ``what`` (the value) and ``value`` (a setpoint) are set by the
    caller that knows what the call was for (see :meth:`tag`).
    """

    def __init__(self, message: str, kind: str, code: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.code = kind, code  # code: of an exception response
        self.op, self.what, self.value = "read", "link", None

    @property
    def refused(self) -> bool:
        """The device itself answered with an exception (not a gateway for an unreachable one, codes 10, 11)."""
        return self.kind == "exception" and self.code not in (10, 11)

    def tag(self, op: str, what: str, value: float | None = None) -> CommError:
        """This error, noting the operation and value it interrupted."""
        self.op, self.what, self.value = op, what, value
        return self


class ModbusLink:
    """One Modbus connection to ``host:port`` (or ``serial_port``), unit ``unit_id``.

    After a failure the connection is closed and no new attempt is made before the
    backoff delay (``backoff_s``, doubled per consecutive failure up to
    ``backoff_max_s``) has passed; a call inside the delay fails at once without
    touching the network, so a dead device never stalls every step by ``timeout_s``.
    A connection the peer closed since the last call (devices and gateways close idle
    connections) is reopened and the call sent again at once, once.
    Reads return every word the device sent: a reply longer or shorter than asked is
    left for the caller to flag as malformed.
    """

    def __init__(self, host: str, port: int, *, unit_id: int = 1, timeout_s: float = 0.5,
                 backoff_s: float = 0.5, backoff_max_s: float = 10.0, framer: str = "socket",
                 serial_port: str = "", baudrate: int = 19200,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from pymodbus import FramerType
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient  # lazy: listing plugins needs no pymodbus
        from pymodbus.exceptions import ConnectionException

        quiet_pymodbus()  # every fault is a CommError recorded in infos

        self.host, self.port, self.unit_id = host, int(port), int(unit_id)
        self.where = serial_port or f"{host}:{port}"
        self.backoff_s, self.backoff_max_s = float(backoff_s), float(backoff_max_s)
        self.clock = clock
        if serial_port:
            self.client = ModbusSerialClient(serial_port, framer=FramerType.RTU, baudrate=int(baudrate),
                                             timeout=float(timeout_s), retries=0)
        else:
            self.client = ModbusTcpClient(host, port=int(port), framer=FramerType(framer), timeout=float(timeout_s),
                                          retries=0)
        self.closed_by_peer = (ConnectionException, ConnectionError)  # a connection the peer closed or reset
        self.failures = 0  # consecutive
        self.reconnects = 0
        self.next_attempt = 0.0
        self.last_error = ""

    # ------------------------------------------------------------------ state
    @property
    def connected(self) -> bool:
        return bool(self.client.connected)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # closing a broken socket must not raise
            pass

    def _fail(self, message: str, kind: str) -> CommError:
        self.close()
        self.failures += 1
        delay = min(self.backoff_s * 2 ** (self.failures - 1), self.backoff_max_s) if self.backoff_s > 0 else 0.0
        self.next_attempt = self.clock() + delay
        self.last_error = message
        return CommError(message, kind)

    def _ensure(self) -> None:
        if self.connected:
            return
        now = self.clock()
        if now < self.next_attempt:
            raise CommError(f"backoff: next attempt to {self.where} in {self.next_attempt - now:.2f} s "
                            f"(last error: {self.last_error})", "backoff")
        try:
            ok = self.client.connect()
        except Exception as exc:  # any socket error is a handled event
            raise self._fail(f"connect to {self.where} failed: {type(exc).__name__}: {exc}", "connect") from None
        if not ok:
            reason = _QUIET.reasons.get(f"Connection to ({self.host}, {self.port})")  # pymodbus logs it, TCP only
            raise self._fail(f"connect to {self.where} failed" + (f": {reason}" if reason else ""), "connect")
        if self.failures:
            self.reconnects += 1

    def _call(self, what: str, function: int, fn: Callable[[], object]) -> object:
        """``fn()``'s response to a request of Modbus function ``function``. Raises :class:`CommError`."""
        reused = self.connected  # opened by an earlier call: the peer may have closed it since
        self._ensure()
        try:
            try:
                response = fn()
            except self.closed_by_peer:
                if not reused:
                    raise
                # devices and gateways close idle connections: reopen once, at once (not a failure: no backoff,
                # not counted in reconnects, so a SunSpec device does not rescan)
                self.close()
                self._ensure()
                response = fn()
        except CommError:
            raise
        except Exception as exc:  # timeouts, resets, broken pipes are handled events
            raise self._fail(f"{what}: {type(exc).__name__}: {exc}", "timeout") from None
        if response is None or not hasattr(response, "isError"):
            raise self._fail(f"{what}: no response", "timeout")
        if response.isError():
            code = getattr(response, "exception_code", None)
            if code is None:
                raise self._fail(f"{what}: error response {response}", "timeout")
            # the device answered: the link is sound, no reconnection needed
            code = int(code)
            self.last_error = f"{what}: exception response {code}" + (f" ({EXCEPTIONS[code]})" if code in EXCEPTIONS else "")
            raise CommError(self.last_error, "exception", code)
        answered = getattr(response, "function_code", function)
        if answered != function:  # a confused peer or gateway: not an answer (the link is in step: no reconnection)
            self.last_error = f"{what}: the reply is to function {answered}, not {function}"
            raise CommError(self.last_error, "malformed")
        self.failures = 0
        self.last_error = ""
        return response

    # ------------------------------------------------------------------ I/O
    def read_words(self, table: str, address: int, count: int) -> list[int]:
        """The words the device returned for ``count`` registers from ``address`` (``holding`` or ``input``)."""
        reader, function = (self.client.read_input_registers, 4) if table == "input" else (self.client.read_holding_registers, 3)
        response = self._call(f"read {table} {address}+{count}", function,
                              lambda: reader(address, count=count, device_id=self.unit_id))
        return list(getattr(response, "registers", []) or [])

    def write_words(self, address: int, words: Sequence[int]) -> None:
        """Write ``words`` to holding registers from ``address`` (function 6 for one word, 16 for more)."""
        if len(words) == 1:
            self._call(f"write {address}", 6,
                       lambda: self.client.write_register(address, int(words[0]), device_id=self.unit_id))
        else:
            self._call(f"write {address}+{len(words)}", 16,
                       lambda: self.client.write_registers(address, [int(w) for w in words], device_id=self.unit_id))

    def read(self, register: Register) -> list[int]:
        """The raw words of ``register`` (every word returned, for the caller's length check)."""
        return self.read_words(register.table, register.address, register.words)

    def write(self, register: Register, words: list[int]) -> None:
        """Write ``words`` to the holding register(s) of ``register``."""
        if register.table != "holding" or register.access != "RW":
            raise ValueError(f"register {register.address} ({register.table}, {register.access}) is not writable")
        self.write_words(register.address, words)

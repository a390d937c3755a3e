"""A synchronous Modbus TCP link with reconnection backoff; every failure is a :class:`CommError`.

pymodbus is imported when the first link is built, not when this module is.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from powergrid_hil.registers import Register


class CommError(Exception):
    """The device did not answer (no connection, timeout, dropped link, exception response)."""


class ModbusLink:
    """One Modbus TCP connection to ``host:port``, unit ``unit_id``.

    After a failure the socket is closed and no new attempt is made before the
    backoff delay (``backoff_s``, doubled per consecutive failure up to
    ``backoff_max_s``) has passed; a call inside the delay fails at once
    without touching the network, so a dead device never stalls every step by
    ``timeout_s``.
    """

    def __init__(self, host: str, port: int, *, unit_id: int = 1, timeout_s: float = 0.5,
                 backoff_s: float = 0.5, backoff_max_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from pymodbus.client import ModbusTcpClient  # lazy: the registry lists the device without pymodbus

        self.host, self.port, self.unit_id = host, int(port), int(unit_id)
        self.backoff_s, self.backoff_max_s = float(backoff_s), float(backoff_max_s)
        self.clock = clock
        self.client = ModbusTcpClient(host, port=int(port), timeout=float(timeout_s), retries=0)
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

    def _fail(self, message: str) -> CommError:
        self.close()
        self.failures += 1
        delay = min(self.backoff_s * 2 ** (self.failures - 1), self.backoff_max_s) if self.backoff_s > 0 else 0.0
        self.next_attempt = self.clock() + delay
        self.last_error = message
        return CommError(message)

    def _ensure(self) -> None:
        if self.connected:
            return
        now = self.clock()
        if now < self.next_attempt:
            raise CommError(f"backoff: next attempt to {self.host}:{self.port} in {self.next_attempt - now:.2f} s "
                            f"(last error: {self.last_error})")
        try:
            ok = self.client.connect()
        except Exception as exc:  # any socket error is a handled event
            raise self._fail(f"connect to {self.host}:{self.port} failed: {type(exc).__name__}: {exc}") from None
        if not ok:
            raise self._fail(f"connect to {self.host}:{self.port} failed")
        if self.failures:
            self.reconnects += 1

    def _call(self, what: str, fn: Callable[[], object]) -> object:
        self._ensure()
        try:
            response = fn()
        except Exception as exc:  # timeouts, resets, broken pipes are handled events
            raise self._fail(f"{what}: {type(exc).__name__}: {exc}") from None
        if response is None or getattr(response, "isError", lambda: True)():
            raise self._fail(f"{what}: error response {response}")
        self.failures = 0
        self.last_error = ""
        return response

    # ------------------------------------------------------------------ I/O
    def read(self, register: Register) -> list[int]:
        """The raw words of ``register`` (holding or input)."""
        reader = self.client.read_input_registers if register.kind == "input" else self.client.read_holding_registers
        response = self._call(f"read {register.kind} {register.address}",
                              lambda: reader(register.address, count=register.words, device_id=self.unit_id))
        words = list(getattr(response, "registers", []) or [])
        return words[: register.words] if len(words) >= register.words else words

    def write(self, register: Register, words: list[int]) -> None:
        """Write ``words`` to the holding register(s) of ``register``."""
        if register.kind != "holding":
            raise ValueError(f"register {register.address} is an input register; only holding registers are writable")
        if len(words) == 1:
            self._call(f"write {register.address}",
                       lambda: self.client.write_register(register.address, words[0], device_id=self.unit_id))
        else:
            self._call(f"write {register.address}",
                       lambda: self.client.write_registers(register.address, words, device_id=self.unit_id))

"""``ModbusDevice``: a real device behind Modbus TCP, stepped like a simulated one."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from powergrid.devices import Device, StepContext, box, clip_action
from powergrid.params import choice, integer, quantity, text
from powergrid_hil.client import CommError, ModbusLink
from powergrid_hil.registers import OK, Register, RegisterMap


@attrs.frozen
class ModbusDeviceParams:
    host: str = text("127.0.0.1", doc="IP address or host name of the device")
    port: int = integer(502, ge=1, le=65535)
    unit_id: int = integer(1, ge=0, le=255, doc="Modbus unit (slave) id")
    timeout_s: float = quantity("s", 0.5, gt=0, doc="connect and response timeout")
    backoff_s: float = quantity("s", 0.5, ge=0, doc="first wait before reconnecting after a failure (doubles per failure)")
    backoff_max_s: float = quantity("s", 10.0, ge=0)
    p_min_mw: float = quantity("MW", -1.0, doc="lowest setpoint sent (negative: consume)")
    p_max_mw: float = quantity("MW", 1.0)
    on_failure: str = choice(("hold", "zero"), "hold",
                             doc="injection assumed when the device does not answer: last measured P/Q, or 0")
    failure_safety: float = quantity("1", 1.0, ge=0, doc="safety added for each step without communication")
    word_order: str = choice(("big", "little"), "big", doc="word order of 32-bit values")
    setpoint_address: int = integer(0, ge=0, le=65535, doc="holding register of the P setpoint")
    setpoint_scale: float = quantity("MW", 0.001, gt=0, doc="MW per count")
    setpoint_words: int = integer(1, ge=1, le=2, doc="1: 16-bit, 2: 32-bit")
    measure_kind: str = choice(("input", "holding"), "input", doc="register table of the measurements")
    p_address: int = integer(0, ge=0, le=65535, doc="register of the measured P")
    p_scale: float = quantity("MW", 0.001, gt=0)
    p_words: int = integer(1, ge=1, le=2)
    q_address: int = integer(1, ge=-1, le=65535, doc="register of the measured Q (-1: not read)")
    q_scale: float = quantity("Mvar", 0.001, gt=0)
    soc_address: int = integer(-1, ge=-1, le=65535, doc="register of the SOC (-1: not read)")
    soc_scale: float = quantity("1", 0.0001, gt=0)
    signed: str = choice(("signed", "unsigned"), "signed", doc="P and Q registers (SOC is unsigned)")

    def __attrs_post_init__(self) -> None:
        if self.p_min_mw > self.p_max_mw:
            raise ValueError(f"expected p_min_mw ≤ p_max_mw, got {self.p_min_mw} > {self.p_max_mw}")
        self.register_map()  # overlapping registers are a config error

    def register_map(self) -> RegisterMap:
        signed = self.signed == "signed"
        order = self.word_order

        def measured(address: int, scale: float, unit: str, words: int = 1, **kw: Any) -> Register | None:
            if address < 0:
                return None
            return Register(address, scale, words=words, kind=self.measure_kind, unit=unit, word_order=order, **kw)

        return RegisterMap(
            setpoint=Register(self.setpoint_address, self.setpoint_scale, signed=signed, words=self.setpoint_words,
                              kind="holding", unit="MW", word_order=order),
            p=measured(self.p_address, self.p_scale, "MW", self.p_words, signed=signed),
            q=measured(self.q_address, self.q_scale, "Mvar", self.p_words, signed=signed),
            soc=measured(self.soc_address, self.soc_scale, "1", signed=False, min_value=0.0, max_value=1.0),
        )


class ModbusDevice(Device):
    """A device behind Modbus TCP: writes a P setpoint, reads back measured P (and Q, SOC).

    Action: ``[p]`` MW, projected to ``[p_min_mw, p_max_mw]`` and written to the
    setpoint holding register; ``p_mw``/``q_mvar`` are the measured values read
    back in the same step. When the device does not answer (refused, timeout,
    dropped link, exception response) nothing raises: ``comm_ok`` is False,
    ``safety`` is ``failure_safety``, the injection follows ``on_failure``
    (``hold`` the last measurement or ``zero``), and the link reconnects on a later
    step after a backoff. A bad register value (not available, out of range,
    malformed) is flagged in ``register_flags`` and replaced by the clamped value
    or the last good one. Observation: ``[p / p_ref, comm_ok]`` (+ ``soc``).
    """

    Params = ModbusDeviceParams

    def __init__(self, params: ModbusDeviceParams, dt_h: float) -> None:
        super().__init__(params, dt_h)
        self.registers = params.register_map()
        self.action_space = box(params.p_min_mw, params.p_max_mw)
        size = 3 if self.registers.soc is not None else 2
        self.observation_space = box([-1.0, 0.0, 0.0][:size], [1.0] * size)
        self.p_ref = max(abs(params.p_min_mw), abs(params.p_max_mw), 1e-9)
        self._link: Any = None
        self._clear()

    def _clear(self) -> None:
        self.setpoint_mw = 0.0
        self.soc = float("nan")
        self.comm_ok = True
        self.comm_failures = 0  # steps without communication, this episode
        self.last_error = ""
        self.register_flags: dict[str, str] = {}

    # ------------------------------------------------------------------ link
    @property
    def link(self) -> Any:
        """The :class:`~powergrid_hil.client.ModbusLink` (built, with pymodbus, on first use)."""
        if self._link is None:
            p = self.params
            self._link = ModbusLink(p.host, p.port, unit_id=p.unit_id, timeout_s=p.timeout_s,
                                    backoff_s=p.backoff_s, backoff_max_s=p.backoff_max_s)
        return self._link

    def close(self) -> None:
        """Close the connection (the next step reconnects)."""
        if self._link is not None:
            self._link.close()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the socket (a copy in a worker process opens its own connection)."""
        state = self.__dict__.copy()
        state["_link"] = None
        return state

    # ------------------------------------------------------------------ Device contract
    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        self._clear()

    def step(self, action: Any, ctx: StepContext) -> None:
        values, distance = clip_action(action, self.action_space)
        self.setpoint_mw = float(values[0])
        self.projection = distance
        self.cost = 0.0
        self.register_flags = {}
        try:
            self._exchange()
        except Exception as exc:  # a comm failure (or anything else on the wire) never escapes step
            self.comm_ok = False
            self.comm_failures += 1
            self.last_error = str(exc) if isinstance(exc, CommError) else f"{type(exc).__name__}: {exc}"
            if self.params.on_failure == "zero":
                self.p_mw = self.q_mvar = 0.0
            self.safety = self.params.failure_safety
            return
        self.comm_ok = True
        self.last_error = ""
        self.safety = 0.0

    def _exchange(self) -> None:
        link, regs = self.link, self.registers
        words, flag = regs.setpoint.encode(self.setpoint_mw)
        if flag != OK:
            self.register_flags["setpoint"] = flag
        link.write(regs.setpoint, words)
        readings = {}
        fallbacks = {"p": self.p_mw, "q": self.q_mvar, "soc": self.soc}
        for name, reg in regs.items():
            if name == "setpoint":
                continue
            reading = reg.decode(link.read(reg), fallback=fallbacks[name])
            if not reading.ok:
                self.register_flags[name] = reading.flag
            readings[name] = reading.value
        # commit only after every read succeeded: a half-read step is a failed step
        self.p_mw = float(readings["p"])
        if "q" in readings:
            self.q_mvar = float(readings["q"])
        if "soc" in readings:
            self.soc = float(readings["soc"])

    def observe(self) -> np.ndarray:
        values = [np.clip(self.p_mw / self.p_ref, -1.0, 1.0), 1.0 if self.comm_ok else 0.0]
        if self.registers.soc is not None:
            values.append(np.clip(np.nan_to_num(self.soc, nan=0.0), 0.0, 1.0))
        return np.asarray(values, np.float32)

    def state_dict(self) -> dict[str, float]:
        state = {"p_mw": self.p_mw, "q_mvar": self.q_mvar, "setpoint_mw": self.setpoint_mw,
                 "comm_ok": float(self.comm_ok), "comm_failures": float(self.comm_failures),
                 "register_flags": float(len(self.register_flags))}
        if self.registers.soc is not None:
            state["soc"] = self.soc
        return state

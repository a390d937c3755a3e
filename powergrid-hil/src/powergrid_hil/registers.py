"""Register maps: how an engineering value (MW, Mvar, SOC…) sits in Modbus registers.

A :class:`Register` stores ``value = raw · scale`` in one 16-bit register or in two
(32-bit, high word first unless ``word_order="little"``), signed (two's complement)
or unsigned. Encoding and decoding never raise for bad data:

- :meth:`Register.encode` clamps a value outside the raw range (or outside
  ``[min_value, max_value]``) and flags it; a NaN/inf value encodes as the
  "not available" pattern and is flagged.
- :meth:`Register.decode` flags a malformed register list (wrong length, a word
  outside 0..65535), the "not available" pattern (0x8000 / 0xFFFF, 0x80000000 /
  0xFFFFFFFF, as SunSpec uses) and a value outside ``[min_value, max_value]``.
  Out of range is clamped; malformed or not available gives ``fallback`` (the
  caller's last good value).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

OK = ""
CLAMPED = "out_of_range"
NOT_AVAILABLE = "not_available"
MALFORMED = "malformed"


def _check_address(_: object, __: attrs.Attribute, value: int) -> None:
    if not 0 <= value <= 65535:
        raise ValueError(f"expected a register address in 0..65535, got {value}")


def _check_scale(_: object, __: attrs.Attribute, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"expected a scale > 0, got {value}")


@attrs.frozen
class Reading:
    """A decoded value and its flag (``""`` when good; else out_of_range, not_available or malformed)."""

    value: float
    flag: str = OK

    @property
    def ok(self) -> bool:
        return self.flag == OK


@attrs.frozen
class Register:
    """One value in one (16-bit) or two (32-bit) registers: ``value = raw · scale``."""

    address: int = attrs.field(validator=_check_address)
    scale: float = attrs.field(default=1.0, converter=float, validator=_check_scale)
    signed: bool = True
    words: int = attrs.field(default=1, validator=attrs.validators.in_((1, 2)))
    kind: str = attrs.field(default="holding", validator=attrs.validators.in_(("holding", "input")))
    unit: str = ""
    word_order: str = attrs.field(default="big", validator=attrs.validators.in_(("big", "little")))
    min_value: float = -math.inf
    max_value: float = math.inf

    def __attrs_post_init__(self) -> None:
        if self.address + self.words - 1 > 65535:
            raise ValueError(f"register {self.address} with {self.words} words runs past address 65535")
        if self.min_value > self.max_value:
            raise ValueError(f"expected min_value ≤ max_value, got {self.min_value} > {self.max_value}")

    # ------------------------------------------------------------------ raw range
    @property
    def bits(self) -> int:
        return 16 * self.words

    @property
    def raw_min(self) -> int:
        return -(1 << (self.bits - 1)) + 1 if self.signed else 0  # the lowest pattern means "not available"

    @property
    def raw_max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 2  # all ones: "not available"

    @property
    def not_available(self) -> int:
        """The unsigned pattern meaning "no value": 0x8000… when signed, 0xFFFF… when unsigned."""
        return 1 << (self.bits - 1) if self.signed else (1 << self.bits) - 1

    @property
    def addresses(self) -> range:
        return range(self.address, self.address + self.words)

    def _limits(self) -> tuple[float, float]:
        return max(self.min_value, self.raw_min * self.scale), min(self.max_value, self.raw_max * self.scale)

    # ------------------------------------------------------------------ conversions
    def _split(self, pattern: int) -> list[int]:
        words = [(pattern >> 16) & 0xFFFF, pattern & 0xFFFF] if self.words == 2 else [pattern & 0xFFFF]
        return words[::-1] if self.word_order == "little" else words

    def encode(self, value: float) -> tuple[list[int], str]:
        """The register words of ``value`` and a flag (``""``, out_of_range when clamped, not_available for NaN/inf)."""
        try:
            x = float(value)
        except (TypeError, ValueError):
            x = math.nan
        if not math.isfinite(x):
            return self._split(self.not_available), NOT_AVAILABLE
        low, high = self._limits()
        flag = OK
        if x < low or x > high:
            x, flag = min(max(x, low), high), CLAMPED
        raw = round(x / self.scale)
        raw = min(max(raw, self.raw_min), self.raw_max)  # rounding at the edge of the range
        return self._split(raw & ((1 << self.bits) - 1)), flag

    def decode(self, words: Sequence[int] | None, fallback: float = 0.0) -> Reading:
        """The value of ``words`` (flagged and clamped, or ``fallback`` when malformed / not available)."""
        try:
            regs = [int(w) for w in words] if words is not None else []
        except (TypeError, ValueError):
            return Reading(fallback, MALFORMED)
        if len(regs) != self.words or any(not 0 <= w <= 0xFFFF for w in regs):
            return Reading(fallback, MALFORMED)
        if self.word_order == "little":
            regs = regs[::-1]
        pattern = (regs[0] << 16) | regs[1] if self.words == 2 else regs[0]
        if pattern == self.not_available:
            return Reading(fallback, NOT_AVAILABLE)
        raw = pattern - (1 << self.bits) if self.signed and pattern >= 1 << (self.bits - 1) else pattern
        value = raw * self.scale
        if value < self.min_value or value > self.max_value:
            return Reading(min(max(value, self.min_value), self.max_value), CLAMPED)
        return Reading(value)


@attrs.frozen
class RegisterMap:
    """Where a device's values live: the P setpoint (holding) and measured P, Q and SOC.

    ``q`` and ``soc`` are optional (``None``). The default map: setpoint at holding
    40001 (address 0), measured P/Q/SOC at input registers 0/1/2, 1 kW / 1 kvar /
    0.01 % resolution, signed 16-bit (±32.767 MW).
    """

    setpoint: Register = Register(0, 0.001, kind="holding", unit="MW")
    p: Register = Register(0, 0.001, kind="input", unit="MW")
    q: Register | None = Register(1, 0.001, kind="input", unit="Mvar")
    soc: Register | None = Register(2, 0.0001, signed=False, kind="input", unit="1", min_value=0.0, max_value=1.0)

    def __attrs_post_init__(self) -> None:
        used: dict[tuple[str, int], str] = {}
        for name, reg in self.items():
            for address in reg.addresses:
                key = (reg.kind, address)
                if key in used:
                    raise ValueError(f"register map: {name} overlaps {used[key]} at {reg.kind} address {address}")
                used[key] = name

    def items(self) -> list[tuple[str, Register]]:
        """``(name, register)`` of every mapped value."""
        pairs = [("setpoint", self.setpoint), ("p", self.p), ("q", self.q), ("soc", self.soc)]
        return [(name, reg) for name, reg in pairs if reg is not None]

    def span(self, kind: str) -> tuple[int, int] | None:
        """``(first address, count)`` covering every register of ``kind``, or None."""
        addresses = [a for _, reg in self.items() if reg.kind == kind for a in reg.addresses]
        if not addresses:
            return None
        return min(addresses), max(addresses) - min(addresses) + 1

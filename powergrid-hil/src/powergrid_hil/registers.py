"""Register maps for non-SunSpec devices: how an engineering value (MW, Mvar, SOC…) sits in Modbus registers.

A :class:`Register` stores ``value = raw · scale`` as ``int16``, ``uint16``,
``int32``, ``uint32`` or ``float32`` (32-bit types in two registers, high word
first unless ``word_order="little"``) in the ``holding`` or ``input`` table.
Encoding and decoding never raise for bad data:

- :meth:`Register.encode` clamps a value outside the raw range (or outside
  ``[min_value, max_value]``) and flags it; a NaN/inf value encodes as the
  "not available" pattern and is flagged.
- :meth:`Register.decode` flags a malformed register list (wrong length, a word
  outside 0..65535), the "not available" pattern (0x8000 / 0xFFFF, 0x80000000 /
  0xFFFFFFFF, NaN for float32, as SunSpec uses) and a value outside
  ``[min_value, max_value]``. Out of range is clamped; malformed or not
  available gives ``fallback`` (the caller's last good value).

A :class:`RegisterMap` names the registers of one device (``setpoint`` written,
``p``, ``q``, ``soc`` read) and is built from YAML by :meth:`RegisterMap.from_mapping`;
an entry's ``units`` (W, kW, MW for P; var, kvar, Mvar for Q; %, 1, pu for SOC)
is converted to MW, Mvar or a fraction. A bad entry (unknown type, key or unit,
overlap, a write to an input register) is a ``ValueError`` naming the entry.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import attrs

OK = ""
CLAMPED = "out_of_range"
NOT_AVAILABLE = "not_available"
MALFORMED = "malformed"

#: type name → (registers, struct format)
TYPES = {"int16": (1, ">h"), "uint16": (1, ">H"), "int32": (2, ">i"), "uint32": (2, ">I"), "float32": (2, ">f")}
TABLES = ("holding", "input")
NAN32 = 0x7FC00000  # float32 "not available" (quiet NaN)


def _check_address(_: object, __: attrs.Attribute, value: int) -> None:
    if not 0 <= value <= 65535:
        raise ValueError(f"expected a register address in 0..65535, got {value}")


def _check_scale(_: object, __: attrs.Attribute, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"expected a scale > 0, got {value}")


def _one_of(options: Sequence[str], what: str) -> Any:
    def check(_: object, __: attrs.Attribute, value: str) -> None:
        if value not in options:
            raise ValueError(f"unknown {what} {value!r} (expected one of {', '.join(options)})")

    return check


@attrs.frozen
class Reading:
    """A decoded value and its flag (``""`` when good; else out_of_range, not_available or malformed).

    ``detail`` says what was read when it is flagged out of range (the value before clamping, the range).
    """

    value: float
    flag: str = OK
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.flag == OK


@attrs.frozen
class Register:
    """One value in one (16-bit) or two (32-bit) registers: ``value = raw · scale`` (``units`` per count)."""

    address: int = attrs.field(validator=_check_address)
    scale: float = attrs.field(default=1.0, converter=float, validator=_check_scale)
    type: str = attrs.field(default="int16", validator=_one_of(tuple(TYPES), "type"))
    table: str = attrs.field(default="holding", validator=_one_of(TABLES, "table"))
    word_order: str = attrs.field(default="big", validator=_one_of(("big", "little"), "word_order"))
    units: str = ""
    access: str = attrs.field(default="R", validator=_one_of(("R", "RW"), "access"))
    min_value: float = -math.inf
    max_value: float = math.inf
    #: the map's units when not ``units`` (kW, %): an out-of-range reading is reported in them
    given_units: str = ""

    def __attrs_post_init__(self) -> None:
        if self.address + self.words - 1 > 65535:
            raise ValueError(f"register {self.address} with {self.words} words runs past address 65535")
        if self.min_value > self.max_value:
            raise ValueError(f"expected min_value ≤ max_value, got {self.min_value} > {self.max_value}")
        if self.access == "RW" and self.table == "input":
            raise ValueError(f"input register {self.address} is read-only: access RW needs table holding")

    # ------------------------------------------------------------------ raw range
    @property
    def words(self) -> int:
        return TYPES[self.type][0]

    @property
    def signed(self) -> bool:
        return self.type in ("int16", "int32", "float32")

    @property
    def bits(self) -> int:
        return 16 * self.words

    @property
    def raw_min(self) -> float:
        if self.type == "float32":
            return -3.4e38
        return -(1 << (self.bits - 1)) + 1 if self.signed else 0  # the lowest pattern means "not available"

    @property
    def raw_max(self) -> float:
        if self.type == "float32":
            return 3.4e38
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 2  # all ones: "not available"

    @property
    def not_available(self) -> int:
        """The unsigned pattern meaning "no value": 0x8000… when signed, 0xFFFF… when unsigned, NaN for float32."""
        if self.type == "float32":
            return NAN32
        return 1 << (self.bits - 1) if self.signed else (1 << self.bits) - 1

    @property
    def addresses(self) -> range:
        return range(self.address, self.address + self.words)

    @property
    def value_range(self) -> tuple[float, float]:
        """Lowest and highest value the register holds (raw range · scale, within ``[min_value, max_value]``)."""
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
        low, high = self.value_range
        flag = OK
        if x < low or x > high:
            x, flag = min(max(x, low), high), CLAMPED
        if self.type == "float32":
            pattern = int.from_bytes(struct.pack(">f", x / self.scale), "big")
            return self._split(pattern), flag
        raw = round(x / self.scale)
        raw = int(min(max(raw, self.raw_min), self.raw_max))  # rounding at the edge of the range
        return self._split(raw & ((1 << self.bits) - 1)), flag

    def decode(self, words: Sequence[int] | None, fallback: float = 0.0) -> Reading:
        """The value of ``words`` (flagged and clamped, or ``fallback`` when malformed / not available)."""
        try:
            regs = [int(w) for w in words] if words is not None else []
        except (TypeError, ValueError):
            return Reading(fallback, MALFORMED, f"read {words!r}")
        if len(regs) != self.words or any(not 0 <= w <= 0xFFFF for w in regs):
            return Reading(fallback, MALFORMED, f"read {regs}, expected {self.words} word(s) in 0..65535")
        if self.word_order == "little":
            regs = regs[::-1]
        pattern = (regs[0] << 16) | regs[1] if self.words == 2 else regs[0]
        if self.type == "float32":
            raw = struct.unpack(">f", pattern.to_bytes(4, "big"))[0]
            if not math.isfinite(raw):
                said = "not a number" if math.isnan(raw) else f"infinite ({raw:+})"
                return Reading(fallback, NOT_AVAILABLE, f"read 0x{pattern:08X}, {said}")
        elif pattern == self.not_available:
            return Reading(fallback, NOT_AVAILABLE, f"read 0x{pattern:0{self.words * 4}X}, the not-available pattern")
        else:
            raw = pattern - (1 << self.bits) if self.signed and pattern >= 1 << (self.bits - 1) else pattern
        value = raw * self.scale
        if value < self.min_value or value > self.max_value:
            factor, units = (FACTORS[self.given_units], f" {self.given_units}") if self.given_units else (1.0, "")
            return Reading(min(max(value, self.min_value), self.max_value), CLAMPED,
                           f"read {value / factor:g}{units}, outside [{self.min_value / factor:g}, "
                           f"{self.max_value / factor:g}]{units}")
        return Reading(value)


#: The keys of one YAML register entry.
ENTRY_KEYS = ("address", "table", "type", "scale", "word_order", "units", "access", "min", "max")
ROLES = ("setpoint", "p", "q", "soc")
_POWER = {"MW": 1.0, "kW": 1e-3, "W": 1e-6}
#: role → accepted ``units`` → factor to the device's unit (MW, Mvar, fraction); the first is that unit
UNITS = {"setpoint": _POWER, "p": _POWER, "q": {"Mvar": 1.0, "kvar": 1e-3, "var": 1e-6},
         "soc": {"1": 1.0, "pu": 1.0, "%": 0.01}}
FACTORS = {units: factor for accepted in UNITS.values() for units, factor in accepted.items()}


@attrs.frozen
class RegisterMap:
    """Where a device's values live: the P setpoint (holding, written) and measured P, Q and SOC (read).

    ``setpoint``, ``q`` and ``soc`` are optional (``None``; no setpoint: a read-only device, e.g. a meter).
    The default map: setpoint at holding 40001 (address 0), measured P/Q/SOC at input registers 0/1/2, 1 kW / 1 kvar /
    0.01 % resolution, int16 (±32.767 MW), SOC uint16.
    """

    setpoint: Register | None = Register(0, 0.001, table="holding", units="MW", access="RW")
    p: Register = Register(0, 0.001, table="input", units="MW")
    q: Register | None = Register(1, 0.001, table="input", units="Mvar")
    soc: Register | None = Register(2, 0.0001, type="uint16", table="input", units="1", min_value=0.0, max_value=1.0)

    def __attrs_post_init__(self) -> None:
        if self.setpoint is not None and self.setpoint.access != "RW":
            raise ValueError("registers.setpoint: written every step, so it needs access RW (a holding register)")
        used: dict[tuple[str, int], str] = {}
        for name, reg in self.items():
            for address in reg.addresses:
                key = (reg.table, address)
                if key in used:
                    raise ValueError(f"registers.{name} overlaps registers.{used[key]} at {reg.table} address {address}")
                used[key] = name

    def items(self) -> list[tuple[str, Register]]:
        """``(name, register)`` of every mapped value."""
        pairs = [("setpoint", self.setpoint), ("p", self.p), ("q", self.q), ("soc", self.soc)]
        return [(name, reg) for name, reg in pairs if reg is not None]

    def span(self, table: str) -> tuple[int, int] | None:
        """``(first address, count)`` covering every register of ``table``, or None."""
        addresses = [a for _, reg in self.items() if reg.table == table for a in reg.addresses]
        if not addresses:
            return None
        return min(addresses), max(addresses) - min(addresses) + 1

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None, base: RegisterMap | None = None) -> RegisterMap:
        """A map from YAML: ``{setpoint: {address: 0, table: holding, type: int16, scale: 0.001, access: RW}, …}``.

        Entries replace those of ``base`` (the default map) by name; ``null`` drops
        ``setpoint`` (read-only), ``q`` or ``soc``. Errors name the entry: ``registers.p: unknown type 'int24' …``.
        """
        base = base or cls()
        if raw is None:
            return base
        if not isinstance(raw, Mapping):
            raise ValueError(f"registers: expected a mapping of {', '.join(ROLES)}, got {raw!r}")
        entries: dict[str, Register | None] = dict(base.items())
        for name in ("setpoint", "q", "soc"):
            entries.setdefault(name, None)
        for name, spec in raw.items():
            if name not in ROLES:
                raise ValueError(f"registers.{name}: unknown entry (expected {', '.join(ROLES)})")
            if spec is None:
                if name == "p":
                    raise ValueError(f"registers.{name}: required, cannot be null")
                entries[name] = None
                continue
            entries[name] = _entry(name, spec)
        return cls(**entries)  # type: ignore[arg-type]


def _entry(name: str, spec: Any) -> Register:
    where = f"registers.{name}"
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: expected a mapping with {', '.join(ENTRY_KEYS)}, got {spec!r}")
    unknown = [k for k in spec if k not in ENTRY_KEYS]
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (expected {', '.join(ENTRY_KEYS)})")
    if "address" not in spec:
        raise ValueError(f"{where}: address is required")
    table = spec.get("table", "holding" if name == "setpoint" else "input")
    access = spec.get("access", "RW" if name == "setpoint" else "R")
    if name == "setpoint" and table == "input":
        raise ValueError(f"{where}: the setpoint is written, but input registers are read-only (use table: holding)")
    address = spec["address"]
    if isinstance(address, bool) or not isinstance(address, Integral):
        raise ValueError(f"{where}.address: expected an integer register address, got {address!r}")
    for key in ("scale", "min", "max"):
        if key in spec and (isinstance(spec[key], bool) or not isinstance(spec[key], Real)):
            raise ValueError(f"{where}.{key}: expected a number, got {spec[key]!r}")
    accepted = UNITS[name]
    units = spec.get("units") or next(iter(accepted))
    if not isinstance(units, str) or units not in accepted:
        raise ValueError(f"{where}.units: {units!r} is not converted (expected one of {', '.join(accepted)})")
    factor = accepted[units]  # min, max and scale are in ``units``; the register holds MW, Mvar or a fraction
    limits = {"min_value": 0.0, "max_value": 1.0} if name == "soc" else {}
    if "min" in spec:
        limits["min_value"] = float(spec["min"]) * factor
    if "max" in spec:
        limits["max_value"] = float(spec["max"]) * factor
    try:
        scale = float(spec.get("scale", 1.0)) * factor
        return Register(int(address), scale, type=spec.get("type", "int16"), table=table,
                        word_order=spec.get("word_order", "big"), units=next(iter(accepted)), access=access,
                        given_units=units if factor != 1.0 else "", **limits)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None

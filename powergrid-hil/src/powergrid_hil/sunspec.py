"""SunSpec information models: register layouts read from pysunspec2's model definitions.

A SunSpec device answers holding-register reads from a base address (40000): the
marker ``SunS`` (two registers), then one model after another — model id,
length ``L`` (registers that follow), the points — and an end model
(``0xFFFF``, ``0``). Point positions, types, scale factors (``sf``: the name of
a ``sunssf`` point, or a fixed exponent) and access come from the JSON model
definitions shipped with pysunspec2; nothing here types a model by hand.

- A value ``x`` with scale factor ``s`` is stored as ``round(x / 10**s)``.
- A point with no value holds the "not implemented" pattern of its type
  (``0x8000`` for int16, ``0xFFFF`` for uint16, ``0x80000000`` for int32, a
  quiet NaN for float32, NUL bytes for strings…), as pysunspec2 defines them.
- Repeating groups: a group whose count is a number is repeated that many
  times; a count of 0 or the name of a count point is given by ``repeats``
  (server side) or inferred from the model length ``L`` (client side, one
  such group per level). Instance ``i`` (from 1) of group ``module`` names its
  points ``module[i].DCW``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

BASE_ADDRESS = 40000
MARKER = (0x5375, 0x6E53)  # "SunS"
END_MODEL = 0xFFFF

#: struct format of the numeric point types (big-endian; SunSpec has one word order).
FORMATS = {
    "int16": ">h", "sunssf": ">h", "uint16": ">H", "count": ">H", "acc16": ">H", "enum16": ">H",
    "bitfield16": ">H", "pad": ">H", "int32": ">i", "uint32": ">I", "acc32": ">I", "enum32": ">I",
    "bitfield32": ">I", "ipaddr": ">I", "float32": ">f", "int64": ">q", "uint64": ">Q", "acc64": ">Q",
    "float64": ">d",
}


class SunSpecError(ValueError):
    """A model that cannot be laid out, or a device image that is not SunSpec."""


def model_definition(model_id: int) -> dict[str, Any]:
    """pysunspec2's JSON definition of ``model_id`` (raises :class:`SunSpecError` when it has none)."""
    from sunspec2 import device, mdef  # lazy: listing plugins does not need pysunspec2

    try:
        return device.get_model_def(model_id, mapping=False)
    except mdef.ModelDefinitionError as exc:
        raise SunSpecError(f"SunSpec model {model_id}: {exc}") from None


def unimplemented(point_type: str, words: int) -> list[int]:
    """The "not implemented" register words of a point: pysunspec2's pattern of its type, NULs for strings."""
    from sunspec2 import mb

    value = mb.unimpl_value.get(point_type)
    fmt = FORMATS.get(point_type)
    if fmt is None or not isinstance(value, int):  # string, ipv6addr: NUL bytes; eui48: all ones
        return [0xFFFF if point_type == "eui48" else 0] * words
    if point_type.startswith("float"):  # the pattern is a bit pattern (quiet NaN), not a quantity
        fmt = ">I" if point_type == "float32" else ">Q"
    return to_words(struct.pack(fmt, value))


def to_words(data: bytes) -> list[int]:
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


def to_bytes(words: Sequence[int]) -> bytes:
    return b"".join(int(w).to_bytes(2, "big") for w in words)


@attrs.frozen
class Point:
    """One point of a model: ``offset`` registers after the model's id register."""

    name: str
    type: str
    offset: int
    words: int
    sf: str | int | None = None  # path of the scale-factor point, or a fixed exponent
    access: str = "R"
    units: str = ""
    static: int | None = None  # fixed value (the model id and length)
    constant: bool = False  # pysunspec2 marks it static ("S"): it does not change at run time

    @property
    def writable(self) -> bool:
        return self.access == "RW"

    def encode(self, value: Any, exponent: int = 0) -> tuple[list[int], bool]:
        """Register words of ``value`` (engineering units; ``/10**exponent``) and whether it was clamped.

        ``None`` or a non-finite number gives the "not implemented" pattern.
        """
        if self.type == "string":
            raw = str(value or "").encode()[: 2 * self.words]
            return to_words(raw.ljust(2 * self.words, b"\0")), False
        fmt = FORMATS.get(self.type)
        if fmt is None:  # ipv6addr, eui48: never set by PowerGrid
            return unimplemented(self.type, self.words), False
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return unimplemented(self.type, self.words), False
        if self.type.startswith("float"):
            return to_words(struct.pack(fmt, float(value))), False
        raw = round(float(value) / 10.0 ** exponent)
        low, high = integer_range(self.type)
        clamped = min(max(raw, low), high)
        return to_words(struct.pack(fmt, clamped)), clamped != raw

    def decode(self, words: Sequence[int], exponent: int = 0) -> Any:
        """The value of ``words`` (scaled by ``10**exponent``), ``None`` when not implemented."""
        if list(words) == unimplemented(self.type, self.words) or len(words) != self.words:
            return None
        data = to_bytes(words)
        if self.type == "string":
            return data.rstrip(b"\0").decode(errors="replace")
        fmt = FORMATS.get(self.type)
        if fmt is None:
            return data
        raw = struct.unpack(fmt, data)[0]
        return raw if exponent == 0 and not self.type.startswith("float") else raw * 10.0 ** exponent


def integer_range(point_type: str) -> tuple[int, int]:
    """Lowest and highest raw value of an integer type, leaving out its "not implemented" pattern."""
    bits = 8 * struct.calcsize(FORMATS[point_type])
    if FORMATS[point_type][1].islower():  # signed: the lowest pattern means "not implemented"
        return -(1 << (bits - 1)) + 1, (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 2


def best_exponent(point_type: str, largest: float) -> int:
    """The smallest scale-factor exponent (−10…10) that fits ``±largest`` in ``point_type``."""
    _, high = integer_range(point_type)
    for exponent in range(-10, 11):
        if abs(largest) <= high * 10.0 ** exponent:
            return exponent
    return 10


@attrs.frozen
class ModelLayout:
    """Where every point of one model sits: ``points[path]``; ``length`` is the model's ``L``."""

    id: int
    name: str
    length: int
    points: Mapping[str, Point] = attrs.field(repr=False)
    known: bool = True  # False: a model skipped by its length (no definition, or another revision's length)

    @classmethod
    def opaque(cls, model_id: int, length: int) -> ModelLayout:
        """A model known only by its id and length ``L`` (a vendor's model): skipped, none of its points read."""
        points = {"ID": Point("ID", "uint16", 0, 1, static=model_id), "L": Point("L", "uint16", 1, 1, static=length)}
        return cls(model_id, "opaque", length, points, known=False)

    @classmethod
    def build(cls, model_id: int, repeats: Mapping[str, int] | None = None, length: int | None = None) -> ModelLayout:
        """The layout of ``model_id`` with ``repeats[group]`` instances of each variable group.

        Without ``repeats`` for a variable group, ``length`` (the ``L`` read from a
        device) gives its count.
        """
        definition = model_definition(model_id)
        group = definition["group"]
        points: dict[str, Point] = {}
        end = _place(group, "", 0, points, dict(repeats or {}), None if length is None else length + 2)
        for point in points.values():  # a scale factor names a point of its own group or of the model
            if isinstance(point.sf, str) and point.sf not in points:
                raise SunSpecError(f"model {model_id}: scale factor {point.sf} of {point.name} not found")
        points["ID"] = attrs.evolve(points["ID"], static=model_id)
        points["L"] = attrs.evolve(points["L"], static=end - 2)
        if length is not None and end - 2 != length:
            raise SunSpecError(f"model {model_id}: length {length} does not match its definition ({end - 2} registers)")
        return cls(model_id, group["name"], end - 2, points)


def _size(point: Mapping[str, Any]) -> int:
    from sunspec2 import mdef

    words = mdef.point_type_info.get(point["type"], {}).get("len") or point.get("size")
    if not words:
        raise SunSpecError(f"point {point['name']}: unknown size of type {point['type']}")
    return int(words)


def _group_words(group: Mapping[str, Any]) -> int:
    """Registers of one instance of ``group`` whose own subgroups have fixed counts."""
    total = sum(_size(p) for p in group.get("points", []))
    for sub in group.get("groups", []):
        count = sub.get("count", 1)
        if not isinstance(count, int) or count == 0:
            raise SunSpecError(f"group {sub['name']}: nested variable groups need an explicit count")
        total += count * _group_words(sub)
    return total


def _place(group: Mapping[str, Any], prefix: str, offset: int, points: dict[str, Point],
           repeats: dict[str, int], end: int | None) -> int:
    """Add the points of ``group`` (and its subgroups) from ``offset``; returns the offset after it."""
    own = {p["name"] for p in group.get("points", [])}
    for p in group.get("points", []):
        sf = p.get("sf")
        if isinstance(sf, str):
            sf = prefix + sf if sf in own else sf
        words = _size(p)
        points[prefix + p["name"]] = Point(prefix + p["name"], p["type"], offset, words, sf, p.get("access", "R"),
                                           p.get("units", ""), constant=p.get("static") == "S")
        offset += words
    subgroups = group.get("groups", [])
    fixed = sum(_group_words(g) * g.get("count", 1) for g in subgroups
                if isinstance(g.get("count", 1), int) and g.get("count", 1) > 0)
    for sub in subgroups:
        count = sub.get("count", 1)
        repeating = not isinstance(count, int) or count == 0
        if repeating:
            if sub["name"] in repeats:
                count = repeats[sub["name"]]
            elif end is not None:
                count, rest = divmod(end - offset - fixed, _group_words(sub))
                if rest or count < 0:
                    raise SunSpecError(f"group {sub['name']}: model length does not fit whole instances")
            else:
                raise SunSpecError(f"group {sub['name']}: repeat count not given")
        for i in range(1, count + 1):
            name = f"{sub['name']}[{i}]" if repeating or count > 1 else sub["name"]
            offset = _place(sub, f"{prefix}{name}.", offset, points, repeats, None)
    return offset


@attrs.frozen
class Located:
    """A point of a model placed at an absolute register ``address``."""

    model: ModelLayout = attrs.field(repr=False)
    point: Point
    address: int

    @property
    def addresses(self) -> range:
        return range(self.address, self.address + self.point.words)


class SunSpecMap:
    """Models laid out one after another from ``base`` (after the ``SunS`` marker), with the end model last.

    ``map.find(701, "W")`` gives a :class:`Located` point; ``map.size`` the registers
    from ``base`` to the end model included.
    """

    def __init__(self, models: Sequence[ModelLayout], base: int = BASE_ADDRESS,
                 skipped: Mapping[int, str] | None = None) -> None:
        self.base = base
        self.models = list(models)
        self.skipped = dict(skipped or {})  # model id → why a scan could not lay it out
        self.starts: list[int] = []
        address = base + 2
        for model in self.models:
            self.starts.append(address)
            address += model.length + 2
        self.end = address  # the end model's id register
        self.size = address + 2 - base

    def find(self, model_id: int, name: str, instance: int = 0) -> Located:
        """Point ``name`` of the ``instance``-th model with id ``model_id``."""
        found = [(m, s) for m, s in zip(self.models, self.starts) if m.id == model_id and m.known]
        if len(found) <= instance:
            raise KeyError(f"SunSpec model {model_id} (instance {instance}) not in the map "
                           f"(models: {', '.join(str(m.id) for m in self.models if m.known)})")
        model, start = found[instance]
        if name not in model.points:
            raise KeyError(f"SunSpec model {model_id} has no point {name}")
        point = model.points[name]
        return Located(model, point, start + point.offset)

    def has(self, model_id: int) -> bool:
        return any(m.id == model_id and m.known for m in self.models)

    def scale_of(self, located: Located) -> Located | None:
        """The scale-factor point of ``located`` (``None`` for a fixed or no scale factor)."""
        sf = located.point.sf
        if not isinstance(sf, str):
            return None
        point = located.model.points[sf]
        return Located(located.model, point, located.address - located.point.offset + point.offset)

    def blank(self) -> list[int]:
        """Every register from ``base``: marker, ids and lengths, every point "not implemented", end model."""
        words = list(MARKER)
        for model in self.models:
            body = [0] * (model.length + 2)
            for point in model.points.values():
                value = point.static
                body[point.offset:point.offset + point.words] = (
                    point.encode(value)[0] if value is not None else unimplemented(point.type, point.words))
            words += body
        return words + [END_MODEL, 0]

    @classmethod
    def scan(cls, read: Callable[[int, int], Sequence[int]], base: int = BASE_ADDRESS, max_models: int = 64) -> SunSpecMap:
        """Discover the models of a device: ``read(address, count)`` returns holding-register words.

        A model that cannot be laid out (a vendor's model without a definition, or a length that does
        not match its definition) is skipped by its length, as SunSpec intends, and noted in ``skipped``.
        """
        marker = list(read(base, 2))
        if marker != list(MARKER):
            raise SunSpecError(f"no SunS marker at {base} (found {marker})")
        models, address, skipped = [], base + 2, {}
        for _ in range(max_models):
            model_id = (list(read(address, 1)) + [0])[0]  # alone: some devices end their map without the end's L
            if model_id == END_MODEL:
                return cls(models, base, skipped)
            length = (list(read(address + 1, 1)) + [0])[0]
            try:
                models.append(ModelLayout.build(model_id, length=length))
            except SunSpecError as exc:
                models.append(ModelLayout.opaque(model_id, length))
                skipped[model_id] = str(exc)
            address += length + 2
        raise SunSpecError(f"no end model after {max_models} models from {base}")

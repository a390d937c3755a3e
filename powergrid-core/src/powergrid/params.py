"""Typed, unit-carrying parameters for plugins (devices, protocols, networks).

A plugin declares its parameters as a frozen attrs class whose fields are made
with :func:`quantity` (a number with a unit and bounds), :func:`integer`,
:func:`choice`, :func:`flag` or :func:`text`. :func:`build_params` turns a YAML
mapping into that class and reports the first bad field by its YAML path::

    @attrs.frozen
    class Params:
        capacity_mwh: float = quantity("MWh", 2.0, gt=0)
        efficiency: float = quantity("1", 0.95, gt=0, le=1)
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import typing
import warnings
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import attrs

from powergrid.errors import ConfigError, PluginError, closest

_MISSING = attrs.NOTHING

#: A limit (MW, MW/h) at or above this is no limit: the default of the limit fields that may be left open.
UNLIMITED = 1e9


def _describe(value: Any) -> str:
    return repr(value) if isinstance(value, str) else f"{value!r}"


@attrs.frozen
class Check:
    """What a field expects: a converter from YAML to Python that raises ``ValueError(expected)``."""

    expected: str
    convert: Callable[[Any], Any]


def _number(unit: str, ge: float | None, gt: float | None, le: float | None, lt: float | None) -> Check:
    bounds = []
    if ge is not None:
        bounds.append(f"≥ {ge}")
    if gt is not None:
        bounds.append(f"> {gt}")
    if le is not None:
        bounds.append(f"≤ {le}")
    if lt is not None:
        bounds.append(f"< {lt}")
    unit_text = "" if unit in ("", "1") else f" {unit}"
    expected = "a number" + (" " + " and ".join(bounds) if bounds else "") + (f" ({unit_text.strip()})" if unit_text else "")

    def convert(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, Real):  # numpy's numbers too, not its bool
            raise ValueError(expected)
        try:
            x = float(value)
        except OverflowError:
            raise ValueError(expected) from None
        if not math.isfinite(x):  # NaN and ±inf are never a parameter
            raise ValueError(expected)
        if (ge is not None and x < ge) or (gt is not None and x <= gt) or (le is not None and x > le) or (lt is not None and x >= lt):
            raise ValueError(expected)
        return x

    return Check(expected, convert)


#: The unit symbols :func:`check_unit` knows; a unit is made of them with ``/``, ``·``, ``*`` or a space, each with an
#: optional power (``²``, ``³``, ``^2``): ``$/MWh``, ``$/MW²h``, ``kW/°C``, ``1/h``, ``m/s``.
UNITS = frozenset({
    "1", "%", "pu", "$", "€", "£", "W", "kW", "MW", "GW", "Wh", "kWh", "MWh", "GWh", "var", "kvar", "Mvar", "Mvarh",
    "VA", "kVA", "MVA", "V", "kV", "A", "kA", "Ω", "ohm", "Hz", "s", "min", "h", "day", "yr", "°C", "°Ch", "K", "deg",
    "rad", "m", "km", "kg", "t", "L", "bar", "J", "kJ", "MJ", "GJ"})


def check_unit(unit: str, *, stacklevel: int = 3) -> None:
    """Refuse an empty ``unit`` (a dimensionless number's is ``"1"``); warn on one not made of :data:`UNITS` (a typo such
    as ``"kWhh"``), at the line of the plugin declaring it."""
    if not isinstance(unit, str) or not unit.strip():
        raise ValueError(f"a parameter's unit: expected one such as 'MW', 'MWh', '$/MWh', 'pu', or '1' for a dimensionless number, "
                         f"got {unit!r}")
    parts = [re.sub(r"\^-?\d+$|[²³]", "", part) for part in re.split(r"[/·*⋅ ]+", unit.strip())]
    unknown = [part for part in parts if part not in UNITS]
    if unknown:
        warnings.warn(f"powergrid: unit {unit!r}: {unknown[0]!r} is not a known unit symbol (known: "
                      f"{', '.join(sorted(UNITS))}, combined with '/', '·', '²'); check it for a typo",
                      stacklevel=stacklevel)


def quantity(unit: str, default: Any = _MISSING, *, ge: float | None = None, gt: float | None = None,
             le: float | None = None, lt: float | None = None, doc: str = "") -> Any:
    """A float field in ``unit`` (``"MW"``, ``"MWh"``, ``"$/MWh"``, ``"pu"``, ``"1"``…, see :func:`check_unit`) with
    bounds."""
    check_unit(unit)
    check = _number(unit, ge, gt, le, lt)
    return _field(check, default, unit, doc)


def integer(default: Any = _MISSING, *, ge: int | None = None, le: int | None = None, doc: str = "") -> Any:
    """An integer field with bounds."""
    text = "an integer" + (f" ≥ {ge}" if ge is not None else "") + (f" ≤ {le}" if le is not None else "")

    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, Integral) or (ge is not None and value < ge) \
                or (le is not None and value > le):  # numpy's integers too, not its bool
            raise ValueError(text)
        return int(value)

    check = Check(text, convert)
    return _field(check, default, "", doc)


def choice(options: Sequence[str], default: Any = _MISSING, *, doc: str = "") -> Any:
    """A string field restricted to ``options``."""
    text = "one of " + ", ".join(repr(o) for o in options)

    def convert(value: Any) -> str:
        if value not in options:
            raise ValueError(text)
        return str(value)

    check = Check(text, convert)
    return _field(check, default, "", doc)


def flag(default: Any = _MISSING, *, doc: str = "") -> Any:
    """A boolean field."""

    def convert(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError("true or false")
        return value

    check = Check("true or false", convert)
    return _field(check, default, "", doc)


def text(default: Any = _MISSING, *, doc: str = "") -> Any:
    """A string field (a name, a profile key); empty only when the default is empty."""
    expected = "a string" if default == "" else "a non-empty string"

    def convert(value: Any) -> str:
        if not isinstance(value, str) or (not value and default != ""):
            raise ValueError(expected)
        return value

    check = Check(expected, convert)
    return _field(check, default, "", doc)


def numbers(unit: str, default: Any = _MISSING, *, ge: float | None = None, le: float | None = None, doc: str = "") -> Any:
    """A list of numbers in ``unit`` (a curve, a schedule), stored as a tuple of floats."""
    check_unit(unit)
    one = _number(unit, ge, None, le, None)
    expected = f"a list of numbers{one.expected.removeprefix('a number')}"

    def convert(value: Any) -> tuple[float, ...]:
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(expected)
        try:
            return tuple(one.convert(v) for v in value)
        except ValueError:
            raise ValueError(expected) from None

    check = Check(expected, convert)
    return _field(check, default, unit, doc)


def _field(check: Check, default: Any, unit: str, doc: str) -> Any:
    """An attrs field converted by ``check``; a default it rejects fails here, where the plugin declares it
    (not later as a bad value of the scenario that left the field out)."""
    if default is not _MISSING and not isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        try:
            check.convert(default)
        except ValueError:
            raise ValueError(f"the default {_describe(default)} is not {check.expected}") from None
    return attrs.field(default=default, converter=_strict(check), metadata={"unit": unit, "check": check, "doc": doc})


def _strict(check: Check) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        return check.convert(value)

    return convert


@attrs.frozen
class NoParams:
    """A plugin without parameters."""


#: Units read off a keyword parameter's name suffix when a function declares no ``Params``.
UNIT_SUFFIXES = {"_pu": "pu", "_kv": "kV", "_mw": "MW", "_mvar": "Mvar", "_mva": "MVA", "_mwh": "MWh",
                 "_km": "km", "_h": "h", "_s": "s", "_hz": "Hz", "_pct": "%", "_percent": "%"}


def params_of(plugin: Any, name: str | None = None) -> type:
    """The parameter class of ``plugin``: its ``Params`` declaration, else one derived from its signature.

    A function's keyword parameters become fields named after the plugin (so errors name it): a
    float default is a number in the unit of the name's suffix (``vm_pu`` → pu, see
    :data:`UNIT_SUFFIXES`), an int an integer, a bool a flag, a str a text; no default: required; a
    ``None`` default: that field (by the annotation, else a number, an integer kept as ``int``) or null.
    """
    declared = getattr(plugin, "Params", None)
    if declared is not None:
        _check_declared(declared, plugin, name)
        return declared
    if not callable(plugin) or isinstance(plugin, type):
        return NoParams
    fields = {}
    for p in inspect.signature(plugin).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            continue
        default = p.default if p.default is not p.empty else _MISSING
        kind = _without_none(p.annotation) if p.annotation is not p.empty else type(default)
        given = _MISSING if default is None else default  # a None default: the field below, or null
        if kind in (bool, "bool"):
            fields[p.name] = flag(given)
        elif kind in (int, "int"):
            fields[p.name] = integer(given)
        elif kind in (str, "str"):
            fields[p.name] = text(given)
        else:
            unit = next((u for suffix, u in UNIT_SUFFIXES.items() if p.name.endswith(suffix)), "1")
            fields[p.name] = quantity(unit, given)
        if default is None:
            check = fields[p.name].metadata["check"]
            convert = _int_or(check.convert) if kind is type(None) else check.convert  # unannotated: int stays int
            fields[p.name] = _field(Check(f"{check.expected} or null", lambda v, c=convert: None if v is None else c(v)),
                                    None, fields[p.name].metadata["unit"], "")
    if not fields:
        return NoParams
    label = name or getattr(plugin, "__name__", "plugin")
    # attrs before 25.2 compiles the class name into generated code: an identifier there, the label ("network 'x'") after
    cls = attrs.make_class(re.sub(r"\W", "_", label), fields, frozen=True)
    cls.__name__ = cls.__qualname__ = label
    return cls


def _check_declared(cls: Any, plugin: Any, name: str | None) -> None:
    """Raise :class:`PluginError` naming the plugin when its ``Params`` is no attrs class (a dataclass), or when attrs
    left annotated attributes out of it: a field without an annotation (``x = quantity(…)``) turns attrs' reading of
    annotations off, so ``y: float = 1.0`` next to it is no field (YAML then gets "unknown parameter y")."""
    if NoParams is cls or (isinstance(cls, type) and attrs.has(cls) and not _not_fields(cls)):
        return
    from powergrid.plugins import origin

    who = origin(plugin)
    if name and name.rsplit(" ", 1)[-1] not in who:  # a plugin no registry built here lists: its name from the caller
        who = f"{name} ({who})"
    what = getattr(cls, "__qualname__", repr(cls))
    if not (isinstance(cls, type) and attrs.has(cls)):
        found = "a dataclass" if dataclasses.is_dataclass(cls) else f"a {type(cls).__name__}" if not isinstance(
            cls, type) else "a plain class"
        raise PluginError(f"{who}: its Params {what} must be an attrs class: @attrs.frozen, fields made with "
                          f"powergrid.params (quantity, integer, choice, flag, text) or annotated; found {found}")
    plain = [f.name for f in attrs.fields(cls) if f.name not in _annotations(cls)]
    raise PluginError(f"{who}: its Params {what} has annotated attributes that are no fields "
                      f"({', '.join(_not_fields(cls))}): attrs ignores annotations once a field has none "
                      f"({', '.join(plain)}); annotate every field, e.g. {plain[0]}: float = quantity(...)")


def _annotations(cls: type) -> dict[str, Any]:
    """The annotations of ``cls`` and its bases, without ClassVars."""
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        found.update(vars(klass).get("__annotations__", {}))
    return {k: v for k, v in found.items() if "ClassVar" not in str(v)}


def _not_fields(cls: type) -> list[str]:
    """The annotated attributes of the attrs class ``cls`` that are not among its fields."""
    fields = attrs.fields_dict(cls)
    return [n for n in _annotations(cls) if n not in fields]


def _int_or(convert: Callable[[Any], float]) -> Callable[[Any], Any]:
    """``convert`` (a number check) returning an integer as an ``int`` (an unannotated keyword defaulting to None
    does not say whether it counts, ``seed=None``, or measures: 3 stays 3, 1.02 stays 1.02)."""

    def keep(value: Any) -> Any:
        x = convert(value)
        return int(value) if isinstance(value, Integral) else x

    return keep


def _without_none(annotation: Any) -> Any:
    """``int`` for ``int | None`` and ``Optional[int]`` (objects or strings); other annotations as they are."""
    if isinstance(annotation, str):
        text = annotation.strip()
        if text.startswith("Optional[") and text.endswith("]"):
            text = text[len("Optional["):-1]
        parts = [part.strip() for part in text.split("|") if part.strip() != "None"]
        return parts[0] if len(parts) == 1 else annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if len(args) == 1 and len(typing.get_args(annotation)) == 2 else annotation


#: The checks of fields made without :func:`quantity` and its kin, by their annotation (for an ``Optional`` one, or
#: ``X | None``, that check or null)
_BY_ANNOTATION: dict[Any, Check] = {
    float: _number("", None, None, None, None),
    int: Check("an integer", integer().metadata["check"].convert),
    bool: Check("true or false", flag().metadata["check"].convert),
    str: Check("a string", lambda v: _is(str, v, "a string")),
}


def _is(kind: type, value: Any, expected: str) -> Any:
    if not isinstance(value, kind):
        raise ValueError(expected)
    return value


def _annotation_check(annotation: Any) -> Check | None:
    """The check of a field made without :func:`quantity` (a plain ``attrs.field`` or annotation) by its type, when that
    is ``float``, ``int``, ``bool`` or ``str``, or one of them or None (objects or strings, as ``from __future__ import
    annotations`` leaves them); None for other annotations (left to the class)."""
    inner = _without_none(annotation)
    optional = inner != (annotation.strip() if isinstance(annotation, str) else annotation)
    check = _BY_ANNOTATION.get(inner) or next((c for k, c in _BY_ANNOTATION.items() if inner == k.__name__), None)
    if check is None or not optional:
        return check
    return Check(f"{check.expected} or null", lambda v: None if v is None else check.convert(v))


def build_params(cls: type, raw: Mapping[str, Any] | None, *, path: str = "params",
                 locate: Callable[[str], tuple[str | None, int | None]] | None = None, owner: str | None = None) -> Any:
    """``cls(**raw)`` with one clear :class:`ConfigError` for an unknown, missing or bad field.

    ``locate(path)`` gives the file and line of a YAML path when the values came from a file;
    ``owner`` names the plugin in messages (default: the class's outer name).
    """
    raw = dict(raw or {})
    fields = {f.name: f for f in attrs.fields(cls)}

    def fail(where: str, message: str) -> ConfigError:
        file, line = locate(where) if locate else (None, None)
        return ConfigError(message, file=file, line=line, path=where)

    for key in raw:
        if key not in fields:
            close = closest(str(key), fields)
            hint = f"did you mean {close!r}? " if close else ""
            known = ", ".join(fields) or "none"
            raise fail(f"{path}.{key}",
                       f"unknown parameter of {owner or cls.__qualname__.split('.')[0]} ({hint}known: {known})")
    values = {}
    for name, field in fields.items():
        check = field.metadata.get("check") or (_annotation_check(field.type) if field.converter is None else None)
        if name not in raw:
            if field.default is attrs.NOTHING:
                raise fail(f"{path}.{name}", f"expected {check.expected if check else 'a value'}, got nothing (required)")
            continue
        value = raw[name]
        if check is not None:
            try:
                value = check.convert(value)
            except ValueError:
                raise fail(f"{path}.{name}", f"expected {check.expected}, got {_describe(value)}") from None
        values[name] = value
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:  # cross-field checks in __attrs_post_init__
        raise fail(path, str(exc)) from None


def describe_params(cls: type) -> list[tuple[str, str, str, str]]:
    """``(name, unit, default, expected)`` of every field, for docs and ``powergrid plugins --params``."""
    rows = []
    for field in attrs.fields(cls):
        check = field.metadata.get("check")
        default = field.default.factory() if isinstance(field.default, attrs.Factory) else field.default  # type: ignore[arg-type]
        default = "required" if default is attrs.NOTHING else repr(default)
        rows.append((field.name, field.metadata.get("unit", ""), default, check.expected if check else ""))
    return rows

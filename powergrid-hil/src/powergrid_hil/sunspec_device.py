"""``SunSpecDevice``: any DER that speaks SunSpec over Modbus, driven like a simulated device.

On its first step (and after every reconnection) the device scans the
equipment: the ``SunS`` marker at ``base_address``, then every model (one
without a definition in pysunspec2, e.g. a vendor's, is skipped by its length). It
controls active power through model 704 (DER AC controls: ``WSetEna`` = 1 and
``WSetMod`` = 1 (watts), then ``WSet`` in W with ``WSet_SF``) and reads

- P and Q from model 701 (``W``, ``Var``) or an inverter model 101/102/103 (``W``, ``VAr``); Q is
  optional: when its value or scale factor is "not implemented" at the scan, Q is not read (0);
- the state of charge (``soc: true``) from model 713 (``SoC``), 802 (``SoC``) or 124 (``ChaState``), in %.

Values are scaled by their scale-factor points: read at the scan when pysunspec2
marks them static, else in the same request as their value each step. Before the first
write after a scan or a reset, ``WSetEna`` and ``WSetMod`` are read and only those
not reading 1 are written (a fixed-mode DER may refuse any write to ``WSetMod``).
Every step also reads them back; a value other than 1 means another client (e.g. a
utility's curtailment) or the DER's reversion timer took the setpoint over. With
``on_override: yield`` (default) the device records it once (a ``yielded`` notice,
not a fault: no safety, ``comm_ok`` unchanged) and writes nothing until both read 1
again (a ``resumed`` notice; ``WSetEna`` alone on equipment without ``WSetMod``), or
until a reset or a rescan takes it back (a ``taken_back`` notice); P/Q are still measured. A setpoint ``WSet`` cannot hold is an
``out_of_range`` fault at a step that writes it, never while yielded (nothing is written).
With ``on_override: rewrite`` it is an ``overridden`` fault each time and the changed
points are written again at once. A "not implemented" value, a value outside the plausible range (|P| above
``plausible_factor`` times the setpoint limits, SOC outside 0–100 %) or a
reply of the wrong length is a fault, handled like a lost answer (see
:mod:`powergrid_hil.device`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import attrs

from powergrid.params import choice, flag, integer
from powergrid_hil.client import CommError
from powergrid_hil.device import LinkedDevice, LinkParams
from powergrid_hil.registers import CLAMPED, MALFORMED, NOT_AVAILABLE, Reading
from powergrid_hil.sunspec import BASE_ADDRESS, Located, SunSpecError, SunSpecMap

W_PER_MW = 1e6

#: (model, P point, Q point) in order of preference
MEASUREMENTS = ((701, "W", "Var"), (103, "W", "VAr"), (102, "W", "VAr"), (101, "W", "VAr"))
#: (model, SOC point) in order of preference; SOC in %
STATES_OF_CHARGE = ((713, "SoC"), (802, "SoC"), (124, "ChaState"))
MAX_READ = 125  # registers in one read request (Modbus limit)


@attrs.frozen
class SunSpecDeviceParams(LinkParams):
    base_address: int = integer(BASE_ADDRESS, ge=0, le=65535, doc="holding register of the SunS marker")
    soc: bool = flag(False, doc="read the state of charge (storage: model 713, 802 or 124)")
    on_override: str = choice(("yield", "rewrite"), "yield",
                              doc="another controller cleared WSetEna/WSetMod: stop writing until they read 1 again "
                                  "(yield), or write them again each step as a fault (rewrite)")


@attrs.frozen
class Points:
    """The points a scan found, with their scale-factor exponents."""

    setpoint: Located
    enable: Located
    mode: Located | None  # WSetMod, None when not implemented (watts only)
    p: Located
    q: Located | None
    soc: Located | None
    exponents: dict[str, int]  # of the static scale factors, read at the scan
    scales: dict[str, Located]  # the scale factors read with their value each step

    def control(self) -> list[tuple[str, Located]]:
        return [("WSetEna", self.enable)] + ([("WSetMod", self.mode)] if self.mode is not None else [])

    def controls_read(self) -> str:
        """"WSetEna reads" or "WSetEna and WSetMod read": the control points the equipment has, for notices."""
        return "WSetEna and WSetMod read" if self.mode is not None else "WSetEna reads"


class SunSpecDevice(LinkedDevice):
    """A SunSpec DER behind Modbus: P setpoint through model 704, P/Q (and SOC) measured."""

    Params = SunSpecDeviceParams

    def __init__(self, params: SunSpecDeviceParams, dt_h: float, clock: Any = time.monotonic) -> None:
        self.reads_soc = params.soc
        super().__init__(params, dt_h, clock)
        self.map: SunSpecMap | None = None
        self.points: Points | None = None
        self._scanned_at_reconnect = -1
        self._control_checked = False  # WSetEna/WSetMod read since the last scan or reset
        self._to_write: list[tuple[str, Located]] = []  # control points to write with the next WSet
        self.yielded = False  # another controller has the setpoint: nothing written

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["map"] = state["points"] = None
        state["_scanned_at_reconnect"] = -1
        return state

    # ------------------------------------------------------------------ scan
    def _read(self, address: int, count: int) -> list[int]:
        words = self.link.read_words("holding", address, count)
        if len(words) != count:
            raise CommError(f"read {address}+{count}: {len(words)} registers in the reply", MALFORMED)
        return words

    def scan(self) -> Points:
        """Discover the models and read the scale factors (again after a reconnection)."""
        link = self.link
        if self.points is not None and self._scanned_at_reconnect == link.reconnects and link.connected:
            return self.points
        try:
            found = SunSpecMap.scan(self._read, base=self.params.base_address)
        except SunSpecError as exc:
            raise CommError(f"SunSpec scan: {exc}", "not_sunspec") from None
        skipped = "".join(f"; skipped model {m}: {why}" for m, why in found.skipped.items())
        if not found.has(704):
            raise CommError(f"SunSpec scan: no model 704 (DER AC controls) to write a setpoint to{skipped}", "not_sunspec")
        measured = next(((m, p, q) for m, p, q in MEASUREMENTS if found.has(m)), None)
        if measured is None:
            raise CommError(f"SunSpec scan: no measurement model (701, 101–103){skipped}", "not_sunspec")
        model, p_name, q_name = measured
        q = found.find(model, q_name)
        if not self._implemented(found, q):  # Q is optional in SunSpec: equipment without it measures P only
            q = None
        soc = None
        if self.reads_soc:
            where = next(((m, name) for m, name in STATES_OF_CHARGE if found.has(m)), None)
            if where is None:
                raise CommError(f"SunSpec scan: soc: true but no storage model (713, 802, 124){skipped}", "not_sunspec")
            soc = found.find(*where)
        mode = found.find(704, "WSetMod")
        mode = mode if self._implemented(found, mode) else None
        points = Points(found.find(704, "WSet"), found.find(704, "WSetEna"), mode, found.find(model, p_name), q, soc,
                        {}, {})
        for name in ("setpoint", "p", "q", "soc"):
            located = getattr(points, name)
            scale = found.scale_of(located) if located is not None else None
            if scale is not None:
                flag, detail, exponent = _exponent(scale, self._read(scale.address, 1))
                if flag:
                    raise CommError(f"SunSpec scan: {detail}", flag)
                points.exponents[name] = exponent
                if not scale.point.constant and name != "setpoint":  # e.g. model 103's W_SF: may change at run time
                    points.scales[name] = scale
        self.map, self.points, self._scanned_at_reconnect = found, points, link.reconnects
        self._control_checked = False  # a rescan takes the setpoint back (yielded: with a notice)
        return points

    def _implemented(self, found: SunSpecMap, located: Located) -> bool:
        """Whether the device implements ``located``: its value and its scale factor are not the "not implemented" pattern."""
        scale = found.scale_of(located)
        return all(x.point.decode(self._read(x.address, x.point.words)) is not None
                   for x in (located, scale) if x is not None)

    # ------------------------------------------------------------------ exchange
    def _read_points(self, located: list[tuple[str, Located]]) -> dict[int, int]:
        """The holding words of every point in ``located``, read in as few requests as fit (``MAX_READ`` each).

        A failed request raises :class:`CommError` tagged with the first value it was for.
        """
        image: dict[int, int] = {}
        spans = sorted((x.address, x.address + x.point.words, name) for name, x in located)
        groups: list[list[tuple[int, int, str]]] = []
        for span in spans:
            if groups and span[1] - groups[-1][0][0] <= MAX_READ:
                groups[-1].append(span)
            else:
                groups.append([span])
        for group in groups:
            first, last = group[0][0], max(end for _, end, _ in group)
            try:
                image.update(zip(range(first, last), self._read(first, last - first)))
            except CommError as exc:
                raise exc.tag("read", group[0][2]) from None
        return image

    def reset(self, rng: Any) -> None:
        super().reset(rng)
        self._control_checked = False  # take the setpoint back (yielded: with a notice): read the controls first

    def write_setpoint(self, mw: float) -> bool:
        """Write ``WSet`` only: not while another controller has the setpoint (yielded), nor before a scan of this
        connection (the addresses are unknown, or may have changed with the equipment)."""
        points = self.points
        if points is None or self.yielded or self._scanned_at_reconnect != self.link.reconnects:
            return False
        words, _ = points.setpoint.point.encode(mw * W_PER_MW, points.exponents.get("setpoint", 0))
        self.link.write_words(points.setpoint.address, words)
        return True

    def _write(self, setpoint: list[int], control: list[tuple[str, Located]]) -> bool:
        """Write ``WSet``, and 1 to the ``control`` points, contiguous runs in one request each; False (recorded)
        when the device refuses one (an exception response: the link is sound, so the step still measures)."""
        points = self.points
        words = dict(zip(points.setpoint.addresses, setpoint))  # type: ignore[union-attr]
        names = dict.fromkeys(points.setpoint.addresses, "WSet")  # type: ignore[union-attr]
        for name, located in control:
            words.update(zip(located.addresses, located.point.encode(1)[0]))
            names.update(dict.fromkeys(located.addresses, name))
        runs: list[list[int]] = []
        for address in sorted(words):
            if runs and address == runs[-1][-1] + 1:
                runs[-1].append(address)
            else:
                runs.append([address])
        for run in runs:
            try:
                self.link.write_words(run[0], [words[a] for a in run])
            except CommError as exc:
                if not exc.refused:
                    raise exc.tag("write", "setpoint", self.setpoint_mw) from None
                refused = ", ".join(dict.fromkeys(names[a] for a in run))
                self.record("write", "setpoint", exc.kind, f"{refused} refused: {exc}", self.setpoint_mw)
                return False
        return True

    def _value(self, name: str, located: Located, image: dict[int, int], low: float, high: float) -> float | None:
        """A point's value in ``[low, high]``, or None (recorded) when not implemented or out of range."""
        points = self.points
        exponent = points.exponents.get(name, 0)  # type: ignore[union-attr]
        scale = points.scales.get(name)  # type: ignore[union-attr]
        if scale is not None:
            flag, detail, exponent = _exponent(scale, [image[a] for a in scale.addresses])
            if flag:
                return self.reading(name, Reading(math.nan, flag, detail))
        words = [image[a] for a in located.addresses]
        value = located.point.decode(words, exponent)
        if value is None:
            return self.reading(name, Reading(math.nan, NOT_AVAILABLE, f"{located.point.name} not implemented "
                                              f"({_hex(words)})"))
        if low <= value <= high:
            return self.reading(name, Reading(float(value)))
        return self.reading(name, Reading(float(value), CLAMPED, f"read {value:g}, outside [{low:g}, {high:g}]"))

    def exchange(self) -> tuple[float | None, float | None, float | None]:
        try:
            points = self.scan()
        except CommError as exc:
            raise exc.tag("read", "scan") from None
        setpoint, clamped = points.setpoint.point.encode(self.setpoint_mw * W_PER_MW, points.exponents.get("setpoint", 0))
        if not self._control_checked:  # after a scan or a reset: write only the controls not reading 1
            image = self._read_points(points.control())
            self._to_write = _not_one(points, image)
            self._control_checked = True
            if self.yielded and self._to_write:  # another controller still has it: taken back, said so
                self.yielded = False
                said = ", ".join(f"{name} = {_words(x, image)}" for name, x in self._to_write)
                self.record("write", "setpoint", "taken_back", f"read {said} after a reset or a reconnection while "
                            "another controller had the setpoint: written 1", self.setpoint_mw, fault=False)
        refused = False  # the device refused our write: its read-back says nothing of another controller
        if not self.yielded:  # yielded: nothing is written, so a setpoint WSet cannot hold is no fault
            if clamped:
                self.record("write", "setpoint", CLAMPED, f"WSet {self.setpoint_mw} MW does not fit", self.setpoint_mw)
            refused = not self._write(setpoint, self._to_write)
            if not refused:
                self._to_write = []
        reads = [("p", points.p), ("q", points.q), ("soc", points.soc), *points.control()]
        reads += [(name, scale) for name, scale in points.scales.items()]
        image = self._read_points([(name, x) for name, x in reads if x is not None])
        changed = _not_one(points, image)
        said = ", ".join(f"{name} = {_words(x, image)}" for name, x in changed)
        if self.yielded and not changed:
            self.yielded = False
            self.record("write", "setpoint", "resumed", f"{points.controls_read()} 1 again: the setpoint is written "
                        "from the next step", fault=False)
        elif changed and not self.yielded and not refused:  # another client or the DER's reversion timer took over
            if self.params.on_override == "rewrite":
                self.record("write", "setpoint", "overridden", f"read back {said} (written 1): written again",
                            self.setpoint_mw)
                self._write(setpoint, changed)
            else:
                self.yielded = True
                self.record("write", "setpoint", "yielded", f"read back {said} (written 1): another controller has "
                            f"the setpoint; nothing written until {points.controls_read()} 1 again", self.setpoint_mw, fault=False)
        limit = self.plausible_mw * W_PER_MW
        p = self._value("p", points.p, image, -limit, limit)
        q = None if points.q is None else self._value("q", points.q, image, -limit, limit)
        pct = None if points.soc is None else self._value("soc", points.soc, image, 0.0, 100.0)
        soc = None if pct is None else pct / 100.0
        if p is None or (points.q is not None and q is None):
            return None, None, soc
        return p / W_PER_MW, (q or 0.0) / W_PER_MW, soc

    def state_dict(self) -> dict[str, float]:
        return {**super().state_dict(), "yielded": float(self.yielded)}


def _words(located: Located, image: dict[int, int]) -> int | list[int]:
    words = [image[a] for a in located.addresses]
    return words[0] if len(words) == 1 else words


def _not_one(points: Points, image: dict[int, int]) -> list[tuple[str, Located]]:
    """The control points whose words in ``image`` are not 1."""
    return [(name, x) for name, x in points.control() if [image[a] for a in x.addresses] != x.point.encode(1)[0]]


def _hex(words: list[int]) -> str:
    return " ".join(f"0x{w:04X}" for w in words)


def _exponent(scale: Located, words: list[int]) -> tuple[str, str, int]:
    """``(flag, detail, exponent)`` of a scale-factor point's words (flag "" when good)."""
    exponent = scale.point.decode(words)
    if exponent is None:
        return NOT_AVAILABLE, f"scale factor {scale.point.name} not implemented ({_hex(words)})", 0
    if not -10 <= int(exponent) <= 10:  # SunSpec's range; beyond it 10**sf overflows or is 0
        return MALFORMED, f"scale factor {scale.point.name} = {int(exponent)} is outside -10..10", 0
    return "", "", int(exponent)

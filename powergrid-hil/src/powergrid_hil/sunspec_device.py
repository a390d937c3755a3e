"""``SunSpecDevice``: any DER that speaks SunSpec over Modbus, driven like a simulated device.

On its first step (and after every reconnection) the device scans the
equipment: the ``SunS`` marker at ``base_address``, then every model (one
without a definition in pysunspec2, e.g. a vendor's, is skipped by its length). It
controls active power through model 704 (DER AC controls: ``WSetEna`` = 1, then
``WSet`` in W with ``WSet_SF``) and reads

- P and Q from model 701 (``W``, ``Var``) or an inverter model 101/102/103 (``W``, ``VAr``); Q is
  optional: when its value or scale factor is "not implemented" at the scan, Q is not read (0);
- the state of charge (``soc: true``) from model 713 (``SoC``), 802 (``SoC``) or 124 (``ChaState``), in %.

Values are scaled by their scale-factor points (read at the scan). A
"not implemented" value, a value outside the plausible range (|P| above
``plausible_factor`` times the setpoint limits, SOC outside 0–100 %) or a
reply of the wrong length is a fault, handled like a lost answer (see
:mod:`powergrid_hil.device`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import attrs

from powergrid.params import flag, integer
from powergrid_hil.client import CommError
from powergrid_hil.device import LinkedDevice, LinkParams
from powergrid_hil.registers import CLAMPED, MALFORMED, NOT_AVAILABLE, Reading
from powergrid_hil.sunspec import BASE_ADDRESS, Located, SunSpecError, SunSpecMap

W_PER_MW = 1e6

#: (model, P point, Q point) in order of preference
MEASUREMENTS = ((701, "W", "Var"), (103, "W", "VAr"), (102, "W", "VAr"), (101, "W", "VAr"))
#: (model, SOC point) in order of preference; SOC in %
STATES_OF_CHARGE = ((713, "SoC"), (802, "SoC"), (124, "ChaState"))


@attrs.frozen
class SunSpecDeviceParams(LinkParams):
    base_address: int = integer(BASE_ADDRESS, ge=0, le=65535, doc="holding register of the SunS marker")
    soc: bool = flag(False, doc="read the state of charge (storage: model 713, 802 or 124)")


@attrs.frozen
class Points:
    """The points a scan found, with their scale-factor exponents."""

    setpoint: Located
    enable: Located
    p: Located
    q: Located | None
    soc: Located | None
    exponents: dict[str, int]


class SunSpecDevice(LinkedDevice):
    """A SunSpec DER behind Modbus: P setpoint through model 704, P/Q (and SOC) measured."""

    Params = SunSpecDeviceParams

    def __init__(self, params: SunSpecDeviceParams, dt_h: float, clock: Any = time.monotonic) -> None:
        self.reads_soc = params.soc
        super().__init__(params, dt_h, clock)
        self.map: SunSpecMap | None = None
        self.points: Points | None = None
        self._scanned_at_reconnect = -1
        self._enabled = False  # WSetEna written since the last scan

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
        points = Points(found.find(704, "WSet"), found.find(704, "WSetEna"), found.find(model, p_name), q, soc, {})
        for name in ("setpoint", "p", "q", "soc"):
            located = getattr(points, name)
            scale = found.scale_of(located) if located is not None else None
            if scale is not None:
                exponent = scale.point.decode(self._read(scale.address, 1))
                if exponent is None:
                    raise CommError(f"SunSpec scan: scale factor {scale.point.name} not implemented", NOT_AVAILABLE)
                if not -10 <= int(exponent) <= 10:  # SunSpec's range; beyond it 10**sf overflows or is 0
                    raise CommError(f"SunSpec scan: scale factor {scale.point.name} = {int(exponent)} is outside "
                                    f"-10..10", MALFORMED)
                points.exponents[name] = int(exponent)
        self.map, self.points, self._scanned_at_reconnect = found, points, link.reconnects
        self._enabled = False
        return points

    def _implemented(self, found: SunSpecMap, located: Located) -> bool:
        """Whether the device implements ``located``: its value and its scale factor are not the "not implemented" pattern."""
        scale = found.scale_of(located)
        return all(x.point.decode(self._read(x.address, x.point.words)) is not None
                   for x in (located, scale) if x is not None)

    # ------------------------------------------------------------------ exchange
    def _value(self, name: str, located: Located, words: list[int], low: float, high: float) -> float | None:
        """A point's value in ``[low, high]``, or None (recorded) when not implemented or out of range."""
        value = located.point.decode(words, self.points.exponents.get(name, 0))  # type: ignore[union-attr]
        if value is None:
            return self.reading(name, Reading(math.nan, NOT_AVAILABLE))
        if low <= value <= high:
            return self.reading(name, Reading(float(value)))
        return self.reading(name, Reading(float(value), CLAMPED, f"read {value:g}, outside [{low:g}, {high:g}]"))

    def exchange(self) -> tuple[float | None, float | None, float | None]:
        try:
            points = self.scan()
        except CommError as exc:
            raise exc.tag("read", "scan") from None
        link = self.link
        try:
            if not self._enabled:
                link.write_words(points.enable.address, points.enable.point.encode(1)[0])
                self._enabled = True
            words, clamped = points.setpoint.point.encode(self.setpoint_mw * W_PER_MW, points.exponents.get("setpoint", 0))
            if clamped:
                self.record("write", "setpoint", CLAMPED, f"WSet {self.setpoint_mw} MW does not fit", self.setpoint_mw)
            link.write_words(points.setpoint.address, words)
        except CommError as exc:
            raise exc.tag("write", "setpoint", self.setpoint_mw) from None
        limit = self.plausible_mw * W_PER_MW
        measured = [points.p] + ([points.q] if points.q is not None else [])
        first = min(x.address for x in measured)
        count = max(x.address + x.point.words for x in measured) - first
        try:
            words = self._read(first, count)
        except CommError as exc:
            raise exc.tag("read", "p") from None
        p = self._value("p", points.p, words[points.p.address - first:][:points.p.point.words], -limit, limit)
        q = None
        if points.q is not None:
            q = self._value("q", points.q, words[points.q.address - first:][:points.q.point.words], -limit, limit)
        soc = None
        if points.soc is not None:
            try:
                soc_words = self._read(points.soc.address, points.soc.point.words)
            except CommError as exc:
                raise exc.tag("read", "soc") from None
            pct = self._value("soc", points.soc, soc_words, 0.0, 100.0)
            soc = None if pct is None else pct / 100.0
        if p is None or (points.q is not None and q is None):
            return None, None, soc
        return p / W_PER_MW, (q or 0.0) / W_PER_MW, soc

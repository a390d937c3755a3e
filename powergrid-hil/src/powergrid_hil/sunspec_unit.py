"""A simulated device served as a SunSpec DER: its models chosen by what the device is.

Every device gets the ``SunS`` marker at 40000, common model 1 (manufacturer
``PowerGrid``, model = device type, serial number = agent id, device address =
unit id) and model 701 (DER AC measurement: ``ACType`` 2, three phase, as the
networks are; ``W``, ``Var``, ``VA``; W > 0 generates; a grid connection's ``W`` is
its import, its ``Var`` and ``VA`` not implemented). Then, by device:

- a rating (``p_max_mw`` or ``rated_mw``): model 702 (DER capacity ``WMaxRtg``, ``WMax``);
- controls (``controls=True``): model 704 (DER AC controls). Writable points by
  action entry: ``p`` (MW) ← ``WSetEna``/``WSet`` (W, ``WSetMod`` fixed at 1 =
  watts: a write of another mode is refused); ``f`` (fraction of the available power) ←
  ``WMaxLimPctEna``/``WMaxLimPct``, as SunSpec defines it: a cap on the output in % of
  ``WMax`` (model 702, the rating), so ``f·P_av = min(P_av, WMaxLimPct·WMax)`` with ``P_av``
  the power available at the step; ``q`` (Mvar) ← ``VarSetEna``/``VarSet``
  (var, ``VarSetMod`` fixed at 4 = vars). A ``WSet`` or ``VarSet`` outside the
  device's range for that entry (its action space) is refused (exception 3), never
  clipped. A disabled control gives the device its default action for that entry;
- a state of charge (``soc`` and ``capacity_mwh``): model 713 (DER storage
  capacity: ``WHRtg``, ``WHAvail``, ``SoC`` %, ``SoH``) and the charge/discharge
  rates of model 702 (``WChaRteMaxRtg``, ``WDisChaRteMaxRtg``, ``WChaRteMax``,
  ``WDisChaRteMax``). Not model 802 (battery): its mandatory points include the DC
  voltage and current and the amp-hour rating, which PowerGrid does not model;
- a curtailment action ``f`` (PV, wind): model 160 (MPPT) with one module
  (a repeating group), ``DCW`` = the power produced.

Every point that pysunspec2's model definitions mark mandatory is served with a
value. Scale factors are chosen per device so the rating fits the point type with the
finest resolution. Other points PowerGrid does not model stay "not implemented", and
so does a measurement beyond its point's range (never a clamped value).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from powergrid.devices import Device, StepContext
from powergrid.params import UNLIMITED
from powergrid_hil.server import ILLEGAL_VALUE, Unit, measured
from powergrid_hil.sunspec import BASE_ADDRESS, Located, ModelLayout, SunSpecMap, best_exponent, unimplemented

W_PER_MW = 1e6
MANUFACTURER = "PowerGrid"
#: action entry → (enable point, value point, model value → action value)
CONTROLS = {
    "p": ("WSetEna", "WSet", lambda w: w / W_PER_MW),
    "f": ("WMaxLimPctEna", "WMaxLimPct", None),  # a cap in % of WMax: see SunSpecUnit.action
    "q": ("VarSetEna", "VarSet", lambda var: var / W_PER_MW),
}
#: action entry → (mode point, the one mode served: watts, vars); a client may write it, with that value only
MODES = {"p": ("WSetMod", 1), "q": ("VarSetMod", 4)}


def rating_mw(device: Device) -> float:
    """The device's power rating (MW): ``p_max_mw``, ``rated_mw``, a grid connection's larger import/export
    limit, else the largest action bound, else 1."""
    params = device.params
    for name in ("p_max_mw", "rated_mw", "s_max_mva"):
        value = getattr(params, name, None) or getattr(device, name, None)
        if value:
            return float(value)
    limits = [float(getattr(params, name, 0.0) or 0.0) for name in ("import_limit_mw", "export_limit_mw")]
    limits = [x for x in limits if 0.0 < x < UNLIMITED]
    if limits:
        return max(limits)
    high = getattr(device.action_space, "high", None)
    if high is not None and high.size and np.all(np.isfinite(high)) and float(np.max(np.abs(high))) > 0:
        return float(np.max(np.abs(high)))
    return 1.0


def action_names(device: Device) -> tuple[str, ...]:
    """Names of the device's action entries (``("p",)`` for a one-entry Box without names)."""
    names = getattr(getattr(device, "actions", None), "names", None)
    if names:
        return tuple(names)
    size = int(np.prod(getattr(device.action_space, "shape", None) or (1,)))
    return ("p",) + tuple(f"a{i}" for i in range(1, size)) if size else ()


class SunSpecUnit(Unit):
    """``device`` as a SunSpec DER (see the module docstring for the models)."""

    def __init__(self, device: Device, *, name: str = "", unit_id: int = 1, controls: bool = True,
                 base: int = BASE_ADDRESS) -> None:
        self.names = action_names(device)
        self.rating_w = rating_mw(device) * W_PER_MW
        self.storage = hasattr(device, "soc") and hasattr(device.params, "capacity_mwh")
        self.controls = {n: CONTROLS[n] for n in self.names if n in CONTROLS} if controls else {}
        models = [ModelLayout.build(1), ModelLayout.build(701), ModelLayout.build(702)]
        if self.controls:
            models.append(ModelLayout.build(704))
        if self.storage:
            models.append(ModelLayout.build(713))
        if "f" in self.names:
            models.append(ModelLayout.build(160, repeats={"module": 1}))
        self.map = SunSpecMap(models, base)
        points = [self.map.find(704, point).addresses for name, (enable, value, _) in self.controls.items()
                  for point in (enable, value, *MODES.get(name, ())[:1])]
        super().__init__(device, {"holding": (base, self.map.blank())}, [a for p in points for a in p], points)
        #: action entry → the device's range of its value point (W, var): a write outside it is refused
        low, high = (np.asarray(getattr(device.action_space, b, []), np.float64).reshape(-1) for b in ("low", "high"))
        self.ranges = {name: (low[i] * W_PER_MW, high[i] * W_PER_MW) for i, name in enumerate(self.names)
                       if name in ("p", "q") and name in self.controls and i < low.size}
        self.exponents: dict[tuple[int, str], int] = {}
        self._static(name or type(device).__name__, unit_id)
        self.enabled = dict.fromkeys(self.controls, False)
        self.values = dict.fromkeys(self.controls, 0.0)
        self.publish()

    # ------------------------------------------------------------------ image
    def set(self, model_id: int, name: str, value: Any, *, measurement: bool = False) -> None:
        """Write point ``name`` of ``model_id`` in engineering units (its scale factor applied).

        A ``measurement`` that does not fit the point is served "not implemented", never clamped.
        """
        located = self.map.find(model_id, name)
        sf = located.point.sf
        exponent = self.exponents.get((model_id, sf), 0) if isinstance(sf, str) else (sf or 0)
        words, clamped = located.point.encode(value, exponent)
        if measurement and clamped:
            words = unimplemented(located.point.type, located.point.words)
        self.put("holding", located.address, words)

    def get(self, model_id: int, name: str, image: list[int] | None = None) -> Any:
        """The value of a point (scaled), from the image or from ``image`` (a staged copy)."""
        located = self.map.find(model_id, name)
        words = image[located.address - self.map.base:][:located.point.words] if image is not None else \
            self.words("holding", located.address, located.point.words)
        sf = located.point.sf
        exponent = self.exponents.get((model_id, sf), 0) if isinstance(sf, str) else (sf or 0)
        return located.point.decode(words or [], exponent)

    def _scale(self, model_id: int, sf: str, point_type: str, largest: float) -> None:
        exponent = best_exponent(point_type, largest)
        self.exponents[(model_id, sf)] = exponent
        self.set(model_id, sf, exponent)

    def _static(self, name: str, unit_id: int) -> None:
        from powergrid_hil import __version__

        for point, value in (("Mn", MANUFACTURER), ("Md", type(self.device).__name__), ("Vr", __version__),
                             ("SN", name), ("DA", unit_id)):
            self.set(1, point, value)
        rating, headroom = self.rating_w, 1.1 * self.rating_w
        self.set(701, "ACType", 2)  # three phase (mandatory in 701)
        self._scale(701, "W_SF", "int16", headroom)
        self._scale(701, "Var_SF", "int16", headroom)
        self._scale(701, "VA_SF", "int16", headroom)
        self._scale(702, "W_SF", "uint16", headroom)
        self.set(702, "WMaxRtg", rating)
        self.set(702, "WMax", rating)
        if self.controls:
            self._scale(704, "WSet_SF", "int32", headroom)
            self._scale(704, "VarSet_SF", "int32", headroom)
            self._scale(704, "WMaxLimPct_SF", "uint16", 100.0)
            for point, mode in MODES.values():
                self.set(704, point, mode)
        if self.storage:
            p = self.device.params
            wh = p.capacity_mwh * W_PER_MW
            self._scale(713, "WH_SF", "uint16", wh)
            self._scale(713, "Pct_SF", "uint16", 100.0)
            self.set(713, "WHRtg", wh)
            self.set(713, "SoH", 100.0)
            for point in ("WChaRteMaxRtg", "WDisChaRteMaxRtg", "WChaRteMax", "WDisChaRteMax"):
                self.set(702, point, rating)
        if "f" in self.names:
            self._scale(160, "DCW_SF", "uint16", headroom)
            self.set(160, "N", 1)
            self.set(160, "module[1].ID", 1)
            self.set(160, "module[1].IDStr", "array")

    def publish(self) -> None:
        d = self.device
        p_mw, q_mvar = measured(d)
        p_w = p_mw * W_PER_MW
        q_var = None if q_mvar is None else q_mvar * W_PER_MW
        self.set(701, "W", p_w, measurement=True)
        self.set(701, "Var", q_var, measurement=True)
        self.set(701, "VA", None if q_var is None else math.hypot(p_w, q_var), measurement=True)
        for name, (enable, value, _) in self.controls.items():
            self.set(704, enable, int(self.enabled[name]))
            self.set(704, value, self.values[name])
        if self.storage:
            soc = float(d.soc)
            self.set(713, "SoC", 100.0 * soc)
            self.set(713, "WHAvail", soc * d.params.capacity_mwh * W_PER_MW)
        if "f" in self.names:
            self.set(160, "module[1].DCW", max(p_w, 0.0), measurement=True)

    # ------------------------------------------------------------------ writes
    def accept(self, address: int, words: list[int]) -> int | None:
        base = self.map.base
        staged = list(self.tables["holding"][1])
        staged[address - base:address - base + len(words)] = words
        enabled, values = dict(self.enabled), dict(self.values)
        written = range(address, address + len(words))
        for name, (enable, value, _) in self.controls.items():
            flag = self.get(704, enable, staged)
            if flag not in (0, 1):
                return ILLEGAL_VALUE
            amount = self.get(704, value, staged)
            if amount is None and flag == 1:
                return ILLEGAL_VALUE
            mode = MODES.get(name)
            if mode and self.located(704, mode[0]).address in written and self.get(704, mode[0], staged) != mode[1]:
                return ILLEGAL_VALUE
            if amount is not None and name in self.ranges and self.located(704, value).address in written:
                low, high = self.ranges[name]
                step = 10.0 ** self.exponents.get((704, self.located(704, value).point.sf), 0)
                if not low - step <= float(amount) <= high + step:  # beyond the rating: refused, never clipped
                    return ILLEGAL_VALUE
            enabled[name] = bool(flag)
            values[name] = 0.0 if amount is None else float(amount)
        if "f" in self.controls and not 0.0 <= values["f"] <= 100.0:
            return ILLEGAL_VALUE
        self.tables["holding"][1][:] = staged
        self.enabled, self.values = enabled, values
        return None

    def action(self, ctx: StepContext) -> Any:
        device = self.device
        shape = getattr(device.action_space, "shape", None) or (len(self.names),)
        default = device.default_action
        action = np.asarray(default, np.float32).reshape(shape).copy() if default.size else np.zeros(shape, np.float32)
        flat = action.reshape(-1)
        for i, name in enumerate(self.names):
            if name not in self.controls or not self.enabled[name]:
                continue
            if name == "f":  # the fraction of P_av (MW available at the step) that the cap WMaxLimPct·WMax leaves
                cap, available = self.values[name] / 100.0 * self.rating_w / W_PER_MW, device.available_now(ctx)
                flat[i] = 1.0 if available <= cap else cap / available
            else:
                flat[i] = self.controls[name][2](self.values[name])
        return action

    def located(self, model_id: int, name: str) -> Located:
        """Where point ``name`` of ``model_id`` is (for clients and tests)."""
        return self.map.find(model_id, name)

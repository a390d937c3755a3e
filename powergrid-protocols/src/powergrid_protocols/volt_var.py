"""IEEE 1547-2018 volt–var: the curve and the apparent-power limit (pure functions) and the
environment adapter :class:`VoltVar`.

**Curve** (IEEE 1547-2018 §5.3.3, Category B default): reactive power as a
piecewise-linear function of the voltage at the terminal, in per unit of the
rated apparent power, flat beyond the end points::

    V (pu):  V1 = 0.92   V2 = 0.98   V3 = 1.02   V4 = 1.08
    Q (pu):  Q1 = +0.44  Q2 = 0      Q3 = 0      Q4 = −0.44

``Q > 0`` injects reactive power (raises the voltage, at low V); ``Q < 0``
absorbs (at high V). Generator convention, as every device in PowerGrid.

**Apparent-power limit**: an inverter never exceeds its rating, ``P² + Q² ≤ S²``.
IEEE 1547-2018 asks a Category B DER for reactive power of 44 % of its nameplate
apparent power also when it produces its rated active power; a unit whose S rating
equals its P rating meets that only by giving up active power (at full output,
``Q = 0.44·S`` alone would need ``√(1 + 0.44²) = 1.093·S``).
The standard leaves which one yields to the unit's settings, so both are offered:

- ``reactive`` priority: Q follows the curve (``|Q| ≤ S``) and P is curtailed to
  ``√(S² − Q²)``;
- ``active`` priority: P is kept (``|P| ≤ S``) and Q is clipped to ``√(S² − P²)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from powergrid import scaling
from powergrid.devices import StepContext
from powergrid.params import choice, quantity, text
from powergrid.protocols import HorizontalProtocol
from powergrid.scaling import Feature
from powergrid.solvers.base import PowerFlowResult
from powergrid_protocols.common import (
    INVERTER_TYPES,
    check_kinds,
    devices_of,
    finite_or,
    is_renewable,
    project_pending,
    q_setpoint,
    q_step_field,
    step_q,
)

#: IEEE 1547-2018 Category B default volt-var curve: ((V1, Q1), (V2, Q2), (V3, Q3), (V4, Q4)).
IEEE1547_CAT_B = ((0.92, 0.44), (0.98, 0.0), (1.02, 0.0), (1.08, -0.44))
#: IEEE 1547-2018 Category A default curve (V2 = V3 = 1.0, Q = ±0.25).
IEEE1547_CAT_A = ((0.90, 0.25), (1.00, 0.0), (1.00, 0.0), (1.10, -0.25))


def volt_var_q(v_pu: float | np.ndarray, curve: Sequence[tuple[float, float]] = IEEE1547_CAT_B) -> np.ndarray:
    """Reactive power (pu of rated apparent power) at voltage ``v_pu`` on a piecewise-linear ``curve``."""
    vs = np.array([p[0] for p in curve], float)
    qs = np.array([p[1] for p in curve], float)
    if np.any(np.diff(vs) < 0):
        raise ValueError(f"curve voltages must be non-decreasing, got {vs}")
    v = np.asarray(v_pu, float)
    out = np.interp(v, vs, qs)  # constant beyond the end points
    return out


def check_curve(curve: Sequence[tuple[float, float]]) -> None:
    """Raise ValueError unless the curve is a 1547-style monotone (non-increasing Q) curve."""
    vs = [p[0] for p in curve]
    qs = [p[1] for p in curve]
    if any(b < a for a, b in zip(vs, vs[1:])):
        raise ValueError(f"expected V1 ≤ V2 ≤ V3 ≤ V4, got {vs}")
    if any(b > a for a, b in zip(qs, qs[1:])):
        raise ValueError(f"expected Q1 ≥ Q2 ≥ Q3 ≥ Q4 (inject at low V, absorb at high V), got {qs}")


def apparent_power_limit(p_mw: float, q_mvar: float, s_mva: float, priority: str = "reactive") -> tuple[float, float]:
    """``(P, Q)`` inside the circle ``P² + Q² ≤ S²`` (MW, Mvar, MVA) with ``reactive`` or ``active`` priority."""
    if priority == "reactive":
        q = min(max(q_mvar, -s_mva), s_mva)
        room = math.sqrt(max(s_mva**2 - q**2, 0.0))
        return math.copysign(min(abs(p_mw), room), p_mw), q
    if priority == "active":
        p = min(max(p_mw, -s_mva), s_mva)
        room = math.sqrt(max(s_mva**2 - p**2, 0.0))
        return p, math.copysign(min(abs(q_mvar), room), q_mvar)
    raise ValueError(f"expected priority 'reactive' or 'active', got {priority!r}")


def cap_active_setpoint(d: Any, p_cap_mw: float, ctx: StepContext) -> float:
    """Lower a device agent's pending active-power setpoint so that ``|P| ≤ p_cap_mw``; returns the MW cut.

    Works on the named entries of the device's action: ``f`` (fraction of the available power of a
    curtailable source: PV, wind), ``p`` (MW: battery, generator) or ``u`` (level ``|P|/p_max_mw`` of a
    conversion unit: fuel cell…). A device with none of them keeps its setpoint; the environment's clip of
    Q to ``√(S² − P²)`` still holds its rating.
    """
    actions = getattr(d.device, "actions", None)
    names = getattr(actions, "names", ())
    if not names:
        return 0.0
    values = np.array(d.device.default_action if d.pending is None else d.pending, np.float64).reshape(-1)
    if "f" in names and is_renewable(d):
        k = names.index("f")
        available = d.device.available_now(ctx)  # P_av clipped to [0, rated], as the source's step takes it
        before = min(max(values[k], 0.0), 1.0) * available
        after = min(before, p_cap_mw)
        values[k] = after / available if available > 0 else values[k]
    elif "p" in names:
        k = names.index("p")
        before = float(values[k])
        after = min(max(before, -p_cap_mw), p_cap_mw)
        values[k] = after
    elif "u" in names and getattr(d.device.params, "p_max_mw", 0.0):
        k = names.index("u")
        p_max = float(d.device.params.p_max_mw)
        before = float(values[k]) * p_max
        after = min(max(before, -p_cap_mw), p_cap_mw)
        values[k] = after / p_max
    else:
        return 0.0
    d.pending = values.astype(np.float32).reshape(d.device.action_space.shape)
    return abs(before) - abs(after)


@attrs.frozen
class VoltVarParams:
    v1: float = quantity("pu", 0.92, gt=0)
    v2: float = quantity("pu", 0.98, gt=0)
    v3: float = quantity("pu", 1.02, gt=0)
    v4: float = quantity("pu", 1.08, gt=0)
    q1: float = quantity("pu", 0.44, doc="Q at V1 in pu of rated apparent power (> 0 injects)")
    q2: float = quantity("pu", 0.0)
    q3: float = quantity("pu", 0.0)
    q4: float = quantity("pu", -0.44)
    s_ratio: float = quantity("1", 1.0, gt=0, doc="rated apparent power / p_max_mw where a device has no S rating")
    priority: str = choice(("reactive", "active"), "reactive",
                           doc="which yields at the apparent-power limit: reactive = curtail P, active = clip Q")
    device_types: str = text(",".join(INVERTER_TYPES), doc="comma-separated device classes under volt-var control")
    q_step: float = q_step_field(1.0)  # Category B on ieee34_3mg: loop gain 0.59, stable undamped

    def __attrs_post_init__(self) -> None:
        check_curve(self.curve)

    @property
    def curve(self) -> tuple[tuple[float, float], ...]:
        return ((self.v1, self.q1), (self.v2, self.q2), (self.v3, self.q3), (self.v4, self.q4))


class VoltVar(HorizontalProtocol):
    """IEEE 1547-2018 volt–var: each inverter's Q from the voltage at its bus in the last power flow.

    Participants: GridAgents (all their inverter devices) or device agents. Each tick Q moves a
    fraction ``q_step`` of the way to ``q(V)·S`` (the piecewise-linear curve, default Category B;
    :func:`~powergrid_protocols.common.step_q`), within the rating ``P² + Q² ≤ S²`` by the
    configured ``priority`` (module docstring): with ``reactive`` the device's active setpoint is
    lowered to ``√(S² − Q²)`` before its physics (reported as ``curtailed_mw``); with ``active``
    the environment clips Q to ``√(S² − P²)`` after it. Horizontal because it needs the power-flow
    result (``settle``), which vertical protocols never see. Quasi-static: a real inverter settles
    within seconds (1547 Category B's default open-loop response time is 5 s), far below the
    physics step, at the fixed point ``Q = q(V(Q))``; here each tick is one control iteration
    towards it, from the last flow's voltage.
    """

    Params = VoltVarParams

    def __init__(self, params: VoltVarParams, participants: Sequence[Any]) -> None:
        super().__init__(params, participants)
        present = {type(d.device).__name__ for a in self.participants for d in a.devices()}
        kinds = check_kinds("device_types", params.device_types, INVERTER_TYPES, present)
        self.inverters = [d for a in self.participants for d in devices_of(a, kinds)]
        if not self.inverters:  # a misspelt class ("PVV") controlled nothing, silently
            raise ValueError(f"params.device_types: expected device classes of the participants' devices "
                             f"({', '.join(sorted(present)) or 'none'}), got {params.device_types!r}: volt-var would control nothing")
        self.q_ctl = [q_setpoint(d, params.s_ratio) for d in self.inverters]
        for c in self.q_ctl:
            c.limit = True
        self.v = np.ones(len(self.inverters))
        self.curtailed: dict[str, float] = {}
        self.projection: dict[str, float] = {}

    def reset(self, rng: np.random.Generator) -> None:
        self.v = np.ones(len(self.inverters))
        self.curtailed, self.projection = {}, {}
        for c in self.q_ctl:
            c.q_mvar = None

    def observation_features(self, agent: Any) -> tuple[Feature, ...]:
        """``[reactive power of the agent's inverters, Mvar]``."""
        return (scaling.power(1.0),)

    def coordinate(self, actions: Mapping[str, np.ndarray], ctx: StepContext) -> None:
        self.projection, self.curtailed = {}, {}
        project_pending(self.participants, self.projection)
        q_pu = np.atleast_1d(volt_var_q(self.v, self.params.curve))
        step_q(self.q_ctl, [min(max(q * c.s_mva, -c.s_mva), c.s_mva) for c, q in zip(self.q_ctl, q_pu)],
               self.params.q_step)
        for d, c in zip(self.inverters, self.q_ctl):
            if self.params.priority == "reactive":
                cut = cap_active_setpoint(d, math.sqrt(max(c.s_mva**2 - c.q_mvar**2, 0.0)), ctx)
                if cut > 0:
                    self.curtailed[d.id] = cut

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> dict[str, tuple[float, float]]:
        if result.converged:
            self.v = finite_or([result.vm_pu[d.bus] for d in self.inverters], self.v)
        return {}

    def observe(self, agent: Any) -> np.ndarray:
        mine = [c.q_mvar or 0.0 for d, c in zip(self.inverters, self.q_ctl) if d in agent.devices()]
        return np.array([float(sum(mine))], np.float32)

    def info(self) -> dict[str, Any]:
        return {"q_mvar": {d.id: c.q_mvar for d, c in zip(self.inverters, self.q_ctl)},
                "v_pu": {d.id: float(v) for d, v in zip(self.inverters, self.v)},
                "curtailed_mw": dict(self.curtailed), "projection": dict(self.projection)}


__all__ = ["IEEE1547_CAT_A", "IEEE1547_CAT_B", "VoltVar", "VoltVarParams", "apparent_power_limit",
           "cap_active_setpoint", "check_curve", "volt_var_q"]

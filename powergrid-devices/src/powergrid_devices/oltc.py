"""On-load tap changer of a two-winding transformer."""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from powergrid.devices import StepContext, box
from powergrid.params import choice, flag, integer, quantity, text
from powergrid_devices.actions import observation
from powergrid_devices.switching import SwitchedDevice


@attrs.frozen
class OLTCParams:
    trafo: str = text("", doc="transformer name; empty: the transformer whose LV bus is the device's bus")
    tap_min: int = integer(-8)
    tap_max: int = integer(8)
    tap_neutral: int = integer(0)
    tap_step_percent: float = quantity("%", 1.25, gt=0, le=10, doc="voltage change per tap position")
    tap_side: str = choice(("hv", "lv"), "hv")
    action: str = choice(("discrete", "box"), "discrete", doc="Discrete positions, or a Box rounded to a position")
    max_moves: int = integer(1, ge=1, doc="tap positions moved at most per tick")
    switch_cost: float = quantity("$", 1.0, ge=0, doc="cost per tap operation (contact wear, maintenance)")
    init: int = integer(0)
    init_random: bool = flag(False, doc="draw the initial position uniformly")
    v_set: float = quantity("pu", 1.0, gt=0, doc="rule: voltage setpoint at the device's bus")
    deadband: float = quantity("pu", 0.02, gt=0, doc="rule: total deadband around v_set")

    def __attrs_post_init__(self) -> None:
        if not self.tap_min <= self.tap_neutral <= self.tap_max or self.tap_min == self.tap_max:
            raise ValueError(f"expected tap_min ≤ tap_neutral ≤ tap_max and tap_min < tap_max, "
                             f"got {self.tap_min}, {self.tap_neutral}, {self.tap_max}")
        if not self.tap_min <= self.init <= self.tap_max:
            raise ValueError(f"expected tap_min ≤ init ≤ tap_max, got {self.init}")


class OLTC(SwitchedDevice):
    """Transformer tap changer: position ``k ∈ [k_min, k_max]``.

    Off-nominal ratio on the tap side: ``n = 1 + (k − k_0)·Δ/100`` (Δ =
    ``tap_step_percent``). On the HV side a higher ``k`` lowers the LV voltage
    (``V_lv ≈ V_hv/n``); on the LV side it raises it (``V_lv ≈ V_hv·n``).

    Action: the target position (``Discrete``, or a Box rounded to a position),
    moving at most ``max_moves`` positions per tick. Cost: ``switch_cost`` $
    per tap operation. Safety: 0. Injects nothing: the environment applies the
    position through ``solver.set_trafo_tap`` (:meth:`network_setting`).
    ``attach`` writes the tap changer into ``net.trafo`` when the transformer
    has none. Observation: ``[(k − k_min)/(k_max − k_min), n, V]`` with ``V``
    the device bus voltage (pu) of the last converged power flow.
    """

    Params = OLTCParams
    setting_kind = "trafo_tap"

    def __init__(self, params: OLTCParams, dt_h: float) -> None:
        super().__init__(params, dt_h, params.tap_min, params.tap_max)
        self.observation_space = box([0.0, 0.5, 0.0], [1.0, 1.5, 2.0])

    @property
    def ratio(self) -> float:
        p = self.params
        return 1.0 + (self.position - p.tap_neutral) * p.tap_step_percent / 100.0

    def attach(self, net: Any, bus: int) -> None:
        super().attach(net, bus)
        p, trafo = self.params, net.trafo
        if len(trafo) == 0:
            raise ValueError("the network has no transformer for the OLTC")
        names = [str(n) for n in trafo.name]
        if p.trafo:
            if p.trafo not in names:
                raise ValueError(f"no transformer named {p.trafo!r} (have: {', '.join(names)})")
            self.row = names.index(p.trafo)
        else:
            bus_index = int(net.bus.index[bus])
            rows = np.flatnonzero(trafo.lv_bus.to_numpy() == bus_index)
            if rows.size == 0:
                raise ValueError(f"no transformer has its LV side at this bus; name one with 'trafo' (have: {', '.join(names)})")
            self.row = int(rows[0])
        existing = trafo.tap_step_percent.iat[self.row]
        wanted = {"tap_min": p.tap_min, "tap_max": p.tap_max, "tap_neutral": p.tap_neutral,
                  "tap_step_percent": p.tap_step_percent, "tap_side": p.tap_side}
        if existing is None or (isinstance(existing, float) and math.isnan(existing)):
            extra = {"tap_pos": p.tap_neutral, "tap_step_degree": 0.0,  # a ratio (not phase-shifting) changer
                     "tap_changer_type": "Ratio", "tap_phase_shifter": False}  # pandapower 3.x / 2.x spelling
            for column, value in {**wanted, **extra}.items():
                if column in trafo.columns:
                    trafo.iat[self.row, trafo.columns.get_loc(column)] = value
        else:
            have = {c: trafo[c].iat[self.row] for c in wanted}
            if any(have[c] != v for c, v in wanted.items()):
                raise ValueError(f"transformer {names[self.row]!r} already has a tap changer {have}; "
                                 f"set the OLTC params to the same values")

    def step(self, action: object, ctx: StepContext) -> None:
        self.move(action)
        self.p_mw = self.q_mvar = 0.0

    def rule_action(self, ctx: StepContext) -> Any:
        """Automatic voltage control: one tap toward ``v_set`` when the voltage leaves the deadband."""
        p = self.params
        error = self.vm_pu - p.v_set
        if abs(error) <= p.deadband / 2:
            return self.step_toward(0)
        lower_voltage = 1 if p.tap_side == "hv" else -1  # direction of k that lowers the LV voltage
        return self.step_toward(lower_voltage if error > 0 else -lower_voltage)

    def observe(self) -> np.ndarray:
        p = self.params
        return observation(self.observation_space,
                           [(self.position - p.tap_min) / (p.tap_max - p.tap_min), self.ratio, self.vm_pu])

    def state_dict(self) -> dict[str, float]:
        return {**super().state_dict(), "ratio": self.ratio}

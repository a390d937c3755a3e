"""Switched shunt: capacitor or reactor bank with discrete steps."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import pandapower as pp

from powergrid.devices import StepContext, box
from powergrid.params import choice, flag, integer, quantity
from powergrid_devices.actions import observation
from powergrid_devices.switching import SwitchedDevice


@attrs.frozen
class ShuntParams:
    n_steps: int = integer(4, ge=1, le=100, doc="number of switchable steps")
    q_step_mvar: float = quantity("Mvar", 0.1, gt=0, doc="reactive power of one step at 1 pu voltage")
    kind: str = choice(("capacitor", "reactor"), "capacitor")
    action: str = choice(("discrete", "box"), "discrete", doc="Discrete(n+1), or a Box rounded to a step")
    max_moves: int = integer(1, ge=1, doc="steps switched at most per tick")
    switch_cost: float = quantity("$", 0.5, ge=0, doc="cost per step switched (wear)")
    init: int = integer(0, ge=0)
    init_random: bool = flag(False, doc="draw the initial step uniformly")
    v_low: float = quantity("pu", 0.97, gt=0, doc="rule: switch in a capacitor step below this voltage")
    v_high: float = quantity("pu", 1.03, gt=0, doc="rule: switch out a capacitor step above this voltage")

    def __attrs_post_init__(self) -> None:
        if self.init > self.n_steps:
            raise ValueError(f"expected init ≤ n_steps, got {self.init} > {self.n_steps}")
        if self.v_low >= self.v_high:
            raise ValueError(f"expected v_low < v_high, got {self.v_low} ≥ {self.v_high}")


class Shunt(SwitchedDevice):
    """Capacitor (or reactor) bank of ``n`` steps of ``Q_s`` Mvar at 1 pu.

    Action: the number of steps in service ``k ∈ {0…n}`` (``Discrete(n+1)``, or a
    Box rounded to the nearest step), moving at most ``max_moves`` per tick.
    A shunt admittance gives ``q = ±k·Q_s·V²`` Mvar (+ capacitor injects, −
    reactor absorbs), with ``V`` the bus voltage (pu) of the last converged
    power flow. Cost: ``switch_cost`` $ per step switched. Safety: 0.
    Observation: ``[k/n, V]``.

    ``attach`` creates the bank as a pandapower shunt at step 0 (no effect). An
    environment that applies :meth:`network_setting` through
    ``solver.set_shunt_step`` sets ``network_applied``; the Q injection above is
    then left to the admittance matrix (``q_mvar = 0`` on the device's sgen).
    """

    Params = ShuntParams
    setting_kind = "shunt_step"

    def __init__(self, params: ShuntParams, dt_h: float) -> None:
        super().__init__(params, dt_h, 0, params.n_steps)
        self.observation_space = box([0.0, 0.0], [1.0, 2.0])

    def attach(self, net: Any, bus: int) -> None:
        """Create the pandapower shunt (at step 0, so it changes nothing until the environment sets its step)."""
        super().attach(net, bus)
        q_step = self.params.q_step_mvar if self.params.kind == "reactor" else -self.params.q_step_mvar  # load convention
        self.row = len(net.shunt)
        pp.create_shunt(net, int(net.bus.index[bus]), q_mvar=q_step, p_mw=0.0, step=0, max_step=self.params.n_steps,
                        name=f"{self.params.kind} at {net.bus.name.iat[bus]}")

    def step(self, action: object, ctx: StepContext) -> None:
        self.move(action)
        sign = 1.0 if self.params.kind == "capacitor" else -1.0
        self.p_mw = 0.0
        self.q_mvar = 0.0 if self.network_applied else sign * self.position * self.params.q_step_mvar * self.vm_pu**2

    def rule_action(self, ctx: StepContext) -> Any:
        """Voltage control with a deadband: more capacitive Q when the voltage is low, less when high."""
        p = self.params
        raise_q = 1 if self.vm_pu < p.v_low else -1 if self.vm_pu > p.v_high else 0
        return self.step_toward(raise_q if p.kind == "capacitor" else -raise_q)

    def observe(self) -> np.ndarray:
        return observation(self.observation_space, [self.position / self.params.n_steps, self.vm_pu])

"""Shared base of curtailable inverter-connected sources (PV, wind)."""

from __future__ import annotations

from typing import Any

import numpy as np

from powergrid.devices import Device, StepContext, box
from powergrid_devices.actions import BoxAction, BoxDevice, BoxKernel
from powergrid_devices.inverter import q_limit, q_limit_rows


def check_rating(s_max_mva: float, rated_mw: float) -> None:
    """An inverter must carry the rated active power (cross-field check of the Params)."""
    if 0 < s_max_mva < rated_mw:
        raise ValueError(f"expected s_max_mva ≥ the rated power {rated_mw} MW (or 0), got {s_max_mva}")


class CurtailableKernel(BoxKernel):
    """Every curtailable source of one type and action layout stepped on arrays (the physics of
    :class:`CurtailableSource`); :meth:`available` is the subclass's ``available_mw`` of every device (MW)."""

    params = ("s_max_mva",)
    state = {**BoxKernel.state, "available": ("available_now", np.float64)}

    def __init__(self, devices: list[Device]) -> None:
        super().__init__(devices)
        self.rated = np.array([d.rated_mw for d in devices], np.float64)

    def available(self, ctx: StepContext) -> np.ndarray:
        """Available power of every device (MW) before clipping to ``[0, rated]`` (default: each device's own)."""
        return np.array([d.available_mw(ctx) for d in self.devices], np.float64)

    def step(self, actions: np.ndarray, prices: np.ndarray, ctx: StepContext) -> None:
        values, distance = self.box.read(actions)
        self.available_now = np.minimum(np.maximum(self.available(ctx), self.zero), self.rated)
        power = values[:, 0] * self.available_now
        q = np.zeros(len(power))
        if values.shape[1] > 1:
            limit = q_limit_rows(power, self.p.s_max_mva)
            q = np.minimum(np.maximum(values[:, 1], -limit), limit)
            distance += np.abs(q - values[:, 1])
        self.p_mw, self.q_mvar, self.projection = power, q, distance  # cost and safety stay 0 (from the reset)

    def observe_values(self) -> list[np.ndarray]:
        columns = [self.available_now / self.rated, self.p_mw / self.rated]
        if self.obs_low.shape[1] > 2:
            columns.append(self.q_mvar / self.p.s_max_mva)
        return columns


class CurtailableSource(BoxDevice):
    """A source with available power ``P_av`` (from :meth:`available_mw`) that can be curtailed.

    Action: ``[f]`` — fraction of the available power to inject, in ``[0, 1]``
    (1 = maximum power point) — plus ``[q]`` Mvar when ``s_max_mva > 0``.
    ``p = f·P_av``; ``|q| ≤ sqrt(S² − p²)`` (active power first, so Q is also
    available at night for volt-var). Cost 0, safety 0. Observation:
    ``[P_av/P_rated, p/P_rated]`` (+ ``q/S``).

    Subclasses define ``rated_mw`` and ``available_mw(ctx)``; their ``Params``
    has ``s_max_mva``.
    """

    rated_mw: float
    Kernel = CurtailableKernel

    def __init__(self, params: Any, dt_h: float) -> None:
        super().__init__(params, dt_h)
        self.available = 0.0
        s = params.s_max_mva
        names, low, high, default = ["f"], [0.0], [1.0], [1.0]
        if s > 0:
            names, low, high, default = names + ["q"], low + [-s], high + [s], default + [0.0]
        self.actions = BoxAction(names, low, high, default)
        self.action_space = self.actions.space
        n_q = 1 if s > 0 else 0
        self.observation_space = box([0.0, 0.0] + [-1.0] * n_q, [1.0] * (2 + n_q))

    def available_mw(self, ctx: StepContext) -> float:
        raise NotImplementedError

    def available_now(self, ctx: StepContext) -> float:
        """``P_av`` (MW) at the tick: :meth:`available_mw` clipped to ``[0, rated_mw]``."""
        available, rated = self.available_mw(ctx), self.rated_mw
        return 0.0 if available < 0.0 else rated if available > rated else available

    def injection_mw(self, action: object, ctx: StepContext) -> float:
        """The MW the source injects at the tick under ``action`` (physical; None: its default, full output):
        ``f·P_av``, what :meth:`step` will inject (protocols that must know it before the step: the LMP market)."""
        return self.actions.read(action)[0][0] * self.available_now(ctx)

    def reset(self, rng: np.random.Generator) -> None:
        """Clear the step outputs and the available power (0 MW until the first step reads the profile)."""
        super().reset(rng)
        self.available = 0.0  # a batched source's value lives in its kernel (powergrid.devices.Kernel): written there

    def draws_at_reset(self) -> bool:
        """Never (unless a subclass has its own ``reset``): the reset draws nothing."""
        return type(self).reset is not CurtailableSource.reset

    def step(self, action: object, ctx: StepContext) -> None:
        s = self.params.s_max_mva
        values, distance = self.actions.read(action)
        self.available = available = self.available_now(ctx)
        self.p_mw = values[0] * available
        self.q_mvar = 0.0
        if s > 0:
            limit, x = q_limit(self.p_mw, s), values[1]
            self.q_mvar = -limit if x < -limit else limit if x > limit else x
            distance += abs(self.q_mvar - x)
        self.projection = distance
        self.cost = self.safety = 0.0

    def mppt_action(self) -> np.ndarray:
        """Inject all available power, no reactive power."""
        return self.actions.pack(f=1.0)

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        return self.mppt_action()

    def observe_values(self) -> list[float]:
        values = [self.available / self.rated_mw, self.p_mw / self.rated_mw]
        if self.params.s_max_mva > 0:
            values.append(self.q_mvar / self.params.s_max_mva)
        return values

    def state_dict(self) -> dict[str, float]:
        return {"p_mw": self.p_mw, "q_mvar": self.q_mvar, "available_mw": self.available}

"""EV charging station: seeded arrivals and departures, energy requested by departure, optional V2G."""

from __future__ import annotations

import copy

import attrs
import numpy as np

from powergrid.devices import StepContext, box
from powergrid.params import choice, flag, integer, quantity
from powergrid_devices.actions import BoxAction, BoxDevice, observation
from powergrid_devices.inverter import load_q


@attrs.frozen
class EVChargerParams:
    n_ports: int = integer(2, ge=1, le=64)
    p_port_mw: float = quantity("MW", 0.022, gt=0, doc="charge limit per port")
    v2g: bool = flag(False, doc="allow discharging into the grid")
    p_v2g_mw: float = quantity("MW", 0.011, ge=0, doc="discharge limit per port with V2G")
    efficiency: float = quantity("1", 0.93, gt=0, le=1, doc="charger efficiency, each direction")
    battery_mwh: float = quantity("MWh", 0.06, gt=0, doc="EV battery capacity")
    soc_v2g_min: float = quantity("1", 0.2, ge=0, le=1, doc="V2G does not discharge below this SOC")
    arrival_mean_h: float = quantity("h", 8.0, ge=0, lt=24, doc="mean clock hour of arrival")
    arrival_std_h: float = quantity("h", 1.5, ge=0, le=12)
    dwell_mean_h: float = quantity("h", 9.0, gt=0, le=23)
    dwell_std_h: float = quantity("h", 2.0, ge=0, le=12)
    energy_min_mwh: float = quantity("MWh", 0.005, ge=0, doc="smallest energy requested by departure")
    energy_max_mwh: float = quantity("MWh", 0.03, ge=0, doc="largest energy requested by departure")
    unmet_as: str = choice(("safety", "cost"), "safety",
                           doc="how energy missing at departure or at the episode's last tick counts: safety "
                               "(MWh/Δt_h in that step, so reward.safety_weight $ per MWh at any step) or cost")
    unmet_cost: float = quantity("$/MWh", 300.0, ge=0, doc="with unmet_as: cost")
    v2g_cost: float = quantity("$/MWh", 20.0, ge=0, doc="battery wear per MWh discharged")
    pf: float = quantity("1", 1.0, gt=0, le=1)

    def __attrs_post_init__(self) -> None:
        if self.energy_min_mwh > self.energy_max_mwh:
            raise ValueError(f"expected energy_min_mwh ≤ energy_max_mwh, got {self.energy_min_mwh} > {self.energy_max_mwh}")
        if self.energy_max_mwh > 0.9 * self.battery_mwh:
            raise ValueError(f"expected energy_max_mwh ≤ 0.9·battery_mwh, got {self.energy_max_mwh} > {0.9 * self.battery_mwh}")


class EVCharger(BoxDevice):
    """Charging station with ``n`` ports; each port holds at most one EV.

    Sessions (drawn from the device's seeded generator): arrival at clock hour
    ``~ N(arrival_mean, arrival_std) mod 24``, dwell ``~ N(dwell_mean, dwell_std)``
    hours (at least one step), requested energy ``E_req ~ U(energy_min,
    energy_max)`` MWh, arrival SOC ``~ U(0.1, 1 − E_req/B)``; the target
    ``e_target = e_arrival + E_req``. A port's next arrival is drawn when its EV
    leaves. An arrival in ``[h, h + dt)`` plugs in at the start of the step at
    clock hour ``h`` (the first step) or at the end of the step before it.

    Action ``[c₁ … c_n]``: ``c ∈ [0, 1]`` (``[−1, 1]`` with V2G), the charging
    power ``c·p_port`` (discharging ``|c|·p_v2g`` when negative), per port.
    Battery energy per step: ``e' = e + η·P·dt`` charging, ``e − P·dt/η``
    discharging. Projection: empty ports to 0, charging to ``e' ≤ B``,
    discharging to ``e' ≥ soc_v2g_min·B``.

    At departure, and for the EVs still plugged at the episode's last tick, the missing
    energy ``max(e_target − e, 0)`` MWh counts as safety (``unmet_as: safety``: that MWh
    divided by the step ``dt`` h in the step it is counted, so the reward, which prices safety
    ``safety_weight·dt`` per unit, charges ``safety_weight`` $ per MWh at any physics step) or as
    ``unmet_cost`` $/MWh (``unmet_as: cost``).
    Cost also ``v2g_cost`` $/MWh discharged. ``p = −Σ P``, ``q = p·tan φ``.
    Observation per port: ``[plugged, (e_target − e)⁺/B, dwell left/24 h, e/B]``.
    """

    Params = EVChargerParams

    def __init__(self, params: EVChargerParams, dt_h: float) -> None:
        super().__init__(params, dt_h)
        n = params.n_ports
        low = -1.0 if params.v2g else 0.0
        self.actions = BoxAction([f"c{i}" for i in range(n)], [low] * n, [1.0] * n, [0.0] * n)
        self.action_space = self.actions.space
        self.observation_space = box([0.0] * (4 * n), [1.0] * (4 * n))
        self.rng = np.random.default_rng(0)
        self._clear()

    def _clear(self) -> None:
        n = self.params.n_ports
        self.plugged = np.zeros(n, bool)
        self.energy = np.zeros(n)  # MWh in the battery
        self.target = np.zeros(n)  # MWh wanted at departure
        self.dwell = np.zeros(n)  # hours until departure
        self.next_arrival = np.zeros(n)  # clock hour of the next arrival
        self.started = False
        self.unmet_mwh = 0.0

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        self.rng = rng
        self._clear()
        for i in range(self.params.n_ports):
            self.next_arrival[i] = self._draw_arrival()

    def _draw_arrival(self) -> float:
        p = self.params
        return float(self.rng.normal(p.arrival_mean_h, p.arrival_std_h)) % 24.0

    def _plug(self, i: int) -> None:
        p = self.params
        request = float(self.rng.uniform(p.energy_min_mwh, p.energy_max_mwh))
        soc = float(self.rng.uniform(0.1, 1.0 - request / p.battery_mwh))
        self.plugged[i] = True
        self.energy[i] = soc * p.battery_mwh
        self.target[i] = self.energy[i] + request
        self.dwell[i] = max(float(self.rng.normal(p.dwell_mean_h, p.dwell_std_h)), self.dt_h)

    def _arrivals(self, hour: float) -> None:
        for i in np.flatnonzero(~self.plugged):
            if (self.next_arrival[i] - hour) % 24.0 < self.dt_h:
                self._plug(int(i))

    def charge(self, action: object) -> tuple[np.ndarray, np.ndarray, float]:
        """``(grid, e', distance)``: the MW each port draws under ``action`` (physical; < 0: V2G), the battery energy
        after the step (MWh, a new array) and the projection distance, from the plugged EVs now."""
        p, dt = self.params, self.dt_h
        c, distance = self.actions.read(action)
        grid = np.zeros(p.n_ports)
        energy = self.energy.copy()
        for i in range(p.n_ports):
            if not self.plugged[i]:
                distance += abs(c[i])
                continue
            if c[i] >= 0:
                power = min(c[i] * p.p_port_mw, (p.battery_mwh - energy[i]) / (p.efficiency * dt))
                energy[i] += p.efficiency * power * dt
                distance += max(c[i] - power / p.p_port_mw, 0.0)  # ≥ 0: c·p/p can round above c
                grid[i] = power
            else:
                floor = p.soc_v2g_min * p.battery_mwh
                power = min(-c[i] * p.p_v2g_mw, max(energy[i] - floor, 0.0) * p.efficiency / dt)
                energy[i] -= power * dt / p.efficiency
                distance += max(-c[i] - (power / p.p_v2g_mw if p.p_v2g_mw else 0.0), 0.0)
                grid[i] = -power
        return grid, energy, distance

    def injection_mw(self, action: object, ctx: StepContext) -> float:
        """The ``p_mw`` (MW, generator convention: ≤ 0 but V2G) :meth:`step` would set under ``action`` now; changes
        nothing. Before the episode's first step, the EVs arriving then (seeded draws) plug into a copy first."""
        if not self.started:
            probe = copy.deepcopy(self)
            probe._arrivals(ctx.hour)
            probe.started = True
            return probe.injection_mw(action, ctx)
        return -float(self.charge(action)[0].sum())

    def step(self, action: object, ctx: StepContext) -> None:
        p, dt = self.params, self.dt_h
        if not self.started:
            self._arrivals(ctx.hour)
            self.started = True
        grid, self.energy, distance = self.charge(action)
        discharged = float(-grid[grid < 0].sum()) * dt
        self.dwell[self.plugged] -= dt
        leaving = self.plugged & (self.dwell <= 1e-9)
        self.unmet_mwh = float(np.maximum(self.target[leaving] - self.energy[leaving], 0.0).sum())
        episode = ctx.profiles.get("load")  # the profiles span the episode
        if episode is not None and ctx.tick >= len(episode) - 1:  # last tick: the EVs staying miss this too
            staying = self.plugged & ~leaving
            self.unmet_mwh += float(np.maximum(self.target[staying] - self.energy[staying], 0.0).sum())
        for i in np.flatnonzero(leaving):
            self.plugged[i] = False
            self.energy[i] = self.target[i] = self.dwell[i] = 0.0
            self.next_arrival[i] = self._draw_arrival()
        self._arrivals((ctx.hour + dt) % 24.0)
        self.p_mw = -float(grid.sum())
        self.q_mvar = load_q(self.p_mw, p.pf) if self.p_mw < 0 else 0.0
        self.projection = float(distance)
        unmet_cost = p.unmet_cost * self.unmet_mwh if p.unmet_as == "cost" else 0.0
        self.cost = unmet_cost + p.v2g_cost * discharged
        self.safety = self.unmet_mwh / dt if p.unmet_as == "safety" else 0.0  # priced safety_weight·dt: per MWh

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        """Uncontrolled charging: full power on arrival until the requested energy is in."""
        p = self.params
        need = np.maximum(self.target - self.energy, 0.0) * self.plugged
        c = np.minimum(need / (p.efficiency * p.p_port_mw * self.dt_h), 1.0)
        return np.clip(c, self.actions.low, self.actions.high).astype(np.float32)

    def observe(self) -> np.ndarray:
        p = self.params
        need = np.maximum(self.target - self.energy, 0.0) / p.battery_mwh
        rows = np.stack([self.plugged.astype(float), need, self.dwell / 24.0, self.energy / p.battery_mwh], axis=1)
        return observation(self.observation_space, rows.ravel())

    def state_dict(self) -> dict[str, float]:
        return {"p_mw": self.p_mw, "plugged": float(self.plugged.sum()), "energy_mwh": float(self.energy.sum()),
                "unmet_mwh": self.unmet_mwh}

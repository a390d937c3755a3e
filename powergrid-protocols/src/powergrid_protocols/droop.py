"""Quasi-static droop: the P–f and Q–V laws (pure functions) and their environment adapter :class:`Droop`.

Primary P–f droop shares an active-power imbalance ΔP (MW) among units with droop
``R_i`` (pu on their rating ``S_i``) and nominal frequency ``f0`` (Hz)::

    K_i = S_i / (R_i · f0)              (MW/Hz)
    Δf  = −ΔP / (Σ K_i + D)             (D: load damping, MW/Hz)
    ΔP_i = −K_i · Δf                    (unit i's pick-up, clipped to its headroom;
                                         a saturated unit drops out and Δf is recomputed)

Q–V droop: ``q_i(V) = −S_i·(V − V0)/R_q``, clipped to ``±S_i`` (Mvar), approached by a damped update each tick
(:func:`~powergrid_protocols.common.step_q`).

The imbalance is the deviation from a scheduled interchange ``p_ref`` (MW): a constant, or an hour-ahead
schedule ``p_ref(t) = N̂(t) − U(t)``: the participants' net load last read before the hour (a persistence forecast)
less their units' scheduled outputs and their curtailment (see :class:`Droop`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from powergrid import scaling
from powergrid.clock import format_duration
from powergrid.devices import StepContext
from powergrid.loads import LoadGroup
from powergrid.params import choice, flag, quantity
from powergrid.protocols import HorizontalProtocol
from powergrid.scaling import Feature
from powergrid.solvers.base import PowerFlowResult
from powergrid_protocols.common import (
    DISPATCHABLE,
    INVERTER_TYPES,
    devices_of,
    finite_or,
    is_renewable,
    kind,
    meter_of,
    mw_range,
    pending_fraction,
    pending_mw,
    project_pending,
    q_setpoint,
    q_step_field,
    rating_mva,
    set_pending_mw,
    step_q,
)


@attrs.frozen
class DroopShare:
    delta_f_hz: float
    delta_p_mw: np.ndarray
    unserved_mw: float


def pf_droop(delta_p_mw: float, rating_mw: Sequence[float], droop_pu: Sequence[float], *, f0_hz: float = 60.0,
             damping_mw_per_hz: float = 0.0, up_mw: Sequence[float] | None = None,
             down_mw: Sequence[float] | None = None) -> DroopShare:
    """Share an imbalance ``delta_p_mw`` (> 0: more load than generation) by P–f droop (see the module docstring).

    ``up_mw``/``down_mw`` are each unit's headroom to raise/lower its output (default: unlimited).
    """
    s = np.asarray(rating_mw, float)
    r = np.asarray(droop_pu, float)
    k = s / (r * f0_hz)
    n = len(s)
    up = np.full(n, np.inf) if up_mw is None else np.asarray(up_mw, float)
    dn = np.full(n, np.inf) if down_mw is None else np.asarray(down_mw, float)
    share = np.zeros(n)
    free = np.ones(n, bool)
    remaining = float(delta_p_mw)
    df = 0.0
    for _ in range(n + 1):
        kk = k[free].sum() + damping_mw_per_hz
        df = -remaining / kk if kk > 0 else df  # all saturated: keep the last frequency
        trial = np.where(free, -k * df, 0.0)
        over = free & ((trial > up - share) | (-trial > dn + share))
        if not over.any():
            share = share + trial
            remaining = 0.0
            break
        # saturate the units that hit a limit, then recompute the others
        for i in np.flatnonzero(over):
            limit = up[i] if trial[i] > 0 else -dn[i]
            remaining -= limit
            share[i] = limit
            free[i] = False
    served = share.sum()
    unserved = float(delta_p_mw - served - (-df * damping_mw_per_hz))
    return DroopShare(float(df), share, unserved if abs(unserved) > 1e-12 else 0.0)


def qv_droop(v_pu: np.ndarray, rating_mva: np.ndarray, droop_pu: float = 0.05, v0_pu: float = 1.0) -> np.ndarray:
    """Q–V droop (Mvar per unit): ``−S·(V − V0)/R``, clipped to ``±S``."""
    s = np.asarray(rating_mva, float)
    q = -s * (np.asarray(v_pu, float) - v0_pu) / droop_pu
    return np.clip(q, -s, s)


@attrs.frozen
class DroopParams:
    droop_pu: float = quantity("pu", 0.05, gt=0, doc="P–f droop R on each unit's rating")
    f0_hz: float = quantity("Hz", 0.0, ge=0, doc="nominal frequency; 0 = the network's f_hz (another value must equal it)")
    damping_mw_per_hz: float = quantity("MW/Hz", 0.0, ge=0)
    measure: str = choice(("pcc", "ext_grid"), "pcc", doc="where the imbalance is measured")
    schedule: str = choice(("constant", "hour_ahead"), "constant",
                           doc="constant: p_ref = p_ref_mw every tick; hour_ahead: the net load read before the hour "
                               "less the units' setpoints and the curtailment (measure: pcc)")
    p_ref_mw: float = quantity("MW", 0.0, doc="scheduled Σ PCC import of the participants (or slack injection), "
                                              "schedule: constant only")
    qv: bool = flag(True, doc="also apply Q–V droop to inverter-based units")
    qv_droop_pu: float = quantity("pu", 0.05, gt=0)
    v0_pu: float = quantity("pu", 1.0, gt=0)
    q_step: float = q_step_field(0.5)  # 5 % Q–V droop on ieee34_3mg: loop gain 1.62; damped radius 0.47 at 0.5 (best 0.56)


#: Device classes a participant may hold under ``schedule: hour_ahead`` besides its renewables.
SCHEDULED = (*DISPATCHABLE, "GridConnection", "OLTC", "Shunt")


class Droop(HorizontalProtocol):
    """Quasi-static P–f and Q–V droop of the participants' DG/ESS units.

    Participants: GridAgents (their units) or device agents (each its own unit).

    Each tick the imbalance is what the participants imported through their PCCs (``measure:
    pcc``: the GridConnections among them or below them, at least one, else a configuration error; or what the slack
    supplied, ``measure: ext_grid``) beyond the schedule ``p_ref`` last
    tick, plus what the droop units already picked up (``ΔP = P_meas − p_ref + Σ ΔP_i``). It is shared
    by P–f droop (``K_i = S_i/(R·f0)``, ``Δf = −ΔP/(ΣK + D)``, ``ΔP_i = −K_i·Δf`` within
    headroom) and added to the units' setpoints; ``Δf`` is the frequency deviation an
    islanded system would settle at. Q–V: each inverter unit moves its Q a fraction ``q_step`` of the
    way to ``−S·(V − V0)/R_q`` at the voltage of its bus in the last power flow (one control iteration per
    tick towards the fixed point ``Q = q(V(Q))``, :func:`~powergrid_protocols.common.step_q`), within its
    apparent-power rating (active-power priority: ``|Q| ≤ √(S² − P²)``, P–f droop keeps its MW). No
    frequency deadband (IEEE 1547-2018's default is 36 mHz) and no voltage deadband. ``f0`` is the network's nominal frequency
    (``net.f_hz``, e.g. 60 Hz for the IEEE feeders, 50 Hz for CIGRE); a configured ``f0_hz`` that
    differs from it is a configuration error.

    ``schedule: constant``: ``p_ref = p_ref_mw`` every tick. ``schedule: hour_ahead`` (``measure: pcc``): the
    scheduled interchange of tick ``t`` is ``p_ref(t) = N̂(t) − U(t)`` (MW). ``N(t) = Σ_i P_i·m_i(t) − Σ_r A_r(t)``
    is the participants' net load before their DG/ESS units: the network loads in their zones (in service, at
    in-service buses: :meth:`LoadGroup.at <powergrid.loads.LoadGroup.at>`; base ``P_i`` MW, multiplier ``m_i(t)`` pu)
    less the available power ``A_r(t)`` (MW, within ``[0, rated]``) of their renewables (PV at the ``solar`` profile,
    wind at ``wind`` or its power curve: every device with ``available_now``). The hours are blocks of ``L = 1 h/Δt``
    ticks from the episode's start (``L = 1`` when the physics step ``Δt`` is a whole number of hours); every tick of
    an hour is scheduled at the hour's start from the last tick read before it:
    ``N̂(t) = N(L·⌊t/L⌋ − 1)`` (``N(t−1)`` at 1-h ticks; ``N(0)`` over the first hour), computed once an episode
    from the loads and profiles drawn at reset. ``U(t) = Σ_u P_u(t) − Σ_r (1 − f_r(t))·Â_r(t)`` is what the agents
    schedule at tick ``t`` before droop: the MW ``P_u`` of their DG/ESS units less their renewables' curtailment,
    valued at the forecast availability ``Â_r(t) = A_r(L·⌊t/L⌋ − 1)`` (``f_r``: the fraction of ``A_r`` the
    renewable's action injects). Each microgrid schedules its units, its curtailment and its interchange together,
    so droop shares only what nobody scheduled, the forecast error (``ΔP = P_meas + U − N̂ + Σ ΔP_i``: the loads'
    change since the reading, the renewables' change at the fraction they deliver, losses); a participant that
    curtails imports the curtailed MW itself. Every participant needs a PCC meter (GridConnection) and no devices
    but DG/ESS units, renewables, its meter and OLTC/Shunt (another device's MW would be an imbalance droop undoes);
    ``p_ref_mw`` is not given; the physics step divides the hour or is a whole number of hours (the blocks are hours).
    Each of these is a configuration error.
    """

    Params = DroopParams

    def __init__(self, params: DroopParams, participants: Sequence[Any]) -> None:
        super().__init__(params, participants)
        self.units = [d for a in self.participants for d in devices_of(a, DISPATCHABLE)]
        self.inverters = [d for a in self.participants for d in devices_of(a, INVERTER_TYPES)] if params.qv else []
        self.q_ctl = [q_setpoint(d) for d in self.inverters]
        for c in self.q_ctl:
            c.limit = True
        self.meters = [meter_of(a) for a in self.participants]
        self.f0_hz = params.f0_hz or 60.0
        self.renewables = [d for a in self.participants for d in a.devices() if is_renewable(d)]
        if params.schedule == "hour_ahead":
            self._check_hour_ahead()
        if params.measure == "pcc" and all(m is None for m in self.meters):  # else the imbalance would read 0 MW of import every tick
            raise ValueError(f"params.measure: pcc measures the imbalance at the participants' PCC meters, expected a "
                             f"GridConnection among the participants or below a participating grid agent (or measure: "
                             f"ext_grid), got none among {', '.join(a.id for a in self.participants)}")
        self.loads = LoadGroup(np.zeros(0, np.int64), np.zeros(0))  # the network loads in the participants' zones
        self.forecast_mw: np.ndarray | None = None
        self.available_forecast_mw = np.zeros((0, len(self.renewables)))  # Â_r(t), MW (ticks × renewables)
        self.scheduled_mw = 0.0
        self._reset_state()

    def _check_hour_ahead(self) -> None:
        """The configuration errors of ``schedule: hour_ahead`` (see :class:`Droop`)."""
        p = self.params
        if p.measure != "pcc":
            raise ValueError(f"params.schedule: hour_ahead forecasts the participants' PCC import, expected "
                             f"measure: pcc, got measure: {p.measure}")
        if p.p_ref_mw:
            raise ValueError(f"params.p_ref_mw: schedule: hour_ahead computes p_ref every tick, expected no p_ref_mw "
                             f"(it is for schedule: constant), got {p.p_ref_mw:g}")
        renewable = {id(d) for d in self.renewables}
        for a, meter in zip(self.participants, self.meters):
            if meter is None:
                raise ValueError(f"params.schedule: hour_ahead compares each participant's PCC import with its net "
                                 f"load, expected a GridConnection below every participant, got none below {a.id}")
            other = [d for d in a.devices() if kind(d) not in SCHEDULED and id(d) not in renewable]
            if other:
                raise ValueError(f"params.schedule: hour_ahead schedules each participant's zone loads, renewables and "
                                 f"DG/ESS units, expected no other device with active power, got {kind(other[0])} "
                                 f"{other[0].id} below {a.id}")
        step_s = round(self.meters[0].device.dt_h * 3600)  # the physics step (s): the devices' dt_h
        if 3600 % step_s and step_s % 3600:
            raise ValueError(f"params.schedule: hour_ahead schedules the participants hour by hour, expected a physics "
                             f"step that divides 1h or is a whole number of hours, got time.physics: "
                             f"{format_duration(step_s)}")

    def attach(self, net: Any) -> None:
        """Take the nominal frequency from the network (a different configured ``f0_hz`` is an error)."""
        f_net = float(net.f_hz)
        if self.params.f0_hz and abs(self.params.f0_hz - f_net) > 1e-9:
            raise ValueError(f"params.f0_hz: expected the network's nominal frequency {f_net:g} Hz, "
                             f"got {self.params.f0_hz:g} Hz")
        self.f0_hz = f_net
        if self.params.schedule != "hour_ahead":
            return
        missing = [a.id for a in self.participants if not len(getattr(a, "zone", ()))]
        if missing:
            raise ValueError(f"params.schedule: hour_ahead forecasts the load of each participant's zone, expected "
                             f"participants with a zone, got none for {', '.join(missing)}")
        self.loads = LoadGroup.at(net, np.concatenate([np.asarray(a.zone, np.int64) for a in self.participants]))

    def _reset_state(self) -> None:
        self.imbalance = 0.0
        self.share = np.zeros(len(self.units))
        self.delta_f = 0.0
        self.v = np.ones(len(self.inverters))
        self.projection: dict[str, float] = {}
        self.forecast_mw = None
        self.reference_mw = self.params.p_ref_mw

    def reset(self, rng: np.random.Generator) -> None:
        self._reset_state()
        for c in self.q_ctl:
            c.q_mvar = None

    def observation_features(self, agent: Any) -> tuple[Feature, ...]:
        """``[frequency deviation Hz]``."""
        return (scaling.FREQUENCY_DEVIATION,)

    def coordinate(self, actions: Mapping[str, np.ndarray], ctx: StepContext) -> None:
        p = self.params
        self.projection = {}
        project_pending(self.participants, self.projection)
        ratings = [max(rating_mva(d.device), 1e-6) for d in self.units]
        ranges = [mw_range(d) for d in self.units]
        now = [min(max(pending_mw(d), lo), hi) for d, (lo, hi) in zip(self.units, ranges)]
        if p.schedule == "hour_ahead":
            if self.forecast_mw is None:  # once an episode: the loads and profiles are drawn at reset
                self.forecast_mw, self.available_forecast_mw = self.persistence(ctx)
            curtailed = sum((1.0 - pending_fraction(d)) * a
                            for d, a in zip(self.renewables, self.available_forecast_mw[ctx.tick]))
            self.scheduled_mw = float(sum(now)) - curtailed
        share = pf_droop(self.imbalance, ratings, [p.droop_pu] * len(self.units), f0_hz=self.f0_hz,
                                damping_mw_per_hz=p.damping_mw_per_hz,
                                up_mw=[hi - x for x, (_, hi) in zip(now, ranges)],
                                down_mw=[x - lo for x, (lo, _) in zip(now, ranges)])
        self.share, self.delta_f = share.delta_p_mw, share.delta_f_hz
        for d, x, dp in zip(self.units, now, share.delta_p_mw):
            set_pending_mw(d, x + dp)
        if self.inverters:
            step_q(self.q_ctl, qv_droop(self.v, np.array([c.s_mva for c in self.q_ctl]), p.qv_droop_pu, p.v0_pu),
                   p.q_step)

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> dict[str, tuple[float, float]]:
        if result.converged:
            if self.params.measure == "pcc":
                measured = sum(m.flow(result) for m in self.meters if m is not None)
            else:
                measured = float(np.sum(result.ext_grid_p_mw))
            self.reference_mw = self.p_ref(ctx)
            imbalance = measured - self.reference_mw + float(self.share.sum())
            self.imbalance = float(finite_or(imbalance, self.imbalance))
            self.v = finite_or([result.vm_pu[d.bus] for d in self.inverters], self.v)
        return {}

    def persistence(self, ctx: StepContext) -> tuple[np.ndarray, np.ndarray]:
        """``N̂(t)`` (MW) and ``Â_r(t)`` (MW, ticks × renewables) for every physics tick of the episode: ``N`` and
        ``A_r`` at the last tick before ``t``'s hour, tick 0 in the first hour (see :class:`Droop`)."""
        net_load = ctx.load_multipliers[:, self.loads.rows] @ self.loads.mw
        ticks = np.arange(len(net_load))
        available = np.zeros((len(ticks), len(self.renewables)))
        for t in range(len(ticks) if self.renewables else 0):
            at = attrs.evolve(ctx, tick=t)
            available[t] = [d.device.available_now(at) for d in self.renewables]
        net_load -= available.sum(axis=1)
        lag = max(1, round(1.0 / ctx.dt_h))
        read = np.maximum(ticks - ticks % lag - 1, 0)
        return net_load[read], available[read]

    def p_ref(self, ctx: StepContext) -> float:
        """The scheduled interchange (MW) at ``ctx.tick``: ``p_ref_mw``, or ``N̂(t) − U(t)`` (hour_ahead)."""
        if self.forecast_mw is None:
            return self.params.p_ref_mw
        return float(self.forecast_mw[ctx.tick]) - self.scheduled_mw

    def observe(self, agent: Any) -> np.ndarray:
        return np.array([self.delta_f], np.float32)

    def info(self) -> dict[str, Any]:
        return {"delta_f_hz": self.delta_f, "f0_hz": self.f0_hz, "imbalance_mw": self.imbalance, "p_ref_mw": self.reference_mw,
                "pickup_mw": {d.id: float(s) for d, s in zip(self.units, self.share)},
                "projection": dict(self.projection)}


__all__ = ["Droop", "DroopParams", "DroopShare", "pf_droop", "qv_droop"]

"""The ADMM dispatch as a horizontal protocol among GridAgents (:class:`ADMMDispatch`): each tick its participants'
units as areas (:mod:`.dispatch`), one exchange-ADMM solve over the channel, the plan applied as setpoints and, with
``community``, each member's bill settled."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from powergrid import scaling
from powergrid.devices import StepContext, export_price
from powergrid.loads import LoadGroup
from powergrid.params import UNLIMITED, flag, integer, quantity
from powergrid.protocols import HorizontalProtocol
from powergrid.scaling import Feature
from powergrid.solvers.base import PowerFlowResult
from powergrid_protocols.admm.dispatch import (
    Area,
    Dispatch,
    GridTie,
    Unit,
    admm_dispatch,
    curve_units,
    dispatch_total,
    dispatch_with_grid,
    ess_units,
    tariff_units,
)
from powergrid_protocols.common import (
    DISPATCHABLE,
    ChannelFields,
    build_channel,
    clock_after,
    devices_of,
    finite_or,
    injection_mw,
    is_renewable,
    kind,
    meter_of,
    mw_range,
    pending_fraction,
    project_pending,
    set_pending_mw,
)


@attrs.frozen
class ADMMParams(ChannelFields):
    rho: float = quantity("$/MW²h", 50.0, gt=0, doc="initial ADMM penalty")
    tol: float = quantity("MW", 1e-4, gt=0, doc="primal residual tolerance (MW); the dual residual ρ·‖Δ(x − x̄)‖ "
                                               "($/MWh) is held to the same number (admm.dispatch module docstring)")
    max_iter: int = integer(2000, ge=1, doc="iterations per tick before the solve counts as unconverged")
    grid: bool = flag(True, doc="include the upstream grid for the participants without a GridConnection (buy at the "
                                "price, sell at min(sell_ratio·price, price)); the others trade through their meter")
    grid_limit_mw: float = quantity("MW", 100.0, gt=0, doc="the upstream grid's import and export limit")
    sell_ratio: float = quantity("1", 0.8, ge=0, le=1, doc="the grid buys at sell_ratio·price (at most the price) from "
                                                          "a participant without a GridConnection, or the community")
    ess_cost_a: float = quantity("$/MW²h", 2.0, ge=0, doc="quadratic wear cost of an ESS in the dispatch")
    offer_shift: float = quantity("$/MWh", 25.0, ge=0,
                                  doc="a learned participant's setpoint for a DG or ESS (−1…1 of its range) lowers that "
                                      "unit's offer by offer_shift·setpoint")
    warm_start: bool = flag(True, doc="start each tick's solve from the last converged dual u and penalty ρ")
    community: bool = flag(False, doc="the participants' meters are netted as one community meter (collective "
                                      "self-consumption): they trade with each other within their own meters' limits, "
                                      "the community's net exchange is billed as a GridConnection (the price, "
                                      "min(sell_ratio·price, price), the limits and demand charge below), and each "
                                      "member settles its own metered flow at the clearing price (settle)")
    import_limit_mw: float = quantity("MW", UNLIMITED, ge=0, doc="the community's import limit (community: true)")
    export_limit_mw: float = quantity("MW", UNLIMITED, ge=0, doc="the community's export limit (community: true)")
    demand_charge: float = quantity("$/MW", 0.0, ge=0, doc="per MW of the community's peak import (community: true)")
    limit_price: float = quantity("$/MWh", 1000.0, ge=0,
                                  doc="what each MWh beyond the community's limits (community: true) or a member's "
                                      "meter limits (community: false) costs in the plan (a soft limit: the plan stays "
                                      "feasible when the units cannot hold it; 0: the limits are not in the plan)")


def _billed(agent: Any, net: Any) -> bool:
    """Whether a GridConnection of ``agent``'s hierarchy (below its root) meters one of its devices' buses."""
    root = agent
    while root.parent is not None:
        root = root.parent
    buses = {d.bus for d in agent.devices()}
    return any(buses & {int(b) for b in d.device.billed_buses(net)} for d in root.devices() if kind(d) == "GridConnection")


class ADMMDispatch(HorizontalProtocol):
    """Distributed economic dispatch of the participants' DGs and ESSs by exchange ADMM each tick.

    Area i (a GridAgent): units = its DGs (``cost_a·p² + cost_b·p``, or their piecewise-linear curve) and ESSs
    (:func:`ess_units`: ``ess_cost_a·p²`` wear and the stored energy's value as the environment counts it at the
    end, ``reward.storage_value``: each MWh it can deliver worth ``V = ctx.store_price``, the episode's mean price,
    0 under ``none`` and 0 for a store behind no billing meter (:attr:`valued_stores`); so a discharge offer of
    ``V`` and a charge bid of ``η_c·η_d·V`` $/MWh, the two swapped when ``V < 0``, its ``degradation_cost`` on each).
    A learned participant's (``policy: learned``) offers are lowered by ``offer_shift·s`` $/MWh, ``s`` ∈ [−1, 1] its
    device's setpoint from its action (scaled to the device's action range: 1 asks for its most output, −1 for its
    least); a rule participant offers its units at cost (its rule's setpoints are replaced, not bid).
    Demand = its net load (the loads less PV, wind and the other devices) as known before the flow
    (:meth:`demand_mw`): with a meter, its last reading (PCC import + its units' injections) plus the forecast change
    since then of the loads behind it (their forecast, the episode's schedule without its jitter with the share of the
    last deviation that persists, less their actual MW at the reading: :class:`~powergrid.loads.LoadGroup`) less the
    change of its other devices' injections as planned (:meth:`planned_mw`: a PV or wind unit by persistence, its
    pending fraction of the power available at its last step, so only its curtailment changes, not the sun or the wind;
    the others under their pending setpoints),
    at the first tick those loads' forecast less those injections; without a meter, its last reading (0 MW before
    any). A participant with a GridConnection buys and sells through it as it is billed (:meth:`areas`: import at the
    price, export at ``min(sell_ratio·price, price)``, beyond its limits ``limit_price`` $/MWh more), so an exchange
    between two microgrids costs the importer the price and pays the exporter its export price, as their meters bill
    it, and never beats trading with the grid.
    A participant without one that no GridConnection of its hierarchy bills (:meth:`attach`) gets its energy free: it
    plans it at 0 $/MWh, as the reward counts it. Another one (billed above it) exchanges ``x_i`` with the others
    and, with ``grid``, the upstream grid, one more area selling at the price and buying at
    ``min(sell_ratio·price, price)`` (:meth:`grid_tie`) with one net exchange at any price sign
    (:func:`dispatch_with_grid`). A meter's ``demand_charge`` is in its tariff: import above the episode's peak so far
    costs ``demand_charge/dt_h`` $/MWh more (:func:`tariff_units`; per tick: what this tick adds to the bill given
    the peak so far, without foresight of the day's peak, so it may shave an early import a later peak makes free).

    With ``community`` the participants' meters are netted as one community meter (collective self-consumption): each
    participant exchanges ``x_i`` (its PCC export) with the others within its own meter's limits, and the community's
    net exchange with the grid is billed as one GridConnection: import at the price, export at
    ``min(sell_ratio·price, price)``, beyond ``import_limit_mw`` / ``export_limit_mw`` ``limit_price`` $/MWh more in
    the plan (safety in the reward), ``demand_charge`` on its peak import. Settlement (:meth:`settle`): every member's
    metered flow ``m_i`` (MW) is billed at the plan's clearing price λ (the market price after an unconverged solve);
    the grid's bill less ``λ·Σm`` (0 when the community imports at λ = price or exports at λ = its export price; the
    scarcity rent ``(λ − price)·Σm`` refunded when it imports at its limit) is shared by the members on the side the
    community trades (importers when ``Σm ≥ 0``, else exporters) in proportion to their flows, the demand charge and
    the MW beyond the import limit in proportion to their imports, those beyond the export limit to their exports, so
    the members' bills add up to the community's. Each member's reward is its own share: its devices' costs and its
    bill; a member exporting at the limit is paid λ, the value of its energy to the community.

    Coupling Σ x = 0. The dispatch is applied as the units' setpoints (``result.p``: MW per device, then a grid area's
    import and export; ``result.x``: each participant's PCC export, MW). Observation and info: each participant's price
    ($/MWh, the marginal price of its energy in the plan: its meter's price or export price when it imports or exports,
    its units' marginal cost in between, a participant without a meter or a community member the clearing price) and
    PCC export (MW); the info adds iterations, messages, ``grid_mw`` (MW the participants draw from the upstream grid),
    ``cost_per_h``: the plan's cost at the units' true offers, without the learned shifts ($/h: fuel, ESS wear and
    stored energy at its value, meter bills), and with ``community`` ``community_mw`` (the community's metered net
    import at the last settlement, MW) and ``settlement`` (each member's $ at it on top of its devices' costs: its
    flow at λ and its shares less its own meter's bill; a member's cost is its devices' plus this).

    Through a channel each iteration is a synchronous round of ``channel_delay + 1`` channel ticks
    (:func:`admm_dispatch`). A solve that ends unconverged (``max_iter``; every ``x_i`` lost) is not a dispatch
    (Σx ≠ 0): it is not applied (the participants' own setpoints stand), the observation is the tick's market price
    and no exchange, the info says ``converged: False, applied: False`` with a ``message``, and the next tick warm
    starts from the last converged solve.
    """

    participant_kinds = ("grid", "system")  # among microgrid controllers: a device agent is a config error

    Params = ADMMParams

    def __init__(self, params: ADMMParams, participants: Sequence[Any]) -> None:
        super().__init__(params, participants)
        self.meters = {a.id: meter_of(a) for a in self.participants}
        unmetered = [a for a, m in self.meters.items() if m is None]
        if params.community and unmetered:
            raise ValueError(f"community: true bills each member's metered flow, but {', '.join(unmetered)} has no "
                             "GridConnection; expected one below every participant")
        # the upstream grid is an area for the community or the participants without a meter (the others trade
        # through their meter)
        self._tie = params.grid and (params.community or bool(unmetered))
        self._free: set[str] = set()  # participants no meter bills (attach): they plan their energy at 0 $/MWh
        self.loads: dict[str, LoadGroup] = {}  # the loads behind each participant's meter (attach)
        # each participant's devices that are neither dispatched nor its meter (PV, wind, flexible loads…), each with
        # whether it is a renewable (its available power from a profile, forecast by persistence: planned_mw)
        self._others = {a.id: [(d, is_renewable(d)) for d in a.devices()
                               if kind(d) not in (*DISPATCHABLE, "GridConnection")] for a in self.participants}
        areas = len(self.participants) + self._tie
        self.channel = build_channel(params, areas, f"the x_i of the {areas} areas, sent every iteration")
        self.dispatched = {a.id: devices_of(a, DISPATCHABLE) for a in self.participants}  # device agents per area
        self._perfect = params.channel == "ideal" and not (params.channel_delay or params.channel_loss
                                                           or params.channel_capacity)
        self._value_stores()
        self._reset_state()

    def attach(self, net: Any) -> None:
        """Values the participants' stores as the reward does (:attr:`valued_stores`, told by the builder) and finds the
        participants without a meter that no GridConnection of their hierarchy bills: their energy is free; and the
        loads behind each meter, whose forecast change it adds to the demand."""
        self._value_stores()
        self.loads = {a: LoadGroup.at(net, m.device.billed_buses(net)) for a, m in self.meters.items() if m is not None}
        self._free = {a.id for a in self.participants if self.meters[a.id] is None and not _billed(a, net)}
        self._tie = self.params.grid and (self.params.community or any(
            m is None and a not in self._free for a, m in self.meters.items()))

    def _value_stores(self) -> None:
        valued = self.valued_stores
        # per participant: (device agent, whether a DG, the share of ctx.store_price a MWh in its store is worth)
        self._units_of = {a.id: [(d, kind(d) == "DG", float(valued is None or d.id in valued))
                                 for d in self.dispatched[a.id]] for a in self.participants}

    def _reset_state(self) -> None:
        #: each participant's net load at its last reading (MW; None before any)
        self.net_load: dict[str, float | None] = {a.id: None for a in self.participants}
        self.result: Dispatch | None = None
        self.projection: dict[str, float] = {}
        self._u, self._rho = 0.0, self.params.rho
        self._clock = 0
        self._price = 0.0  # the tick's market price ($/MWh), observed when the solve did not converge
        self._prices = np.zeros(len(self.participants))  # each participant's marginal price in the plan ($/MWh)
        self._dt_h = 1.0  # the tick (h), for the demand charges' price per MWh
        self._peak = {a.id: 0.0 for a in self.participants}  # each meter's peak import so far (MW), as it bills it
        self._community_peak = 0.0  # the community's peak net import so far (MW)
        self._clearing = 0.0  # the price the members settle their flows at ($/MWh): the plan's, else the market's
        self.community_mw = 0.0  # the community's metered net import at the last settlement (MW)
        self.settlement: dict[str, float] = {}  # each member's settlement at the last one ($ on its devices' costs)

    def reset(self, rng: np.random.Generator) -> None:
        self.channel.reset(int(rng.integers(2**31)))
        self._reset_state()

    def observation_features(self, agent: Any) -> tuple[Feature, ...]:
        """``[price $/MWh, the agent's scheduled exchange MW]``."""
        return (scaling.PRICE, scaling.power(1.0))

    def grid_tie(self, price: float) -> GridTie:
        """The upstream grid at ``price`` $/MWh, billed like a GridConnection: it sells at the price and buys at
        ``min(sell_ratio·price, price)``."""
        p = self.params
        if not p.community:
            return GridTie(price, float(export_price(price, p.sell_ratio)), p.grid_limit_mw)
        return GridTie(price, float(export_price(price, p.sell_ratio)), p.grid_limit_mw, p.import_limit_mw,
                       p.export_limit_mw, p.limit_price, self._community_peak, p.demand_charge / self._dt_h)

    def areas(self, value: float, price: float, demand: Mapping[str, float] | None = None
              ) -> tuple[list[Area], list[list[Any]], list[np.ndarray]]:
        """The participants as ADMM areas at market ``price`` $/MWh, each MWh in a valued store (:attr:`valued_stores`)
        worth ``value`` $/MWh (in the others 0), each one's ``demand`` (MW by participant id, :meth:`demand_mw`; None:
        its last reading, :attr:`net_load`, 0 MW before any), the device agent behind each unit (a piecewise-cost DG
        has one unit per piece of its fuel curve, an ESS a charge and a discharge unit; None: the meter's import or
        export unit) and each unit's learned offer shift ($/MWh, taken off its ``b``).

        A metered participant's (GridConnection) PCC flow is its meter's: import units at ``price`` (above its peak so
        far ``demand_charge/dt_h`` more) and export units at ``min(sell_ratio·price, price)`` (its own ``sell_ratio``),
        unbounded (``grid_limit_mw`` is the upstream grid's, not a meter's), billed as the meter
        bills them, each MWh beyond its ``import_limit_mw`` / ``export_limit_mw`` ``limit_price`` more (soft, as the
        community's limits: a member its units cannot keep within its limit still gets a plan; :class:`GridTie`),
        and its exchange with the others is held at 0 MW: energy between two microgrids crosses both
        meters, the importer pays the price, the exporter is paid its export price. A community member
        (``community``) exchanges with the others within its meter's limits (``x_i`` ∈ ``[−import_limit_mw,
        export_limit_mw]``). A participant without a meter exchanges with the others (and the grid tie) unbounded, or,
        when nobody bills its energy, through a free meter (0 $/MWh both ways).
        """
        areas, owners, shifts = [], [], []
        for agent in self.participants:
            units, devs, shift = [], [], []
            for d, is_dg, worth in self._units_of[agent.id]:
                lo, hi = mw_range(d)
                prm = d.device.params
                if not is_dg:
                    # a stored MWh can deliver η_d MWh, each worth ``value`` (Device.stored_mwh, as the env values it)
                    pieces = ess_units(lo, hi, worth * value * prm.eta_discharge, prm.eta_charge, prm.eta_discharge,
                                       self.params.ess_cost_a, prm.degradation_cost)
                elif prm.cost_curve == "piecewise":  # the curve it is billed by, as linear pieces
                    pieces = curve_units(prm.pwl_mw, prm.pwl_cost_per_h, lo, hi)
                else:
                    pieces = [Unit(prm.cost_a, prm.cost_b, lo, hi)]
                s = self.params.offer_shift * self._setpoint(d) if agent.learned else 0.0
                if s:
                    pieces = [attrs.evolve(u, b=u.b - s) for u in pieces]
                units += pieces
                devs += [d] * len(pieces)
                shift += [s] * len(pieces)
            meter = self.meters[agent.id]
            x_min, x_max = -UNLIMITED, UNLIMITED
            if meter is not None and self.params.community:
                x_min, x_max = -meter.device.params.import_limit_mw, meter.device.params.export_limit_mw
            elif meter is not None or agent.id in self._free:
                if meter is None:  # nobody bills its energy: free, within the grid's limit
                    tariff = tariff_units(0.0, 0.0, self.params.grid_limit_mw, self.params.grid_limit_mw)
                else:  # billed as the community's meter is: soft limits, so a short member leaves the plan feasible
                    prm = meter.device.params
                    tie = GridTie(price, float(export_price(price, meter.sell_ratio)), UNLIMITED,
                                  prm.import_limit_mw, prm.export_limit_mw, self.params.limit_price,
                                  self._peak[agent.id], prm.demand_charge / self._dt_h)
                    tariff = list(tie.area().units)
                units += tariff
                devs += [None] * len(tariff)
                shift += [0.0] * len(tariff)
                x_min = x_max = 0.0
            d = (demand or self.net_load)[agent.id]
            areas.append(Area(tuple(units), 0.0 if d is None else d, x_min, x_max))
            owners.append(devs)
            shifts.append(np.array(shift))
        return areas, owners, shifts

    @staticmethod
    def _setpoint(d: Any) -> float:
        """The device agent's pending MW setpoint scaled to ``[−1, 1]`` of its action range (0: none)."""
        if d.pending is None:
            return 0.0
        space = d.device.action_space
        lo, hi = float(space.low.reshape(-1)[0]), float(space.high.reshape(-1)[0])
        mw = float(np.asarray(d.pending, np.float64).reshape(-1)[0])
        return min(max(2.0 * (mw - lo) / (hi - lo) - 1.0, -1.0), 1.0) if hi > lo else 0.0

    def demand_mw(self, agent: Any, ctx: StepContext) -> float:
        """``agent``'s net load this tick (MW: what its units and its exchange cover), as known before the flow. With a
        meter: its last reading (:attr:`net_load`) plus the forecast change of the loads behind the meter
        (:attr:`loads`: their forecast, with the persisting share of the last deviation, less their actual MW at the
        reading, :meth:`LoadGroup.forecast_change_mw
        <powergrid.loads.LoadGroup.forecast_change_mw>`) less the change of its other devices' injections as planned
        (PV, wind, flexible loads…: :meth:`planned_mw`; one that cannot be predicted as it was); before any reading
        (the first tick), those loads' forecast less those injections. Without a meter: its last reading (0 MW before
        any)."""
        loads, last = self.loads.get(agent.id), self.net_load[agent.id]
        if loads is None:
            return 0.0 if last is None else last
        now = [(self.planned_mw(d, renewable, ctx), d) for d, renewable in self._others[agent.id]]
        if last is None:
            return loads.forecast_mw(ctx) - sum(p for p, _ in now if p is not None)
        return last + loads.forecast_change_mw(ctx) - sum(
            p - float(finite_or(d.device.p_mw, 0.0)) for p, d in now if p is not None)

    @staticmethod
    def planned_mw(d: Any, renewable: bool, ctx: StepContext) -> float | None:
        """The MW device agent ``d`` (neither dispatched nor a meter) injects this tick as the plan knows it before the
        flow: a ``renewable`` (PV, wind) its pending fraction of the power available at its last step (persistence,
        as :class:`~powergrid_protocols.droop.Droop`'s ``Â_r`` and what the learner observes: the change since is its
        curtailment's, not the sun's or the wind's; 0 MW before its first step), another device under its pending
        setpoint (:func:`injection_mw`; None: one that cannot be predicted)."""
        if renewable:
            return pending_fraction(d) * float(d.device.available)
        return injection_mw(d, d.pending, ctx)

    def coordinate(self, actions: Mapping[str, np.ndarray], ctx: StepContext) -> None:
        p = self.params
        self.projection = {}
        project_pending(self.participants, self.projection)
        self._dt_h = ctx.dt_h
        demand = {a.id: self.demand_mw(a, ctx) for a in self.participants}
        areas, owners, shifts = self.areas(ctx.store_price, float(ctx.price), demand)  # stores valued as the reward does
        u0, rho = (self._u, self._rho) if p.warm_start else (0.0, p.rho)
        options = {"rho": rho, "tol": p.tol, "max_iter": p.max_iter, "u0": u0,
                   "channel": None if self._perfect else self.channel, "start_tick": self._clock}
        if self._tie:
            r = dispatch_with_grid(areas, self.grid_tie(float(ctx.price)), **options)
        else:
            r = admm_dispatch(areas, 0.0, **options)
        self._clock = clock_after(self.channel, self._clock, r.iterations * (self.channel.delay + 1))
        schedules = []  # per participant {device agent: MW}: a device's units (pieces, charge/discharge) add up
        for devs, power in zip(owners, r.p):
            total: dict[Any, float] = {}
            for d, value in zip(devs, power):
                if d is not None:  # not the meter's units
                    total[d] = total.get(d, 0.0) + float(value)
            schedules.append(total)
        # the result's p per device (in device order), then a grid area's (import, export); x each participant's PCC
        # export (MW); its cost at the units' true offers, without the learned shifts
        export = np.array([sum(t.values()) - a.demand_mw for t, a in zip(schedules, areas)])
        cost = r.cost + sum(float(s @ q) for s, q in zip(shifts, r.p))
        self.result = attrs.evolve(r, p=(*(np.array(list(t.values())) for t in schedules), *r.p[len(owners):]),
                                   x=export, cost=cost)
        self._price = self._clearing = float(ctx.price)
        if not r.converged:  # Σx ≠ 0: not a dispatch; the participants keep their own setpoints, the warm start its
            return  # last converged (u, ρ)
        # each participant's marginal price: a metered one's own (its meter's tariff at the margin, or its units'
        # marginal cost between importing and exporting), the others' the coupling's clearing price
        self._prices = np.array([r.price if (self.meters[a.id] is None and a.id not in self._free) or p.community
                                 else dispatch_total(area.units, area.demand_mw)[1]
                                 for a, area in zip(self.participants, areas)])
        self._u, self._rho = r.u, r.rho
        self._clearing = r.price
        for total in schedules:
            for d, value in total.items():
                set_pending_mw(d, value)

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> dict[str, tuple[float, float]]:
        if not result.converged:
            return {}
        flows = {}
        for agent in self.participants:
            meter = self.meters[agent.id]
            flow = meter.flow(result) if meter is not None else 0.0
            # the residual demand the units and the exchange cover: PV, wind and device loads are in it, so
            # x = Σ units − d is the PCC export (Σ over every device would count them as demand)
            injected = sum(d.device.p_mw for d in self.dispatched[agent.id])
            if np.isfinite(flow + injected):  # a non-finite reading is ignored
                self.net_load[agent.id] = float(flow + injected)
            if np.isfinite(flow):
                flows[agent.id] = flow
                self._peak[agent.id] = max(self._peak[agent.id], flow)
        if not self.params.community or len(flows) < len(self.participants):  # a NaN flow: nothing is settled
            return {}
        return self._community_bills(flows, ctx)

    def _community_bills(self, flows: dict[str, float], ctx: StepContext) -> dict[str, tuple[float, float]]:
        """Each member's ``(cost $, safety)`` to add to what its own meter billed (see the class docstring): its flow
        at the clearing price, its share of the grid bill's difference from that, of the demand charge and of the MW
        beyond the community's limits, less its own meter's bill."""
        p, dt = self.params, ctx.dt_h
        g = sum(flows.values())
        rate = ctx.price if g >= 0 else float(export_price(ctx.price, p.sell_ratio))
        residual = (rate - self._clearing) * g * dt  # the grid's bill less the community's flow at the clearing price
        imports = {a: max(m, 0.0) for a, m in flows.items()}
        exports = {a: max(-m, 0.0) for a, m in flows.items()}
        rise = max(g - self._community_peak, 0.0)
        self._community_peak += rise
        over, under = max(g - p.import_limit_mw, 0.0), max(-g - p.export_limit_mw, 0.0)
        total_in, total_out = sum(imports.values()) or 1.0, sum(exports.values()) or 1.0
        out = {}
        for a, m in flows.items():
            share_in, share_out = imports[a] / total_in, exports[a] / total_out
            cost = (self._clearing * m * dt + residual * (share_in if g >= 0 else share_out)
                    + p.demand_charge * rise * share_in - self.meters[a].bill(m, ctx.price, dt))
            out[a] = (float(cost), float(over * share_in + under * share_out))
        self.community_mw = g
        self.settlement = {a: c for a, (c, _) in out.items()}
        return out

    def observe(self, agent: Any) -> np.ndarray:
        r = self.result
        if r is None:
            return np.zeros(2, np.float32)
        if not r.converged:  # no clearing price, no schedule: the market price and no exchange
            return np.array([self._price, 0.0], np.float32)
        i = self.participants.index(agent)
        return np.array([self._prices[i], r.x[i]], np.float32)

    def info(self) -> dict[str, Any]:
        r = self.result
        if r is None:
            return {"iterations": 0, "converged": False}
        if not r.converged:
            return {"iterations": r.iterations, "converged": False, "applied": False, "messages": r.messages,
                    "primal_residual": r.primal_residual, "projection": dict(self.projection),
                    "message": f"no convergence in {r.iterations} iterations (primal residual {r.primal_residual:.3g} "
                               f"MW, tol {self.params.tol:g}): the participants' own setpoints are applied"}
        ids = [a.id for a in self.participants]
        community = {"community_mw": self.community_mw, "settlement": dict(self.settlement)} if self.params.community \
            else {}
        return {**community, "iterations": r.iterations, "converged": True, "applied": True, "messages": r.messages,
                "price": dict(zip(ids, self._prices.tolist())), "cost_per_h": r.cost,
                "exchange_mw": dict(zip(ids, r.x.tolist())),
                "primal_residual": r.primal_residual, "grid_mw": float(-r.x.sum()), "projection": dict(self.projection)}


__all__ = ["ADMMDispatch", "ADMMParams"]

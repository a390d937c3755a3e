"""The nodal market protocol: a DC-OPF over the environment's network with the participants' offers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import gymnasium
import numpy as np

from powergrid import scaling
from powergrid.devices import StepContext, box
from powergrid.loads import LoadGroup
from powergrid.params import flag, integer, quantity
from powergrid.protocols import HorizontalProtocol
from powergrid.scaling import Feature
from powergrid.solvers.base import PowerFlowResult
from powergrid_protocols.common import (
    Meter,
    devices_of,
    dg_marginal,
    injection_mw,
    kind,
    meter_of,
    mw_range,
    project_pending,
    read_extra,
    set_pending_mw,
)
from powergrid_protocols.lmp.dcopf import DCNetwork, MarketResult, Offer, clear_market, dc_network


def with_pcc_agreements(dc: DCNetwork, meters: Iterable[Meter], penalty: float = np.inf) -> DCNetwork:
    """``dc`` with each meter's branch (the trafo or line its GridConnection meters) limited to the meter's
    ``import_limit_mw`` into its microgrid and ``export_limit_mw`` out of it, MW (the import is the branch's from → to
    flow, or to → from for a line metered with sign −1), exceeded at ``penalty`` $/MWh; a meter at an ext_grid or at
    a branch out of the model limits nothing."""
    for meter in meters:
        if (meter.element, meter.row) in dc.elements:
            p = meter.device.params
            imp, exp = p.import_limit_mw, p.export_limit_mw
            fwd, back = (imp, exp) if getattr(meter.device, "sign", 1.0) > 0 else (exp, imp)
            dc = dc.with_limits(dc.elements.index((meter.element, meter.row)), fwd, back, penalty)
    return dc


@attrs.frozen
class LMPParams:
    blocks: int = integer(3, ge=1, doc="offer blocks per DG of a rule participant")
    q_max_mw: float = quantity("MW", 1.0, gt=0, doc="largest offer of a learned participant")
    price_max: float = quantity("$/MWh", 300.0, gt=0)
    limit_scale: float = quantity("1", 1.0, gt=0, doc="scales every branch rating of the DC model")
    grid_offer_mw: float = quantity("MW", 1000.0, gt=0, doc="what the slack sells, and buys, at the market price")
    settle_at_lmp: bool = flag(True, doc="bill the PCC import at the participant's LMP instead of the meter price")
    pcc_limits: bool = flag(True, doc="limit each participant's PCC branch to its meter's import_limit_mw (MW into "
                                      "the microgrid) and export_limit_mw (MW out), within the branch rating")
    pcc_penalty: float = quantity("$/MWh", 1000.0, gt=0, doc="price of each MW the market schedules beyond a PCC "
                                  "agreement (finite: a hard limit would let a withheld offer fail the market); "
                                  "above price_max, so it is paid only when the offers behind the PCC cannot keep "
                                  "it within the agreement")

    def __attrs_post_init__(self) -> None:
        if self.pcc_penalty <= self.price_max:
            raise ValueError(f"pcc_penalty: expected a number above price_max ({self.price_max} $/MWh), "
                             f"got {self.pcc_penalty}")


class LMPMarket(HorizontalProtocol):
    """Nodal market: a DC-OPF over the network with the participants' offers; LMPs are published.

    Offers: learned participant — extra action ``[price $/MWh, quantity MW]`` at its first
    DG's bus, the quantity capped at what its DGs can add over their low ends (``Σ hi − lo`` of
    :func:`~powergrid.protocols.mw_range`; 0 without a DG), split over them in that proportion;
    rule participant — each DG in ``blocks`` equal blocks priced at the marginal
    cost of the block's midpoint. The slack sells and buys up to ``grid_offer_mw`` at the market price
    (the grid takes what the network exports: the participants' PV may exceed the load).
    A device at a bus out of the DC model (an out-of-service bus) takes no part: no offer, no PV.
    Demand: the load the AC flow serves at the tick — each in-service load at a bus of the DC
    model draws ``p_mw·scaling`` MW times its own multiplier (``ctx.load_multipliers``: customer
    class, jitter, scale; :mod:`powergrid.loads`); ``load_mw`` keeps it per DC node (MW) — minus
    what the participants' PV injects now (``f·P_av``: its pending curtailment of the available power) and their
    DGs' low ends (``mw_range``: the range after the DG's pending on/off request; the offers are above them).
    The cleared quantities become the DG setpoints; each
    participant's LMP (at the bus of its first non-meter device) is set as its devices' price and observed,
    and with ``settle_at_lmp`` its PCC import is billed at that LMP instead of the meter price, less the congestion
    rent on its agreement: each participant holds the right to its PCC branch's limits in the market (its agreement,
    or the rating when lower), so it is credited the branch's congestion price on its import up to the import limit
    (its export up to the export limit): only what it trades beyond its agreement pays the congestion price.
    Branch flows on binding limits separate the LMPs (reported as ``congested``). A congested branch that is no
    participant's PCC (a trunk) earns its rent for the market operator (ISO): ``info()["rent"]`` reports the tick's
    payments, receipts and congestion rent ($) and who gets it (:meth:`rent`).

    With ``pcc_limits`` (the default) the market honours the interconnection agreements the scenario scores: each
    participant's PCC branch (the trafo or line its GridConnection meters) carries at most the meter's
    ``import_limit_mw`` into the microgrid and ``export_limit_mw`` out of it (MW; the lower of each and the branch
    rating), so a congested PCC prices its microgrid at its own marginal offer. Without it the market may clear
    flows that the meter scores as safety. A meter at an ext_grid, or without limits below the rating, limits nothing.
    The limits are soft: when the microgrid's offers cannot keep its PCC within them, the market clears the excess (up
    to the rating, which stays hard; ``info()["excess_mw"]`` by branch) at ``pcc_penalty`` $/MWh (its LMP is then λ
    plus the penalty), so withholding an offer does not make the market fail.

    A failed market (infeasible or unsolved DC-OPF) publishes no LMP: its prices are *stale*.
    The DG setpoints are left as the participants chose them, every participant keeps the
    meter price of the tick (its devices' price, its observation, its PCC bill), and the
    observation's stale flag is 1 and the info says ``stale: True`` with the solver's message.
    The previous step's LMPs are never shown again.
    """

    participant_kinds = ("grid", "system")  # among microgrid controllers: a device agent is a config error

    Params = LMPParams

    def attach(self, net: Any) -> None:
        """Build the DC model from the environment's pandapower net."""
        self.dc = dc_network(net, limit_scale=self.params.limit_scale)
        self.meters = {a.id: meter_of(a) for a in self.participants}
        if self.params.pcc_limits:
            self.dc = with_pcc_agreements(self.dc, [m for m in self.meters.values() if m is not None],
                                          self.params.pcc_penalty)
        #: each participant's PCC right: its branch, the sign of its import on it, and its limits in (MW, import)
        #: and out (MW, export) in the market
        self.rights: dict[str, tuple[int, float, float, float]] = {}
        for aid, meter in self.meters.items():
            if meter is not None and (meter.element, meter.row) in self.dc.elements:
                b = self.dc.elements.index((meter.element, meter.row))
                sign = 1.0 if getattr(meter.device, "sign", 1.0) > 0 else -1.0
                fwd, back = float(self.dc.limit_mw[b]), float(self.dc.limit_back_mw[b])
                self.rights[aid] = (b, sign, *((fwd, back) if sign > 0 else (back, fwd)))
        node_of = self.dc.node_of
        # the loads the AC flow serves: in service, at a bus the DC model holds (an out-of-service bus has no node)
        load_bus = np.array([list(net.bus.index).index(b) for b in net.load.bus], np.int64)  # bus positions
        load_node = node_of[load_bus]
        served = net.load.in_service.to_numpy(bool) & (load_node >= 0)
        self._load_rows = np.flatnonzero(served)
        self._load_node = load_node[served]
        self._load_p = (net.load.p_mw.to_numpy(float) * net.load.scaling.to_numpy(float) if "scaling" in net.load
                        else net.load.p_mw.to_numpy(float))[served]
        self._slack = self.dc.slack
        #: the loads each participant's meter serves, at buses of the DC model (what :meth:`load_change_mw` forecasts)
        self.behind: dict[str, LoadGroup] = {}
        for aid, meter in self.meters.items():
            if meter is not None:
                billed = meter.device.billed_buses(net)
                self.behind[aid] = LoadGroup.at(net, billed[node_of[billed] >= 0])
        self.node: dict[str, int] = {}
        for agent in self.participants:  # a device at a bus out of the model (out of service) has no node
            devs = [d for d in agent.devices() if node_of[d.bus] >= 0]
            devs = [d for d in devs if type(d.device).__name__ != "GridConnection"] or devs
            self.node[agent.id] = int(node_of[devs[0].bus]) if devs else self.dc.slack
        #: each participant's DGs at buses of the DC model (one at an out-of-service bus injects nothing)
        self.dgs = {a.id: [d for d in devices_of(a, ("DG",)) if node_of[d.bus] >= 0] for a in self.participants}
        #: each participant's other devices at buses of the DC model (PV, ESS, …; what they inject is taken off the
        #: demand): all but its DGs and its meter
        self.others = {a.id: [d for d in a.devices() if node_of[d.bus] >= 0 and kind(d) not in ("DG", "GridConnection")]
                       for a in self.participants}
        self.reset(np.random.default_rng(0))

    def reset(self, rng: np.random.Generator) -> None:
        self.result: MarketResult | None = None
        #: what the tick's market cleared against: the demand (MW by node), the offers' nodes and the tick (h) (:meth:`rent`)
        self._cleared: tuple[np.ndarray, list[int], float] = (np.zeros(0), [], 0.0)
        self.load_mw = np.zeros(self.dc.n_nodes)
        self.lmp = {a.id: 0.0 for a in self.participants}
        self.stale = False
        self.projection: dict[str, float] = {}
        #: the tick's settlement ($, cost to each participant) and the PCC congestion rent credited in it (:meth:`settle`)
        self.settled: dict[str, tuple[float, float]] = {}
        self.credited: dict[str, float] = {}

    def action_space(self, agent: Any) -> gymnasium.spaces.Box:
        return box([0.0, 0.0], [self.params.price_max, self.params.q_max_mw])

    def observation_features(self, agent: Any) -> tuple[Feature, ...]:
        """``[price $/MWh, congested (0/1), stale (0/1)]``."""
        return (scaling.PRICE, scaling.FLAG, scaling.FLAG)

    def load_change_mw(self, agent: Any, ctx: StepContext) -> float:
        """MW by which the loads behind ``agent``'s meter (:attr:`behind`) are forecast to change from the last tick
        (its reading: their actual MW) to this one (their forecast, the schedule without its jitter with the share of
        the last deviation that persists: :meth:`~powergrid.loads.LoadGroup.forecast_change_mw`), which the setpoint
        rule adds to the import it predicts. The market clears against the tick's actual load (the flow's), which the
        forecast misses by the jitter's fresh part."""
        behind = self.behind.get(agent.id)
        return behind.forecast_change_mw(ctx) if behind is not None else 0.0

    def rule_extra(self, agent: Any, parts: list[np.ndarray] | None, ctx: StepContext) -> np.ndarray:
        """The rule's blocks as the one offer a learned participant has: ``[$/MWh, MW]``, its DGs' room over their
        low ends at the room-weighted marginal cost of their midpoints (the middle block's price for one DG)."""
        ranges = [mw_range(d) for d in self.dgs[agent.id]]
        room = np.array([hi - lo for lo, hi in ranges])
        if room.sum() <= 0.0:
            return np.zeros(2)
        cost = np.array([dg_marginal(d, 0.5 * (lo + hi)) for d, (lo, hi) in zip(self.dgs[agent.id], ranges)])
        return np.array([float(cost @ room / room.sum()), float(room.sum())])

    def offers(self, actions: Mapping[str, np.ndarray], ctx: StepContext) -> tuple[list[Offer], list[Any]]:
        grid = self.params.grid_offer_mw
        offers: list[Offer] = [Offer(self._slack, float(ctx.price), grid, "grid", grid)]
        owners: list[Any] = [None]
        for agent in self.participants:
            dgs = self.dgs[agent.id]
            extra = read_extra(agent, actions, self.action_space(agent), self.projection)
            if extra is not None:  # capped at the MW its DGs can add over their low ends (none without a DG)
                node = int(self.dc.node_of[dgs[0].bus]) if dgs else self.node[agent.id]
                room = sum(hi - lo for lo, hi in map(mw_range, dgs))
                offers.append(Offer(node, float(extra[0]), min(float(extra[1]), room), agent.id))
                owners.append(dgs)
                continue
            for d in dgs:
                lo, hi = mw_range(d)
                step = (hi - lo) / self.params.blocks
                for b in range(self.params.blocks):
                    mid = lo + (b + 0.5) * step
                    offers.append(Offer(int(self.dc.node_of[d.bus]), dg_marginal(d, mid), step, agent.id))
                    owners.append([d])
        return offers, owners

    def coordinate(self, actions: Mapping[str, np.ndarray], ctx: StepContext) -> None:
        self.projection = {}
        project_pending(self.participants, self.projection)
        m = ctx.load_multipliers[ctx.tick, self._load_rows]  # the multipliers the env gives the AC flow's loads
        self.load_mw = np.bincount(self._load_node, m * self._load_p, self.dc.n_nodes)
        demand = self.load_mw.copy()
        for agent in self.participants:
            for d in self.others[agent.id]:  # what it injects now under its pending action (PV: f·P_av; ESS: its MW)
                demand[self.dc.node_of[d.bus]] -= injection_mw(d, d.pending, ctx) or 0.0
            for d in self.dgs[agent.id]:  # a DG runs its low end (p_min, ramp window) whatever clears: offers are above it
                demand[self.dc.node_of[d.bus]] -= mw_range(d)[0]
        offers, owners = self.offers(actions, ctx)
        r = clear_market(self.dc, offers, demand)
        self.result = r
        self._cleared = (demand, [o.node for o in offers], ctx.dt_h)
        self.stale = not r.success
        if self.stale:  # no LMP this tick: everyone keeps the meter price (set on the devices by the env)
            self.lmp = {a.id: float(ctx.price) for a in self.participants}
            return
        cleared: dict[int, float] = {}
        for devs, g in zip(owners, r.dispatch_mw):
            if not devs:
                continue
            if len(devs) == 1:
                cleared[id(devs[0])] = cleared.get(id(devs[0]), 0.0) + g
            elif g > 0.0:  # a learned offer: split over its DGs by the MW each can add (the offer is within their sum)
                room = np.array([hi - lo for lo, hi in map(mw_range, devs)])
                for d, share in zip(devs, room / room.sum()):
                    cleared[id(d)] = cleared.get(id(d), 0.0) + g * share
        for agent in self.participants:
            price = float(r.lmp[self.node[agent.id]])
            self.lmp[agent.id] = price
            for d in agent.devices():
                d.price = price
            for d in self.dgs[agent.id]:
                lo, _ = mw_range(d)
                set_pending_mw(d, lo + cleared.get(id(d), 0.0))

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> dict[str, tuple[float, float]]:
        out: dict[str, tuple[float, float]] = {}
        self.settled, self.credited = out, {}
        if not self.params.settle_at_lmp or self.result is None or self.stale or not result.converged:
            return out
        for agent in self.participants:
            meter = self.meters[agent.id]
            if meter is None:
                continue
            m = meter.flow(result)
            if not np.isfinite(m):
                continue
            cost = self.lmp[agent.id] * m * ctx.dt_h - meter.bill(m, ctx.price, ctx.dt_h)
            if agent.id in self.rights:  # the congestion rent on its agreement is its own
                b, sign, imp, exp = self.rights[agent.id]
                credit = sign * float(self.result.congestion_price[b]) * min(max(m, -exp), imp) * ctx.dt_h
                self.credited[agent.id] = credit
                cost -= credit
            out[agent.id] = (cost, 0.0)
        return out

    def rent(self) -> dict[str, Any]:
        """The tick's money in the cleared market, $ over the tick (empty for a failed market): ``payments``, the net
        demand (the loads less the PV, batteries and DG low ends) at its LMPs; ``receipts``, the offers (the grid's
        included) at theirs; ``congestion``, the congestion rent Σ_l congestion_price_l·flow_l over the branches, equal
        to payments − receipts (the DC model is lossless); ``credited``, the rent on each participant's PCC agreement
        paid back to it (:meth:`settle`, on its metered import); ``iso``, the rest, the market operator's (a congested
        trunk's rent: no participant holds the right to it); ``settled``, what the participants pay the market beyond
        their meter bills (:meth:`settle`: the rent on their own trades beyond their rights, and an export's LMP above
        its meter's sell price), the part of it the environment bills: the loads of no participant pay no one."""
        r = self.result
        if r is None or self.stale:
            return {}
        demand, nodes, dt = self._cleared
        congestion = float(r.congestion_price @ r.flow_mw) * dt
        return {"payments": float(r.lmp @ demand) * dt, "receipts": float(r.lmp[nodes] @ r.dispatch_mw) * dt,
                "congestion": congestion, "credited": dict(self.credited),
                "iso": congestion - sum(self.credited.values()), "settled": sum(c for c, _ in self.settled.values())}

    def observe(self, agent: Any) -> np.ndarray:
        congested = 1.0 if self.result is not None and bool(self.result.congested.any()) else 0.0
        return np.array([self.lmp.get(agent.id, 0.0), congested, float(self.stale)], np.float32)

    def info(self) -> dict[str, Any]:
        r = self.result
        if r is None:
            return {"success": False, "stale": False}
        if self.stale:
            return {"success": False, "stale": True, "message": r.message, "price": dict(self.lmp),
                    "projection": dict(self.projection)}
        names = [n for n, c in zip(self.dc.names, r.congested) if c]
        excess = {n: float(x) for n, x in zip(self.dc.names, r.excess_mw) if x > 1e-9}
        return {"success": True, "stale": False, "lmp": dict(self.lmp), "system_lambda": r.system_lambda,
                "congested": names, "excess_mw": excess, "cost_per_h": r.cost, "projection": dict(self.projection),
                "rent": self.rent()}

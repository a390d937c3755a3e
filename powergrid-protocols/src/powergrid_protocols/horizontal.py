"""Horizontal protocols (owned by the environment): P2P trading, consensus, ADMM dispatch, LMP market,
droop and volt–var.

Each class is a thin wiring of a pure algorithm module into the step order of the
environment: ``coordinate`` runs after every agent chose its action (device
agents' ``pending`` setpoints are known) and before device physics, so a protocol
delivers its outcome by adjusting those setpoints; ``settle`` runs after the
power flow and returns ``{agent id: (cost $, safety)}`` added to each participant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import gymnasium
import numpy as np

from powergrid.devices import StepContext, box
from powergrid.params import Check, choice, flag, integer, quantity, text
from powergrid.protocols import HorizontalProtocol
from powergrid.solvers.base import PowerFlowResult
from powergrid_protocols import admm as admm_alg
from powergrid_protocols import auction, curves, dcopf, gossip
from powergrid_protocols.channel import Message
from powergrid_protocols.common import (
    INVERTER_TYPES,
    ChannelFields,
    build_channel,
    devices_of,
    meter_of,
    mw_range,
    pending_mw,
    q_setpoint,
    rating_mva,
    set_pending_mw,
    shift_generation,
)

DISPATCHABLE = ("DG", "ESS")


def _dg_marginal(d: Any, p_mw: float) -> float:
    p = d.device.params
    return float(p.cost_b + 2.0 * p.cost_a * p_mw)


def _learned_extra(agent: Any, actions: Mapping[str, np.ndarray]) -> np.ndarray | None:
    value = actions.get(agent.id)
    return None if value is None or np.size(value) == 0 else np.asarray(value, np.float64).reshape(-1)


# ---------------------------------------------------------------------------------------------- P2P trading
@attrs.frozen
class P2PParams(ChannelFields):
    k: float = quantity("1", 0.5, ge=0, le=1, doc="k of the k-double auction (0.5: midpoint)")
    q_max_mw: float = quantity("MW", 0.5, gt=0, doc="largest order (MW)")
    price_min: float = quantity("$/MWh", 0.0)
    price_max: float = quantity("$/MWh", 300.0)
    net_metering: bool = flag(True, doc="re-bill the PCC meter so traded MWh are not also bought from/sold to the grid")
    imbalance_factor: float = quantity("1", 1.0, ge=0, doc="undelivered MW are charged factor·market price")
    overload_percent: float = quantity("%", 100.0, gt=0, doc="PCC loading above this is a reported violation")


class P2PTrading(HorizontalProtocol):
    """Peer-to-peer energy trading among GridAgents by a uniform-price k-double auction each tick.

    Orders: a learned participant's extra action ``[limit price $/MWh, quantity MW]`` (quantity
    > 0 buys, < 0 sells, in ``[−q_max, q_max]``); a rule participant sells its DG headroom at its
    marginal cost when that is below the market price, else offers to buy back its own DG output
    at its marginal cost (replacing expensive local generation). Orders travel to the market
    through the protocol's channel (delay, loss); only arrived orders are cleared.

    Delivery: a seller raises, a buyer lowers, the setpoints of its DG then ESS by the traded MW,
    so the trade flows through the PCCs in the AC power flow. Undelivered MW are reported and
    charged at ``imbalance_factor·price``. Settlement: buyers pay and sellers receive
    ``p*·q·dt`` (Σ = 0); with ``net_metering`` the PCC meter bill ``C(m)`` is replaced by
    ``C(m − δ)`` (δ the delivered signed trade), so traded energy is not also billed by the grid.
    Network limits: the PCC element loading is reported; above ``overload_percent`` it adds safety.
    """

    Params = P2PParams

    def __init__(self, params: P2PParams, participants: Sequence[Any]) -> None:
        super().__init__(params, participants)
        self.channel = build_channel(params)
        self.meters = {a.id: meter_of(a) for a in self.participants}
        self._reset_state()

    def _reset_state(self) -> None:
        self.last: auction.Clearing | None = None
        self.delivered = {a.id: 0.0 for a in self.participants}
        self.undelivered = {a.id: 0.0 for a in self.participants}
        self.loading: dict[str, float] = {}
        self.messages = 0

    def action_space(self, agent: Any) -> gymnasium.spaces.Box:
        p = self.params
        return box([p.price_min, -p.q_max_mw], [p.price_max, p.q_max_mw])

    def observation_space(self, agent: Any) -> gymnasium.spaces.Box:
        return box([-np.inf, -np.inf], [np.inf, np.inf])

    def reset(self, rng: np.random.Generator) -> None:
        self.channel.reset(int(rng.integers(2**31)))
        self._reset_state()

    def rule_order(self, agent: Any, ctx: StepContext) -> tuple[float, float]:
        """(limit price, signed MW) of a rule participant (see the class docstring)."""
        dgs = devices_of(agent, ("DG",))
        if not dgs:
            return 0.0, 0.0
        headroom = sum(mw_range(d)[1] - pending_mw(d) for d in dgs)
        output = sum(pending_mw(d) - mw_range(d)[0] for d in dgs)
        cheapest = min(_dg_marginal(d, pending_mw(d)) for d in dgs)
        dearest = max(_dg_marginal(d, pending_mw(d)) for d in dgs)
        if headroom > 1e-6 and cheapest < ctx.price:
            return cheapest, -min(headroom, self.params.q_max_mw)
        if output > 1e-6:
            return dearest, min(output, self.params.q_max_mw)
        return 0.0, 0.0

    def coordinate(self, actions: Mapping[str, np.ndarray], ctx: StepContext) -> None:
        p = self.params
        for agent in self.participants:
            extra = _learned_extra(agent, actions)
            price, qty = (float(extra[0]), float(extra[1])) if extra is not None else self.rule_order(agent, ctx)
            self.channel.send(Message(agent.id, "market", (price, qty)), ctx.tick)
            self.messages += 1
        orders = []
        for m in self.channel.receive(ctx.tick, "market"):
            orders += auction.orders_from_signed(m.sender, *m.payload)
        clearing = auction.clear_double_auction(orders, k=p.k, dt_h=ctx.dt_h)
        self.last = clearing
        self.messages += sum(1 for q in clearing.net_mw.values() if q)  # the market tells each trader
        for agent in self.participants:
            q = clearing.net_mw.get(agent.id, 0.0)
            units = sorted(devices_of(agent, DISPATCHABLE), key=lambda d: DISPATCHABLE.index(type(d.device).__name__))
            left = shift_generation(units, -q) if q else 0.0  # DGs first, then batteries
            # the setpoints moved by −q − left: the delivered signed trade is q + left
            self.undelivered[agent.id] = abs(left)
            self.delivered[agent.id] = q + left

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> dict[str, tuple[float, float]]:
        p, c = self.params, self.last
        out: dict[str, tuple[float, float]] = {}
        self.loading = {}
        for agent in self.participants:
            cost = c.payment.get(agent.id, 0.0) if c is not None else 0.0
            cost += p.imbalance_factor * ctx.price * abs(self.undelivered[agent.id]) * ctx.dt_h
            unsafe = 0.0
            meter = self.meters[agent.id]
            if meter is not None and result.converged:
                m = meter.flow(result)
                delta = self.delivered[agent.id]
                if p.net_metering and delta:
                    cost += meter.bill(m - delta, ctx.price, ctx.dt_h) - meter.bill(m, ctx.price, ctx.dt_h)
                load = meter.loading(result)
                self.loading[agent.id] = load
                if np.isfinite(load):
                    unsafe = max(load / p.overload_percent - 1.0, 0.0)
            out[agent.id] = (float(cost), float(unsafe))
        return out

    def observe(self, agent: Any) -> np.ndarray:
        c = self.last
        price = c.price if c is not None and np.isfinite(c.price) else 0.0
        return np.array([price, c.net_mw.get(agent.id, 0.0) if c is not None else 0.0], np.float32)

    def info(self) -> dict[str, Any]:
        c = self.last
        return {
            "price": float(c.price) if c is not None and np.isfinite(c.price) else None,  # None: nothing cleared
            "volume_mw": float(c.volume_mw) if c is not None else 0.0,
            "trades_mw": dict(c.net_mw) if c is not None else {},
            "payments": dict(c.payment) if c is not None else {},
            "undelivered_mw": dict(self.undelivered),
            "pcc_loading_percent": dict(self.loading),
            "violation": any(v > self.params.overload_percent for v in self.loading.values() if np.isfinite(v)),
            "messages": self.messages,
        }


# ---------------------------------------------------------------------------------------------- consensus
def _edges_check() -> Check:
    expected = "a list of [agent id, agent id] pairs"

    def convert(value: Any) -> tuple[tuple[str, str], ...]:
        if isinstance(value, tuple) and all(isinstance(e, tuple) for e in value):
            return value
        if not isinstance(value, list):
            raise ValueError(expected)
        out = []
        for e in value:
            if not isinstance(e, (list, tuple)) or len(e) != 2 or not all(isinstance(x, str) for x in e):
                raise ValueError(expected)
            out.append((e[0], e[1]))
        return tuple(out)

    return Check(expected, convert)


def edge_list(default: tuple = ()) -> Any:
    check = _edges_check()
    return attrs.field(default=default, converter=check.convert, metadata={"unit": "", "check": check,
                                                                           "doc": "communication graph"})


@attrs.frozen
class ConsensusParams(ChannelFields):
    topology: str = choice(("ring", "star", "complete", "edges"), "ring", doc="communication graph")
    edges: tuple = edge_list()
    signal: str = choice(("marginal_cost", "voltage", "net_power"), "marginal_cost",
                         doc="what a rule participant contributes")
    value_min: float = quantity("1", 0.0, doc="bounds of a learned participant's value")
    value_max: float = quantity("1", 300.0)
    tol: float = quantity("1", 1e-6, gt=0, doc="agreement tolerance (max − min)")
    max_iter: int = integer(1000, ge=1)


class Consensus(HorizontalProtocol):
    """Average consensus by gossip among the participants each tick.

    Value of a participant: a learned agent's extra action (one number in
    ``[value_min, value_max]``); a rule agent's signal — its DG marginal cost at the
    current setpoint ($/MWh), its zone's mean voltage (pu, last power flow) or its
    devices' net injection (MW, last tick). Graph: ``ring``/``star``/``complete`` over the
    participants in order, or ``edges`` (pairs of participant ids). Gossip runs until
    agreement or ``max_iter`` (one channel tick per iteration); the observation is the
    agent's own estimate and the info reports iterations, convergence and connectivity.
    """

    Params = ConsensusParams

    def __init__(self, params: ConsensusParams, participants: Sequence[Any]) -> None:
        super().__init__(params, participants)
        ids = [a.id for a in self.participants]
        n = len(ids)
        if params.topology == "edges":
            index = {a: i for i, a in enumerate(ids)}
            for a, b in params.edges:
                if a not in index or b not in index:
                    raise ValueError(f"consensus edge ({a}, {b}) names a non-participant (participants: {ids})")
            self.edges = [(index[a], index[b]) for a, b in params.edges]
        elif params.topology == "ring":
            self.edges = gossip.ring(n)
        elif params.topology == "star":
            self.edges = gossip.star(n)
        else:
            self.edges = [(i, j) for i in range(n) for j in range(i + 1, n)]
        self.channel = build_channel(params)
        self._voltage = {a.id: 1.0 for a in self.participants}
        self._reset_state()

    def _reset_state(self) -> None:
        self.result: gossip.GossipResult | None = None
        self.estimate = {a.id: 0.0 for a in self.participants}
        self.target = 0.0
        self._clock = 0

    def reset(self, rng: np.random.Generator) -> None:
        self.channel.reset(int(rng.integers(2**31)))
        self._voltage = {a.id: 1.0 for a in self.participants}
        self._reset_state()

    def action_space(self, agent: Any) -> gymnasium.spaces.Box:
        return box(self.params.value_min, self.params.value_max)

    def observation_space(self, agent: Any) -> gymnasium.spaces.Box:
        return box([-np.inf, 0.0], [np.inf, 1.0])

    def rule_value(self, agent: Any, ctx: StepContext) -> float:
        signal = self.params.signal
        if signal == "voltage":
            return self._voltage[agent.id]
        if signal == "net_power":
            return float(sum(d.device.p_mw for d in agent.devices()))
        dgs = devices_of(agent, ("DG",))
        return float(np.mean([_dg_marginal(d, pending_mw(d)) for d in dgs])) if dgs else float(ctx.price)

    def coordinate(self, actions: Mapping[str, np.ndarray], ctx: StepContext) -> None:
        values = []
        for agent in self.participants:
            extra = _learned_extra(agent, actions)
            values.append(float(extra[0]) if extra is not None else self.rule_value(agent, ctx))
        self.result = gossip.gossip_average(values, self.edges, tol=self.params.tol, max_iter=self.params.max_iter,
                                            channel=self.channel, start_tick=self._clock)
        self._clock += self.result.iterations + self.channel.delay + 1
        self.channel.receive(self._clock)  # drop what is still in flight from this tick's rounds
        self.estimate = {a.id: float(v) for a, v in zip(self.participants, self.result.values)}
        self.target = float(np.mean(values))

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> dict[str, tuple[float, float]]:
        if result.converged:
            for agent in self.participants:
                zone = agent.zone if getattr(agent, "zone", None) is not None and len(agent.zone) else \
                    np.array([d.bus for d in agent.devices()], int)
                if len(zone):
                    self._voltage[agent.id] = float(np.mean(result.vm_pu[zone]))
        return {}

    def observe(self, agent: Any) -> np.ndarray:
        converged = 1.0 if self.result is not None and self.result.converged else 0.0
        return np.array([self.estimate.get(agent.id, 0.0), converged], np.float32)

    def info(self) -> dict[str, Any]:
        r = self.result
        if r is None:
            return {"iterations": 0, "converged": False}
        return {"iterations": r.iterations, "converged": r.converged, "connected": r.connected, "messages": r.messages,
                "average": self.target, "spread": r.spread, "estimates": dict(self.estimate)}


# ---------------------------------------------------------------------------------------------- ADMM
@attrs.frozen
class ADMMParams(ChannelFields):
    rho: float = quantity("$/MW²h", 50.0, gt=0, doc="initial ADMM penalty")
    tol: float = quantity("MW", 1e-4, gt=0, doc="primal and dual residual tolerance")
    max_iter: int = integer(2000, ge=1)
    grid: bool = flag(True, doc="include the upstream grid (buy at the price, sell at sell_ratio·price)")
    grid_limit_mw: float = quantity("MW", 100.0, gt=0)
    sell_ratio: float = quantity("1", 0.8, ge=0, le=1)
    ess_cost_a: float = quantity("$/MW²h", 2.0, ge=0, doc="quadratic wear cost of an ESS in the dispatch")
    warm_start: bool = flag(True)


class ADMMDispatch(HorizontalProtocol):
    """Distributed economic dispatch of the participants' DGs and ESSs by exchange ADMM each tick.

    Area i (a GridAgent): units = its DGs (``cost_a·p² + cost_b·p``) and ESSs
    (``ess_cost_a·p²`` over the feasible range); demand = its net load estimated from
    the last tick (PCC import + its devices' injections, i.e. persistence); exchange
    bounds = its GridConnection's import/export limits. With ``grid``, the upstream grid is
    one more area selling at the price and buying at ``sell_ratio``·price. Coupling Σ x = 0.
    The dispatch is applied as the units' setpoints; the info reports the clearing price
    (the dual, $/MWh), iterations, messages and the ADMM cost.
    """

    Params = ADMMParams

    def __init__(self, params: ADMMParams, participants: Sequence[Any]) -> None:
        super().__init__(params, participants)
        self.channel = build_channel(params)
        self.meters = {a.id: meter_of(a) for a in self.participants}
        self._reset_state()

    def _reset_state(self) -> None:
        self.net_load = {a.id: 0.0 for a in self.participants}
        self.result: admm_alg.Dispatch | None = None
        self._u, self._rho = 0.0, self.params.rho
        self._clock = 0

    def reset(self, rng: np.random.Generator) -> None:
        self.channel.reset(int(rng.integers(2**31)))
        self._reset_state()

    def observation_space(self, agent: Any) -> gymnasium.spaces.Box:
        return box([-np.inf, -np.inf], [np.inf, np.inf])

    def areas(self, ctx: StepContext) -> tuple[list[admm_alg.Area], list[list[Any]]]:
        p = self.params
        areas, owners = [], []
        for agent in self.participants:
            units, devs = [], []
            for d in devices_of(agent, DISPATCHABLE):
                lo, hi = mw_range(d)
                if type(d.device).__name__ == "DG":
                    units.append(admm_alg.Unit(d.device.params.cost_a, d.device.params.cost_b, lo, hi))
                else:
                    units.append(admm_alg.Unit(p.ess_cost_a, 0.0, lo, hi))
                devs.append(d)
            meter = self.meters[agent.id]
            x_min, x_max = -admm_alg.INF, admm_alg.INF
            if meter is not None:
                x_min, x_max = -meter.device.params.import_limit_mw, meter.device.params.export_limit_mw
            areas.append(admm_alg.Area(tuple(units), self.net_load[agent.id], x_min, x_max))
            owners.append(devs)
        if p.grid:
            g = p.grid_limit_mw
            areas.append(admm_alg.Area((admm_alg.Unit(0.0, ctx.price, 0.0, g),
                                        admm_alg.Unit(0.0, p.sell_ratio * ctx.price, -g, 0.0)), 0.0))
            owners.append([])
        return areas, owners

    def coordinate(self, actions: Mapping[str, np.ndarray], ctx: StepContext) -> None:
        p = self.params
        areas, owners = self.areas(ctx)
        u0, rho = (self._u, self._rho) if p.warm_start else (0.0, p.rho)
        r = admm_alg.admm_dispatch(areas, 0.0, rho=rho, tol=p.tol, max_iter=p.max_iter, u0=u0,
                                   channel=self.channel if p.channel != "ideal" or p.channel_delay or p.channel_loss else None,
                                   start_tick=self._clock)
        self._clock += r.iterations + self.channel.delay + 1
        self.channel.receive(self._clock)
        self._u, self._rho = r.u, r.rho
        self.result = r
        for devs, power in zip(owners, r.p):
            for d, value in zip(devs, power):
                set_pending_mw(d, float(value))

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> dict[str, tuple[float, float]]:
        if result.converged:
            for agent in self.participants:
                meter = self.meters[agent.id]
                injected = sum(d.device.p_mw for d in agent.devices())
                self.net_load[agent.id] = (meter.flow(result) if meter is not None else 0.0) + injected
        return {}

    def observe(self, agent: Any) -> np.ndarray:
        r = self.result
        if r is None:
            return np.zeros(2, np.float32)
        i = self.participants.index(agent)
        return np.array([r.price, r.x[i]], np.float32)

    def info(self) -> dict[str, Any]:
        r = self.result
        if r is None:
            return {"iterations": 0, "converged": False}
        return {"iterations": r.iterations, "converged": r.converged, "price": r.price, "messages": r.messages,
                "cost_per_h": r.cost, "exchange_mw": {a.id: float(r.x[i]) for i, a in enumerate(self.participants)},
                "primal_residual": r.primal_residual}


# ---------------------------------------------------------------------------------------------- LMP market
@attrs.frozen
class LMPParams:
    blocks: int = integer(3, ge=1, doc="offer blocks per DG of a rule participant")
    q_max_mw: float = quantity("MW", 1.0, gt=0, doc="largest offer of a learned participant")
    price_max: float = quantity("$/MWh", 300.0, gt=0)
    limit_scale: float = quantity("1", 1.0, gt=0, doc="scales every branch rating of the DC model")
    grid_offer_mw: float = quantity("MW", 1000.0, gt=0, doc="the slack's offer at the market price")
    settle_at_lmp: bool = flag(True, doc="bill the PCC import at the participant's LMP instead of the meter price")


class LMPMarket(HorizontalProtocol):
    """Nodal market: a DC-OPF over the network with the participants' offers; LMPs are published.

    Offers: learned participant — extra action ``[price $/MWh, quantity MW]`` at its first
    DG's bus; rule participant — each DG in ``blocks`` equal blocks priced at the marginal
    cost of the block's midpoint. The slack offers ``grid_offer_mw`` at the market price.
    Demand: every load of the network at the current load multiplier minus the participants'
    PV available now. The cleared quantities become the DG setpoints; each participant's LMP
    (at the bus of its first non-meter device) is set as its devices' price and observed,
    and with ``settle_at_lmp`` its PCC import is billed at that LMP instead of the meter price.
    Branch flows on binding limits separate the LMPs (reported as ``congested``).
    """

    Params = LMPParams

    def attach(self, net: Any) -> None:
        """Build the DC model from the environment's pandapower net."""
        self.dc = dcopf.dc_network(net, limit_scale=self.params.limit_scale)
        node_of = self.dc.node_of
        self._load_node = node_of[[list(net.bus.index).index(b) for b in net.load.bus]]
        self._load_p = net.load.p_mw.to_numpy(float) * net.load.scaling.to_numpy(float) \
            if "scaling" in net.load else net.load.p_mw.to_numpy(float)
        self._slack = self.dc.slack
        self.meters = {a.id: meter_of(a) for a in self.participants}
        self.node: dict[str, int] = {}
        for agent in self.participants:
            devs = [d for d in agent.devices() if type(d.device).__name__ != "GridConnection"] or agent.devices()
            self.node[agent.id] = int(node_of[devs[0].bus])
        self.result: dcopf.MarketResult | None = None
        self.lmp = {a.id: 0.0 for a in self.participants}

    def reset(self, rng: np.random.Generator) -> None:
        self.result = None
        self.lmp = {a.id: 0.0 for a in self.participants}

    def action_space(self, agent: Any) -> gymnasium.spaces.Box:
        return box([0.0, 0.0], [self.params.price_max, self.params.q_max_mw])

    def observation_space(self, agent: Any) -> gymnasium.spaces.Box:
        return box([-np.inf, 0.0], [np.inf, 1.0])

    def offers(self, actions: Mapping[str, np.ndarray], ctx: StepContext) -> tuple[list[dcopf.Offer], list[Any]]:
        offers: list[dcopf.Offer] = [dcopf.Offer(self._slack, float(ctx.price), self.params.grid_offer_mw, "grid")]
        owners: list[Any] = [None]
        for agent in self.participants:
            dgs = devices_of(agent, ("DG",))
            extra = _learned_extra(agent, actions)
            if extra is not None:
                node = int(self.dc.node_of[dgs[0].bus]) if dgs else self.node[agent.id]
                offers.append(dcopf.Offer(node, float(extra[0]), float(extra[1]), agent.id))
                owners.append(dgs)
                continue
            for d in dgs:
                lo, hi = mw_range(d)
                step = (hi - lo) / self.params.blocks
                for b in range(self.params.blocks):
                    mid = lo + (b + 0.5) * step
                    offers.append(dcopf.Offer(int(self.dc.node_of[d.bus]), _dg_marginal(d, mid), step, agent.id))
                    owners.append([d])
        return offers, owners

    def coordinate(self, actions: Mapping[str, np.ndarray], ctx: StepContext) -> None:
        demand = np.zeros(self.dc.n_nodes)
        np.add.at(demand, self._load_node, self._load_p * float(ctx.profile("load")))
        for agent in self.participants:
            for d in devices_of(agent, ("PV",)):
                role = getattr(d.device.params, "profile", "solar")
                demand[self.dc.node_of[d.bus]] -= d.device.params.p_max_mw * min(max(ctx.profile(role), 0.0), 1.0)
        offers, owners = self.offers(actions, ctx)
        r = dcopf.clear_market(self.dc, offers, demand)
        self.result = r
        if not r.success:
            return
        cleared: dict[int, float] = {}
        for devs, g in zip(owners, r.dispatch_mw):
            if not devs:
                continue
            if len(devs) == 1:
                cleared[id(devs[0])] = cleared.get(id(devs[0]), 0.0) + g
            else:  # a learned offer: split over its DGs by capacity
                caps = np.array([mw_range(d)[1] for d in devs])
                for d, share in zip(devs, caps / caps.sum()):
                    cleared[id(d)] = cleared.get(id(d), 0.0) + g * share
        for agent in self.participants:
            price = float(r.lmp[self.node[agent.id]])
            self.lmp[agent.id] = price
            for d in agent.devices():
                d.price = price
            for d in devices_of(agent, ("DG",)):
                lo, _ = mw_range(d)
                set_pending_mw(d, lo + cleared.get(id(d), 0.0) if self.result.success else pending_mw(d))

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> dict[str, tuple[float, float]]:
        out: dict[str, tuple[float, float]] = {}
        if not self.params.settle_at_lmp or self.result is None or not self.result.success or not result.converged:
            return out
        for agent in self.participants:
            meter = self.meters[agent.id]
            if meter is None:
                continue
            m = meter.flow(result)
            out[agent.id] = (self.lmp[agent.id] * m * ctx.dt_h - meter.bill(m, ctx.price, ctx.dt_h), 0.0)
        return out

    def observe(self, agent: Any) -> np.ndarray:
        congested = 1.0 if self.result is not None and bool(self.result.congested.any()) else 0.0
        return np.array([self.lmp.get(agent.id, 0.0), congested], np.float32)

    def info(self) -> dict[str, Any]:
        r = self.result
        if r is None:
            return {"success": False}
        names = [n for n, c in zip(self.dc.names, r.congested) if c]
        return {"success": r.success, "lmp": dict(self.lmp), "system_lambda": r.system_lambda, "congested": names,
                "cost_per_h": r.cost}


# ---------------------------------------------------------------------------------------------- droop
@attrs.frozen
class DroopParams:
    droop_pu: float = quantity("pu", 0.05, gt=0, doc="P–f droop R on each unit's rating")
    f0_hz: float = quantity("Hz", 60.0, gt=0)
    damping_mw_per_hz: float = quantity("MW/Hz", 0.0, ge=0)
    measure: str = choice(("pcc", "ext_grid"), "pcc", doc="where the imbalance is measured")
    p_ref_mw: float = quantity("MW", 0.0, doc="scheduled Σ PCC import of the participants (or slack injection)")
    qv: bool = flag(True, doc="also apply Q–V droop to inverter-based units")
    qv_droop_pu: float = quantity("pu", 0.05, gt=0)
    v0_pu: float = quantity("pu", 1.0, gt=0)


class Droop(HorizontalProtocol):
    """Quasi-static P–f and Q–V droop of the participants' DG/ESS units.

    Each tick the imbalance is what the participants imported through their PCCs (``measure:
    pcc``; or what the slack supplied, ``measure: ext_grid``) beyond the schedule ``p_ref`` last
    tick, plus what the droop units already picked up (``ΔP = P_meas − p_ref + Σ ΔP_i``). It is shared
    by P–f droop (``K_i = S_i/(R·f0)``, ``Δf = −ΔP/(ΣK + D)``, ``ΔP_i = −K_i·Δf`` within
    headroom) and added to the units' setpoints; ``Δf`` is the frequency deviation an
    islanded system would settle at. Q–V: inverter units inject ``−S·(V − V0)/R_q`` at the
    voltage of their bus in the last power flow.
    """

    Params = DroopParams

    def __init__(self, params: DroopParams, participants: Sequence[Any]) -> None:
        super().__init__(params, participants)
        self.units = [d for a in self.participants for d in devices_of(a, DISPATCHABLE)]
        self.inverters = [d for a in self.participants for d in devices_of(a, INVERTER_TYPES)] if params.qv else []
        self.q_ctl = [q_setpoint(d) for d in self.inverters]
        self.meters = [meter_of(a) for a in self.participants]
        self._reset_state()

    def _reset_state(self) -> None:
        self.imbalance = 0.0
        self.share = np.zeros(len(self.units))
        self.delta_f = 0.0
        self.v = np.ones(len(self.inverters))

    def reset(self, rng: np.random.Generator) -> None:
        self._reset_state()
        for c in self.q_ctl:
            c.q_mvar = None

    def observation_space(self, agent: Any) -> gymnasium.spaces.Box:
        return box([-np.inf], [np.inf])

    def coordinate(self, actions: Mapping[str, np.ndarray], ctx: StepContext) -> None:
        p = self.params
        ratings = [max(rating_mva(d.device), 1e-6) for d in self.units]
        ranges = [mw_range(d) for d in self.units]
        now = [min(max(pending_mw(d), lo), hi) for d, (lo, hi) in zip(self.units, ranges)]
        share = curves.pf_droop(self.imbalance, ratings, [p.droop_pu] * len(self.units), f0_hz=p.f0_hz,
                                damping_mw_per_hz=p.damping_mw_per_hz,
                                up_mw=[hi - x for x, (_, hi) in zip(now, ranges)],
                                down_mw=[x - lo for x, (lo, _) in zip(now, ranges)])
        self.share, self.delta_f = share.delta_p_mw, share.delta_f_hz
        for d, x, dp in zip(self.units, now, share.delta_p_mw):
            set_pending_mw(d, x + dp)
        if self.inverters:
            q = curves.qv_droop(self.v, np.array([c.s_mva for c in self.q_ctl]), p.qv_droop_pu, p.v0_pu)
            for c, value in zip(self.q_ctl, q):
                c.q_mvar = float(value)

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> dict[str, tuple[float, float]]:
        if result.converged:
            if self.params.measure == "pcc":
                measured = sum(m.flow(result) for m in self.meters if m is not None)
            else:
                measured = float(np.sum(result.ext_grid_p_mw))
            self.imbalance = measured - self.params.p_ref_mw + float(self.share.sum())
            self.v = np.array([result.vm_pu[d.bus] for d in self.inverters])
        return {}

    def observe(self, agent: Any) -> np.ndarray:
        return np.array([self.delta_f], np.float32)

    def info(self) -> dict[str, Any]:
        return {"delta_f_hz": self.delta_f, "imbalance_mw": self.imbalance,
                "pickup_mw": {d.id: float(s) for d, s in zip(self.units, self.share)}}


# ---------------------------------------------------------------------------------------------- volt-var
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
    limit_by_apparent: bool = flag(False, doc="clip Q to √(S² − P²) (active-power priority)")
    device_types: str = text(",".join(INVERTER_TYPES), doc="comma-separated device classes under volt-var control")

    def __attrs_post_init__(self) -> None:
        curves.check_curve(self.curve)

    @property
    def curve(self) -> tuple[tuple[float, float], ...]:
        return ((self.v1, self.q1), (self.v2, self.q2), (self.v3, self.q3), (self.v4, self.q4))


class VoltVar(HorizontalProtocol):
    """IEEE 1547-2018 volt–var: each inverter's Q from the voltage at its bus in the last power flow.

    Participants: GridAgents (all their inverter devices) or device agents. ``Q = q(V)·S``
    with the piecewise-linear curve (default Category B). Horizontal because it needs the
    power-flow result (``settle``), which vertical protocols never see; the one-tick lag is
    the measurement delay of a real inverter.
    """

    Params = VoltVarParams

    def __init__(self, params: VoltVarParams, participants: Sequence[Any]) -> None:
        super().__init__(params, participants)
        kinds = [k.strip() for k in params.device_types.split(",") if k.strip()]
        self.inverters = [d for a in self.participants for d in devices_of(a, kinds)]
        self.q_ctl = [q_setpoint(d, params.s_ratio) for d in self.inverters]
        for c in self.q_ctl:
            c.limit = params.limit_by_apparent
        self.v = np.ones(len(self.inverters))

    def reset(self, rng: np.random.Generator) -> None:
        self.v = np.ones(len(self.inverters))
        for c in self.q_ctl:
            c.q_mvar = None

    def observation_space(self, agent: Any) -> gymnasium.spaces.Box:
        return box([-np.inf], [np.inf])

    def coordinate(self, actions: Mapping[str, np.ndarray], ctx: StepContext) -> None:
        q_pu = curves.volt_var_q(self.v, self.params.curve)
        for c, q in zip(self.q_ctl, np.atleast_1d(q_pu)):
            c.q_mvar = float(q) * c.s_mva

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> dict[str, tuple[float, float]]:
        if result.converged:
            self.v = np.array([result.vm_pu[d.bus] for d in self.inverters])
        return {}

    def observe(self, agent: Any) -> np.ndarray:
        mine = [c.q_mvar or 0.0 for d, c in zip(self.inverters, self.q_ctl) if d in agent.devices()]
        return np.array([float(sum(mine))], np.float32)

    def info(self) -> dict[str, Any]:
        return {"q_mvar": {d.id: c.q_mvar for d, c in zip(self.inverters, self.q_ctl)},
                "v_pu": {d.id: float(v) for d, v in zip(self.inverters, self.v)}}


__all__ = ["ADMMDispatch", "Consensus", "Droop", "LMPMarket", "P2PTrading", "VoltVar"]

"""Peer-to-peer energy trading: a uniform-price k-double auction (pure functions) and its
environment adapter :class:`P2PTrading`.

Clearing rule: **uniform-price k-double auction** (Satterthwaite & Williams).

1. Bids (buy orders) are sorted by price, highest first; offers (sell orders) by
   price, lowest first; ties keep submission order (earlier first).
2. Walking both step curves, a bid and an offer are matched while
   ``bid price ≥ offer price``; the matched quantity is the smaller remaining
   quantity (orders can be filled partially). The traded volume ``Q*`` is the
   total matched quantity: the intersection of the demand and supply curves.
3. Every price in the **clearing interval** ``[lo, hi]`` balances supply and demand at ``Q*``::

       lo = max(last matched offer, first excluded bid)
       hi = min(last matched bid,   first excluded offer)

   (an excluded order is the unmatched rest of an order — the remainder of a partly
   filled one, or the next one in the book; a side with none left drops out of its
   max/min). Every trade clears at one price ``p* = lo + k·(hi − lo)``, ``k ∈ [0, 1]``
   (``k = 0.5``: the midpoint). Matched bids are ≥ hi and matched offers ≤ lo, so no
   one trades at a price worse than their own (individual rationality); excluded bids
   are ≤ lo and excluded offers ≥ hi, so no one left out wants to trade at ``p*``.
   Example: bids 100 and 50, offers 40 and 60 $/MWh, 1 MW each: 100 meets 40, then
   50 < 60 stops; ``[max(40, 50), min(100, 60)] = [50, 60]``, ``k = 0.5`` → 55 $/MWh.
4. Buyers pay and sellers receive ``p*·q·dt``; buyer and seller quantities each
   sum to ``Q*``, so Σ payments = 0 and Σ signed traded MW = 0.

Quantities are MW over a period of ``dt_h`` hours; prices $/MWh.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import gymnasium
import numpy as np

from powergrid import scaling
from powergrid.devices import StepContext, box, export_price
from powergrid.params import flag, quantity
from powergrid.protocols import HorizontalProtocol
from powergrid.scaling import Feature
from powergrid.solvers.base import PowerFlowResult
from powergrid_protocols.channel import Message
from powergrid_protocols.common import (
    DISPATCHABLE,
    ChannelFields,
    build_channel,
    devices_of,
    dg_marginal,
    finite_or,
    kind,
    meter_of,
    mw_range,
    pending_setpoints,
    project_pending,
    read_extra,
    shift_generation,
    shift_setpoints,
)
from powergrid_protocols.vertical import Setpoint


@attrs.frozen
class Order:
    """One order: ``agent`` wants to buy (``side="buy"``) or sell ``quantity_mw`` at a limit ``price``.

    ValueError for a side other than ``"buy"``/``"sell"``, a non-finite price or a negative or non-finite quantity
    (each would be silently left out of the book, or an infinite price would clear at an infinite price)."""

    agent: str
    price: float
    quantity_mw: float
    side: str = "buy"

    def __attrs_post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"order of {self.agent!r}: side must be 'buy' or 'sell', got {self.side!r}")
        if not np.isfinite(self.price):
            raise ValueError(f"order of {self.agent!r}: the limit price must be finite ($/MWh), got {self.price}")
        if not (np.isfinite(self.quantity_mw) and self.quantity_mw >= 0.0):
            raise ValueError(f"order of {self.agent!r}: the quantity must be finite and ≥ 0 MW (the side says buy or "
                             f"sell), got {self.quantity_mw}")


@attrs.frozen
class Clearing:
    """Result of one clearing.

    ``net_mw[agent]`` is signed: > 0 bought, < 0 sold. ``payment[agent]`` is $ paid
    (negative: received). ``price`` is NaN when nothing trades.
    """

    price: float
    volume_mw: float
    net_mw: dict[str, float]
    payment: dict[str, float]
    matches: tuple[tuple[str, str, float], ...]  # (buyer, seller, MW)


def orders_from_signed(agent: str, price: float, signed_mw: float) -> list[Order]:
    """An order from a signed quantity: > 0 buys, < 0 sells, 0 places nothing."""
    if not np.isfinite(price) or not np.isfinite(signed_mw) or signed_mw == 0.0:
        return []
    return [Order(agent, float(price), abs(float(signed_mw)), "buy" if signed_mw > 0 else "sell")]


def clear_double_auction(orders: Sequence[Order], *, k: float = 0.5, dt_h: float = 1.0, eps: float = 1e-12) -> Clearing:
    """Clear ``orders`` with the uniform-price k-double auction (see the module docstring)."""
    if not 0.0 <= k <= 1.0:
        raise ValueError(f"expected 0 ≤ k ≤ 1, got {k}")
    indexed = list(enumerate(orders))
    bids = sorted(((i, o) for i, o in indexed if o.side == "buy" and o.quantity_mw > eps), key=lambda t: (-t[1].price, t[0]))
    offers = sorted(((i, o) for i, o in indexed if o.side == "sell" and o.quantity_mw > eps), key=lambda t: (t[1].price, t[0]))
    agents = {o.agent for o in orders}
    net = dict.fromkeys(agents, 0.0)
    pay = dict.fromkeys(agents, 0.0)
    bi = si = 0
    b_left = bids[0][1].quantity_mw if bids else 0.0
    s_left = offers[0][1].quantity_mw if offers else 0.0
    matches: list[tuple[str, str, float]] = []
    last_bid = last_offer = np.nan
    while bi < len(bids) and si < len(offers) and bids[bi][1].price >= offers[si][1].price:
        bid, offer = bids[bi][1], offers[si][1]
        q = min(b_left, s_left)
        matches.append((bid.agent, offer.agent, q))
        last_bid, last_offer = bid.price, offer.price
        b_left -= q
        s_left -= q
        if b_left <= eps:
            bi += 1
            b_left = bids[bi][1].quantity_mw if bi < len(bids) else 0.0
        if s_left <= eps:
            si += 1
            s_left = offers[si][1].quantity_mw if si < len(offers) else 0.0
    if not matches:
        return Clearing(float("nan"), 0.0, net, pay, ())
    next_bid = bids[bi][1].price if bi < len(bids) else -np.inf  # first excluded bid (or a partly filled one)
    next_offer = offers[si][1].price if si < len(offers) else np.inf
    lo, hi = max(last_offer, next_bid), min(last_bid, next_offer)
    price = lo + k * (hi - lo)
    for buyer, seller, q in matches:
        net[buyer] += q
        net[seller] -= q
    volume = float(sum(q for _, _, q in matches))
    # payments from the net positions so that Σ payment = p·Σ net = 0 up to rounding of Σ net
    for agent in agents:
        pay[agent] = price * net[agent] * dt_h
    return Clearing(float(price), volume, net, pay, tuple(matches))


@attrs.frozen
class P2PParams(ChannelFields):
    k: float = quantity("1", 0.5, ge=0, le=1, doc="k of the k-double auction (0.5: midpoint)")
    q_max_mw: float = quantity("MW", 0.5, gt=0, doc="largest order (MW)")
    price_min: float = quantity("$/MWh", 0.0)
    price_max: float = quantity("$/MWh", 300.0)
    net_metering: bool = flag(True, doc="re-bill the PCC meter so traded MWh are not also bought from/sold to the grid")
    imbalance_factor: float = quantity("1", 1.0, ge=1, doc="undelivered MW are charged factor·|market price| (≥ 1: "
                                       "below, a sale that cannot be delivered costs less than the grid would)")
    overload_percent: float = quantity("%", 100.0, gt=0, doc="PCC loading above this is a reported violation")
    lag_reserve_mw: float = quantity("MW", 0.4, ge=0, doc="import limit a rule participant's bid leaves free for the "
                                     "load's rise the lagging meter reading misses (~0.4 MW in an hour of the ramp)")

    def __attrs_post_init__(self) -> None:
        if self.price_min >= self.price_max:
            raise ValueError(f"expected price_min < price_max, got {self.price_min} ≥ {self.price_max}")


class P2PTrading(HorizontalProtocol):
    """Peer-to-peer energy trading among GridAgents by a uniform-price k-double auction each tick.

    Orders: a learned participant's extra action ``[limit price $/MWh, quantity MW]`` (quantity
    > 0 buys, < 0 sells, in ``[−q_max, q_max]``). A rule participant orders from its PCC import
    predicted from its pending setpoints (its setpoint protocol's ``predict``: the last reading and
    the setpoints, causal): with a predicted export it withholds it from the grid (DGs down, then
    batteries charge) and offers what it withheld at its export value ``export_price(price,
    sell_ratio)`` or, when higher, the marginal cost of the DG MW a sale restores (at the DG's
    setpoint before withholding), so a sale restores its setpoints and an unsold rest stays off the
    grid; with a predicted import it bids for what its DGs and batteries can give back, within its
    import limit less the setpoint rule's margin and ``lag_reserve_mw``, at the market price or,
    when lower, the marginal cost of the DG MW a purchase backs off (at its setpoint; batteries
    unpriced). Without a prediction (no setpoint protocol or import meter, tick 0, a child without a
    setpoint) it sells its DG headroom at its marginal cost when that is below the market price, else
    offers to buy back its own DG output at its marginal cost. :meth:`rule_extra` computes that order
    from a setpoint rule action (the same order at action time). Orders travel to the market through the
    protocol's channel (delay, loss); only arrived orders are cleared.

    Delivery: a seller raises, a buyer lowers, the setpoints of its DG then ESS by the traded MW,
    so the trade flows through the PCCs in the AC power flow. Undelivered MW are reported and
    charged at ``imbalance_factor·|price|`` (a charge at any price sign). Settlement: buyers pay and sellers receive
    ``p*·q·dt`` (Σ = 0); with ``net_metering`` the PCC meter bill ``C(m)`` is replaced by
    ``C(m − δ)`` (δ the delivered signed trade), so traded energy is not also billed by the grid.
    Network limits: the PCC element loading is reported; above ``overload_percent`` it adds safety.
    """

    participant_kinds = ("grid", "system")  # among microgrid controllers: a device agent is a config error

    Params = P2PParams

    def __init__(self, params: P2PParams, participants: Sequence[Any]) -> None:
        super().__init__(params, participants)
        self.channel = build_channel(params, len(self.participants), "one order per participant, sent every tick")
        self.meters = {a.id: meter_of(a) for a in self.participants}
        # static per participant: its children's action sizes and shapes; its DG then ESS children (indices) and
        # dispatchable devices (the trade's delivery order)
        self.shapes = {a.id: [c.device.action_space.shape if hasattr(c, "device") else None for c in a.children]
                       for a in self.participants}
        self.sizes = {k: [None if s is None else int(np.prod(s)) for s in v] for k, v in self.shapes.items()}
        self.units = {a.id: sorted((i for i, c in enumerate(a.children) if c in devices_of(a, DISPATCHABLE)),
                                   key=lambda i, a=a: DISPATCHABLE.index(kind(a.children[i]))) for a in self.participants}
        self.delivery = {a.id: sorted(devices_of(a, DISPATCHABLE), key=lambda d: DISPATCHABLE.index(kind(d)))
                         for a in self.participants}
        self._reset_state()

    def _reset_state(self) -> None:
        self.last: Clearing | None = None
        self.delivered = {a.id: 0.0 for a in self.participants}
        self.undelivered = {a.id: 0.0 for a in self.participants}
        self.loading: dict[str, float] = {}
        self.messages = 0
        self.projection: dict[str, float] = {}

    def action_space(self, agent: Any) -> gymnasium.spaces.Box:
        p = self.params
        return box([p.price_min, -p.q_max_mw], [p.price_max, p.q_max_mw])

    def observation_features(self, agent: Any) -> tuple[Feature, ...]:
        """``[clearing price $/MWh, the agent's net trade MW]``."""
        return (scaling.PRICE, scaling.power(1.0))

    def reset(self, rng: np.random.Generator) -> None:
        self.channel.reset(int(rng.integers(2**31)))
        self._reset_state()

    def rule_order(self, agent: Any, ctx: StepContext) -> tuple[float, float]:
        """(limit price $/MWh, signed MW) of a rule participant at coordinate time: :meth:`rule_extra` on its
        children's pending setpoints, a withheld export written back to them."""
        parts = pending_setpoints(agent.children)
        units = [i for i in self.units[agent.id] if parts[i].size]  # the only entries rule_extra changes
        before = [float(parts[i][0]) for i in units]
        price, mw = self.rule_extra(agent, parts, ctx)
        for i, mw_before in zip(units, before):
            if not parts[i][0] == mw_before:  # NaN: written back as before
                agent.children[i].pending = parts[i].reshape(self.shapes[agent.id][i])
        return float(price), float(mw)

    def _predicts(self, agent: Any, parts: list[np.ndarray], ctx: StepContext) -> bool:
        """Whether ``agent``'s rule order comes from its predicted import under ``parts``: a setpoint protocol with a
        limited meter, a meter of this market, a reading (tick > 0), every child's setpoint."""
        proto = getattr(agent, "protocol", None)
        return (isinstance(proto, Setpoint) and proto.meter is not None and self.meters[agent.id] is not None
                and ctx.tick > 0 and all(p.size == n for n, p in zip(self.sizes[agent.id], parts) if n is not None))

    def export_taken_mw(self, agent: Any, parts: list[np.ndarray], ctx: StepContext) -> float:
        """``q_max_mw`` when ``agent``'s rule order comes from its prediction (it withholds its predicted export up to
        ``q_max_mw`` from the grid and offers it; an unsold rest stays off the grid), else 0.0 (MW)."""
        return self.params.q_max_mw if self._predicts(agent, parts, ctx) else 0.0

    def rule_extra(self, agent: Any, parts: list[np.ndarray] | None, ctx: StepContext) -> np.ndarray:
        """``agent``'s rule order ``[limit price $/MWh, signed MW]`` (see the class docstring) from its children's
        physical setpoints ``parts`` (one array per child, as its setpoint protocol sends them; None: their pending
        ones): an exporter's withheld MW are taken off its DGs' then batteries' entries in ``parts`` (changed in
        place)."""
        if parts is None:
            parts = pending_setpoints(agent.children)
        proto, meter, q_max = getattr(agent, "protocol", None), self.meters[agent.id], self.params.q_max_mw
        if self._predicts(agent, parts, ctx):
            units = self.units[agent.id]
            predicted = proto.predict(parts, ctx)[1]  # MW the meter would import under parts
            dgs = [(i, float(parts[i][0])) for i in units if kind(agent.children[i]) == "DG"]  # (child, MW) before
            if predicted < -1e-6:  # withhold the export from the grid; a sale puts it back
                q = min(-predicted, q_max)
                rest = shift_setpoints([agent.children[i] for i in units], [parts[i] for i in units], -q)
                # ask at least the marginal cost of the DG MW a sale restores (the top one: MC at the setpoint before)
                ask = max([export_price(ctx.price, meter.sell_ratio)]
                          + [dg_marginal(agent.children[i], mw) for i, mw in dgs if parts[i][0] < mw - 1e-9])
                return np.array([ask, -(q + rest)])
            # a delivered purchase adds to the import: keep it the setpoint rule's margin and the lag reserve inside
            # the import limit
            room = meter.device.params.import_limit_mw - proto.params.margin_mw - self.params.lag_reserve_mw - predicted
            back = sum(float(parts[i][0]) - mw_range(agent.children[i], parts[i])[0] for i in units)  # MW to give back
            q = min(predicted, room, back, q_max)
            # bid at most what the DG MW a purchase backs off (DGs first) would cost to run
            saved = [dg_marginal(agent.children[i], mw) for i, mw in dgs
                     if mw - mw_range(agent.children[i], parts[i])[0] > 1e-6]
            return np.array([min([ctx.price, max(saved)] if saved else [ctx.price]), q if q > 1e-6 else 0.0])
        dgs = [(c, parts[i]) for i, c in enumerate(agent.children) if kind(c) == "DG" and parts[i].size]
        if not dgs:
            return np.zeros(2)
        mw = [(d, float(finite_or(a[0], 0.0)), *mw_range(d, a)) for d, a in dgs]  # (agent, MW, low, high)
        headroom = sum(hi - p for _, p, _, hi in mw)
        output = sum(p - lo for _, p, lo, _ in mw)
        cheapest = min(dg_marginal(d, p) for d, p, _, _ in mw)
        dearest = max(dg_marginal(d, p) for d, p, _, _ in mw)
        if headroom > 1e-6 and cheapest < ctx.price:
            return np.array([cheapest, -min(headroom, q_max)])
        if output > 1e-6:
            return np.array([dearest, min(output, q_max)])
        return np.zeros(2)

    def coordinate(self, actions: Mapping[str, np.ndarray], ctx: StepContext) -> None:
        p = self.params
        self.projection = {}
        project_pending(self.participants, self.projection)
        for agent in self.participants:
            extra = read_extra(agent, actions, self.action_space(agent), self.projection)
            price, qty = (float(extra[0]), float(extra[1])) if extra is not None else self.rule_order(agent, ctx)
            self.channel.send(Message(agent.id, "market", (price, qty)), ctx.tick)
            self.messages += 1
        orders = []
        for m in self.channel.receive(ctx.tick, "market"):
            orders += orders_from_signed(m.sender, *m.payload)
        clearing = clear_double_auction(orders, k=p.k, dt_h=ctx.dt_h)
        self.last = clearing
        self.messages += sum(1 for q in clearing.net_mw.values() if q)  # the market tells each trader
        for agent in self.participants:
            q = clearing.net_mw.get(agent.id, 0.0)
            left = shift_generation(self.delivery[agent.id], -q) if q else 0.0  # DGs first, then batteries
            # the setpoints moved by −q − left: the delivered signed trade is q + left
            self.undelivered[agent.id] = abs(left)
            self.delivered[agent.id] = q + left

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> dict[str, tuple[float, float]]:
        p, c = self.params, self.last
        out: dict[str, tuple[float, float]] = {}
        self.loading = {}
        for agent in self.participants:
            cost = c.payment.get(agent.id, 0.0) if c is not None else 0.0
            # |price|: at a negative price a charge at the price would pay for an order that could not be delivered
            cost += p.imbalance_factor * abs(ctx.price) * abs(self.undelivered[agent.id]) * ctx.dt_h
            unsafe = 0.0
            meter = self.meters[agent.id]
            if meter is not None and result.converged:
                m = meter.flow(result)
                delta = self.delivered[agent.id]
                if p.net_metering and delta and np.isfinite(m):
                    cost += meter.bill(m - delta, ctx.price, ctx.dt_h) - meter.bill(m, ctx.price, ctx.dt_h)
                load = meter.loading(result)
                if np.isfinite(load):
                    self.loading[agent.id] = load
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
            "violation": any(v > self.params.overload_percent for v in self.loading.values()),
            "messages": self.messages,
            "projection": dict(self.projection),
        }


__all__ = ["Clearing", "Order", "P2PParams", "P2PTrading", "clear_double_auction", "orders_from_signed"]

"""Double auction for peer-to-peer energy trading (pure functions, no environment).

Clearing rule: **uniform-price k-double auction** (Satterthwaite & Williams).

1. Bids (buy orders) are sorted by price, highest first; offers (sell orders) by
   price, lowest first; ties keep submission order (earlier first).
2. Walking both step curves, a bid and an offer are matched while
   ``bid price ≥ offer price``; the matched quantity is the smaller remaining
   quantity (orders can be filled partially). The traded volume ``Q*`` is the
   total matched quantity: the intersection of the demand and supply curves.
3. With ``b*`` the price of the last (lowest) matched bid and ``s*`` the price of
   the last (highest) matched offer, every trade clears at one price
   ``p* = s* + k·(b* − s*)``, ``k ∈ [0, 1]`` (``k = 0.5``: the midpoint).
   Since every matched bid is ≥ ``b*`` and every matched offer ≤ ``s*``, no one
   trades at a price worse than their own (individual rationality).
4. Buyers pay and sellers receive ``p*·q·dt``; buyer and seller quantities each
   sum to ``Q*``, so Σ payments = 0 and Σ signed traded MW = 0.

Quantities are MW over a period of ``dt_h`` hours; prices $/MWh.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np


@attrs.frozen
class Order:
    """One order: ``agent`` wants to buy (``side="buy"``) or sell ``quantity_mw`` at a limit ``price``."""

    agent: str
    price: float
    quantity_mw: float
    side: str = "buy"


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
    price = last_offer + k * (last_bid - last_offer)
    for buyer, seller, q in matches:
        net[buyer] += q
        net[seller] -= q
    volume = float(sum(q for _, _, q in matches))
    # payments from the net positions so that Σ payment = p·Σ net = 0 up to rounding of Σ net
    for agent in agents:
        pay[agent] = price * net[agent] * dt_h
    return Clearing(float(price), volume, net, pay, tuple(matches))


def supply_demand_at(orders: Sequence[Order], price: float) -> tuple[float, float]:
    """(demand MW, supply MW) at ``price``: bids priced ≥ it, offers priced ≤ it (for independent checks)."""
    demand = sum(o.quantity_mw for o in orders if o.side == "buy" and o.price >= price)
    supply = sum(o.quantity_mw for o in orders if o.side == "sell" and o.price <= price)
    return float(demand), float(supply)

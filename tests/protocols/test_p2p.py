"""P2P double auction: hand-built books and balance identities."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powergrid_protocols.auction import Order, clear_double_auction, orders_from_signed, supply_demand_at


def test_hand_book_uniform_midpoint():
    # demand: 2 MW @ 90, 1 MW @ 70, 1 MW @ 40; supply: 1 MW @ 30, 2 MW @ 60, 2 MW @ 80
    book = [Order("b1", 90, 2, "buy"), Order("b2", 70, 1, "buy"), Order("b3", 40, 1, "buy"),
            Order("s1", 30, 1, "sell"), Order("s2", 60, 2, "sell"), Order("s3", 80, 2, "sell")]
    c = clear_double_auction(book, k=0.5, dt_h=1.0)
    # curves cross after 3 MW: bids 90,90,70 vs offers 30,60,60; the 4th MW is 40 < 80
    assert c.volume_mw == pytest.approx(3.0)
    assert c.price == pytest.approx(0.5 * (70 + 60))  # last matched bid 70, last matched offer 60
    assert c.net_mw == pytest.approx({"b1": 2, "b2": 1, "b3": 0, "s1": -1, "s2": -2, "s3": 0})
    assert c.payment["b1"] == pytest.approx(2 * 65.0)
    assert c.payment["s2"] == pytest.approx(-2 * 65.0)


@pytest.mark.parametrize("k, price", [(0.0, 50.0), (1.0, 55.0), (0.25, 51.25)])
def test_k_sets_the_price_inside_the_marginal_pair(k, price):
    book = [Order("b", 55, 1, "buy"), Order("s", 50, 1, "sell")]
    c = clear_double_auction(book, k=k)
    assert c.price == pytest.approx(price)
    assert c.volume_mw == pytest.approx(1.0)


def test_partial_fill_of_the_marginal_order_and_no_trade():
    c = clear_double_auction([Order("b", 100, 0.5, "buy"), Order("s", 20, 2, "sell")], dt_h=0.25)
    assert c.volume_mw == pytest.approx(0.5)
    assert c.price == pytest.approx(60.0)
    assert c.payment["b"] == pytest.approx(60 * 0.5 * 0.25)
    none = clear_double_auction([Order("b", 10, 1, "buy"), Order("s", 20, 1, "sell")])
    assert none.volume_mw == 0 and math.isnan(none.price) and all(v == 0 for v in none.payment.values())


def test_signed_orders():
    assert orders_from_signed("a", 50, 0.3)[0].side == "buy"
    assert orders_from_signed("a", 50, -0.3)[0].side == "sell"
    assert orders_from_signed("a", 50, 0.0) == []


book_st = st.lists(st.tuples(st.floats(0, 300), st.floats(-5, 5).filter(lambda q: abs(q) > 1e-6)), min_size=0, max_size=12)


@settings(max_examples=200, deadline=None)
@given(book_st, st.floats(0, 1), st.floats(0.05, 2))
def test_balance_identities_on_random_books(book, k, dt):
    orders = [o for i, (p, q) in enumerate(book) for o in orders_from_signed(f"a{i}", p, q)]
    c = clear_double_auction(orders, k=k, dt_h=dt)
    assert sum(c.net_mw.values()) == pytest.approx(0.0, abs=1e-9)
    assert sum(c.payment.values()) == pytest.approx(0.0, abs=1e-6)
    bought = sum(v for v in c.net_mw.values() if v > 0)
    assert bought == pytest.approx(c.volume_mw, abs=1e-9)
    if c.volume_mw > 0:
        for o in orders:  # individual rationality and no overfill
            q = c.net_mw[o.agent]
            if o.side == "buy":
                assert -1e-9 <= q <= o.quantity_mw + 1e-9
                if q > 1e-9:
                    assert o.price >= c.price - 1e-9
            else:
                assert -o.quantity_mw - 1e-9 <= q <= 1e-9
                if q < -1e-9:
                    assert o.price <= c.price + 1e-9
        # the clearing volume is the intersection: at the clearing price demand ≥ volume ≤ supply
        demand, supply = supply_demand_at(orders, c.price)
        assert c.volume_mw <= demand + 1e-9 and c.volume_mw <= supply + 1e-9

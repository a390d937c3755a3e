"""P2P double auction: hand-built books, the clearing interval, and balance identities."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powergrid_protocols.p2p import Order, clear_double_auction, orders_from_signed


def test_hand_book_uniform_midpoint():
    # demand: 2 MW @ 90, 1 MW @ 70, 1 MW @ 40; supply: 1 MW @ 30, 2 MW @ 60, 2 MW @ 80
    book = [Order("b1", 90, 2, "buy"), Order("b2", 70, 1, "buy"), Order("b3", 40, 1, "buy"),
            Order("s1", 30, 1, "sell"), Order("s2", 60, 2, "sell"), Order("s3", 80, 2, "sell")]
    c = clear_double_auction(book, k=0.5, dt_h=1.0)
    # curves cross after 3 MW: bids 90,90,70 vs offers 30,60,60; the 4th MW is 40 < 80
    assert c.volume_mw == pytest.approx(3.0)
    # interval [max(last matched offer 60, first excluded bid 40), min(last matched bid 70, first excluded offer 80)]
    #        = [60, 70]; k = 0.5 → 60 + 0.5·(70 − 60) = 65
    assert c.price == pytest.approx(65.0)
    assert c.net_mw == pytest.approx({"b1": 2, "b2": 1, "b3": 0, "s1": -1, "s2": -2, "s3": 0})
    assert c.payment["b1"] == pytest.approx(2 * 65.0)
    assert c.payment["s2"] == pytest.approx(-2 * 65.0)


@pytest.mark.parametrize("k, price", [(0.5, 55.0), (0.0, 50.0), (1.0, 60.0), (0.25, 52.5)])
def test_the_price_lies_between_the_first_excluded_orders(k, price):
    # bids 100 $/MWh·1 MW and 50·1, offers 40·1 and 60·1
    book = [Order("b100", 100, 1, "buy"), Order("b50", 50, 1, "buy"),
            Order("s40", 40, 1, "sell"), Order("s60", 60, 1, "sell")]
    c = clear_double_auction(book, k=k)
    # 100 ≥ 40 trades 1 MW; then 50 < 60 stops: Q* = 1 MW
    # interval [max(last matched offer 40, first excluded bid 50), min(last matched bid 100, first excluded offer 60)]
    #        = [50, 60]; p* = 50 + k·(60 − 50): k = 0.5 → 55 (the old rule gave 40 + 0.5·(100 − 40) = 70)
    assert c.volume_mw == pytest.approx(1.0)
    assert c.price == pytest.approx(price)
    assert c.net_mw == pytest.approx({"b100": 1, "b50": 0, "s40": -1, "s60": 0})
    # at 55 demand is 1 MW (only the 100 bid buys) and supply 1 MW (only the 40 offer sells);
    # at 70 supply would be 2 MW (40 and 60) against a demand of 1
    assert _clears(book, c.price, c.volume_mw)
    assert not _clears(book, 70.0, 1.0)


@pytest.mark.parametrize("k, price", [(0.0, 50.0), (1.0, 55.0), (0.25, 51.25)])
def test_k_sets_the_price_inside_the_marginal_pair(k, price):
    # one bid 55, one offer 50, nothing excluded: interval [50, 55]
    book = [Order("b", 55, 1, "buy"), Order("s", 50, 1, "sell")]
    c = clear_double_auction(book, k=k)
    assert c.price == pytest.approx(price)
    assert c.volume_mw == pytest.approx(1.0)


def test_partial_fill_of_the_marginal_order_and_no_trade():
    # bid 100·0.5 MW meets offer 20·2 MW: 0.5 MW trade, 1.5 MW of the offer left over at 20
    # interval [max(20, —), min(100, first excluded offer = the 20 remainder)] = [20, 20]: p* = 20
    # (above 20 the seller would offer 2 MW against a demand of 0.5)
    c = clear_double_auction([Order("b", 100, 0.5, "buy"), Order("s", 20, 2, "sell")], dt_h=0.25)
    assert c.volume_mw == pytest.approx(0.5)
    assert c.price == pytest.approx(20.0)
    assert c.payment["b"] == pytest.approx(20 * 0.5 * 0.25)  # 2.5 $
    none = clear_double_auction([Order("b", 10, 1, "buy"), Order("s", 20, 1, "sell")])
    assert none.volume_mw == 0 and math.isnan(none.price) and all(v == 0 for v in none.payment.values())


def _clears(orders, price, volume, tol=1e-9):
    """Supply = demand = volume at price, on step curves: a bid at exactly the price may buy any part
    of its quantity, and likewise an offer (independent of the clearing code)."""
    demand_lo = sum(o.quantity_mw for o in orders if o.side == "buy" and o.price > price)
    demand_hi = sum(o.quantity_mw for o in orders if o.side == "buy" and o.price >= price)
    supply_lo = sum(o.quantity_mw for o in orders if o.side == "sell" and o.price < price)
    supply_hi = sum(o.quantity_mw for o in orders if o.side == "sell" and o.price <= price)
    return demand_lo - tol <= volume <= demand_hi + tol and supply_lo - tol <= volume <= supply_hi + tol


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
        # the price is in the clearing interval: supply = demand = the traded volume at that price
        assert _clears(orders, c.price, c.volume_mw)


@pytest.mark.parametrize("args", [("a", 100.0, 1.0, "Buy"), ("a", float("nan"), 1.0, "buy"),
                                  ("a", float("inf"), 1.0, "buy"), ("a", 100.0, -1.0, "buy"),
                                  ("a", 100.0, float("nan"), "sell")])
def test_an_order_the_book_cannot_hold_is_refused(args):
    """Side "Buy", a NaN price or a negative quantity were silently left out of the book; a bid at +inf against an
    offer at 40 $/MWh cleared 1 MW at an infinite price (payments ±inf)."""
    with pytest.raises(ValueError, match="order of 'a'"):
        Order(*args)


def test_an_empty_price_range_is_a_configuration_error():
    """price_min 300 > price_max 0 failed deep in gymnasium ('Box all low values must be less than or equal to high'),
    naming neither the parameter nor the config."""
    from powergrid_protocols.p2p import P2PParams

    with pytest.raises(ValueError, match="price_min < price_max"):
        P2PParams(price_min=300.0, price_max=0.0)


def test_a_channel_capacity_below_the_participants_is_a_config_error():
    """Each participant sends one order per tick: p2p_3mg at capacity 2 cleared orders 8 ticks old by the end of the
    day, 24 still in flight (the FIFO backlog grew every tick)."""
    from pathlib import Path

    import yaml

    from powergrid.env import MultiAgentPowerGridEnv
    from powergrid.errors import ConfigError

    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "p2p_3mg.yaml").read_text())
    data["horizontal"][0].setdefault("params", {}).update(channel_capacity=2)
    with pytest.raises(ConfigError, match=r"horizontal\[0\].*expected channel_capacity ≥ 3 .*got 2"):
        MultiAgentPowerGridEnv.from_config(data)
    data["horizontal"][0]["params"]["channel_capacity"] = 3
    MultiAgentPowerGridEnv.from_config(data)


def test_an_imbalance_factor_below_1_is_a_config_error():
    """Below 1 a sale the seller cannot deliver costs the coalition less than the grid (a peer's delivered purchase is
    net-metered out): p2p_3mg seed 1, a phantom 0.4 MW offer at factor 0.5 lowered the summed cost by 120.8 $/day."""
    from pathlib import Path

    import yaml

    from powergrid.env import MultiAgentPowerGridEnv
    from powergrid.errors import ConfigError

    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "p2p_3mg.yaml").read_text())
    data["horizontal"][0].setdefault("params", {}).update(imbalance_factor=0.5)
    with pytest.raises(ConfigError, match=r"horizontal\[0\].*imbalance_factor"):
        MultiAgentPowerGridEnv.from_config(data)


def _p2p_env():
    """configs/p2p_3mg.yaml (mg2 and mg3 order by the rule) after one hour under the rule, so the meters have a
    reading; returns the env and its P2P protocol."""
    from pathlib import Path

    from powergrid.env import MultiAgentPowerGridEnv

    pytest.importorskip("powergrid_datasets")
    env = MultiAgentPowerGridEnv.from_config(Path(__file__).resolve().parents[2] / "configs" / "p2p_3mg.yaml")
    env.reset(seed=1)
    env.step({a: env.rule_action(a) for a in env.agents})
    proto = next(h for h in env.scenario.horizontal if type(h).__name__ == "P2PTrading")
    return env, proto


def _hold(env, agent, dg_mw, predicted_mw):
    """Pending setpoints of ``agent``'s children: DG at ``dg_mw``, the battery idle, PV uncurtailed; and its meter's
    last reading such that the import predicted from them is ``predicted_mw``."""
    import numpy as np

    from powergrid_protocols.common import pending_setpoints

    def predicted():  # the import the setpoint protocol predicts from the pending setpoints (MW)
        return agent.protocol.predict(pending_setpoints(agent.children), env.ctx)[1]

    for c in agent.children:
        kind = type(c.device).__name__
        if kind in ("DG", "ESS"):
            c.pending = np.array([dg_mw if kind == "DG" else 0.0] + [0.0] * (c.device.action_space.shape[0] - 1),
                                 np.float32)
        elif kind == "PV":
            c.pending = np.asarray(c.device.action_space.high, np.float32)
    meter = env.scenario.agents[f"{agent.id}_pcc"].device
    meter.import_mw = 0.0
    meter.import_mw = predicted_mw - predicted()
    assert predicted() == pytest.approx(predicted_mw)


@pytest.mark.parametrize("reading", [-0.3, -1.0])
def test_the_rule_offers_a_predicted_export_at_its_export_value(reading):
    """mg3 reads an export (its DG at 1 MW): it withholds the predicted export (up to q_max) from the grid by lowering
    its DG and offers it at sell_ratio·price, or at the DG's marginal cost at 1 MW when higher (before, it asked
    28.6 $/MWh with its DG at 97.5 $/MWh: it sold below its own cost); a sale puts the DG back."""
    from powergrid.devices import export_price
    from powergrid_protocols.common import dg_marginal, pending_setpoints

    env, proto = _p2p_env()
    mg3 = env.scenario.agents["mg3"]
    _hold(env, mg3, 1.0, reading)
    dg = env.scenario.agents["mg3_dg"]
    q = min(-reading, proto.params.q_max_mw)
    value = max(float(export_price(env.ctx.price, proto.meters["mg3"].sell_ratio)), dg_marginal(dg, 1.0))
    assert value >= dg_marginal(dg, 1.0) > float(export_price(env.ctx.price, proto.meters["mg3"].sell_ratio))
    parts = pending_setpoints(mg3.children)  # as a rule action: the order, the withheld MW taken off the parts, not the setpoints
    assert proto.rule_extra(mg3, parts, env.ctx) == pytest.approx([value, -q])
    assert parts[mg3.children.index(dg)][0] == pytest.approx(1.0 - q) and float(dg.pending[0]) == pytest.approx(1.0)
    price, mw = proto.rule_order(mg3, env.ctx)
    assert price == pytest.approx(value)
    assert mw == pytest.approx(-q)
    assert float(dg.pending[0]) == pytest.approx(1.0 - q)


def test_the_rule_bids_its_predicted_import_at_the_price():
    """mg2 predicts an import of 0.2 MW with its DG at 0.5 MW: it bids for it (its DG can give it back; its import
    limit has room) at the market price or, when lower, its DG's marginal cost at 0.5 MW (what a purchase saves)."""
    from powergrid_protocols.common import dg_marginal

    env, proto = _p2p_env()
    mg2 = env.scenario.agents["mg2"]
    _hold(env, mg2, 0.5, 0.2)
    price, mw = proto.rule_order(mg2, env.ctx)
    assert price == pytest.approx(min(env.ctx.price, dg_marginal(env.scenario.agents["mg2_dg"], 0.5)))
    assert mw == pytest.approx(0.2)


def test_the_p2p_example_trades_under_the_rule():
    """configs/p2p_3mg.yaml, day of seed 1 under the rule: 2.84 MWh traded (4.75 MWh before the rule's asks and bids
    took its DG's marginal cost; 0 before the orders came from the predicted positions and exports were credited at
    25 % of the price; 0.05 MWh in 8 days)."""
    env, proto = _p2p_env()
    traded = proto.last.volume_mw
    while env.agents:
        env.step({a: env.rule_action(a) for a in env.agents})
        traded += proto.last.volume_mw
    assert traded > 0.5


def test_the_setpoint_rule_leaves_each_market_its_export():
    """mg3 predicts a 1.0 MW export with its DG at 1 MW: its setpoint rule leaves P2P trading the export its rule
    order withholds and offers (``q_max_mw`` = 0.4 MW) and holds back the other 0.6 MW (DG at 0.4 MW: its best output
    at the export price is 0); with a second market of ``q_max_mw`` 0.1 MW, both (DG at 0.5 MW; before, the market
    built last set the setpoint's ``traded_export_mw`` alone: DG at 0.1 MW). At tick 0 (no reading) the rule order
    takes nothing."""
    from powergrid_protocols.common import pending_setpoints
    from powergrid_protocols.p2p import P2PParams, P2PTrading

    env, proto = _p2p_env()
    mg3 = env.scenario.agents["mg3"]
    dg = mg3.children.index(env.scenario.agents["mg3_dg"])

    def rule_dg_mw():
        _hold(env, mg3, 1.0, -1.0)
        parts = pending_setpoints(mg3.children)
        mg3.protocol.export_value(parts, mg3.protocol.plan(parts, env.ctx), env.ctx,
                                  mg3.protocol.load_change_mw(env.ctx))
        return float(parts[dg][0])

    assert env.scenario.agents["mg3_dg"].device.best_output(0.25 * env.ctx.price)[0] == 0.0
    assert mg3.protocol.horizontal == (proto,)
    assert rule_dg_mw() == pytest.approx(0.4)
    second = P2PTrading(P2PParams(q_max_mw=0.1), [mg3])
    assert mg3.protocol.horizontal == (proto, second)
    assert rule_dg_mw() == pytest.approx(0.5)
    env.ctx.tick = 0
    assert proto.export_taken_mw(mg3, pending_setpoints(mg3.children), env.ctx) == 0.0

"""Who is paid the congestion rent of the LMP market, on small pandapower networks with every load at its base MW
and the market price held at 50 $/MWh, against hand-computed LMPs, credits and rents."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pytest

from powergrid import PluginRecord, hookimpl
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.plugins import make_registry

PRICE = 50.0  # $/MWh, every tick
KV = 12.47
RATING_KA = 0.4  # kA: √3·12.47·0.4 = 8.64 MW, far above every flow


def _line(net, start, end, name, max_i_ka=RATING_KA):
    pp.create_line_from_parameters(net, start, end, 1.0, 0.3, 0.6, 10.0, max_i_ka, name=name)


def two_ties():
    """grid — trunk — feeder (1 MW); mg1 (2 MW) on line tie1 from mg1 to the feeder (the microgrid on its from side:
    the meter's import is −p_from_mw, sign −1); mg2 (2 MW) on line tie2 from the feeder to mg2 (sign +1)."""
    net = pp.create_empty_network(sn_mva=1.0)
    grid, feeder, mg1, mg2 = (pp.create_bus(net, KV, name=n) for n in ("grid", "feeder", "mg1", "mg2"))
    pp.create_ext_grid(net, grid)
    _line(net, grid, feeder, "trunk")
    _line(net, mg1, feeder, "tie1")
    _line(net, feeder, mg2, "tie2")
    for bus, mw in ((feeder, 1.0), (mg1, 2.0), (mg2, 2.0)):
        pp.create_load(net, bus, mw, 0.2 * mw)
    return net


TRUNK_MW = 2.0


def congested_trunk():
    """grid — tie2 — mg2 (0.5 MW); grid — trunk (rated 2.0 MW) — feeder (1.5 MW) — tie1 — mg1 (1.0 MW)."""
    net = pp.create_empty_network(sn_mva=1.0)
    grid, feeder, mg1, mg2 = (pp.create_bus(net, KV, name=n) for n in ("grid", "feeder", "mg1", "mg2"))
    pp.create_ext_grid(net, grid)
    _line(net, grid, feeder, "trunk", TRUNK_MW / (np.sqrt(3.0) * KV))
    _line(net, feeder, mg1, "tie1")
    _line(net, grid, mg2, "tie2")
    for bus, mw in ((feeder, 1.5), (mg1, 1.0), (mg2, 0.5)):
        pp.create_load(net, bus, mw, 0.2 * mw)
    return net


class Networks:
    @staticmethod
    @hookimpl
    def powergrid_register_networks():
        return [PluginRecord("two_ties", two_ties, "two line-metered microgrids, one each way"),
                PluginRecord("congested_trunk", congested_trunk, "a 2 MW trunk ahead of mg1")]


DEAR = {"p_max_mw": 1.0, "cost_a": 10.0, "cost_b": 90.0}  # the rule offers 1 MW at its midpoint's 90 + 20·0.5 $/MWh
CHEAP = {"p_max_mw": 3.0, "cost_a": 1.0, "cost_b": 5.0}  # 3 MW at 5 + 2·1.5 = 8 $/MWh


def _env(network: str, dg: dict = DEAR):
    """Two microgrids on their rules, each a DG (``dg``: the rule offers all of it, up to 3 MW, at the marginal cost of
    its midpoint) behind a line metered by its GridConnection (import ≤ 1.2 MW, export ≤ 0.5 MW), in the LMP
    market."""
    agents = []
    for k in (1, 2):
        agents += [{"id": f"mg{k}", "kind": "grid", "policy": "learned", "protocol": {"type": "setpoint"},
                    "children": [f"mg{k}_dg", f"mg{k}_pcc"]},
                   {"id": f"mg{k}_dg", "type": "DG", "bus": f"mg{k}", "params": dg},
                   {"id": f"mg{k}_pcc", "type": "GridConnection", "bus": f"mg{k}",
                    "params": {"element": "line", "name": f"tie{k}", "import_limit_mw": 1.2, "export_limit_mw": 0.5}}]
    data = {"name": network, "network": {"type": network}, "time": {"physics": "1h", "episode": "1d"},
            "spaces": {"action": "physical"}, "agents": agents,
            "horizontal": [{"type": "lmp_market", "participants": ["mg1", "mg2"], "params": {"q_max_mw": 3.0}}]}
    return MultiAgentPowerGridEnv.from_config(data, registry=make_registry(Networks, entry_points=True))


def _tick(env):
    """One tick on the rules at the base loads and 50 $/MWh: the market's info, and each microgrid's import (MW) and
    what it pays in all, its meter bill plus the market's settlement ($)."""
    market = env.scenario.horizontal[0]
    env.reset(seed=0)
    env.ctx.profiles["price"] = np.full(len(env.ctx.profiles["price"]), PRICE)
    env.load_multipliers = np.ones_like(env.load_multipliers)
    env.step({a: env.rule_action(a) for a in env.agents})
    env.step({a: env.rule_action(a) for a in env.agents})  # the second: the rules have a meter reading
    imports = {a: market.meters[a].flow(env.last_result) for a in ("mg1", "mg2")}
    paid = {a: env.scenario.agents[f"{a}_pcc"].device.cost + market.settled[a][0] for a in ("mg1", "mg2")}
    return market.info(), imports, paid


def test_a_microgrid_metered_on_its_lines_from_side_is_credited_the_rent_on_its_agreement():
    """Each microgrid draws 2.0 MW behind a 1.2 MW import agreement, so its DG runs 0.8 MW and its LMP is its offer,
    100 $/MWh, against λ = 50. Each holds the right to 1.2 MW, so by hand each is credited (100 − 50)·1.2 = 60 $ and
    pays λ·m + (LMP − λ)·max(m − 1.2, 0) for its import m: 60 $ at m = 1.2 MW. mg1's meter is the line's from side (the DC
    branch runs mg1 → feeder, its import is the back flow and its congestion price −50 $/MWh): its credit must come
    out as mg2's, metered the usual way (with the sign dropped mg1 is charged 60 $ and pays 180 $). Both rents go back
    to the microgrids: the operator keeps none of the 120 $."""
    env = _env("two_ties")
    market = env.scenario.horizontal[0]
    assert [env.scenario.agents[f"mg{k}_pcc"].device.sign for k in (1, 2)] == [-1.0, 1.0]
    assert market.rights["mg1"][:2] == (market.dc.names.index("tie1"), -1.0)
    info, m, paid = _tick(env)
    lmp = 90.0 + 20.0 * 0.5
    assert info["system_lambda"] == pytest.approx(PRICE) and info["congested"] == ["tie1", "tie2"]
    assert info["lmp"] == pytest.approx({"mg1": lmp, "mg2": lmp})
    tie1, tie2 = market.dc.names.index("tie1"), market.dc.names.index("tie2")
    assert market.result.congestion_price[[tie1, tie2]] == pytest.approx([PRICE - lmp, lmp - PRICE])
    assert m["mg1"] == pytest.approx(1.2, abs=1e-6)  # metered at mg1's end: the DC flow, losses upstream of it
    assert 1.2 < m["mg2"] < 1.21  # metered at the feeder's end: the DC flow plus the line's losses
    rent = info["rent"]
    assert rent["credited"] == pytest.approx({"mg1": 60.0, "mg2": 60.0}, abs=1e-5)
    for a in ("mg1", "mg2"):
        assert paid[a] == pytest.approx(PRICE * m[a] + (lmp - PRICE) * max(m[a] - 1.2, 0.0), abs=1e-9)
    assert paid["mg1"] == pytest.approx(60.0, abs=1e-5)
    assert rent["congestion"] == pytest.approx(120.0) and rent["iso"] == pytest.approx(0.0, abs=1e-5)
    assert rent["settled"] == pytest.approx((lmp - PRICE) * (m["mg2"] - 1.2), abs=1e-9)  # mg2's line losses


def test_a_microgrid_metered_on_its_lines_from_side_is_paid_the_market_price_within_its_export_agreement():
    """Each microgrid's DG offers 3 MW at 8 $/MWh on its 2.0 MW: each would export 1.0 MW, the agreement allows 0.5,
    so each DG runs 2.5 MW and its LMP is its offer, 8 $/MWh, against λ = 50. Each holds the right to export 0.5 MW,
    so by hand each is credited (50 − 8)·0.5 = 21 $ and is paid λ·|m| for its export |m| ≤ 0.5: 25 $ at 0.5 MW,
    its meter bill at the sell price (0.8·50 $/MWh, 20 $) and the market's 5 $. mg1's export is its line's forward
    flow (mg1 → feeder; congestion price +42 $/MWh), mg2's the back flow of its own (−42). mg2's meter, at the
    feeder's end, reads the 0.5 MW less the line's losses: it is credited on what it reads, and the operator keeps
    the rest of the 42 $ rent, 42·(0.5 − |m|)."""
    env = _env("two_ties", CHEAP)
    market = env.scenario.horizontal[0]
    info, m, paid = _tick(env)
    assert info["system_lambda"] == pytest.approx(PRICE) and info["congested"] == ["tie1", "tie2"]
    assert info["lmp"] == pytest.approx({"mg1": 8.0, "mg2": 8.0})
    tie1, tie2 = market.dc.names.index("tie1"), market.dc.names.index("tie2")
    assert market.result.congestion_price[[tie1, tie2]] == pytest.approx([42.0, -42.0])
    assert m["mg1"] == pytest.approx(-0.5, abs=1e-6) and -0.5 < m["mg2"] < -0.49  # mg2's meter: less the losses
    rent = info["rent"]
    assert rent["credited"] == pytest.approx({"mg1": 21.0, "mg2": -42.0 * m["mg2"]}, abs=1e-5)
    assert rent["congestion"] == pytest.approx(42.0) and rent["iso"] == pytest.approx(42.0 * (0.5 + m["mg2"]), abs=1e-5)
    for a in ("mg1", "mg2"):
        assert paid[a] == pytest.approx(PRICE * m[a], abs=1e-9)
    assert paid["mg1"] == pytest.approx(-25.0, abs=1e-5)


def test_a_congested_trunks_rent_goes_to_the_market_operator():
    """The 2.0 MW trunk carries the feeder's 1.5 MW and mg1's 1.0 MW: mg1's DG runs 0.5 MW (its middle block), so by
    hand LMP(feeder) = LMP(mg1) = 100 $/MWh, λ = LMP(mg2) = 50 $/MWh. Net demand: 0.5 MW at λ, 1.5 + 0.5 MW at 100:
    payments 275 $; receipts: the grid 2.5 MW at 50, the DG 0.5 MW at 100, 175 $; the congestion rent (100 − 50)·2.0
    = 100 $ = payments − receipts (the DC model is lossless), to 1e-9. No PCC binds, so nothing is credited and the
    operator keeps the 100 $; mg1 pays its whole import at 100 $/MWh (the trunk is no right of its own). Of the rent
    the participants' settlements carry mg1's 50 $/MWh on its import (25 $); the feeder's 75 $ is billed to no one."""
    env = _env("congested_trunk")
    market = env.scenario.horizontal[0]
    info, m, paid = _tick(env)
    assert info["congested"] == ["trunk"] and info["system_lambda"] == pytest.approx(PRICE)
    assert info["lmp"] == pytest.approx({"mg1": 100.0, "mg2": PRICE})
    np.testing.assert_allclose(market.result.lmp[market.dc.node_of[[1, 2, 3]]], [100.0, 100.0, PRICE])
    rent = info["rent"]
    assert rent["payments"] == pytest.approx(275.0) and rent["receipts"] == pytest.approx(175.0)
    assert rent["congestion"] == pytest.approx(100.0)
    assert abs(rent["payments"] - rent["receipts"] - rent["congestion"]) < 1e-9
    assert rent["credited"] == {"mg1": 0.0, "mg2": 0.0} and rent["iso"] == pytest.approx(100.0)
    assert 0.5 < m["mg1"] < 0.51 and paid["mg1"] == pytest.approx(100.0 * m["mg1"], abs=1e-9)
    assert rent["settled"] == pytest.approx((100.0 - PRICE) * m["mg1"], abs=1e-9)
    assert paid["mg2"] == pytest.approx(PRICE * m["mg2"], abs=1e-9)

"""Direction-dependent branch limits in the DC-OPF market and the PCC agreements the LMP market takes as its
microgrids' PCC limits, against hand-computed dispatch, LMPs and shadow prices."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pytest
import yaml

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import ConfigError
from powergrid_devices.grid_connection import GridConnection, GridConnectionParams
from powergrid_protocols.common import Meter
from powergrid_protocols.lmp import Offer, clear_market, dc_network, make_network
from powergrid_protocols.lmp.market import with_pcc_agreements
from tests.protocols.test_configs import CONFIGS
from tests.protocols.test_lmp import _lmp_env_mg1, b_theta_lmp


def feeder(forward_mw: float, back_mw: float):
    """Bus 0 the grid (slack), bus 1 a feeder bus, bus 2 a microgrid behind its PCC 1→2 (import ``forward_mw``,
    export ``back_mw``)."""
    return make_network(3, [(0, 1, 0.1, 100.0), (1, 2, 0.1, forward_mw, back_mw)], names=["feeder", "pcc"])


GRID = Offer(0, 30.0, 100.0, "grid", 100.0)  # sells and buys up to 100 MW at 30 $/MWh


def cost_at(net, offers, demand):
    r = clear_market(net, offers, demand)
    assert r.success
    return r.cost


def test_the_import_limit_binds_and_prices_the_microgrid_at_its_own_offer():
    """1.5 MW in the microgrid, its DG offers 0.6 MW at 90 $/MWh, the PCC imports at most 1.2 MW. By hand: the grid
    serves the feeder's 2 MW and 1.2 MW of the microgrid, the DG the other 0.3 MW; one more MW in the microgrid is
    the DG's (LMP 90 $/MWh), at the feeder the grid's (30 $/MWh). Relieving the import limit by 0.1 MW swaps
    0.1 MW of DG for grid: −6 $/h, a shadow price of 60 $/MWh = the spread. The export limit (0.5 MW) is slack."""
    net = feeder(1.2, 0.5)
    offers, demand = [GRID, Offer(2, 90.0, 0.6, "mg")], np.array([0.0, 2.0, 1.5])
    r = clear_market(net, offers, demand)
    np.testing.assert_allclose(r.dispatch_mw, [3.2, 0.3], atol=1e-9)
    np.testing.assert_allclose(r.flow_mw, [3.2, 1.2], atol=1e-9)
    np.testing.assert_allclose(r.lmp, [30.0, 30.0, 90.0], atol=1e-9)
    assert r.congested.tolist() == [False, True] and r.cost == pytest.approx(30.0 * 3.2 + 90.0 * 0.3)
    shadow = (r.cost - cost_at(feeder(1.3, 0.5), offers, demand)) / 0.1
    assert shadow == pytest.approx(60.0) and shadow == pytest.approx(r.lmp[2] - r.lmp[1])
    np.testing.assert_allclose(r.congestion_price, [0.0, 60.0], atol=1e-9)  # the PCC's, from → to (import)
    for back in (0.0, 0.3, 100.0):  # the reverse limit does not bind: any export limit clears the same
        assert cost_at(feeder(1.2, back), offers, demand) == pytest.approx(r.cost)
    lmp, g, _ = b_theta_lmp(net, offers, demand)  # the same LP in B-theta form, duals of the nodal balances
    np.testing.assert_allclose(r.lmp, lmp, atol=1e-6)
    np.testing.assert_allclose(r.dispatch_mw, g, atol=1e-6)


def test_the_export_limit_binds_in_its_own_direction_only():
    """0.2 MW in the microgrid, its DG offers 1.0 MW at 20 $/MWh, below the grid's 30. At a symmetric 1.2 MW the DG
    runs flat out and exports 0.8 MW: one price, 30 $/MWh. With the export limit at 0.5 MW: the DG runs 0.7 MW
    (0.2 + 0.5), the microgrid's LMP is the DG's 20 $/MWh, and the limit's shadow price is 10 $/MWh (0.1 MW more
    export displaces 0.1 MW of grid at 30 for DG at 20: −1 $/h). The import limit (1.2 MW) is slack."""
    offers, demand = [GRID, Offer(2, 20.0, 1.0, "mg")], np.array([0.0, 2.0, 0.2])
    symmetric = clear_market(feeder(1.2, 1.2), offers, demand)
    np.testing.assert_allclose(symmetric.dispatch_mw, [1.2, 1.0], atol=1e-9)
    np.testing.assert_allclose(symmetric.lmp, 30.0, atol=1e-9)
    assert not symmetric.congested.any()
    net = feeder(1.2, 0.5)
    r = clear_market(net, offers, demand)
    np.testing.assert_allclose(r.dispatch_mw, [1.5, 0.7], atol=1e-9)
    np.testing.assert_allclose(r.flow_mw, [1.5, -0.5], atol=1e-9)
    np.testing.assert_allclose(r.lmp, [30.0, 30.0, 20.0], atol=1e-9)
    assert r.congested.tolist() == [False, True]
    shadow = (r.cost - cost_at(feeder(1.2, 0.6), offers, demand)) / 0.1
    assert shadow == pytest.approx(10.0) and shadow == pytest.approx(r.lmp[1] - r.lmp[2])
    np.testing.assert_allclose(r.congestion_price, [0.0, -10.0], atol=1e-9)  # the back (export) limit's
    for forward in (0.0, 0.5, 100.0):  # the import limit does not bind
        assert cost_at(feeder(forward, 0.5), offers, demand) == pytest.approx(r.cost)
    lmp, _, _ = b_theta_lmp(net, offers, demand)
    np.testing.assert_allclose(r.lmp, lmp, atol=1e-6)


def line_metered_microgrid():
    """Grid at bus 0; the microgrid at bus 1 fed by a line whose *from* side is the microgrid (import = −p_from)."""
    net = pp.create_empty_network(sn_mva=1.0)
    grid, mg = pp.create_bus(net, 12.47), pp.create_bus(net, 12.47)
    pp.create_ext_grid(net, grid)
    pp.create_line_from_parameters(net, mg, grid, 1.0, 0.3, 0.6, 10.0, 0.4, name="tie")
    pcc = GridConnection(GridConnectionParams(element="line", name="tie", import_limit_mw=1.2, export_limit_mw=0.5),
                         1.0)
    pcc.attach(net, mg)
    return net, Meter("line", pcc.row, 1.0, pcc)


def test_a_meter_on_a_line_fed_from_its_to_side_limits_the_import_in_that_direction():
    net, meter = line_metered_microgrid()
    assert meter.device.sign == -1.0
    dc = with_pcc_agreements(dc_network(net), [meter])
    assert dc.elements == (("line", 0),) and dc.from_node[0] == dc.node_of[1]  # the branch runs microgrid → grid
    assert dc.limit_mw[0] == pytest.approx(0.5) and dc.limit_back_mw[0] == pytest.approx(1.2)
    demand = np.zeros(dc.n_nodes)
    demand[dc.node_of[1]] = 1.5
    r = clear_market(dc, [Offer(dc.slack, 30.0, 100.0, "grid", 100.0), Offer(int(dc.node_of[1]), 90.0, 0.6)], demand)
    assert r.flow_mw[0] == pytest.approx(-1.2) and r.dispatch_mw[1] == pytest.approx(0.3)  # 1.2 MW imported
    assert r.lmp[dc.node_of[1]] == pytest.approx(90.0)
    assert r.congestion_price[0] == pytest.approx(30.0 - 90.0)  # from (microgrid) → to (grid): the back limit binds
    rating = np.sqrt(3.0) * 12.47 * 0.4  # MW: the line's thermal rating stays without a meter
    assert with_pcc_agreements(dc_network(net), []).limit_back_mw[0] == pytest.approx(rating)


def test_a_soft_pcc_limit_the_offers_cannot_meet_clears_at_its_penalty():
    """1.5 MW behind a 1.2 MW import limit and no offer behind it (withheld): a hard limit leaves no feasible
    dispatch (the market fails); at a 1000 $/MWh penalty the grid serves all 1.5 MW, 0.3 MW beyond the limit, and
    the microgrid's LMP is 30 + 1000 = 1030 $/MWh (one more MW there is 1 MW more from the grid and beyond the
    limit). Once the DG offers its 0.6 MW at
    90 $/MWh the limit holds and the penalty is not paid: the LMP is the DG's 90 $/MWh."""
    demand = np.array([0.0, 2.0, 1.5])
    assert not clear_market(feeder(1.2, 0.5), [GRID], demand).success
    net = feeder(100.0, 100.0).with_limits(1, 1.2, 0.5, penalty=1000.0)
    r = clear_market(net, [GRID], demand)
    assert r.success and r.congested.tolist() == [False, True]
    np.testing.assert_allclose(r.flow_mw, [3.5, 1.5], atol=1e-9)
    np.testing.assert_allclose(r.lmp, [30.0, 30.0, 1030.0], atol=1e-6)
    np.testing.assert_allclose(r.excess_mw, [0.0, 0.3], atol=1e-9)  # MW scheduled beyond the agreement
    assert r.cost == pytest.approx(30.0 * 3.5)  # the offers' cost, without the penalty
    r = clear_market(net, [GRID, Offer(2, 90.0, 0.6, "mg")], demand)
    np.testing.assert_allclose(r.dispatch_mw, [3.2, 0.3], atol=1e-9)
    np.testing.assert_allclose(r.lmp, [30.0, 30.0, 90.0], atol=1e-6)
    np.testing.assert_allclose(r.excess_mw, 0.0, atol=1e-9)


def test_an_agreement_softens_only_the_direction_it_limits_and_only_up_to_the_rating():
    """A 2.0 MW PCC (its rating, both ways) with an import agreement of 1.2 MW at 1000 $/MWh and no export agreement.
    1.9 MW of load behind it, nothing offered there: 0.7 MW clear beyond the agreement (LMP 30 + 1000); 2.5 MW would
    cross the rating, which stays hard: the market fails. 2.7 MW of PV on 0.2 MW of load (−2.5 MW of demand) would
    export 2.5 MW through the 2.0 MW rating: hard, the market fails (it cleared 0.5 MW beyond the rating at
    1000 $/MWh when an agreement made both directions soft without bound). With a 0.5 MW export agreement 1.9 MW
    exports clear 1.4 MW beyond it at λ − 1000."""
    net = feeder(2.0, 2.0).with_limits(1, 1.2, 100.0, penalty=1000.0)
    assert net.limit_mw[1] == 1.2 and net.limit_back_mw[1] == 2.0
    assert net.penalty[1] == 1000.0 and np.isinf(net.penalty_back[1]) and net.room_mw[1] == pytest.approx(0.8)
    r = clear_market(net, [GRID], np.array([0.0, 2.0, 1.9]))
    assert r.success
    np.testing.assert_allclose(r.excess_mw, [0.0, 0.7], atol=1e-9)
    np.testing.assert_allclose(r.lmp, [30.0, 30.0, 1030.0], atol=1e-6)
    assert r.congestion_price[1] == pytest.approx(1000.0)
    for demand in (2.5, -2.5):  # beyond the rating either way
        failed = clear_market(net, [GRID], np.array([0.0, 2.0, demand]))
        assert not failed.success and np.isnan(failed.excess_mw).all()
    r = clear_market(net, [GRID], np.array([0.0, 2.0, -1.9]))  # within the rating: exported, nothing beyond
    np.testing.assert_allclose(r.flow_mw, [0.1, -1.9], atol=1e-9)
    np.testing.assert_allclose(r.excess_mw, 0.0, atol=1e-9)
    both = net.with_limits(1, 100.0, 0.5, penalty=1000.0)  # an export agreement as well: that side soft too
    assert both.limit_mw[1] == 1.2 and both.room_back_mw[1] == pytest.approx(1.5)
    r = clear_market(both, [GRID], np.array([0.0, 2.0, -1.9]))
    np.testing.assert_allclose(r.excess_mw, [0.0, 1.4], atol=1e-9)
    np.testing.assert_allclose(r.lmp, [30.0, 30.0, 30.0 - 1000.0], atol=1e-6)
    assert r.congestion_price[1] == pytest.approx(-1000.0)
    assert not clear_market(both, [GRID], np.array([0.0, 2.0, -2.5])).success


def _market(pcc_limits: bool):
    data = yaml.safe_load((CONFIGS / "lmp_market.yaml").read_text())
    data["horizontal"][0]["params"]["pcc_limits"] = pcc_limits
    env = MultiAgentPowerGridEnv.from_config(data)
    return env, env.scenario.horizontal[0]


def test_lmp_market_takes_each_pcc_agreement_as_its_pcc_limits():
    """lmp_market.yaml: each microgrid's trafo mgK.pcc (2.5 MVA) carries its GridConnection's 1.2 MW import (hv → lv)
    and 0.5 MW export; with ``pcc_limits: false`` the ratings alone. Nothing else moves."""
    _, on = _market(True)
    _, off = _market(False)
    pcc = [on.dc.names.index(f"mg{k}.pcc") for k in (1, 2, 3)]
    np.testing.assert_allclose(on.dc.limit_mw[pcc], 1.2)
    np.testing.assert_allclose(on.dc.limit_back_mw[pcc], 0.5)
    np.testing.assert_allclose(off.dc.limit_mw[pcc], 2.5)
    np.testing.assert_allclose(off.dc.limit_back_mw[pcc], 2.5)
    rest = np.setdiff1d(np.arange(len(on.dc.names)), pcc)
    np.testing.assert_array_equal(on.dc.limit_mw[rest], off.dc.limit_mw[rest])
    np.testing.assert_array_equal(on.dc.limit_back_mw[rest], off.dc.limit_mw[rest])


def test_a_participant_withholding_its_offer_pays_the_penalty_and_the_market_clears():
    """lmp_market.yaml, day 2, mg1 on its rule but offering 0 MW: its DG's MW never reach the market, so on the ticks
    its PCC would import more than 1.2 MW the market clears the excess at pcc_penalty (mg1's LMP = λ + 1000 $/MWh)
    instead of failing (with hard limits 21 of 288 markets went stale over seeds 0-11, each billing mg1 at the meter
    price: withholding beat the rule by 35.7 $/day, -1064.6 against -1100.3). The market reports the MW it schedules
    beyond the agreement (info ``excess_mw``); mg1 pays the penalty on them, so its day costs more than the rule's."""
    env = _lmp_env_mg1(lambda data: None)
    market, mg1 = env.scenario.horizontal[0], env._agent_ids.index("mg1")
    costs = []
    for withhold in (False, True):
        env.reset(seed=2)
        cost, penalised, excess = 0.0, 0, 0.0
        while env.agents:
            action = np.array(env.rule_action("mg1"), np.float32)
            if withhold:
                action[-2:] = 0.0  # [price $/MWh, MW] of the offer (physical actions)
            env.step({"mg1": action})
            info = market.info()
            assert info["success"] and not info["stale"]
            over = info["lmp"]["mg1"] == pytest.approx(info["system_lambda"] + 1000.0)
            assert over == (info["excess_mw"].get("mg1.pcc", 0.0) > 1e-6)
            penalised += over
            excess += info["excess_mw"].get("mg1.pcc", 0.0)
            cost += float(env._cost_safe[0, mg1])
        assert penalised >= (4 if withhold else 0) and (withhold or penalised == 0)
        costs.append(cost)
    assert excess > 0.3 and costs[1] > costs[0] + 1000.0 * excess  # measured 0.41 MWh; 1623.9 against 1067.8 $


def test_a_meter_without_agreements_leaves_its_branch_hard_at_its_rating():
    """A GridConnection's limits default to unlimited: its branch keeps its rating as a hard limit (no penalty)."""
    net, meter = line_metered_microgrid()
    free = Meter("line", meter.row, 1.0, GridConnection(GridConnectionParams(element="line", name="tie"), 1.0))
    dc = dc_network(net)
    assert with_pcc_agreements(dc, [free], 1000.0) is dc
    limited = with_pcc_agreements(dc, [meter], 1000.0)
    assert limited.penalty[0] == 1000.0 and np.isinf(dc.penalty[0])


def test_the_market_sees_the_pcc_import_the_meter_bills():
    """The PCC limits bound what the meter bills only if the DC model's PCC flow is the meter's: the market counts
    each participant's batteries (and PV) at their pending setpoints, so on day 2 of lmp_market.yaml (every agent on
    its rule) the DC flow of each mgK.pcc is the AC import within the microgrid's losses (measured ≤ 0.025 MW over
    seeds 0-11; without the batteries it was up to 0.32 MW off)."""
    env, market = _market(True)
    env.reset(seed=2)
    pcc = {a: market.dc.elements.index((m.element, m.row)) for a, m in market.meters.items()}
    gaps = []
    while env.agents:
        env.step({a: env.rule_action(a) for a in env.agents})
        gaps += [market.meters[a].flow(env.last_result) - market.result.flow_mw[b] for a, b in pcc.items()]
    assert 0.0 < np.mean(gaps) < 0.02 and max(np.abs(gaps)) < 0.03  # the AC import is the DC one plus losses



def _settled_day(env, seed: int, offer=None):
    """One day of ``env`` with mg1 on its rule (``offer``: {tick: its ``[price $/MWh, MW]``} instead): per tick the
    market's info, mg1's import (MW), its meter bill and market settlement ($) and its offer's cleared MW; and mg1's
    cost ($/day)."""
    market, mg1 = env.scenario.horizontal[0], env._agent_ids.index("mg1")
    settle, settled = market.settle, {}

    def recording(result, ctx):
        out = settle(result, ctx)
        settled.update(out)
        return out

    market.settle = recording
    env.reset(seed=seed)
    ticks, cost = [], 0.0
    while env.agents:
        action = np.array(env.rule_action("mg1"), np.float32)
        if offer and len(ticks) in offer:
            action[-2:] = offer[len(ticks)]
        settled.clear()
        env.step({"mg1": action})
        ticks.append((market.info(), market.meters["mg1"].flow(env.last_result),
                      env.scenario.agents["mg1_pcc"].device.cost, settled["mg1"][0], float(market.result.dispatch_mw[1])))
        cost += float(env._cost_safe[0, mg1])
    market.settle = settle
    return ticks, cost


def test_a_microgrid_keeps_the_congestion_rent_on_its_agreement():
    """lmp_market.yaml, day 2, mg1 on its rule: its PCC binds at the 1.2 MW import agreement on 6 ticks, its LMP its
    DG's offer (91 $/MWh; λ the market price). It holds the right to its agreement, so by hand it pays
    λ·m + (LMP − λ)·(m − 1.2) for an import m: only the MW beyond the agreement pay its LMP (before, all of m paid it).
    Shading its offer on those ticks (λ − 5 $/MWh for the rule's cleared MW + 0.02: the same DG output, no
    congestion) saves 1.4 $ of the day's 1067.8 (it saved 303.8 $ of 1370.2 when the whole import paid the LMP)."""
    env = _lmp_env_mg1(lambda data: None)
    ticks, cost = _settled_day(env, 2)
    congested = [t for t, tick in enumerate(ticks) if "mg1.pcc" in tick[0]["congested"]]
    assert len(congested) >= 4
    for t in congested:
        info, m, bill, settled, _ = ticks[t]
        lam, lmp = info["system_lambda"], info["lmp"]["mg1"]
        assert abs(lmp - 91.0) < 1e-4 and lmp - lam > 10.0 and m > 1.2
        assert bill + settled == pytest.approx(lam * m + (lmp - lam) * (m - 1.2), abs=1e-6)  # dt = 1 h
    shade = {t: [ticks[t][0]["system_lambda"] - 5.0, ticks[t][4] + 0.02] for t in congested}
    shaded_ticks, shaded = _settled_day(env, 2, shade)
    assert not any("mg1.pcc" in tick[0]["congested"] for tick in shaded_ticks)
    assert abs(cost - shaded) < 5.0


def test_a_microgrid_exporting_within_its_agreement_is_paid_the_market_price():
    """lmp_market.yaml with mg1's DG at 2 MW and 5 $/MWh (day 2): at 5 h its PCC binds at the 0.5 MW export agreement
    and its LMP is its DG's offer (7 $/MWh) against λ = 56.7 $/MWh. It holds the right to export 0.5 MW, so what it
    exports within it (the AC export, 0.49 MW, is the DC one less the losses) is paid λ: by hand bill + settlement
    = λ·m; before, its LMP (7 $/MWh)."""

    def cheap_dg(data):
        dg = next(a for a in data["agents"] if a["id"] == "mg1_dg")
        dg["params"].update(p_max_mw=2.0, cost_a=1.0, cost_b=5.0)

    ticks, _ = _settled_day(_lmp_env_mg1(cheap_dg), 2)
    exporting = [tick for tick in ticks if "mg1.pcc" in tick[0]["congested"] and tick[1] < 0.0]
    assert exporting
    for info, m, bill, settled, _ in exporting:
        lam, lmp = info["system_lambda"], info["lmp"]["mg1"]
        assert lam - lmp > 10.0 and -0.5 < m < -0.45
        assert bill + settled == pytest.approx(lam * m, abs=1e-6)


@pytest.mark.parametrize("params, found", [({"pcc_penalty": 10.0}, "got 10.0"),
                                          ({"pcc_penalty": 500.0, "price_max": 600.0}, "got 500.0"),
                                          ({"pcc_penalty": float("inf")}, "got inf")])
def test_pcc_penalty_is_a_finite_price_above_price_max(params, found):
    """pcc_penalty must be above price_max (an offer the learned participant can make would otherwise be dearer than
    exceeding the agreement: 10 $/MWh was accepted) and finite (a hard limit lets a withheld offer fail the market:
    21 of 288 markets stale, withholding ahead of the rule)."""
    data = yaml.safe_load((CONFIGS / "lmp_market.yaml").read_text())
    data["horizontal"][0]["params"].update(params)
    with pytest.raises(ConfigError, match=r"horizontal\[0\]\.params.*expected .*" + found):
        MultiAgentPowerGridEnv.from_config(data)

"""LMPs equal the nodal-balance duals of the same DC-OPF in B-theta form (independent linprog/HiGHS)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from powergrid.networks import cigre_mv
from powergrid_protocols.lmp import Offer, clear_market, dc_network, make_network


def b_theta_lmp(net, offers, demand):
    """Variables [g (offers), θ (nodes)]; nodal balance G g − Aᵀ Bf θ = d; −F_back ≤ Bf θ ≤ F; θ_slack = 0."""
    n, m, k = net.n_nodes, len(net.x_pu), len(offers)
    a = np.zeros((m, n))
    a[np.arange(m), net.from_node] = 1
    a[np.arange(m), net.to_node] = -1
    bf = a / net.x_pu[:, None]
    g_map = np.zeros((n, k))
    for j, o in enumerate(offers):
        g_map[o.node, j] = 1
    a_eq = np.hstack([g_map, -(a.T @ bf)])
    c = np.concatenate([[o.price for o in offers], np.zeros(n)])
    a_ub = np.vstack([np.hstack([np.zeros((m, k)), bf]), np.hstack([np.zeros((m, k)), -bf])])
    b_ub = np.concatenate([net.limit_mw, net.limit_back_mw])
    bounds = [(-o.buy_mw, o.quantity_mw) for o in offers] + [(0, 0) if i == net.slack else (None, None) for i in range(n)]
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=demand, bounds=bounds, method="highs")
    assert res.status == 0, res.message
    return res.eqlin.marginals, res.x[:k], res.fun


def three_bus(limit):
    return make_network(3, [(0, 1, 0.1, 100), (1, 2, 0.1, 100), (0, 2, 0.1, limit)])


@pytest.mark.parametrize("limit", [50.0, 45.0, 1000.0])
def test_three_bus_lmps_equal_the_nodal_duals(limit):
    net = three_bus(limit)
    offers = [Offer(0, 20, 200), Offer(1, 50, 200)]
    demand = np.array([0, 0, 120.0])
    r = clear_market(net, offers, demand)
    lmp, g, cost = b_theta_lmp(net, offers, demand)
    np.testing.assert_allclose(r.lmp, lmp, atol=1e-6)
    np.testing.assert_allclose(r.dispatch_mw, g, atol=1e-6)
    assert r.cost == pytest.approx(cost)
    if limit < 1000:
        assert r.congested.any() and np.ptp(r.lmp) > 1.0  # congestion separates prices
    else:
        assert not r.congested.any() and np.ptp(r.lmp) < 1e-9


def test_cigre_mv_with_congestion_and_without():
    for scale, congested in ((1.0, False), (0.7, True)):
        net = dc_network(cigre_mv(), limit_scale=scale)
        node = net.node_of
        demand = np.zeros(net.n_nodes)
        for bus, p in {2: 0.1, 3: 0.5, 4: 0.43, 5: 0.73, 6: 0.55, 8: 0.59, 9: 0.57, 10: 0.54, 11: 0.33, 14: 0.54}.items():
            demand[node[bus]] += p
        offers = [Offer(node[0], 60.0, 100.0, "grid"), Offer(node[6], 45.0, 0.6, "mg1"),
                  Offer(node[10], 70.0, 0.6, "mg2"), Offer(node[14], 40.0, 0.6, "mg3")]
        r = clear_market(net, offers, demand)
        lmp, _, cost = b_theta_lmp(net, offers, demand)
        assert r.success
        np.testing.assert_allclose(r.lmp, lmp, atol=1e-5)
        assert r.cost == pytest.approx(cost, rel=1e-9)
        assert bool(r.congested.any()) is congested  # (bus 2 carries 0.1 MW so that lines 1-2 and 2-3 differ)
        assert bool(np.ptp(r.lmp) > 1.0) is congested
        assert np.all(np.abs(r.flow_mw) <= net.limit_mw + 1e-6)


def test_an_infeasible_market_reports_no_prices():
    # 120 MW of demand at node 2 and offers of only 50 + 50 MW: no dispatch meets the balance
    net = three_bus(1000.0)
    r = clear_market(net, [Offer(0, 20, 50), Offer(1, 50, 50)], np.array([0, 0, 120.0]))
    assert not r.success and np.isnan(r.lmp).all() and r.message


def test_a_failed_market_marks_its_prices_stale():
    import attrs
    import yaml

    from powergrid.env import MultiAgentPowerGridEnv
    from tests.protocols.test_configs import CONFIGS

    env = MultiAgentPowerGridEnv.from_config(yaml.safe_load((CONFIGS / "lmp_market.yaml").read_text()))
    proto = env.scenario.horizontal[0]
    env.reset(seed=0)
    action = np.zeros(env.action_space("mg1").shape, np.float32)
    mg1 = env.scenario.agents["mg1"]
    _, _, _, _, infos = env.step({"mg1": action})
    info = infos["mg1"]["LMPMarket"]
    assert info["success"] and not info["stale"]
    old = info["lmp"]["mg1"]
    np.testing.assert_allclose(proto.observe(mg1), [old, 0.0, 0.0], rtol=1e-6)  # [price, congested, stale]
    # the grid's offer shrinks to 1 kW: the network's demand (MW) cannot be met, the DC-OPF is infeasible
    proto.params = attrs.evolve(proto.params, grid_offer_mw=0.001)
    price = float(env.ctx.profiles["price"][env.tick])  # the meter price of the coming tick ($/MWh)
    assert env.agents, "the first step ended the episode"
    _, _, _, _, infos = env.step({"mg1": action})
    info = infos["mg1"]["LMPMarket"]
    assert not info["success"] and info["stale"] and info["message"]
    assert "lmp" not in info and info["price"]["mg1"] == pytest.approx(price)
    # the meter price of the tick and the stale flag, not the last LMP
    np.testing.assert_allclose(proto.observe(mg1), [price, 0.0, 1.0], rtol=1e-6)
    assert price != pytest.approx(old)
    assert env.scenario.agents["mg2_dg"].price == pytest.approx(price)


def test_the_dc_slack_is_the_in_service_slack_ext_grid_or_generator():
    import pandapower as pp

    from powergrid.networks import case33bw

    reference = dc_network(case33bw())
    # the slack is a generator (no ext_grid): the same DC model, slack at the generator's bus
    net = case33bw()
    eg = net.ext_grid.iloc[0]
    pp.create_gen(net, int(eg.bus), p_mw=0.0, vm_pu=float(eg.vm_pu), slack=True)
    net.ext_grid.drop(net.ext_grid.index, inplace=True)
    gen_slack = dc_network(net)
    assert gen_slack.slack == gen_slack.node_of[list(net.bus.index).index(int(eg.bus))]
    np.testing.assert_array_equal(gen_slack.ptdf, reference.ptdf)
    # the first ext_grid out of service: the slack is the in-service one at the far end (bus 32)
    net = case33bw()
    far = int(net.bus.index[-1])
    pp.create_ext_grid(net, far, vm_pu=1.0)
    net.ext_grid.loc[net.ext_grid.index[0], "in_service"] = False
    moved = dc_network(net)
    assert moved.slack == moved.node_of[len(net.bus) - 1] != reference.slack
    assert np.all(moved.ptdf[:, moved.slack] == 0.0) and np.any(moved.ptdf[:, reference.slack] != 0.0)
    # no slack in service: a clear error, not an IndexError
    net.ext_grid["in_service"] = False
    with pytest.raises(ValueError, match="in-service slack"):
        dc_network(net)


def _ieee34_3mg_loads_off(drop: bool):
    """ieee34_3mg with its largest load out of service and bus mg1.652 out of service (with its line; its load left
    in service: pandapower serves none of it); ``drop``: those two loads removed instead."""
    from powergrid.networks import TEMPLATES

    net = TEMPLATES["ieee34_3mg"]()
    b = int(net.bus.index[net.bus.name == "mg1.652"][0])
    net.bus.loc[b, "in_service"] = False
    net.line.loc[(net.line.from_bus == b) | (net.line.to_bus == b), "in_service"] = False
    big, at_b = int(net.load.p_mw.idxmax()), net.load.index[net.load.bus == b]
    assert len(at_b) == 1 and net.load.p_mw[at_b].sum() > 0 and big not in at_b
    if drop:
        net.load.drop([big, *at_b], inplace=True)
    else:
        net.load.loc[big, "in_service"] = False
    return net


def test_the_market_clears_only_the_loads_the_flow_serves():
    """An out-of-service load, or one at an out-of-service bus (no DC node: it went to the last node), was demand."""
    import yaml

    from powergrid import PluginRecord, hookimpl
    from powergrid.env import MultiAgentPowerGridEnv
    from powergrid.plugins import make_registry
    from tests.protocols.test_configs import CONFIGS

    class Networks:
        @staticmethod
        @hookimpl
        def powergrid_register_networks():
            return [PluginRecord("loads_off", lambda: _ieee34_3mg_loads_off(False), "two loads not served"),
                    PluginRecord("loads_dropped", lambda: _ieee34_3mg_loads_off(True), "the same loads removed")]

    registry = make_registry(Networks, entry_points=True)
    results = {}
    for name in ("loads_off", "loads_dropped"):
        data = yaml.safe_load((CONFIGS / "lmp_market.yaml").read_text())
        data["network"] = {"type": name}
        data["loads"] = {"profile": "uniform"}  # the served loads draw the same in both (classes depend on the set)
        env = MultiAgentPowerGridEnv.from_config(data, registry=registry)
        env.reset(seed=0)
        proto = env.scenario.horizontal[0]
        results[name] = []
        for _ in range(3):
            env.step({a: np.zeros(env.action_space(a).shape, np.float32) for a in env.agents})
            assert proto.result.success
            results[name].append((proto.result.dispatch_mw.sum(), proto.result.lmp))
    for (mw, lmp), (mw_ref, lmp_ref) in zip(results["loads_off"], results["loads_dropped"]):
        assert mw == pytest.approx(mw_ref, abs=1e-9)
        np.testing.assert_allclose(lmp, lmp_ref, atol=1e-9)


def _ieee34_3mg_scaled():
    """ieee34_3mg with every other load at ``scaling`` 0.5 (the AC flow serves p_mw·scaling·multiplier)."""
    from powergrid.networks import TEMPLATES

    net = TEMPLATES["ieee34_3mg"]()
    net.load.loc[net.load.index[::2], "scaling"] = 0.5
    return net


@pytest.mark.parametrize("network", ["ieee34_3mg", "scaled"])
def test_the_market_clears_the_load_the_flow_serves_at_each_tick(network):
    """Each load has its own class multiplier (powergrid.loads); the market used one scalar, the ``load`` profile,
    and cleared 3.597 MW at tick 5 of lmp_market.yaml while the AC flow served 2.257 MW. Reference: pandapower's
    ``res_load`` (p_mw·scaling) of the env's loads at the tick, per DC node; the cleared MW meet it less what the PV
    and the batteries inject."""
    import copy

    import pandapower as pp
    import yaml

    from powergrid import PluginRecord, hookimpl
    from powergrid.env import MultiAgentPowerGridEnv
    from powergrid.plugins import make_registry
    from tests.protocols.test_configs import CONFIGS

    class Networks:
        @staticmethod
        @hookimpl
        def powergrid_register_networks():
            return [PluginRecord("scaled", _ieee34_3mg_scaled, "loads at scaling 0.5")]

    data = yaml.safe_load((CONFIGS / "lmp_market.yaml").read_text())
    data["network"] = {"type": network}
    env = MultiAgentPowerGridEnv.from_config(data, registry=make_registry(Networks, entry_points=True))
    proto = env.scenario.horizontal[0]
    base = copy.deepcopy(env.net)  # the template's loads (base p_mw, q_mvar; scaling)
    env.reset(seed=0)
    pvs = [d for a in proto.participants for d in a.devices() if type(d.device).__name__ in ("PV", "ESS")]
    checked = 0
    for _ in range(8):
        t = env.ctx.tick
        env.step({a: np.zeros(env.action_space(a).shape, np.float32) for a in env.agents})
        pv_mw = sum(d.device.p_mw for d in pvs)  # what the PV (mg1's at f = 0.5, curtailed) and ESS injected
        if t not in (1, 3, 5, 7):
            continue
        net = copy.deepcopy(base)
        net.load["p_mw"] *= env.load_multipliers[t]
        net.load["q_mvar"] *= env.load_multipliers[t]
        pp.runpp(net)
        node = proto.dc.node_of[[list(net.bus.index).index(b) for b in net.load.bus]]
        served = np.zeros(proto.dc.n_nodes)
        np.add.at(served, node, net.res_load.p_mw.to_numpy())
        assert proto.result.success
        assert proto.result.dispatch_mw.sum() == pytest.approx(served.sum() - pv_mw, abs=1e-7)
        np.testing.assert_allclose(proto.load_mw, served, rtol=0, atol=1e-9)
        one_profile = env.ctx.profiles["load"][t] * (base.load.p_mw * base.load.scaling).sum()  # the old demand
        assert abs(served.sum() - one_profile) > 0.05
        checked += 1
    assert checked == 4


@pytest.mark.parametrize("ramp", [None, 0.2])
def test_a_learned_offer_clears_at_most_what_its_dg_can_add(ramp):
    """lmp_market.yaml's offer box goes to q_max_mw = 1.0 MW, mg1's DG to 0.6 MW: an offer of 1.0 MW at 0 $/MWh
    cleared 1.0 MW at the DG (0.4 MW the AC flow took from the grid instead) and the DG was projected by 0.4 MW.
    The cleared MW is what the DG delivers, within its ramp window when it has one."""
    import yaml

    from powergrid.env import MultiAgentPowerGridEnv
    from tests.protocols.test_configs import CONFIGS

    data = yaml.safe_load((CONFIGS / "lmp_market.yaml").read_text())
    if ramp is not None:
        dg = next(a for a in data["agents"] if a["id"] == "mg1_dg")
        dg["params"]["ramp_up_mw_per_h"] = ramp
    env = MultiAgentPowerGridEnv.from_config(data)
    proto = env.scenario.horizontal[0]
    dg = env.scenario.agents["mg1_dg"]
    env.reset(seed=0)
    action = np.zeros(env.action_space("mg1").shape, np.float32)
    action[-2:] = [-1.0, 1.0]  # normalized: the lowest price (0 $/MWh), the largest quantity (1.0 MW)
    for _ in range(3):
        lo, hi = dg.device.feasible_range()
        _, _, _, _, infos = env.step({"mg1": action})
        r = proto.result
        assert r.success
        offered = r.dispatch_mw[1]  # offer 0 is the grid's, offer 1 mg1's
        assert offered == pytest.approx(hi - lo, abs=1e-9) and hi - lo < 1.0
        assert dg.device.p_mw == pytest.approx(lo + offered, abs=1e-6)  # the DG delivers what cleared (float32)
        assert infos["mg1"]["projection"] == pytest.approx(0.0, abs=1e-6)


def test_an_out_of_service_bus_is_out_of_the_dc_model():
    """pandapower serves nothing at an out-of-service bus and disables the branches at it; the DC model kept such a
    bus (mg1.652 of ieee34_3mg: a node, its line a branch), so the market cleared its load (0.024 MW at tick 0 of
    lmp_market.yaml with uniform loads) though the AC flow served none. Reference: the same bus with its line off."""
    from powergrid.networks import TEMPLATES

    net = TEMPLATES["ieee34_3mg"]()
    b = int(net.bus.index[net.bus.name == "mg1.652"][0])
    net.bus.loc[b, "in_service"] = False
    dc = dc_network(net)
    ref_net = TEMPLATES["ieee34_3mg"]()
    ref_net.bus.loc[b, "in_service"] = False
    ref_net.line.loc[(ref_net.line.from_bus == b) | (ref_net.line.to_bus == b), "in_service"] = False
    ref = dc_network(ref_net)
    assert dc.node_of[list(net.bus.index).index(b)] == -1
    np.testing.assert_array_equal(dc.node_of, ref.node_of)
    np.testing.assert_array_equal(dc.ptdf, ref.ptdf)
    assert dc.names == ref.names


def test_a_parallel_transformer_is_rated_like_its_units_side_by_side():
    """cigre_mv's first HV/MV transformer with parallel = 2 (pandapower rates it 2·25 MVA: loading 101 % → 50 %) is
    the same branch as two rows of one unit each. Its DC rating stayed 25 MW (the reactance was halved), so a
    30 MW demand behind it was congested: LMP 100 $/MWh (the local offer) instead of 60 (the grid's)."""
    import copy

    net = cigre_mv()
    row = net.trafo.index[0]
    twin = copy.deepcopy(net)
    twin.trafo.loc[twin.trafo.index.max() + 1] = twin.trafo.loc[row]  # a second unit, its own row
    net.trafo.loc[row, "parallel"] = 2
    lv = int(net.trafo.lv_bus[row])
    results = []
    for n in (net, twin):
        dc = dc_network(n)
        demand = np.zeros(dc.n_nodes)
        demand[dc.node_of[lv]] = 30.0
        offers = [Offer(dc.slack, 60.0, 1000.0, "grid"), Offer(int(dc.node_of[lv]), 100.0, 100.0, "local")]
        results.append(clear_market(dc, offers, demand))
    for r in results:
        assert r.success and not r.congested.any()
        np.testing.assert_allclose(r.lmp, 60.0, atol=1e-9)
        np.testing.assert_allclose(r.dispatch_mw, [30.0, 0.0], atol=1e-9)


def test_unnamed_branches_are_reported_by_table_and_index():
    """case33bw's lines have no names: every branch was called "None", so a congested one could not be told apart."""
    from powergrid.networks import case33bw

    net = case33bw()
    net.line["max_i_ka"] = 0.01  # 0.22 MW at 12.66 kV (the template's ratings never bind)
    dc = dc_network(net)
    assert len(set(dc.names)) == len(dc.names) and dc.names[0] == f"line {net.line.index[0]}"
    demand = np.zeros(dc.n_nodes)
    far = dc.node_of[len(net.bus) - 1]
    demand[far] = 0.5  # more than a line carries: the far bus needs its own offer
    r = clear_market(dc, [Offer(dc.slack, 50.0, 100.0), Offer(int(far), 90.0, 10.0)], demand)
    assert r.success and r.congested.any() and "None" not in [n for n, c in zip(dc.names, r.congested) if c]


def test_a_device_at_an_out_of_service_bus_takes_no_part_in_the_market():
    """mg3's DG and PV at mg1.652, out of service (pandapower ignores injections there): no DC node (-1), and numpy's
    index -1 put the DG's offers and the PV's MW on the last DC node of the model."""
    import yaml

    from powergrid import PluginRecord, hookimpl
    from powergrid.env import MultiAgentPowerGridEnv
    from powergrid.networks import TEMPLATES
    from powergrid.plugins import make_registry
    from tests.protocols.test_configs import CONFIGS

    def network():
        net = TEMPLATES["ieee34_3mg"]()
        net.bus.loc[net.bus.index[net.bus.name == "mg1.652"][0], "in_service"] = False
        return net

    class Networks:
        @staticmethod
        @hookimpl
        def powergrid_register_networks():
            return [PluginRecord("mg1_652_off", network, "mg1.652 out of service")]

    data = yaml.safe_load((CONFIGS / "lmp_market.yaml").read_text())
    data["network"] = {"type": "mg1_652_off"}
    for a in data["agents"]:
        if a["id"] in ("mg3_dg", "mg3_pv"):
            a["bus"] = "mg1.652"
    env = MultiAgentPowerGridEnv.from_config(data, registry=make_registry(Networks, entry_points=True))
    proto = env.scenario.horizontal[0]
    assert proto.dc.node_of[env.scenario.agents["mg3_dg"].bus] == -1
    env.reset(seed=0)
    pv_mw = sum(min(max(d.device.available_mw(env.ctx), 0.0), d.device.rated_mw)  # at the coming tick
                for d in (env.scenario.agents["mg1_pv"], env.scenario.agents["mg2_pv"]))
    env.step({"mg1": np.zeros(env.action_space("mg1").shape, np.float32)})
    offers, _ = proto.offers({}, env.ctx)
    assert all(o.node >= 0 for o in offers) and not any(o.owner == "mg3" for o in offers)
    assert proto.result.dispatch_mw.sum() == pytest.approx(proto.load_mw.sum() - pv_mw, abs=1e-9)
    assert proto.node["mg3"] >= 0


def test_the_grid_takes_what_the_network_exports():
    """The slack could only sell (0 ≤ g): a negative net demand (PV above the load) had no dispatch, Σg = Σd failed and
    the market went stale. lmp_market.yaml at a light load (scale 0.2) with 0.5 MW of PV per microgrid was stale at
    9 of 24 ticks (8-16 h) while the AC flow exported to the grid; the slack now buys at the market price."""
    import yaml

    from powergrid.env import MultiAgentPowerGridEnv
    from tests.protocols.test_configs import CONFIGS

    r = clear_market(make_network(2, [(0, 1, 0.1, 10.0)]), [Offer(0, 40.0, 100.0, "grid", buy_mw=100.0)],
                     np.array([0.0, -1.0]))  # 1 MW of PV at bus 1, no load
    assert r.success and r.dispatch_mw[0] == pytest.approx(-1.0) and r.flow_mw[0] == pytest.approx(-1.0)
    np.testing.assert_allclose(r.lmp, 40.0)
    data = yaml.safe_load((CONFIGS / "lmp_market.yaml").read_text())
    data["loads"] = {"scale": {"*": 0.2}}
    for a in data["agents"]:
        if a["id"].endswith("_pv"):
            a["params"]["p_max_mw"] = 0.5
    env = MultiAgentPowerGridEnv.from_config(data)
    proto = env.scenario.horizontal[0]
    env.reset(seed=0)
    exported = 0
    for _ in range(14):
        _, _, _, _, infos = env.step({"mg1": np.zeros(env.action_space("mg1").shape, np.float32)})
        assert infos["mg1"]["LMPMarket"]["success"]
        exported += proto.result.dispatch_mw[0] < 0  # the grid bought
    assert exported > 0


def test_the_dgs_low_ends_are_not_counted_as_demand():
    """A DG runs its low end lo (p_min, a ramp window) whatever clears and offers what it adds above it (setpoint
    lo + cleared), but the market's demand kept lo: with every DG of lmp_market.yaml at p_min_mw 0.3 the grid cleared
    3.110 MW at tick 0 where the network drew 2.210 MW from it (the DGs' 0.9 MW counted nowhere)."""
    import yaml

    from powergrid.env import MultiAgentPowerGridEnv
    from tests.protocols.test_configs import CONFIGS

    data = yaml.safe_load((CONFIGS / "lmp_market.yaml").read_text())
    for a in data["agents"]:
        if a["id"].endswith("_dg"):
            a["params"]["p_min_mw"] = 0.3
    env = MultiAgentPowerGridEnv.from_config(data)
    proto = env.scenario.horizontal[0]
    dgs = [env.scenario.agents[f"mg{k}_dg"] for k in (1, 2, 3)]
    pvs = [env.scenario.agents[f"mg{k}_pv"] for k in (1, 2, 3)]
    env.reset(seed=0)
    for _ in range(3):
        pv = sum(min(max(d.device.available_mw(env.ctx), 0.0), d.device.rated_mw) for d in pvs)
        env.step({"mg1": np.zeros(env.action_space("mg1").shape, np.float32)})
        r = proto.result
        assert r.success and all(d.device.p_mw >= 0.3 - 1e-6 for d in dgs)
        dg_mw = sum(d.device.p_mw for d in dgs)
        assert r.dispatch_mw[0] == pytest.approx(proto.load_mw.sum() - pv - dg_mw, abs=1e-6)  # the grid's share


def _lmp_env_mg1(edit):
    """lmp_market.yaml with physical actions, ``edit(data)`` applied."""
    import yaml

    from powergrid.env import MultiAgentPowerGridEnv
    from tests.protocols.test_configs import CONFIGS

    data = yaml.safe_load((CONFIGS / "lmp_market.yaml").read_text())
    data["spaces"] = {"action": "physical"}
    edit(data)
    return MultiAgentPowerGridEnv.from_config(data)


def test_a_dg_switching_on_or_off_in_the_market_step_offers_its_range_after_the_switch():
    """The market took each DG's range before its on/off request: a DG starting this step offered (0, 0) and was
    set to 0 MW, then ran its p_min anyway (0.2 MW the market counted nowhere); a DG shutting down kept its low end
    (0.1 MW taken off the demand) and delivered 0. mg1 gets a second DG: mg1_dg starts (off, u = 1), mg1_dg2 shuts
    down (on at p_min, u = 0); every DG delivers its cleared setpoint and the grid's share is the rest."""

    def edit(data):
        mg1 = next(a for a in data["agents"] if a["id"] == "mg1")
        mg1["children"].insert(2, "mg1_dg2")
        dg = next(a for a in data["agents"] if a["id"] == "mg1_dg")
        dg["params"].update(commitment=True, on_init=False, p_min_mw=0.2)
        data["agents"].append({"id": "mg1_dg2", "type": "DG", "bus": "mg1.675",
                               "params": {"p_max_mw": 0.4, "p_min_mw": 0.1, "commitment": True, "cost_b": 70.0}})

    env = _lmp_env_mg1(edit)
    proto = env.scenario.horizontal[0]
    start, stop = env.scenario.agents["mg1_dg"], env.scenario.agents["mg1_dg2"]
    pvs = [env.scenario.agents[f"mg{k}_pv"] for k in (1, 2, 3)]
    dgs = [start, stop] + [env.scenario.agents[f"mg{k}_dg"] for k in (2, 3)]
    env.reset(seed=0)
    assert not start.device.on and stop.device.on and stop.device.p_mw == pytest.approx(0.1)
    action = np.zeros(env.action_space("mg1").shape, np.float32)
    # mg1's own part: ESS p, DG p, DG u, DG2 p, DG2 u, PV f, then the market's [price, quantity]
    action[[2, 4, 5]] = [1.0, 0.0, 1.0]  # mg1_dg on, mg1_dg2 off, PV at its maximum power point
    action[-2:] = [0.0, 1.0]  # offer everything it can add at 0 $/MWh
    pv = sum(min(max(d.device.available_mw(env.ctx), 0.0), d.device.rated_mw) for d in pvs)
    _, _, _, _, infos = env.step({"mg1": action})
    r = proto.result
    assert r.success and start.device.on and not stop.device.on
    assert start.device.p_mw == pytest.approx(0.6, abs=1e-6)  # p_min + the 0.4 MW it offered above it
    assert stop.device.p_mw == 0.0
    for d in dgs:  # each delivers what the market set
        assert d.device.p_mw == pytest.approx(float(d.pending[0]), abs=1e-6)
    assert r.dispatch_mw[0] == pytest.approx(proto.load_mw.sum() - pv - sum(d.device.p_mw for d in dgs), abs=1e-6)
    assert infos["mg1"]["projection"] == pytest.approx(0.0, abs=1e-6)


def test_the_market_counts_the_pv_a_participant_injects_not_what_is_available():
    """The market took the PV's available MW off the demand; a curtailed PV (f < 1) injects f·P_av, so the grid's
    cleared share fell short of what the network drew from it by (1 − f)·P_av. mg1 curtails its PV to f = 0.25."""

    env = _lmp_env_mg1(lambda data: None)
    proto = env.scenario.horizontal[0]
    pvs = [env.scenario.agents[f"mg{k}_pv"] for k in (1, 2, 3)]
    others = [env.scenario.agents[f"mg{k}_{d}"] for k in (1, 2, 3) for d in ("dg", "ess")]
    env.reset(seed=0)
    action = np.zeros(env.action_space("mg1").shape, np.float32)
    action[2] = 0.25  # mg1's own part: ESS p, DG p, PV f, …
    sunny = 0
    for _ in range(24):
        env.step({"mg1": action})
        r = proto.result
        assert r.success
        assert pvs[0].device.p_mw == pytest.approx(0.25 * pvs[0].device.available, abs=1e-6)
        injected = sum(d.device.p_mw for d in pvs + others)
        assert r.dispatch_mw[0] == pytest.approx(proto.load_mw.sum() - injected, abs=1e-6)
        sunny += pvs[0].device.available > 0.05
    assert sunny > 3


def _rent(net, r):
    """Congestion rent ($/h): each branch's flow times the LMP difference it carries it across."""
    return float(r.flow_mw @ (r.lmp[net.to_node] - r.lmp[net.from_node]))


def test_one_congested_line_against_the_hand_computed_dc_opf():
    """Three buses, equal reactances, 20 $/MWh at bus 0, 50 $/MWh at bus 1, 120 MW at bus 2, line 0-2 at 50 MW.
    By hand: bus 0 sends 2/3 of its MW over 0-2, bus 1 1/3, so 2/3·g0 + 1/3·g1 = 50 with g0 + g1 = 120 gives
    g0 = 30, g1 = 90 MW; one more MW at bus 2 takes Δg0 = −1, Δg1 = +2 (0-2 stays at 50): LMP = 20, 50, 80 $/MWh.
    Flows 0→1 −20, 1→2 70, 0→2 50 MW. The loads pay 80·120 = 9600 $/h, the generators get 20·30 + 50·90 = 5100 $/h,
    and the congestion rent is 4500 $/h = 60·50 (0-2) + 30·70 (1-2) − 30·20 (0-1): payments = receipts + rent."""
    net = three_bus(50.0)
    offers = [Offer(0, 20, 200), Offer(1, 50, 200)]
    demand = np.array([0, 0, 120.0])
    r = clear_market(net, offers, demand)
    np.testing.assert_allclose(r.dispatch_mw, [30.0, 90.0], atol=1e-6)
    np.testing.assert_allclose(r.lmp, [20.0, 50.0, 80.0], atol=1e-6)
    np.testing.assert_allclose(r.flow_mw, [-20.0, 70.0, 50.0], atol=1e-6)
    assert r.congested.tolist() == [False, False, True] and r.system_lambda == pytest.approx(20.0)
    payments, receipts = float(r.lmp @ demand), 20.0 * 30.0 + 50.0 * 90.0
    assert payments == pytest.approx(9600.0) and _rent(net, r) == pytest.approx(4500.0)
    assert payments == pytest.approx(receipts + _rent(net, r))



def test_an_iso_above_the_market_keeps_the_rent_its_participants_pay():
    """Who pays whom under the LMP market with an ISO (system agent) above its participants, over a day of
    lmp_market.yaml at branch ratings scaled to 0.3 (Reg1 binds at some ticks). Each participant pays its PCC import
    at its LMP less its PCC's congestion price on the import within its limits in the market (the 0.75 MW rating
    in, below the 1.2 MW agreement; the 0.5 MW agreement out): the meter bill at the market price (its
    GridConnection's cost, money to the upstream grid) plus the settlement (money to the market operator, the ISO).
    The ISO's cost is the system's: its descendants' device costs, the settlements being transfers to it, so ISO
    cost = Σ participants' costs − Σ settlements at every tick (neither counted twice nor dropped), and Σ payments =
    grid receipts + the ISO's rent."""
    import yaml

    from powergrid.env import MultiAgentPowerGridEnv
    from tests.protocols.test_configs import CONFIGS

    data = yaml.safe_load((CONFIGS / "lmp_market.yaml").read_text())
    data["agents"].insert(0, {"id": "iso", "kind": "system", "policy": "rule", "children": ["mg1", "mg2", "mg3"],
                              "protocol": {"type": "price_signal", "params": {"price_min": -100.0, "price_max": 1000.0}}})
    data["horizontal"][0]["params"]["limit_scale"] = 0.3
    env = MultiAgentPowerGridEnv.from_config(data)
    proto = env.scenario.horizontal[0]
    settled: dict[str, tuple[float, float]] = {}
    settle = proto.settle

    def recording(result, ctx):
        settled.clear()
        settled.update(settle(result, ctx))
        return settled

    proto.settle = recording
    env.reset(seed=0)
    pos, mgs = env._agent_pos, ("mg1", "mg2", "mg3")
    pcc = {m: proto.dc.names.index(f"{m}.pcc") for m in mgs}
    assert all(proto.rights[m][1:] == pytest.approx((1.0, 0.75, 0.5)) for m in mgs)  # hv → lv: in 0.75, out 0.5 MW
    rent_ticks = 0
    for _ in range(24):
        env.step({"mg1": np.zeros(env.action_space("mg1").shape, np.float32)})
        cost = env._cost_safe[0]
        rent = sum(settled.get(m, (0.0, 0.0))[0] for m in mgs)
        assert cost[pos["iso"]] == pytest.approx(sum(cost[pos[m]] for m in mgs) - rent, abs=1e-9)
        result, dt = env.last_result, env.ctx.dt_h
        for m in mgs:  # what each pays in all: its import at its LMP less its PCC's rent within its limits
            meter, bill = proto.meters[m], env.scenario.agents[f"{m}_pcc"].device.cost
            flow = meter.flow(result)
            price = 0.0 if proto.stale else proto.result.congestion_price[pcc[m]]  # stale: the meter price alone
            paid = proto.lmp[m] * flow - price * np.clip(flow, -0.5, 0.75)
            assert bill + settled.get(m, (0.0, 0.0))[0] == pytest.approx(paid * dt, abs=1e-9)
        rent_ticks += abs(rent) > 1.0 and bool(proto.result.congested.any())
    assert rent_ticks > 0


def test_a_learned_participant_between_its_actions_holds_its_offer():
    """lmp_market.yaml with mg1 acting every 2 h on the 1 h step, offering everything its DG can add at 0 $/MWh:
    at the ticks between its actions the market got no extra action from it and cleared its DG by the rule's blocks
    (DG 0.6 MW, 0.0, 0.6, 0.0 … MW; 8 then 10 offers). It now holds the offer, as it holds its own setpoints."""
    import yaml

    from powergrid.env import MultiAgentPowerGridEnv
    from tests.protocols.test_configs import CONFIGS

    data = yaml.safe_load((CONFIGS / "lmp_market.yaml").read_text())
    data["spaces"] = {"action": "physical"}
    next(a for a in data["agents"] if a["id"] == "mg1")["period"] = "2h"
    env = MultiAgentPowerGridEnv.from_config(data)
    proto = env.scenario.horizontal[0]
    dg = env.scenario.agents["mg1_dg"].device
    env.reset(seed=0)
    action = np.zeros(env.action_space("mg1").shape, np.float32)
    action[-2:] = [0.0, 1.0]
    for _ in range(6):
        env.step({"mg1": action})
        assert len(proto.result.dispatch_mw) == 8  # the grid, mg1's one offer, 3 blocks each for mg2 and mg3
        assert dg.p_mw == pytest.approx(0.6, abs=1e-6)

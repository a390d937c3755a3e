"""Protocols inside the environment: trades flow at the PCCs and balance, Q follows the curve, reserve holds."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv
from powergrid_protocols.volt_var import volt_var_q
from tests.devices.test_grid_connection import SITE as GRID_SITE
from tests.protocols import example_config, example_env


def test_p2p_trade_balances_and_flows_through_the_pccs():
    env = example_env("p2p_3mg", mg2={"policy": "learned"}, mg3={"policy": "learned"})
    proto = env.scenario.horizontal[0]
    env.reset(seed=0)
    # mg1 bids to buy 0.2 MW at 250 $/MWh; its own setpoints: ESS 0, DG 0.5 MW, PV full.
    # mg2 offers to sell 0.2 MW at 100 $/MWh from a DG at 0.3 MW; mg3 places no order.
    # Both fill completely, nothing is left out: interval [100, 250], k = 0.5 → 175 $/MWh for 0.2 MW.
    buy = np.array([0.0, 0.5, 1.0, 250.0, 0.2], np.float32)
    sell = np.array([0.0, 0.3, 1.0, 100.0, -0.2], np.float32)
    idle = np.array([0.0, 0.3, 1.0, 0.0, 0.0], np.float32)
    _, _, _, _, infos = env.step({"mg1": buy, "mg2": sell, "mg3": idle})
    info = infos["mg1"]["P2PTrading"]
    assert info["price"] == pytest.approx(175.0) and info["volume_mw"] == pytest.approx(0.2)
    trades = {a: info["trades_mw"].get(a, 0.0) for a in ("mg1", "mg2", "mg3")}  # mg3 placed no order
    assert trades == pytest.approx({"mg1": 0.2, "mg2": -0.2, "mg3": 0.0})
    assert info["payments"]["mg1"] == pytest.approx(175.0 * 0.2 * env.ctx.dt_h)
    assert sum(info["payments"].values()) == pytest.approx(0.0, abs=1e-9)
    # the buyer's DG went down and the seller's up by the delivered 0.2 MW
    assert env.scenario.agents["mg1_dg"].device.p_mw == pytest.approx(0.5 - 0.2, abs=1e-6)
    assert env.scenario.agents["mg2_dg"].device.p_mw == pytest.approx(0.3 + 0.2, abs=1e-6)
    assert info["undelivered_mw"] == pytest.approx({"mg1": 0.0, "mg2": 0.0, "mg3": 0.0})
    # compare with the same hour without the trade: the PCC flows move by ≈ the traded MW (losses only)
    env2 = example_env("p2p_3mg", mg2={"policy": "learned"}, mg3={"policy": "learned"})
    env2.reset(seed=0)
    env2.step({"mg1": np.array([0.0, 0.5, 1.0, 0.0, 0.0], np.float32), "mg2": idle, "mg3": idle})
    for a, q in trades.items():
        m1 = proto.meters[a].flow(env.last_result)
        m0 = env2.scenario.horizontal[0].meters[a].flow(env2.last_result)
        assert m1 - m0 == pytest.approx(q, abs=0.02)


def test_volt_var_sets_q_from_the_last_voltage():
    env = example_env("volt_var")
    proto = env.scenario.horizontal[0]
    env.reset(seed=0)
    for _ in range(3):
        env.step({"mg1": env.action_space("mg1").sample()})
        v_before = proto.v.copy()
    env.step({"mg1": env.action_space("mg1").sample()})
    for d, ctl, v in zip(proto.inverters, proto.q_ctl, v_before):
        assert d.device.q_mvar == pytest.approx(float(volt_var_q(v)) * ctl.s_mva)
        assert d.device.q_mvar == ctl.q_mvar


def test_reserve_keeps_headroom_and_reports_the_allocation():
    env = example_env("volt_var")
    env.reset(seed=0)
    mg2 = env.scenario.agents["mg2"]
    for _ in range(4):
        env.step({"mg1": env.action_space("mg1").sample()})
        info = mg2.protocol.info()
        assert sum(info["reserve_mw"].values()) + info["shortfall_mw"] == pytest.approx(0.2)
        for child in mg2.children:
            if child.id in info["reserve_mw"]:
                dev = child.device
                hi = dev.params.p_max_mw
                assert dev.p_mw <= hi - info["reserve_mw"][child.id] + 1e-6


def test_lmp_market_publishes_prices_and_dispatches():
    env = example_env("lmp_market")
    proto = env.scenario.horizontal[0]
    env.reset(seed=0)
    _, _, _, _, infos = env.step({"mg1": env.action_space("mg1").sample()})
    info = infos["mg1"]["LMPMarket"]
    assert info["success"] and not info["stale"]
    lmps = np.array(list(info["lmp"].values()))
    assert np.all(np.isfinite(lmps))
    assert proto.observe(env.scenario.agents["mg1"])[0] == pytest.approx(info["lmp"]["mg1"], rel=1e-5)
    assert env.scenario.agents["mg2_dg"].price == pytest.approx(info["lmp"]["mg2"])
    assert proto.result.success


def test_admm_in_env_reports_convergence():
    env = example_env("admm_3mg")
    env.reset(seed=0)
    for _ in range(3):
        _, _, _, _, infos = env.step({"mg1": env.action_space("mg1").sample()})
    info = infos["mg1"]["ADMMDispatch"]
    assert info["converged"] and info["iterations"] >= 1
    assert info["primal_residual"] <= 1e-3


def test_admms_grid_tie_bills_an_export_like_the_grid_connection():
    """sell_ratio 0.8: at 60 $/MWh the grid buys at 48; at −10 $/MWh an export costs the full 10 $/MWh (before:
    8, so the tie was concave and buying and selling at once looked like a gain), one convex case to solve."""
    proto = example_env("admm_3mg").scenario.horizontal[0]
    assert (proto.grid_tie(60.0).buy, proto.grid_tie(60.0).sell) == (60.0, 48.0)
    tie = proto.grid_tie(-10.0)
    assert (tie.buy, tie.sell) == (-10.0, -10.0)


def test_admm_schedules_the_pcc_exchange_the_power_flow_then_measures():
    """x_i = Σ units − d_i is the area's PCC export: the demand d_i leaves out PV (and any other non-unit device),
    so with the load and the sun held constant the persistence schedule meets the measured export up to losses
    (before: every PV injection counted as demand, the schedule 0.24 MW short of the measured export)."""
    data = example_config("admm_3mg")
    data["agents"][0]["policy"] = "rule"  # mg1 too: every participant follows the dispatch
    env = MultiAgentPowerGridEnv.from_config(data)
    proto = env.scenario.horizontal[0]
    env.reset(seed=0)
    n = len(env.ctx.profiles["solar"])
    env.ctx.profiles["solar"] = np.full(n, 0.8)  # 80 % of each PV's rating
    env.load_multipliers = np.tile(env.load_multipliers[0], (len(env.load_multipliers), 1))
    env.ctx.load_forecast = env.load_multipliers  # and their forecast: the plan knows the loads held
    for t in range(4):
        env.step({})
        if t == 0:
            continue  # no measurement before the first tick
        for a in ("mg1", "mg2", "mg3"):
            pv = env.scenario.agents[f"{a}_pv"].device
            assert pv.p_mw == pytest.approx(0.8 * pv.params.p_max_mw)
            scheduled = proto.info()["exchange_mw"][a]
            measured = -proto.meters[a].flow(env.last_result)
            assert scheduled == pytest.approx(measured, abs=0.02)


def test_a_committed_dg_follows_the_admm_dispatch_in_mw():
    """Protocols move the MW setpoint, the first action entry: with ``commitment`` that is ``p``, not the on/off
    ``u`` (before: ADMM took a 0.6 MW unit's range as u's [0, 1], scheduled it up to 1.0 "MW" and a schedule
    below 0.5 switched it off)."""
    data = example_config("admm_3mg")
    data["agents"][0]["policy"] = "rule"
    for agent in data["agents"]:
        if agent["id"] in ("mg2_dg", "mg3_dg"):  # cheap enough to run; mg3's with unit commitment
            agent["params"].update(cost_b=20.0, commitment=agent["id"] == "mg3_dg")
    env = MultiAgentPowerGridEnv.from_config(data)
    proto = env.scenario.horizontal[0]
    env.reset(seed=0)
    dg = env.scenario.agents["mg3_dg"]
    for _ in range(4):
        env.step({})
        units = [d.id for d in dg.parent.devices() if type(d.device).__name__ in ("DG", "ESS")]
        scheduled = proto.result.p[2][units.index("mg3_dg")]
        assert 0.0 <= scheduled <= 0.6 + 1e-6  # the float32 bound of the action space
        assert dg.device.on and dg.device.p_mw == pytest.approx(scheduled, abs=1e-6)


@pytest.mark.parametrize("price", [-50.0, 50.0])
def test_an_undeliverable_p2p_order_costs_at_any_price_sign(price):
    """A buy the buyer cannot deliver (DG at 0, battery full) is charged imbalance_factor·|price|·q·dt: at
    −50 $/MWh it was paid 10 $ for the 0.2 MW it never took (the grid absorbed them)."""
    def step(order_mw):
        env = example_env("p2p_3mg", mg2={"policy": "learned"})
        env.reset(seed=0)
        env.ctx.profiles["price"] = np.full(len(env.ctx.profiles["price"]), price)
        env.scenario.agents["mg1_ess"].device.soc = 0.9  # full: cannot charge
        buy = np.array([0.0, 0.0, 1.0, 0.0, order_mw], np.float32)  # ESS 0, DG 0, PV full, bid 0 $/MWh
        sell = np.array([0.0, 0.3, 1.0, 0.0, -order_mw], np.float32)
        _, rewards, _, _, infos = env.step({"mg1": buy, "mg2": sell})
        return rewards["mg1"], infos["mg1"]["P2PTrading"]

    r0, _ = step(0.0)
    r1, info = step(0.2)
    assert info["price"] == 0.0 and info["undelivered_mw"]["mg1"] == pytest.approx(0.2)
    assert r1 - r0 == pytest.approx(-abs(price) * 0.2 * 1.0, abs=1e-3)  # cost_weight 1, dt 1 h


def test_lmp_market_demand_nets_the_pv_available_power():
    """Σ cleared MW = the market's demand = the loads served − the participants' PV available now: with irradiance
    PVs at 1000 W/m² and 35 °C (cells at 66 °C) that is 0.7515 MW of PV, not the 0.9 MW rated (before: 0.1485 MW
    short)."""
    data = example_config("lmp_market")
    data["agents"][0]["policy"] = "rule"
    for agent in data["agents"]:
        if agent.get("type") == "PV":
            agent["params"]["model"] = "irradiance"
    env = MultiAgentPowerGridEnv.from_config(data)
    proto = env.scenario.horizontal[0]
    env.reset(seed=0)
    n = len(env.ctx.profiles["solar"])
    env.ctx.profiles["solar"] = np.full(n, 1.0)
    env.ctx.profiles["temperature"] = np.full(n, 35.0)
    env.step({})
    pvs = [a.device for a in env.scenario.agents.values() if type(getattr(a, "device", None)).__name__ == "PV"]
    available = sum(d.available for d in pvs)
    assert available == pytest.approx(3 * 0.3 * (1 - 0.004 * (35 + 25 * 1000 / 800 - 25)))
    loads = float(env.load_multipliers[0] @ (env.net.load.p_mw * env.net.load.scaling))  # all in service
    assert proto.result.success
    assert float(proto.result.dispatch_mw.sum()) == pytest.approx(loads - available, abs=1e-6)


def test_admm_dispatches_a_ramp_limited_dg_within_its_ramp():
    """The DG's MW range is its ramp window (DG.feasible_range), so the schedule is what the unit applies (before:
    0.1 MW/h ramps, schedule 0.2 / 0.431 / 0.408 MW against 0.1 / 0.2 / 0.3 MW applied)."""
    data = example_config("admm_3mg")
    data["agents"][0]["policy"] = "rule"
    for agent in data["agents"]:
        if agent["id"].endswith("_dg"):
            agent["params"].update(cost_b=20.0, ramp_up_mw_per_h=0.1, ramp_down_mw_per_h=0.1)
    env = MultiAgentPowerGridEnv.from_config(data)
    proto = env.scenario.horizontal[0]
    env.reset(seed=0)
    dg = env.scenario.agents["mg2_dg"]
    units = [d.id for d in dg.parent.devices() if type(d.device).__name__ in ("DG", "ESS")]
    for _ in range(4):
        before = dg.device.p_mw
        env.step({})
        scheduled = float(proto.result.p[1][units.index("mg2_dg")])
        assert abs(scheduled - before) <= 0.1 + 1e-9  # 0.1 MW/h over 1 h
        assert dg.device.p_mw == pytest.approx(scheduled, abs=1e-6)


def _driven_by_rule_action(edit, iso, steps, measure):
    """hierarchical_3level in physical units with ``edit(agents)`` applied, every learned agent sent
    ``env.rule_action`` but the ISO, sent ``iso(env)``: ``measure(env)`` after each of ``steps`` steps."""
    data = example_config("hierarchical_3level")
    data["spaces"] = {"action": "physical", "observation": "raw"}
    edit(data["agents"])
    env = MultiAgentPowerGridEnv.from_config(data)
    env.reset(seed=3)
    measured = []
    for _ in range(steps):
        actions = {a: env.rule_action(a) for a in env.agents}
        actions["iso"] = iso(env)
        env.step(actions)
        measured.append(measure(env))
    return measured


def _policy(agent_id, policy):
    def edit(agents):
        next(a for a in agents if a["id"] == agent_id)["policy"] = policy
    return edit


@pytest.mark.parametrize("signal", [-1.0, 1.0])
def test_env_rule_action_answers_the_parents_price_signal(signal):
    # a learned mg1 driven by env.rule_action (run --policy rule, evaluate's rule, SingleAgentView's other agents)
    # must act as mg1 with policy: rule under the ISO's price signal; it answered the market price instead (at a
    # signal of 0 $/MWh it drained its battery, at 150 it filled it: day cost 658.34 vs 722.45 $ at 0)
    def iso(env):
        space = env.action_space("iso")
        return np.interp(signal, [-1.0, 1.0], space.low.tolist() + space.high.tolist()).reshape(1).astype(np.float32)

    runs = [_driven_by_rule_action(_policy("mg1", mg1), iso, 90, lambda env: env.agent_costs()["mg1"][0])
            for mg1 in ("learned", "rule")]
    assert runs[0] == runs[1]


def test_the_market_under_an_iso_clears_at_the_market_price_not_its_signal():
    # the horizontal protocols ran with ctx.price left at the last child's price signal: with the ISO signalling
    # 150 $/MWh every LMP was 150 instead of the 45.84 $/MWh market price, and the PCC imports were billed at it
    data = example_config("lmp_market")
    data["agents"].insert(0, {"id": "iso", "kind": "system", "policy": "learned", "children": ["mg1", "mg2", "mg3"],
                              "protocol": {"type": "price_signal", "params": {"price_min": 0.0, "price_max": 150.0}}})
    env = MultiAgentPowerGridEnv.from_config(data)
    env.reset(seed=0)
    for _ in range(3):
        market = float(env.ctx.profiles["price"][env.ctx.tick])
        _, _, _, _, infos = env.step({"mg1": np.zeros(env.action_space("mg1").shape, np.float32),
                                      "iso": np.array([1.0], np.float32)})
        assert market < 100.0
        assert infos["mg1"]["LMPMarket"]["system_lambda"] == pytest.approx(market)


def test_env_rule_action_answers_a_signal_its_parent_passes_on():
    # a learned battery under a microgrid that passes prices on (protocol none) under the ISO's signal: the internal
    # policy answers the ISO's price (inherited through mg1), env.rule_action answered the market price: at a
    # signal of 150 $/MWh it filled the battery (SOC 0.474 -> 0.900 in 2 h) where policy: rule idles
    def edit(ess):
        def apply(agents):
            for a in agents:
                if a["id"] in ("mg1", "mg2", "mg3"):
                    a.update(protocol={"type": "none"}, policy="rule")
            _policy("mg1_ess", ess)(agents)
        return apply

    runs = [_driven_by_rule_action(edit(ess), lambda env: env.action_space("iso").high.astype(np.float32), 40,
                                   lambda env: env.scenario.agents["mg1_ess"].device.soc)
            for ess in ("learned", "rule")]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("case", ["start", "stop"])
def test_reserve_allocates_over_the_range_a_dg_holds_after_its_on_off_request(case):
    """Reserve took each provider's range before its action of the step: a DG off and starting (mw_range (0, 0))
    was allotted no reserve though it holds [p_min, p_max] this step, and one on and stopping kept its share of
    a headroom it loses. mg2 of volt_var.yaml (0.2 MW of reserve) learned, its DG with commitment."""
    data = example_config("volt_var")
    data["spaces"] = {"action": "physical", "observation": "raw"}
    for agent in data["agents"]:
        if agent["id"] == "mg2":
            agent["policy"] = "learned"
        if agent["id"] == "mg2_dg":
            agent["params"].update(commitment=True, on_init=case == "stop", p_min_mw=0.1)
    env = MultiAgentPowerGridEnv.from_config(data)
    env.reset(seed=0)
    mg2, dg = env.scenario.agents["mg2"], env.scenario.agents["mg2_dg"].device
    action = np.zeros(env.action_space("mg2").shape, np.float32)
    action[1:3] = [0.1, 1.0 if case == "start" else 0.0]  # mg2's own part: ESS p, DG p, DG u, PV f
    action[3] = 1.0
    acts = {a: np.zeros(env.action_space(a).shape, np.float32) for a in env.agents}
    env.step({**acts, "mg2": action})
    info = mg2.protocol.info()
    assert dg.on is (case == "start")
    if case == "start":  # the DG holds [0.1, 0.6] MW: 0.5 MW of headroom next to the ESS's
        assert info["reserve_mw"]["mg2_dg"] == pytest.approx(0.2 * 0.5 / (0.5 + 0.6))  # the ESS: [-0.3, 0.3] MW
        assert dg.p_mw <= 0.6 - info["reserve_mw"]["mg2_dg"] + 1e-6
    else:
        assert info["reserve_mw"]["mg2_dg"] == 0.0
    assert sum(info["reserve_mw"].values()) + info["shortfall_mw"] == pytest.approx(0.2)


def test_a_device_whose_feasible_range_takes_no_action_still_dispatches():
    """A plugin device written before ``feasible_range(action)`` (``def feasible_range(self)``) got a TypeError from
    mw_range at the first step; it is called without the action. mg2 of volt_var.yaml (Reserve, 0.2 MW) learned,
    its ESS's range narrowed to [-0.1, 0.1] MW by the old-style method."""
    from powergrid.protocols import mw_range
    from powergrid_devices.storage import ESS

    class OldStyleESS(ESS):
        def feasible_range(self):  # the signature of earlier releases
            return -0.1, 0.1

    env = example_env("volt_var", mg2={"policy": "learned"})
    env.reset(seed=0)
    mg2, ess = env.scenario.agents["mg2"], env.scenario.agents["mg2_ess"]
    ess.device.__class__ = OldStyleESS
    assert mw_range(ess) == (-0.1, 0.1) and mw_range(ess, np.zeros(1, np.float32)) == (-0.1, 0.1)
    env.step({a: np.zeros(env.action_space(a).shape, np.float32) for a in env.agents})
    reserve = mg2.protocol.info()["reserve_mw"]
    assert reserve["mg2_ess"] > 0.0  # allotted over its 0.2 MW of headroom
    assert sum(reserve.values()) + mg2.protocol.info()["shortfall_mw"] == pytest.approx(0.2)


# tests/devices' one-microgrid site on cigre_mv, metered at its line, with horizontal protocols after it
SITE = GRID_SITE.replace("PCC_BUS", "Bus 4").replace("ELEMENT", "line, name: Line 4-5") + "horizontal:\n"


@pytest.mark.parametrize("kind", ["p2p_trading", "admm", "consensus", "lmp_market"])
def test_a_protocol_among_microgrid_controllers_refuses_a_device_participant(kind):
    """r46a F2: ``participants: [mg, ess]`` (a device for its controller) ran: p2p a silent no-op, admm another
    experiment (mg 727.09 → 639.87 $/day). Now one error naming the participant."""
    from powergrid.config import EnvConfig
    from powergrid.errors import ConfigError

    text = SITE + f"  - {{type: {kind}, participants: [mg, ess]}}\n"
    with pytest.raises(ConfigError) as caught:
        MultiAgentPowerGridEnv(EnvConfig.from_text(text, file="site.yaml"))
    assert str(caught.value) == (f"site.yaml:9 horizontal[0].participants[1]: protocol {kind!r} takes grid or system "
                                 f"agents as participants, got the device agent 'ess'")


@pytest.mark.parametrize("kind", ["volt_var", "droop"])
def test_volt_var_and_droop_take_device_agents_as_their_units(kind):
    """Per-unit functions (IEEE 1547's volt-var and droop): device participants are those units alone (the meter pcc
    is droop's PCC, test_droop_measure)."""
    from powergrid.config import EnvConfig

    env = MultiAgentPowerGridEnv(EnvConfig.from_text(SITE + f"  - {{type: {kind}, participants: [ess, pv, pcc]}}\n",
                                                     file="site.yaml"))
    proto = env.scenario.horizontal[0]
    assert [d.id for d in proto.inverters] == ["ess", "pv"]
    env.reset(seed=0)
    for _ in range(2):  # the second tick acts on the first flow's voltages
        env.step({"mg": np.zeros(env.action_space("mg").shape, np.float32)})
    assert {d.id for d in proto.inverters if d.reactive.q_mvar is not None} == {"ess", "pv"}

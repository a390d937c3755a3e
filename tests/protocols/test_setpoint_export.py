"""The ``setpoint`` rule values a DG's exported MWh at the export price: where its meter would export (predicted from
its last reading, as :meth:`Setpoint.headroom` predicts) and the grid pays ``sell_ratio·price``, it lowers the DG to the
larger of the output that brings the export down to the margin (0.05 MW: the reading lags) and its profit-maximising
output at ``sell_ratio·price``. case33bw
(≈ 2.2 MW of load at 0 h) with the built-in daily shapes from 0 h, 15-minute ticks; a DG of fuel cost
``10·p² + 20·p`` $/h (marginal cost ``20 + 20·p`` $/MWh, 0–1 MW) and a wind farm that makes the feeder export."""

from __future__ import annotations

import pytest

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.protocols import HorizontalProtocol

from ._microgrid import after_first_tick, load_change, microgrid, rule_mw, wind

DG = {"id": "dg", "type": "DG", "bus": 17, "params": {"p_max_mw": 1.0, "cost_a": 10.0, "cost_b": 20.0}}


def _env(wind_mw: float, sell_ratio: float = 0.5, **setpoint: float) -> MultiAgentPowerGridEnv:
    """The microgrid after tick 0 played by the rule (the DG at 1 MW: at tick 0 the meter has no reading); ``setpoint``:
    the protocol's params."""
    env = microgrid([DG, *wind(wind_mw)], {"sell_ratio": sell_ratio}, {"type": "setpoint", "params": setpoint})
    after_first_tick(env)
    assert env.scenario.agents["dg"].device.p_mw == 1.0
    return env


def test_the_dg_best_output_is_the_quadratic_optimum():
    dg = _env(0.0).scenario.agents["dg"].device
    assert dg.best_output(30.0) == (pytest.approx(0.5), pytest.approx(30 * 0.5 - (10 * 0.25 + 20 * 0.5)))
    assert dg.best_output(10.0)[0] == 0.0 and dg.best_output(100.0)[0] == 1.0  # below b: off; above: p_max


def test_an_export_paid_at_half_the_price_holds_the_dg_at_its_export_value_output():
    env = _env(8.0)  # ≈ 2.1 MW of export with the DG at 1 MW
    assert env.scenario.agents["meter"].device.import_mw < -2.0
    env.ctx.price = 60.0
    assert env.scenario.agents["dg"].device.rule_action(env.ctx)[0] == 1.0  # its own rule: MC 20 + 20·p < 60 up to p_max
    # exported MWh earn 0.5·60 = 30 $/MWh: 20 + 20·p = 30 at p = 0.5 MW (the export stays ≈ 1.6 MW > 0)
    assert rule_mw(env, 60.0) == pytest.approx(0.5)
    assert rule_mw(env, 80.0) == pytest.approx(1.0)  # 0.5·80 = 40: p = 1 MW, p_max


def test_the_dg_backs_off_only_as_far_as_the_export():
    env = _env(3.5)  # ≈ 0.3 MW of export predicted (the loads fall ≈ 0.22 MW over the tick)
    a = env.scenario.agents
    wind, meter = a["wind"].device, a["meter"].device
    env.ctx.price = 60.0
    # the import predicted with the DG at 1 MW: the last reading, the last outputs back, the outputs now, and the
    # loads' forecast change
    predicted = meter.import_mw + 1.0 + wind.p_mw - (1.0 + wind.injection_mw(None, env.ctx)) + load_change(env)
    assert -0.5 < predicted < -0.05
    # the export held at the margin 0.05 MW: above the 0.5 MW of the export price
    assert rule_mw(env, 60.0) == pytest.approx(1.0 + predicted + 0.05, abs=1e-6)

    # horizontal protocols whose rules take over 0.2 MW of the export between them (P2P: its q_max_mw): only the rest
    # is held back (before, the one P2P built last set Setpoint.traded_export_mw: 0.1)
    mg = env.scenario.agents["mg"]
    Taker(0.1, [mg]), Taker(0.1, [mg])
    assert rule_mw(env, 60.0) == pytest.approx(1.0 + predicted + 0.2, abs=1e-6)
    Taker(0.3, [mg])  # all of it: the DG's own rule stands
    assert rule_mw(env, 60.0) == 1.0


class Taker(HorizontalProtocol):
    """A horizontal protocol whose rule takes over ``params`` MW of each participant's predicted export."""

    def export_taken_mw(self, agent, parts, ctx) -> float:
        return self.params


def test_the_export_let_stand_is_its_own_margin():
    """``export_margin_mw`` (0.05 MW) is the export the rule lets stand, whatever ``margin_mw`` keeps inside the
    limits (before, ``margin_mw`` did both: a wider limit margin let more export go at the export price)."""
    mw = {}
    for margin, export_margin in ((0.05, 0.05), (0.3, 0.05), (0.05, 0.2)):
        env = _env(4.0, margin_mw=margin, export_margin_mw=export_margin)
        mw[margin, export_margin] = rule_mw(env, 60.0)
    assert mw[0.3, 0.05] == pytest.approx(mw[0.05, 0.05], abs=1e-6)
    assert mw[0.05, 0.2] == pytest.approx(mw[0.05, 0.05] + 0.15, abs=1e-6)


def test_a_p2p_order_that_does_not_come_from_the_prediction_takes_no_export():
    """Under P2P trading without a limited meter, the participant's rule order does not withhold its predicted export
    (it orders at its DG's marginal cost): the setpoint rule holds the export back at ``export_margin_mw`` as without the market
    (before, P2P let ``q_max_mw`` of it stand, to go to the grid at the export price)."""
    from powergrid_protocols.p2p import P2PParams, P2PTrading

    env = _env(4.0)
    alone = rule_mw(env, 60.0)
    assert alone < 0.95
    mg = env.scenario.agents["mg"]
    market = P2PTrading(P2PParams(q_max_mw=0.5), [mg])
    assert rule_mw(env, 60.0) == alone
    assert mg.protocol.horizontal == (market,) and mg.protocol.meter is None


@pytest.mark.parametrize("wind_mw, sell_ratio", [(0.0, 0.5), (8.0, 1.0)])
def test_importing_or_paid_the_full_price_the_dg_runs_at_the_price(wind_mw, sell_ratio):
    env = _env(wind_mw, sell_ratio)
    assert rule_mw(env, 36.0) == pytest.approx(0.8)  # 20 + 20·p = 36
    assert rule_mw(env, 60.0) == pytest.approx(1.0)


def test_the_flow_confirms_the_saving():
    """At the tick's own price (≈ 45 $/MWh: export value 22.5, p = 0.125 MW, on the rule's grid 0.1333) the rule's tick
    costs the microgrid less than its DG at its own rule (1 MW), by about the fuel saved less the export revenue lost."""
    costs = {}
    for name in ("rule", "dg_own"):
        env = _env(8.0)
        action = env.rule_action("mg")
        if name == "dg_own":
            action[0] = env.scenario.agents["dg"].device.rule_action(env.ctx)[0]
        assert action[0] == pytest.approx(8 / 60 if name == "rule" else 1.0)
        price = env.ctx.price
        env.step({"mg": action})
        costs[name] = env.agent_costs()["mg"][0]
    fuel = 10 * (1 - (8 / 60) ** 2) + 20 * (1 - 8 / 60)  # $/h saved
    expected = (fuel - 0.5 * price * (1 - 8 / 60)) * 0.25  # $ over the 15-minute tick (network losses aside)
    assert costs["dg_own"] - costs["rule"] == pytest.approx(expected, rel=0.05)

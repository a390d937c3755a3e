"""The ``setpoint`` rule and its batteries: at the first tick, with no meter reading to predict from, a battery waits
where the meter has a limit or pays an export below the price; from the second tick, where the meter would export, a
battery's trade is valued at the export price ``sell_ratio·price``, as a DG's output is (test_setpoint_export.py).
case33bw (≈ 2.2 MW of load at 0 h) with the built-in daily shapes from 0 h, 15-minute ticks; a 0.5 MW battery half
full (η 0.95 each way, no wear: it charges below 0.9025·V and discharges above V, V = ctx.store_price $/MWh)."""

from __future__ import annotations

import pytest

from powergrid.env import MultiAgentPowerGridEnv

from ._microgrid import ESS, microgrid, play_rule, rule_mw, wind


def _env(wind_mw: float, **meter: float) -> MultiAgentPowerGridEnv:
    """The microgrid reset (seed 0); ``meter``: the GridConnection's params."""
    env = microgrid([ESS, *wind(wind_mw)], meter, {"type": "setpoint"})
    env.reset(seed=0)
    return env


@pytest.mark.parametrize("meter, waits", [({"sell_ratio": 0.5}, True), ({"export_limit_mw": 5.0}, True),
                                          ({"import_limit_mw": 5.0}, True), ({}, False)])
def test_at_the_first_tick_the_battery_waits_for_a_reading(meter, waits):
    env = _env(0.0, **meter)
    dear = env.ctx.store_price + 30.0
    env.ctx.price = dear
    assert env.scenario.agents["ess"].device.rule_action(env.ctx)[0] == 0.5  # its own rule discharges in full
    # a limit or an export price it cannot check without a reading: it waits; a plain meter: its own rule
    assert rule_mw(env, dear) == (0.0 if waits else 0.5)
    play_rule(env)
    assert env.scenario.agents["ess"].device.p_mw == (0.0 if waits else 0.5)
    assert env.scenario.agents["meter"].device.import_mw > 1.5  # the feeder imports: nothing for the rule to weigh
    assert rule_mw(env, dear) == 0.5  # from the second tick, its own rule


def test_a_discharge_into_an_export_paid_at_half_the_price_is_valued_at_the_export_price():
    env = play_rule(_env(8.0, sell_ratio=0.5))
    assert env.scenario.agents["meter"].device.import_mw < -0.6  # the wind makes the feeder export
    ess, v = env.scenario.agents["ess"].device, env.ctx.store_price
    # 1.9·V: its own rule discharges (above V), but an exported MWh earns 0.95·V, between 0.9025·V and V: idle
    env.ctx.price = 1.9 * v
    assert ess.rule_action(env.ctx)[0] == 0.5
    assert rule_mw(env, 1.9 * v) == 0.0
    assert rule_mw(env, 2.2 * v) == 0.5  # the export earns 1.1·V > V: it discharges
    # 1.5·V: its own rule discharges; the export earns 0.75·V < 0.9025·V: it charges from the export instead
    assert rule_mw(env, 1.5 * v) == -0.5
    assert rule_mw(env, 0.5 * v) == -0.5  # below 0.9025·V: its own rule, charging


def test_the_battery_backs_off_only_as_far_as_the_export_and_a_full_price_leaves_it_alone():
    env = play_rule(_env(5.0, sell_ratio=0.5))
    a = env.scenario.agents
    wind, meter, v = a["wind"].device, a["meter"].device, env.ctx.store_price
    env.ctx.price = 1.9 * v
    # the import predicted with the battery at 0.5 MW: the last reading, the last outputs back, the outputs now, and
    # the forecast change of the loads (setpoint's load_change_mw)
    predicted = (meter.import_mw + a["ess"].device.p_mw + wind.p_mw - (0.5 + wind.injection_mw(None, env.ctx))
                 + a["mg"].protocol.load_change_mw(env.ctx))
    assert -0.5 < predicted < -0.05
    # the export held at the margin 0.05 MW; the MW that offset the import stay valued at the price
    assert rule_mw(env, 1.9 * v) == pytest.approx(0.5 + predicted + 0.05, abs=1e-6)
    env = play_rule(_env(8.0, sell_ratio=1.0))  # an export paid the full price: its own rule stands
    assert rule_mw(env, 1.9 * env.ctx.store_price) == 0.5

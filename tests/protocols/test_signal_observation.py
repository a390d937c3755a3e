"""A learned agent below a price-signal protocol observes the price it received ("signal", $/MWh)."""

from __future__ import annotations

import numpy as np

from powergrid.env import MultiAgentPowerGridEnv
from tests.protocols import example_config, example_env

ISO = "ieee34_3mg_iso"  # the ISO's price signal over mg1..mg3 (physical actions: it sends $/MWh)


def _play(env, iso_price, ticks):
    obs, _ = env.reset(seed=0)
    seen, markets = [obs["mg1"].copy()], [obs["mg1"][0]]
    mg1 = np.zeros(env.action_space("mg1").shape, np.float32)
    for _ in range(ticks):
        obs, *_ = env.step({"iso": np.array([iso_price], np.float32), "mg1": mg1})
        seen.append(obs["mg1"].copy())
        markets.append(obs["mg1"][0])
    return np.array(seen), np.array(markets)


def _signal_index(env):
    """The signal sits after mg1's devices' features (mg1 has no horizontal protocol, no link, local observation)."""
    return int(env.observation_space("mg1").shape[0]) - 1


def test_a_learned_child_of_a_price_signal_observes_the_signal_it_received():
    env = example_env(ISO)
    at = _signal_index(env)
    ticks = 6
    low, _ = _play(env, 0.0, ticks)
    high, _ = _play(env, 150.0, ticks)
    # at reset, before any directive: the market price (the price feature)
    assert low[0, at] == high[0, at] == low[0, 0]
    # after each tick: the price the ISO sent at that tick
    np.testing.assert_array_equal(low[1:, at], 0.0)
    np.testing.assert_array_equal(high[1:, at], 150.0)
    # nothing else mg1 observes changes but its zone voltages (mg2 and mg3 answer the price; mg1 acts the same)
    zone_v = {6, 7, 8}  # price, sin, cos, acting, ahead, zone power, then zone min/mean/max voltage
    differ = set(np.flatnonzero((low != high).any(axis=0)).tolist())
    assert at in differ and differ <= zone_v | {at}
    # the space's bounds for the feature: the price's
    space = env.observation_space("mg1")
    assert (space.low[at], space.high[at]) == (space.low[0], space.high[0])


def test_the_signal_feature_follows_the_delivered_directive_over_a_delayed_link():
    ideal = example_env(ISO)
    delayed = example_env(ISO, mg1={"link": {"down": {"delay": "30min"}}})  # two 15-minute ticks
    # the delayed link adds the directive's age after the signal
    at = _signal_index(ideal)
    assert delayed.observation_space("mg1").shape[0] == ideal.observation_space("mg1").shape[0] + 1
    seen, markets = _play(delayed, 150.0, 6)
    # the directive of tick 0 arrives at tick 2: the observation at tick 1 shows the market price tick 0 saw (the
    # price feature of the observation before); from tick 2, the arrival, on: the ISO's 150 $/MWh, with the age of
    # the message that brought it (until r41b F1 tick 2 showed tick 1's market price: the message's price a tick late)
    np.testing.assert_array_equal(seen[1:2, at], markets[0:1])
    assert markets[0] != 150.0
    np.testing.assert_array_equal(seen[2:, at], 150.0)


def test_only_agents_below_a_price_signal_get_the_feature():
    env = example_env(ISO)
    plain = example_config(ISO)
    plain["agents"][0]["protocol"] = "none"  # the ISO sends nothing: its children act on their own policies
    plain["agents"][0]["policy"] = "rule"
    other = MultiAgentPowerGridEnv.from_config(plain)
    assert other.observation_space("mg1").shape[0] == env.observation_space("mg1").shape[0] - 1

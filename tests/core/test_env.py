"""The environment against PettingZoo's API tests and an independent pandapower power flow."""

from __future__ import annotations

import datetime as dt
import pickle

import gymnasium
import numpy as np
import pandapower as pp
import pytest
from pettingzoo.test import parallel_api_test
from pettingzoo.test.seed_test import check_environment_deterministic_parallel

from powergrid.env import STAMP_TICKS, MultiAgentPowerGridEnv, _iso_stamps
from powergrid.networks import TEMPLATES
from powergrid.plugins import make_registry

from .scenarios import load_local, two_feeders


@pytest.fixture(scope="module")
def registry():
    load_local()
    return make_registry(include_local=True)


def make_env(registry, solver=None, **extra) -> MultiAgentPowerGridEnv:
    return MultiAgentPowerGridEnv.from_config(two_feeders(**extra), registry=registry, solver=solver)


def test_parallel_api(registry):
    parallel_api_test(make_env(registry), num_cycles=20)


def test_same_seed_same_trajectory(registry):
    # parallel_seed_test's own check: it takes num_cycles on every pettingzoo (parallel_seed_test only from 1.24.2)
    check_environment_deterministic_parallel(make_env(registry), make_env(registry), 10)


def _independent_voltages(env: MultiAgentPowerGridEnv) -> np.ndarray:
    """Build the template afresh, add the devices' injections and load scaling by hand, run pandapower."""
    net = TEMPLATES["case33bw"]()
    net.load["p_mw"] *= env.load_multipliers[env.tick - 1]
    net.load["q_mvar"] *= env.load_multipliers[env.tick - 1]
    for d in env.scenario.device_agents:
        pp.create_sgen(net, int(net.bus.index[d.bus]), p_mw=d.device.p_mw, q_mvar=d.device.q_mvar)
    pp.runpp(net, numba=False)
    return net.res_bus.vm_pu.to_numpy()


@pytest.mark.parametrize("solver", sorted(make_registry().names("solver")))
def test_voltages_equal_an_independent_pandapower_run(registry, solver):
    env = make_env(registry, solver=solver)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(4):
        env.step({a: rng.uniform(0, 2, size=env.action_space(a).shape).astype(np.float32) for a in env.agents})
        assert env.last_result.converged
        np.testing.assert_allclose(env.last_result.vm_pu, _independent_voltages(env), atol=1e-6)


def test_reward_cost_and_safety_by_hand(registry):
    env = make_env(registry, solver="pandapower")
    env.reset(seed=0)
    _, rewards, _, _, infos = env.step({"a": np.array([2.0], np.float32), "b": np.array([0.5], np.float32),
                                        "mg": np.zeros(0, np.float32)})
    # ConstantPower cost = 10 $/MWh · p · dt; a: 2 × 0.3 MW for 0.25 h
    assert infos["a"]["cost"] == pytest.approx(10.0 * 0.6 * 0.25)
    assert infos["b"]["cost"] == pytest.approx(10.0 * -0.1 * 0.25)
    assert rewards["a"] == pytest.approx(-infos["a"]["cost"] - 10.0 * infos["a"]["safety"])
    costs = env.agent_costs()
    assert infos["mg"]["cost"] == pytest.approx(costs["c"][0] + costs["d"][0])


def test_zone_voltage_violation_counts_as_safety(registry):
    env = make_env(registry, solver="pandapower", reward={"v_min_pu": 0.99, "v_max_pu": 1.05})
    env.reset(seed=0)
    _, _, _, _, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
    vm = env.last_result.vm_pu[env.scenario.agents["mg"].zone]
    assert infos["mg"]["safety"] == pytest.approx(np.maximum(0.99 - vm, 0).sum())
    assert infos["mg"]["safety"] > 0


def test_multi_rate_agent_holds_its_action_between_periods(registry):
    env = make_env(registry, solver="pandapower")
    env.reset(seed=0)
    applied, acting = [], []
    for t in range(8):
        _, _, _, _, infos = env.step({"a": np.ones(1, np.float32), "b": np.full(1, t / 4, np.float32),
                                      "mg": np.zeros(0, np.float32)})
        applied.append(env.scenario.agents["b"].device.scale)
        acting.append(infos["b"]["acting"])
    assert applied == [0.0] * 4 + [1.0] * 4  # actions at ticks 0 and 4 only
    assert acting == [(t + 1) % 4 == 0 for t in range(8)]  # the flag tells whether the next action is used


def test_diverging_power_flow_and_nan_action_are_handled(registry):
    extra_agent = {"id": "huge", "type": "ConstantPower", "bus": 32, "policy": "learned", "params": {"p_mw": -60.0}}
    scenario = two_feeders()
    scenario["agents"].append(extra_agent)
    env = MultiAgentPowerGridEnv.from_config(scenario, registry=registry)
    env.reset(seed=0)
    actions = {"a": np.array([np.nan], np.float32), "b": np.ones(1, np.float32), "mg": np.zeros(0, np.float32),
               "huge": np.array([2.0], np.float32)}
    obs, rewards, terminations, _, infos = env.step(actions)
    assert infos["huge"]["converged"] is False and all(terminations.values())  # details: test_failures.py
    assert all(np.isfinite(o).all() for o in obs.values()) and all(np.isfinite(r) for r in rewards.values())
    assert infos["a"]["projection"] == 2.0  # a NaN counts as the whole range


def test_pickle_round_trip_continues_identically(registry):
    env = make_env(registry)
    env.reset(seed=5)
    env.step({a: env.action_space(a).sample() for a in env.agents})
    clone = pickle.loads(pickle.dumps(env))
    actions = {"a": np.ones(1, np.float32), "b": np.ones(1, np.float32), "mg": np.zeros(0, np.float32)}
    first = env.step(actions)
    second = clone.step(actions)
    for agent in env.agents:
        np.testing.assert_array_equal(first[0][agent], second[0][agent])
        assert first[1][agent] == second[1][agent]


def test_normalized_spaces_map_to_physical_units_and_bound_every_feature(registry):
    """Box actions in [-1, 1] map linearly onto each device's range; observations and state are finite and inside."""
    env = make_env(registry, spaces={"observation": "normalized", "action": "normalized"})
    raw = make_env(registry, spaces={"observation": "raw", "action": "physical"})
    assert env.action_space("a") == gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
    for e in (env, raw):
        e.reset(seed=2)
        assert e.state_space.contains(e.state())
        for agent in e.possible_agents:
            space = e.observation_space(agent)
            assert np.isfinite(space.low).all() and np.isfinite(space.high).all()
    # a = -0.5 → scale 0.5 of [0, 2]; the same step in physical units gives the same physics
    env.step({"a": np.array([-0.5], np.float32), "b": np.array([1.0], np.float32), "mg": np.zeros(0, np.float32)})
    obs, *_ = raw.step({"a": np.array([0.5], np.float32), "b": np.array([2.0], np.float32),
                        "mg": np.zeros(0, np.float32)})
    assert env.scenario.agents["a"].device.scale == 0.5 and env.scenario.agents["b"].device.scale == 2.0
    np.testing.assert_allclose(env.last_result.vm_pu, raw.last_result.vm_pu, atol=1e-12)
    # observed voltage of 'a' (feature 5): (V - 1)/0.05 normalized, V raw
    v = raw.last_result.vm_pu[raw.scenario.agents["a"].bus]
    assert obs["a"][5] == pytest.approx(v, abs=1e-6)
    norm = env._obs_dict(env._observe())["a"]
    assert norm[5] == pytest.approx((v - 1.0) / 0.05, abs=1e-4)
    assert norm[0] == pytest.approx((env.ctx.price - 50.0) / 100.0, abs=1e-5)
    np.testing.assert_allclose(env.state(), (env.last_result.vm_pu - 1.0) / 0.05, atol=1e-5)
    assert env.action_from_physical("a", np.array([0.5])) == pytest.approx(-0.5)


@pytest.mark.parametrize("scalar", [np.float32(-0.5), np.array(-0.5), -0.5])
def test_one_number_for_a_one_entry_box_is_mapped_like_an_array(registry, scalar):
    """The env takes one number for a one-entry Box; normalized, -0.5 is scale 0.5 of [0, 2] (was: 0.0, taken as
    physical and clipped)."""
    env = make_env(registry, spaces={"action": "normalized"})
    env.reset(seed=2)
    env.step({"a": scalar, "b": np.zeros(1, np.float32), "mg": np.zeros(0, np.float32)})
    assert env.scenario.agents["a"].device.scale == 0.5


@pytest.mark.parametrize("learned", [True, False])
def test_a_step_before_reset_asks_for_reset(registry, learned):
    """Without learned agents a step before reset() ran on and raised KeyError: 'price'."""
    scenario = two_feeders()
    for agent in scenario["agents"]:
        if not learned and agent.get("policy") == "learned":
            agent["policy"] = "rule"
    env = MultiAgentPowerGridEnv.from_config(scenario, registry=registry)
    with pytest.raises(RuntimeError, match=r"before reset\(\); call reset\(\) first"):
        env.step({})
    env.reset(seed=0)
    env.step({})


def test_pickle_protocol_5_out_of_band_buffers_give_a_writable_env(registry):
    """Ray and pickle protocol 5 hand numpy buffers back read-only: the unpickled env must still run."""
    env = make_env(registry)
    env.reset(seed=1)
    buffers: list = []
    data = pickle.dumps(env, protocol=5, buffer_callback=buffers.append)
    clone = pickle.loads(data, buffers=[memoryview(bytes(b.raw())) for b in buffers])  # read-only, as Ray's
    clone.reset(seed=1)
    env.reset(seed=1)
    actions = {"a": np.ones(1, np.float32), "b": np.ones(1, np.float32), "mg": np.zeros(0, np.float32)}
    np.testing.assert_array_equal(clone.step(actions)[0]["a"], env.step(actions)[0]["a"])


@pytest.mark.parametrize("mode", ["rgb_array"])
def test_render_draws_the_voltage_profile_and_dispatch(registry, mode):
    pytest.importorskip("matplotlib")
    env = MultiAgentPowerGridEnv.from_config(two_feeders(), registry=registry, render_mode=mode)
    env.reset(seed=0)
    env.step({"a": np.ones(1, np.float32), "b": np.ones(1, np.float32), "mg": np.zeros(0, np.float32)})
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8 and frame.std() > 0


def test_protocol_features_are_scaled_by_their_units():
    """A price feature declared by a protocol is seen like the env's own price: (p − 50)/100, bounds finite."""
    from powergrid import scaling
    from powergrid.protocols import HorizontalProtocol

    class Quote(HorizontalProtocol):
        def observation_features(self, agent):
            return (scaling.PRICE, scaling.power(2.0))

        def observe(self, agent):
            return np.array([150.0, 1.0], np.float32)

    space = Quote(None, []).observation_space(None)
    assert space.low.tolist() == [-2000.0, -1e4] and space.high.tolist() == [20000.0, 1e4]
    f = scaling.PRICE
    assert (150.0 - f.ref) / f.scale == pytest.approx(1.0)
    assert scaling.power(2.0).scale == 2.0 and scaling.power(0.0).scale == 1.0
    assert scaling.Feature.from_bounds(0.0, 1.0) == scaling.Feature(0.0, 1.0)  # already inside [-1, 1]
    assert scaling.Feature.from_bounds(0.0, 10.0) == scaling.Feature(0.0, 10.0, 5.0, 5.0)


@pytest.mark.parametrize("t0, tick_s, ticks", [
    (dt.datetime(2023, 12, 31, 22, 30), 900, 96),  # across midnight and the year
    (dt.datetime(2024, 2, 28, 23, 59, 59, tzinfo=dt.timezone(dt.timedelta(hours=-5))), 7, 2000),  # a leap day
    (dt.datetime(2023, 3, 1, 5, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))), 90_000, 40),  # > a day
    (dt.datetime(2023, 6, 1, tzinfo=dt.timezone.utc), 3600, 0),
])
def test_infos_time_stamps_are_each_ticks_isoformat(t0, tick_s, ticks):
    assert _iso_stamps(t0, tick_s, ticks) == [(t0 + dt.timedelta(seconds=k * tick_s)).isoformat() for k in range(ticks + 1)]
    assert _iso_stamps(t0, tick_s, STAMP_TICKS + 1) is None and _iso_stamps(t0.replace(microsecond=5), 1, 1) is None

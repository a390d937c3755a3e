"""The reference policies of powergrid.evaluate on a seeded episode."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.evaluate import random_actions, rule_actions, run_episode, summarize
from powergrid.plugins import make_registry

from .scenarios import load_local, two_feeders


@pytest.fixture(scope="module")
def registry():
    load_local()
    return make_registry(include_local=True)


def test_random_agents_of_equal_spaces_draw_their_own_actions(registry):
    """'a' and 'b' have equal Box(0, 2) spaces: seeded alike they drew the same action at every tick (was 8 of 8)."""
    env = MultiAgentPowerGridEnv.from_config(two_feeders(), registry=registry)
    sent: list[dict] = []

    def spy(env: MultiAgentPowerGridEnv) -> dict:
        sent.append(random_actions(env))
        return sent[-1]

    first = run_episode(env, spy, seed=4)
    assert env.action_space("a") == env.action_space("b")
    assert not any(np.array_equal(s["a"], s["b"]) for s in sent)
    alone = gymnasium.spaces.Box(0.0, 2.0, (1,), np.float32)  # the first agent draws as a space seeded with the seed
    alone.seed(4)
    np.testing.assert_array_equal([s["a"] for s in sent], [alone.sample() for _ in sent])
    again: list[dict] = []  # (a fresh env: the flows of a used one start from its last voltages)
    fresh = MultiAgentPowerGridEnv.from_config(two_feeders(), registry=registry)
    assert run_episode(fresh, lambda e: again.append(random_actions(e)) or again[-1], seed=4) == first
    assert all(np.array_equal(x[k], y[k]) for x, y in zip(sent, again) for k in x)


def test_a_scenario_without_learned_agents_plays_its_whole_episode(registry):
    """Every agent follows its own policy: the episode is played (was: 0 ticks, and 100 % of 0 bus-ticks in band,
    while case33bw's far end sits below 0.95 pu)."""
    scenario = two_feeders()
    for agent in scenario["agents"]:
        agent.pop("policy", None)
    env = MultiAgentPowerGridEnv.from_config(scenario, registry=registry)
    stats = run_episode(env, "rule", seed=0)
    assert env.possible_agents == [] and stats.returns == {}
    assert stats.ticks == env.max_ticks == 8 and stats.failures == 0
    assert stats.bus_ticks == 8 * len(env.net.bus)
    assert stats.v_min_pu < 0.95 and 0.0 < stats.in_band < 1.0


@pytest.mark.parametrize(("on_divergence", "ticks"), [("terminate", 1), ("penalize", 8)])
def test_a_scenario_without_learned_agents_ends_at_a_terminating_failure(registry, on_divergence, ticks):
    """Every agent on its own policy and a device whose rule draws 120 MW (no flow converges): under terminate the
    episode ends at the first failed flow, as with learned agents (was: 8 ticks and 8 failures on a terminated env)."""
    scenario = two_feeders(reward={"on_divergence": on_divergence})
    for agent in scenario["agents"]:
        agent.pop("policy", None)
    scenario["agents"].append({"id": "huge", "type": "ConstantPower", "bus": 32, "params": {"p_mw": -120.0}})
    env = MultiAgentPowerGridEnv.from_config(scenario, registry=registry)
    stats = run_episode(env, "rule", seed=0)
    assert env.possible_agents == [] and env.max_ticks == 8
    assert stats.ticks == stats.failures == ticks


@pytest.mark.parametrize("learned", [True, False])
def test_env_ended_says_when_the_episode_is_over_with_or_without_learned_agents(registry, learned):
    """``env.ended``: False after reset and while ticks remain, True after the last tick or a failed flow under
    terminate; with learned agents it agrees with ``env.agents``, without them it is the only signal."""
    scenario = two_feeders()
    if not learned:
        for agent in scenario["agents"]:
            agent.pop("policy", None)
    env = MultiAgentPowerGridEnv.from_config(scenario, registry=registry)
    env.reset(seed=0)
    seen = [env.ended]
    for _ in range(env.max_ticks):
        env.step(random_actions(env))
        seen.append(env.ended)
        assert not learned or env.ended == (not env.agents)
    assert seen == [False] * env.max_ticks + [True]
    env.reset(seed=1)
    assert not env.ended
    scenario["agents"].append({"id": "huge", "type": "ConstantPower", "bus": 32, "params": {"p_mw": -120.0}})
    failing = MultiAgentPowerGridEnv.from_config(scenario, registry=registry)
    failing.reset(seed=0)
    failing.step(random_actions(failing))
    assert failing.failure and failing.ended and failing.tick == 1


def _nested() -> dict:
    """A learned system agent over a learned grid agent over two learned devices, and a rule device under the system
    agent; 8 ticks of 15 min, rule scale 1: 0.3 − 0.2 + 0.5 = 0.6 MW, so the devices cost 10 $/MWh · 0.6 MW · 0.25 h =
    1.5 $ a tick, 12 $ the episode."""
    return {
        "name": "core_nested", "network": {"type": "case33bw"}, "spaces": {"action": "physical"},
        "time": {"step_minutes": 15, "steps_per_episode": 8},
        "agents": [
            {"id": "top", "kind": "system", "policy": "learned", "children": ["mg", "e"]},
            {"id": "mg", "kind": "grid", "policy": "learned", "children": ["a", "b"]},
            {"id": "a", "type": "ConstantPower", "bus": 5, "policy": "learned", "params": {"p_mw": 0.3}},
            {"id": "b", "type": "ConstantPower", "bus": 17, "policy": "learned", "params": {"p_mw": -0.2}},
            {"id": "e", "type": "ConstantPower", "bus": 30, "params": {"p_mw": 0.5}},
        ],
    }


@pytest.mark.filterwarnings("ignore:.*learned but has nothing to act on:UserWarning")
def test_the_total_counts_each_device_once_under_nested_learned_agents(registry):
    """The system agent's reward already holds its learned grid agent's and devices': the total is the root's return,
    the devices' 12 $ plus the whole network's violation (pu outside the band, line overload) from the flows, by hand.
    Was every learned agent's return summed: 'top' + 'mg' + 'a' + 'b', the devices' cost counted up to three times."""
    env = MultiAgentPowerGridEnv.from_config(_nested(), registry=registry)
    rw = env.config.reward
    by_hand = []
    for seed in (0, 1):
        env.reset(seed=seed)
        cost = violation = 0.0
        while not env.ended:
            env.step(rule_actions(env))
            cost += sum(10.0 * d.device.p_mw * env.dt_h for d in env.scenario.device_agents)
            r = env.last_result
            violation += (np.maximum(r.vm_pu - rw.v_max_pu, 0.0).sum() + np.maximum(rw.v_min_pu - r.vm_pu, 0.0).sum()
                          + np.maximum(r.line_loading_percent / rw.max_loading_percent - 1.0, 0.0).sum())
        assert cost == pytest.approx(12.0)
        by_hand.append((rw.cost_weight * cost, rw.safety_per_step(env.dt_h) * violation))
        stats = run_episode(env, "rule", seed)
        assert stats.roots == ("top",) and set(stats.returns) == {"top", "mg", "a", "b"}  # each agent's return kept
        assert stats.total_return == stats.returns["top"] == pytest.approx(-sum(by_hand[-1]))
    assert by_hand[0][1] > 0  # the far end sits below 0.95 pu: safety is part of the check
    s = summarize(env, "rule", (0, 1))
    assert s.mean_cost == pytest.approx(np.mean([c for c, _ in by_hand]))
    assert s.mean_safety_term == pytest.approx(np.mean([v for _, v in by_hand]))
    assert s.returns == pytest.approx([-(c + v) for c, v in by_hand])

"""1,000-step training smokes of the benchmark's trained baselines, one per library:
SB3 PPO and SAC with SuperSuit parameter sharing (SAC also as residual RL on the rule, and started
from the oracle's demonstrations), RLlib PPO, and TorchRL MAPPO (centralised critic)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from powergrid.bench import train
from powergrid.bench.play import play
from powergrid.bench.tasks import TEST_DAYS, task_named
from powergrid.env import MultiAgentPowerGridEnv

NEEDS = {"sb3_ppo": ("stable_baselines3", "supersuit"), "sb3_sac": ("stable_baselines3", "supersuit"),
         "sb3_sac_residual": ("stable_baselines3", "supersuit"), "sb3_sac_bc": ("stable_baselines3", "supersuit"),
         "rllib_ppo": ("ray",), "torchrl_mappo": ("torchrl", "supersuit")}


@pytest.mark.parametrize(("library", "name"), [
    ("sb3_ppo", "dispatch_mg"), ("sb3_ppo", "hierarchy"),  # one agent; two of different shapes (padded)
    ("sb3_sac", "p2p_trading"),  # three agents, one policy told apart by the agent indicator
    ("sb3_sac_residual", "p2p_trading"),  # corrections to the rule, day-ahead features
    pytest.param("rllib_ppo", "p2p_trading", marks=pytest.mark.ray),  # starts Ray: tests/rl/conftest.py

    ("torchrl_mappo", "p2p_trading"), ("torchrl_mappo", "hierarchy"),
])
def test_a_library_trains_1000_steps_and_plays_a_test_day(library, name, request):
    for module in NEEDS[library]:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    if library == "rllib_ppo":
        request.getfixturevalue("ray_session")  # Ray's session folder in the tests' own, not /tmp/ray
    task = task_named(name)
    results_home = Path("~/ray_results").expanduser()  # RLlib's Trainable makes a log folder there: none is left
    before = set(results_home.iterdir()) if results_home.exists() else None
    factory, record = getattr(train, library)(task, minutes=30.0, seed=0, max_steps=1000)
    if library == "rllib_ppo":
        assert (set(results_home.iterdir()) if results_home.exists() else None) == before
    assert record["steps"] >= 1000 and record["seed"] == 0 and record["wall_s"] > 0
    assert record["curve"] and all(np.isfinite(r) for _, r in record["curve"])  # episodes ended: a curve to plot
    env = MultiAgentPowerGridEnv(task.config(TEST_DAYS[0]))
    policy = factory(env)
    day = play(env, policy)
    assert np.isfinite(day.objective) and day.failures == 0 and len(day.price) == env.max_ticks
    assert play(env, policy).objective == pytest.approx(day.objective)  # deterministic at evaluation


def test_the_untrained_residual_policy_plays_the_rule():
    """Residual RL starts at the rule: zero correction before any gradient step, same day objective."""
    for module in NEEDS["sb3_sac_residual"]:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    task = task_named("dispatch_mg")
    factory, record = train.sb3_sac_residual(task, minutes=30.0, seed=0, max_steps=24, learning_starts=48)
    assert record["steps"] >= 24
    env = MultiAgentPowerGridEnv(task.config(TEST_DAYS[0]))
    assert play(env, factory(env)).objective == pytest.approx(play(env, "rule").objective)


def test_the_features_hold_only_what_is_known_before_the_hour():
    """Day-ahead prices of the coming hours, yesterday's load and solar: none of today's actual load."""
    from powergrid.bench.residual import HORIZON, PRICE_UNIT, RuleResidual, yesterday

    env = MultiAgentPowerGridEnv(task_named("dispatch_mg").config(TEST_DAYS[0]))
    wrapped = RuleResidual(env)
    obs, _ = wrapped.reset(seed=0)
    obs, *_ = wrapped.step({"mg": np.zeros(3, np.float32)})
    n_act = 3
    extra = obs["mg"][-(n_act + 2 + 3 * HORIZON + 1):]
    assert extra[:n_act] == pytest.approx(env.rule_action("mg"))
    price = extra[n_act + 2: n_act + 2 + HORIZON]
    assert price * PRICE_UNIT == pytest.approx(env.ctx.profiles["price"][1:1 + HORIZON], rel=1e-5)
    load = extra[n_act + 2 + HORIZON: n_act + 2 + 2 * HORIZON] + 1.0
    past = yesterday(env, "load")
    assert load == pytest.approx(past[1:1 + HORIZON], rel=1e-5)
    assert not np.allclose(past[1:1 + HORIZON], env.ctx.profiles["load"][1:1 + HORIZON])  # not today's actuals


def test_the_oracle_demonstrations_replay_its_cost_through_the_residual_wrapper():
    """Corrections ``(oracle − rule)/scale`` sent through RuleResidual give the oracle's own day, hour by hour."""
    for module in NEEDS["sb3_sac_bc"]:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    from powergrid.bench.imitation import demonstrations
    from powergrid.bench.residual import RuleResidual
    from powergrid.bench.tasks import train_days

    task = task_named("p2p_trading")
    env = RuleResidual(MultiAgentPowerGridEnv(task.config()), scale=2.0)
    day = train_days(1)[0]
    demos = demonstrations(task, [day], scale=2.0, encode=train.shared_observation(env), action_size=5)
    assert demos.days == (day,) and not demos.failed
    assert demos.objectives[0] == pytest.approx(demos.oracle_objectives[0], rel=1e-6)
    assert demos.observations.shape == demos.next_observations.shape == (24, 3, env.observation_space("mg1").shape[0] + 3)
    assert demos.corrections.shape == (24, 3, 5) and np.abs(demos.corrections).max() <= 1.0
    assert np.abs(demos.corrections).max() > 0.1  # the oracle does not play the rule
    assert demos.dones.tolist() == [False] * 23 + [True]
    assert np.isfinite(demos.rewards).all()
    # a scale too small to reach the oracle's actions from the rule's is clipped: the day is no longer the oracle's
    small = demonstrations(task, [day], scale=0.25, encode=train.shared_observation(env), action_size=5)
    assert small.objectives[0] > demos.objectives[0] + 1.0


def test_behaviour_cloning_plays_its_demonstration_day_better_than_the_rule_then_sac_trains():
    """The cloned policy (no SAC step) beats the rule on its one demonstration day (chosen by ``days``, not the
    first training day); 1,000 SAC steps then run."""
    for module in NEEDS["sb3_sac_bc"]:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    from powergrid.bench.tasks import train_days

    task = task_named("dispatch_mg")
    day = train_days(2)[1]
    env = MultiAgentPowerGridEnv(task.config(day, split="train"))
    factory, record = train.sb3_bc(task, minutes=30.0, days=[day], bc_steps=2000)
    assert record["steps"] == 0 and record["demo_days"] == 1 and record["bc_mse"] < 0.01
    assert play(env, factory(env)).objective < play(env, "rule").objective - 1.0
    factory, record = train.sb3_sac_bc(task, minutes=30.0, max_steps=1000, demo_days=1, bc_steps=100, critic_steps=100)
    assert record["steps"] >= 1000 and record["oracle_s"] > 0 and np.isfinite(record["critic_loss"])
    test_env = MultiAgentPowerGridEnv(task.config(TEST_DAYS[0]))
    day = play(test_env, factory(test_env))
    assert np.isfinite(day.objective) and day.failures == 0

"""A 1,000-step training smoke of the benchmark's trained baseline (SB3 PPO + SuperSuit parameter sharing)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("supersuit")

from powergrid.bench.play import play
from powergrid.bench.tasks import TEST_DAYS, task_named
from powergrid.bench.train import sb3_ppo
from powergrid.env import MultiAgentPowerGridEnv


@pytest.mark.parametrize("name", ["dispatch_mg", "p2p_trading", "hierarchy"])
def test_sb3_ppo_with_parameter_sharing_trains_and_plays_a_test_day(name):
    task = task_named(name)
    factory, record = sb3_ppo(task, minutes=30.0, seed=0, max_steps=1000)
    assert record["steps"] >= 1000 and record["seed"] == 0 and record["wall_s"] > 0
    env = MultiAgentPowerGridEnv(task.config(TEST_DAYS[0]))
    day = play(env, factory(env))
    assert np.isfinite(day.objective) and day.failures == 0
    assert len(day.price) == env.max_ticks

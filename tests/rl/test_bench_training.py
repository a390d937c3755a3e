"""1,000-step training smokes of the benchmark's trained baselines, one per library:
SB3 PPO and SAC with SuperSuit parameter sharing, RLlib PPO, and TorchRL MAPPO (centralised critic)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from powergrid.bench import train
from powergrid.bench.play import play
from powergrid.bench.tasks import TEST_DAYS, task_named
from powergrid.env import MultiAgentPowerGridEnv

NEEDS = {"sb3_ppo": ("stable_baselines3", "supersuit"), "sb3_sac": ("stable_baselines3", "supersuit"),
         "rllib_ppo": ("ray",), "torchrl_mappo": ("torchrl", "supersuit")}


@pytest.mark.parametrize(("library", "name"), [
    ("sb3_ppo", "dispatch_mg"), ("sb3_ppo", "hierarchy"),  # one agent; two of different shapes (padded)
    ("sb3_sac", "p2p_trading"),  # three agents, one policy told apart by the agent indicator
    ("rllib_ppo", "p2p_trading"),
    ("torchrl_mappo", "p2p_trading"), ("torchrl_mappo", "hierarchy"),
])
def test_a_library_trains_1000_steps_and_plays_a_test_day(library, name):
    for module in NEEDS[library]:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    task = task_named(name)
    factory, record = getattr(train, library)(task, minutes=30.0, seed=0, max_steps=1000)
    assert record["steps"] >= 1000 and record["seed"] == 0 and record["wall_s"] > 0
    assert all(np.isfinite(r) for _, r in record["curve"])
    env = MultiAgentPowerGridEnv(task.config(TEST_DAYS[0]))
    policy = factory(env)
    day = play(env, policy)
    assert np.isfinite(day.objective) and day.failures == 0 and len(day.price) == env.max_ticks
    assert play(env, policy).objective == pytest.approx(day.objective)  # deterministic at evaluation

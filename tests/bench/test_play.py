"""bench.play: one seeded day under a policy."""

from __future__ import annotations

import gymnasium
import numpy as np

from powergrid.bench.play import play
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.evaluate import random_actions
from powergrid.plugins import make_registry
from tests.core.scenarios import load_local, two_feeders


def test_random_agents_of_equal_spaces_draw_their_own_actions():
    """'a' and 'b' have equal Box(0, 2) spaces: play seeded both with the seed, so they drew the same action at every
    tick; now each its own stream (evaluate.seed_action_spaces), the first agent's as a space seeded with the seed."""
    load_local()
    env = MultiAgentPowerGridEnv.from_config(two_feeders(), registry=make_registry(include_local=True))
    sent: list[dict] = []

    def spy(env: MultiAgentPowerGridEnv) -> dict:
        sent.append(random_actions(env))
        return sent[-1]

    play(env, spy, seed=4)
    assert env.action_space("a") == env.action_space("b") and len(sent) == 8
    assert not any(np.array_equal(s["a"], s["b"]) for s in sent)
    alone = gymnasium.spaces.Box(0.0, 2.0, (1,), np.float32)
    alone.seed(4)
    np.testing.assert_array_equal([s["a"] for s in sent], [alone.sample() for _ in sent])

"""VectorPowerGridEnv: N batched copies equal N independent environments step by step."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.plugins import make_registry
from powergrid.vector import VectorPowerGridEnv

from .scenarios import load_local, two_feeders


@pytest.fixture(scope="module")
def registry():
    load_local()
    return make_registry(include_local=True)


def test_three_copies_equal_three_independent_envs(registry):
    n, seed = 3, 5
    venv = VectorPowerGridEnv(two_feeders(), n, registry=registry)
    envs = [MultiAgentPowerGridEnv.from_config(two_feeders(), registry=registry) for _ in range(n)]
    obs, _ = venv.reset(seed=seed)
    singles = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    for a in venv.possible_agents:
        assert obs[a].shape == (n, venv.observation_space(a).shape[0])
        np.testing.assert_array_equal(obs[a], np.stack([s[a] for s in singles]))
    rng = np.random.default_rng(0)
    resets = 0
    for _ in range(20):  # episodes are 8 steps: copies auto-reset twice
        actions = {a: rng.uniform(0, 2, size=(n, *venv.action_space(a).shape)).astype(np.float32)
                   for a in venv.possible_agents}
        obs, rewards, terms, truncs, infos = venv.step(actions)
        for i, env in enumerate(envs):
            o, r, te, tr, info = env.step({a: actions[a][i] for a in env.agents})
            if not env.agents:
                resets += 1
                for a in o:
                    np.testing.assert_array_equal(infos[i]["final_observation"][a], o[a])
                assert infos[i]["final_info"]["a"]["cost"] == info["a"]["cost"]
                o, _ = env.reset()
            for a in venv.possible_agents:
                np.testing.assert_array_equal(obs[a][i], o[a])
                assert rewards[a][i] == r[a]
                assert terms[a][i] == te[a] and truncs[a][i] == tr[a]
                assert infos[i][a]["cost"] == info[a]["cost"]
    assert resets == 2 * n


def test_vector_needs_one_copy(registry):
    with pytest.raises(ValueError):
        VectorPowerGridEnv(two_feeders(), 0, registry=registry)

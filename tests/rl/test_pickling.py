"""RL workers receive environments pickled: every shipped scenario pickled before reset, after reset, mid-episode and
after close continues as the original does, bit for bit (SubprocVecEnv, Ray's object store, checkpoints)."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv

from .scenarios import CONFIGS

SHIPPED = sorted(p for p in [*CONFIGS.glob("*.yaml"), *CONFIGS.glob("bench/*.yaml")] if "hil" not in p.name)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("POWERGRID_OFFLINE", "1")


def _play(env: MultiAgentPowerGridEnv, seed: int, ticks: int = 10) -> str:
    """A digest of ``ticks`` seeded random steps (observations, rewards, dones, cost, safety); a finished episode is
    reset with a seed drawn from the same stream."""
    digest, rng = hashlib.sha256(), np.random.default_rng(seed)
    for _ in range(ticks):
        if not env.agents:
            env.reset(seed=int(rng.integers(1 << 30)))
        actions = {}
        for a in env.agents:
            space = env.action_space(a)
            space.seed(int(rng.integers(1 << 30)))
            actions[a] = space.sample()
        obs, rewards, terms, truncs, infos = env.step(actions)
        for a in sorted(obs):
            digest.update(np.asarray(obs[a], np.float64).tobytes())
        for a in sorted(rewards):
            info = infos[a]
            digest.update(np.array([rewards[a], terms[a], truncs[a], info["cost"], info["safety"]]).tobytes())
    return digest.hexdigest()


def _copy(env: MultiAgentPowerGridEnv) -> MultiAgentPowerGridEnv:
    return pickle.loads(pickle.dumps(env))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_a_pickled_env_continues_bit_for_bit(path):
    env = MultiAgentPowerGridEnv.from_config(path)
    copy = _copy(env)  # before the first reset
    env.reset(seed=3)
    copy.reset(seed=3)
    assert _play(copy, 1) == _play(env, 1)
    env.reset(seed=5)
    assert _play(_copy(env), 2) == _play(env, 2)  # just after a reset
    _play(env, 4, ticks=7)
    assert _play(_copy(env), 3, ticks=20) == _play(env, 3, ticks=20)  # mid-episode (and into the next episode)
    env.close()
    copy = _copy(env)  # after close: still a whole environment
    copy.reset(seed=6)
    env.reset(seed=6)
    assert _play(copy, 5) == _play(env, 5)


@pytest.mark.parametrize("name", ["lmp_market.yaml", "bench/p2p_trading.yaml"])
def test_a_pickled_env_asks_its_own_horizontal_protocols(name):
    """A setpoint rule asks the horizontal protocols it takes part in (``VerticalProtocol.horizontal``): in a copy,
    those of the copy, each once (a rule asking the original's market would read another env's state)."""
    env = MultiAgentPowerGridEnv.from_config(CONFIGS / name)
    env.reset(seed=3)
    copy = _copy(env)
    for e in (env, copy):
        for aid in ("mg1", "mg2", "mg3"):
            asked = e.scenario.agents[aid].protocol.horizontal
            assert len(asked) == 1 and asked[0] is e.scenario.horizontal[0]
    assert copy.scenario.horizontal[0] is not env.scenario.horizontal[0]

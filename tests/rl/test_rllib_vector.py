"""The batched RLlib vector env: equal to independent RLlibPowerGridEnv copies, and PPO trains through its runner."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

pytest.importorskip("ray.rllib")  # the rllib extra: nox -s rl_sb3 runs tests/rl without it

from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

from powergrid.errors import ActionError
from powergrid.rl.rllib import RLlibPowerGridEnv, module_per_agent
from powergrid.rl.rllib_vector import BatchedVectorMultiAgentEnv, VectorEnvRunner

from .scenarios import multi_rate, tap_changers


def test_copies_equal_independent_rllib_envs_with_multi_rate_agents():
    """Only due agents observe, held ticks are stepped together, finished copies reset at their next step."""
    n, steps = 3, 6  # 'slow' acts every 4 ticks: RLlib steps skip ticks where no agent is due
    vec = BatchedVectorMultiAgentEnv({"scenario": multi_rate(steps)}, n)
    singles = [RLlibPowerGridEnv({"scenario": multi_rate(steps)}) for _ in range(n)]
    obs, _ = vec.reset(seed=4)
    expected = [env.reset(seed=4 + i)[0] for i, env in enumerate(singles)]
    rng = np.random.default_rng(0)
    resets = 0
    for _ in range(14):
        for o, e in zip(obs, expected):
            assert set(o) == set(e)
            for a in o:
                np.testing.assert_allclose(o[a], e[a], atol=1e-4)
        actions = [{a: rng.uniform(-1, 1, 2 if a == "slow" else 3).astype(np.float32) for a in o} for o in obs]
        obs, rewards, terms, truncs, _ = vec.step(actions)
        for i, env in enumerate(singles):
            if not env.agents:  # finished at the last step: RLlib's next-step reset
                expected[i], _ = env.reset()
                resets += 1
                assert rewards[i] == {"slow": 0.0, "fast": 0.0} and truncs[i]["__all__"] is False
                continue
            e_obs, e_rew, e_term, e_trunc, _ = env.step(actions[i])
            expected[i] = e_obs
            assert set(rewards[i]) == set(e_rew) and terms[i] == e_term and truncs[i] == e_trunc
            for a in e_rew:
                assert rewards[i][a] == pytest.approx(e_rew[a], rel=1e-6, abs=1e-6)
    assert resets >= n


def test_discrete_actions_that_start_below_zero_are_shifted_as_in_the_rllib_env():
    """Learned tap changers (``Discrete(19, start=-9)``): each copy takes RLlib's actions 0 … 18 as
    :class:`RLlibPowerGridEnv` does (position ``k − 9``)."""
    n = 2
    vec = BatchedVectorMultiAgentEnv({"scenario": tap_changers()}, n)
    assert vec.single_action_spaces == {"t1": gymnasium.spaces.Discrete(19), "t12": gymnasium.spaces.Discrete(19)}
    singles = [RLlibPowerGridEnv({"scenario": tap_changers()}) for _ in range(n)]
    obs, _ = vec.reset(seed=1)
    expected = [env.reset(seed=1 + i)[0] for i, env in enumerate(singles)]
    for _ in range(6):
        for o, e in zip(obs, expected):
            for a in e:
                np.testing.assert_array_equal(o[a], e[a])
        actions = [{"t1": 0, "t12": 18}, {"t1": 18, "t12": 0}]
        obs, rewards, *_ = vec.step(actions)
        for i, env in enumerate(singles):
            expected[i], r, *_ = env.step(actions[i])
            assert rewards[i] == pytest.approx(r, rel=1e-9)
    assert [env.env.scenario.agents["t1"].device.position for env in vec.envs] == [-6, 6]


def test_ppo_trains_through_the_vector_env_runner(ray_session):
    config = (
        PPOConfig()
        .environment(RLlibPowerGridEnv, env_config={"scenario": multi_rate(12)})
        .env_runners(env_runner_cls=VectorEnvRunner, num_env_runners=0, num_envs_per_env_runner=4,
                     rollout_fragment_length="auto")
        .learners(num_learners=0)
        .training(train_batch_size_per_learner=96, minibatch_size=48, num_epochs=1, lr=3e-4)
        .rl_module(model_config={"fcnet_hiddens": [16, 16]})
        .multi_agent(policies={"slow", "fast"}, policy_mapping_fn=module_per_agent)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        runner = algo.env_runner
        assert isinstance(runner, VectorEnvRunner) and isinstance(runner, MultiAgentEnvRunner)
        assert isinstance(runner.env, BatchedVectorMultiAgentEnv) and runner.env.num_envs == 4
        result = algo.train()
        runners = result["env_runners"]
        assert runners["num_env_steps_sampled"] >= 96
        assert runners.get("num_episodes", 0) >= 1 or runners.get("num_episodes_lifetime", 0) >= 1
        assert np.isfinite(runners["episode_return_mean"])
        assert np.isfinite(result["learners"]["fast"]["total_loss"])
    finally:
        algo.stop()


def test_the_copies_of_each_env_runner_play_their_own_streams():
    """A scenario ``seed: 3``: copy ``i`` of runner ``w`` plays ``3 + 1000·w + i`` without ``config.seed`` (runners 1
    and 2 replayed copies 3 and 4 both) and ``5 + w + i + 1000·w`` with RLlib's ``config.seed = 5``."""
    from .test_rllib import _assert_same, _first_observations, _seeded_config

    for seed in (None, 5):
        config = _seeded_config(seed).env_runners(env_runner_cls=VectorEnvRunner, num_envs_per_env_runner=2)
        for worker in (1, 2):
            start = 3 if seed is None else seed + worker  # the scenario's seed, or RLlib's for runner w
            firsts = _first_observations(config, worker, VectorEnvRunner)
            assert len(firsts) == 2
            for i, first in enumerate(firsts):
                _assert_same(first, start + 1000 * worker + i)


@pytest.mark.parametrize("count", [1, 4])
def test_a_step_with_not_one_action_dict_per_copy_is_one_clear_error(count):
    """Fewer dicts than copies ended in "TypeError: 'NoneType' object is not iterable", more were dropped unseen."""
    vec = BatchedVectorMultiAgentEnv({"scenario": multi_rate(6)}, 3)
    obs, _ = vec.reset(seed=0)
    with pytest.raises(ActionError, match=rf"expected one action dict per copy \(3\), got {count}"):
        vec.step([{a: np.zeros(2 if a == "slow" else 3, np.float32) for a in obs[0]}] * count)
    assert [env.env.tick for env in vec.envs] == [0, 0, 0]
    vec.close()
    vec.close()  # twice: nothing left to close


def test_a_rejected_step_leaves_the_copies_due_for_a_reset_unreset():
    """A copy's action rejected (a wrong shape) at the step where another copy is due for its next-step reset: nothing
    moved, so the retried step resets that copy once and returns what a vector env without the rejected step does
    (before, the rejected step had already reset it and the retry reset it again: its next episode's stream)."""

    def fast(obs: list[dict]) -> list[dict]:
        return [{a: np.full(2 if a == "slow" else 3, 0.5, np.float32) for a in o} for o in obs]

    runs = []
    for rejected in (True, False):
        vec = BatchedVectorMultiAgentEnv({"scenario": multi_rate(6)}, 2)
        obs, _ = vec.reset(seed=0)
        obs[1] = vec.envs[1].step(fast(obs)[1])[0]  # copy 1 one step ahead: it finishes first
        for _ in range(5):
            obs = vec.step(fast(obs))[0]
        assert [env.env.tick for env in vec.envs] == [5, 6] and list(vec._autoreset) == [False, True]
        if rejected:
            with pytest.raises(ActionError):
                vec.step([{"fast": np.zeros(7, np.float32)}, {}])
            assert [env.env.tick for env in vec.envs] == [5, 6]  # copy 1 finished, not reset
        runs.append(vec.step(fast(obs)))
        vec.close()
    (obs_a, rew_a, *_), (obs_b, rew_b, *_) = runs
    assert rew_a == rew_b
    for a, b in zip(obs_a, obs_b):
        assert set(a) == set(b)
        for agent in a:
            np.testing.assert_array_equal(a[agent], b[agent])


def test_ray_before_2_44_is_refused_at_import(monkeypatch):
    """Ray 2.43 ships ``VectorMultiAgentEnv`` but a single-env ``MultiAgentEnvRunner``: the runner would import, then
    break inside RLlib's sampling."""
    import importlib
    import sys

    import ray

    monkeypatch.setattr(ray, "__version__", "2.43.0")
    monkeypatch.delitem(sys.modules, "powergrid.rl.rllib_vector")
    with pytest.raises(ImportError, match=r"needs ray\[rllib\] 2.44 or later .*; found ray 2.43.0"):
        importlib.import_module("powergrid.rl.rllib_vector")

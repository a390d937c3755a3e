"""The single-agent gymnasium view against Stable-Baselines3: its env checker, PPO in spawned workers, evaluation."""

from __future__ import annotations

import pickle
from functools import partial

import gymnasium
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.rl.gym import SingleAgentView, rule_policy

from .scenarios import CONFIGS, MICROGRID, multi_rate, tap_changers


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("POWERGRID_OFFLINE", "1")  # ieee34_3mg runs on the CAISO 2023 data shipped with the dataset pack


@pytest.mark.parametrize(("scenario", "agent"), [
    (MICROGRID, "mg1"),
    (str(CONFIGS / "ieee34_3mg.yaml"), "mg2"),
    (multi_rate(), "slow"),
    (multi_rate(), "fast"),
])
def test_sb3_env_checker_passes(scenario, agent):
    check_env(SingleAgentView(scenario, agent), warn=False)


def test_others_follow_their_rule_and_cost_is_in_info():
    view = SingleAgentView(str(CONFIGS / "ieee34_3mg.yaml"), "mg1")
    reference = MultiAgentPowerGridEnv.from_config(str(CONFIGS / "ieee34_3mg.yaml"))
    obs, _ = view.reset(seed=5)
    reference.reset(seed=5)
    action = view.action_space.high
    for _ in range(6):
        actions = {a: rule_policy(reference, a) for a in ("mg2", "mg3")} | {"mg1": action}
        ref_obs, ref_rewards, _, _, ref_infos = reference.step(actions)
        obs, reward, terminated, truncated, info = view.step(action)
        np.testing.assert_array_equal(obs, ref_obs["mg1"])
        assert reward == ref_rewards["mg1"]
        assert info["cost"] == ref_infos["mg1"]["cost"] and info["safety"] == ref_infos["mg1"]["safety"]
        assert not terminated and not truncated


def test_multi_rate_view_sums_the_ticks_it_holds():
    view = SingleAgentView(multi_rate(10), "slow", policies={"fast": lambda env, aid, obs: env.action_space(aid).low})
    reference = MultiAgentPowerGridEnv.from_config(multi_rate(10))
    view.reset(seed=2)
    reference.reset(seed=2)
    rewards, ticks = [], []
    truncated = False
    while not truncated:
        _, reward, _, truncated, info = view.step(view.action_space.high)
        rewards.append(reward)
        ticks.append(info["ticks"])
    assert ticks == [4, 4, 2]
    per_tick = []
    while reference.agents:
        actions = {"fast": reference.action_space("fast").low, "slow": reference.action_space("slow").high}
        per_tick.append(reference.step(actions)[1]["slow"])
    np.testing.assert_allclose(rewards, [sum(per_tick[0:4]), sum(per_tick[4:8]), sum(per_tick[8:10])], rtol=1e-12)


def test_the_view_sums_the_penalties_of_the_ticks_it_holds():
    """``on_divergence: penalize``: a flow fails while the viewed 'slow' holds its action: its summed reward and its
    ``penalty`` both carry the charge."""
    config = multi_rate(10)
    config["reward"]["on_divergence"] = "penalize"
    for agent in config["agents"]:
        if agent["id"] == "fast_ess":  # 400 MW at full charge: no flow converges on the MV feeder
            agent["params"] = {"p_max_mw": 400.0, "capacity_mwh": 4000.0}
    view = SingleAgentView(config, "slow", policies={
        "fast": lambda env, aid, obs: np.full(3, -1.0 if env.tick == 1 else 0.0, np.float32)})
    view.reset(seed=0)
    _, reward, _, _, info = view.step(np.zeros(2, np.float32))
    assert info["ticks"] == 4 and info["converged"] is False
    assert info["penalty"] >= view.env.config.reward.divergence_per_step(view.env.dt_h)  # 1000 at 15 min
    rw = view.env.config.reward  # infos carry every term of the reward: a constrained-RL user recovers it exactly
    assert reward == pytest.approx(-(rw.cost_weight * info["cost"] + rw.safety_per_step(view.env.dt_h) * info["safety"])
                                   - info["penalty"], rel=1e-12)


@pytest.mark.parametrize("played", [0, 5])
def test_a_pickled_view_continues_bit_for_bit(played):
    """A copy pickled after reset or mid-episode (a SubprocVecEnv worker's) plays on exactly as the original: same
    observations, rewards and costs to the last bit (the test compared one reward to 1e-9, calling copies inexact)."""
    view = SingleAgentView(MICROGRID, "mg1")
    view.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(played):
        view.step(rng.uniform(view.action_space.low, view.action_space.high).astype(np.float32))
    clone = pickle.loads(pickle.dumps(view))
    for k in range(12):
        action = view.action_space.low if k % 3 == 0 else rng.uniform(view.action_space.low, view.action_space.high)
        obs, reward, terminated, truncated, info = view.step(np.asarray(action, np.float32))
        o, r, te, tr, i = clone.step(np.asarray(action, np.float32))
        assert obs.tobytes() == o.tobytes() and (reward, terminated, truncated) == (r, te, tr)
        assert (info["cost"], info["safety"]) == (i["cost"], i["safety"])


def test_ppo_learns_in_spawned_subprocesses_and_evaluates():
    make = partial(SingleAgentView, MICROGRID, "mg1")
    venv = SubprocVecEnv([make, make], start_method="spawn")
    try:
        model = PPO("MlpPolicy", venv, n_steps=128, batch_size=64, n_epochs=2, seed=0, device="cpu",
                    policy_kwargs={"net_arch": [32, 32]})
        model.learn(total_timesteps=512)
        assert model.num_timesteps >= 512
        mean, std = evaluate_policy(model, Monitor(SingleAgentView(MICROGRID, "mg1")), n_eval_episodes=2)
        assert np.isfinite(mean) and np.isfinite(std)
    finally:
        venv.close()


def test_supersuit_vectorises_the_parallel_env_for_parameter_sharing():
    """SuperSuit's pettingzoo_env_to_vec_env_v1 needs render_mode and equal spaces (parameter sharing)."""
    import supersuit as ss

    env = MultiAgentPowerGridEnv.from_config(str(CONFIGS / "ieee34_3mg.yaml"))
    assert env.render_mode is None
    vec = ss.pettingzoo_env_to_vec_env_v1(env)
    vec = ss.concat_vec_envs_v1(vec, 2, num_cpus=0, base_class="stable_baselines3")
    obs = vec.reset()
    assert obs.shape == (2 * len(env.possible_agents), env.observation_space("mg1").shape[0])
    actions = np.stack([vec.action_space.sample() for _ in range(obs.shape[0])])
    obs, rewards, dones, _ = vec.step(actions)
    assert dones.shape == (obs.shape[0],)
    assert np.isfinite(obs).all() and np.isfinite(rewards).all()
    vec.close()


def test_discrete_actions_that_start_below_zero_are_shifted_to_sb3s_range():
    """A learned tap changer (``Discrete(19, start=-9)``): SB3 samples 0 … 18 only (positions below neutral were
    unreachable), so the view exposes ``Discrete(19)`` and its action ``k`` is position ``k − 9``, as PowerGridVecEnv."""
    view = SingleAgentView(tap_changers(), "t1", policies=lambda env, aid, obs: 9)
    assert view.action_space == gymnasium.spaces.Discrete(19) and view.action_start == -9
    check_env(view, warn=False)
    model = PPO("MlpPolicy", DummyVecEnv([lambda: view]), n_steps=16, batch_size=16, device="cpu", seed=0)
    assert model.action_space == gymnasium.spaces.Discrete(19)
    single = MultiAgentPowerGridEnv.from_config(tap_changers())
    obs = model.env.reset()
    o, _ = single.reset(seed=0)
    for _ in range(6):
        np.testing.assert_array_equal(obs[0], o["t1"])
        obs, rewards, _, _ = model.env.step(np.zeros(1, np.int64))
        o, r, _, _, _ = single.step({"t1": -9, "t12": 9})
        assert rewards[0] == pytest.approx(r["t1"], rel=1e-6)
    assert view.env.scenario.agents["t1"].device.position == -6  # one position per tick from 0

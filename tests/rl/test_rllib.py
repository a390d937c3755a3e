"""The RLlib adapter against RLlib itself: its env checker, multi-rate semantics, and PPO in a Ray worker."""

from __future__ import annotations

import os
import pickle

import gymnasium
import numpy as np
import pytest

pytest.importorskip("ray.rllib")  # the rllib extra: nox -s rl_sb3 runs tests/rl without it

import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.env.env_context import EnvContext
from ray.rllib.env.multi_agent_env import MultiAgentEnv
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.rllib.utils.pre_checks.env import check_multiagent_environments

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.rl.rllib import RLlibPowerGridEnv, module_per_agent, register

from .scenarios import MICROGRID, multi_rate, tap_changers


def test_rllib_env_checker_passes():
    # ``ray.rllib.utils.check_env`` is gone from current Ray; this is the check RLlib's MultiAgentEnvRunner runs.
    env = RLlibPowerGridEnv({"scenario": MICROGRID})
    assert isinstance(env, MultiAgentEnv)
    check_multiagent_environments(env)
    multi = RLlibPowerGridEnv({"scenario": multi_rate()})
    check_multiagent_environments(multi)
    assert multi.possible_agents == ["slow", "fast"]
    assert set(multi.observation_spaces) == set(multi.action_spaces) == {"slow", "fast"}
    assert multi.get_action_space("slow") == multi.env.action_space("slow")


def test_only_due_agents_observe_and_rewards_sum_the_skipped_ticks():
    steps = 10
    rl = RLlibPowerGridEnv({"scenario": multi_rate(steps)})
    pz = MultiAgentPowerGridEnv.from_config(multi_rate(steps))
    obs, infos = rl.reset(seed=7)
    pz_obs, _ = pz.reset(seed=7)
    assert set(obs) == {"slow", "fast"}
    rng = np.random.default_rng(0)
    held = {}
    per_tick: list[dict[str, float]] = []  # the PettingZoo env's rewards, tick by tick
    delivered: list[tuple[int, dict[str, float]]] = []  # (tick after the step, rewards) from RLlib
    seen: list[set[str]] = [set(obs)]
    done = False
    while not done:
        tick = rl.env.tick
        for a in obs:
            np.testing.assert_array_equal(obs[a], pz_obs[a])
            assert rl.observation_spaces[a].contains(obs[a])
        actions = {a: rng.uniform(rl.action_spaces[a].low, rl.action_spaces[a].high).astype(np.float32) for a in obs}
        held.update(actions)
        obs, rewards, terminateds, truncateds, infos = rl.step(actions)
        # the same actions in the PettingZoo env, tick by tick, until RLlib's step returned
        while pz.tick < rl.env.tick:
            pz_obs, pz_rewards, _, _, _ = pz.step(actions if pz.tick == tick else {})
            per_tick.append(pz_rewards)
        done = truncateds["__all__"]
        assert terminateds["__all__"] is False
        delivered.append((rl.env.tick, rewards))
        seen.append(set(obs))
        assert set(rewards) == set(obs) == set(infos) == set(terminateds) - {"__all__"}
        for a in obs:
            assert {"cost", "safety", "converged", "ticks"} <= set(infos[a])
    assert rl.env.tick == pz.tick == steps
    # due agents only: slow at ticks 0, 4, 8; at the end (tick 10) everyone gets a final observation
    assert seen == [{"slow", "fast"}, {"fast"}, {"fast"}, {"fast"}, {"slow", "fast"}, {"fast"}, {"fast"}, {"fast"},
                    {"slow", "fast"}, {"fast"}, {"slow", "fast"}]
    assert [t for t, r in delivered if "slow" in r] == [4, 8, 10]
    # the slow agent's rewards: the per-tick rewards summed over the ticks it held its action
    slow = [r["slow"] for t, r in delivered if "slow" in r]
    expected = [sum(r["slow"] for r in per_tick[a:b]) for a, b in ((0, 4), (4, 8), (8, 10))]
    np.testing.assert_allclose(slow, expected, rtol=1e-12)
    assert any(abs(x) > 0 for x in slow)
    fast = [r["fast"] for _, r in delivered]
    np.testing.assert_allclose(fast, [r["fast"] for r in per_tick], rtol=1e-12)
    assert infos["slow"]["ticks"] == 2 and infos["fast"]["ticks"] == 1


def test_cost_and_safety_are_summed_like_the_reward():
    rl = RLlibPowerGridEnv({"scenario": multi_rate(8)})
    weights, safety_w = rl.env.config.reward, rl.env.config.reward.safety_per_step(rl.env.dt_h)
    obs, _ = rl.reset(seed=1)
    checked = 0
    while obs:
        obs, rewards, _, truncateds, infos = rl.step({a: rl.action_spaces[a].sample() for a in obs})
        for a, reward in rewards.items():
            info = infos[a]
            assert np.isfinite(info["cost"]) and info["safety"] >= 0
            if info["converged"]:  # no divergence penalty in the reward
                expected = -(weights.cost_weight * info["cost"] + safety_w * info["safety"])
                assert reward == pytest.approx(expected, rel=1e-9, abs=1e-9)
                checked += 1
        if truncateds["__all__"]:
            break
    assert checked >= 8
    assert rl.agents == []


def test_pickles():
    env = RLlibPowerGridEnv({"scenario": multi_rate()})
    obs, _ = env.reset(seed=3)
    clone = pickle.loads(pickle.dumps(env))
    a = env.step({k: env.action_spaces[k].low for k in obs})
    b = clone.step({k: clone.action_spaces[k].low for k in obs})
    assert a[1] == b[1]


def _ppo(scenario, agents, *, batch: int) -> PPOConfig:
    return (
        PPOConfig()
        .environment(register(), env_config={"scenario": scenario})
        .env_runners(num_env_runners=1, num_envs_per_env_runner=1, rollout_fragment_length="auto")
        .learners(num_learners=0)
        .training(train_batch_size_per_learner=batch, minibatch_size=64, num_epochs=1, lr=3e-4)
        .rl_module(model_config={"fcnet_hiddens": [32, 32]})
        .multi_agent(policies=set(agents), policy_mapping_fn=module_per_agent)
        .debugging(seed=0)
    )


@pytest.mark.parametrize(("scenario", "agents", "batch"), [
    pytest.param(MICROGRID, ["mg1"], 192, id="cigre_mv_microgrid"),
    pytest.param(multi_rate(12), ["slow", "fast"], 96, id="multi_rate"),
])
def test_ppo_trains_in_a_ray_worker(ray_session, scenario, agents, batch):
    config = _ppo(scenario, agents, batch=batch)
    algo = config.build_algo() if hasattr(config, "build_algo") else config.build()  # build_algo: Ray ≥ 2.43
    try:
        group = algo.env_runner_group
        foreach = getattr(group, "foreach_env_runner", None) or group.foreach_worker  # renamed in Ray 2.4x
        worker_pids = foreach(lambda runner: os.getpid(), local_env_runner=False)
        assert worker_pids and os.getpid() not in worker_pids  # the env was rebuilt in a Ray worker process
        for _ in range(2):
            result = algo.train()
        runners = result["env_runners"]
        assert runners["num_episodes"] >= 1 or runners.get("num_episodes_lifetime", 0) >= 1
        assert np.isfinite(runners["episode_return_mean"])
        for agent in agents:
            assert np.isfinite(runners["agent_episode_returns_mean"][agent])
    finally:
        algo.stop()


@ray.remote
def _step_in_a_worker(env: MultiAgentPowerGridEnv) -> float:
    """An env that arrived as a task argument (through the object store): reset and step it there."""
    env.reset(seed=3)
    _, rewards, _, _, _ = env.step({a: env.action_space(a).sample() for a in env.agents})
    return float(sum(rewards.values()))


@ray.remote
class _Holder:
    def make(self) -> MultiAgentPowerGridEnv:
        return MultiAgentPowerGridEnv.from_config(MICROGRID)


def test_an_env_travels_through_the_object_store_and_still_runs(ray_session):
    """Ray hands numpy buffers back read-only; the env must reset and step after ray.put/get, as a task
    argument, as an actor's return value, and inside RLlibPowerGridEnv in a worker."""
    env = MultiAgentPowerGridEnv.from_config(MICROGRID)
    env.reset(seed=0)
    back = ray.get(ray.put(env))
    back.reset(seed=0)
    back.step({a: back.action_space(a).sample() for a in back.agents})
    assert np.isfinite(ray.get(_step_in_a_worker.remote(env)))
    holder = _Holder.remote()
    made = ray.get(holder.make.remote())
    made.reset(seed=1)
    made.step({a: made.action_space(a).sample() for a in made.agents})
    wrapped = RLlibPowerGridEnv({"scenario": ray.get(ray.put(env))})
    obs, _ = wrapped.reset(seed=2)
    wrapped.step({a: wrapped.action_spaces[a].sample() for a in obs})


def test_discrete_actions_that_start_below_zero_are_shifted_to_rllibs_range():
    """Learned tap changers (``Discrete(19, start=-9)``): RLlib samples 0 … 18, so the adapter exposes ``Discrete(19)``
    and its action ``k`` is position ``k − 9`` (action 0 drives the taps down as -9 does in the PettingZoo env)."""
    env = RLlibPowerGridEnv({"scenario": tap_changers()})
    assert env.action_spaces == {"t1": gymnasium.spaces.Discrete(19), "t12": gymnasium.spaces.Discrete(19)}
    check_multiagent_environments(env)
    single = MultiAgentPowerGridEnv.from_config(tap_changers())
    obs, _ = env.reset(seed=0)
    o, _ = single.reset(seed=0)
    for _ in range(6):
        for a in o:
            np.testing.assert_array_equal(obs[a], o[a])
        obs, rewards, *_ = env.step({"t1": 0, "t12": 18})
        o, r, _, _, info = single.step({"t1": -9, "t12": 9})
        assert rewards == pytest.approx(r, rel=1e-9)
    assert info["t1"]["projection"] > 0 and info["t12"]["projection"] > 0  # one position per tick: still moving


def test_a_failed_flow_between_two_actions_is_in_the_penalty_the_reward_carries():
    """``on_divergence: penalize``: the flow fails at a tick where 'slow' (period 4) holds its action; the penalty in
    slow's summed reward is in its summed ``penalty`` (it read 0: only the last tick's was reported)."""
    config = multi_rate(10)
    config["reward"]["on_divergence"] = "penalize"
    for agent in config["agents"]:
        if agent["id"] == "fast_ess":  # 400 MW at full charge: no flow converges on the MV feeder
            agent["params"] = {"p_max_mw": 400.0, "capacity_mwh": 4000.0}
    rl = RLlibPowerGridEnv({"scenario": config})
    penalty = rl.env.config.reward.divergence_per_step(rl.env.dt_h)  # 1000 at 15 min
    obs, _ = rl.reset(seed=0)
    for tick in range(4):  # 'fast' fails the flow at tick 1 only; 'slow' is next due at tick 4
        actions = {a: np.zeros(rl.action_spaces[a].shape, np.float32) for a in obs}
        if tick == 1:
            actions["fast"][:] = -1.0
        obs, rewards, _, _, infos = rl.step(actions)
    assert set(rewards) == {"slow", "fast"} and infos["slow"]["ticks"] == 4
    slow = infos["slow"]
    assert slow["converged"] is False and slow["penalty"] >= penalty
    rw = rl.env.config.reward  # infos carry every term of the reward: a constrained-RL user recovers it exactly
    assert rewards["slow"] == pytest.approx(-(rw.cost_weight * slow["cost"] + rw.safety_per_step(rl.env.dt_h) * slow["safety"])
                                            - slow["penalty"], rel=1e-12)
    assert infos["fast"]["penalty"] == 0.0  # its own tick's flow converged


def _first_observations(config: PPOConfig, worker_index: int, runner_cls: type = MultiAgentEnvRunner) -> list[dict]:
    """Each copy's first observations in RLlib env runner ``worker_index`` (built here, as a Ray worker builds it)."""
    runner = runner_cls(config=config, worker_index=worker_index)
    try:
        episodes = runner.sample(num_episodes=runner.num_envs, random_actions=True)
        return [episode.get_observations(0) for episode in episodes[:runner.num_envs]]
    finally:
        runner.stop()


def _seeded_config(seed: int | None = None, *, check: bool = False) -> PPOConfig:
    """A scenario with a top-level ``seed: 3`` (as volt_var.yaml and 8 other shipped configs), two env runners; RLlib's
    env check (``check``) resets every env it builds with ``seed=42``."""
    return (
        PPOConfig()
        .environment(RLlibPowerGridEnv, env_config={"scenario": dict(multi_rate(4), seed=3)},
                     disable_env_checking=not check)
        .env_runners(num_env_runners=2, num_envs_per_env_runner=1)
        .rl_module(model_config={"fcnet_hiddens": [8]})
        .multi_agent(policies={"slow", "fast"}, policy_mapping_fn=module_per_agent)
        .debugging(seed=seed)
    )


def _assert_same(first: dict, *seeds: int | None) -> None:
    """``first`` are the observations of a single env of the scenario after ``reset(seed=s)`` for each of ``seeds``."""
    env = MultiAgentPowerGridEnv.from_config(dict(multi_rate(4), seed=3))
    for seed in seeds:
        expected, _ = env.reset(seed=seed)
    for agent, obs in first.items():
        np.testing.assert_array_equal(obs, expected[agent])


def test_env_runners_do_not_replay_one_anothers_episodes():
    """Runner ``w`` shifts every seed by 1000·w. Without ``config.seed`` RLlib resets with ``seed=None``, after its env
    check's ``reset(seed=42)``: every runner replayed seed 42's episodes (or, unchecked, the scenario seed's)."""
    for worker in (1, 2):
        (first,) = _first_observations(_seeded_config(check=True), worker)
        _assert_same(first, 42 + 1000 * worker, None)
        (first,) = _first_observations(_seeded_config(), worker)
        _assert_same(first, 3 + 1000 * worker)
        (first,) = _first_observations(_seeded_config(seed=5), worker)
        _assert_same(first, 5 + worker + 1000 * worker)  # RLlib's own seed for runner w, shifted


def test_an_env_context_shifts_every_seed():
    scenario = dict(multi_rate(4), seed=3)
    for worker, vector in ((0, 0), (0, 2), (1, 1)):
        env = RLlibPowerGridEnv(EnvContext({"scenario": scenario}, worker_index=worker, vector_index=vector))
        offset = 1000 * worker + vector
        _assert_same(env.reset()[0], 3 + offset)
        _assert_same(env.reset(seed=7)[0], 7 + offset)
        assert env.seed_offset == offset
    with pytest.raises(ValueError, match="vector_index"):
        RLlibPowerGridEnv(EnvContext({"scenario": scenario}, worker_index=1, vector_index=1000))

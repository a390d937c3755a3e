"""Trained baselines: Stable-Baselines3 PPO with one policy shared by every learned agent (SuperSuit).

Parameter sharing: SuperSuit pads every agent's observation and action to the largest one
(``pad_observations_v0``, ``pad_action_space_v0``) and turns the PettingZoo parallel env into a
vector env with one slot per agent (``pettingzoo_env_to_vec_env_v1``), so one PPO policy acts for
all. Training runs on the task's ``train`` days with rewards scaled by ``VecNormalize`` (the
curve reports the unscaled returns); evaluation on the test days is deterministic.
Needs the ``bench`` extra (torch 2.13.0, stable-baselines3, supersuit).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from powergrid.bench.tasks import Task
from powergrid.env import MultiAgentPowerGridEnv


def sb3_ppo(task: Task, *, minutes: float, seed: int = 0, max_steps: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Train SB3 PPO (parameter sharing) for ``minutes`` of wall time or ``max_steps`` env steps.

    Returns ``(factory, record)``: ``factory(env)`` gives a policy function for
    :func:`powergrid.bench.play.play`; ``record`` holds the seed, steps, wall time and the curve
    ``[(steps, mean episode return)]``.
    """
    import supersuit as ss
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.utils import set_random_seed
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    env = MultiAgentPowerGridEnv(task.config())
    env.reset(seed=seed)  # SuperSuit's vector env has no seed(): the env's own stream is seeded here
    padded = ss.pad_action_space_v0(ss.pad_observations_v0(env))
    monitored = VecMonitor(ss.concat_vec_envs_v1(ss.pettingzoo_env_to_vec_env_v1(padded), 1,
                                                 base_class="stable_baselines3"))
    # rewards are −50 to −500 $ per hour: PPO learns on them scaled by a running return deviation
    vec = VecNormalize(monitored, norm_obs=False, norm_reward=True, gamma=0.99)
    set_random_seed(seed)
    model = PPO("MlpPolicy", vec, n_steps=max(24, 2048 // vec.num_envs), batch_size=64, gamma=0.99,
                learning_rate=3e-4, verbose=0, device="cpu")
    curve: list[tuple[int, float]] = []
    deadline = time.perf_counter() + 60.0 * minutes

    class Stop(BaseCallback):
        def _on_step(self) -> bool:
            buf = self.model.ep_info_buffer
            if buf and self.num_timesteps % 512 < vec.num_envs:
                curve.append((self.num_timesteps, float(np.mean([e["r"] for e in buf]))))
            return time.perf_counter() < deadline

    started = time.perf_counter()
    model.learn(total_timesteps=max_steps or 10**9, callback=Stop())
    record = {"library": "stable-baselines3 PPO + SuperSuit", "seed": seed, "steps": int(model.num_timesteps),
              "wall_s": round(time.perf_counter() - started, 1), "curve": curve}
    obs_dim = int(max(np.prod(env.observation_space(a).shape) for a in env.possible_agents))

    def factory(_: Any) -> Any:
        def act(e: Any, observations: dict[str, np.ndarray]) -> dict[str, Any]:
            out = {}
            for agent_id in e.agents:
                obs = np.asarray(observations[agent_id], np.float32).reshape(-1)
                x = np.zeros(obs_dim, np.float32)
                x[: obs.size] = obs
                action, _ = model.predict(x, deterministic=True)
                shape = e.action_space(agent_id).shape
                out[agent_id] = np.asarray(action, np.float32)[: int(np.prod(shape))].reshape(shape)
            return out

        act.observes = True  # type: ignore[attr-defined]
        return act

    return factory, record


def rllib_ppo(task: Task, *, minutes: float, seed: int = 0, max_steps: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Train RLlib PPO (new API stack, one module per learned agent, one env-runner worker).

    Stops after ``minutes`` of wall time or ``max_steps`` sampled env steps (checked after each
    ``train()`` iteration of 480 steps). Returns ``(factory, record)`` as :func:`sb3_ppo`; the
    policy acts with the mean of each module's Gaussian.
    """
    import ray
    import torch
    from ray.rllib.algorithms.ppo import PPOConfig

    from powergrid.rl.rllib import module_per_agent, register

    env = MultiAgentPowerGridEnv(task.config())
    config = (
        PPOConfig()
        .environment(register(), env_config={"scenario": str(task.config_path().resolve())})
        .env_runners(num_env_runners=1, num_envs_per_env_runner=1, rollout_fragment_length="auto")
        .learners(num_learners=0)
        .training(train_batch_size_per_learner=480, minibatch_size=96, num_epochs=4, lr=3e-4, gamma=0.99,
                  vf_clip_param=1e5)
        .rl_module(model_config={"fcnet_hiddens": [64, 64]})
        .multi_agent(policies=set(env.possible_agents), policy_mapping_fn=module_per_agent)
        .debugging(seed=seed)
    )
    started = time.perf_counter()
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    algo = config.build_algo()
    curve: list[tuple[int, float]] = []
    steps = 0
    while time.perf_counter() - started < 60.0 * minutes and (max_steps is None or steps < max_steps):
        result = algo.train()
        steps = int(result["env_runners"].get("num_env_steps_sampled_lifetime", steps))
        ret = result["env_runners"].get("episode_return_mean")
        if ret is not None and np.isfinite(ret):
            curve.append((steps, float(ret)))
    modules = {a: algo.get_module(a) for a in env.possible_agents}
    record = {"library": f"RLlib PPO {ray.__version__}", "seed": seed, "steps": steps,
              "wall_s": round(time.perf_counter() - started, 1), "curve": curve}

    def factory(_: Any) -> Any:
        def act(e: Any, observations: dict[str, np.ndarray]) -> dict[str, Any]:
            out = {}
            for agent_id in e.agents:
                obs = torch.as_tensor(np.asarray(observations[agent_id], np.float32)[None])
                with torch.no_grad():
                    logits = modules[agent_id].forward_inference({"obs": obs})["action_dist_inputs"][0].numpy()
                shape = e.action_space(agent_id).shape
                n = int(np.prod(shape))
                out[agent_id] = np.clip(logits[:n], -1.0, 1.0).astype(np.float32).reshape(shape)
            return out

        act.observes = True  # type: ignore[attr-defined]
        return act

    return factory, record

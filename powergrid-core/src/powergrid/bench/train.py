"""Trained baselines: Stable-Baselines3 PPO and SAC with one policy shared by every learned agent
(SuperSuit), RLlib PPO, and TorchRL MAPPO.

Parameter sharing: SuperSuit pads every agent's observation and action to the largest one
(``pad_observations_v0``, ``pad_action_space_v0``), appends a one-hot agent indicator when there
are several agents, and turns the PettingZoo parallel env into a vector env with one slot per agent
(``pettingzoo_env_to_vec_env_v1``), so one SB3 policy acts for all. Training runs on the task's
``train`` days (PPO's rewards scaled by ``VecNormalize``, SAC's by a constant; the curve reports
the unscaled returns); evaluation on the test days is deterministic.
Needs the ``sb3``, ``rllib`` or ``mappo`` extra (torch 2.13.0 and the library).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from powergrid.bench.residual import RuleResidual
from powergrid.bench.tasks import Task, train_days
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.evaluate import learned_roots


def _sb3_vec(task: Task, seed: int, reward_scale: float | None,
             residual: float | None = None) -> tuple[Any, Any]:
    """The task as an SB3 vector env with one slot per learned agent (SuperSuit padding), and the env it wraps.

    ``residual``: the env wrapped in :class:`~powergrid.bench.residual.RuleResidual` with this scale
    (actions are corrections to the rule, observations carry the day-ahead features).

    With several agents, each observation ends with SuperSuit's one-hot agent indicator, so the
    shared policy knows whose devices it sets. ``reward_scale``: rewards multiplied by this constant; ``None``: scaled by ``VecNormalize``'s
    running return deviation. Episode returns are monitored (for the curve) before any scaling.
    """
    import supersuit as ss
    from stable_baselines3.common.vec_env import VecEnvWrapper, VecMonitor, VecNormalize

    env = MultiAgentPowerGridEnv(task.config())
    if residual is not None:
        env = RuleResidual(env, scale=residual)
    env.reset(seed=seed)  # SuperSuit's vector env has no seed(): the env's own stream is seeded here
    padded = ss.pad_action_space_v0(ss.pad_observations_v0(env))
    if len(env.possible_agents) > 1:
        padded = ss.agent_indicator_v0(padded)
    scale = 1.0 if reward_scale is None else reward_scale

    class Scaled(VecEnvWrapper):
        """``dones`` as a bool array (SuperSuit gives a list, VecNormalize indexes with it); rewards × ``scale``."""

        def reset(self) -> Any:
            return self.venv.reset()

        def step_wait(self) -> Any:
            obs, rewards, dones, infos = self.venv.step_wait()
            return obs, np.asarray(rewards, np.float32) * scale, np.asarray(dones, bool), infos

    # every SB3 wrapper probes render_mode through get_attr, which SuperSuit's ConcatVecEnv lacks (it is None)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The `render_mode` attribute is not defined", category=UserWarning)
        vec = Scaled(VecMonitor(ss.concat_vec_envs_v1(ss.pettingzoo_env_to_vec_env_v1(padded), 1,
                                                      base_class="stable_baselines3")))
        if reward_scale is None:
            vec = VecNormalize(vec, norm_obs=False, norm_reward=True, gamma=0.99)
    return vec, env


def shared_observation(env: Any) -> Callable[[str, Any], np.ndarray]:
    """What the shared SB3 policy sees of an agent's observation of ``env``, as :func:`_sb3_vec` builds it.

    Returns ``encode(agent_id, obs)``: the observation zero-padded to the largest agent's, then, with
    several agents, SuperSuit's one-hot agent indicator (the padded space's largest bound at the
    agent's position).
    """
    agents = list(env.possible_agents)
    obs_dim = int(max(np.prod(env.observation_space(a).shape) for a in agents))
    indicator = float(max(np.max(env.observation_space(a).high) for a in agents)) if len(agents) > 1 else 0.0

    def encode(agent_id: str, obs: Any) -> np.ndarray:
        flat = np.asarray(obs, np.float32).reshape(-1)
        x = np.zeros(obs_dim + (len(agents) if indicator else 0), np.float32)
        x[: flat.size] = flat
        if indicator:
            x[obs_dim + agents.index(agent_id)] = indicator
        return x

    return encode


def _clock() -> tuple[float, float, float]:
    """Now (s): wall time, this process's CPU time (all its threads) and its ended, waited-for child processes' CPU
    time; :func:`_spent` takes the differences."""
    times = os.times()
    return time.perf_counter(), time.process_time(), times.children_user + times.children_system


def _spent(started: tuple[float, float, float]) -> dict[str, float]:
    """Since ``started`` (:func:`_clock`), to 0.1 s: ``wall_s``, ``cpu_s`` (this process, all its threads) and
    ``children_cpu_s`` (child processes that ended in the span; Ray's workers outlive it): one span for the three."""
    return {key: round(now - then, 1) for key, then, now in zip(("wall_s", "cpu_s", "children_cpu_s"), started, _clock())}


def _sb3_learn(model: Any, env: Any, minutes: float, max_steps: int | None, library: str,
               seed: int) -> tuple[Any, dict[str, Any]]:
    """Run ``model.learn`` until ``minutes`` of wall time or ``max_steps``; the policy factory and the record."""
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(folder=None, output_formats=[]))  # SB3's default makes an empty tempdir/SB3-<time> folder

    curve: list[tuple[int, float]] = []
    deadline = time.perf_counter() + 60.0 * minutes
    n_envs = model.get_env().num_envs

    class Stop(BaseCallback):
        def _on_step(self) -> bool:
            buf = self.model.ep_info_buffer
            if buf and self.num_timesteps % 512 < n_envs:
                curve.append((self.num_timesteps, float(np.mean([e["r"] for e in buf]))))
            return time.perf_counter() < deadline

    started = _clock()
    if max_steps != 0:
        model.learn(total_timesteps=max_steps or 10**9, callback=Stop())
    record = {"library": library, "seed": seed, "steps": int(model.num_timesteps), **_spent(started), "curve": curve}
    shared = shared_observation(env)

    def factory(_: Any) -> Any:
        wrappers: dict[int, Any] = {}

        def act(e: Any, observations: dict[str, np.ndarray]) -> dict[str, Any]:
            residual = None
            if isinstance(env, RuleResidual):  # the test env gets the same features and rule composition
                residual = wrappers.setdefault(id(e), RuleResidual(e, scale=env.scale, horizon=env.horizon))
                observations = residual.observe({a: observations[a] for a in e.agents})
            out = {}
            for agent_id in e.agents:
                action, _ = model.predict(shared(agent_id, observations[agent_id]), deterministic=True)
                shape = e.action_space(agent_id).shape
                out[agent_id] = np.asarray(action, np.float32)[: int(np.prod(shape))].reshape(shape)
            return residual.compose(out) if residual is not None else out

        act.observes = True  # type: ignore[attr-defined]
        return act

    return factory, record


def sb3_ppo(task: Task, *, minutes: float, seed: int = 0, max_steps: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Train SB3 PPO (parameter sharing) for ``minutes`` of wall time or ``max_steps`` env steps.

    Returns ``(factory, record)``: ``factory(env)`` gives a policy function for
    :func:`powergrid.bench.play.play`; ``record`` holds the seed, steps, the learning's wall and CPU time (``wall_s``,
    ``cpu_s``, ``children_cpu_s``: one span, :func:`_spent`; the imports and set-up before it) and the curve
    ``[(steps, mean episode return)]``.
    """
    from stable_baselines3 import PPO
    from stable_baselines3.common.utils import set_random_seed

    # rewards are −50 to −500 $ per hour: PPO learns on them scaled by a running return deviation
    vec, env = _sb3_vec(task, seed, reward_scale=None)
    set_random_seed(seed)
    model = PPO("MlpPolicy", vec, n_steps=max(24, 2048 // vec.num_envs), batch_size=64, gamma=0.99,
                learning_rate=3e-4, verbose=0, device="cpu")
    return _sb3_learn(model, env, minutes, max_steps, "stable-baselines3 PPO + SuperSuit", seed)


def sb3_sac(task: Task, *, minutes: float, seed: int = 0, max_steps: int | None = None,
            **options: Any) -> tuple[Any, dict[str, Any]]:
    """Train SB3 SAC (off-policy, parameter sharing through SuperSuit) for ``minutes`` or ``max_steps``.

    One SAC policy acts for every learned agent; each agent's transitions go into one replay
    buffer. ``options``: the settings of :func:`sac_model` (reward scale, γ, network, residual RL …).
    Returns ``(factory, record)`` as :func:`sb3_ppo`.
    """
    model, env, library = sac_model(task, seed=seed, max_steps=max_steps, **options)
    return _sb3_learn(model, env, minutes, max_steps, library, seed)


def sac_model(task: Task, *, seed: int = 0, max_steps: int | None = None, gamma: float = 0.9,
              reward_scale: float = 0.01, hidden: tuple[int, ...] = (64, 64), batch_size: int = 128,
              residual: float | None = None, learning_starts: int = 1000, ent_coef: str | float = "auto",
              sac_class: Any = None, policy_kwargs: dict[str, Any] | None = None) -> tuple[Any, Any, str]:
    """The untrained SB3 SAC of :func:`sb3_sac`, the env it acts on, and its library label.

    Rewards ($/h, with 100 $ per unit of safety violation) are multiplied by ``reward_scale``;
    ``gamma`` 0.9 (a day is 24 hourly steps and most of the cost is the hour's own), ``hidden``
    layers, minibatches of ``batch_size``, one gradient step per agent step, entropy coefficient
    ``ent_coef`` (SB3's: ``"auto"`` is learned from 1, ``"auto_0.01"`` from 0.01); small networks
    keep a step cheap, so more of the day-by-day variety is seen within the wall time. The first
    ``learning_starts`` agent steps are uniform actions. ``sac_class``: a subclass of SB3's SAC;
    ``policy_kwargs``: added to SB3's (``net_arch`` is ``hidden``).

    ``residual``: residual RL on the rule (:class:`~powergrid.bench.residual.RuleResidual` with this
    scale): the policy outputs a correction to the rule's action and sees the day-ahead features;
    its mean layer starts at zero, so the untrained deterministic policy *is* the rule.
    """
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.utils import set_random_seed

    torch.set_num_threads(1)
    vec, env = _sb3_vec(task, seed, reward_scale=reward_scale, residual=residual)
    set_random_seed(seed)
    model = (sac_class or SAC)("MlpPolicy", vec, learning_rate=3e-4, buffer_size=300_000,
                               learning_starts=min(learning_starts, max_steps or learning_starts),
                               batch_size=batch_size, gamma=gamma, train_freq=1, gradient_steps=vec.num_envs,
                               ent_coef=ent_coef, policy_kwargs={"net_arch": list(hidden), **(policy_kwargs or {})},
                               verbose=0, device="cpu")
    if residual is not None:
        with torch.no_grad():  # zero correction at the start: the deterministic policy plays the rule
            model.actor.mu.weight.zero_()
            model.actor.mu.bias.zero_()
    model.action_space.seed(seed)  # the uniform warm-up actions (SuperSuit's vector env has no seed())
    library = "stable-baselines3 SAC + SuperSuit" + (f", residual on the rule (scale {residual:g})" if residual else "")
    return model, env, library


def sb3_sac_residual(task: Task, *, minutes: float, seed: int = 0, max_steps: int | None = None,
                     **options: Any) -> tuple[Any, dict[str, Any]]:
    """:func:`sb3_sac` as residual RL on the rule with the day-ahead features (``powergrid bench --libraries sb3_sac_residual``).

    Defaults: ``residual`` scale 1, ``gamma`` 0.95, ``learning_starts`` 240 (ten days of uniform
    corrections), chosen on the validation days (days 22–26);
    ``options`` override any :func:`sac_model` keyword.
    """
    return sb3_sac(task, minutes=minutes, seed=seed, max_steps=max_steps,
                   **{"residual": 1.0, "gamma": 0.95, "learning_starts": 240, **options})


def sb3_sac_bc(task: Task, *, minutes: float, seed: int = 0, max_steps: int | None = None,
               demo_days: int | None = None, days: Sequence[str] | None = None, demo_share: float = 1.0,
               bc_steps: int = 4000, critic_steps: int = 2000, log_std: float = -2.0, bc_weight: float = 1.0,
               **options: Any) -> tuple[Any, dict[str, Any]]:
    """Residual SAC started from the oracle's demonstrations on the training days (``--libraries sb3_sac_bc``).

    Within the ``minutes`` of wall time: the oracle of ``demo_days`` training days (all 252 if None,
    :func:`powergrid.bench.tasks.train_days`; or the first ``demo_days`` of ``days``, e.g. the training days less
    those a config's evaluation seeds draw, for a config whose episodes may draw any day; no new day after
    ``demo_share`` × ``minutes``, less half a minute for the cloning) replayed through the residual wrapper, behaviour
    cloning (``bc_steps``), the critics fitted on the demonstrations (``critic_steps``), then SAC with
    a behaviour-cloning step of weight ``bc_weight`` after each of its gradient steps
    (:mod:`powergrid.bench.imitation`), for the rest of the time or ``max_steps`` env steps
    (``max_steps=0``: the cloned policy alone). ``log_std``: the exploration noise's log standard
    deviation. ``options`` override the :func:`sac_model` settings (defaults: residual scale 2, so a
    correction can reach any action from any rule; γ 0.95; no uniform warm-up; entropy coefficient
    learned from 0.01; with several agents SuperSuit's agent indicator enters the networks as 0/1,
    :class:`~powergrid.bench.imitation.UnitIndicator`). The record adds the oracle's days, its wall
    time (s) and the final losses; its ``wall_s``, ``cpu_s`` and ``children_cpu_s`` span the demonstrations, the
    cloning and SAC (the model's set-up included).
    """
    from powergrid.bench import imitation

    started = _clock()
    agents = sum(a.get("policy") == "learned" for a in task.raw()["agents"])
    settings = {"residual": 2.0, "gamma": 0.95, "learning_starts": 0, "ent_coef": "auto_0.01", "reward_scale": 0.01,
                "policy_kwargs": {"features_extractor_class": imitation.UnitIndicator,
                                  "features_extractor_kwargs": {"agents": agents}} if agents > 1 else None,
                **options}
    model, env, library = sac_model(task, seed=seed, max_steps=max_steps, sac_class=imitation.BCRegularisedSAC,
                                    **settings)
    chosen = train_days(demo_days, seed) if days is None else list(days)[:demo_days]
    demos = imitation.demonstrations(task, chosen, scale=settings["residual"],
                                     encode=shared_observation(env), action_size=model.action_space.shape[0],
                                     agents=env.possible_agents,
                                     seed=seed, seconds=60.0 * (demo_share * minutes - 0.5))
    losses = imitation.pretrain(model, demos, reward_scale=settings["reward_scale"], bc_steps=bc_steps,
                                critic_steps=critic_steps, log_std=log_std, bc_weight=bc_weight, seed=seed)
    prepared = time.perf_counter() - started[0]
    how = "behaviour cloning of the oracle's demonstrations, no SAC step" if max_steps == 0 else \
        "from the oracle's demonstrations (behaviour cloning)"
    factory, record = _sb3_learn(model, env, minutes - prepared / 60.0, max_steps, f"{library}, {how}", seed)
    record.update(**_spent(started), demo_days=len(demos.days), demo_env_steps=len(demos.dones),
                  demo_failed=list(demos.failed), oracle_s=round(demos.seconds, 1), prepare_s=round(prepared, 1),
                  **{k: round(v, 5) for k, v in losses.items()})
    return factory, record


def sb3_bc(task: Task, *, minutes: float, seed: int = 0, max_steps: int | None = None,
           **options: Any) -> tuple[Any, dict[str, Any]]:
    """Behaviour cloning of the oracle alone (``--libraries sb3_bc``): :func:`sb3_sac_bc` without SAC steps.

    Its ``minutes`` go to the demonstrations (no new training day after 90 % of them) and the
    cloning; ``max_steps`` is ignored (no env step is trained). Chosen on the validation days,
    where SAC's fine-tuning lost what the cloning had gained (docs/benchmarks.md).
    ``options`` override :func:`sb3_sac_bc`'s keywords.
    """
    return sb3_sac_bc(task, minutes=minutes, seed=seed, max_steps=0, **{"demo_share": 0.9, "critic_steps": 0, **options})


#: The training functions whose ``steps`` count SB3's agent transitions (env steps × learned agents, SuperSuit's
#: one vector-env slot per agent); the others' count env steps.
_PER_AGENT = ("sb3_ppo", "sb3_sac", "sb3_sac_residual", "sb3_sac_bc", "sb3_bc")


def step_budget(function: str, task: Task, steps: int) -> dict[str, Any]:
    """The keywords that hold training function ``function`` (of this module) to ``steps`` env steps (``step()`` calls
    of the task's env, each one hour of the whole system, whatever the number of learned agents).

    RL libraries: ``max_steps`` in the library's unit (SB3: × the learned agents); they stop at the first check after
    it (PPO: a whole rollout of 2048 agent transitions; RLlib and MAPPO: a batch of 480 env steps). Imitation: a
    demonstration day costs its env steps (the oracle's plan replayed through the env, 24 on every task); the LP solves
    and the cloning's gradient steps (``bc_steps``, ``critic_steps``: fixed counts) are not env steps. ``sb3_bc``: the
    first ``steps // 24`` training days (at least one) of :func:`powergrid.bench.tasks.train_days`;
    ``sb3_sac_bc``: half the budget to demonstration days (at least one, at most the 252 training days), the rest to
    SAC's env steps.
    """
    env = MultiAgentPowerGridEnv(task.config())
    agents, day = len(env.possible_agents), int(env.n_steps)
    if function == "sb3_bc":
        return {"demo_days": max(1, steps // day)}
    if function == "sb3_sac_bc":
        demo_days = min(max(1, steps // 2 // day), len(train_days()))  # 252 at most: SAC gets the rest
        return {"demo_days": demo_days, "max_steps": max(0, steps - demo_days * day) * agents}
    return {"max_steps": steps * agents if function in _PER_AGENT else steps}


def budgeted(function: str, task: Task, *, minutes: float | None, steps: int | None,
             seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """Train with :func:`function <sb3_ppo>` of this module within ``minutes`` of wall time (None or 0: no limit) and
    ``steps`` env steps (:func:`step_budget`; None: no limit), whichever ends first; at least one of them.

    ``steps`` alone is reproducible: nothing depends on the clock, so the same command on the same code and machine
    trains the same policy however loaded the machine is. The record adds ``budget`` (``kind``: ``"steps"``,
    ``"minutes"`` or ``"steps or minutes"``, ``steps``, ``minutes``) and ``env_steps``: the env steps trained
    (SB3's agent transitions ÷ learned agents, plus the demonstrations' env steps)."""
    if not minutes and steps is None:
        raise ValueError("budgeted: give minutes > 0 or steps")
    options = step_budget(function, task, steps) if steps is not None else {}
    factory, record = globals()[function](task, minutes=minutes or float("inf"), seed=seed, **options)
    agents = len(MultiAgentPowerGridEnv(task.config()).possible_agents) if function in _PER_AGENT else 1
    record["env_steps"] = int(record.get("steps", 0)) // agents + int(record.get("demo_env_steps", 0))
    record["budget"] = {"kind": "steps" if not minutes else "minutes" if steps is None else "steps or minutes",
                        "steps": steps, "minutes": minutes or None}
    return factory, record


def _remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` if it exists and holds nothing (what a library made outside the output folder)."""
    try:
        folder.rmdir()
    except OSError:  # absent or not empty
        pass


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
    started = _clock()
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    results_home = Path("~/ray_results").expanduser()  # RLlib's Trainable makes an (unused) log folder there
    had_home = results_home.exists()
    algo = config.build_algo()
    _remove_if_empty(Path(algo.logdir))
    if not had_home:
        _remove_if_empty(results_home)
    curve: list[tuple[int, float]] = []
    roots = learned_roots(env)  # the system's return: a learned parent's reward already holds its children's
    steps = 0
    while time.perf_counter() - started[0] < 60.0 * minutes and (max_steps is None or steps < max_steps):
        # no "env_runners" entry when the runner returned no sample within RLlib's sample_timeout_s (a loaded machine)
        runners = algo.train().get("env_runners", {})
        steps = int(runners.get("num_env_steps_sampled_lifetime", steps))
        per_agent = runners.get("agent_episode_returns_mean", {})
        ret = sum(per_agent[a] for a in roots) if all(a in per_agent for a in roots) else None
        if ret is not None and np.isfinite(ret):
            curve.append((steps, float(ret)))
    modules = {a: algo.get_module(a) for a in env.possible_agents}
    record = {"library": f"RLlib PPO {ray.__version__}", "seed": seed, "steps": steps, **_spent(started), "curve": curve}

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


def torchrl_mappo(task: Task, *, minutes: float, seed: int = 0, max_steps: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Train MAPPO with TorchRL: a shared decentralised actor and a centralised critic.

    Every learned agent is one member of TorchRL's single ``agents`` group (observations and
    actions padded to the largest by SuperSuit); the actor (``MultiAgentMLP``, shared
    parameters) sees each agent's own observation, the critic (``centralised=True``) all of them.
    Loss: TorchRL's ``ClipPPOLoss`` with GAE (γ 0.99, λ 0.95); rewards scaled by 0.01. Batches of
    480 env steps, 4 epochs of minibatches of 96. Returns ``(factory, record)`` as :func:`sb3_ppo`.
    """
    import supersuit as ss
    import torch
    from tensordict.nn import TensorDictModule
    from tensordict.nn.distributions import NormalParamExtractor
    from torch import nn
    from torchrl.collectors import Collector
    from torchrl.data.replay_buffers import ReplayBuffer
    from torchrl.data.replay_buffers.samplers import SamplerWithoutReplacement
    from torchrl.data.replay_buffers.storages import LazyTensorStorage
    from torchrl.envs import RewardScaling, TransformedEnv
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper
    from torchrl.envs.utils import MarlGroupMapType
    from torchrl.modules import MultiAgentMLP, ProbabilisticActor, TanhNormal
    from torchrl.objectives import ClipPPOLoss, ValueEstimators

    from powergrid.rl.numeric_infos import NumericInfos  # the cost signal in the rollouts; TorchRL takes no text

    torch.manual_seed(seed)
    raw = MultiAgentPowerGridEnv(task.config())
    padded = ss.pad_action_space_v0(ss.pad_observations_v0(raw))
    env = TransformedEnv(
        PettingZooWrapper(NumericInfos(padded), group_map=MarlGroupMapType.ALL_IN_ONE_GROUP, use_mask=False,
                          categorical_actions=False, done_on_any=False, seed=seed),
        RewardScaling(loc=0.0, scale=0.01, in_keys=[("agents", "reward")]))
    n = len(raw.possible_agents)
    obs_dim = int(env.observation_spec["agents", "observation"].shape[-1])
    act_dim = int(env.full_action_spec["agents", "action"].shape[-1])
    actor_net = nn.Sequential(
        MultiAgentMLP(n_agent_inputs=obs_dim, n_agent_outputs=2 * act_dim, n_agents=n, centralised=False,
                      share_params=True, depth=2, num_cells=64, activation_class=nn.Tanh),
        NormalParamExtractor())
    policy = ProbabilisticActor(
        TensorDictModule(actor_net, in_keys=[("agents", "observation")], out_keys=[("agents", "loc"), ("agents", "scale")]),
        spec=env.full_action_spec["agents", "action"], in_keys=[("agents", "loc"), ("agents", "scale")],
        out_keys=[("agents", "action")], distribution_class=TanhNormal,
        distribution_kwargs={"low": -1.0, "high": 1.0}, return_log_prob=True)
    critic = TensorDictModule(
        MultiAgentMLP(n_agent_inputs=obs_dim, n_agent_outputs=1, n_agents=n, centralised=True, share_params=True,
                      depth=2, num_cells=64, activation_class=nn.Tanh),
        in_keys=[("agents", "observation")], out_keys=[("agents", "state_value")])
    batch = 480
    collector = Collector(env, policy, frames_per_batch=batch, total_frames=-1, device="cpu",
                          auto_register_policy_transforms=False)  # an MLP policy: no recurrent state to track
    buffer = ReplayBuffer(storage=LazyTensorStorage(batch), sampler=SamplerWithoutReplacement(), batch_size=96)
    loss = ClipPPOLoss(actor_network=policy, critic_network=critic, clip_epsilon=0.2, entropy_coeff=1e-3,
                       normalize_advantage=True)
    loss.set_keys(reward=("agents", "reward"), action=("agents", "action"), value=("agents", "state_value"),
                  done=("agents", "done"), terminated=("agents", "terminated"))
    loss.make_value_estimator(ValueEstimators.GAE, gamma=0.99, lmbda=0.95)
    optim = torch.optim.Adam(loss.parameters(), 3e-4)
    curve: list[tuple[int, float]] = []
    steps = 0
    started = _clock()
    for data in collector:
        for key in ("done", "terminated"):  # the group's done flags, per agent, for GAE
            data.set(("next", "agents", key), data.get(("next", key)).unsqueeze(-1).expand(
                data.get(("next", "agents", "reward")).shape))
        with torch.no_grad():
            loss.value_estimator(data, params=loss.critic_network_params, target_params=loss.target_critic_network_params)
        buffer.extend(data.reshape(-1))
        for _ in range(4):
            for _ in range(batch // 96):
                with warnings.catch_warnings():  # advantages normalised over agents and steps together (shared policy)
                    warnings.filterwarnings("ignore", message="You requested advantage normalization", category=UserWarning)
                    out = loss(buffer.sample())
                total = out["loss_objective"] + out["loss_critic"] + out["loss_entropy"]
                optim.zero_grad()
                total.backward()
                nn.utils.clip_grad_norm_(loss.parameters(), 1.0)
                optim.step()
        collector.update_policy_weights_()
        steps += batch
        done = data.get(("next", "done")).reshape(-1)
        if done.any():  # the mean per-agent return of the episodes that ended in this batch ($, unscaled)
            rewards = data.get(("next", "agents", "reward")).mean(-2).reshape(-1) * 100.0
            ends = torch.nonzero(done).reshape(-1).tolist()
            starts = [0] + [e + 1 for e in ends[:-1]]
            curve.append((steps, float(np.mean([rewards[a:b + 1].sum().item() for a, b in zip(starts, ends)]))))
        if time.perf_counter() - started[0] > 60.0 * minutes or (max_steps is not None and steps >= max_steps):
            break
    collector.shutdown()
    record = {"library": "TorchRL MAPPO (centralised critic)", "seed": seed, "steps": steps, **_spent(started),
              "curve": curve}

    def factory(_: Any) -> Any:
        def act(e: Any, observations: dict[str, np.ndarray]) -> dict[str, Any]:
            agents = list(e.possible_agents)
            x = np.zeros((len(agents), obs_dim), np.float32)
            for i, a in enumerate(agents):
                o = np.asarray(observations[a], np.float32).reshape(-1)
                x[i, : o.size] = o
            with torch.no_grad():
                loc, _ = actor_net(torch.as_tensor(x))
            action = torch.tanh(loc).numpy()  # the TanhNormal's mode
            out = {}
            for i, a in enumerate(agents):
                if a in e.agents:
                    shape = e.action_space(a).shape
                    out[a] = action[i, : int(np.prod(shape))].astype(np.float32).reshape(shape)
            return out

        act.observes = True  # type: ignore[attr-defined]
        return act

    return factory, record

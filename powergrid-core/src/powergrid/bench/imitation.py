"""Imitation of the perfect-foresight oracle on the training days, then SAC (``sb3_sac_bc``).

On a *training* day the oracle's optimum (:func:`powergrid.bench.oracle.solve_day`) is a
legitimate demonstration: the imitation of an optimal controller that had the day's actuals. The
policy never sees them: it acts on :class:`~powergrid.bench.residual.RuleResidual`'s observation
(the env's, the rule's action, the day-ahead price, yesterday's load and solar), at test time as
in training, and only learns which correction to the rule the oracle made in such a situation.

1. :func:`demonstrations`: each training day's oracle plan replayed through the wrapper; per hour
   and agent the observation the shared SB3 policy sees, the correction that makes the wrapper
   send the oracle's action, ``clip((oracle − rule)/scale, −1, 1)``, the reward, the next
   observation and the end of the day.
2. :func:`pretrain`: behaviour cloning of the SAC actor's mean (MSE of ``tanh(mean)`` to the
   corrections), a small fixed exploration noise, the demonstrations into the replay buffer and
   the critics fitted to the cloned policy on them (SAC's soft TD target, actor fixed).
3. :class:`BCRegularisedSAC`: SAC fine-tuning in which every gradient step of SAC is followed by a
   behaviour-cloning step of the actor on a demonstration minibatch (weight ``bc_weight``), so the
   actor does not forget the demonstrations where the critic is still wrong (as TD3+BC's actor loss).

Needs the ``sb3`` extra (torch and Stable-Baselines3).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import gymnasium
import numpy as np
import torch
from pettingzoo.utils.wrappers import BaseParallelWrapper
from stable_baselines3 import SAC
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.utils import polyak_update

from powergrid.bench.oracle import replay, solve_day
from powergrid.bench.play import play
from powergrid.bench.residual import RuleResidual
from powergrid.bench.tasks import Task
from powergrid.env import MultiAgentPowerGridEnv


@attrs.frozen
class Demonstrations:
    """The oracle's hours as shared-policy transitions (``agents`` = the env's learned agents, in order).

    ``observations``, ``next_observations``: (hours, agents, obs) as the shared policy sees them;
    ``corrections``: (hours, agents, actions), residual actions in [−1, 1]; ``rewards``: (hours,
    agents), the env's rewards (−$ per hour, unscaled); ``dones``: (hours,), the last hour of a day.
    ``objectives`` and ``oracle_objectives``: each day's objective ($/day) replayed through the
    wrapper and the plan's own AC replay (equal unless a correction was clipped);
    ``seconds``: wall time of the oracle solves and replays (s); ``failed``: days the LP did not solve.
    """

    observations: np.ndarray
    corrections: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    dones: np.ndarray
    days: tuple[str, ...]
    objectives: np.ndarray
    oracle_objectives: np.ndarray
    seconds: float
    failed: tuple[str, ...] = ()


class _Recorder(BaseParallelWrapper):
    """Keeps every step's (observations, actions, rewards, next observations, end of episode)."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.steps: list[tuple[dict, dict, dict, dict, bool]] = []
        self.last: dict[str, Any] = {}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        self.last, infos = self.env.reset(seed=seed, options=options)
        self.steps = []
        return self.last, infos

    def step(self, actions: dict[str, Any]) -> tuple:
        obs, rewards, terms, truncs, infos = self.env.step(actions)
        done = any(terms.values()) or any(truncs.values())
        self.steps.append((self.last, actions, rewards, {**self.last, **obs}, done))
        self.last = obs
        return obs, rewards, terms, truncs, infos


def corrections_of(plan: Any, scale: float) -> Callable[[Any], dict[str, np.ndarray]]:
    """A policy for a :class:`RuleResidual`-wrapped env: the corrections that make it send the plan's actions,
    ``clip((oracle − rule)/scale, −1, 1)`` in the normalised action convention."""
    oracle = replay(plan)

    def act(env: Any) -> dict[str, np.ndarray]:
        target = oracle(env)
        return {a: np.clip((np.asarray(target[a], np.float64) - env.rule_action(a)) / scale, -1.0, 1.0).astype(np.float32)
                for a in env.agents}

    return act


def demonstrations(task: Task, days: Sequence[str], *, scale: float, encode: Callable[[str, Any], np.ndarray],
                   action_size: int, agents: Sequence[str] | None = None, seed: int = 0,
                   seconds: float = float("inf")) -> Demonstrations:
    """Solve the oracle on the training ``days`` in order and replay each through ``RuleResidual(scale)``.

    ``encode(agent, obs)``: the shared policy's view of an agent's observation
    (:func:`powergrid.bench.train.shared_observation`); corrections are zero-padded to ``action_size``.
    ``agents``: the task's learned agents, whose steps are recorded (the replay runs in the oracle's
    dispatch view, where every grid agent is learned: in task 5 mg2 and mg3 too); None: all of them.
    No day is started after ``seconds`` of wall time (the first always is). A day whose LP fails is
    skipped and listed in ``failed``.
    """
    started = time.perf_counter()
    rows: list[tuple[np.ndarray, ...]] = []
    kept, failed, objectives, oracle_objectives = [], [], [], []
    for day in days:
        if (kept or failed) and time.perf_counter() - started > seconds:
            break
        env = MultiAgentPowerGridEnv(task.config(day, split="train", dispatch_view=True))
        try:
            plan = solve_day(env, seed)
        except RuntimeError:
            failed.append(day)
            continue
        recorder = _Recorder(RuleResidual(env, scale=scale))
        objectives.append(play(recorder, corrections_of(plan, scale), seed).objective)
        oracle_objectives.append(plan.ac_objective)
        kept.append(day)
        recorded = list(env.possible_agents if agents is None else agents)
        for obs, actions, rewards, next_obs, done in recorder.steps:
            padded = np.zeros((len(recorded), action_size), np.float32)
            for i, a in enumerate(recorded):
                padded[i, : actions[a].size] = actions[a].reshape(-1)
            rows.append((np.stack([encode(a, obs[a]) for a in recorded]), padded,
                         np.array([rewards[a] for a in recorded], np.float32),
                         np.stack([encode(a, next_obs[a]) for a in recorded]), np.array(done)))
    obs, corr, rew, nxt, done = (np.stack(column) for column in zip(*rows))
    return Demonstrations(obs, corr, rew, nxt, done.astype(bool), tuple(kept), np.array(objectives),
                          np.array(oracle_objectives), time.perf_counter() - started, tuple(failed))


class UnitIndicator(BaseFeaturesExtractor):
    """The flat observation with SuperSuit's agent indicator (its last ``agents`` entries) divided by its value,
    the largest observation bound (10⁴ in task 4), so the indicator is 0 or 1."""

    def __init__(self, observation_space: gymnasium.spaces.Box, agents: int) -> None:
        super().__init__(observation_space, int(np.prod(observation_space.shape)))
        scale = np.ones(self.features_dim, np.float32)
        scale[self.features_dim - agents:] = 1.0 / float(np.max(observation_space.high))
        self.register_buffer("scale", torch.as_tensor(scale))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return observations.flatten(1) * self.scale


def _bc_loss(actor: Any, obs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the actor's deterministic action ``tanh(mean)`` to the target corrections."""
    mean, _, _ = actor.get_action_dist_params(obs)
    return torch.nn.functional.mse_loss(torch.tanh(mean), target)


class BCRegularisedSAC(SAC):
    """SB3 SAC whose actor takes a behaviour-cloning step (weight ``bc_weight``) after each SAC gradient step.

    ``demos``: (observations, corrections) tensors, flattened over hours and agents; None: plain SAC.
    """

    demos: tuple[torch.Tensor, torch.Tensor] | None = None
    bc_weight: float = 0.0

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        super().train(gradient_steps, batch_size)
        if self.demos is None or self.bc_weight <= 0:
            return
        obs, target = self.demos
        for _ in range(gradient_steps):
            idx = torch.randint(0, obs.shape[0], (batch_size,))
            loss = self.bc_weight * _bc_loss(self.actor, obs[idx], target[idx])
            self.actor.optimizer.zero_grad()
            loss.backward()
            self.actor.optimizer.step()


def pretrain(model: BCRegularisedSAC, demos: Demonstrations, *, reward_scale: float, bc_steps: int,
             critic_steps: int, log_std: float, bc_weight: float, seed: int = 0) -> dict[str, float]:
    """Clone the demonstrations into ``model``'s actor, fill its replay buffer and fit its critics (module doc).

    ``bc_steps`` minibatches of behaviour cloning (Adam, the actor's optimiser); the actor's
    ``log_std`` head then outputs ``log_std`` everywhere (exploration noise ``exp(log_std)`` before
    the tanh); the demonstrations' transitions go into the replay buffer with rewards × ``reward_scale``;
    ``critic_steps`` minibatches of SAC's soft TD loss for the critics with the actor fixed.
    Returns the final BC and critic losses.
    """
    torch.manual_seed(seed)
    batch = model.batch_size
    obs = torch.as_tensor(demos.observations.reshape(-1, demos.observations.shape[-1]))
    target = torch.as_tensor(demos.corrections.reshape(-1, demos.corrections.shape[-1]))
    bc = float("nan")
    for _ in range(bc_steps):
        idx = torch.randint(0, obs.shape[0], (batch,))
        loss = _bc_loss(model.actor, obs[idx], target[idx])
        model.actor.optimizer.zero_grad()
        loss.backward()
        model.actor.optimizer.step()
        bc = loss.item()
    with torch.no_grad():
        model.actor.log_std.weight.zero_()
        model.actor.log_std.bias.fill_(log_std)
    for hour in range(len(demos.dones)):
        model.replay_buffer.add(demos.observations[hour], demos.next_observations[hour], demos.corrections[hour],
                                demos.rewards[hour] * reward_scale, np.full(demos.rewards.shape[1], demos.dones[hour]),
                                [{} for _ in range(demos.rewards.shape[1])])
    critic = float("nan")
    ent = float(torch.exp(model.log_ent_coef.detach())) if model.ent_coef_optimizer is not None else float(model.ent_coef_tensor)
    for _ in range(critic_steps):
        data = model.replay_buffer.sample(batch)
        with torch.no_grad():
            next_actions, next_log_prob = model.actor.action_log_prob(data.next_observations)
            next_q = torch.min(torch.cat(model.critic_target(data.next_observations, next_actions), dim=1), dim=1,
                               keepdim=True).values - ent * next_log_prob.reshape(-1, 1)
            q_target = data.rewards + (1 - data.dones) * model.gamma * next_q
        loss = sum(torch.nn.functional.mse_loss(q, q_target) for q in model.critic(data.observations, data.actions))
        model.critic.optimizer.zero_grad()
        loss.backward()
        model.critic.optimizer.step()
        polyak_update(model.critic.parameters(), model.critic_target.parameters(), model.tau)
        critic = loss.item()
    model.demos, model.bc_weight = (obs, target), bc_weight
    return {"bc_mse": bc, "critic_loss": critic}

"""Evaluate policies on a scenario: episode returns, cost ($), safety and the voltage band.

A scenario is an experiment: before a learned policy is compared with anything, the
scenario must let actions matter. :func:`run_episode` plays one seeded episode with a
built-in reference policy (``zero``, ``rule``, ``random`` or ``constant:F``) and
:func:`summarize` gives the mean and standard error over seeds, the share of the reward
that is the safety term, and the share of bus-ticks inside the voltage band
(the reward's ``v_min_pu``/``v_max_pu``, 0.95–1.05 pu by default: a ±5 % planning band).

A learned agent's reward covers its whole subtree (every device below it, a grid or system agent's
zone), so a learned ISO's already holds its learned microgrids'. Totals are therefore summed over the
:func:`learned_roots` only, each device's cost counted once; every agent's own return stays in
:class:`EpisodeStats`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import gymnasium
import numpy as np

#: A policy: ``env → {agent: action}`` for the agents due in this step.
PolicyFn = Callable[[Any], dict[str, Any]]


def rule_actions(env: Any) -> dict[str, Any]:
    """Each learned agent's own rule-based action (the device's rule or the protocol's)."""
    return {agent_id: env.rule_action(agent_id) for agent_id in env.agents}


def constant_actions(fraction: float) -> PolicyFn:
    """Every action at ``low + fraction·(high − low)`` of its space (Discrete: the nearest choice)."""
    def act(env: Any) -> dict[str, Any]:
        actions: dict[str, Any] = {}
        for agent_id in env.agents:
            space = env.action_space(agent_id)
            if isinstance(space, gymnasium.spaces.Discrete):
                actions[agent_id] = int(space.start + round(fraction * (space.n - 1)))
            else:
                actions[agent_id] = (space.low + fraction * (space.high - space.low)).astype(space.dtype)
        return actions
    return act


def zero_actions(env: Any) -> dict[str, Any]:
    """Idle devices: zero in physical units (no charge, no dispatch, no setpoint change), whatever the convention."""
    actions: dict[str, Any] = {}
    for agent_id in env.agents:
        space = env.action_space(agent_id)
        actions[agent_id] = (env.action_from_physical(agent_id, np.zeros(space.shape))
                             if isinstance(space, gymnasium.spaces.Box) else 0)
    return actions


def random_actions(env: Any) -> dict[str, Any]:
    """Uniform samples of each agent's action space (seeded by :func:`run_episode`)."""
    return {a: env.action_space(a).sample() for a in env.agents}


def seed_action_spaces(env: Any, seed: int) -> None:
    """Seed every learned agent's action space for :func:`random_actions`: the first with ``seed``, the others each
    with their own seed drawn from ``(seed, position)``, so agents of equal spaces do not draw the same actions."""
    for i, agent_id in enumerate(env.possible_agents):
        own = seed if i == 0 else int(np.random.SeedSequence((seed, i)).generate_state(1, np.uint64)[0])
        env.action_space(agent_id).seed(own)


def policy_named(name: str) -> PolicyFn:
    """``zero``, ``rule``, ``random`` or ``constant:F`` (F in [0, 1])."""
    if name.startswith("constant:"):
        fraction = float(name.split(":", 1)[1])
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"constant policy: expected a fraction in [0, 1], got {fraction}")
        return constant_actions(fraction)
    table = {"zero": zero_actions, "rule": rule_actions, "random": random_actions}
    if name not in table:
        raise ValueError(f"unknown policy {name!r}: expected zero, rule, random or constant:F")
    return table[name]


def learned_roots(env: Any) -> tuple[str, ...]:
    """The learned agents with no learned agent above them, in ``env.possible_agents`` order: those whose rewards
    no other learned agent's includes. (A horizontal protocol's settlement is its participant's alone; a participant
    below a learned agent would be missing from that agent's reward: no shipped config has one.)"""
    agents, learned = env.scenario.agents, set(env.possible_agents)

    def above(agent_id: str) -> Iterable[str]:
        parent = agents[agent_id].parent
        while parent is not None:
            yield parent.id
            parent = parent.parent

    return tuple(a for a in env.possible_agents if learned.isdisjoint(above(a)))


@attrs.frozen
class EpisodeStats:
    """One episode: per learned agent the return, cost ($) and safety; the network's voltage band; ``roots``:
    the :func:`learned_roots`, over which the ``total_*`` properties sum."""

    returns: Mapping[str, float]
    cost: Mapping[str, float]
    safety: Mapping[str, float]
    roots: tuple[str, ...]
    ticks: int
    failures: int
    bus_ticks_in_band: int
    bus_ticks: int
    v_min_pu: float
    v_max_pu: float

    @property
    def in_band(self) -> float:
        """Share of bus-ticks inside ``[v_min_pu, v_max_pu]`` of the reward (0–1)."""
        return self.bus_ticks_in_band / self.bus_ticks if self.bus_ticks else 1.0

    @property
    def total_return(self) -> float:
        """The learned agents' return with each device counted once: the roots' summed."""
        return sum(self.returns[a] for a in self.roots)

    @property
    def total_cost(self) -> float:
        """The roots' summed cost ($)."""
        return sum(self.cost[a] for a in self.roots)

    @property
    def total_safety(self) -> float:
        """The roots' summed safety (violation summed over the physics steps)."""
        return sum(self.safety[a] for a in self.roots)


def run_episode(env: Any, policy: str | PolicyFn, seed: int) -> EpisodeStats:
    """Play one episode of ``env`` from ``reset(seed)`` with ``policy``; voltages counted over in-service buses."""
    act = policy_named(policy) if isinstance(policy, str) else policy
    rw = env.config.reward
    env.reset(seed=seed)
    seed_action_spaces(env, seed)
    on = env.net.bus.in_service.to_numpy(bool)
    returns = dict.fromkeys(env.possible_agents, 0.0)
    cost = dict.fromkeys(env.possible_agents, 0.0)
    safety = dict.fromkeys(env.possible_agents, 0.0)
    ticks = failures = inside = total = 0
    lo, hi = math.inf, -math.inf
    while not env.ended:  # also without learned agents (the rules play)
        _, rewards, _, _, infos = env.step(act(env))
        ticks += 1
        for agent_id, r in rewards.items():
            returns[agent_id] += r
            cost[agent_id] += infos[agent_id]["cost"]
            safety[agent_id] += infos[agent_id]["safety"]
        if env.failure:  # the tick's flow failed (every learned agent's ``converged`` is False)
            failures += 1
            continue
        vm = env.last_result.vm_pu[on]
        inside += int(np.count_nonzero((vm >= rw.v_min_pu) & (vm <= rw.v_max_pu)))
        total += vm.size
        lo, hi = min(lo, float(vm.min())), max(hi, float(vm.max()))
    return EpisodeStats(returns, cost, safety, learned_roots(env), ticks, failures, inside, total, lo, hi)


@attrs.frozen
class Summary:
    """A policy over seeds: mean and standard error of the learned agents' return, each device counted once
    (:attr:`EpisodeStats.total_return`: the :func:`learned_roots`' summed), and the cost and safety terms of it ($)."""

    policy: str
    mean_return: float
    se_return: float
    mean_cost: float
    mean_safety_term: float
    safety_share: float
    in_band: float
    failures: int
    episodes: int
    returns: tuple[float, ...] = ()  # each episode's total return, in seed order

    def paired_difference(self, other: Summary) -> tuple[float, float]:
        """Mean and standard error of ``self − other`` over the same seeds (paired by day)."""
        diff = np.array(self.returns) - np.array(other.returns)
        se = float(diff.std(ddof=1) / math.sqrt(diff.size)) if diff.size > 1 else 0.0
        return float(diff.mean()), se


def summarize(env: Any, policy: str, seeds: Iterable[int]) -> Summary:
    """Run ``policy`` over ``seeds``; the safety share is ``safety_weight·Δt_h·safety / |return|`` (0–1)."""
    sw, cw = env.config.reward.safety_per_step(env.dt_h), env.config.reward.cost_weight
    runs = [run_episode(env, policy, seed) for seed in seeds]
    totals = np.array([r.total_return for r in runs])
    costs = np.array([cw * r.total_cost for r in runs])
    safety = np.array([sw * r.total_safety for r in runs])
    n = len(runs)
    se = float(totals.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    share = float(safety.mean() / abs(totals.mean())) if totals.mean() else 0.0
    in_band = sum(r.bus_ticks_in_band for r in runs) / max(sum(r.bus_ticks for r in runs), 1)
    return Summary(policy, float(totals.mean()), se, float(costs.mean()), float(safety.mean()), share, in_band,
                   sum(r.failures for r in runs), n, tuple(totals.tolist()))

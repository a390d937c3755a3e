"""One test day under a policy, scored on the whole system.

The score of a day is what the root agents (those without a parent) pay: their summed cost ($)
and safety over the day, and the objective ``cost_weight·cost + safety_weight·Δt_h·safety`` ($) that
the oracle minimises, plus the env's failure penalty per root when a power flow fails (the day
ends there by default; its unplayed hours are charged as the env's reward charges them, not
dropped from the bill). A root's cost and safety include its whole subtree (a grid agent's
devices, an ISO's microgrids) and its horizontal-protocol settlement, so nothing is counted twice.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from powergrid.env import COMMON_INFO
from powergrid.evaluate import PolicyFn, policy_named, seed_action_spaces


@attrs.frozen
class DayResult:
    """One day: cost ($), safety, objective ($), failed flows, hourly traces for the figures,
    ``storage_mwh``: the change over the day of the energy the valued stores could deliver to the grid
    (MWh, :meth:`~powergrid.devices.Device.stored_mwh`: a battery's ``soc·capacity·η_d``; the stores
    ``reward.storage_value`` values, ``Scenario.valued_stores``, none under ``none``), which the reward
    credits at the day's mean price and ``cost`` and ``objective`` already hold (a negative value is energy
    taken from the next day, paid back), and ``penalty``: the env's failure penalty (``infos[…]["penalty"]``
    per root, $ at cost weight 1) included in ``objective``, 0 on a day without a failed flow.

    ``in_band``: the share (0–1) of the day's ticks (hours on the bench tasks) at which every in-service bus was
    inside the reward's voltage band ``[v_min_pu, v_max_pu]`` (0.95–1.05 pu by default); a tick whose flow failed, and
    a tick the day did not play (ended by a failed flow), counts as outside. ``nonfinite_actions``: the learned
    agents' actions (one per agent and tick sent) holding a NaN or an infinite value, which the env replaces
    (projects); ``projected_actions``: the learned agents' ticks whose ``infos[…]["projection"]`` was above
    :data:`PROJECTED` (the env moved the action to make it feasible, non-finite ones included); ``missing_actions``:
    the learned agents' ticks (one per agent and step) with no action from the policy (absent from its mapping, or
    None), whose devices the env leaves at their defaults (idle, MPPT…; docs/rl.md).
    """

    cost: float
    safety: float
    objective: float
    failures: int
    v_min_pu: np.ndarray
    v_max_pu: np.ndarray
    device_mw: dict[str, np.ndarray]
    device_mvar: dict[str, np.ndarray]
    price: np.ndarray
    storage_mwh: float
    penalty: float = 0.0
    in_band: float = 0.0
    nonfinite_actions: int = 0
    projected_actions: int = 0
    missing_actions: int = 0


#: A projection (``infos[…]["projection"]``, in the action's device units: MW, Mvar, $/MWh) above this counts.
PROJECTED = 1e-6


def play(env: Any, policy: str | PolicyFn, seed: int = 0) -> DayResult:
    """Play one episode of ``env`` from ``reset(seed)``; ``policy`` as in :func:`powergrid.evaluate.policy_named`.

    A policy function with the attribute ``observes = True`` is called as ``policy(env, observations)``.
    """
    act = policy_named(policy) if isinstance(policy, str) else policy
    rw = env.config.reward
    obs, _ = env.reset(seed=seed)
    observes = getattr(act, "observes", False)
    seed_action_spaces(env, seed)
    roots = [a.id for a in env.scenario.roots]
    devices = [d for d in env.scenario.device_agents if type(d.device).__name__ != "GridConnection"]
    on = env.net.bus.in_service.to_numpy(bool)
    stores = [d.device for d in env.scenario.device_agents if d.id in env.scenario.valued_stores]

    def stored() -> float:
        return sum(s.stored_mwh() for s in stores)

    stored_at_start = stored()
    cost = safety = 0.0
    failures = 0
    penalty = 0.0
    v_lo, v_hi, price = [], [], []
    band = env.config.reward.v_min_pu, env.config.reward.v_max_pu
    in_band = nonfinite = projected = missing = 0
    mw: dict[str, list[float]] = {d.id: [] for d in devices}
    mvar: dict[str, list[float]] = {d.id: [] for d in devices}
    while env.agents:
        price.append(env.ctx.profiles["price"][env.tick])
        actions = act(env, obs) if observes else act(env)
        obs, _, _, _, infos = env.step(actions)  # checked there: each action a number or a numeric array, or None
        nonfinite += sum(a is not None and not np.all(np.isfinite(np.asarray(a, np.float64))) for a in actions.values())
        missing += sum(actions.get(a) is None for a in env.possible_agents)  # env.agents: [] after the last step
        projected += sum(info["projection"] > PROJECTED for a, info in infos.items() if a != COMMON_INFO)
        table = env.agent_costs()
        cost += sum(table[r][0] for r in roots)
        safety += sum(table[r][1] for r in roots)
        info = next(iter(infos.values()))
        if not info["converged"]:  # each learned root its own charge (the floor's part differs); a root on its
            failures += 1          # own policy has no infos: the first learned agent's
            penalty += sum(infos.get(r, info)["penalty"] for r in roots)
        vm = env.last_result.vm_pu[on]
        v_lo.append(vm.min())
        v_hi.append(vm.max())
        in_band += bool(info["converged"] and band[0] <= v_lo[-1] and v_hi[-1] <= band[1])
        for d in devices:
            mw[d.id].append(d.device.p_mw)
            mvar[d.id].append(d.device.q_mvar)
    return DayResult(cost, safety, rw.cost_weight * cost + rw.safety_per_step(env.dt_h) * safety + penalty, failures,
                     np.array(v_lo), np.array(v_hi), {k: np.array(v) for k, v in mw.items()},
                     {k: np.array(v) for k, v in mvar.items()}, np.array(price), stored() - stored_at_start, penalty,
                     in_band / env.max_ticks, nonfinite, projected, missing)

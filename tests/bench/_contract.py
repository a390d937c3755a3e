"""The contract tests' idle days: the meter's import per hour with some devices at 0 MW and the PV at full output
(hourly AC flow), and the least import limit a battery schedule holds against them (LP)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from powergrid.env import MultiAgentPowerGridEnv


def idle_import(env: MultiAgentPowerGridEnv, seed: int, agent: str, zeroed: tuple[str, ...], pv: str, meter: str,
                line: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``meter``'s import (MW) per hour of the day reset with ``seed``, with ``agent``'s children ``zeroed`` at
    0 MW and its child ``pv`` uncurtailed; and the loading (%) of the line named ``line`` (empty without one)."""
    env.reset(seed=seed)
    parent = env.scenario.agents[agent]
    slices, ids = parent.protocol.action_slices(), [c.id for c in parent.children]
    off, full = [slices[ids.index(k)] for k in zeroed], slices[ids.index(pv)]
    index = None if line is None else list(env.net.line.name.astype(str)).index(line)
    pcc, imports, loading = env.scenario.agents[meter].device, [], []
    while env.agents:
        physical = np.array(env.physical_rule(agent), np.float64)
        for s in off:
            physical[s] = 0.0
        action = env.action_from_physical(agent, physical)
        action[full] = env.action_space(agent).high[full]
        env.step({agent: action.astype(np.float32)})
        imports.append(pcc.import_mw)
        if index is not None:
            loading.append(env.last_result.line_loading_percent[index])
    return np.array(imports), np.array(loading)


def least_limit(imports: np.ndarray, ess, dt_h: float) -> float:
    """The least X (MW) with ``import + charge − discharge ≤ X`` every hour for a feasible battery schedule (LP)."""
    p, n = ess.params, len(imports)
    cost = np.zeros(2 * n + 1)
    cost[-1] = 1.0  # variables: charge MW (n), discharge MW (n), X
    rows, bounds = [], []
    for t in range(n):
        row = np.zeros(2 * n + 1)
        row[t], row[n + t], row[-1] = 1.0, -1.0, -1.0
        rows.append(row)
        bounds.append(-imports[t])
    for t in range(n):  # the stored energy stays within [soc_min, soc_max]
        row = np.zeros(2 * n + 1)
        row[:t + 1], row[n:n + t + 1] = p.eta_charge * dt_h, -dt_h / p.eta_discharge
        rows += [row, -row]
        bounds += [(p.soc_max - p.soc_init) * p.capacity_mwh, (p.soc_init - p.soc_min) * p.capacity_mwh]
    res = linprog(cost, A_ub=np.array(rows), b_ub=np.array(bounds),
                  bounds=[(0.0, p.p_max_mw)] * (2 * n) + [(None, None)], method="highs")
    assert res.status == 0, res.message
    return float(res.fun)

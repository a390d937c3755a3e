"""safety_weight prices a unit of violation held for an hour: the reward's safety term is safety_weight·safety·Δt_h,
so the same violation costs the same whatever the physics step (it cost 4× more at 15 min than at 1 h before)."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv

pytest.importorskip("powergrid_devices", reason="the scenario uses the ESS and GridConnection devices")

WEIGHT = 400.0  # $ per MWh beyond the import limit
LIMIT_MW = 0.5
CHARGE_MW = 1.5  # the battery's constant charge: the only load behind the meter, 1.0 MW beyond the limit


def _scenario(physics: str, p_max_mw: float = 2.0) -> dict:
    """CIGRE MV with every network load at 0: a battery charging at a constant rate is all that Line 4-5 imports."""
    return {
        "name": "safety_per_hour",
        "network": {"type": "cigre_mv"},
        "time": {"physics": physics, "episode": "2h"},
        "reward": {"cost_weight": 1.0, "safety_weight": WEIGHT},
        "loads": {"scale": {"*": 0.0}, "jitter": 0.0},
        "spaces": {"action": "physical"},
        "agents": [
            {"id": "mg", "kind": "grid", "policy": "learned", "protocol": {"type": "setpoint"}, "children": ["ess", "pcc"]},
            {"id": "ess", "type": "ESS", "bus": "Bus 5", "params": {"p_max_mw": p_max_mw, "capacity_mwh": 100.0}},
            {"id": "pcc", "type": "GridConnection", "bus": "Bus 4",
             "params": {"element": "line", "name": "Line 4-5", "import_limit_mw": LIMIT_MW}},
        ],
    }


def _episode(physics: str) -> tuple[float, list[float], float]:
    """The episode's safety term ($: what the reward loses beyond the cost), each step's safety (MW beyond) and
    Σ safety·Δt_h (MWh beyond)."""
    env = MultiAgentPowerGridEnv.from_config(_scenario(physics))
    env.reset(seed=0)
    term, safety = 0.0, []
    while env.agents:
        _, rewards, _, _, infos = env.step({"mg": np.array([-CHARGE_MW], np.float32)})
        info = infos["mg"]
        assert info["converged"] and info["penalty"] == 0.0
        term -= rewards["mg"] + info["cost"]  # cost_weight 1
        safety.append(info["safety"])
    return term, safety, sum(safety) * env.dt_h


def test_a_steady_violation_costs_the_same_at_15_min_and_1_h_physics():
    """1.0 MW beyond the import limit (plus the line's losses) for 2 h at 400 $/MWh: 800 $ at either step."""
    quarter, quarter_mw, quarter_mwh = _episode("15min")
    hourly, hourly_mw, hourly_mwh = _episode("1h")
    assert len(quarter_mw) == 8 and len(hourly_mw) == 2
    # infos' safety stays the step's violation (MW beyond), the same at either step; Σ safety·Δt_h is the MWh beyond
    assert all(mw == pytest.approx(CHARGE_MW - LIMIT_MW, rel=0.01) for mw in quarter_mw + hourly_mw)
    assert quarter_mwh == pytest.approx(hourly_mwh, rel=1e-6)
    hand = (CHARGE_MW - LIMIT_MW) * WEIGHT * 2.0  # MW beyond × $/MWh × h, without the line's losses
    assert hourly == pytest.approx(hand, rel=0.01) and quarter == pytest.approx(hand, rel=0.01)
    assert quarter == pytest.approx(hourly, rel=1e-6)  # the same flow at both steps: only Δt differs


def test_the_reward_is_cost_and_safety_per_hour_less_the_penalty_at_a_failed_flow():
    """reward = −(cost_weight·cost + safety_weight·Δt_h·safety) − penalty at every step, the failed one included
    (its cost and safety from the last sound flow, 1.0 MW beyond the limit)."""
    env = MultiAgentPowerGridEnv.from_config(_scenario("15min", p_max_mw=400.0))
    env.reset(seed=0)
    rw, failed = env.config.reward, 0
    for charge in (CHARGE_MW, CHARGE_MW, 400.0):  # the last one: the flow cannot carry 400 MW on Line 4-5
        _, rewards, _, _, infos = env.step({"mg": np.array([-charge], np.float32)})
        info = infos["mg"]
        failed += not info["converged"]
        assert info["safety"] == pytest.approx(CHARGE_MW - LIMIT_MW, rel=0.01)
        expected = -(rw.cost_weight * info["cost"] + rw.safety_weight * env.dt_h * info["safety"]) - info["penalty"]
        assert rewards["mg"] == pytest.approx(expected, rel=1e-12)
    assert failed == 1 and info["penalty"] >= rw.divergence_per_step(env.dt_h) * (env.max_ticks - 2)

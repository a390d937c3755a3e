"""divergence_penalty prices an hour of blackout: a failed flow charges max(divergence_penalty·Δt_h, the worst step
loss so far) per physics step lost, so the same blackout costs the same whatever the physics step (it cost 60× more
at 1 min than at 1 h before: 1000 per step), and a failed step never scores better than a sound one."""

from __future__ import annotations

import re

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv

from .scenarios import load_local

STEPS = {"1min": 180, "15min": 12, "1h": 3}  # physics steps in the 3-h episode
COST_PER_H = 3.0  # 'a' generates 0.3 MW at ConstantPower's 10 $/MWh


@pytest.fixture(scope="module", autouse=True)
def local():
    load_local()


def _episode(physics: str, fail_at_h: float | None, **reward) -> tuple[dict[str, list[float]], dict, float]:
    """case33bw without load over 3 h: learned 'a' generates 0.3 MW (3 $/h), learned 'huge' nothing; at
    ``fail_at_h`` (h from the start) 'huge' draws 120 MW (no flow converges: the episode terminates). Returns each
    agent's rewards, the failed step's infos (or {}) and Δt_h."""
    env = MultiAgentPowerGridEnv.from_config({
        "name": "divergence_per_hour", "network": {"type": "case33bw"}, "spaces": {"action": "physical"},
        "time": {"physics": physics, "episode": "3h"}, "loads": {"scale": {"*": 0.0}, "jitter": 0.0},
        "reward": reward,
        "agents": [{"id": "a", "type": "ConstantPower", "bus": 5, "policy": "learned", "params": {"p_mw": 0.3}},
                   {"id": "huge", "type": "ConstantPower", "bus": 32, "policy": "learned", "params": {"p_mw": -60.0}}]})
    env.reset(seed=0)
    fail_step = None if fail_at_h is None else round(fail_at_h / env.dt_h)
    rewards: dict[str, list[float]] = {"a": [], "huge": []}
    failed: dict = {}
    while env.agents:
        huge = 2.0 if len(rewards["a"]) == fail_step else 0.0
        _, r, _, _, infos = env.step({"a": np.ones(1, np.float32), "huge": np.array([huge], np.float32)})
        for agent in rewards:
            rewards[agent].append(r[agent])
        if not infos["a"]["converged"]:
            failed = infos
    return rewards, failed, env.dt_h


@pytest.mark.parametrize("physics", STEPS)
def test_the_same_blackout_costs_the_same_per_hour_lost_at_any_physics_step(physics):
    """The flow fails at 1 h of 3: 2 h lost at 4000 $/h (the default, above the 3 $/h loss) = 8000 $ at 1 min, 15 min
    and 1 h (was 1000 per step: 120,000 $ at 1 min, 8000 $ at 15 min, 2000 $ at 1 h). The failed step also pays its
    own sound loss, a's 3 $/h (huge would have been paid for its 120 MW: it gets the floor, the worst sound step)."""
    rewards, infos, dt_h = _episode(physics, fail_at_h=1.0)
    assert len(rewards["a"]) == STEPS[physics] // 3 + 1
    # the largest injections against the network's load (none here): 'huge' stands out (r44b F1)
    assert re.fullmatch(r"power flow diverged; largest injections: 'huge' \(device 'ConstantPower' from [^)]+\) -120 MW at "
                        r"bus 32, 'a' \(device 'ConstantPower' from [^)]+\) 0\.3 MW at bus 5; network load 0 MW",
                        infos["a"]["failure"]), infos["a"]["failure"]
    step_loss = COST_PER_H * dt_h
    assert rewards["a"][:-1] == pytest.approx([-step_loss] * (len(rewards["a"]) - 1), rel=1e-9)
    assert rewards["huge"][:-1] == [0.0] * (len(rewards["a"]) - 1)
    for agent in ("a", "huge"):  # hand-computed: 4000 $/h × 2 h lost, plus the failed step's floor
        assert rewards[agent][-1] == pytest.approx(-step_loss - 4000.0 * 2.0, rel=1e-9)
    assert infos["a"]["penalty"] == pytest.approx(8000.0, rel=1e-9)  # a's own cost is the floor: no shortfall


@pytest.mark.parametrize("physics", STEPS)
def test_where_the_losses_exceed_the_price_a_blackout_costs_them_per_hour_and_never_pays(physics):
    """At divergence_penalty 1 $/h, below a's 3 $/h, the worst step loss (per step) prices the steps lost: 3 $/h × 2 h
    at any step. The failed episode returns less than the sound one for both agents (a failed step never scores better
    than a sound one) and the failed step scores below every sound step."""
    failed, infos, dt_h = _episode(physics, fail_at_h=1.0, divergence_penalty=1.0)
    sound, _, _ = _episode(physics, fail_at_h=None, divergence_penalty=1.0)
    assert infos["a"]["penalty"] == pytest.approx(COST_PER_H * 2.0, rel=1e-9)
    assert sum(sound["a"]) == pytest.approx(-COST_PER_H * 3.0, rel=1e-9)
    for agent in ("a", "huge"):  # the failed step: the floor (a's 3 $/h over the step) and 3 $/h × 2 h lost
        assert failed[agent][-1] == pytest.approx(-COST_PER_H * dt_h - COST_PER_H * 2.0, rel=1e-9)
        assert sum(failed[agent]) < sum(sound[agent])
        assert failed[agent][-1] < min(sound[agent])

"""ieee34_3mg through the environment: in ANSI C84.1 range A at idle, and the agents can leave it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv

pytest.importorskip("powergrid_devices")
pytest.importorskip("powergrid_datasets")

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "ieee34_3mg.yaml"
DAYS = 8


def run(env, action):
    """Bus voltages (ticks x buses) over ``DAYS`` one-day episodes with a constant action for every agent."""
    volts = []
    for day in range(DAYS):
        env.reset(seed=1000 + day)
        while env.agents:
            env.step({a: action for a in env.agents})
            assert env.last_result.converged
            volts.append(env.last_result.vm_pu.copy())
    return np.array(volts)


@pytest.fixture(scope="module")
def env():
    return MultiAgentPowerGridEnv.from_config(CONFIG)


def test_idle_in_range_a_and_heavy_charging_leaves_it(env):
    space = env.action_space(env.possible_agents[0])
    idle = run(env, np.zeros(space.shape, np.float32))
    in_band = (idle >= 0.95) & (idle <= 1.05)
    assert in_band.mean() >= 0.98
    # batteries charging at full power with the diesels off (the low corner of the action box)
    charging = run(env, space.low.astype(np.float32))
    mg = env.net.bus.zone.to_numpy() != "feeder"

    def violation(v):
        return (np.maximum(v[:, mg] - 1.05, 0) + np.maximum(0.95 - v[:, mg], 0)).sum()

    assert violation(charging) > 1.3 * violation(idle) > 0

"""ieee34_3mg through the environment: inside the reward's band (0.95–1.05 pu) at idle, and the agents can leave it.

The band is a ±5 % planning band at every bus, most of them medium-voltage, where ANSI C84.1's range A for service
voltage is narrower (0.975–1.05 pu as we read it; docs/networks.md). "Idle" here is the normalised action 0 of every
learned agent, the centre of its action box: batteries idle, gensets at half (evaluate's ``zero`` policy, physical
zeros, turns the gensets off)."""

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


@pytest.fixture(scope="module")
def idle(env):
    return run(env, np.zeros(env.action_space(env.possible_agents[0]).shape, np.float32))


def test_idle_feeder_at_most_1_05(env, idle):
    """The feeder's 34 buses are in no agent's zone: at idle none exceeds 1.05 pu on any tick. Before (the regulators'
    published LDC volts on the rebuilt 336 ACSR line, and a regulator pushed out of band by another's move left there
    for the tick) 832-864 reached 1.0575 pu at load peaks (35 of 1,536 ticks over 16 days; in these 8 days 19 ticks up
    to 1.0526 pu, 18 with the control change alone, 2 with the new LDC settings alone)."""
    feeder = env.net.bus.zone.to_numpy() == "feeder"
    assert idle[:, feeder].max() <= 1.05 + 1e-9


def test_idle_keeps_every_bus_in_band_on_most_ticks(env, idle):
    """Over the 768 ticks of the 8 days, every one of the 73 buses is inside the band on all but 25 (96.7 %), and
    99.81 % of bus-ticks are, at 7ba7026 (every bus out is below 0.95 pu: microgrid buses on 24 ticks, the feeder's
    890 at 0.948 pu on one).
    The bounds allow twice today's ticks and bus-ticks out (50 ticks, 0.4 %), so a calibration that left the band
    several times as often fails: the low corner of the action box (batteries charging, gensets and PV off) has 68
    ticks and 1.04 % of bus-ticks out and fails both (until this test only ≥ 98 % of bus-ticks was asked)."""
    in_band = (idle >= 0.95) & (idle <= 1.05)
    ticks_out = int((~in_band.all(axis=1)).sum())
    assert ticks_out <= 50, f"{ticks_out} of {len(idle)} ticks with a bus outside 0.95–1.05 pu"
    assert in_band.mean() >= 0.996, f"{in_band.mean():.5f} of bus-ticks in band"


def test_heavy_charging_leaves_the_band(env, idle):
    space = env.action_space(env.possible_agents[0])
    # batteries charging at full power with the diesels off (the low corner of the action box)
    charging = run(env, space.low.astype(np.float32))
    mg = env.net.bus.zone.to_numpy() != "feeder"

    def violation(v):
        return (np.maximum(v[:, mg] - 1.05, 0) + np.maximum(0.95 - v[:, mg], 0)).sum()

    assert violation(charging) > 1.3 * violation(idle) > 0

"""EVCharger: seeded sessions, charging limits, unmet energy at departure, V2G."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.config import RewardConfig
from tests.devices.helpers import at, context, make

FIXED = dict(n_ports=1, arrival_mean_h=0.0, arrival_std_h=0.0, dwell_mean_h=1.0, dwell_std_h=0.0,
             energy_min_mwh=0.02, energy_max_mwh=0.02, p_port_mw=0.022, efficiency=0.93, battery_mwh=0.06)


def test_full_charging_meets_the_request() -> None:
    ev = make("EVCharger", **FIXED)
    ctx = context()
    e0 = None
    for t in range(4):
        ev.step(np.array([1.0]), at(ctx, t))
        e0 = e0 if e0 is not None else ev.energy[0] - 0.93 * 0.022 * 0.25
        if t < 3:
            assert ev.energy[0] == pytest.approx(e0 + (t + 1) * 0.93 * 0.022 * 0.25)
    assert not ev.plugged[0] and ev.unmet_mwh == 0.0 and ev.safety == 0.0
    assert ev.p_mw == pytest.approx(-0.022)


def test_half_charging_leaves_unmet_energy_as_safety_or_cost() -> None:
    for unmet_as in ("safety", "cost"):
        ev = make("EVCharger", unmet_as=unmet_as, unmet_cost=300.0, **FIXED)
        ctx = context()
        for t in range(4):
            ev.step(np.array([0.5]), at(ctx, t))
        unmet = 0.02 - 4 * 0.93 * 0.011 * 0.25
        assert ev.unmet_mwh == pytest.approx(unmet)
        if unmet_as == "safety":
            assert ev.safety == pytest.approx(unmet / 0.25) and ev.cost == 0.0  # MWh per hour of the step
        else:
            assert ev.cost == pytest.approx(300.0 * unmet) and ev.safety == 0.0


def test_empty_port_projects_to_zero() -> None:
    ev = make("EVCharger", **{**FIXED, "arrival_mean_h": 12.0})
    ev.step(np.array([0.7]), context())
    assert ev.p_mw == 0.0 and ev.projection == pytest.approx(0.7)


def test_v2g_stops_at_the_soc_floor() -> None:
    ev = make("EVCharger", v2g=True, p_v2g_mw=0.011, soc_v2g_min=0.2, v2g_cost=20.0, **FIXED)
    ctx = context()
    ev.step(np.array([0.0]), at(ctx, 0))
    ev.energy[0] = 0.2 * 0.06 + 0.001  # 1 kWh above the floor
    ev.step(np.array([-1.0]), at(ctx, 1))
    out = 0.001 * 0.93 / 0.25  # MW that empties the kWh in one step
    assert ev.p_mw == pytest.approx(out)
    assert ev.energy[0] == pytest.approx(0.2 * 0.06)
    assert ev.projection == pytest.approx(1.0 - out / 0.011)
    assert ev.cost == pytest.approx(20.0 * out * 0.25)


def test_sessions_are_seeded() -> None:
    def sessions(seed: int) -> list[float]:
        ev = make("EVCharger", n_ports=4, seed=seed)
        ctx = context()
        out = []
        for t in range(96):
            ev.step(ev.rule_action(at(ctx, t)), ctx)
            out.append(ev.p_mw)
        return out

    assert sessions(1) == sessions(1) != sessions(2)
    assert min(sessions(1)) < 0  # somebody charged


@pytest.mark.parametrize("unmet_as", ["safety", "cost"])
def test_energy_still_missing_at_the_episodes_last_tick_counts(unmet_as: str) -> None:
    """An EV that leaves after the episode's end counts what it misses at the last tick (before: nothing, so
    ev_depot's buses, plugged 18:00 to 05:00, could be drained by V2G at no penalty)."""
    fixed = {**FIXED, "dwell_mean_h": 5.0, "v2g": True}
    ev = make("EVCharger", unmet_as=unmet_as, unmet_cost=300.0, **fixed)
    ctx = context(n=8)  # a 2-hour episode
    for t in range(8):
        ev.step(np.array([-1.0]), at(ctx, t))
        if t < 7:
            assert ev.unmet_mwh == 0.0
    assert ev.plugged[0]
    missing = ev.target[0] - ev.energy[0]
    assert missing >= 0.02 - 1e-12 and ev.unmet_mwh == pytest.approx(missing)
    assert (ev.safety if unmet_as == "safety" else ev.cost - 20.0 * ev.p_mw * 0.25) == pytest.approx(
        missing / 0.25 if unmet_as == "safety" else 300.0 * missing)


@pytest.mark.parametrize("dt_h", [0.25, 1.0])
def test_the_reward_charges_safety_weight_per_unmet_mwh_whatever_the_step(dt_h: float) -> None:
    """An EV that is never charged leaves after its 1-h dwell missing its 0.02 MWh: the reward's safety charge,
    ``safety_weight·dt_h·safety``, is 40 $/MWh · 0.02 MWh = 0.8 $ at 15-min and at 1-h physics (before: the MWh
    itself was the safety, 0.2 $ at 15 min and 0.8 $ at 1 h)."""
    ev = make("EVCharger", dt_h=dt_h, **FIXED)
    ctx = context(n=round(2 / dt_h), dt_h=dt_h)
    for t in range(round(1 / dt_h)):
        ev.step(np.array([0.0]), at(ctx, t))
    assert not ev.plugged[0] and ev.unmet_mwh == pytest.approx(0.02)
    assert RewardConfig().safety_per_step(dt_h) * ev.safety == pytest.approx(40.0 * 0.02)


@pytest.mark.parametrize("c", [0.003, -0.003])
def test_a_rate_inside_the_limits_projects_to_zero_not_below(c: float) -> None:
    """c·p/p can round above |c| (c = 0.003 as float32, p 0.05 or 0.025 MW: −4.3e-19), which made the projection
    distance negative (ev_depot's random episodes: −1e-16, rejected by tests/devices/test_configs.py)."""
    ev = make("EVCharger", v2g=True, p_v2g_mw=0.025, **{**FIXED, "p_port_mw": 0.05})
    ctx = context()
    ev.step(np.array([0.0]), at(ctx, 0))
    ev.energy[0] = 0.05  # well above the V2G floor (0.2 · 0.06 MWh) and below the battery's 0.06 MWh
    ev.step(np.array([c], np.float32), at(ctx, 1))
    assert ev.p_mw != 0.0 and ev.projection >= 0.0

"""ESS: SOC bookkeeping, self-discharge, P/Q capability, projection, cost and safety."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.devices.helpers import at, context, make


def test_charge_moves_soc_by_the_hand_computed_amount() -> None:
    ess = make("ESS", p_max_mw=0.5, capacity_mwh=2.0, eta_charge=0.95, soc_init=0.5)
    ctx = context()
    for t in range(3):
        ess.step(np.array([-0.5]), at(ctx, t))
        assert ess.soc == pytest.approx(0.5 + (t + 1) * 0.059375, abs=1e-12)  # 0.5 MW·0.25 h·0.95/2 MWh
    assert ess.p_mw == -0.5 and ess.projection == 0.0


def test_discharge_divides_by_efficiency_and_costs_degradation() -> None:
    ess = make("ESS", capacity_mwh=2.0, eta_discharge=0.9, degradation_cost=10.0)
    ess.step(np.array([0.4]), context())
    assert ess.soc == pytest.approx(0.5 - 0.4 * 0.25 / (0.9 * 2.0))
    assert ess.cost == pytest.approx(10.0 * 0.4 * 0.25)
    assert ess.safety == 0.0


def test_self_discharge_over_idle_steps() -> None:
    ess = make("ESS", self_discharge=0.01, soc_init=0.8, soc_max=0.9)
    ctx = context()
    for t in range(4):
        ess.step(np.array([0.0]), at(ctx, t))
    assert ess.soc == pytest.approx(0.8 * (1 - 0.01), rel=1e-12)  # an hour of quarter-hour steps loses 1 %


@pytest.mark.parametrize("dt_h", [1 / 60, 0.25, 1.0, 4.0])
def test_self_discharge_loses_its_fraction_per_hour_at_any_step(dt_h: float) -> None:
    # 0.3/h over 4 h idle leaves 0.8·0.7⁴ of the capacity at every step length (with soc·(1 − σ·dt) it was 0.240 at
    # 1-min steps, 0.230 at 15 min, 0.192 at 1 h, and at 4-h steps the SOC went negative: 0 and 0.2 MWh of safety)
    ess = make("ESS", dt_h=dt_h, self_discharge=0.3, soc_min=0.1, soc_init=0.8, capacity_mwh=2.0)
    n = round(4.0 / dt_h)
    ctx = context(n, dt_h=dt_h)
    for t in range(n):
        ess.step(np.array([0.0]), at(ctx, t))
        assert ess.safety == 0.0
    assert ess.soc == pytest.approx(0.8 * 0.7**4, rel=1e-9)


def test_projection_at_the_soc_limit_lands_exactly_on_it() -> None:
    ess = make("ESS", capacity_mwh=2.0, soc_init=0.88, soc_max=0.9)
    ess.step(np.array([-0.5]), context())
    allowed = (0.9 - 0.88) * 2.0 / (0.95 * 0.25)
    assert ess.p_mw == pytest.approx(-allowed)
    assert ess.projection == pytest.approx(0.5 - allowed)
    assert ess.soc == pytest.approx(0.9)
    assert ess.safety == 0.0


def test_self_discharge_below_the_floor_is_a_safety_violation() -> None:
    ess = make("ESS", capacity_mwh=2.0, soc_min=0.1, soc_init=0.1, self_discharge=0.1)
    ess.step(np.array([0.0]), context())
    assert ess.soc == pytest.approx(0.1 * (1 - 0.1) ** 0.25)
    assert ess.safety == pytest.approx((0.1 - ess.soc) * 2.0)


def test_inverter_limits_q_with_active_power_priority() -> None:
    ess = make("ESS", p_max_mw=0.5, s_max_mva=0.6)
    assert ess.action_space.shape == (2,)
    ess.step(np.array([0.5, 0.5]), context())
    assert ess.q_mvar == pytest.approx(math.sqrt(0.6**2 - 0.5**2))
    assert ess.projection == pytest.approx(0.5 - math.sqrt(0.11))
    assert len(ess.observe()) == 3


def test_nan_action_idles_and_counts_the_full_range() -> None:
    ess = make("ESS", p_max_mw=0.5)
    ess.step(np.array([np.nan]), context())
    assert ess.p_mw == 0.0 and ess.projection == pytest.approx(1.0)


def test_price_arbitrage_charges_when_cheap_and_discharges_when_dear() -> None:
    """The ``price_arbitrage`` policy's action about a mean price of 50 $/MWh at band 0.1: idle at the mean."""
    ess = make("ESS", arbitrage_band=0.1)
    for price, sign in ((50.0, 0), (30.0, -1), (80.0, 1)):
        assert np.sign(ess.arbitrage_action(price, 50.0)[0]) == sign, price


def test_price_arbitrage_keeps_its_idle_band_at_a_negative_mean_price() -> None:
    # after −10 $/MWh, a price x has the mean (x − 10)/2 and idles within 10 % of it: −9.5 and −10.5 idle, −14 charges,
    # −8 discharges (with (1 ∓ band)·mean the thresholds swapped: it charged at the mean, −9.5 and −10.5, no idle band)
    ess = make("ESS", arbitrage_band=0.1)
    for price, sign in ((-9.5, 0), (-10.5, 0), (-14.0, -1), (-8.0, 1)):
        assert np.sign(ess.arbitrage_action(price, (price - 10.0) / 2)[0]) == sign, price


def test_seeded_initial_soc() -> None:
    a = make("ESS", soc_init_spread=0.2, seed=3)
    b = make("ESS", soc_init_spread=0.2, seed=3)
    c = make("ESS", soc_init_spread=0.2, seed=4)
    assert a.soc == b.soc != c.soc
    assert 0.3 <= a.soc <= 0.7

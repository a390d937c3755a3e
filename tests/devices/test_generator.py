"""DG: fuel cost curves, ramps, unit commitment with minimum up/down time, PF-limited Q."""

from __future__ import annotations

import numpy as np
import pytest

from tests.devices.helpers import at, context, make


def test_quadratic_fuel_cost() -> None:
    dg = make("DG", p_max_mw=0.6, cost_a=10.0, cost_b=50.0, cost_c=5.0)
    dg.step(np.array([0.4]), context())
    assert dg.cost == pytest.approx((10 * 0.16 + 50 * 0.4 + 5) * 0.25)


def test_piecewise_linear_fuel_cost() -> None:
    dg = make("DG", cost_curve="piecewise", pwl_mw=[0.0, 0.3, 0.6], pwl_cost_per_h=[0.0, 15.0, 36.0])
    dg.step(np.array([0.45]), context())
    assert dg.cost == pytest.approx((15.0 + 0.5 * 21.0) * 0.25)


def test_ramp_limit_over_several_steps() -> None:
    dg = make("DG", p_min_mw=0.1, p_max_mw=0.6, ramp_up_mw_per_h=0.4)
    ctx = context()
    for t, expected in enumerate([0.2, 0.3, 0.4]):
        dg.step(np.array([0.6]), at(ctx, t))
        assert dg.p_mw == pytest.approx(expected)
        assert dg.projection == pytest.approx(0.6 - expected)


def test_minimum_stable_output() -> None:
    dg = make("DG", p_min_mw=0.2)
    dg.step(np.array([0.05]), context())
    assert dg.p_mw == 0.2 and dg.projection == pytest.approx(0.15)


def test_commitment_minimum_down_time_then_start_up_cost() -> None:
    dg = make("DG", commitment=True, on_init=False, min_down_h=1.0, min_up_h=0.5, startup_cost=100.0,
              p_min_mw=0.2, ramp_up_mw_per_h=1.2, cost_a=0.0, cost_b=50.0)
    assert dg.action_space.shape == (2,)
    ctx = context()
    for t in range(4):  # one hour off first
        dg.step(np.array([0.5, 1.0]), at(ctx, t))  # [p, u]
        assert not dg.on and dg.p_mw == 0.0 and dg.cost == 0.0
        assert dg.projection == pytest.approx(1.0 + 0.5)
    dg.step(np.array([0.5, 1.0]), at(ctx, 4))
    assert dg.on and dg.p_mw == pytest.approx(0.3)  # start-up ramp max(p_min, RU·dt) = 0.3
    assert dg.cost == pytest.approx(100.0 + 50.0 * 0.3 * 0.25)
    dg.step(np.array([0.0, 0.0]), at(ctx, 5))  # shut-down refused: up 0.25 h < 0.5 h
    assert dg.on and dg.p_mw == pytest.approx(0.2)
    dg.step(np.array([0.0, 0.0]), at(ctx, 6))
    assert not dg.on and dg.p_mw == 0.0


def test_power_factor_limits_q() -> None:
    dg = make("DG", p_max_mw=0.6, pf_min=0.8)
    dg.step(np.array([0.4, 0.45]), context())
    assert dg.q_mvar == pytest.approx(0.4 * 0.75)
    assert dg.projection == pytest.approx(0.45 - 0.3)


def test_rule_dispatches_where_marginal_cost_meets_price() -> None:
    dg = make("DG", p_max_mw=0.6, cost_a=100.0, cost_b=20.0)
    ctx = context(price=80.0)
    assert dg.rule_action(ctx)[0] == pytest.approx(0.3)  # 2·100·p + 20 = 80


def test_feasible_range_is_the_ramp_window_while_on_and_nothing_while_off() -> None:
    """What protocols may dispatch next step (``powergrid.protocols.mw_range``): the ramp window around the last
    output within [p_min, p_max] (before: the action bounds, whatever the ramp)."""
    dg = make("DG", p_min_mw=0.1, p_max_mw=0.6, ramp_up_mw_per_h=0.4, ramp_down_mw_per_h=0.2)
    assert dg.feasible_range() == pytest.approx((0.1, 0.2))  # from p_min: +0.4 MW/h · 0.25 h
    dg.step(np.array([0.2]), context())
    assert dg.feasible_range() == pytest.approx((0.15, 0.3))
    off = make("DG", commitment=True, on_init=False)
    assert off.feasible_range() == (0.0, 0.0)


@pytest.mark.parametrize("case", ["start", "stop", "refused"])
def test_feasible_range_under_an_on_off_request_is_what_the_step_holds(case) -> None:
    """With an action, the range follows its on/off request (before: always the present state's, so a protocol
    dispatched a starting unit at 0 MW and a stopping one above 0). A request the unit cannot honour (min_up_h)
    keeps the present range."""
    on = case != "start"
    dg = make("DG", commitment=True, on_init=on, p_min_mw=0.1, p_max_mw=0.6, ramp_up_mw_per_h=1.2,
              min_up_h=1.0 if case == "refused" else 0.0)
    if on:
        dg.step(dg.actions.pack(p=0.1, u=1.0), context())  # at p_min: it may shut down
    action = dg.actions.pack(p=0.5, u=0.0 if on else 1.0)
    expected = {"start": (0.1, 0.3), "stop": (0.0, 0.0), "refused": (0.1, 0.4)}[case]  # start: p_min, RU·dt
    assert dg.feasible_range(action) == pytest.approx(expected)
    assert dg.feasible_range() == pytest.approx((0.0, 0.0) if case == "start" else (0.1, 0.4))  # no request
    dg.step(action, context())
    assert dg.p_mw == pytest.approx(min(max(0.5, expected[0]), expected[1]))

"""FlexibleLoad: curtailment, deferral into and recovery from the backlog, discomfort, end-of-episode safety."""

from __future__ import annotations

import numpy as np
import pytest

from tests.devices.helpers import at, context, make


def test_curtail_and_defer_then_recover() -> None:
    flex = make("FlexibleLoad", p_base_mw=0.2, pf=1.0, shift_max_mw=0.05, curtail_cost=200.0, delay_cost=5.0)
    ctx = context(n=3, load=1.0)
    flex.step(np.array([0.1, 0.5]), at(ctx, 0))
    assert flex.p_mw == pytest.approx(-(0.18 - 0.025))
    assert flex.backlog == pytest.approx(0.025 * 0.25)
    assert flex.cost == pytest.approx(200 * 0.1 * 0.2 * 0.25 + 5 * 0.00625 * 0.25)
    assert flex.safety == 0.0 and flex.projection == 0.0
    flex.step(np.array([0.0, -1.0]), at(ctx, 1))  # recover at most B/dt = 0.025 MW
    assert flex.p_mw == pytest.approx(-0.225)
    assert flex.backlog == pytest.approx(0.0)
    assert flex.projection == pytest.approx(0.5)


def test_backlog_left_at_the_end_is_unsafe() -> None:
    flex = make("FlexibleLoad", p_base_mw=0.2)
    ctx = context(n=2, load=1.0)
    flex.step(np.array([0.0, 1.0]), at(ctx, 0))
    assert flex.safety == 0.0
    flex.step(np.array([0.0, 1.0]), at(ctx, 1))
    assert flex.safety == pytest.approx(flex.backlog) and flex.backlog == pytest.approx(2 * 0.05 * 0.25)


def test_power_factor_gives_absorbed_q() -> None:
    flex = make("FlexibleLoad", p_base_mw=0.2, pf=0.8)
    flex.step(None, context(load=1.0))
    assert flex.q_mvar == pytest.approx(-0.2 * 0.75)

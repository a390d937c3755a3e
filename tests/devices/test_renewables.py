"""PV and Wind: available power, curtailment, inverter Q, power curve."""

from __future__ import annotations

import math

import numpy as np
import pytest

from powergrid_devices.wind import power_curve
from tests.devices.helpers import at, context, make


def test_pv_profile_curtailment() -> None:
    pv = make("PV", p_max_mw=0.2)
    pv.step(np.array([0.5]), context(solar=0.5))
    assert pv.p_mw == pytest.approx(0.05) and pv.available == pytest.approx(0.1)


def test_pv_irradiance_with_cell_temperature() -> None:
    pv = make("PV", p_max_mw=0.2, model="irradiance", noct_c=45.0, gamma_per_c=-0.004)
    pv.step(np.array([1.0]), context(solar=0.8, temperature=25.0))
    t_cell = 25.0 + 25.0 * 800.0 / 800.0
    assert pv.p_mw == pytest.approx(0.2 * 0.8 * (1 - 0.004 * (t_cell - 25.0)))


def test_pv_q_capability_and_night_volt_var() -> None:
    pv = make("PV", p_max_mw=0.2, s_max_mva=0.25)
    pv.step(np.array([1.0, -0.25]), context(solar=1.0))
    assert pv.q_mvar == pytest.approx(-math.sqrt(0.25**2 - 0.2**2))
    pv.step(np.array([1.0, 0.25]), context(solar=0.0))
    assert pv.p_mw == 0.0 and pv.q_mvar == pytest.approx(0.25)


@pytest.mark.parametrize(("v", "expected"), [(2.0, 0.0), (3.0, 0.0), (8.0, 2.0 * (512 - 27) / (1728 - 27)),
                                              (12.0, 2.0), (20.0, 2.0), (25.0, 0.0)])
def test_power_curve(v: float, expected: float) -> None:
    assert power_curve(v, 2.0, 3.0, 12.0, 25.0) == pytest.approx(expected)


def test_wind_from_speed_profile_and_curtailment() -> None:
    wind = make("Wind", p_rated_mw=2.0, speed_profile="wind_speed")
    ctx = context(n=3)
    ctx.profiles = {**ctx.profiles, "wind_speed": np.array([8.0, 13.0, 30.0])}
    expected = [2.0 * 485 / 1701, 2.0, 0.0]
    for t in range(3):
        wind.step(np.array([0.5]), at(ctx, t))
        assert wind.p_mw == pytest.approx(0.5 * expected[t])


def test_wind_from_power_profile() -> None:
    wind = make("Wind", p_rated_mw=2.0)
    wind.step(None, context(wind=0.4))
    assert wind.p_mw == pytest.approx(0.8)

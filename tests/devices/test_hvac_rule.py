"""The HVAC's rule: the least conditioning that keeps the room ``margin_c`` inside its comfort band, and the
``thermostat`` policy beside it (bang-bang about the band centre)."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.params import build_params
from powergrid_devices.thermal import Hysteresis, rc_step, thermostat_act
from tests.devices.helpers import at, context, device_class, make

BUILDING = {"p_max_mw": 0.02, "cop_heat": 3.5, "cop_cool": 3.0, "r_c_per_kw": 0.5, "c_kwh_per_c": 40.0,
            "gain_kw": 4.0, "t_min_c": 20.0, "t_max_c": 24.0, "margin_c": 0.25}


def _free(hvac, t_out_c: float) -> float:
    p = hvac.params
    return rc_step(hvac.t_c, t_out_c, p.r_c_per_kw, p.c_kwh_per_c, p.gain_kw, hvac.dt_h)


def test_the_rule_leaves_the_hvac_off_while_the_room_floats_inside_the_band() -> None:
    hvac = make("HVAC", t_init_c=22.0, **BUILDING)
    ctx = context(temperature=18.0)
    assert 20.25 < _free(hvac, 18.0) < 23.75
    assert hvac.rule_action(ctx)[0] == 0.0


@pytest.mark.parametrize(("t_init_c", "t_out_c", "edge"), [(20.3, 5.0, 20.25), (23.7, 35.0, 23.75)])
def test_the_rule_conditions_just_enough_to_end_the_step_at_the_nearer_edge(t_init_c, t_out_c, edge) -> None:
    hvac = make("HVAC", t_init_c=t_init_c, **BUILDING)
    ctx = context(temperature=t_out_c)
    action = hvac.rule_action(ctx)
    assert 0.0 < abs(action[0]) < 1.0 and np.sign(action[0]) == np.sign(22.0 - edge)  # heats when cold, cools when hot
    hvac.step(action, ctx)
    assert hvac.t_c == pytest.approx(edge, abs=1e-4)  # the action is float32
    assert hvac.safety == 0.0


def test_the_rule_runs_at_full_power_when_the_edge_is_out_of_reach() -> None:
    hvac = make("HVAC", t_init_c=20.3, **{**BUILDING, "p_max_mw": 0.002})  # 7 kW of heat against ~50 kW lost
    ctx = context(temperature=-5.0)
    action = hvac.rule_action(ctx)
    assert action[0] == 1.0
    hvac.step(action, ctx)
    assert hvac.t_c < 20.25


def test_over_a_day_the_rule_holds_the_band_on_less_energy_than_the_thermostat() -> None:
    """The built-in 11–25 °C day: the thermostat heats to 22 °C while it is cooler outside and cools to 22 °C while it
    is warmer, the rule lets the room float between 20.25 and 23.75 °C."""
    rule, thermostat = make("HVAC", t_init_c=22.0, **BUILDING), make("HVAC", t_init_c=22.0, **BUILDING)
    state, ctx = Hysteresis(), context()
    energy = {"rule": 0.0, "thermostat": 0.0}
    for tick in range(96):
        at(ctx, tick)
        rule.step(rule.rule_action(ctx), ctx)
        thermostat.step(thermostat_act(thermostat, state, ctx), ctx)
        assert rule.safety == 0.0 and thermostat.safety == 0.0
        assert 20.25 - 1e-4 <= rule.t_c <= 23.75 + 1e-4
        energy["rule"] -= rule.p_mw * ctx.dt_h
        energy["thermostat"] -= thermostat.p_mw * ctx.dt_h
    assert energy["rule"] < 0.5 * energy["thermostat"], energy


def test_the_thermostat_has_hysteresis_about_the_band_centre() -> None:
    hvac, state = make("HVAC", t_min_c=20.0, t_max_c=24.0, deadband_c=1.0), Hysteresis()
    ctx = context(temperature=5.0)
    for t_c, u in ((21.0, 1.0), (22.2, 1.0), (22.6, 0.0), (22.2, 0.0)):  # below 21.5 heat, on until above 22.5
        hvac.t_c = t_c
        assert thermostat_act(hvac, state, ctx)[0] == u, t_c
    hvac.t_c = 23.0
    assert thermostat_act(hvac, state, context(temperature=30.0))[0] == -1.0  # hot outside: cooling mode


def test_a_margin_of_half_the_band_is_refused() -> None:
    with pytest.raises(ValueError, match=r"margin_c < half the comfort band \(2.0 °C\), got 2.0"):
        build_params(device_class("HVAC").Params, {**BUILDING, "margin_c": 2.0})

"""HVAC, HeatPump and WaterHeater: exact RC steps, COP, comfort band, high-limit cutout, thermostat."""

from __future__ import annotations

import math

import numpy as np
import pytest

from powergrid_devices.thermal import CP_WATER_KWH
from powergrid_devices.water_heater import DEFAULT_DRAW_SHAPE
from tests.devices.helpers import at, context, make


def _rc(t: float, t_a: float, r: float, c: float, q: float, dt: float = 0.25) -> float:
    t_inf = t_a + r * q
    return t_inf + (t - t_inf) * math.exp(-dt / (r * c))


def test_hvac_heating_over_steps() -> None:
    hvac = make("HVAC", p_max_mw=0.05, cop_heat=3.0, r_c_per_kw=0.1, c_kwh_per_c=100.0, gain_kw=5.0, t_init_c=22.0)
    ctx = context(temperature=10.0)
    t = 22.0
    for k in range(3):
        hvac.step(np.array([0.5]), at(ctx, k))
        t = _rc(t, 10.0, 0.1, 100.0, 3.0 * 25.0 + 5.0)
        assert hvac.t_c == pytest.approx(t)
    assert hvac.p_mw == pytest.approx(-0.025)
    assert hvac.safety == 0.0


def test_hvac_cooling_and_comfort_violation() -> None:
    hvac = make("HVAC", t_init_c=20.0, gain_kw=0.0, discomfort_cost=2.0)
    hvac.step(np.array([-1.0]), context(temperature=-10.0))
    expected = _rc(20.0, -10.0, 0.1, 100.0, -3.0 * 50.0)
    assert hvac.t_c == pytest.approx(expected)
    assert hvac.safety == pytest.approx(20.0 - expected)
    assert hvac.cost == pytest.approx(2.0 * (20.0 - expected) * 0.25)


def test_heat_pump_carnot_cop_and_store_step() -> None:
    hp = make("HeatPump", p_max_mw=0.02, carnot_fraction=0.45, t_init_c=45.0, c_kwh_per_c=5.0, r_c_per_kw=20.0,
              ua_kw_per_c=3.0, t_base_c=18.0)
    hp.step(np.array([0.5]), context(temperature=5.0))
    cop = 0.45 * (45.0 + 273.15) / 40.0
    assert hp.k == pytest.approx(cop)
    assert hp.draw_kw == pytest.approx(3.0 * 13.0)
    assert hp.t_c == pytest.approx(_rc(45.0, 20.0, 20.0, 5.0, cop * 10.0 - 39.0))
    assert hp.p_mw == pytest.approx(-0.01)


def test_heat_pump_linear_cop() -> None:
    hp = make("HeatPump", cop_model="linear", cop_a=3.0, cop_b=0.08)
    hp.step(np.array([0.2]), context(temperature=-5.0))
    assert hp.k == pytest.approx(2.6)


def test_heat_pump_cutout_projects_to_t_max() -> None:
    hp = make("HeatPump", t_init_c=54.9, t_max_c=55.0, ua_kw_per_c=0.0)
    hp.step(np.array([1.0]), context(temperature=10.0))
    assert hp.t_c == pytest.approx(55.0)
    assert 0.0 < hp.u < 1.0 and hp.projection == pytest.approx(1.0 - hp.u)
    assert hp.safety == 0.0


def test_heat_pump_too_cold_store_is_unsafe() -> None:
    hp = make("HeatPump", t_init_c=35.0, t_min_c=35.0, ua_kw_per_c=10.0)
    hp.step(np.array([0.0]), context(temperature=-5.0))
    assert hp.safety == pytest.approx(35.0 - hp.t_c) and hp.safety > 0


def test_heat_pump_buffer_stops_at_the_room_and_counts_the_heat_it_could_not_give() -> None:
    """Defaults (C 5 kWh/°C, R 20 °C/kW to a 20 °C room, UA 3 kW/°C, T_base 18 °C), dt 0.25 h. Before r46e F1 the
    demand was drawn whatever the store's temperature: left off at 5 °C outdoor it reached −126.8 °C in 24 h."""
    decay = math.exp(-0.25 / (20.0 * 5.0))
    # 21 °C, off, 5 °C outdoor: the demand 3·13 = 39 kW would take it to 21·d + 20·(1 − d) − 20·39·(1 − d) < 20; the
    # store serves the constant draw that lands it on 20 °C, Q_s = (21 − 20)·d/(R·(1 − d)) = 19.97501 kW
    hp = make("HeatPump", t_init_c=21.0)
    hp.step(np.array([0.0]), context(temperature=5.0))
    served = 1.0 * decay / (20.0 * (1.0 - decay))
    assert served == pytest.approx(19.97501, abs=1e-5)
    assert hp.t_c == pytest.approx(20.0, abs=1e-12)
    assert hp.unmet_kwh == pytest.approx((39.0 - served) * 0.25, rel=1e-12)
    assert hp.state_dict()["unmet_kwh"] == hp.unmet_kwh
    assert hp.safety == pytest.approx(15.0 + (39.0 - served) / 3.0, rel=1e-12)  # T_min − T, plus Q_u/UA
    # at the floor, full power, −20 °C outdoor: COP = 0.45·293.15/40 = 3.2979375, heat 65.95875 kW, all of it served
    # (no losses at the room's temperature), demand 3·38 = 114 kW: 48.04125 kW unmet, the store stays at 20 °C
    hp = make("HeatPump", t_init_c=20.0)
    hp.step(np.array([1.0]), context(temperature=-20.0))
    assert hp.k == pytest.approx(3.2979375, rel=1e-12) and hp.u == 1.0
    assert hp.t_c == pytest.approx(20.0, abs=1e-12)
    assert hp.unmet_kwh == pytest.approx(48.04125 * 0.25, rel=1e-12)
    assert hp.safety == pytest.approx(15.0 + 48.04125 / 3.0, rel=1e-12)  # 31.01375 °C
    # a day left off at 5 and −10 °C: never below the room; at the room the whole demand is unmet, T_base − T_out
    for t_out in (5.0, -10.0):
        hp, ctx = make("HeatPump", t_init_c=45.0), context(96, temperature=t_out)
        for k in range(96):
            hp.step(np.array([0.0]), at(ctx, k))
            assert hp.t_c >= 20.0 - 1e-9
        assert hp.unmet_kwh == pytest.approx(3.0 * (18.0 - t_out) * 0.25, rel=1e-9)
        assert hp.safety == pytest.approx(15.0 + 18.0 - t_out, rel=1e-9)


def test_water_heater_tank_with_draw() -> None:
    wh = make("WaterHeater", daily_draw_l=200.0, draw_spread=0.0, volume_l=200.0, ua_w_per_c=2.0, efficiency=0.98,
              p_max_mw=0.0045, t_init_c=60.0)
    ctx = context(temperature=10.0)
    wh.step(np.array([1.0]), at(ctx, 28))  # 07:00
    flow = 200.0 * DEFAULT_DRAW_SHAPE[7] / sum(DEFAULT_DRAW_SHAPE)  # L/h
    g = 2.0 / 1000.0 + flow * CP_WATER_KWH  # kW/°C
    t_a = (2.0 / 1000.0 * 20.0 + flow * CP_WATER_KWH * 10.0) / g
    assert wh.t_c == pytest.approx(_rc(60.0, t_a, 1.0 / g, 200.0 * CP_WATER_KWH, 0.98 * 4.5))
    assert wh.p_mw == pytest.approx(-0.0045)


def test_thermostat_policy_matches_device_rule() -> None:
    wh = make("WaterHeater", t_set_c=60.0, deadband_c=8.0, t_init_c=55.0)
    assert wh.rule_action(context())[0] == 1.0
    wh.t_c = 58.0
    assert wh.rule_action(context())[0] == 1.0
    wh.t_c = 64.5
    assert wh.rule_action(context())[0] == 0.0

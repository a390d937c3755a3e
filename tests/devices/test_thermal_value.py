"""The HVAC room's and the heated stores' heat as a store (``HVAC.stored_mwh``, ``HeatedStore.stored_mwh``): the
reward values the change of the temperature over an episode like a battery's charge, so a room left to drift or a tank
left to cool at the end no longer pays."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.evaluate import run_episode
from powergrid_devices.thermal import heat_to_reach
from tests.conftest import CONFIGS
from tests.devices.helpers import at, context, make
from tests.devices.test_hvac_rule import BUILDING
from tests.integration.test_building_hvac_calibration import _rule, _thermostat

pytest.importorskip("powergrid_datasets.embedded", reason="building_hvac's prices are the CAISO 2023 extract")

HEAT, COOL = 10.0, 30.0  # outdoor °C: with R·gain = 2 °C the room off settles at 12 °C (heating) or 32 °C (cooling)


@pytest.mark.parametrize(("t_c", "t_out_c", "kwh"), [
    (21.0, HEAT, -40.0 * 1.0 / 3.5),  # heating: a room 1 °C colder owes the heat C·1 °C at COP 3.5
    (23.0, HEAT, 40.0 * 1.0 / 3.5),  # ... 1 °C warmer saves it
    (25.0, HEAT, 40.0 * 2.0 / 3.5),  # above the band: only up to T_max = 24 °C
    (19.0, HEAT, -40.0 * 3.0 / 3.5),  # below the band: the whole of it is owed
    (23.0, COOL, -40.0 * 1.0 / 3.0),  # cooling: a room 1 °C warmer owes the cooling C·1 °C at COP 3.0
    (21.0, COOL, 40.0 * 1.0 / 3.0),
    (19.0, COOL, 40.0 * 2.0 / 3.0),  # below the band: only down to T_min = 20 °C
    (25.0, COOL, -40.0 * 3.0 / 3.0),
    (21.0, 17.9, -40.0 / 3.5),  # 17.9 + 2 < 20 °C = T_min: the room left off leaves the band below, heating
    (21.0, 22.1, 40.0 / 3.0),  # 22.1 + 2 > 24 °C = T_max: cooling
])
def test_the_room_is_worth_the_electricity_its_heat_saves_or_costs_relative_to_its_start(t_c, t_out_c, kwh):
    hvac = make("HVAC", t_init_c=22.0, **BUILDING)  # C = 40 kWh/°C, band 20-24 °C
    assert hvac.stored_mwh() == 0.0
    hvac.t_c, hvac.t_out_c = t_c, t_out_c
    assert hvac.stored_mwh() == pytest.approx(kwh / 1000.0)


@pytest.mark.parametrize("t_out_c", [18.0, 19.9, 20.0, 22.0])  # T_eq = T_out + 2 °C: 20 (T_min), 21.9, 22, 24 (T_max)
@pytest.mark.parametrize("t_c", [20.0, 24.0])
def test_a_room_that_floats_inside_the_band_is_worth_nothing(t_c, t_out_c):
    """A mild night: the room left off settles inside the band (its edges included), so it never needs conditioning
    and its heat saves none, whichever edge it ends at (the band centre's rule valued it ±22.9-26.7 kWh, the sign
    flipping across 0.1 °C of outdoor temperature)."""
    hvac = make("HVAC", t_init_c=22.0, **BUILDING)
    hvac.t_c, hvac.t_out_c = t_c, t_out_c
    assert hvac.stored_mwh() == 0.0


@pytest.mark.parametrize("seed", range(3))
def test_a_room_is_worth_0_at_reset_whatever_its_start(seed):
    hvac = make("HVAC", seed=seed, t_init_spread=1.5, **BUILDING)
    assert hvac.t_c != 22.0 and hvac.stored_mwh() == 0.0


@pytest.fixture(scope="module")
def env() -> MultiAgentPowerGridEnv:
    return MultiAgentPowerGridEnv.from_config(CONFIGS / "building_hvac.yaml")


def _day(env, seed: int, hold_until: int) -> tuple[float, float]:
    """(return, $ of the electricity the HVAC drew) of a day on the building's rule whose HVAC holds the room at its
    start temperature until tick ``hold_until`` and follows its rule (the room floats) after it."""
    env.reset(seed=seed)
    hvac, price = env.scenario.agents["hvac"].device, np.asarray(env.ctx.profiles["price"])
    p, start = hvac.params, hvac.t_c
    ret = bill = 0.0
    for tick in range(env.max_ticks):
        physical = np.asarray(env.physical_rule("building"), np.float64)
        if tick < hold_until:
            t_out = env.ctx.profile("temperature")
            q_kw = heat_to_reach(hvac.t_c, t_out, p.r_c_per_kw, p.c_kwh_per_c, start, hvac.dt_h) - p.gain_kw
            physical[0] = np.clip(q_kw / (p.cop_heat if q_kw > 0 else p.cop_cool) / (p.p_max_mw * 1000.0), -1.0, 1.0)
        _, rewards, *_ = env.step({"building": env.action_from_physical("building", physical)})
        ret += sum(rewards.values())
        bill -= hvac.p_mw * hvac.dt_h * price[tick]
    assert not env.agents
    return ret, bill


@pytest.mark.parametrize("seed", range(2))
def test_a_room_left_to_drift_at_the_end_of_the_day_no_longer_earns_the_heat_it_took(env, seed):
    """Holding the room at its start all day vs the same with the HVAC left to its rule for the last 2 h (the room
    drifts ~0.4 °C colder instead of being heated): without the room's value the drift earned all the electricity it
    saved (0.27 and 0.73 $ on these days); with it, only those 2 h's prices above the day's mean and the heat the
    colder room does not lose (19 and 23 % of it), as a battery discharged then would."""
    keep, keep_bill = _day(env, seed, env.max_ticks)
    drift, drift_bill = _day(env, seed, env.max_ticks - 8)
    saved = keep_bill - drift_bill
    assert saved > 0.2
    assert drift - keep < saved / 3.0, (drift - keep, saved)


def test_the_rule_still_beats_the_thermostat_and_idle(env):
    """The room's value moves every policy's day by its start-to-end change (the rule ends every day at 21.5 °C, the
    afternoon warming the room to the band's upper margin): the rule stays ahead."""
    for seed in range(2):
        returns = {}
        for name, new_policy in (("rule", lambda: _rule), ("thermostat", lambda: _thermostat(env))):
            env.reset(seed=seed)
            act, returns[name] = new_policy(), 0.0
            while env.agents:
                returns[name] += sum(env.step(act(env))[1].values())
        idle = sum(run_episode(env, "zero", seed).returns.values())
        assert returns["rule"] > returns["thermostat"] and returns["rule"] > idle, (seed, returns, idle)


# ---------------------------------------------------------------- heated stores (WaterHeater, HeatPump)

TANK = {"volume_l": 300.0, "daily_draw_l": 400.0, "p_max_mw": 0.006}  # building_hvac's hot_water: C = 0.349 kWh/°C


@pytest.mark.parametrize(("t_c", "degrees"), [
    (62.0, 2.0),  # a tank 2 °C warmer than its start (60 °C) saves the element's C·2 °C/η
    (58.0, -2.0),  # ... 2 °C colder owes it
    (40.0, -20.0),  # below T_min = 45 °C: the whole of it is owed
    (80.0, 15.0),  # above the cutout T_max = 75 °C: only up to it
])
def test_a_tank_is_worth_the_electricity_its_heat_saves_or_costs_relative_to_its_start(t_c, degrees):
    heater = make("WaterHeater", **TANK)
    ctx = context(dt_h=0.25)
    heater.step(heater.actions.pack(u=0.0), at(ctx, 40))  # a step sets the season: T_eq = T_a − R·Q_d < 45 °C
    assert heater.t_eq_c < heater.params.t_min_c
    heater.t_c = t_c
    c_kwh_per_c = 300.0 * 4.186 / 3600.0
    assert heater.stored_mwh() == pytest.approx(c_kwh_per_c * degrees / 0.98 / 1000.0)


def test_a_heat_pump_buffer_is_worth_its_heat_at_the_last_steps_cop():
    pump = make("HeatPump")
    ctx = context(dt_h=0.25, temperature=5.0)
    pump.step(pump.actions.pack(u=0.5), at(ctx, 0))
    assert 2.0 < pump.k < 6.0
    pump.t_c = pump.t_start_c + 3.0
    assert pump.stored_mwh() == pytest.approx(5.0 * 3.0 / pump.k / 1000.0)  # C = 5 kWh/°C


def test_a_store_that_settles_inside_its_band_unheated_is_worth_nothing():
    """An ambient at 50 °C: the tank left off settles inside its 45-75 °C band, no heating is to come, so its heat
    saves none (and nothing cools it above the band)."""
    heater = make("WaterHeater", daily_draw_l=0.0, t_ambient_c=50.0, **{k: v for k, v in TANK.items()
                                                                          if k != "daily_draw_l"})
    heater.step(heater.actions.pack(u=0.0), at(context(), 0))
    assert heater.t_eq_c == pytest.approx(50.0)
    heater.t_c = 50.0
    assert heater.stored_mwh() == 0.0


@pytest.mark.parametrize("name", ["WaterHeater", "HeatPump"])
@pytest.mark.parametrize("seed", range(3))
def test_a_store_is_worth_0_at_reset_whatever_its_start(name, seed):
    store = make(name, seed=seed, t_init_spread=2.0)
    assert store.t_c != store.params.t_init_c and store.stored_mwh() == 0.0


@pytest.fixture(scope="module")
def tanks_env() -> MultiAgentPowerGridEnv:
    """building_hvac with its water heater learned (it runs on its thermostat there) and a learned heat pump
    (10 kW, the default 5 kWh/°C buffer and 3 kW/°C demand), both behind the building's meter."""
    data = yaml.safe_load((CONFIGS / "building_hvac.yaml").read_text())
    for agent in data["agents"]:
        if agent["id"] == "hot_water":
            agent["policy"] = "learned"
    data["agents"].append({"id": "heat_pump", "type": "HeatPump", "bus": "Bus R11", "policy": "learned",
                           "params": {"p_max_mw": 0.01}})
    return MultiAgentPowerGridEnv.from_config(data)


def _tank_day(env, seed: int, target: str, off_h: int) -> tuple[float, float]:
    """(return, $ of the electricity ``target`` drew) of a day with every agent on its rule but ``target``'s heater
    off for the last ``off_h`` hours."""
    env.reset(seed=seed)
    device, price = env.scenario.agents[target].device, np.asarray(env.ctx.profiles["price"])
    off_from = env.max_ticks - round(off_h / env.ctx.dt_h)
    ret = bill = 0.0
    for tick in range(env.max_ticks):
        actions = {a: env.rule_action(a) for a in env.agents}
        if tick >= off_from:
            actions[target] = env.action_from_physical(target, np.zeros(1))
        _, rewards, *_ = env.step(actions)
        ret += sum(rewards.values())
        bill -= device.p_mw * device.dt_h * price[tick]
    assert not env.agents
    return ret, bill


@pytest.mark.parametrize(("target", "kept"), [("hot_water", 0.5), ("heat_pump", 0.3)])
@pytest.mark.parametrize("seed", range(2))
def test_a_tank_left_to_cool_at_the_end_of_the_day_no_longer_earns_the_heat_it_took(tanks_env, target, kept, seed):
    """The heater off for the last 4 h: unvalued, the tank's cooling earned all the electricity it saved (0.34 and
    0.29 $ a day on average over 20 days); valued, only those hours' prices above the day's mean and the heat the
    cooler tank does not lose (36 and 16 % of it), as a battery discharged then would."""
    rule, rule_bill = _tank_day(tanks_env, seed, target, 0)
    off, off_bill = _tank_day(tanks_env, seed, target, 4)
    saved = rule_bill - off_bill
    assert saved > 0.1
    assert off - rule < kept * saved, (off - rule, saved)

"""The HVAC room's heat as a store (``HVAC.stored_mwh``): the reward values the change of the room's temperature over
an episode like a battery's charge, so a room left to drift at the end no longer pays."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.evaluate import run_episode
from powergrid_devices.thermal import heat_to_reach
from tests.conftest import CONFIGS
from tests.devices.helpers import make
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

"""Under a demand charge the ``setpoint`` rule shaves its meter's peak with the stores: it holds the predicted import
at the ceiling ``import_limit − margin`` (margin 0.05 MW), discharging the excess above it and charging into the room
below it. case33bw with the built-in daily shapes from 0 h, 15-minute ticks; and one real test day of task 3."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv

from ._microgrid import ESS, after_first_tick, load_change, microgrid


def _env(import_limit: float, demand_charge: float) -> MultiAgentPowerGridEnv:
    return microgrid([ESS], {"import_limit_mw": import_limit, "demand_charge": demand_charge})


def _first_tick(env: MultiAgentPowerGridEnv) -> float:
    """The import (MW) the rule predicts after tick 0 with the battery idle: the meter's reading plus the loads'
    forecast change (the ESS idles at tick 0: it waits for the meter's first reading)."""
    x = after_first_tick(env)
    assert env.scenario.agents["ess"].device.p_mw == 0.0
    return x + load_change(env)


def test_above_the_ceiling_the_battery_discharges_the_excess():
    x = _first_tick(_env(50.0, 0.0))
    env = _env(x - 0.3, 500.0)  # the predicted import is 0.35 MW over the ceiling x − 0.35
    _first_tick(env)
    ess, meter = env.scenario.agents["ess"].device, env.scenario.agents["meter"].device
    assert ess.rule_action(env.ctx)[0] == 0.0  # its own rule (price arbitrage) idles
    rule = env.rule_action("mg")
    assert abs(rule[0] - 0.35) < 1e-6
    env.step({"mg": rule})
    assert meter.import_mw <= x - 0.3 and meter.safety == 0.0  # the flow confirms it: within the contract


def test_the_discharge_is_capped_at_the_battery_power():
    x = _first_tick(_env(50.0, 0.0))
    env = _env(x - 1.0, 500.0)  # 1.05 MW over the ceiling; the battery gives its 0.5 MW
    _first_tick(env)
    assert abs(env.rule_action("mg")[0] - 0.5) < 1e-6


def test_below_the_ceiling_the_battery_charges_into_the_room_only():
    x = _first_tick(_env(50.0, 0.0))
    env = _env(x + 0.3, 500.0)  # 0.25 MW of room under the ceiling: charging at full 0.5 MW would set a new peak
    _first_tick(env)
    rule = env.rule_action("mg")
    assert abs(rule[0] + 0.25) < 1e-6
    env.step({"mg": rule})
    assert env.scenario.agents["meter"].device.import_mw <= x + 0.3


def test_without_a_demand_charge_the_battery_keeps_its_own_rule():
    x = _first_tick(_env(50.0, 0.0))
    env = _env(x + 0.3, 0.0)
    _first_tick(env)
    assert env.rule_action("mg")[0] == env.scenario.agents["ess"].device.rule_action(env.ctx)[0] == 0.0


def test_on_a_real_day_the_rule_lowers_the_peak_the_safety_and_the_bill_below_idle():
    """Task 3 on 2023-01-27: idle peaks at 5.20 MW in the evening (the import limit is 5 MW; the rule shaves to 3.55
    MW); the price-arbitrage rule spent the battery on the morning's prices (peak 5.20 MW as idle); the rule now enters the evening full."""
    pytest.importorskip("powergrid_datasets")
    from powergrid.bench.play import play
    from powergrid.bench.tasks import task_named

    def idle(env):
        phys = np.array(env.physical_rule("site"), np.float64)
        phys[0] = 0.0  # the battery's MW
        return {"site": env.action_from_physical("site", phys).astype(np.float32)}

    out = {}
    for name, policy in (("rule", "rule"), ("idle", idle)):
        env = MultiAgentPowerGridEnv(task_named("peak_shaving").config("2023-01-27"))
        day = play(env, policy)
        out[name] = (day.objective, day.safety, env.scenario.agents["meter"].device.peak_mw)
    (rule, rule_safety, rule_peak), (idle_obj, idle_safety, idle_peak) = out["rule"], out["idle"]
    assert rule_peak < idle_peak - 0.5 and rule_safety < idle_safety and rule < idle_obj - 500.0, out

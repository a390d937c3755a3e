"""``setpoint`` with ``hold_import``: over the meter's import limit (predicted from its last reading, margin 0.05 MW)
the rule raises the DGs, cheapest first, then discharges the batteries, just enough. case33bw (≈ 2.2 MW of load at
0 h) with the built-in daily shapes from 0 h, 15-minute ticks; DGs dear enough that their own rule keeps them at 0."""

from __future__ import annotations

import numpy as np

from powergrid.env import MultiAgentPowerGridEnv

from ._microgrid import ESS, after_first_tick, load_change, microgrid

DEAR = {"id": "dear", "type": "DG", "bus": 5, "params": {"p_max_mw": 0.3, "cost_b": 400.0}}
CHEAP = {"id": "cheap", "type": "DG", "bus": 9, "params": {"p_max_mw": 0.3, "cost_b": 300.0}}


def _env(import_limit: float, hold: bool, *devices: dict) -> MultiAgentPowerGridEnv:
    return microgrid(list(devices), {"import_limit_mw": import_limit}, {"type": "setpoint", "hold_import": hold})


def _second_tick(env: MultiAgentPowerGridEnv) -> tuple[np.ndarray, float]:
    """The rule's action at tick 1 (tick 0 played by the rule: the meter has no reading before it) and the meter's
    import (MW) after it."""
    after_first_tick(env)
    rule = env.rule_action("mg")
    env.step({"mg": rule})
    return rule, env.scenario.agents["meter"].device.import_mw


def _reading(*devices: dict) -> float:
    """The import (MW) the rule predicts at tick 1 with its children idle: the reading plus the loads' forecast change."""
    env = _env(50.0, True, *devices)
    return after_first_tick(env) + load_change(env)


def test_over_the_import_limit_the_dg_rises_before_the_battery_just_enough():
    reading = _reading(DEAR, ESS)
    limit = reading - 0.5  # the predicted excess: 0.55 MW with the margin; the DG's 0.3 MW is not enough
    rule, over = _second_tick(_env(limit, False, DEAR, ESS))
    assert list(rule) == [0.0, 0.0] and over > limit  # without it: the children's own rules, over the limit
    held, imported = _second_tick(_env(limit, True, DEAR, ESS))
    # both idled at tick 0, so the prediction is the reading: the DG at its maximum, the battery discharges the rest
    np.testing.assert_allclose(held, [0.3, 0.55 - 0.3], rtol=1e-5)
    # the flow: 0.55 MW less import, and the losses the injections near the loads save (0.02 MW)
    assert over - 0.55 - 0.05 < imported < over - 0.55


def test_the_cheapest_dg_rises_first_and_the_battery_keeps_its_rule_when_it_suffices():
    limit = _reading(DEAR, CHEAP, ESS) - 0.2
    held, imported = _second_tick(_env(limit, True, DEAR, CHEAP, ESS))
    rule, _ = _second_tick(_env(limit, False, DEAR, CHEAP, ESS))
    assert list(rule) == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(held, [0.0, 0.25, 0.0], atol=1e-5)  # the cheap DG covers the 0.25 MW: nothing else
    assert imported < limit


def test_a_committed_dg_its_rule_asks_off_is_started_to_hold_the_limit():
    """With ``commitment: true`` the DG's own rule asks it off at a price below its cost (u = 0), so its range is
    (0, 0) until asked on: hold_import asks it on and it rises as the uncommitted one does (before, it stayed off and
    the battery alone discharged)."""
    committed = {**DEAR, "params": {**DEAR["params"], "commitment": True}}
    limit = _reading(committed, ESS) - 0.5
    held, _ = _second_tick(_env(limit, True, committed, ESS))
    plain, _ = _second_tick(_env(limit, True, DEAR, ESS))
    rule, _ = _second_tick(_env(limit, False, committed, ESS))
    assert rule[1] == 0.0  # its own rule: off
    np.testing.assert_allclose(held, [plain[0], 1.0, plain[1]], rtol=1e-6)  # on, at the uncommitted DG's MW
    assert held[0] == np.float32(0.3)  # float32 (numpy 1.x compares 0.3 as float64)

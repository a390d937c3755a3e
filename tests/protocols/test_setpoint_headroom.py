"""The ``setpoint`` rule keeps its children's rule actions inside the import and export limits of the parent's meter
(a ``GridConnection`` child), predicted from the meter's last reading and the children's last outputs (margin
0.05 MW). case33bw (≈ 2.2 MW of load at 0 h) with the built-in daily shapes from 0 h, 15-minute ticks."""

from __future__ import annotations

import numpy as np

import powergrid
from powergrid.devices import Device, box
from powergrid.env import MultiAgentPowerGridEnv

from ._microgrid import ESS, after_first_tick, load_change, microgrid, wind

#: hydrogen at 10 $/kg: break-even ≈ 180 $/MWh at full load against a price of ≈ 45 $/MWh, so its rule runs it at 1 MW
H2 = {"id": "h2", "type": "Electrolyzer", "bus": 5,
      "params": {"p_max_mw": 1.0, "min_load": 0.1, "h2_price": 10.0, "tank_capacity_kg": 5000.0}}
(WIND,) = wind(8.0)  # ≈ 3.6 MW at 0 h: the feeder exports


def _env(import_limit: float, export_limit: float, *devices: dict) -> MultiAgentPowerGridEnv:
    return microgrid(list(devices), {"import_limit_mw": import_limit, "export_limit_mw": export_limit})


def _predicted(export_limit: float, *devices: dict) -> float:
    """The import (MW) the rule predicts at tick 1 from its children's last outputs: the meter's reading after tick 0
    plus the loads' forecast change."""
    env = _env(50.0, export_limit, *devices)
    return after_first_tick(env) + load_change(env)


def test_the_rule_caps_the_electrolyzer_by_the_import_headroom_of_the_last_reading():
    x = after_first_tick(_env(50.0, 1e9, H2))  # ≈ 3.2 MW: the feeder and the electrolyzer's 1 MW
    # base = last import + the loads' forecast change c − the electrolyzer's last draw = x + c − 1;
    # limit − margin − base = 0.4 MW of headroom
    limit = _predicted(50.0, H2) - 1.0 + 0.45
    env = _env(limit, 1e9, H2)
    assert after_first_tick(env) == x  # nothing capped at tick 0: the same flow
    h2, meter = env.scenario.agents["h2"].device, env.scenario.agents["meter"].device
    assert h2.rule_action(env.ctx)[0] == 1.0  # its own rule: 1 MW again, ≈ 0.55 MW over the limit
    rule = env.rule_action("mg")
    assert abs(rule[0] - 0.4) < 1e-6  # u = 0.4: 0.4 MW, the headroom
    env.step({"mg": rule})
    assert abs(h2.p_mw + 0.4) < 1e-6
    assert x - 1.0 < meter.import_mw <= limit and meter.safety == 0.0  # the flow confirms it: within the limit


def test_a_child_that_would_draw_more_than_its_share_at_a_minimum_load_stops():
    env = _env(_predicted(50.0, H2) - 1.0 + 0.13, 1e9, H2)  # 0.08 MW of headroom: u = 0.08 runs at the minimum load 0.1: off instead
    after_first_tick(env)
    assert env.rule_action("mg")[0] == 0.0


def test_the_draw_is_scaled_across_the_children_that_add_import():
    # the ESS idles at tick 0: it waits for the meter's first reading
    env = _env(_predicted(50.0, H2, ESS) - 1.0 + 0.45, 1e9, H2, ESS)
    after_first_tick(env)
    ess = env.scenario.agents["ess"].device
    env.ctx.store_price = 1000.0  # a stored MWh worth 1000 $ at the end: its rule charges at full power now
    assert ess.rule_action(env.ctx)[0] == -0.5
    rule = env.rule_action("mg")
    # 1.5 MW of draw for 0.4 MW of headroom (the ESS's last output was 0): both at 0.4/1.5 of their rule
    np.testing.assert_allclose([rule[0], rule[1]], [0.4 / 1.5, -0.5 * 0.4 / 1.5], rtol=1e-5)


def test_over_the_export_limit_the_rule_curtails_the_source():
    env = _env(50.0, 50.0, WIND)
    x = after_first_tick(env) + load_change(env)  # < 0: export (the reading plus the loads' forecast change)
    wind = env.scenario.agents["wind"].device
    w0, w1 = wind.p_mw, wind.injection_mw(None, env.ctx)  # its output at tick 0 and available power at tick 1
    limit = -x - 0.3
    env = _env(50.0, limit, WIND)
    assert after_first_tick(env) + load_change(env) == x < -0.5
    # predicted export = −(x + w0 − w1) at full output; the rule scales the output f to keep it at limit − margin
    f = 1.0 - (-(x + w0 - w1) - (limit - 0.05)) / w1
    rule = env.rule_action("mg")
    assert 0.5 < f < 1.0 and abs(rule[0] - f) < 1e-5
    meter = env.scenario.agents["meter"].device
    exports = []
    for action in (np.ones(1, np.float32), rule):  # the old rule (f = 1), then the new one, from the same state
        after_first_tick(env)
        env.step({"mg": action})
        exports.append(-meter.import_mw)
    # the flow exports (1 − f)·w1 MW less (the loads' jitter moves both by the same MW: the prediction's error)
    assert abs(exports[0] - exports[1] - (1.0 - f) * w1) < 0.01


def test_a_parent_without_a_limited_meter_keeps_its_childrens_rules():
    env = _env(1e9, 1e9, H2, ESS)
    after_first_tick(env)
    env.ctx.store_price = 1000.0  # its rule charges at full power
    own = np.concatenate([np.asarray(c.rule_action(env.ctx), np.float32).reshape(-1)
                          for c in env.scenario.agents["mg"].children])
    assert own[0] == 1.0 and own[1] == -0.5
    np.testing.assert_array_equal(env.rule_action("mg"), own)


def test_an_ess_or_dg_setpoint_is_predicted_as_its_step_reads_it():
    """NaN and ±inf predicted the NaN itself or the upper limit; the step applies the default (0 MW, a DG's p_min)."""
    import copy

    from powergrid_protocols.common import injection_mw

    dg = {"id": "dg", "type": "DG", "bus": 7, "params": {"p_max_mw": 0.6, "p_min_mw": 0.1}}
    env = _env(50.0, 1e9, ESS, dg)
    after_first_tick(env)
    for agent_id in ("ess", "dg"):
        agent = env.scenario.agents[agent_id]
        space = agent.device.action_space
        for action in (space.low, space.high, np.full(space.shape, np.inf), np.full(space.shape, -np.inf),
                       np.full(space.shape, np.nan), np.clip(np.full(space.shape, 0.05), space.low, space.high)):
            probe = copy.deepcopy(agent.device)
            probe.step(action, env.ctx)
            assert injection_mw(agent, action, env.ctx) == probe.p_mw, (agent_id, action)


@powergrid.register_device("HeadroomPlainLoad")
class PlainLoad(Device):
    """A plugin's load without ``injection_mw``: draws ``u`` MW (``u`` ∈ [0, 1]); its rule draws 1 MW; counts its steps."""

    def __init__(self, params, dt_h):
        super().__init__(params, dt_h)
        self.action_space = box(0.0, 1.0)
        self.steps = 0

    def step(self, action, ctx):
        self.p_mw = -min(max(float(np.asarray(action, np.float64).reshape(-1)[0]), 0.0), 1.0)
        self.steps += 1

    def rule_action(self, ctx):
        return np.ones(1, np.float32)


@powergrid.register_device("HeadroomEquipmentLoad")
class EquipmentLoad(PlainLoad):
    """The same load as real equipment (hardware in the loop): a copy stepped would write the equipment's setpoint."""

    drives_equipment = True


def test_a_plugin_device_without_a_prediction_is_predicted_by_a_copy_and_equipment_keeps_its_rule():
    load = {"id": "load", "type": "HeadroomPlainLoad", "bus": 5}
    x = _predicted(50.0, load)
    env = _env(x - 1.0 + 0.45, 1e9, load)  # 0.4 MW of headroom, as for the electrolyzer
    after_first_tick(env)
    device = env.scenario.agents["load"].device
    steps = device.steps
    assert abs(env.rule_action("mg")[0] - 0.4) < 1e-6  # predicted by a stepped copy: capped at the headroom
    assert device.steps == steps  # the device itself was not stepped
    env = _env(x - 1.0 + 0.45, 1e9, {**load, "type": "HeadroomEquipmentLoad"})
    after_first_tick(env)
    assert env.rule_action("mg")[0] == 1.0  # never dry-run: its own rule

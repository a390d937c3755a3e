"""Volt-var (IEEE 1547-2018 Category B): the curve and the apparent-power limit."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv
from powergrid_protocols.volt_var import IEEE1547_CAT_B, apparent_power_limit, check_curve, volt_var_q
from tests.protocols import example_config


@pytest.mark.parametrize("v, q", [(0.92, 0.44), (0.98, 0.0), (1.00, 0.0), (1.02, 0.0), (1.08, -0.44),
                                  (0.80, 0.44), (1.20, -0.44), (0.95, 0.22), (1.05, -0.22)])
def test_category_b_breakpoints_and_saturation(v, q):
    assert float(volt_var_q(v)) == pytest.approx(q, abs=1e-12)


def test_the_standard_curve_values():
    assert IEEE1547_CAT_B == ((0.92, 0.44), (0.98, 0.0), (1.02, 0.0), (1.08, -0.44))
    check_curve(IEEE1547_CAT_B)
    with pytest.raises(ValueError):
        check_curve(((0.92, -0.44), (0.98, 0), (1.02, 0), (1.08, 0.44)))


@pytest.mark.parametrize("priority, p, q", [
    # a 0.1 MVA inverter at full sun (P = 0.1 MW) at V ≥ 1.08 pu: the curve asks Q = −0.44·0.1 = −0.044 Mvar;
    # together |S| = √(0.1² + 0.044²) = 0.10925 MVA = 1.093 × rating, which the limit forbids:
    # reactive priority keeps Q and curtails P to √(0.1² − 0.044²) = √0.008064 = 0.089800 MW
    ("reactive", 0.0898000, -0.044),
    # active priority keeps P = 0.1 MW and leaves √(0.1² − 0.1²) = 0 Mvar
    ("active", 0.1, 0.0),
])
def test_the_apparent_power_limit_at_full_output(priority, p, q):
    got_p, got_q = apparent_power_limit(0.1, -0.044, 0.1, priority)
    assert got_p == pytest.approx(p, abs=1e-6) and got_q == pytest.approx(q, abs=1e-12)
    assert got_p**2 + got_q**2 <= 0.1**2 + 1e-15


def test_the_limit_leaves_a_point_inside_the_circle_alone():
    # P = 0.06 MW, Q = 0.044 Mvar: |S| = √(0.0036 + 0.001936) = 0.0744 MVA < 0.1
    for priority in ("reactive", "active"):
        assert apparent_power_limit(0.06, 0.044, 0.1, priority) == pytest.approx((0.06, 0.044))
    # a battery charging (P < 0) keeps its sign: reactive priority at Q = 0.08 leaves |P| ≤ √(0.01 − 0.0064) = 0.06
    assert apparent_power_limit(-0.09, 0.08, 0.1, "reactive") == pytest.approx((-0.06, 0.08))
    with pytest.raises(ValueError, match="priority"):
        apparent_power_limit(0.1, 0.0, 0.1, "both")


def _high_voltage_env(priority):
    """The volt-var example with every inverter told its bus sits at 1.10 pu (Q = −0.44·S) before each step."""
    data = example_config("volt_var")
    data["horizontal"][0]["params"]["priority"] = priority
    env = MultiAgentPowerGridEnv.from_config(data)
    env.reset(seed=0)
    return env, env.scenario.horizontal[0]


@pytest.mark.parametrize("priority", ["reactive", "active"])
def test_in_env_no_inverter_exceeds_its_rating(priority):
    env, proto = _high_voltage_env(priority)
    worst, curtailed = 0.0, 0.0
    full_sun = np.ones(env.action_space("mg1").shape, np.float32)  # mg1: ESS 1 MW-pu, DG, PV f = 1 …
    for _ in range(24):
        proto.v[:] = 1.10
        _, _, _, _, infos = env.step({"mg1": np.clip(full_sun, env.action_space("mg1").low, env.action_space("mg1").high)})
        info = infos["mg1"]["VoltVar"]
        curtailed += sum(info["curtailed_mw"].values())
        for d, c in zip(proto.inverters, proto.q_ctl):
            s = c.s_mva
            worst = max(worst, np.hypot(d.device.p_mw, d.device.q_mvar) / s)
            expected_q = -0.44 * s
            if priority == "reactive":  # Q on the curve, P within √(S² − Q²)
                assert d.device.q_mvar == pytest.approx(expected_q)
                assert abs(d.device.p_mw) <= np.sqrt(s**2 - expected_q**2) + 1e-6
            else:  # P as dispatched, Q clipped to what is left
                assert abs(d.device.q_mvar) <= min(0.44 * s, np.sqrt(max(s**2 - d.device.p_mw**2, 0.0))) + 1e-9
        if not env.agents:
            break
    assert worst <= 1.0 + 1e-6
    if priority == "reactive":
        assert curtailed > 0  # the PV at full sun gave up active power for the curve's Q


def test_reactive_priority_lowers_a_fuel_cell_load_level():
    """A FuelCell (a default volt-var type) acts by its load level ``u``: at full load and V = 1.10 pu, reactive
    priority lowers u so that P = √(S² − Q²) and Q stays on the curve (before: P = S kept, Q clipped to 0)."""
    data = example_config("volt_var")
    data["spaces"] = {"action": "physical", "observation": "raw"}
    data["agents"][0]["children"].append("mg1_fc")
    data["agents"].insert(1, {"id": "mg1_fc", "type": "FuelCell", "bus": "mg1.675", "params": {"p_max_mw": 0.1}})
    env = MultiAgentPowerGridEnv.from_config(data)
    proto = env.scenario.horizontal[0]
    env.reset(seed=0)
    proto.v[:] = 1.10
    _, _, _, _, infos = env.step({"mg1": env.action_space("mg1").high})  # the fuel cell at u = 1
    fc = env.scenario.agents["mg1_fc"].device
    assert fc.q_mvar == pytest.approx(-0.044)
    assert fc.p_mw == pytest.approx(np.sqrt(0.1**2 - 0.044**2), rel=1e-6)
    assert infos["mg1"]["VoltVar"]["curtailed_mw"]["mg1_fc"] == pytest.approx(0.1 - fc.p_mw, abs=1e-6)


def test_q_step_moves_q_that_fraction_of_the_way_to_the_curve():
    """The damped update shared with Q–V droop: at V 1.10 pu the curve asks −0.44·S; with q_step 0.5 Q goes
    −0.22·S, −0.33·S, −0.385·S from 0 (reset); the default (1) sets the curve's value at once."""
    data = example_config("volt_var")
    data["horizontal"][0]["params"].update(q_step=0.5, priority="active")
    env = MultiAgentPowerGridEnv.from_config(data)
    proto = env.scenario.horizontal[0]
    env.reset(seed=0)
    for fraction in (0.22, 0.33, 0.385):
        proto.v[:] = 1.10
        env.step({"mg1": env.rule_action("mg1")})
        for c in proto.q_ctl:
            assert c.q_mvar == pytest.approx(-fraction * c.s_mva)
    env.reset(seed=0)  # a reset starts again from 0 Mvar
    proto.v[:] = 1.10
    env.step({"mg1": env.rule_action("mg1")})
    assert [c.q_mvar for c in proto.q_ctl] == pytest.approx([-0.22 * c.s_mva for c in proto.q_ctl])
    assert MultiAgentPowerGridEnv.from_config(example_config("volt_var")).scenario.horizontal[0].params.q_step == 1.0

"""Shunt and OLTC: discrete positions, move limits, switching cost, voltage rules, network data."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pytest

from powergrid.networks import TEMPLATES
from powergrid.solvers.base import PowerFlowResult
from tests.devices.helpers import at, context, make


def _result(vm: list[float]) -> PowerFlowResult:
    r = PowerFlowResult.failed(len(vm), 0, 0, 1)
    r.converged, r.vm_pu = True, np.asarray(vm, float)
    return r


def test_shunt_moves_one_step_per_tick_and_injects_k_q_v2() -> None:
    shunt = make("Shunt", n_steps=4, q_step_mvar=0.1, switch_cost=0.5)
    net = TEMPLATES["cigre_mv"]()
    shunt.attach(net, 5)
    assert shunt.network_setting() == ("shunt_step", 0, 0)
    assert net.shunt.q_mvar.iat[0] == -0.1 and net.shunt.max_step.iat[0] == 4 and net.shunt.step.iat[0] == 0
    ctx = context()
    shunt.step(4, at(ctx, 0))
    assert shunt.position == 1 and shunt.projection == 3 and shunt.cost == 0.5
    assert shunt.q_mvar == pytest.approx(0.1)
    shunt.settle(_result([1.02] * 15), ctx)
    shunt.step(2, at(ctx, 1))
    assert shunt.q_mvar == pytest.approx(2 * 0.1 * 1.02**2)
    shunt.step(2, at(ctx, 2))
    assert shunt.cost == 0.0 and shunt.projection == 0.0


def test_shunt_leaves_q_to_the_network_when_the_env_applies_its_step() -> None:
    shunt = make("Shunt", q_step_mvar=0.1)
    shunt.network_applied = True
    shunt.step(1, context())
    assert shunt.position == 1 and shunt.q_mvar == 0.0 and shunt.network_setting()[2] == 1


def test_shunt_out_of_range_nan_and_box_actions() -> None:
    shunt = make("Shunt", n_steps=4, max_moves=4)
    shunt.step(7, context())
    assert shunt.position == 4 and shunt.projection == 3
    shunt.step(np.array([np.nan]), context())
    assert shunt.position == 4 and shunt.projection == 4
    boxed = make("Shunt", n_steps=4, max_moves=4, action="box", kind="reactor")
    boxed.step(np.array([2.4], np.float32), context())
    assert boxed.position == 2 and boxed.projection == pytest.approx(0.4, abs=1e-6)
    assert boxed.q_mvar == pytest.approx(-0.2)


def test_shunt_rule_follows_the_voltage() -> None:
    shunt = make("Shunt", init=2)
    shunt.bus = 0
    shunt.settle(_result([0.95]), context())
    assert shunt.rule_action(context()) == 3
    shunt.settle(_result([1.06]), context())
    assert shunt.rule_action(context()) == 1


def test_oltc_ratio_cost_and_move_limit() -> None:
    oltc = make("OLTC", tap_step_percent=1.25, switch_cost=2.0, max_moves=2)
    oltc.step(5, context())
    assert oltc.position == 2 and oltc.ratio == pytest.approx(1.025)
    assert oltc.cost == 4.0 and oltc.projection == 3
    assert oltc.p_mw == oltc.q_mvar == 0.0


def test_oltc_avr_rule() -> None:
    oltc = make("OLTC", v_set=1.0, deadband=0.02)
    oltc.bus = 0
    for vm, expected in [(1.05, 1), (0.95, -1), (1.005, 0)]:
        oltc.settle(_result([vm]), context())
        assert oltc.rule_action(context()) == expected


def test_oltc_attach_writes_a_working_tap_changer() -> None:
    net = TEMPLATES["ieee34"]()  # XFM-1 (832-888, 24.9/4.16 kV) has no tap changer of its own
    lv = int(np.flatnonzero(net.bus.name == "888")[0])
    row = int(np.flatnonzero(net.trafo.name == "XFM-1")[0])
    oltc = make("OLTC", tap_step_percent=2.5, tap_min=-4, tap_max=4)
    oltc.attach(net, lv)
    assert oltc.row == row and oltc.network_setting() == ("trafo_tap", row, 0)
    pp.runpp(net)
    v0 = net.res_bus.vm_pu.iat[lv]
    net.trafo.at[net.trafo.index[row], "tap_pos"] = 4  # what solver.set_trafo_tap would do
    pp.runpp(net)
    assert net.res_bus.vm_pu.iat[lv] < v0 - 0.05  # HV-side tap up lowers the LV voltage by ≈ 10 %
    with pytest.raises(ValueError, match="already has a tap changer"):
        make("OLTC", tap_step_percent=1.0).attach(net, lv)


def test_oltc_needs_a_transformer_at_its_bus() -> None:
    with pytest.raises(ValueError, match="LV side"):
        make("OLTC").attach(TEMPLATES["cigre_mv"](), 5)

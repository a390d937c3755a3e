"""``Device.default_action`` of every pack device: the action its ``step`` applies for a missing action and for a
NaN or infinite entry (its ``BoxAction`` default, a tap changer's current position), inside its bounds, in physical
units. A horizontal protocol puts it in place of a non-finite pending setpoint (tests/protocols/test_nonfinite.py)."""

from __future__ import annotations

import copy

import gymnasium
import numpy as np
import pytest

from tests.devices.helpers import DEVICES, at, context, make
from tests.devices.test_contract import CASES


def _outcome(device, action, ctx):
    d = copy.deepcopy(device)
    d.step(action, ctx)
    return d.p_mw, d.q_mvar, d.cost, d.safety, d.state_dict()


@pytest.mark.parametrize("name", DEVICES)
def test_a_missing_or_non_finite_action_applies_the_default_action(name: str) -> None:
    device = make(name, **CASES[name][0])
    ctx = context()
    space = device.action_space
    for t in (0, 30, 50):  # night, morning, midday: state and profiles change
        at(ctx, t)
        default = device.default_action
        assert default.dtype == np.float64
        if not isinstance(space, gymnasium.spaces.Box):
            assert default.shape == (0,)
        else:
            assert default.shape == space.shape
            assert np.all(default >= space.low.astype(np.float64) - 1e-7) and np.all(default <= space.high + 1e-7)
            want = _outcome(device, default, ctx)
            assert _outcome(device, None, ctx) == want
            for bad in (np.nan, np.inf, -np.inf):
                assert _outcome(device, np.full(space.shape, bad), ctx) == want, bad
        device.step(device.rule_action(ctx), ctx)


def test_hand_values() -> None:
    """The pack's defaults, by hand: idle (0) for a battery and a load's controls, ``p_min_mw`` and ``on_init`` for a
    DG, the whole available power for a PV, the current position for a tap changer in a Box, none for a Discrete
    shunt (no entry can be NaN)."""
    assert make("ESS", s_max_mva=0.6).default_action.tolist() == [0.0, 0.0]
    dg = make("DG", commitment=True, p_min_mw=0.1, on_init=False, pf_min=0.8)
    assert dg.actions.names == ("p", "u", "q") and dg.default_action.tolist() == [0.1, 0.0, 0.0]
    assert make("DG", p_min_mw=0.15, p_max_mw=0.6).default_action.tolist() == [0.15]  # the midpoint is 0.375
    assert make("PV", s_max_mva=0.12).default_action.tolist() == [1.0, 0.0]
    assert make("HVAC").default_action.tolist() == [0.0]
    oltc = make("OLTC", action="box", init_random=True, seed=3)
    assert oltc.default_action.tolist() == [float(oltc.position)]
    oltc.position += 1  # state-dependent: a NaN holds the position it is at now
    assert oltc.default_action.tolist() == [float(oltc.position)]
    assert make("Shunt").default_action.shape == (0,)
    grid = make("GridConnection")
    assert grid.default_action.shape == (0,) == grid.action_space.shape
    load = make("FlexibleLoad")
    load.default_action[0] = 5.0  # a copy: the device's own default is not changed through it
    assert load.default_action.tolist() == [0.0, 0.0] and load.actions.default.tolist() == [0.0, 0.0]

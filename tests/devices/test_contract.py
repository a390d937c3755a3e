"""Every device: limits hold after projection for any action (NaN/inf too), observations stay in their
spaces, cost/safety are finite with safety ≥ 0, bad parameters are config errors naming the field,
and the pack registers exactly the first-party names."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powergrid.errors import ConfigError
from powergrid.first_party import FIRST_PARTY
from powergrid.params import build_params
from powergrid.plugins import get_registry
from tests.devices.helpers import DEVICES, at, context, device_class, make

EPS = 1e-9

# Device → (params exercising its options, invariant after each step).
Check = Callable[[Any], None]


def _ess(d: Any) -> None:
    p = d.params
    assert d.soc <= p.soc_max + EPS
    assert d.soc >= p.soc_min - EPS or d.safety > 0  # only self-discharge may drain under the floor, as safety
    assert abs(d.p_mw) <= p.p_max_mw + EPS and math.hypot(d.p_mw, d.q_mvar) <= p.s_max_mva + EPS


def _dg(d: Any) -> None:
    p = d.params
    assert d.p_mw == 0.0 or p.p_min_mw - EPS <= d.p_mw <= p.p_max_mw + EPS
    assert abs(d.q_mvar) <= abs(d.p_mw) * 0.75 + EPS


def _source(d: Any) -> None:
    assert -EPS <= d.p_mw <= d.available + EPS
    assert math.hypot(d.p_mw, d.q_mvar) <= d.params.s_max_mva + EPS


def _switched(d: Any) -> None:
    assert d.positions.low <= d.position <= d.positions.high and d.moves <= d.params.max_moves


def _flex(d: Any) -> None:
    assert -EPS <= d.backlog <= d.params.backlog_max_mwh + EPS and d.p_mw <= EPS


def _hvac(d: Any) -> None:
    assert -d.params.p_max_mw - EPS <= d.p_mw <= EPS


def _store(d: Any) -> None:
    assert d.t_c <= d.params.t_max_c + 1e-6 and -d.params.p_max_mw - EPS <= d.p_mw <= EPS


def _ev(d: Any) -> None:
    p = d.params
    assert np.all(d.energy >= -EPS) and np.all(d.energy <= p.battery_mwh + EPS)
    assert -p.n_ports * p.p_port_mw - EPS <= d.p_mw <= p.n_ports * p.p_v2g_mw + EPS


def _hydrogen(d: Any) -> None:
    t = d.tank
    assert t.min_kg - EPS <= t.level_kg <= t.capacity_kg + EPS or (d.produces and t.level_kg <= t.capacity_kg + EPS)
    assert d.u == 0.0 or d.params.min_load - EPS <= d.u <= 1.0


def _chp(d: Any) -> None:
    assert d.u == 0.0 or d.params.min_load - EPS <= d.u <= 1.0


CASES: dict[str, tuple[dict[str, Any], Check]] = {
    "ESS": ({"s_max_mva": 0.6, "soc_init_spread": 0.3, "self_discharge": 0.01}, _ess),
    "DG": ({"commitment": True, "p_min_mw": 0.1, "ramp_up_mw_per_h": 0.8, "min_up_h": 0.5, "pf_min": 0.8}, _dg),
    "PV": ({"s_max_mva": 0.12}, _source),
    "Wind": ({"s_max_mva": 1.1}, _source),
    "Shunt": ({"init_random": True}, _switched),
    "OLTC": ({"action": "box", "init_random": True}, _switched),
    "GridConnection": ({}, lambda d: None),
    "FlexibleLoad": ({"backlog_init_spread": 0.5}, _flex),
    "HVAC": ({"t_init_spread": 2.0}, _hvac),
    "EVCharger": ({"n_ports": 3, "v2g": True, "arrival_mean_h": 1.0}, _ev),
    "Electrolyzer": ({"tank_init": 0.95}, _hydrogen),
    "FuelCell": ({"tank_init": 0.05}, _hydrogen),
    "HeatPump": ({"t_init_c": 54.0}, _store),
    "WaterHeater": ({"t_init_c": 74.0}, _store),
    "CHP": ({}, _chp),
}

ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True, width=32)


def _actions(space: gymnasium.spaces.Space) -> st.SearchStrategy:
    if isinstance(space, gymnasium.spaces.Discrete):
        return st.one_of(st.integers(-50, 50), ANY_FLOAT.map(lambda x: np.array([x])))
    return st.lists(ANY_FLOAT, min_size=space.shape[0], max_size=space.shape[0]).map(np.array)


@pytest.mark.parametrize("name", DEVICES)
def test_limits_hold_for_any_action(name: str) -> None:
    raw, check = CASES[name]
    template = make(name, **raw)

    @settings(max_examples=25, deadline=None, database=None)
    @given(st.lists(_actions(template.action_space), min_size=1, max_size=6), st.integers(0, 90))
    def run(actions: list[Any], start: int) -> None:
        d = make(name, seed=start, **raw)
        ctx = context()
        for i, action in enumerate(actions):
            d.step(action, at(ctx, start + i))
            check(d)
            assert np.isfinite(d.p_mw) and np.isfinite(d.q_mvar) and np.isfinite(d.cost)
            assert d.safety >= 0.0 and np.isfinite(d.safety)
            assert d.projection >= 0.0 and np.isfinite(d.projection)
            assert d.observation_space.contains(d.observe())

    run()


@pytest.mark.parametrize("name", DEVICES)
def test_rule_actions_are_in_the_action_space_over_a_day(name: str) -> None:
    d = make(name, **CASES[name][0])
    ctx = context()
    for t in range(96):
        action = d.rule_action(at(ctx, t))
        assert d.action_space.contains(action), (t, action)
        d.step(action, ctx)
        assert d.observation_space.contains(d.observe())
        assert d.safety >= 0.0


BAD = [
    ("ESS", "capacity_mwh", -2.0), ("ESS", "eta_charge", 1.5), ("ESS", "soc_min", 1.2),
    ("DG", "p_max_mw", -1.0), ("DG", "ramp_up_mw_per_h", 0.0), ("DG", "pf_min", 1.5),
    ("PV", "p_max_mw", -0.1), ("Wind", "p_rated_mw", -1.0), ("Wind", "v_cut_in", -3.0),
    ("Shunt", "n_steps", 0), ("Shunt", "q_step_mvar", -0.1), ("OLTC", "tap_step_percent", -1.0),
    ("GridConnection", "sell_ratio", 1.5), ("FlexibleLoad", "p_base_mw", -0.2), ("FlexibleLoad", "curtail_max", 1.5),
    ("HVAC", "c_kwh_per_c", -100.0), ("HVAC", "cop_heat", -3.0), ("EVCharger", "battery_mwh", -0.06),
    ("EVCharger", "efficiency", 1.5), ("Electrolyzer", "tank_capacity_kg", -100.0), ("Electrolyzer", "eff", [0.6, 1.5]),
    ("Electrolyzer", "eff", [0.9] * 5),  # above the 0.85 a stack over 1.48 V can reach
    ("FuelCell", "p_max_mw", -0.5), ("FuelCell", "eff", [1.5]), ("HeatPump", "carnot_fraction", 1.5),
    ("HeatPump", "c_kwh_per_c", -5.0), ("WaterHeater", "volume_l", -200.0), ("WaterHeater", "efficiency", 1.5),
    ("CHP", "eta_e", 1.5), ("CHP", "p_max_mw", -0.4),
]


@pytest.mark.parametrize(("name", "field", "value"), BAD)
def test_bad_parameter_is_a_config_error_naming_the_field(name: str, field: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        build_params(device_class(name).Params, {field: value}, path="agents[0].params")
    assert field in str(info.value)


CROSS = [
    ("ESS", {"soc_min": 0.6, "soc_init": 0.5}, "soc_min"),
    ("ESS", {"p_max_mw": 1.0, "s_max_mva": 0.5}, "s_max_mva"),
    ("DG", {"p_min_mw": 0.7, "p_max_mw": 0.6}, "p_min_mw"),
    ("DG", {"cost_curve": "piecewise", "pwl_mw": [0.1, 0.6], "pwl_cost_per_h": [1.0, 2.0], "p_min_mw": 0.0}, "pwl_mw"),
    ("Wind", {"v_rated": 2.0}, "v_cut_in"),
    ("HVAC", {"t_min_c": 25.0}, "t_min_c"),
    ("CHP", {"eta_e": 0.6, "eta_th": 0.6}, "eta_e"),
    ("Electrolyzer", {"eff_load": [0.5, 0.2], "eff": [0.6, 0.6]}, "eff_load"),
    ("EVCharger", {"energy_max_mwh": 0.1}, "energy_max_mwh"),
    ("WaterHeater", {"draw_shape": [1.0, 2.0]}, "draw_shape"),
]


@pytest.mark.parametrize(("name", "raw", "field"), CROSS)
def test_inconsistent_parameters_are_config_errors(name: str, raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        build_params(device_class(name).Params, raw)


def test_every_parameter_has_a_unit_or_is_not_a_number() -> None:
    for name in DEVICES:
        for field in __import__("attrs").fields(device_class(name).Params):
            check = field.metadata.get("check")
            assert check is not None, (name, field.name)
            if "a number" in check.expected:
                assert field.metadata["unit"], (name, field.name)


def test_registered_names_match_first_party() -> None:
    registry = get_registry()
    for kind, names in FIRST_PARTY["powergrid-devices"].items():
        for name in names:
            assert (kind, name) in registry
    assert set(DEVICES) == set(FIRST_PARTY["powergrid-devices"]["device"])

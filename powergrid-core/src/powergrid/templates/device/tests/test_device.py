"""Tests of {{Class}}: physics by hand, projection, parameter errors, registration, and a run in an environment."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.devices import StepContext
from powergrid.errors import ConfigError
from powergrid.params import build_params
from powergrid_{{name}} import plugin
from powergrid_{{name}}.device import {{Class}}

CTX = StepContext(dt_h=0.25, profiles={})


def make(**raw: object) -> {{Class}}:
    device = {{Class}}(build_params({{Class}}.Params, {"level_spread": 0.0, **raw}), dt_h=0.25)
    device.reset(np.random.default_rng(0))
    return device


def test_charging_over_steps_matches_hand_computation() -> None:
    device = make(capacity_mwh=0.1, efficiency=0.9, level_init=0.5)
    for k in range(2):
        device.step(np.array([-0.02]), CTX)
        assert device.level == pytest.approx(0.5 + (k + 1) * 0.02 * 0.9 * 0.25 / 0.1)
    assert device.cost == pytest.approx(5.0 * 0.02 * 0.25)


def test_projection_keeps_the_level_feasible() -> None:
    device = make(capacity_mwh=0.1, level_init=0.05, p_max_mw=0.05)
    device.step(np.array([0.05]), CTX)  # only 0.05·0.1/0.25 = 0.02 MW are stored
    assert device.p_mw == pytest.approx(0.02) and device.projection == pytest.approx(0.03)
    assert device.level == pytest.approx(0.0)
    device.step(np.array([np.nan]), CTX)
    assert device.projection == pytest.approx(0.1)  # a NaN counts as the full range
    assert device.observation_space.contains(device.observe())


@pytest.mark.parametrize(("field", "value"), [("capacity_mwh", -1.0), ("efficiency", 1.5)])
def test_bad_parameter_names_the_field(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        build_params({{Class}}.Params, {field: value})


def test_registered_and_runs_in_an_environment(powergrid_registry) -> None:  # fixture from powergrid-core
    from pettingzoo.test import parallel_api_test

    from powergrid.env import MultiAgentPowerGridEnv

    registry = powergrid_registry(plugin)
    assert ("device", "{{Class}}") in registry
    config = {
        "network": {"type": "cigre_lv"},
        "time": {"physics": "15min", "episode": "2h"},
        "agents": [{"id": "dev", "type": "{{Class}}", "bus": "Bus R11", "policy": "learned"}],
    }
    parallel_api_test(MultiAgentPowerGridEnv.from_config(config, registry=registry), num_cycles=8)


def test_the_installed_package_is_found_by_its_entry_point() -> None:
    """pyproject.toml's entry point (group ``powergrid``) is what makes ``type: {{Class}}`` work in a scenario."""
    from powergrid.plugins import get_registry

    assert get_registry().get("device", "{{Class}}").distribution == "powergrid-{{name}}"

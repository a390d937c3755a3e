"""Tests of {{Class}}: the directives and the rule by hand, projection, parameter errors, registration, and runs in
an environment over a battery and a meter of powergrid-devices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from powergrid.devices import StepContext
from powergrid.errors import ConfigError
from powergrid.params import build_params
from powergrid_{{name}} import plugin
from powergrid_{{name}}.protocol import {{Class}}

devices = pytest.importorskip("powergrid_devices.plugin")  # the children: pip install powergrid-devices

CONFIG = {
    "network": {"type": "cigre_lv"},
    "time": {"physics": "15min", "episode": "1d"},
    "agents": [
        {"id": "site", "kind": "grid", "protocol": {"type": "{{name}}"}, "children": ["battery", "pcc"]},
        {"id": "battery", "type": "ESS", "bus": "Bus R11", "params": {"p_max_mw": 0.02, "capacity_mwh": 0.05}},
        {"id": "pcc", "type": "GridConnection", "bus": "Bus 0", "params": {"element": "ext_grid"}},
    ],
}


@pytest.fixture
def make_env(powergrid_registry):  # powergrid_registry: a fixture of powergrid-core for plugin authors
    from powergrid.env import MultiAgentPowerGridEnv

    def make(site: dict | None = None) -> MultiAgentPowerGridEnv:
        config = {**CONFIG, "agents": [{**CONFIG["agents"][0], **(site or {})}, *CONFIG["agents"][1:]]}
        return MultiAgentPowerGridEnv.from_config(config, registry=powergrid_registry(plugin, devices))

    return make


def test_directives_send_the_received_price_plus_the_adder(make_env) -> None:
    protocol = make_env().scenario.agents["site"].protocol
    ctx = StepContext(dt_h=0.25, profiles={}, hour=12.0, price=40.0)
    assert [d.price for d in protocol.directives(np.array([25.0]), ctx)] == [65.0, 65.0]  # one per child
    assert protocol.projection == 0.0
    protocol.directives(np.array([1e6]), ctx)  # clipped to max_adder 200
    assert protocol.price == pytest.approx(240.0) and protocol.projection == pytest.approx(400.0)  # capped: the range
    protocol.directives(np.array([np.nan]), ctx)  # a NaN adder: the received price, counted as the full range
    assert protocol.price == pytest.approx(40.0) and protocol.projection == pytest.approx(400.0)


@pytest.mark.parametrize(("hour", "adder"), [(16.99, 0.0), (17.0, 100.0), (20.5, 100.0), (21.0, 0.0), (3.0, 0.0)])
def test_rule_is_the_peak_adder_inside_the_window(make_env, hour: float, adder: float) -> None:
    protocol = make_env().scenario.agents["site"].protocol
    assert protocol.rule_action(StepContext(dt_h=0.25, profiles={}, hour=hour)).tolist() == [adder]


@pytest.mark.parametrize(("raw", "field"), [({"max_adder": -1.0}, "max_adder"), ({"peak_start": 25.0}, "peak_start"),
                                            ({"peak_start": 20.0, "peak_end": 18.0}, "peak_end")])
def test_bad_parameter_names_the_field(raw: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        build_params({{Class}}.Params, raw)


def test_children_see_the_price_with_the_rule_adder(make_env) -> None:
    env = make_env()
    env.reset(seed=0)
    site, battery = env.scenario.agents["site"], env.scenario.agents["battery"]
    while env.tick < env.max_ticks:
        hour, market = env.ctx.hour, float(env.ctx.profiles["price"][env.tick])
        env.step({})
        expected = market + (100.0 if 17.0 <= hour < 21.0 else 0.0)
        assert site.protocol.price == pytest.approx(expected) and battery.price == pytest.approx(expected)
    assert not math.isnan(site.protocol.price)


def test_registered_and_passes_the_pettingzoo_api_test_as_a_learned_parent(make_env, powergrid_registry) -> None:
    from pettingzoo.test import parallel_api_test

    assert ("protocol", "{{name}}") in powergrid_registry(plugin)
    env = make_env({"policy": "learned"})
    assert env.action_space("site").shape == (1,)
    parallel_api_test(env, num_cycles=8)


def test_the_installed_package_is_found_by_its_entry_point() -> None:
    """pyproject.toml's entry point (group ``powergrid``) is what makes ``type: {{name}}`` work in a scenario."""
    from powergrid.plugins import get_registry

    assert get_registry().get("protocol", "{{name}}").distribution == "powergrid-{{name}}"

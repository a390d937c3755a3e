"""A plugin's bugs at run time (a local plugin in a tmp folder): one error naming the agent, the plugin and its file,
the call and the tick, chained from the plugin's own exception (hold-out review r32)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import ConfigError, PluginError, UnknownPluginError, plugin_failure
from powergrid.plugins import PluginRecord, Registry
from powergrid.protocols import HorizontalProtocol, VerticalProtocol

from .test_plugin_mistakes import local_plugin

DEVICES = """
    import attrs

    class Base(Device):
        \"\"\"0.01 MW out; the action is unused.\"\"\"
        def __init__(self, params, dt_h):
            super().__init__(params, dt_h)
            self.action_space = box(0.0, 1.0)
            self.observation_space = box(0.0, 1.0)

        def step(self, action, ctx):
            self.p_mw = 0.01

        def rule_action(self, ctx):
            return np.zeros(1, np.float32)

        def observe_values(self):
            return [0.5]

    @powergrid.register_device("Steady")
    class Steady(Base):
        pass  # the bystander: 0.01 MW, no bug

    @powergrid.register_device("RaisesInStep")
    class RaisesInStep(Base):
        def step(self, action, ctx):
            if ctx.tick == 1:
                raise RuntimeError("boom")
            super().step(action, ctx)

    @powergrid.register_device("ArrayP")
    class ArrayP(Base):
        def step(self, action, ctx):
            self.p_mw = np.array([0.01])

    @powergrid.register_device("RaisesInSettle")
    class RaisesInSettle(Base):
        def settle(self, flow, ctx):
            raise KeyError("no tariff")

    @powergrid.register_device("RaisesInObserve")
    class RaisesInObserve(Base):
        def observe_values(self):
            raise ZeroDivisionError("division by zero")

    @powergrid.register_device("RaisesInObserveArray")
    class RaisesInObserveArray(Base):
        def observe(self):
            raise IndexError("index 3 is out of bounds")

    @powergrid.register_device("NanP")
    class NanP(Base):
        def step(self, action, ctx):
            self.p_mw = float("nan") if ctx.tick == 2 else 0.01

    @powergrid.register_device("InfQ")
    class InfQ(Base):
        def step(self, action, ctx):
            super().step(action, ctx)
            self.q_mvar = -np.inf

    @attrs.frozen
    class PlainParams:
        p_max_mw: float = 0.1  # no quantity(): checked by its annotation
        steps: int = 2
        label: str = "x"
        droop: "float | None" = None
        on: bool = True

    @powergrid.register_device("Plain")
    class Plain(Base):
        Params = PlainParams
"""


@pytest.fixture(scope="module")
def plugins(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bugs")
    with pytest.MonkeyPatch.context() as mp:
        local_plugin(folder, "buggy_devices", DEVICES, mp)
    return folder / "buggy_devices.py"


def _env(device: str) -> MultiAgentPowerGridEnv:
    """A learned agent of type ``device`` beside a plain device on case33bw, 4 steps of 15 min (no device pack)."""
    return MultiAgentPowerGridEnv.from_config({
        "name": "bugs", "network": {"type": "case33bw"}, "time": {"step_minutes": 15, "steps_per_episode": 4},
        "agents": [{"id": "x", "type": device, "bus": 5, "policy": "learned"},
                   {"id": "other", "type": "Steady", "bus": 6}]})


def _named(device: str, call: str, plugin_file) -> str:
    return rf"agent 'x' \(device '{device}' from local:powergrid_local_buggy_devices, {plugin_file}\): {device}\.{call}"


@pytest.mark.parametrize(("device", "call", "error", "tick", "original"), [
    # "powergrid: error: RuntimeError: boom at tick 5" (/work/notes/r32/repro/d1_plugin_exception_unnamed.sh)
    ("RaisesInStep", "step", RuntimeError, 1, "boom"),
    # "ValueError: setting an array element with a sequence.", --debug named batching.py only
    # numpy < 2.4 reads a size-1 array as its element (a DeprecationWarning): refused before numpy reads it
    ("ArrayP", "step", ValueError, 0, r"set p_mw to ndarray array\(\[0\.01\]\), expected a number .*: an array of shape \(1,\)"),
    ("RaisesInSettle", "settle", KeyError, 0, "no tariff"),
])
def test_an_exception_of_a_device_names_the_agent_the_plugin_and_the_tick(plugins, device, call, error, tick, original):
    env = _env(device)
    env.reset(seed=0)
    with pytest.raises(error) as got:
        for _ in range(4):
            env.step({"x": np.zeros(1, np.float32)})
    # a KeyError's message is its argument (str() quotes it)
    assert re.match(rf"{_named(device, call, plugins)}\(\) at ctx\.tick {tick}:? .*{original}", got.value.args[0])
    assert type(got.value.__cause__) is error  # chained from the plugin's own exception
    assert "RaisesInStep" not in device or env.tick == 1


@pytest.mark.parametrize(("device", "call", "error"), [("RaisesInObserve", "observe_values", ZeroDivisionError),
                                                       ("RaisesInObserveArray", "observe", IndexError)])
def test_an_exception_in_observe_names_the_agent_and_the_plugin(plugins, device, call, error):
    env = _env(device)
    with pytest.raises(error, match=rf"^{_named(device, call, plugins)}\(\): (division by zero|index 3 is out of bounds)$") as got:
        env.reset(seed=0)
    assert type(got.value.__cause__) is error


@pytest.mark.parametrize(("device", "tick", "output"), [("NanP", 2, "p_mw = nan"), ("InfQ", 0, "q_mvar = -inf")])
def test_a_non_finite_output_of_a_device_is_its_plugins_bug_named_not_a_diverged_flow(plugins, device, tick, output):
    # p_mw = NaN gave infos failure 'power flow diverged', the learned agent paid the divergence penalty and `run`
    # said "1 non-converged power flow(s)" (/work/notes/r32/repro/d2_nan_device_output_is_divergence.sh)
    env = _env(device)
    env.reset(seed=0)
    with pytest.raises(PluginError, match=rf"^{_named(device, 'step', plugins)}\(\) at ctx\.tick {tick} set {output}; "
                                          r"a device's outputs must be finite"):
        for _ in range(4):
            env.step({"x": np.zeros(1, np.float32)})
    assert env.tick == tick


@pytest.mark.parametrize(("field", "value", "expected"), [
    # accepted by validate, then the run failed: "TypeError: can't multiply sequence by non-int of type 'float'"
    # (/work/notes/r32/repro/d3_silent_plugin_bugs.sh, sc/half)
    ("p_max_mw", "lots", "a number"), ("p_max_mw", float("nan"), "a number"), ("steps", 1.5, "an integer"),
    ("label", 3, "a string"), ("droop", "high", "a number or null"), ("on", "yes", "true or false")])
def test_a_params_field_without_quantity_is_checked_by_its_annotation(plugins, field, value, expected):
    config = {"name": "bugs", "network": {"type": "case33bw"},
              "agents": [{"id": "x", "type": "Plain", "bus": 5, "params": {field: value}}]}
    with pytest.raises(ConfigError, match=rf"^<config> agents\[0\]\.params\.{field}: expected {expected}, got "):
        MultiAgentPowerGridEnv.from_config(config)


def test_a_params_field_without_quantity_takes_a_value_of_its_annotation(plugins):
    config = {"name": "bugs", "network": {"type": "case33bw"},
              "agents": [{"id": "x", "type": "Plain", "bus": 5,
                          "params": {"p_max_mw": 1, "steps": 3, "label": "y", "droop": 0.05, "on": False}}]}
    params = MultiAgentPowerGridEnv.from_config(config).scenario.agents["x"].device.params
    assert (params.p_max_mw, params.steps, params.label, params.droop, params.on) == (1.0, 3, "y", 0.05, False)
    assert type(params.p_max_mw) is float


def test_an_unknown_protocol_in_a_vertical_or_horizontal_slot_offers_the_protocols_that_fit_it():
    # a vertical slot listed channels ('ideal', 'lossy') and horizontal protocols as installed, and using one then failed
    # with "'lossy' is not a vertical protocol" (/work/notes/r32/sc/proto_typo.yaml)
    class Split(VerticalProtocol):
        pass

    class Market(HorizontalProtocol):
        pass

    class Channel:
        pass

    registry = Registry([PluginRecord(name, factory, kind="protocol") for name, factory in [
        ("split", Split), ("market", Market), ("lossy", Channel), ("broken", "no_such_module_f32:Proto")]])
    message = registry.unknown_message("protocol", "splitt", VerticalProtocol)
    assert "did you mean 'split'? (installed VerticalProtocols: split)" in message  # a typo: no local-plugin hint (f33 D8)
    with pytest.raises(UnknownPluginError, match=r"did you mean 'market'\? \(installed HorizontalProtocols: market\)"):
        registry.load("protocol", "markett", HorizontalProtocol)
    assert "(installed VerticalProtocols: split);" in registry.unknown_message("protocol", "market_x", VerticalProtocol)
    assert "(installed: broken, lossy, market, split);" in registry.unknown_message("protocol", "x")


def test_an_exception_whose_type_takes_no_message_becomes_a_plugin_error_naming_the_type():
    class WireError(Exception):
        def __init__(self, register: int, code: int):
            super().__init__(f"register {register}: code {code}")

    again = plugin_failure(WireError(40001, 3), "agent 'x' (Meter): Meter.step() at ctx.tick 2")
    assert type(again) is PluginError
    assert str(again) == "agent 'x' (Meter): Meter.step() at ctx.tick 2: WireError: register 40001: code 3"
    assert str(plugin_failure(KeyError("price"), "here")) == repr("here: price")  # a KeyError as its argument


PROTOCOLS = """
    from powergrid.protocols import Directive, VerticalProtocol

    @powergrid.register_protocol("raising_price")
    class RaisingPrice(VerticalProtocol):
        def directives(self, action, ctx):
            raise KeyError("missing price table")

    @powergrid.register_protocol("short_price")
    class ShortPrice(VerticalProtocol):
        def directives(self, action, ctx):
            return [Directive(price=ctx.price)]  # one for two children

    @powergrid.register_protocol("nan_price")
    class NaNPrice(VerticalProtocol):
        def directives(self, action, ctx):
            return [Directive(price=float("nan") if ctx.tick == 2 else ctx.price) for _ in self.parent.children]
"""


@pytest.fixture(scope="module")
def protocols(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_protocols")
    with pytest.MonkeyPatch.context() as mp:
        local_plugin(folder, "buggy_protocols", PROTOCOLS, mp)
    return folder / "buggy_protocols.py"


@pytest.mark.parametrize(("protocol", "error", "tick", "message"), [
    # 'powergrid: error: KeyError: missing price table' (/work/notes/r32/repro/d1_plugin_exception_unnamed.sh)
    ("raising_price", KeyError, 0, r"RaisingPrice\.directives\(\) at ctx\.tick 0: missing price table"),
    # silent before: the second child acted on its own (/work/notes/r32/repro/d3_silent_plugin_bugs.sh)
    ("short_price", PluginError, 0, r"ShortPrice\.directives\(\) at ctx\.tick 0 returned 1 directive\(s\) for 2 children"),
    # silent before: the children idled and every cost read 0
    ("nan_price", PluginError, 2, r"NaNPrice\.directives\(\) at ctx\.tick 2 sent agent 'a' the price nan"),
])
def test_a_protocols_bug_names_the_grid_agent_the_plugin_and_the_tick(plugins, protocols, protocol, error, tick, message):
    env = MultiAgentPowerGridEnv.from_config({
        "name": "bugs", "network": {"type": "case33bw"}, "time": {"step_minutes": 15, "steps_per_episode": 4},
        "agents": [{"id": "mg", "kind": "grid", "policy": "rule", "protocol": {"type": protocol}, "children": ["a", "b"]},
                   {"id": "a", "type": "Steady", "bus": 5, "policy": "learned"},
                   {"id": "b", "type": "Steady", "bus": 6, "policy": "learned"}]})
    env.reset(seed=0)
    with pytest.raises(error) as got:
        for _ in range(4):
            env.step({a: np.zeros(1, np.float32) for a in env.agents})
    where = rf"agent 'mg' \(protocol '{protocol}' from local:powergrid_local_buggy_protocols, {protocols}\): "
    assert re.match(where + message, got.value.args[0]), got.value.args[0]
    assert env.tick == tick

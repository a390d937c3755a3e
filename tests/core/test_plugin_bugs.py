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

    @powergrid.register_device("KiloP")
    class KiloP(Base):
        # kW for MW at tick 1: -200 'MW' at a 12.66 kV bus (r44b F1: no flow converges)
        def step(self, action, ctx):
            self.p_mw = -200.0 if ctx.tick == 1 else 0.01

    @powergrid.register_device("NanCostInStep")
    class NanCostInStep(Base):
        def step(self, action, ctx):
            super().step(action, ctx)
            self.cost = float("nan") if ctx.tick == 1 else 0.0

    @powergrid.register_device("InfSafetyInStep")
    class InfSafetyInStep(Base):
        def step(self, action, ctx):
            super().step(action, ctx)
            self.safety = np.inf if ctx.tick == 1 else 0.0

    @powergrid.register_device("NanCostInSettle")
    class NanCostInSettle(Base):
        def settle(self, flow, ctx):
            self.cost = float("nan") if ctx.tick == 1 else 0.0

    @powergrid.register_device("NanRule")
    class NanRule(Base):
        def rule_action(self, ctx):
            return np.array([np.nan], np.float32)

    @powergrid.register_device("NanObserveValues")
    class NanObserveValues(Base):
        def observe_values(self):
            return [float("nan")]

    @powergrid.register_device("NanObserve")
    class NanObserve(Base):
        def observe(self):
            return np.array([np.nan], np.float32)

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


def _named(device: str, call: str, plugin_file, line: bool = False) -> str:
    """The start of the error's message (``line``: the plugin's file with the line of the raise, any)."""
    at = r":\d+" if line else ""
    return rf"agent 'x' \(device '{device}' from local:powergrid_local_buggy_devices, {plugin_file}{at}\): {device}\.{call}"


def _line_of(plugin_file, text: str) -> int:
    """The line number of ``text`` in the plugin's file (the first line holding it)."""
    return next(n for n, line in enumerate(plugin_file.read_text().splitlines(), 1) if text in line)


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
    # a KeyError's message is its argument (str() quotes it); an exception raised in the plugin's file: its line (F7)
    assert re.match(rf"{_named(device, call, plugins, line=call != 'step' or device == 'RaisesInStep')}\(\) at ctx\.tick "
                    rf"{tick}:? .*{original}", got.value.args[0])
    assert type(got.value.__cause__) is error  # chained from the plugin's own exception
    assert "RaisesInStep" not in device or env.tick == 1


@pytest.mark.parametrize(("device", "call", "error"), [("RaisesInObserve", "observe_values", ZeroDivisionError),
                                                       ("RaisesInObserveArray", "observe", IndexError)])
def test_an_exception_in_observe_names_the_agent_and_the_plugin(plugins, device, call, error):
    env = _env(device)
    message = rf"^{_named(device, call, plugins, line=True)}\(\): (division by zero|index 3 is out of bounds)$"
    with pytest.raises(error, match=message) as got:
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
    line = r":\d+" if error is KeyError else ""  # raised in the plugin's file: the line of the raise (r44b F7)
    where = rf"agent 'mg' \(protocol '{protocol}' from local:powergrid_local_buggy_protocols, {protocols}{line}\): "
    assert re.match(where + message, got.value.args[0]), got.value.args[0]
    assert env.tick == tick


# ---------------------------------------------------------------- hold-out review r44b (an energy researcher's plugins)

def test_the_one_line_error_of_an_exception_in_a_plugin_names_the_line_of_the_raise(plugins):
    # r44b F7: "agent 'tank' (device 'TankRaises' from powergrid-buggy, /…/devices.py): TankRaises.step() at ctx.tick
    # 40: float division by zero": the file, not the line
    env = _env("RaisesInStep")
    env.reset(seed=0)
    with pytest.raises(RuntimeError) as got:
        for _ in range(4):
            env.step({"x": np.zeros(1, np.float32)})
    line = _line_of(plugins, 'raise RuntimeError("boom")')
    assert f"from local:powergrid_local_buggy_devices, {plugins}:{line}): RaisesInStep.step() at ctx.tick 1: boom" \
        in str(got.value)


def test_a_diverged_flow_names_the_largest_injections_against_the_network_load(plugins):
    # r44b F1: a plugin's kW for MW (-30 'MW' at a LV bus) gave "power flow diverged" and naming no device
    env = _env("KiloP")
    env.reset(seed=0)
    infos = env.step({"x": np.zeros(1, np.float32)})[4]
    assert infos["x"]["failure"] == ""
    infos = env.step({"x": np.zeros(1, np.float32)})[4]  # tick 1: -200 MW at bus 5
    load = float(env.net.load.p_mw.to_numpy() @ env.load_multipliers[1])  # this tick's loads (MW)
    assert 0.3 * 3.715 < load < 3.715  # case33bw's 3.715 MW times the load profile's multiplier at 00:15 (< 1)
    assert infos["x"]["converged"] is False and infos["x"]["failure"] == (
        "power flow diverged; largest injections: 'x' (device 'KiloP' from local:powergrid_local_buggy_devices) "
        f"-200 MW at bus 5, 'other' (device 'Steady' from local:powergrid_local_buggy_devices) 0.01 MW at bus 6; "
        f"network load {load:.4g} MW")


def test_powergrid_run_ends_with_the_first_failed_steps_culprits_and_exits_0(plugins, tmp_path, capsys):
    # r44b F1: `powergrid run` printed "1 failed step(s): power flow diverged (1)" and nothing to look at
    from powergrid.cli import main

    config = tmp_path / "kilo.yaml"
    config.write_text("name: kilo\nnetwork: {type: case33bw}\ntime: {physics: 15min, episode: 1h}\n"
                      "agents:\n  - {id: x, type: KiloP, bus: 5, policy: rule}\n")
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 0  # a failed step is an event, not an error
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].endswith("1 failed step(s): power flow diverged (1)"), lines  # counted by reason
    assert lines[-1] == ("1 failed step(s) (rows with converged False); the first at episode 0, tick 1: power flow "
                         "diverged; largest injections: 'x' (device 'KiloP' from local:powergrid_local_buggy_devices) "
                         f"-200 MW at bus 5; network load {lines[-1].rsplit(' ', 2)[-2]} MW")


@pytest.mark.parametrize(("device", "output"), [("NanCostInStep", "cost = nan"), ("InfSafetyInStep", "safety = inf")])
def test_a_non_finite_cost_or_safety_set_by_step_is_the_plugins_bug_named(plugins, device, output):
    # r44b F2: a NaN cost from step was a silent failure event ("non-finite cost or safety of 'tank'"), rc 0, while
    # a NaN p_mw was a PluginError naming the plugin's file
    env = _env(device)
    env.reset(seed=0)
    with pytest.raises(PluginError, match=rf"^{_named(device, 'step', plugins)}\(\) at ctx\.tick 1 set {output}; "
                                          r"a device's outputs must be finite"):
        for _ in range(4):
            env.step({"x": np.zeros(1, np.float32)})


def test_a_non_finite_cost_set_in_settle_stays_a_failure_event(plugins):
    # settle's cost depends on the flow: the step fails (an event, penalized), nothing is raised
    env = _env("NanCostInSettle")
    env.reset(seed=0)
    env.step({"x": np.zeros(1, np.float32)})
    _, rewards, terminated, _, infos = env.step({"x": np.zeros(1, np.float32)})
    assert infos["x"]["failure"] == "non-finite cost or safety of 'x'" and terminated["x"]
    assert np.isfinite(rewards["x"]) and infos["x"]["penalty"] > 0


def test_a_non_finite_rule_action_is_the_plugins_bug_named(plugins):
    # r44b F6: a NaN rule_action() was projected to the middle of the action space, silently (another policy)
    env = MultiAgentPowerGridEnv.from_config({
        "name": "bugs", "network": {"type": "case33bw"}, "time": {"step_minutes": 15, "steps_per_episode": 4},
        "agents": [{"id": "x", "type": "NanRule", "bus": 5, "policy": "rule"},
                   {"id": "other", "type": "Steady", "bus": 6, "policy": "learned"}]})
    env.reset(seed=0)
    with pytest.raises(PluginError, match=rf"^agent 'x' \(device 'NanRule' from local:powergrid_local_buggy_devices, "
                                          rf"{plugins}\): NanRule\.rule_action\(\) at ctx\.tick 0 returned \[nan\]; "
                                          r"a policy's action must be finite"):
        env.step({"other": np.zeros(1, np.float32)})


@pytest.mark.parametrize(("device", "call"), [("NanObserveValues", "observe_values() gave nan"),
                                              ("NanObserve", "observe() returned nan")])
def test_a_non_finite_observation_of_a_plugin_warns_once_naming_it(plugins, device, call):
    # r44b F6: a NaN observe() was observed as 0, silently
    env = _env(device)
    with pytest.warns(RuntimeWarning) as caught:
        obs, _ = env.reset(seed=0)
        for _ in range(3):
            obs = env.step({"x": np.zeros(1, np.float32)})[0]
    ours = [str(w.message) for w in caught if device in str(w.message)]
    assert len(ours) == 1, ours  # once per device, not once per step
    assert ours[0].startswith(f"agent 'x' (device '{device}' from local:powergrid_local_buggy_devices, {plugins}): "
                              f"{device}.{call} in its observation; observed as 0"), ours[0]
    assert np.isfinite(obs["x"]).all()

"""Bad YAML gives one error naming file, line and YAML path; good YAML gives frozen typed config."""

from __future__ import annotations

import textwrap

import attrs
import numpy as np
import pytest

from powergrid.builder import build_scenario
from powergrid.config import EnvConfig
from powergrid.errors import ConfigError
from powergrid.plugins import make_registry

from .scenarios import load_local

GOOD = """\
name: t
network: {type: case33bw}
time: {step_minutes: 15, steps_per_episode: 4}
agents:
  - id: mg
    kind: grid
    policy: learned
    children: [dev]
  - id: dev
    type: ConstantPower
    bus: 5
    params: {p_mw: 0.2}
"""


@pytest.fixture(scope="module")
def registry():
    load_local()
    return make_registry(include_local=True)


def _load(tmp_path, text: str) -> EnvConfig:
    path = tmp_path / "scenario.yaml"
    path.write_text(textwrap.dedent(text))
    return EnvConfig.from_yaml(path)


def _error(tmp_path, text: str, registry=None) -> str:
    with pytest.raises(ConfigError) as err:
        config = _load(tmp_path, text)
        build_scenario(config, registry, solver="pandapower")
    return str(err.value)


def test_good_config_is_frozen_and_typed(tmp_path, registry):
    config = _load(tmp_path, GOOD)
    assert config.time.dt_h == 0.25 and config.time.steps_per_episode == 4
    assert config.agents[1].bus == 5 and config.agents[0].children == ("dev",)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.name = "other"
    scenario = build_scenario(config, registry, solver="pandapower")
    assert scenario.agents["dev"].device.params.p_mw == 0.2


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # unknown key
        (("    params: {p_mw: 0.2}", "    params: {p_mw: 0.2}\n    colour: red"),
         "scenario.yaml:13 agents[1].colour: unknown key (expected one of: id, kind, type"),
        # wrong type
        (("step_minutes: 15", "step_minutes: fast"),
         "scenario.yaml:3 time.step_minutes: expected a number > 0 and ≤ 1440 (min), got 'fast'"),
        # out of range
        (("steps_per_episode: 4", "steps_per_episode: 0"),
         "scenario.yaml:3 time.steps_per_episode: expected an integer ≥ 1 ≤ 1000000, got 0"),
        # unknown plugin name (with did-you-mean)
        (("type: ConstantPower", "type: ConstantPowr"),
         "scenario.yaml:10 agents[1].type: unknown device type 'ConstantPowr'; did you mean 'ConstantPower'?"),
        # unknown first-party plugin name (with the pip hint)
        (("type: ConstantPower", "type: ESS"), "it is provided by powergrid-devices: pip install powergrid-devices"),
        # dangling bus reference
        (("bus: 5", "bus: 99"), "scenario.yaml:11 agents[1].bus: expected a bus of network 'case33bw'"),
        # dangling sub-agent reference
        (("children: [dev]", "children: [dev, ghost]"),
         "scenario.yaml:8 agents[0].children[1]: expected the id of an agent defined in 'agents', got 'ghost'"),
        # device parameter out of range (validated with units)
        (("params: {p_mw: 0.2}", "params: {p_mw: 0.2, scale_max: -1}"),
         "scenario.yaml:12 agents[1].params.scale_max: expected a number > 0, got -1"),
        # import paths are not registry names
        (("type: ConstantPower", "type: os.path:join"), "expected a registry name, got 'os.path:join' (import paths are not allowed"),
        # duplicate id
        (("  - id: dev", "  - id: mg"), "scenario.yaml:9 agents[1].id: duplicate agent id 'mg' (first defined at agents[0])"),
    ],
)
def test_bad_yaml_gives_one_located_error(tmp_path, registry, edit, expected):
    old, new = edit
    assert old in GOOD
    message = _error(tmp_path, GOOD.replace(old, new, 1), registry)
    assert expected in message
    assert message.count("\n") == 0


def test_yaml_syntax_error_names_the_line(tmp_path):
    message = _error(tmp_path, "network: {type: case33bw\nagents: []\n")
    assert "scenario.yaml:" in message and "invalid YAML" in message


def test_yaml_tags_that_run_code_are_rejected(tmp_path):
    message = _error(tmp_path, "network: !!python/object/apply:os.system ['echo hi']\nagents: []\n")
    assert "invalid YAML" in message


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        EnvConfig.from_yaml(tmp_path / "nope.yaml")
    assert "the file is empty" in _error(tmp_path, "")


def test_exponent_numbers_without_a_dot_are_numbers(tmp_path, registry):
    # PyYAML (YAML 1.1) reads 1e-3, 1e3 and 1.0e3 as text: 'expected a number ≥ 0, got '1e-3'' for what the
    # user wrote as a number; YAML 1.2 (and every other tool) reads them as numbers
    text = GOOD.replace("params: {p_mw: 0.2}", "params: {p_mw: 2e-1, scale_max: 1.0e0}") + \
        "reward: {cost_weight: 1e-3, safety_weight: 1E2}\nloads: {scale: {1e3: 1e0}}\n"
    config = _load(tmp_path, text)
    assert config.reward.cost_weight == 0.001 and config.reward.safety_weight == 100.0
    assert config.agents[1].params == {"p_mw": 0.2, "scale_max": 1.0}
    assert config.loads.scale == {"1e3": 1.0}  # keys stay names
    with pytest.raises(ConfigError, match=r"reward.cost_weight: expected a number ≥ 0 \(1/\$\), got '1e-3'"):
        _load(tmp_path, GOOD + "reward: {cost_weight: '1e-3'}\n")  # quoted: text, as written
    assert "expected a finite number, got '1e999'" in _error(tmp_path, GOOD + "seed: 1e999\n")


def test_numpy_numbers_pass_the_configs_own_checks(registry):
    """A sweep's numpy values read like Python's: the seed, a bus, a period in physics steps, a load scale, a price."""
    scenario = {"name": "t", "network": {"type": "case33bw"}, "time": {"physics": "15min", "episode": "1h"},
                "seed": np.int64(7), "loads": {"scale": {"*": np.float32(1.5)}},
                "agents": [{"id": "dev", "type": "ConstantPower", "bus": np.int64(5), "period": np.int64(2),
                            "events": {"price_above": np.float32(50.0)}, "params": {"p_mw": 0.2}}]}
    config = EnvConfig.from_dict(scenario)
    dev = config.agents[0]
    assert (config.seed, dev.bus, dev.period_s, dev.events.price_above, config.loads.scale) == (7, 5, 1800, 50.0, {"*": 1.5})
    assert type(config.seed) is type(dev.bus) is type(dev.period_s) is int
    build_scenario(config, registry, solver="pandapower")
    for key, bad in (("seed", np.bool_(True)), ("seed", np.float64(7.0)), ("seed", np.int64(-1))):
        with pytest.raises(ConfigError, match="seed: expected an integer from 0"):
            EnvConfig.from_dict({**scenario, key: bad})


@pytest.mark.parametrize(("bus", "hint"), [("'Bus 5'", "; did you mean 'bus 5'?"), ("'bus 55'", "; did you mean 'bus 5'?"),
                                           ("'zzz'", ""), ("99", "")])
def test_a_bus_name_off_by_case_or_a_typo_names_the_close_one(tmp_path, registry, monkeypatch, bus, hint):
    # the message listed the first eight names only: a bus differing in case or by one character was not suggested
    import pandapower.networks as pn

    from powergrid import builder

    def named(net):
        net.bus["name"] = [f"bus {i}" for i in net.bus.index]
        return net

    monkeypatch.setattr(builder, "build_network", lambda config, reg: named(pn.case33bw()))
    message = _error(tmp_path, GOOD.replace("bus: 5", f"bus: {bus}"), registry)
    assert message.endswith(f"got {bus}{hint}")


@pytest.mark.parametrize(("link", "expected"), [
    # r44c F7: a shared key's error named a path not in the file (agents[1].link.down.loss)
    ("{delay: 7min, loss: 1.5}", "scenario.yaml:13 agents[1].link.loss: expected a number ≥ 0 and ≤ 1, got 1.5"),
    ("{capacity: -1, up: {capacity: 2}}", "scenario.yaml:13 agents[1].link.capacity: expected an integer ≥ 0, got -1"),
    ("{loss: 0.1, down: {loss: 1.5}}", "scenario.yaml:13 agents[1].link.down.loss: expected a number ≥ 0 and ≤ 1, got 1.5"),
    # r44c F8: a delay as long as the episode (1 h) was accepted, nothing ever arrived; an offset that long is an error
    ("{delay: 1h}", "scenario.yaml:13 agents[1].link.delay: 1h is not shorter than the episode (1h): nothing sent "
                    "over the link would ever arrive"),
    ("{delay: 1min, up: {delay: 3h}}", "scenario.yaml:13 agents[1].link.up.delay: 3h is not shorter than the episode"),
])
def test_a_bad_link_names_the_key_where_it_is_written(tmp_path, link, expected):
    message = _error(tmp_path, GOOD.replace("    params: {p_mw: 0.2}", f"    params: {{p_mw: 0.2}}\n    link: {link}"))
    assert message.startswith(str(tmp_path / expected)) and message.count("\n") == 0


def test_a_direction_s_link_key_overrides_the_shared_one(tmp_path):
    # docs/time.md: down/up override the shared keys for their direction
    config = _load(tmp_path, GOOD.replace("    params: {p_mw: 0.2}", "    params: {p_mw: 0.2}\n"
                                          "    link: {loss: 1.0, delay: 2min, down: {loss: 0.0, delay: 0min}}"))
    dev = config.agents[1]
    assert dev.down is None and (dev.up.loss, dev.up.delay_s) == (1.0, 120)  # down: ideal; up: the shared keys

"""Hostile scenario files and plugin set-ups: one located error each, before any work is done (core only)."""

from __future__ import annotations

import textwrap

import pytest

from powergrid import plugins
from powergrid.cli import main
from powergrid.config import EnvConfig
from powergrid.errors import ConfigError, DuplicatePluginError, PluginLoadError
from powergrid.plugins import PluginRecord, Registry

BASE = textwrap.dedent("""\
    name: hostile
    network: case33bw
    time: {physics: 15min, episode: 1h}
    agents:
      - {id: g, kind: grid}
""")
BOMB = "".join(f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(9))

CASES = [
    ("aliases", "a: &a [x,x,x,x,x,x,x,x,x]\n" + BOMB + BASE, "scenario.yaml:6: invalid YAML: more than 200,000 values"),
    ("depth", BASE + "x: " + "[" * 100 + "]" * 100 + "\n", "scenario.yaml:6: invalid YAML: nested more than 64 levels"),
    ("list key", BASE + "? [1, 2]\n: 3\n", "scenario.yaml:6: invalid YAML: expected a plain name as a key, got a list"),
    ("tagged key", BASE + "? !!python/name:os.system\n: 1\n", "scenario.yaml:6: invalid YAML: expected a plain name as a "
                                                                "key, got a tagged key"),
    ("tagged value", BASE + "x: !!python/object/apply:os.system [echo]\n", "scenario.yaml:6 x: invalid YAML: unsupported tag"),
    ("merge key", BASE.replace("{physics: 15min, episode: 1h}", "{<<: {physics: 15min}, episode: 1h}"),
     "scenario.yaml:3 time: invalid YAML: merge keys (<<) are not supported"),
    ("huge integer", BASE + "seed: " + "9" * 5000 + "\n", "scenario.yaml:6 seed: integer out of range (beyond 2**63)"),
    ("integer beyond 2**63", BASE + "seed: 99999999999999999999\n", "scenario.yaml:6 seed: integer out of range"),
    ("negative seed", BASE + "seed: -5\n", "scenario.yaml:6 seed: expected an integer from 0 to 2**63 - 1, got -5"),
    ("inf", BASE + "reward: {cost_weight: .inf}\n", "scenario.yaml:6 reward.cost_weight: expected a finite number, got '.inf'"),
    ("nan", BASE + "reward: {cost_weight: .nan}\n", "scenario.yaml:6 reward.cost_weight: expected a finite number"),
    ("overflowing float", BASE + "reward: {cost_weight: 1.0e+999}\n", "reward.cost_weight: expected a finite number"),
    ("period", BASE.replace("kind: grid}", "kind: grid, period: 100000000000}"), "scenario.yaml:5 agents[0].period:"),
    ("episode", BASE.replace("physics: 15min, episode: 1h", "physics: 1s, episode: 30d"),
     "scenario.yaml:3 time.episode: expected at most 1,000,000"),
    ("name with ..", BASE.replace("name: hostile", "name: ../../tmp/x"), "scenario.yaml:1 name: expected a name of letters"),
    ("absolute name", BASE.replace("name: hostile", "name: /tmp/x"), "scenario.yaml:1 name: expected a name of letters"),
    ("dots only", BASE.replace("name: hostile", "name: '..'"), "scenario.yaml:1 name: expected a name of letters"),
    # YAML 1.1 readings PyYAML applies and YAML 1.2 does not: yes/on were True ('got True', a key 'reward.True'),
    # 1:30 was 90 (base 60), 010 was 8 (octal)
    ("yes", BASE + "reward: {cost_weight: yes}\n", "scenario.yaml:6 reward.cost_weight: expected a number ≥ 0 (1/$), got 'yes'"),
    ("on as a key", BASE + "reward: {on: 1}\n", "scenario.yaml:6 reward.on: unknown parameter of RewardConfig"),
    ("base 60", BASE.replace("episode: 1h}", "episode: 1h, start_hour: 1:30}"),
     "scenario.yaml:3 time.start_hour: expected an integer ≥ 0 ≤ 23, got '1:30'"),
    ("octal", BASE.replace("episode: 1h}", "episode: 1h, start_hour: 010}"),
     "scenario.yaml:3 time.start_hour: ambiguous number 010: YAML 1.1 reads it as octal (8), YAML 1.2 as decimal"),
    ("leading zero, no octal", BASE.replace("episode: 1h}", "episode: 1h, start_hour: 08}"),  # was 'as octal (08)'
     "scenario.yaml:3 time.start_hour: ambiguous number 08: YAML 1.1 reads it as text, YAML 1.2 as decimal"),
    # 0b1 was 1 (a YAML 1.1 binary integer; the 1.2 core schema has none: text, as yes and 1:30 are)
    ("binary", BASE.replace("episode: 1h}", "episode: 1h, start_hour: 0b1}"),
     "scenario.yaml:3 time.start_hour: expected an integer ≥ 0 ≤ 23, got '0b1'"),
    ("second document", BASE + "---\nname: two\n", "scenario.yaml:6:1: invalid YAML: expected a single document in the "
                                                     "stream, but found another document (a scenario file holds one"),
    ("tab", BASE + "reward:\n\tcost_weight: 1\n", "scenario.yaml:7:1: invalid YAML: while scanning"),
    # a tab starting a block line gave PyYAML's bare 'found character that cannot start any token', without the hint
    ("tab before a list item", BASE.replace("  - {id", "\t- {id"),
     "scenario.yaml:5:1: invalid YAML: while scanning for the next token, found character that cannot start any token "
     "(indent with spaces)"),
    ("empty voltage band", BASE + "reward: {v_min_pu: 1.1, v_max_pu: 0.9}\n",
     "scenario.yaml:6 reward: expected v_min_pu < v_max_pu, got 1.1 ≥ 0.9"),
    ("horizontal mapping", BASE + "horizontal: {type: p2p_trading}\n",
     "scenario.yaml:6 horizontal: expected a list of protocols among peers"),
    # a p_max_mw of 1e300 made the action space [-inf, inf] (float32): NaN setpoints, the device silently idle
    ("beyond float32", BASE + "reward: {cost_weight: 1e39}\n", "scenario.yaml:6 reward.cost_weight: number out of range: "
                                                                 "1e39 is beyond ±3.4e38"),
    # validate said ok; only building the env (powergrid run) found the 31,536,000 ticks of a 1 s period over 365 days
    ("ticks", BASE.replace("episode: 1h", "episode: 365d").replace("kind: grid}", "kind: grid, period: 1s}"),
     "scenario.yaml:5 agents[0].period: the tick derived from the physics step, periods, offsets and link delays is 1 s, "
     "so an episode has 31,536,000 ticks (at most 10,000,000)"),
    # a protocol among peers with no, one or a repeated participant validated and ran, doing nothing or trading
    # an agent with itself
    ("no participants", BASE + "horizontal: [{type: p2p_trading}]\n",
     "scenario.yaml:6 horizontal[0]: expected at least two participants (agent ids), got []"),
    ("one participant", BASE + "horizontal: [{type: p2p_trading, participants: [g]}]\n",
     "scenario.yaml:6 horizontal[0].participants: expected at least two participants (agent ids), got ['g']"),
    ("a participant twice", BASE + "horizontal: [{type: p2p_trading, participants: [g, g]}]\n",
     "scenario.yaml:6 horizontal[0].participants[1]: 'g' is listed twice"),
    ("typo", BASE + "rewards: {}\n", "scenario.yaml:6 rewards: unknown key (did you mean 'reward'? expected one of: name"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_yaml_is_one_located_error(tmp_path, text, expected):
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        EnvConfig.from_yaml(path)
    assert expected in str(err.value).replace(str(tmp_path) + "/", "")
    assert "\n" not in str(err.value)


def test_yaml_12_readings_keep_true_false_and_plain_numbers(tmp_path):
    config = EnvConfig.from_text(BASE + "reward: {cost_weight: 1_000, safety_weight: 0x10, v_max_pu: 1.06}\n")
    assert (config.reward.cost_weight, config.reward.safety_weight, config.reward.v_max_pu) == (1000, 16, 1.06)
    agent = EnvConfig.from_text(BASE.replace("kind: grid}", "kind: grid, events: {voltage: True, message: false}}"))
    assert agent.agents[0].events.voltage is True
    with pytest.raises(ConfigError, match=r"agents\[0\].events.voltage: expected true or false, got 'yes'"):
        EnvConfig.from_text(BASE.replace("kind: grid}", "kind: grid, events: {voltage: yes}}"))


def test_yaml_12_octal_is_a_number_and_binary_is_text():
    """``0o10`` is 8 in YAML 1.2 and was text ('0o10', YAML 1.1), like ``1e3``; ``0b1`` was 1 (YAML 1.1) and is text,
    like ``1:30``: a name stays as written. As keys both stay text (a key ``1e3`` does too)."""
    config = EnvConfig.from_text(BASE.replace("kind: grid}", "kind: grid}\n  - {id: 0b1, kind: grid}")
                                 .replace("episode: 1h}", "episode: 1h, start_hour: 0o10}"))
    assert config.time.start_hour == 8 and type(config.time.start_hour) is int
    assert [a.id for a in config.agents] == ["g", "0b1"]
    # forms PyYAML's 1.1 constructor fails on are text too, not "invalid YAML value" (rv2: 0b_), long ones not "out of range"
    config = EnvConfig.from_text(BASE.replace("kind: grid}", "kind: grid}\n  - {id: 0b_, kind: grid}\n"
                                              "  - {id: 0b10101010101010101010101, kind: grid}"))
    assert [a.id for a in config.agents] == ["g", "0b_", "0b10101010101010101010101"]
    with pytest.raises(ConfigError, match=r"reward\.0o10: unknown parameter of RewardConfig"):
        EnvConfig.from_text(BASE + "reward: {0o10: 1}\n")
    with pytest.raises(ConfigError, match=r"time\.start_hour: expected an integer ≥ 0 ≤ 23, got '-0o10'"):
        EnvConfig.from_text(BASE.replace("episode: 1h}", "episode: 1h, start_hour: -0o10}"))  # text in 1.2 too


def test_non_utf8_bytes_are_located(tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_bytes(BASE.encode() + "# caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"scenario.yaml:6: not UTF-8 text: byte 0xe9"):
        EnvConfig.from_yaml(path)


def test_the_size_limit_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "scenario.yaml"
    path.write_text(BASE)
    assert EnvConfig.from_yaml(path).name == "hostile"
    monkeypatch.setenv("POWERGRID_MAX_CONFIG_BYTES", "50")
    with pytest.raises(ConfigError, match="larger than 50 bytes"):
        EnvConfig.from_yaml(path)


def test_a_default_name_from_the_file_is_made_safe(tmp_path):
    path = tmp_path / "my scenario (v2).yaml"
    path.write_text(BASE.replace("name: hostile\n", ""))
    assert EnvConfig.from_yaml(path).name == "my_scenario__v2_"


def test_cli_error_is_one_line_exit_2_and_debug_shows_the_traceback(tmp_path, capsys):
    path = tmp_path / "scenario.yaml"
    path.write_text(BASE + "seed: -5\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("powergrid: error: ") and "seed" in err
    assert main(["--debug", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.splitlines()[-1].startswith("powergrid: error: ")


def test_usage_errors_are_one_line(capsys):
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the following arguments are required: config" in err
    assert main(["run", "x.yaml", "--seed", "-5"]) == 2
    assert "--seed: expected an integer ≥ 0, got -5" in capsys.readouterr().err


@pytest.fixture
def fresh_registry():
    plugins._clear_cache()
    yield
    plugins._clear_cache()


def test_a_plugin_path_that_is_not_a_folder(monkeypatch, capsys, fresh_registry):
    monkeypatch.setenv("POWERGRID_PLUGIN_PATH", "/nonexistent")
    assert main(["plugins"]) == 2
    assert capsys.readouterr().err == ("powergrid: error: POWERGRID_PLUGIN_PATH: /nonexistent is not a directory "
                                       "(expected folders of plugin .py files, separated by ':')\n")


def test_a_record_naming_a_missing_module_is_reported_not_listed_as_fine():
    record = PluginRecord("Ghost", "no_such_module_xyz:Ghost", "a ghost", kind="device", distribution="pack")
    assert record.problem() == "module 'no_such_module_xyz' is not installed"
    with pytest.raises(PluginLoadError, match=r"device 'Ghost' from pack cannot be loaded: 'no_such_module_xyz:Ghost'"):
        record.load()
    assert PluginRecord("Fine", "powergrid.devices:Device", kind="device").problem() is None


def test_a_duplicate_name_is_kept_as_a_conflict_for_the_listing():
    one = PluginRecord("Heater", object, kind="device", distribution="pack-one")
    two = PluginRecord("Heater", object, kind="device", distribution="pack-two")
    with pytest.raises(DuplicatePluginError, match="registered twice: by pack-one and by pack-two"):
        Registry([one, two])
    lenient = Registry([one, two], strict=False)
    assert lenient.get("device", "Heater") is one and "pack-two" in lenient.conflicts[0]

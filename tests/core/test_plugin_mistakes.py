"""A plugin author's mistakes (a local plugin in a tmp folder): each error names the plugin and what to change."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import powergrid
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import ConfigError

HEADER = """\
import numpy as np
import powergrid
from powergrid.devices import Device, box
"""


def local_plugin(folder: Path, name: str, source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Write ``source`` as ``folder/name.py`` and load it as a local plugin (the variable it sets is restored)."""
    monkeypatch.delenv("POWERGRID_PLUGIN_PATH", raising=False)
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(HEADER + textwrap.dedent(source))
    powergrid.load_plugins(folder)


def one_device(device: str, **agent) -> dict:
    """A scenario of one device agent of type ``device`` on case33bw, two 15-min steps."""
    return {"name": "mistake", "network": {"type": "case33bw"}, "time": {"step_minutes": 15, "steps_per_episode": 2},
            "agents": [{"id": "x", "type": device, "bus": 5, **agent}]}


def test_a_profile_read_but_not_declared_names_profiles_used(tmp_path, monkeypatch):
    # "powergrid: error: KeyError: temperature" (/work/notes/R2s30/mist/c_Undeclared.yaml)
    local_plugin(tmp_path / "p", "undeclared_reader", """
        @powergrid.register_device("UndeclaredReader")
        class UndeclaredReader(Device):
            def step(self, action, ctx):
                self.p_mw = 0.01 * ctx.profile("temperature")
    """, monkeypatch)
    env = MultiAgentPowerGridEnv.from_config(one_device("UndeclaredReader"))
    env.reset(seed=0)
    with pytest.raises(KeyError, match=r"profile 'temperature' is not loaded \(loaded: .*load.*\); a device reading it "
                                       r"names it in its class's profiles_used"):
        env.step({})


def test_a_pack_command_named_like_a_built_in_is_ignored_with_a_warning(tmp_path):
    # a pack command 'validate' replaced the built-in one, and every other command (and --help) failed with
    # "ArgumentError: argument command: conflicting subparser: validate" (/work/notes/R2s30/mist/cmd)
    import argparse
    import os
    import subprocess
    import sys

    from tests.core.scenarios import LOCAL_PLUGINS

    (tmp_path / "cmd").mkdir()
    (tmp_path / "cmd" / "commands.py").write_text(textwrap.dedent("""
        from powergrid import PluginRecord, hookimpl

        def hijack(argv):
            print("hijacked", argv)

        @hookimpl
        def powergrid_register_commands():
            return [PluginRecord("validate", hijack, "my validate"), PluginRecord("hello", hijack, "says hijacked")]
    """))
    (tmp_path / "s.yaml").write_text("network: {type: case33bw}\nagents:\n  - {id: a, type: ConstantPower, bus: 5}\n")
    env = {**os.environ, "POWERGRID_PLUGIN_PATH": f"{tmp_path / 'cmd'}{os.pathsep}{LOCAL_PLUGINS}",
           "POWERGRID_NO_ENTRY_POINTS": "1"}

    def cli(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "powergrid.cli", *argv], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=300)

    warning = "powergrid: warning: command 'validate' of local:"
    validate = cli("validate", "s.yaml")
    assert (validate.returncode, "hijacked" in validate.stdout) == (0, False), validate.stderr
    assert "s.yaml: ok" in validate.stdout and warning in validate.stderr
    assert "is ignored: a built-in command has that name" in validate.stderr
    hello = cli("hello", "x")  # the pack's other command still runs
    assert (hello.returncode, hello.stdout.strip()) == (0, "hijacked ['x']"), hello.stderr
    helped = cli("--help")
    assert helped.returncode == 0 and "hello" in helped.stdout, helped.stderr
    from powergrid.cli import BUILT_IN_COMMANDS, build_parser

    sub = next(a for a in build_parser({})._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == BUILT_IN_COMMANDS  # the names left out are every built-in's


def test_run_plot_without_matplotlib_stops_before_the_episodes(tmp_path, monkeypatch, capsys):
    # 'powergrid run --plot' in an install without matplotlib ran every episode and wrote the CSV, then failed
    # "ImportError: plots need matplotlib" (/work/notes/R2s30/qs, docs/quickstart-energy.md's minimal install)
    import sys

    from powergrid.cli import main
    from tests.core.scenarios import load_local

    load_local()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what Python does for a package that is not there
    (tmp_path / "s.yaml").write_text("name: s\nnetwork: {type: case33bw}\nagents:\n"
                                     "  - {id: a, type: ConstantPower, bus: 5, policy: learned}\n")
    assert main(["run", str(tmp_path / "s.yaml"), "--plot", "--out", str(tmp_path / "out")]) == 2
    assert 'powergrid: error: --plot needs matplotlib: pip install "powergrid-core[plot]"' in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # no episode ran


@pytest.mark.parametrize(("name", "space", "method", "error"), [
    # "ValueError: could not broadcast input array from shape (2,) into shape (1,)" named no device
    # (/work/notes/R2s30/mist/c_BadObs.yaml)
    ("TwoValueObserver", "box(0.0, 1.0)", "observe(self):\n                return np.array([0.5, 0.5], np.float32)",
     r"^agent 'x': TwoValueObserver\.observe\(\) returned shape \(2,\), expected 1 value\(s\) \(its observation_space "
     r"has shape \(1,\)\)$"),
    # numpy's "shapes (18,) and (21,) not aligned" named no device (/work/notes/lead/s31/obs_short.py)
    ("ShortValues", "box([0.0, 0.0], [1.0, 1.0])", "observe_values(self):\n                return [0.5]",
     r"^agent 'x': ShortValues\.observe_values\(\) returned 1 value\(s\), expected 2 \(its observation_space has "
     r"shape \(2,\)\)$"),
], ids=["observe", "observe_values"])
def test_an_observation_of_the_wrong_size_names_the_agent_and_both_sizes(tmp_path, monkeypatch, name, space, method,
                                                                        error):
    local_plugin(tmp_path / "p", name.lower(), f"""
        @powergrid.register_device("{name}")
        class {name}(Device):
            def __init__(self, params, dt_h):
                super().__init__(params, dt_h)
                self.action_space = box(0.0, 1.0)
                self.observation_space = {space}

            def step(self, action, ctx):
                self.p_mw = 0.01

            def {method}
    """, monkeypatch)
    env = MultiAgentPowerGridEnv.from_config(one_device(name, policy="learned"))
    with pytest.raises(ValueError, match=error):
        env.reset(seed=0)


def test_observe_values_short_and_long_by_the_same_count_name_the_first_wrong_device(tmp_path, monkeypatch):
    # one short by 1 and one long by 1 gave the right total: no error, the long one's value slid into the other agent's
    # observation ('a' saw [0.1, 0.2], 'b' [0.3, 0.4]; /work/notes/rc31/compensating.py)
    device = """
        @powergrid.register_device("{name}")
        class {name}(Device):
            def __init__(self, params, dt_h):
                super().__init__(params, dt_h)
                self.action_space = box(0.0, 1.0)
                self.observation_space = box([0.0, 0.0], [1.0, 1.0])

            def step(self, action, ctx):
                self.p_mw = 0.01

            def observe_values(self):
                return {values}
    """
    local_plugin(tmp_path / "p", "compensating", device.format(name="LongValues", values="[0.2, 0.3, 0.4]")
                 + device.format(name="ShortValues1", values="[0.1]"), monkeypatch)
    config = one_device("ShortValues1", policy="learned")
    config["agents"].append({"id": "y", "type": "LongValues", "bus": 6, "policy": "learned"})
    env = MultiAgentPowerGridEnv.from_config(config)
    with pytest.raises(ValueError, match=r"^agent 'x': ShortValues1\.observe_values\(\) returned 1 value\(s\), "
                                         r"expected 2 \(its observation_space has shape \(2,\)\)$"):
        env.reset(seed=0)


def test_kernel_columns_short_and_long_by_the_same_count_are_an_error(tmp_path, monkeypatch):
    # a kernel's first column one value short and its second one long gave the right total: rows slid between devices
    from powergrid.batching import KERNEL_MIN_DEVICES

    local_plugin(tmp_path / "p", "banked", """
        from powergrid.devices import Kernel

        class BankedKernel(Kernel):
            def observe_values(self):
                n = len(self.devices)
                return [np.zeros(n - 1), np.zeros(n + 1)]

        @powergrid.register_device("Banked")
        class Banked(Device):
            Kernel = BankedKernel

            def __init__(self, params, dt_h):
                super().__init__(params, dt_h)
                self.action_space = box(0.0, 1.0)
                self.observation_space = box([0.0, 0.0], [1.0, 1.0])

            def observe_values(self):
                return [0.0, 0.0]
    """, monkeypatch)
    config = one_device("Banked", policy="learned")
    config["agents"] = [{"id": f"x{i}", "type": "Banked", "bus": i + 1, "policy": "learned"}
                        for i in range(KERNEL_MIN_DEVICES)]
    env = MultiAgentPowerGridEnv.from_config(config)
    with pytest.raises(ValueError, match=rf"^BankedKernel\.observe_values\(\) returned a column of "
                                         rf"{KERNEL_MIN_DEVICES - 1} value\(s\), expected {KERNEL_MIN_DEVICES} "
                                         rf"\(one per device\)$"):
        env.reset(seed=0)


@pytest.mark.parametrize(("name", "values", "error"), [
    ("NanPrice", "np.where(np.arange(n_steps) == 3, np.nan, 40.0)",
     r"nan at step 3 of the price profile \(of 8; 1 non-finite value\(s\)\); expected finite values"),
    ("ShortPrice", "np.full(n_steps - 1, 40.0)",
     r"shape \(7,\) for the price profile of an episode of 8 steps; expected 8 values"),
])
def test_a_dataset_episode_with_a_gap_is_an_error_at_reset(tmp_path, monkeypatch, name, values, error):
    # a NaN price at one tick was scored as a blackout of the agents: 'non-finite cost or safety', reward -20764 and
    # the episode's end (/work/notes/R2s30/examples/nan_price.py); a short episode failed later with an IndexError
    local_plugin(tmp_path / "p", name.lower(), f"""
        from powergrid.profiles import ProfileProvider

        @powergrid.register_dataset("{name.lower()}")
        class {name}(ProfileProvider):
            def episode(self, n_steps, step_minutes, rng):
                return {values}
    """, monkeypatch)
    from tests.core.scenarios import load_local

    load_local()
    config = {**one_device("ConstantPower", policy="learned"), "datasets": {"price": name.lower()}}
    config["time"] = {"step_minutes": 15, "steps_per_episode": 8}
    env = MultiAgentPowerGridEnv.from_config(config)
    with pytest.raises(ConfigError, match=rf"^<config> datasets\.price: provider {name} returned " + error):
        env.reset(seed=0)


def test_validate_and_run_report_a_dataset_episode_with_a_nan_at_its_file_and_line(tmp_path):
    # r40 F4: validate said ok (it never checked the episode); run ended with 'ValueError: datasets.price: …',
    # naming no file or line
    pytest.importorskip("powergrid_devices", reason="the PV comes with powergrid-devices")
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "holey_price.py").write_text(HEADER + textwrap.dedent("""
        from powergrid.profiles import ProfileProvider

        @powergrid.register_dataset("holey")
        class Holey(ProfileProvider):
            def episode(self, n_steps, step_minutes, rng):
                return np.where(np.arange(n_steps) == 2, np.nan, 40.0)
    """))
    config = tmp_path / "holey.yaml"
    config.write_text("name: holey\nnetwork: {type: case33bw}\ntime: {step_minutes: 15, steps_per_episode: 4}\n"
                      "agents:\n  - {id: x, type: PV, bus: 5}\ndatasets:\n  price: {provider: holey}\n")
    env = {**os.environ, "POWERGRID_PLUGIN_PATH": str(folder)}
    expected = (f"powergrid: error: {config}:7 datasets.price: provider Holey returned nan at step 2 of the price "
                f"profile (of 4; 1 non-finite value(s)); expected finite values: fix or fill the data")
    for command in (["validate", str(config)], ["run", str(config), "--out", str(tmp_path / "out")]):
        done = subprocess.run([sys.executable, "-m", "powergrid.cli", *command], env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 2 and done.stderr.splitlines() == [expected], (command, done.stderr)


def test_a_policy_action_of_the_wrong_size_names_the_policy_and_its_agent(tmp_path, monkeypatch):
    # 'evening_peak' returning 1 value for a setpoint grid agent of 2 ended with the PV's "expected an action of 1
    # values (f), got 0" (/work/notes/R2s30/examples/pol_shape.yaml); on a one-value device its 2 values were cut to 1
    local_plugin(tmp_path / "p", "two_value_policy", """
        from powergrid.policies import Policy

        @powergrid.register_policy("two_values")
        class TwoValues(Policy):
            def act(self, ctx):
                return np.array([1.5, 0.0])
    """, monkeypatch)
    from tests.core.scenarios import load_local

    load_local()
    env = MultiAgentPowerGridEnv.from_config(one_device("ConstantPower", policy="two_values"))
    for seed in (0, 1):  # checked in every episode
        env.reset(seed=seed)
        with pytest.raises(powergrid.errors.ActionError, match=r"^policy 'two_values' of agent 'x' returned an action "
                                                                r"of shape \(2,\), expected shape \(1,\) \(its own action space Box"):
            env.step({})


def _agents_of(path: str) -> list[str]:
    """Build the scenario at ``path`` (in a worker process) and return its agents."""
    return MultiAgentPowerGridEnv.from_config(path).possible_agents


def test_a_worker_started_before_load_plugins_names_the_plugin_the_yaml_line_and_the_variable(tmp_path, monkeypatch):
    # Ray workers started by ray.init() before powergrid.load_plugins() failed with "unknown device type 'R31Local'
    # (installed: CHP, DG, ...)" and nothing on why the parent's plugin was missing (/work/notes/r31/ray_plugins.py after)
    import multiprocessing

    monkeypatch.delenv("POWERGRID_PLUGIN_PATH", raising=False)
    scenario = tmp_path / "site.yaml"
    scenario.write_text("name: site\nnetwork: {type: case33bw}\ntime: {step_minutes: 15, steps_per_episode: 2}\n"
                        "agents:\n  - {id: x, type: LateDevice, bus: 5}\n")
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(1) as early:
        early.apply(_agents_of.__name__.__len__)  # started: its environment is fixed from here on
        local_plugin(tmp_path / "p", "late_device", """
            @powergrid.register_device("LateDevice")
            class LateDevice(Device):
                def step(self, action, ctx):
                    self.p_mw = 0.01
            """, monkeypatch)
        with pytest.raises(powergrid.errors.ConfigError) as err:
            early.apply(_agents_of, (str(scenario),))
    message = str(err.value)
    assert f"{scenario}:5 agents[0].type: unknown device type 'LateDevice'" in message
    assert "POWERGRID_PLUGIN_PATH (unset here)" in message and "before ray.init()" in message
    with spawn.Pool(1) as late:  # started after load_plugins: the folder is in its variable
        assert late.apply(_agents_of, (str(scenario),)) == []

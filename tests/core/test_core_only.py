"""powergrid-core installed alone (the nox ``core`` session): no pack needed, third-party packs discovered.

Skipped where a first-party pack is installed, since then the registry is not core-only.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from powergrid import get_registry
from powergrid.cli import main
from powergrid.env import MultiAgentPowerGridEnv
from tests.installs import installed

from .scenarios import LOCAL_PLUGINS, load_local, two_feeders

PACKS = ("powergrid_devices", "powergrid_protocols", "powergrid_datasets", "powergrid_hil")
pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(p) for p in PACKS), reason="a first-party pack is installed: not a core-only environment"
)
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_core_alone_lists_zero_device_types():
    packaged = [r.name for r in get_registry().records("device") if not r.distribution.startswith("local")]
    assert packaged == []
    out = subprocess.run([sys.executable, "-m", "powergrid.cli", "plugins"], capture_output=True, text=True, check=True).stdout
    assert "devices (0):" in out
    assert "case33bw" in out and "powergrid-core 0.1.0" in out


def test_validate_reports_the_pack_to_install(capsys):
    config = CONFIGS / "cigre_mv_microgrid.yaml"
    assert main(["validate", str(config)]) == 2
    err = capsys.readouterr().err
    assert "cigre_mv_microgrid.yaml:" in err and "unknown device type 'ESS'" in err
    assert "pip install powergrid-devices" in err


def test_env_runs_with_a_load_plugins_device():
    load_local()
    env = MultiAgentPowerGridEnv.from_config(two_feeders())
    env.reset(seed=0)
    steps = 0
    while env.agents:
        env.step({a: env.action_space(a).sample() for a in env.agents})
        steps += 1
    assert steps == 8 and env.last_result.converged


def test_run_command_with_local_plugin_dir(tmp_path, capsys):
    """A third party with no packaging: a plugin folder on POWERGRID_PLUGIN_PATH, named in YAML."""
    config = tmp_path / "local.yaml"
    config.write_text(textwrap.dedent("""
        network: case33bw
        time: {steps_per_episode: 4}
        agents:
          - {id: heater, type: ConstantPower, bus: 3, policy: learned, params: {p_mw: -0.2}}
    """))
    env = dict(os.environ, POWERGRID_PLUGIN_PATH=str(LOCAL_PLUGINS))
    out = subprocess.run([sys.executable, "-m", "powergrid.cli", "run", str(config), "--out", str(tmp_path)],
                         capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    assert "heater" in out.stdout and "4 steps" in out.stdout


@pytest.fixture
def third_party_package(tmp_path):
    """A third-party plugin package in a temp folder, pip-installed for the test's subprocesses."""
    root = tmp_path / "powergrid-thermal"
    pkg = root / "src" / "powergrid_thermal"
    pkg.mkdir(parents=True)
    (root / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "powergrid-thermal"
        version = "0.3.1"
        dependencies = ["powergrid-core"]
        [project.entry-points.powergrid]
        thermal = "powergrid_thermal.plugin"
    """))
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text(textwrap.dedent("""
        from powergrid import PluginRecord, hookimpl

        @hookimpl
        def powergrid_register_devices():
            return [PluginRecord("Boiler", "powergrid_thermal.boiler:Boiler", "electric boiler")]
    """))
    (pkg / "boiler.py").write_text((LOCAL_PLUGINS / "constant_power.py").read_text()
                                   .replace('@register_device("ConstantPower")\n', "")
                                   .replace("class ConstantPower(", "class Boiler("))
    with installed(root):
        yield


def test_third_party_package_is_discovered_and_used_from_yaml(third_party_package, tmp_path):
    config = tmp_path / "thermal.yaml"
    config.write_text(textwrap.dedent("""
        network: {type: cigre_lv}
        time: {steps_per_episode: 3}
        spaces: {action: physical}
        agents:
          - {id: boiler, type: Boiler, bus: Bus R11, policy: learned, params: {p_mw: -0.01}}
    """))
    script = textwrap.dedent(f"""
        from powergrid import get_registry
        from powergrid.env import MultiAgentPowerGridEnv
        record = get_registry().get("device", "Boiler")
        print(record.provider)
        env = MultiAgentPowerGridEnv.from_config({str(config)!r})
        env.reset(seed=1)
        _, _, _, _, infos = env.step({{"boiler": [1.5]}})
        print(round(env.scenario.agents["boiler"].device.p_mw, 6), infos["boiler"]["converged"])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["powergrid-thermal 0.3.1", "-0.015 True"]

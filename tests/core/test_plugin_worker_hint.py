"""A worker process that lacks a plugin package its parent found on its own ``sys.path``: the error says where a
package's plugins come from (r46b F5: a Ray worker does not see a folder the driver added to ``sys.path``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

# a fresh interpreter (as a Ray worker is, with its own sys.path): build the scenario, print the error if any
BUILD = """
import json, sys
from powergrid.env import MultiAgentPowerGridEnv
scenario = {"name": "hint", "network": {"type": "case33bw"}, "time": {"step_minutes": 15, "steps_per_episode": 2},
            "agents": [{"id": "x", "type": "HintBoiler", "bus": 5}]}
try:
    MultiAgentPowerGridEnv.from_config(scenario)
    print(json.dumps(None))
except Exception as err:
    print(json.dumps(f"{type(err).__name__}: {err}"))
"""


def _build(env: dict[str, str]) -> str | None:
    done = subprocess.run([sys.executable, "-c", BUILD], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_worker_without_the_parents_plugin_package_is_told_to_install_it_or_use_pythonpath(tmp_path):
    package = tmp_path / "pg_hint_boiler"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent("""
        from powergrid import PluginRecord, hookimpl
        from powergrid.devices import Device

        class HintBoiler(Device):
            def step(self, action, ctx):
                self.p_mw = -0.01

        @hookimpl
        def powergrid_register_devices():
            return [PluginRecord("HintBoiler", f"{__name__}:HintBoiler", "a boiler")]
        """))
    info = tmp_path / "pg_hint_boiler-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pg-hint-boiler\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[powergrid]\nhint_boiler = pg_hint_boiler\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "POWERGRID_PLUGIN_PATH", "POWERGRID_DISABLE_PLUGINS", "POWERGRID_NO_ENTRY_POINTS")}
    assert _build({**env, "PYTHONPATH": str(tmp_path)}) is None  # the package works where it is on the path
    message = _build(env)  # a worker whose sys.path lacks the folder
    assert message is not None and "unknown device type 'HintBoiler'" in message
    assert message.endswith("a plugin package is found through its entry points on this process's own sys.path: "
                            "install it in this Python or put its folder on PYTHONPATH (a Ray worker does not see a "
                            "folder the driver added to sys.path)")

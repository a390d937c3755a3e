"""Mistakes in making or moving an environment: one error that says what to do."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from powergrid.env import MultiAgentPowerGridEnv

pytest.importorskip("powergrid_devices", reason="the PV comes with powergrid-devices")

SCENARIO = {"name": "one_pv", "network": {"type": "case33bw"}, "time": {"step_minutes": 60, "steps_per_episode": 2},
            "agents": [{"id": "pv", "type": "PV", "bus": 5, "policy": "learned"}]}


def test_a_mapping_given_to_the_constructor_points_to_from_config():
    # r40 F9: AttributeError: 'dict' object has no attribute 'network' (from inside the builder)
    with pytest.raises(TypeError, match=r"^MultiAgentPowerGridEnv\(config\): expected an EnvConfig, got dict; build "
                                        r"from a YAML path or a mapping with MultiAgentPowerGridEnv\.from_config"):
        MultiAgentPowerGridEnv(SCENARIO)



PICKLER = """
    import pickle, sys
    import powergrid
    from powergrid.env import MultiAgentPowerGridEnv

    powergrid.load_plugins(sys.argv[1])
    env = MultiAgentPowerGridEnv.from_config({"name": "local", "network": {"type": "case33bw"},
                                              "time": {"step_minutes": 60, "steps_per_episode": 2},
                                              "agents": [{"id": "w", "type": "Wheel", "bus": 5, "policy": "learned"}]})
    env.reset(seed=0)
    open(sys.argv[2], "wb").write(pickle.dumps(env))
"""

WHEEL = """
    import powergrid
    from powergrid.devices import Device, box

    @powergrid.register_device("Wheel")
    class Wheel(Device):
        \"\"\"0.01 MW out; the action is unused.\"\"\"
        def __init__(self, params, dt_h):
            super().__init__(params, dt_h)
            self.action_space = box(0.0, 1.0)

        def step(self, action, ctx):
            self.p_mw = 0.01
"""


def test_unpickling_without_the_local_plugin_names_its_module_folder_and_the_variable(tmp_path):
    # r40 F6: a bare "ModuleNotFoundError: No module named 'powergrid_local_wheel'"; r43 F3: a process without the variable
    # loads the folder the pickle names itself, so the error is left for a folder moved or deleted since
    folder = tmp_path / "my_devices"
    folder.mkdir()
    (folder / "wheel.py").write_text(textwrap.dedent(WHEEL))
    blob = tmp_path / "env.pkl"
    clean = {k: v for k, v in os.environ.items() if k not in ("POWERGRID_PLUGIN_PATH", "_POWERGRID_PLUGIN_PATH_ADDED")}
    subprocess.run([sys.executable, "-c", textwrap.dedent(PICKLER), str(folder), str(blob)], env=clean, check=True,
                   timeout=300)
    load = f"import pickle; pickle.loads(open({str(blob)!r}, 'rb').read())"
    done = subprocess.run([sys.executable, "-c", load], env=clean, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr  # the folder is where the pickle says
    moved = folder.rename(tmp_path / "moved")
    done = subprocess.run([sys.executable, "-c", load], env=clean, capture_output=True, text=True, timeout=300)
    last = done.stderr.strip().splitlines()[-1]
    assert last == (f"powergrid.errors.PluginLoadError: cannot unpickle: the local plugin module powergrid_local_wheel "
                    f"({folder / 'wheel.py'}, which no longer exists) is not loaded in this process; set "
                    f"POWERGRID_PLUGIN_PATH to the folder of its .py file before it starts, or call powergrid.load_plugins "
                    f"on it before unpickling"), done.stderr
    done = subprocess.run([sys.executable, "-c", load], env={**clean, "POWERGRID_PLUGIN_PATH": str(moved)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


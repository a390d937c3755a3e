"""A plugin author's mistakes (a local plugin in a tmp folder): each error names the plugin and what to change."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import powergrid
from powergrid.env import MultiAgentPowerGridEnv

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

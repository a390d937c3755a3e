"""A local plugin named like an installed one: ``powergrid plugins`` says so in one error, first, naming both
plugins and the files that define them (hold-out review r40 item 11: it printed the whole listing, then an error
naming the module ``local:powergrid_local_hp``, not the file). Run in a subprocess: the clash would stay in this
process's registry."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import pytest

from powergrid.plugins import get_registry

pytest.importorskip("powergrid_devices", reason="the shipped HeatPump comes with powergrid-devices")

CLASH = '''import powergrid
from powergrid.devices import Device


@powergrid.register_device("HeatPump")
class MyHeatPump(Device):
    """my own heat pump, named like the shipped one"""
'''


def test_a_name_clash_is_one_error_naming_both_files(tmp_path):
    shipped = inspect.getsourcefile(get_registry().load("device", "HeatPump"))
    (tmp_path / "hp.py").write_text(CLASH)
    env = dict(os.environ, POWERGRID_PLUGIN_PATH=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "powergrid.cli", "plugins"], env=env, capture_output=True, text=True,
                          cwd=tmp_path, check=False)
    assert done.returncode == 2
    assert done.stdout == ""  # no listing before the error
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("powergrid: error: device 'HeatPump' is registered twice: by "
                                                   "powergrid-devices "), done.stderr
    assert f"powergrid_local_hp:MyHeatPump in {tmp_path / 'hp.py'}" in lines[0]
    assert f"in {shipped}" in lines[0]

"""lightsim2grid is a dependency where it has wheels; the CLI names the backend in use."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from powergrid.solvers.newton import backend_summary, lightsim2grid_available

WHEEL_PLATFORM = (sys.platform, platform.machine()) in {("linux", "x86_64"), ("darwin", "arm64"), ("win32", "AMD64")}


@pytest.mark.skipif(not WHEEL_PLATFORM or sys.version_info >= (3, 14), reason="lightsim2grid has no wheel here")
def test_a_plain_core_install_has_the_lightsim2grid_backend():
    assert lightsim2grid_available()
    assert backend_summary().startswith("lightsim2grid 1.2")


def test_version_and_plugins_name_the_backend():
    out = subprocess.run([sys.executable, "-m", "powergrid.cli", "--version"], capture_output=True, text=True)
    text = out.stdout + out.stderr
    assert out.returncode == 0 and "powergrid " in text and f"fast solver backend: {backend_summary()}" in text
    out = subprocess.run([sys.executable, "-m", "powergrid.cli", "plugins"], capture_output=True, text=True)
    assert out.stdout.splitlines()[0] == f"fast solver backend: {backend_summary()}"

"""Fixtures of the documentation tests: the example plugin packages, installed once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import EXAMPLES, ROOT

#: The example packages of the guides: folder under docs/examples/ → import package.
PACKAGES = {"protocol": "powergrid_share", "network": "powergrid_feeder", "dataset": "powergrid_csvdata",
            "policy": "powergrid_peakshave", "command": "powergrid_tree"}


@pytest.fixture(scope="session")
def examples_path(tmp_path_factory) -> Path:
    """A folder with every example package pip-installed into it (``pip install --target``, no deps:
    they need only what the environment has); put it on PYTHONPATH to use them."""
    target = tmp_path_factory.mktemp("examples")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "--target", str(target),
                    *(str(EXAMPLES / name) for name in PACKAGES)], check=True)
    return target


def run_env(examples_path: Path) -> dict[str, str]:
    """The environment of a subprocess that sees the installed examples (offline, strict plugins)."""
    env = dict(os.environ, POWERGRID_OFFLINE="1", POWERGRID_STRICT_PLUGINS="1", MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join([str(examples_path), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("POWERGRID_PLUGIN_PATH", None)
    return env

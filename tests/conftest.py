"""Shared fixtures: repository paths; the plugin path restored after every test."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SHARED = REPO.parent / "shared"

if "MPLCONFIGDIR" not in os.environ:  # matplotlib keeps its font cache in HOME otherwise: the tests leave HOME as found
    os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="powergrid-tests-mpl-")
    atexit.register(shutil.rmtree, os.environ["MPLCONFIGDIR"], True)


@pytest.fixture
def configs_dir() -> Path:
    return CONFIGS


def _restoring_plugin_path() -> Iterator[None]:
    """``powergrid.load_plugins`` puts its folder in POWERGRID_PLUGIN_PATH (for worker processes): no test or test
    module hands its folders to the next one's subprocesses."""
    names = ("POWERGRID_PLUGIN_PATH", "_POWERGRID_PLUGIN_PATH_ADDED")
    saved = {name: os.environ.get(name) for name in names}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


plugin_path_restored_per_module = pytest.fixture(scope="module", autouse=True, name="plugin_path_restored_per_module")(
    _restoring_plugin_path)
plugin_path_restored_per_test = pytest.fixture(autouse=True, name="plugin_path_restored_per_test")(_restoring_plugin_path)

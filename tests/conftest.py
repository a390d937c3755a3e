"""Shared fixtures: repository paths; the plugin path and the local plugins restored after every test."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
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


def _restoring_plugins() -> Iterator[None]:
    """``powergrid.load_plugins`` puts its folder in POWERGRID_PLUGIN_PATH (for worker processes), and it and the
    ``register_*`` decorators add local plugins to this process: no test or test module hands its folders to the next
    one's subprocesses, nor its local plugins to the next one (``get_registry`` lists them; test_contract checks every
    plugin listed). Plugins registered while test modules are imported (collection) stay."""
    from powergrid import plugins

    names = ("POWERGRID_PLUGIN_PATH", "_POWERGRID_PLUGIN_PATH_ADDED")
    saved = {name: os.environ.get(name) for name in names}
    records, modules = list(plugins._LOCAL.records), list(plugins._LOCAL_MODULES)
    files, added = dict(plugins._LOCAL_FILES), set(plugins._ADDED_FOLDERS)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if (records, modules, files) != (plugins._LOCAL.records, plugins._LOCAL_MODULES, plugins._LOCAL_FILES):
        for module_name in plugins._LOCAL_FILES.keys() - files.keys():  # imported again by the next load_plugins
            sys.modules.pop(module_name, None)
        plugins._LOCAL.records, plugins._LOCAL_MODULES[:] = records, modules
        plugins._LOCAL_FILES.clear()
        plugins._LOCAL_FILES.update(files)
        plugins._clear_cache()
    plugins._ADDED_FOLDERS.intersection_update(added)


plugins_restored_per_module = pytest.fixture(scope="module", autouse=True, name="plugins_restored_per_module")(
    _restoring_plugins)
plugins_restored_per_test = pytest.fixture(autouse=True, name="plugins_restored_per_test")(_restoring_plugins)

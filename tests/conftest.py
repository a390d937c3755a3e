"""Shared fixtures: repository paths; the plugin path restored after every test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SHARED = REPO.parent / "shared"


@pytest.fixture
def configs_dir() -> Path:
    return CONFIGS


@pytest.fixture(autouse=True)
def _plugin_path_restored() -> Iterator[None]:
    """``powergrid.load_plugins`` puts its folder in POWERGRID_PLUGIN_PATH (for worker processes): no test hands its
    folders to the next one's subprocesses."""
    names = ("POWERGRID_PLUGIN_PATH", "_POWERGRID_PLUGIN_PATH_ADDED")
    saved = {name: os.environ.get(name) for name in names}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

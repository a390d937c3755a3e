"""Fixtures of the dataset-pack tests: the shared CAISO files, an isolated cache, no accidental downloads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CAISO_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "caiso"


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    """Every test: its own cache folder, downloads off unless the test turns them on, no data dir from the shell."""
    monkeypatch.setenv("POWERGRID_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("POWERGRID_OFFLINE", "1")
    monkeypatch.delenv("POWERGRID_DATA_DIR", raising=False)
    monkeypatch.delenv("POWERGRID_CAISO_URL", raising=False)


@pytest.fixture(scope="session")
def caiso_dir() -> Path:
    """The real 2023 OASIS files. Without them the tests that read them skip, except under CI (``CI`` set, as CI
    services do): there a checkout laid out without ../shared fails instead of passing without its raw-file checks."""
    if not (CAISO_DIR / "load").is_dir():
        message = f"the shared CAISO files are not at {CAISO_DIR} (../shared/data/caiso beside the repository)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI={os.environ['CI']!r} is set, so the real-file tests may not skip", pytrace=False)
        pytest.skip(message)
    return CAISO_DIR

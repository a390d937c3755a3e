"""Ray for the RLlib test modules; every test that starts Ray on one pytest-xdist worker."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

# Ray >= 2.5x starts a local cluster with token authentication and saves a new token as ~/.ray/auth_token unless the
# environment gives one: every Ray the tests start (the fixture below, RLlib's own, the bench trainer's) takes this one
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ray: starts Ray; nox runs these after the others, in one process")


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by ``-m``
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use ``ray_session`` are marked ``ray`` (tests that start Ray another way carry the mark themselves):
    ``nox -s rl`` runs them in one process after the others (``-m ray``), so that one Ray cluster runs at a time and
    ~/ray_results, which the tests check is left as found, is not shared with a test running beside them. (pytest-xdist's
    ``xdist_group`` did this until pytest 9.2, which ignores the group pytest-xdist 3.8 appends to a test's id.)"""
    for item in items:
        if "ray_session" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray)


@pytest.fixture(autouse=True)
def sb3_log_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stable-Baselines3's default logger makes a folder tempdir/SB3-<time> on every ``learn``: the tests' own here."""
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path / "sb3"))


@pytest.fixture(scope="module")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Ray started for one test module, its session folder (logs, sockets) in the tests' temporary folder instead of
    /tmp/ray; the empty log folders RLlib's Trainable makes in ~/ray_results on every build are removed after it
    (nothing is left outside the tests' own folders; the token above keeps ~/.ray out too)."""
    ray = pytest.importorskip("ray")
    home = Path("~/ray_results").expanduser()
    before = set(home.iterdir()) if home.exists() else None
    os.environ.setdefault("POWERGRID_OFFLINE", "1")  # inherited by the Ray workers
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False, ignore_reinit_error=True,
             _temp_dir=str(tmp_path_factory.mktemp("ray")))
    yield
    ray.shutdown()
    if home.exists():
        for folder in set(home.iterdir()) - (before or set()):
            with contextlib.suppress(OSError):  # not empty: not ours to remove
                folder.rmdir()
        if before is None:
            with contextlib.suppress(OSError):
                home.rmdir()

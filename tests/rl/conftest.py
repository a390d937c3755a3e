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


RAY = pytest.mark.xdist_group("ray")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups (``--dist loadgroup``)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use ``ray_session`` join the group ``ray`` (tests that start Ray another way carry the mark
    themselves): one Ray cluster at a time, and ~/ray_results, which the tests check is left as found, is not
    shared with a test running beside them."""
    for item in items:
        if "ray_session" in getattr(item, "fixturenames", ()):
            item.add_marker(RAY)


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

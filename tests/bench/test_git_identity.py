"""``bench.leaderboard.checkout()`` reads the user's git checkout without writing to it (no index refresh, no
index.lock that a concurrent ``git commit`` of the user could fail on)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from powergrid.bench.leaderboard import checkout

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def test_checkout_leaves_a_stale_git_index_as_it_was(tmp_path):
    """Was: ``git status`` refreshed the stale index and rewrote .git/index (its bytes changed)."""
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "-C", str(tmp_path), *args],
                       check=True, capture_output=True)

    git("init", "-q")
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("x = 1\n")
    git("add", "pkg")
    git("commit", "-qm", "x")
    index = tmp_path / ".git" / "index"
    stamp = index.stat().st_mtime_ns - 5_000_000_000
    os.utime(package / "__init__.py", ns=(stamp, stamp))  # same content, other mtime: the index's stat data is stale
    before = index.read_bytes(), index.stat().st_mtime_ns
    found = checkout(package)
    assert found["dirty"] is False and len(found["commit"]) == 40
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before
    assert not (tmp_path / ".git" / "index.lock").exists()

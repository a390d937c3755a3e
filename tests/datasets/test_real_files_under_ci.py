"""The real-file tests without ../shared/data/caiso: they skip in a bare clone, and fail under CI (``CI`` set), where
a checkout laid out differently used to go green without its raw-file checks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

USES_THE_FILES = "def test_uses_the_files(caiso_dir):\n    assert (caiso_dir / 'load').is_dir()\n"


@pytest.mark.parametrize(("ci", "outcome"), [(None, "1 skipped"), ("true", "1 error")])
def test_missing_shared_files_skip_only_outside_ci(tmp_path, ci, outcome):
    tests = tmp_path / "repo" / "tests" / "datasets"  # ../shared beside this copy does not exist
    tests.mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("conftest.py"), tests / "conftest.py")
    (tests / "test_x.py").write_text(USES_THE_FILES)
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": ci} if ci else {})
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert outcome in out.stdout.splitlines()[-1], out.stdout
    assert (out.returncode == 0) is (ci is None)
    if ci:
        assert "CI='true' is set, so the real-file tests may not skip" in out.stdout

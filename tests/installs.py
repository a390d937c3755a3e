"""A plugin package pip-installed for the length of a block, for the subprocesses a test starts."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def installed(package: Path) -> Iterator[None]:
    """``package`` pip-installed non-editable (copied, as nox installs) into a folder beside it, which leads
    ``PYTHONPATH`` in the block: the subprocesses started there discover its entry points. The session's own venv is
    left alone, so tests running beside this one (pytest-xdist workers) never see the package come and go."""
    target = package.parent / f"{package.name}-site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check",
                    "--target", str(target), str(package)], check=True, capture_output=True)
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(target), saved)))
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved

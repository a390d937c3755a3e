"""The download cache's files get the permissions a plain ``open()`` gives (0666 less the umask), so that a cache
folder shared by a group works for every member (r42b F7: mkstemp's 0600 made each user download again)."""

from __future__ import annotations

import os
import stat

import pytest

from powergrid_datasets import cache
from tests.datasets._zip_server import ZipServer, serve

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")


@pytest.fixture
def zip_server(monkeypatch):
    yield from serve(ZipServer(), monkeypatch)


@pytest.mark.parametrize(("umask", "mode"), [(0o002, 0o664), (0o022, 0o644), (0o077, 0o600)])
def test_a_download_and_the_manifest_get_the_mode_open_would_give(zip_server, umask, mode):
    before = os.umask(umask)
    try:
        path = cache.fetch(zip_server.url("a"), "a.zip", subdir="caiso")
    finally:
        os.umask(before)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert stat.S_IMODE((path.parent / cache.MANIFEST).stat().st_mode) == mode

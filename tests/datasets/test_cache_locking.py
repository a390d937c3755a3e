"""The download cache when several processes want one file, after a killed download, and with POWERGRID_OFFLINE
set to a value it does not know, and with an over-long identifier in its file names."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time

import pytest

from powergrid_datasets import cache, caiso
from powergrid_datasets.errors import DatasetError
from tests.datasets._zip_server import ZipServer, serve


class CountingServer(ZipServer):
    """The first request is answered only once ``release`` is set (or a second request arrives: then two processes
    are downloading the same file)."""

    def __init__(self):
        super().__init__()
        self.first = threading.Event()
        self.second = threading.Event()

    def hold(self, path):
        if self.hits == 1:
            self.first.set()
            self.release.wait(30)
        else:
            self.second.set()


@pytest.fixture
def server(monkeypatch):
    yield from serve(CountingServer(), monkeypatch)


FETCHER = """
import sys
from powergrid_datasets import cache, caiso
print("fetching", flush=True)
print(cache.fetch(sys.argv[1], "jan.zip", subdir="caiso"))
"""


def test_two_processes_wanting_one_missing_file_download_it_once(server, tmp_path):
    """Two processes reset at once with an empty cache (vectorised training): the second waits for the first's
    download and uses it (each downloaded every file: 48 requests for 24 files)."""
    folder = cache.cache_dir("caiso")
    first = subprocess.Popen([sys.executable, "-c", FETCHER, server.url("jan")], stdout=subprocess.PIPE, text=True)
    assert server.first.wait(60)  # the first process is downloading, holding jan.zip's lock
    second = subprocess.Popen([sys.executable, "-c", FETCHER, server.url("jan")], stdout=subprocess.PIPE, text=True)
    assert second.stdout.readline() == "fetching\n"
    server.second.wait(3)  # a second request would come now (before the fix it did); none is expected
    server.release.set()
    outputs = [p.communicate(timeout=60)[0].splitlines()[-1] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0]
    assert outputs == [str(folder / "jan.zip")] * 2
    assert server.hits == 1


def test_a_killed_download_s_temporary_file_is_removed_by_the_next_download_of_that_file(server):
    """A download killed by SIGTERM/SIGKILL leaves ``.jan.zip.<8 chars>.part``; the next download of jan.zip
    removes it, and nothing else: another file's, another naming scheme's, a visible one."""
    server.release.set()
    folder = cache.cache_dir("caiso")
    stale = folder / ".jan.zip.k2_9xq0a.part"
    others = [folder / n for n in (".feb.zip.k2_9xq0a.part", ".jan.zip.toolong123.part", "jan.zip.k2_9xq0a.part",
                                   ".jan.zip.k2_9xq0a.partial", ".x.jan.zip.k2_9xq0a.part")]
    for path in (stale, *others):
        path.write_bytes(b"PK partial")
    old = time.time() - 2 * cache.STALE_PART_S
    os.utime(stale, (old, old))
    assert cache.fetch(server.url("jan"), "jan.zip", subdir="caiso").is_file()
    assert not stale.exists()
    assert all(path.read_bytes() == b"PK partial" for path in others)
    assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".part")) == sorted(
        p.name for p in others if p.name.endswith(".part"))


@pytest.mark.parametrize("value", ["y", "2", "enabled", "offline", "nein"])
def test_an_unknown_offline_value_names_the_variable(monkeypatch, value):
    """POWERGRID_OFFLINE=y (or 2, enabled…) was read as "online" without a word."""
    monkeypatch.setenv("POWERGRID_OFFLINE", value)
    with pytest.raises(DatasetError, match=rf"POWERGRID_OFFLINE: expected 1/true/yes/on or 0/false/no/off \(or unset\), got '{value}'"):
        cache.fetch("http://127.0.0.1:9/never", "jan.zip", subdir="caiso")
    assert not cache.cache_path("caiso").exists()


@pytest.mark.parametrize(("value", "expected"), [("1", True), (" TRUE ", True), ("On", True), ("", False), ("0", False),
                                                 ("Off", False), ("no", False)])
def test_the_documented_offline_values(monkeypatch, value, expected):
    monkeypatch.setenv("POWERGRID_OFFLINE", value)
    assert cache.offline() is expected


def test_an_over_long_identifier_gives_a_short_cache_name_kept_apart_by_its_query(server):
    """A 300-character area from the YAML with download: true: the cache names are cut (the download was a raw
    'OSError: File name too long'); two areas alike in their first 300 characters still get their own files, by the
    SHA-256 of the query in the name."""
    server.release.set()
    names = []
    for area in ("A" * 300 + "1", "A" * 300 + "2"):
        paths = caiso.download_year(caiso.report_of("load"), 2023, url=server.url("oasisapi/SingleZip"), tac_area_name=area)
        assert all(p.name.startswith(f"{p.name[:17]}_SLD_FCST_ACTUAL_{'A' * 40}_") and len(p.name) < 120 for p in paths)
        names += [p.name for p in paths]
    assert len(set(names)) == 24 and server.hits == 24


def test_a_temporary_download_written_to_recently_is_kept(server):
    """In a folder shared by several hosts whose locks are local only (NFS ``local_lock``, CIFS), another host may be
    writing ``.jan.zip.<8 chars>.part`` while this one holds "the" lock: it was deleted under that download."""
    server.release.set()
    folder = cache.cache_dir("caiso")
    live, dead = folder / ".jan.zip.live0000.part", folder / ".jan.zip.dead0000.part"
    for path in (live, dead):
        path.write_bytes(b"PK partial")
    old = time.time() - 2 * cache.STALE_PART_S
    os.utime(dead, (old, old))
    assert cache.fetch(server.url("jan"), "jan.zip", subdir="caiso").is_file()
    assert live.read_bytes() == b"PK partial"
    assert not dead.exists()


def test_a_file_system_without_locks_is_used_unlocked_after_one_warning_naming_the_folder(server, monkeypatch):
    """``flock`` failing with ENOLCK (NFS without its lock daemon; Lustre without ``-o flock`` gives ENOSYS) was a raw
    'OSError: [Errno 37] No locks available' from every fetch, naming nothing."""
    fcntl = pytest.importorskip("fcntl")
    server.release.set()

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    folder = cache.cache_path("caiso")
    with pytest.warns(RuntimeWarning, match=rf"cache folder {folder} is on a file system without locks \(flock: No locks "
                                            rf"available\).*set POWERGRID_CACHE_DIR to a local folder"):
        paths = [cache.fetch(server.url("jan"), "jan.zip", subdir="caiso") for _ in range(2)]
    assert paths == [folder / "jan.zip"] * 2
    assert server.hits == 1  # the second fetch used the file the first one recorded


def test_an_error_in_the_check_of_a_download_that_is_not_about_the_file_is_raised_at_once(server):
    """A validator that fails with a programming error (here a KeyError) was retried as if the download were bad:
    three requests, then 'download … failed 3 times'."""
    server.release.set()

    def broken(path):
        raise KeyError("no such column")

    with pytest.raises(KeyError, match="no such column"):
        cache.fetch(server.url("jan"), "jan.zip", subdir="caiso", validate=broken)
    assert server.hits == 1
    assert not any(cache.cache_path("caiso").glob("*.part")) and not (cache.cache_path("caiso") / "jan.zip").exists()


def test_offline_a_verified_cached_file_is_used_without_creating_a_lock(monkeypatch):
    """r46a F8: offline, a filled cache without lock files (e.g. copied) got checksums.json.lock created by the
    check of a cached file ('offline nothing is created, not even a lock'). Online the lock is still created."""
    import zipfile

    folder = cache.cache_dir("caiso")
    target = folder / "jan.zip"
    with zipfile.ZipFile(target, "w") as zf:
        zf.writestr("a.csv", "a,b\n1,2\n")
    url = "https://example.invalid/jan"
    cache._record(folder, "jan.zip", {"sha256": cache.sha256(target), "size": target.stat().st_size, "url": url})
    (folder / (cache.MANIFEST + ".lock")).unlink()
    before = sorted(p.name for p in folder.iterdir())
    monkeypatch.setenv("POWERGRID_OFFLINE", "1")
    assert cache.fetch(url, "jan.zip", subdir="caiso") == target
    assert sorted(p.name for p in folder.iterdir()) == before == ["checksums.json", "jan.zip"]
    monkeypatch.setenv("POWERGRID_OFFLINE", "0")
    assert cache.fetch(url, "jan.zip", subdir="caiso") == target  # verified: no request
    assert (folder / (cache.MANIFEST + ".lock")).is_file()

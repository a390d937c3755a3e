"""The OASIS download path against a local HTTP server serving the shared zips (127.0.0.1 only)."""

from __future__ import annotations

import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pytest

from powergrid.params import build_params
from powergrid_datasets import cache, caiso
from powergrid_datasets.errors import DataFileError, DataUnavailableError, DownloadError
from powergrid_datasets.providers import CaisoProvider
from tests.datasets._zip_server import ZipServer, serve

FOLDERS = {"SLD_FCST": "load", "PRC_LMP": "price", "SLD_REN_FCST": "solar_wind"}


class FakeOasis(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, caiso_dir):
        super().__init__(("127.0.0.1", 0), Handler)
        self.caiso_dir = caiso_dir
        self.hits: Counter = Counter()
        self.truncate: dict[str, tuple[str, int]] = {}  # month -> (mode, how many more times)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/oasisapi/SingleZip"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
        start = pd.Timestamp(query["startdatetime"].replace("-0000", "+00:00"))
        month = start.tz_convert("America/Los_Angeles").strftime("%Y%m%d")
        folder = self.server.caiso_dir / FOLDERS[query["queryname"]]
        found = sorted(folder.glob(f"{month}_*.zip"))
        if not found:
            self.send_error(404)
            return
        body = found[0].read_bytes()
        self.server.hits[month] += 1
        mode, times = self.server.truncate.get(month, ("", 0))
        length = len(body)
        if times > 0:
            self.server.truncate[month] = (mode, times - 1)
            body = body[: len(body) // 2]
            if mode == "honest":  # a short body announced as short: only the zip check can tell
                length = len(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-zip-compressed")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


@pytest.fixture
def oasis(caiso_dir, monkeypatch):
    server = FakeOasis(caiso_dir)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.delenv("POWERGRID_OFFLINE", raising=False)
    monkeypatch.setenv("POWERGRID_CAISO_URL", server.url)
    yield server
    server.shutdown()
    server.server_close()


def test_query_url():
    url = caiso.query_url(caiso.report_of("load"), pd.Timestamp("2023-01-01 08:00", tz="UTC"),
                          pd.Timestamp("2023-02-01 08:00", tz="UTC"), url="http://h/x", tac_area_name="CA ISO-TAC")
    assert url == ("http://h/x?resultformat=6&queryname=SLD_FCST&version=1&market_run_id=ACTUAL"
                   "&startdatetime=20230101T08:00-0000&enddatetime=20230201T08:00-0000&tac_area_name=CA%20ISO-TAC")


def test_download_a_year_with_one_truncated_response(oasis, caiso_dir):
    oasis.truncate["20230301"] = ("honest", 1)
    oasis.truncate["20230601"] = ("lying", 1)
    provider = CaisoProvider(build_params(CaisoProvider.Params, {"area": "AVA", "year": 2023, "download": True}), "load")
    values = provider.episode(48, 60, np.random.default_rng(0))
    assert values.shape == (48,) and np.isfinite(values).all()
    assert sum(oasis.hits.values()) == 14
    assert oasis.hits["20230301"] == 2 and oasis.hits["20230601"] == 2  # refetched, never used
    series = provider.raw_series()
    assert len(series) == 8760 and series.valid().all()
    # identical to parsing the shared files directly
    report = caiso.report_of("load")
    direct = caiso.select(caiso.read_files(caiso.files_in(caiso_dir / "load", report), report), report,
                          source="files", TAC_AREA_NAME="AVA")
    np.testing.assert_array_equal(series.values(), direct.values())
    # a second provider reads the cache: no new requests
    CaisoProvider(build_params(CaisoProvider.Params, {"area": "AVA", "scale": 2.0, "download": True}), "load").raw_series()
    assert sum(oasis.hits.values()) == 14


def test_a_corrupted_cached_file_is_fetched_again(oasis):
    report = caiso.report_of("lmp")
    start, end = caiso.month_starts(2023)[:2]
    url = caiso.query_url(report, start, end)
    path = cache.fetch(url, "jan.zip", subdir="caiso")
    assert oasis.hits["20230101"] == 1
    raw = path.read_bytes()
    path.write_bytes(raw[:-100])  # damaged on disk after the download
    again = cache.fetch(url, "jan.zip", subdir="caiso")
    assert oasis.hits["20230101"] == 2
    assert again.read_bytes() == raw
    cache.fetch(url, "jan.zip", subdir="caiso")
    assert oasis.hits["20230101"] == 2  # intact now: served from the cache


def test_always_truncated_is_an_error_and_nothing_is_kept(oasis):
    oasis.truncate["20230101"] = ("honest", 99)
    report = caiso.report_of("load")
    start, end = caiso.month_starts(2023)[:2]
    with pytest.raises(DownloadError, match=r"bad\.zip failed 3 times; nothing was kept") as err:
        cache.fetch(caiso.query_url(report, start, end), "bad.zip", subdir="caiso")
    assert "attempt 3: incomplete or corrupt zip" in str(err.value)
    assert ".part" not in str(err.value)  # the reasons were listed under the deleted temporary files' names
    assert not (cache.cache_dir("caiso") / "bad.zip").exists()
    assert oasis.hits["20230101"] == 3


def test_a_pinned_hash_mismatch_is_refused(oasis):
    report = caiso.report_of("load")
    start, end = caiso.month_starts(2023)[:2]
    with pytest.raises(DownloadError):
        cache.fetch(caiso.query_url(report, start, end), "pinned.zip", subdir="caiso", known_hash="sha256:" + "0" * 64,
                    retries=0)
    assert not (cache.cache_dir("caiso") / "pinned.zip").exists()


def test_server_down_is_a_clear_offline_error(monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.delenv("POWERGRID_OFFLINE", raising=False)
    provider = CaisoProvider(build_params(CaisoProvider.Params, {"allow_url": f"http://127.0.0.1:{port}/SingleZip",
                                                                 "download": True}), "price")
    with pytest.raises(DataUnavailableError, match=r"POWERGRID_DATA_DIR.*`path`|`path`.*POWERGRID_DATA_DIR"):
        provider.episode(24, 60, np.random.default_rng(0))


@pytest.fixture
def zip_server(monkeypatch):
    yield from serve(ZipServer(), monkeypatch)


def test_two_downloads_at_once_keep_both_checksum_entries(zip_server, monkeypatch):
    # two `powergrid datasets fetch` at once: the slower one used to rewrite checksums.json from the copy it read
    # before its download, dropping the other's entry; offline, that file was then deleted as "corrupt"
    slow = threading.Thread(target=cache.fetch, args=(zip_server.url("slow"), "slow.zip"), kwargs={"subdir": "caiso"})
    slow.start()
    assert zip_server.requested.wait(10)  # the slow fetch has read the manifest and waits for its answer
    cache.fetch(zip_server.url("fast"), "fast.zip", subdir="caiso")
    zip_server.release.set()
    slow.join(10)
    manifest = json.loads((cache.cache_dir("caiso") / cache.MANIFEST).read_text())
    assert sorted(manifest) == ["fast.zip", "slow.zip"]
    monkeypatch.setenv("POWERGRID_OFFLINE", "1")
    for name in ("slow", "fast"):
        assert cache.fetch(zip_server.url(name), f"{name}.zip", subdir="caiso").is_file()


def test_offline_an_unverifiable_cached_file_is_reported_and_kept(monkeypatch):
    folder = cache.cache_dir("caiso")
    target = folder / "jan.zip"
    with zipfile.ZipFile(target, "w") as zf:
        zf.writestr("a.csv", "a,b\n1,2\n")
    (folder / cache.MANIFEST).write_text("{ truncated")  # the record is lost, the file is intact
    with pytest.raises(DataUnavailableError, match=r"jan\.zip: \S+checksums\.json is unreadable \(not JSON: .*\), so it cannot "
                                                   r"be verified.*POWERGRID_OFFLINE=1"):
        cache.fetch("https://example.invalid/jan", "jan.zip", subdir="caiso")
    assert target.is_file()  # never deleted when no download can replace it


class ErrorFirstHandler(http.server.BaseHTTPRequestHandler):
    """OASIS under load: the first request gets HTTP 200 and a zip holding an XML error; later ones a CSV."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.hits += 1
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            if self.server.hits == 1:
                zf.writestr("INVALID_REQUEST.xml", "<m:OASISReport><m:ERR_CODE>1015</m:ERR_CODE>"
                                                   "<m:ERR_DESC>Too many requests</m:ERR_DESC></m:OASISReport>")
            else:
                zf.writestr("x_SLD_FCST_y.csv", "INTERVALSTARTTIME_GMT,TAC_AREA_NAME,MARKET_RUN_ID,MW\n"
                                                "2023-01-01T08:00:00-00:00,AVA,ACTUAL,1000\n")
        body = buffer.getvalue()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_an_oasis_error_reply_is_never_kept_in_the_cache(monkeypatch):
    # a rate-limit reply (HTTP 200, a zip of one XML message) passed the zip check and was cached as the month's
    # data: every later run re-read 'Too many requests' without asking OASIS again
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ErrorFirstHandler)
    server.daemon_threads, server.hits = True, 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("POWERGRID_OFFLINE", raising=False)
    monkeypatch.setenv("POWERGRID_CAISO_PAUSE", "0")
    try:
        report = caiso.report_of("load")
        paths = caiso.download_year(report, 2023, url=f"http://127.0.0.1:{server.server_address[1]}/SingleZip",
                                    tac_area_name="AVA")
        assert len(paths) == 12 and server.hits == 13  # the error reply was fetched again, not kept
        assert caiso.read_file(paths[0], report)["value"].tolist() == [1000.0]
        with pytest.raises(DataFileError, match=r"an OASIS reply without data \(it holds: e\.xml\): Too many"):
            bad = cache.cache_dir("caiso") / "e.zip"
            with zipfile.ZipFile(bad, "w") as zf:
                zf.writestr("e.xml", "<m:ERR_DESC>Too many requests</m:ERR_DESC>")
            caiso.validate_reply(bad)
    finally:
        server.shutdown()
        server.server_close()


class TimedErrorFirstHandler(ErrorFirstHandler):
    def do_GET(self):
        self.server.times.append(time.monotonic())
        super().do_GET()


def test_a_refused_download_is_retried_after_the_request_pause(monkeypatch):
    """r46a F5: a rate-limit reply was retried after 0.2 s and 0.4 s whatever POWERGRID_CAISO_PAUSE said, so a
    rate-limited month failed 3 of 3; the retry now waits at least the pause (a lower bound: sleep never returns early)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TimedErrorFirstHandler)
    server.daemon_threads, server.hits, server.times = True, 0, []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("POWERGRID_OFFLINE", raising=False)
    monkeypatch.setenv("POWERGRID_CAISO_PAUSE", "0.5")  # also between the months: ~6 s in all
    try:
        paths = caiso.download_year(caiso.report_of("load"), 2023, url=f"http://127.0.0.1:{server.server_address[1]}/SingleZip",
                                    tac_area_name="AVA")
        assert len(paths) == 12 and server.hits == 13
        assert server.times[1] - server.times[0] >= 0.5  # the retry of January (was 0.2 s after the refused reply)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("value", ["abc", "-1", "nan"])
def test_a_bad_pause_setting_names_the_variable(monkeypatch, value):
    # was 'ValueError: could not convert string to float: 'abc'' (nan: no pause at all against the real OASIS)
    from powergrid_datasets.errors import DatasetError

    monkeypatch.setenv("POWERGRID_CAISO_PAUSE", value)
    with pytest.raises(DatasetError, match=rf"POWERGRID_CAISO_PAUSE: expected a number of seconds ≥ 0, got '{value}'"):
        caiso.request_pause(caiso.DEFAULT_URL)
    monkeypatch.setenv("POWERGRID_CAISO_PAUSE", " ")
    assert caiso.request_pause(caiso.DEFAULT_URL) == 5.0 and caiso.request_pause("http://127.0.0.1/x") == 0.0


def test_manifest_updates_from_several_processes_at_once_keep_every_entry(tmp_path):
    """Four processes record 100 files each into one folder: the manifest ends with all 400 entries
    (a read-modify-write without the lock kept 121–211 of them)."""
    code = ("import sys; from pathlib import Path; from powergrid_datasets.cache import _record\n"
            "for i in range(100): _record(Path(sys.argv[1]), f'{sys.argv[2]}_{i}.zip', {'size': i})")
    writers = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), f"w{n}"]) for n in range(4)]
    assert [w.wait(timeout=120) for w in writers] == [0] * 4
    manifest = json.loads((tmp_path / cache.MANIFEST).read_text())
    assert sorted(manifest) == sorted(f"w{n}_{i}.zip" for n in range(4) for i in range(100))
    assert sorted(p.name for p in tmp_path.iterdir()) == [cache.MANIFEST, cache.MANIFEST + ".lock"]  # no temporary left


RECORDER = """
import hashlib, sys
from pathlib import Path
from powergrid_datasets.cache import _record
folder, url, stop = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
versions = [Path(p).read_bytes() for p in sys.argv[4:]]
n = 0
while not stop.exists():
    data = versions[n % len(versions)]
    part = folder / f".jan.zip.{n}.part"
    part.write_bytes(data)
    _record(folder, "jan.zip", {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "url": url}, part)
    n += 1
print(n)
"""

OFFLINE_READER = """
import sys
from collections import Counter
from powergrid_datasets import cache
outcomes = Counter()
for _ in range(int(sys.argv[2])):
    try:
        data = cache.fetch(sys.argv[1], "jan.zip", subdir="caiso").read_bytes()
        outcomes["ok" if data.startswith(b"PK") else "bad"] += 1
    except Exception as exc:
        outcomes[f"{type(exc).__name__}: {exc}"] += 1
print(dict(outcomes))
"""


def test_offline_fetch_while_another_process_replaces_the_file_always_finds_it_consistent(tmp_path):
    """One process keeps replacing a cached zip and its checksums.json entry by two valid versions (a download of
    a newer copy); another, offline, fetches it over and over. The file and its entry are read together, under the
    lock: never 'size or SHA-256 differs' (the manifest was read outside the lock: an entry of the old version
    checked against the new file)."""
    folder = tmp_path / "cache" / "caiso"
    folder.mkdir(parents=True)
    versions = []
    for n, rows in enumerate((10, 2000)):
        version = tmp_path / f"v{n}.zip"
        with zipfile.ZipFile(version, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("a.csv", "t,v\n" + "".join(f"{i},{i * n}\n" for i in range(rows)))
        versions.append(str(version))
    url, stop = "http://127.0.0.1:9/jan", tmp_path / "stop"
    env = {**os.environ, "POWERGRID_CACHE_DIR": str(tmp_path / "cache"), "POWERGRID_OFFLINE": "1"}
    recorder = subprocess.Popen([sys.executable, "-c", RECORDER, str(folder), url, str(stop), *versions], env=env,
                                stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (folder / cache.MANIFEST).exists():  # the first version is recorded
            assert recorder.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        reader = subprocess.run([sys.executable, "-c", OFFLINE_READER, url, "3000"], env=env, capture_output=True,
                                text=True, timeout=300)
    finally:
        stop.touch()
        recorded = int(recorder.communicate(timeout=60)[0])
    assert reader.returncode == 0, reader.stderr
    assert reader.stdout.strip() == "{'ok': 3000}", reader.stdout
    assert recorded > 10  # the file was replaced while it was read


READ_ONLY_PROBE = """
import os, sys, zipfile
from pathlib import Path
root = Path(sys.argv[1])
os.environ["POWERGRID_CACHE_DIR"] = str(root / "cache")
os.environ.pop("POWERGRID_OFFLINE", None)
from powergrid_datasets import cache
for name in ("feb.zip", "jan.zip"):  # not cached; cached but truncated
    try:
        cache.fetch("http://127.0.0.1:9/never", name, subdir="caiso", retries=0)
    except Exception as exc:
        print(type(exc).__name__, exc)
print("kept", (root / "cache" / "caiso" / "jan.zip").read_bytes() == b"PK truncated")
"""


def test_a_read_only_cache_folder_is_reported_before_any_request():
    """A read-only cache: one error naming the folder and POWERGRID_CACHE_DIR, never a request or a traceback
    (a cached file that did not verify used to end in a bare PermissionError from deleting it)."""
    root = Path(tempfile.mkdtemp(prefix="pg-ro-"))  # outside pytest's 0700 tmp folder, so another user can enter
    try:
        folder = root / "cache" / "caiso"
        folder.mkdir(parents=True)
        (folder / "jan.zip").write_bytes(b"PK truncated")
        script = root / "probe.py"
        script.write_text(READ_ONLY_PROBE)
        os.chmod(script, 0o644)
        for path in (root, root / "cache"):
            os.chmod(path, 0o755)
        os.chmod(folder, 0o555)
        command = [sys.executable, str(script), str(root)]
        if os.geteuid() == 0:  # root writes anywhere: run the probe as nobody
            if shutil.which("setpriv") is None:
                pytest.skip("running as root without setpriv: no way to make a folder read-only")
            nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            if subprocess.run([*nobody, sys.executable, "-c", "import powergrid_datasets"], capture_output=True,
                              timeout=120, cwd=root).returncode:
                pytest.skip("running as root, and user nobody cannot import the installed packages (a private checkout)")
            command = [*nobody, *command]
        out = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=root)
        lines = out.stdout.splitlines()
        assert out.returncode == 0, out.stderr
        for line in lines[:2]:
            assert "but the cache folder" in line and "is not writable" in line, line
            assert "POWERGRID_CACHE_DIR" in line
        # which file needed the download, and why (the message named only the folder)
        assert lines[0].startswith("CacheNotWritableError feb.zip needs a download (it is not in the cache)"), lines[0]
        assert lines[1].startswith(f"CacheNotWritableError jan.zip needs a download (cached {folder / 'jan.zip'}: "
                                   f"not recorded in"), lines[1]
        assert lines[2] == "kept True"
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(root)


# -- concurrent processes, shared cache names, pinned hashes ---------------------------------------------------
def test_a_cached_file_deleted_while_it_is_checked_is_absent(zip_server, monkeypatch):
    """Another process deletes the cached file between the existence check and the hashing: it is fetched again
    (offline: the 'not in the cache' error), not a bare FileNotFoundError."""
    url = zip_server.url("jan")
    path = cache.fetch(url, "jan.zip", subdir="caiso")
    raw = path.read_bytes()
    real = cache.sha256

    def deleted_before_hashing(p):
        if Path(p) == path and deleted_before_hashing.armed:
            deleted_before_hashing.armed = False
            path.unlink()
        return real(p)

    monkeypatch.setattr(cache, "sha256", deleted_before_hashing)
    deleted_before_hashing.armed = True
    assert cache.fetch(url, "jan.zip", subdir="caiso").read_bytes() == raw
    monkeypatch.setenv("POWERGRID_OFFLINE", "1")
    deleted_before_hashing.armed = True
    with pytest.raises(DataUnavailableError, match=r"jan\.zip is not in the cache .*POWERGRID_OFFLINE=1"):
        cache.fetch(url, "jan.zip", subdir="caiso")


def test_a_cached_file_deleted_while_it_is_validated_is_absent(zip_server, monkeypatch):
    """Deleted between the hash check and the zip check: offline, 'not in the cache' (was 'incomplete or corrupt zip
    (FileNotFoundError …)', a corrupt file that was not there)."""
    url = zip_server.url("jan")
    path = cache.fetch(url, "jan.zip", subdir="caiso")

    def deleted_then_validated(p):
        path.unlink(missing_ok=True)
        cache.validate_zip(p)

    monkeypatch.setenv("POWERGRID_OFFLINE", "1")
    with pytest.raises(DataUnavailableError, match=r"jan\.zip is not in the cache .*POWERGRID_OFFLINE=1"):
        cache.fetch(url, "jan.zip", subdir="caiso", validate=deleted_then_validated)


def _fetch_and_read(cache_root, url, count, results):
    """One process of the race below: ``count`` times, fetch ``jan.zip`` and read the zip at the returned path."""
    os.environ["POWERGRID_CACHE_DIR"] = cache_root
    os.environ.pop("POWERGRID_OFFLINE", None)
    from powergrid_datasets import cache

    for _ in range(count):
        try:
            path = cache.fetch(url, "jan.zip", subdir="caiso", retries=0)
        except Exception as exc:  # every failure is reported to the test
            results.put(f"fetch: {type(exc).__name__}: {exc}")
            continue
        try:
            with zipfile.ZipFile(path) as zf:
                results.put("ok" if zf.testzip() is None and zf.read("a.csv") == b"path,value\n/jan,1\n" else "bad")
        except FileNotFoundError:
            results.put("deleted after it was returned")  # by the test's deleter: not a fault of the cache
        except Exception as exc:
            results.put(f"read: {type(exc).__name__}: {exc}")


def test_two_processes_filling_one_cache_while_a_third_deletes_its_file(zip_server, tmp_path):
    """Two processes fetch one file while another process keeps deleting it (a user clearing the cache, another
    version): a file gone while checked or just downloaded is fetched again, never a FileNotFoundError out of
    ``fetch``, and a returned file that can be opened is complete. (Each process also used to delete the file
    the other had just downloaded and recorded.)"""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    count, results = 60, context.Queue()
    workers = [context.Process(target=_fetch_and_read, args=(str(tmp_path), zip_server.url("jan"), count, results))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    target = tmp_path / "caiso" / "jan.zip"
    outcomes, deadline = [], time.monotonic() + 120
    while len(outcomes) < 2 * count:
        target.unlink(missing_ok=True)
        time.sleep(0.0005 + 0.002 * (len(outcomes) % 3))
        while not results.empty():
            outcomes.append(results.get())
        assert time.monotonic() < deadline and all(w.is_alive() or w.exitcode == 0 for w in workers), Counter(outcomes)
    for worker in workers:
        worker.join(60)
    assert set(outcomes) <= {"ok", "deleted after it was returned"}, Counter(outcomes)
    assert outcomes.count("ok") > 0 and [w.exitcode for w in workers] == [0, 0]
    assert not [p.name for p in target.parent.iterdir() if p.name.startswith(".")]  # no partial download left


def test_two_sources_sharing_a_cache_name_never_get_each_other_s_file(zip_server, monkeypatch):
    """A cache name recorded for one URL is not used for another: fetched again (replacing it), or offline an
    error naming both URLs."""
    first = cache.fetch(zip_server.url("a"), "x.zip", subdir="caiso")
    assert zipfile.ZipFile(first).read("a.csv") == b"path,value\n/a,1\n"
    second = cache.fetch(zip_server.url("b"), "x.zip", subdir="caiso")
    assert zipfile.ZipFile(second).read("a.csv") == b"path,value\n/b,1\n"
    monkeypatch.setenv("POWERGRID_OFFLINE", "1")
    with pytest.raises(DataUnavailableError, match=r"x\.zip: recorded for .*/b, not .*/a\b.*POWERGRID_OFFLINE=1"):
        cache.fetch(zip_server.url("a"), "x.zip", subdir="caiso")


class AreaHandler(http.server.BaseHTTPRequestHandler):
    """OASIS answering SLD_FCST queries with one row whose MW value tells which TAC area was asked for."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
        start = query["startdatetime"].replace("-0000", "")
        megawatts = {"A/B": 111, "A B": 222}[query["tac_area_name"]]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr("x_SLD_FCST_y.csv", "INTERVALSTARTTIME_GMT,TAC_AREA_NAME,MARKET_RUN_ID,MW\n"
                                            f"{start[:4]}-{start[4:6]}-{start[6:8]}T08:00:00-00:00,"
                                            f"{query['tac_area_name']},ACTUAL,{megawatts}\n")
        body = buffer.getvalue()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_two_areas_whose_names_sanitise_alike_get_their_own_cache_files(monkeypatch):
    """'A/B' and 'A B' both became 'A-B' in the cache file name: the second area was served the first one's data."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AreaHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("POWERGRID_OFFLINE", raising=False)
    monkeypatch.setenv("POWERGRID_CAISO_PAUSE", "0")
    report = caiso.report_of("load")
    url = f"http://127.0.0.1:{server.server_address[1]}/SingleZip"
    try:
        slash = caiso.download_year(report, 2023, url=url, tac_area_name="A/B")
        space = caiso.download_year(report, 2023, url=url, tac_area_name="A B")
    finally:
        server.shutdown()
        server.server_close()
    assert not set(slash) & set(space)
    assert caiso.read_files(slash, report)["value"].unique().tolist() == [111.0]
    assert caiso.read_files(space, report)["value"].unique().tolist() == [222.0]
    monkeypatch.setenv("POWERGRID_OFFLINE", "1")  # both stay cached
    assert caiso.download_year(report, 2023, url=url, tac_area_name="A/B") == slash


def test_a_pinned_hash_that_differs_names_both_hashes(zip_server, monkeypatch):
    """known_hash differing from the cached file: one error naming the file, the pinned and the found SHA-256
    (was 'not recorded in checksums.json, so it cannot be verified')."""
    url = zip_server.url("jan")
    found = cache.sha256(cache.fetch(url, "jan.zip", subdir="caiso"))
    pinned = "ab" * 32
    monkeypatch.setenv("POWERGRID_OFFLINE", "1")
    with pytest.raises(DataUnavailableError, match=rf"jan\.zip: its SHA-256 is {found}, expected {pinned} \(known_hash\)"):
        cache.fetch(url, "jan.zip", subdir="caiso", known_hash=f"sha256:{pinned}")
    monkeypatch.delenv("POWERGRID_OFFLINE")
    with pytest.raises(DownloadError, match=rf"jan\.zip failed 1 times; .*attempt 1: the download's SHA-256 is {found}, expected "
                                            rf"{pinned} \(known_hash\)"):
        cache.fetch(url, "jan.zip", subdir="caiso", known_hash=f"sha256:{pinned}", retries=0)
    assert cache.fetch(url, "jan.zip", subdir="caiso", known_hash=found.upper()).is_file()  # the right pin: used

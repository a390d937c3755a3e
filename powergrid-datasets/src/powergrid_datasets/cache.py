"""Download cache: files fetched with pooch into the user's cache folder, checked before every use.

- Folder: ``POWERGRID_CACHE_DIR`` if set, else ``pooch.os_cache("powergrid")``
  (``~/.cache/powergrid`` on Linux), one sub-folder per source (``caiso/``…).
- Every file that passed validation is recorded in ``checksums.json`` of its
  folder (SHA-256 and size). A cached file whose size or hash no longer matches,
  or that fails validation, is deleted and fetched again — never used.
- A fresh download is validated (for zips: it opens and every member's CRC
  checks), so a truncated or partial response is detected even without a
  known hash; it is retried, then reported.
- A folder that cannot be written to is reported before any request (a cached file there that verifies
  is still used).
- ``POWERGRID_OFFLINE=1`` forbids downloads: a file not in the cache is an error; a cached file
  that cannot be verified is then reported and kept (never deleted without a download to replace it).
- ``checksums.json`` is updated (read, changed, replaced) under an exclusive lock on
  ``checksums.json.lock`` beside it, so that downloads into one folder from several processes at
  once keep each other's entries. The lock is ``fcntl.flock`` (POSIX); where there is no ``fcntl``
  (Windows) the manifest is only re-read just before each update, which narrows the race but does
  not close it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pooch

from powergrid_datasets.errors import DataFileError, DatasetError, DataUnavailableError, DownloadError

CACHE_ENV = "POWERGRID_CACHE_DIR"
OFFLINE_ENV = "POWERGRID_OFFLINE"
MANIFEST = "checksums.json"

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


def cache_dir(subdir: str = "") -> Path:
    """The cache folder (created), or its ``subdir``."""
    base = Path(os.environ[CACHE_ENV]).expanduser() if os.environ.get(CACHE_ENV) else Path(pooch.os_cache("powergrid"))
    folder = base / subdir if subdir else base
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cache folder {folder} cannot be created ({exc.strerror or exc}); set {CACHE_ENV} "
                           f"to a writable folder") from None
    return folder


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def validate_zip(path: Path) -> None:
    """Raise :class:`DataFileError` unless ``path`` is a complete zip whose members all pass their CRC."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise DataFileError(path, f"incomplete or corrupt zip ({type(exc).__name__}: {exc})") from None
    if bad is not None:
        raise DataFileError(path, f"corrupt member {bad} in the zip")


def _read_manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def _manifest_lock(folder: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``folder``'s manifest (other processes' updates wait; see the module doc)."""
    with open(folder / (MANIFEST + ".lock"), "a") as fh:
        if fcntl is not None:
            fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file closes
        yield


def _record(folder: Path, fname: str, entry: dict) -> None:
    """Set the manifest entry of ``fname``: read, change and replace the manifest under its lock, so that
    entries other processes add at the same time are kept."""
    with _manifest_lock(folder):
        manifest = _read_manifest(folder)
        manifest[fname] = entry
        fd, tmp = tempfile.mkstemp(prefix=MANIFEST + ".", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(manifest, indent=1, sort_keys=True))
        Path(tmp).replace(folder / MANIFEST)


def cache_problem(path: Path, entry: dict | None, validate: Callable[[Path], None] | None) -> str | None:
    """Why the cached ``path`` cannot be used (None: it matches its manifest ``entry``, size and SHA-256, and validates)."""
    if not path.is_file():
        return "not in the cache"
    if entry is None:
        return f"not recorded in {MANIFEST}, so it cannot be verified"
    if path.stat().st_size != entry.get("size") or sha256(path) != entry.get("sha256"):
        return f"its size or SHA-256 differs from {MANIFEST} (incomplete or corrupt)"
    if validate is not None:
        try:
            validate(path)
        except DataFileError as exc:
            return str(exc)
    return None


def fetch(url: str, fname: str, *, subdir: str, known_hash: str | None = None,
          validate: Callable[[Path], None] | None = validate_zip, retries: int = 2,
          timeout: float = 60.0, hint: str = "") -> Path:
    """The cached copy of ``url`` as ``<cache>/<subdir>/<fname>``, downloading it when needed.

    ``known_hash`` (``"sha256:…"`` or a bare SHA-256) pins the content. ``hint``
    is appended to errors (e.g. how to provide the files offline).
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", fname) or set(fname) == {"."}:
        raise ValueError(f"cache file name {fname!r}: expected letters, digits, '-', '_' and '.' only")
    folder = cache_dir(subdir)
    target = folder / fname
    entry = _read_manifest(folder).get(fname)
    if known_hash:
        expected = known_hash.split(":", 1)[-1].lower()
        if entry is not None and entry.get("sha256") != expected:
            entry = None
    problem = cache_problem(target, entry, validate)
    if problem is None:
        return target
    suffix = f" {hint}" if hint else ""
    if offline():  # nothing could replace the file: keep it and say why it is not used
        where = f"{fname} is not in the cache {folder}" if not target.is_file() else f"cached {target}: {problem}"
        raise DataUnavailableError(f"{where}; downloads are off ({OFFLINE_ENV}=1), would fetch {url}.{suffix}")
    _check_writable(folder)  # before any request: a download there could never be kept
    if target.exists():
        log.warning("powergrid: cached %s: %s; fetching it again", target, problem)
        target.unlink()
    errors = []
    for attempt in range(retries + 1):
        try:
            path = Path(pooch.retrieve(url, known_hash=known_hash, fname=fname, path=folder,
                                       progressbar=sys.stderr.isatty(),  # tqdm bar on a terminal only
                                       downloader=pooch.HTTPDownloader(timeout=timeout)))
        except Exception as exc:  # requests' connection errors, pooch's hash mismatch, truncated bodies
            errors.append(f"{type(exc).__name__}: {exc}")
            if target.exists():
                target.unlink()
            if _is_connection_error(exc):
                raise DataUnavailableError(f"cannot download {url} ({exc}).{suffix}") from None
            time.sleep(min(0.2 * (attempt + 1), 1.0))
            continue
        try:
            if validate is not None:
                validate(path)
        except DataFileError as exc:
            errors.append(str(exc))
            path.unlink()
            continue
        _record(folder, fname, {"sha256": sha256(path), "size": path.stat().st_size, "url": url})
        return path
    raise DownloadError(f"download of {url} failed {retries + 1} times; nothing was kept in the cache "
                        f"({'; '.join(errors)}).{suffix}")


def _check_writable(folder: Path) -> None:
    """Raise :class:`DatasetError` unless a file can be created in ``folder``."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise DatasetError(f"cache folder {folder} is not writable ({exc.strerror or exc}), so nothing can be downloaded "
                           f"into it; set {CACHE_ENV} to a writable folder") from None


def _is_connection_error(exc: Exception) -> bool:
    try:
        import requests
    except ImportError:  # pragma: no cover - pooch depends on requests
        return False
    return isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)) and not isinstance(
        exc, requests.exceptions.ChunkedEncodingError)

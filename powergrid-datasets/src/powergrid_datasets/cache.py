"""Download cache: files fetched with pooch into the user's cache folder, checked before every use.

- Folder: ``POWERGRID_CACHE_DIR`` if set, else ``pooch.os_cache("powergrid")``
  (``~/.cache/powergrid`` on Linux), one sub-folder per source (``caiso/``…).
- Every file that passed validation is recorded in ``checksums.json`` of its
  folder (SHA-256, size and the URL it came from). A cached file whose size or
  hash no longer matches, that was recorded for another URL, or that fails
  validation, is fetched again — never used. With ``known_hash`` the file's
  SHA-256 must be that one instead.
- A fresh download goes to a temporary file of the folder and is validated (for
  zips: it opens and every member's CRC checks), so a truncated or partial
  response is detected even without a known hash; it is retried, then reported.
  A valid one is flushed to disk and moved onto the cached name with
  ``os.replace`` (atomic): a process reading the cache never sees part of a file,
  and a file deleted by another process while it is checked is only absent.
- A folder that cannot be written to is reported before any request (a cached file there that verifies
  is still used).
- ``POWERGRID_OFFLINE=1`` forbids downloads: a file not in the cache is an error (and nothing, not even the
  cache folder or its lock file, is created); a cached file that cannot be verified is then reported and kept
  (never deleted without a download to replace it).
- A download holds an exclusive lock on ``<fname>.lock`` beside the file and looks at the cache again once it
  has it: processes that want one missing file at once (vectorised training, each resetting) wait for the first
  one's download instead of each fetching it. Under that lock it also removes the file's temporary downloads
  (``.<fname>.????????.part``) that a killed process left behind: those not written to for ``STALE_PART_S``
  (10 minutes; a live download writes to its file continuously, and one stalled gives up after ``timeout``), so
  that a download running on another host of a shared folder, whose lock this host may not see, is kept.
- ``checksums.json`` is updated (read, changed, replaced) under an exclusive lock on
  ``checksums.json.lock`` beside it, so that downloads into one folder from several processes at
  once keep each other's entries; a cached file is checked against its entry under the shared lock,
  so that a file and its entry replaced by another process are read together. The lock is
  ``fcntl.flock`` (POSIX); where there is no ``fcntl`` (Windows) the manifest is only re-read just
  before each update, which narrows the race but does not close it, concurrent processes may each download a
  file, and a temporary download still being written is kept because Windows refuses to delete an open file.
  On a file system whose ``flock`` fails (``ENOLCK``, ``ENOSYS``, ``EOPNOTSUPP``: NFS without a lock daemon,
  Lustre mounted without ``flock``) the cache works as without ``fcntl``, after one warning naming the folder.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import logging
import os
import re
import secrets
import string
import tempfile
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pooch
import requests

from powergrid_datasets.errors import CacheNotWritableError, DataFileError, DatasetError, DataUnavailableError, DownloadError

CACHE_ENV = "POWERGRID_CACHE_DIR"
OFFLINE_ENV = "POWERGRID_OFFLINE"
MANIFEST = "checksums.json"
OFFLINE_VALUES = frozenset({"1", "true", "yes", "on"})
ONLINE_VALUES = frozenset({"", "0", "false", "no", "off"})
#: A temporary download not written to for this many seconds was left by a killed process (see the module doc).
STALE_PART_S = 600.0
#: ``flock`` errors of a file system that has no locks: the cache then works unlocked (see the module doc).
NO_LOCK_ERRNOS = frozenset({errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP})

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


def cache_path(subdir: str = "") -> Path:
    """The cache folder, or its ``subdir`` (not created)."""
    base = Path(os.environ[CACHE_ENV]).expanduser() if os.environ.get(CACHE_ENV) else Path(pooch.os_cache("powergrid"))
    return base / subdir if subdir else base


def cache_dir(subdir: str = "") -> Path:
    """The cache folder (created), or its ``subdir``."""
    folder = cache_path(subdir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheNotWritableError(f"cache folder {folder} cannot be created ({exc.strerror or exc}); set {CACHE_ENV} "
                                    f"to a writable folder") from None
    return folder


def offline() -> bool:
    """Whether ``POWERGRID_OFFLINE`` forbids downloads: 1/true/yes/on (any case) yes, 0/false/no/off or unset no;
    any other value raises, so that a guard the user relies on is never read as "online" by mistake."""
    value = os.environ.get(OFFLINE_ENV, "").strip().lower()
    if value not in OFFLINE_VALUES | ONLINE_VALUES:
        raise DatasetError(f"{OFFLINE_ENV}: expected 1/true/yes/on or 0/false/no/off (or unset), got "
                           f"{os.environ[OFFLINE_ENV]!r}")
    return value in OFFLINE_VALUES


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
    """``folder``'s manifest; {} when it is absent or unreadable (:func:`_unreadable_manifest` says why)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _unreadable_manifest(folder: Path) -> str | None:
    """Why ``folder``'s manifest exists but cannot be read (None: it is absent or readable)."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path} is unreadable ({exc.strerror or exc})"
    except ValueError as exc:
        return f"{path} is unreadable (not JSON: {exc})"
    return None if isinstance(manifest, dict) else f"{path} is unreadable (expected a JSON object, got {type(manifest).__name__})"


@contextlib.contextmanager
def _manifest_lock(folder: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold the lock of ``folder``'s manifest: exclusive to update it, ``shared`` to check a file against its entry
    (see the module doc). A shared lock opens the lock file read-only, and without one (no process ever updated that
    folder) takes none in a folder that cannot be written to or offline."""
    with _lock(folder / (MANIFEST + ".lock"), shared=shared):
        yield


@contextlib.contextmanager
def _lock(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold an ``fcntl.flock`` on the file ``path`` (created; see :func:`_manifest_lock` for ``shared``). A shared lock
    opens an existing file read-only and, offline, creates none: offline nothing is created."""
    fh = None
    if shared:
        with contextlib.suppress(OSError):
            fh = open(path)
    if fh is None and not (shared and offline()):
        try:
            fh = open(path, "a")
        except OSError:
            if not shared:
                raise
    with fh or contextlib.nullcontext():
        if fh is not None and fcntl is not None:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)  # released when the file closes
            except OSError as exc:
                if exc.errno not in NO_LOCK_ERRNOS:
                    raise
                # one warning per folder (the text names the folder, the location is this line)
                warnings.warn(f"the cache folder {path.parent} is on a file system without locks (flock: {exc.strerror}): "
                              f"processes sharing it may each download a file and may drop each other's {MANIFEST} "
                              f"entries (files are still verified before use); set {CACHE_ENV} to a local folder to "
                              f"avoid this", RuntimeWarning, stacklevel=1)
        yield


def _record(folder: Path, fname: str, entry: dict, download: Path | None = None) -> None:
    """Set the manifest entry of ``fname`` (first moving ``download``, a verified temporary file of ``folder``, onto
    ``fname`` with ``os.replace``): read, change and replace the manifest under its lock, so that entries other
    processes add at the same time are kept and a file and its entry change together."""
    with _manifest_lock(folder):
        if download is not None:
            download.replace(folder / fname)
        manifest = _read_manifest(folder)
        manifest[fname] = entry
        fd, tmp = _new_file(folder, MANIFEST + ".", ".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(manifest, indent=1, sort_keys=True))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(folder / MANIFEST)


ABSENT = "not in the cache"


def cache_problem(path: Path, entry: dict | None, validate: Callable[[Path], None] | None, *,
                  url: str | None = None, pinned: str | None = None) -> str | None:
    """Why the cached ``path`` cannot be used (None: it validates and its SHA-256 is ``pinned``, or, without a pin,
    it matches its manifest ``entry``: size, SHA-256 and, if given, the ``url`` it was downloaded from).
    A file that vanishes while it is checked (another process deleted it) is absent."""
    try:
        if not path.is_file():
            return ABSENT
        if pinned is not None:
            found = sha256(path)
            if found != pinned:
                return f"its SHA-256 is {found}, expected {pinned} (known_hash)"
        elif entry is None:
            unreadable = _unreadable_manifest(path.parent)
            return f"{unreadable or f'not recorded in {MANIFEST}'}, so it cannot be verified"
        elif url is not None and entry.get("url") != url:
            return f"recorded for {entry.get('url')}, not {url} (two sources share this cache name)"
        elif path.stat().st_size != entry.get("size") or sha256(path) != entry.get("sha256"):
            return f"its size or SHA-256 differs from {MANIFEST} (incomplete or corrupt)"
        if validate is not None:
            validate(path)
    except FileNotFoundError:
        return ABSENT
    except DataFileError as exc:  # validate_zip reads a file deleted meanwhile as a corrupt zip: it is absent
        return str(exc) if path.is_file() else ABSENT
    return None


def fetch(url: str, fname: str, *, subdir: str, known_hash: str | None = None,
          validate: Callable[[Path], None] | None = validate_zip, retries: int = 2,
          timeout: float = 60.0, hint: str = "", retry_pause: float = 0.0) -> Path:
    """The cached copy of ``url`` as ``<cache>/<subdir>/<fname>``, downloading it when needed.

    ``known_hash`` (``"sha256:…"`` or a bare SHA-256) pins the content. ``hint``
    is appended to errors (e.g. how to provide the files offline). A refused download is retried after at least
    ``retry_pause`` seconds (a server's minimum time between requests). A download is
    written to a temporary file of the folder, verified, flushed to disk and moved
    onto ``fname`` in one step, so no process ever sees part of a file there.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", fname) or set(fname) == {"."}:
        raise ValueError(f"cache file name {fname!r}: expected letters, digits, '-', '_' and '.' only")
    folder = cache_path(subdir) if offline() else cache_dir(subdir)  # offline nothing is created, not even a lock
    target = folder / fname
    pinned = known_hash.split(":", 1)[-1].lower() if known_hash else None
    if offline() and not target.is_file():
        problem = ABSENT
    else:
        with _manifest_lock(folder, shared=True):  # the file and its entry as one update left them
            problem = cache_problem(target, _read_manifest(folder).get(fname), validate, url=url, pinned=pinned)
    if problem is None:
        return target
    suffix = f" {hint}" if hint else ""
    if offline():  # nothing could replace the file: keep it and say why it is not used (the cause first)
        allow = f"unset {OFFLINE_ENV} (or set it to 0) to"
        if problem == ABSENT:
            text = f"{fname} is not in the cache {folder} and downloads are off ({OFFLINE_ENV}=1): {allow} download it"
        else:
            text = (f"cached {target}: {problem}; downloads are off ({OFFLINE_ENV}=1), so it is kept: delete it, or "
                    f"{allow} fetch it again")
        raise DataUnavailableError(f"{text} from {url}.{suffix}")
    why = "it is not in the cache" if problem == ABSENT else f"cached {target}: {problem}"
    _check_writable(folder, f"{fname} needs a download ({why})")  # before any request: a download could never be kept
    with _lock(folder / (fname + ".lock")):
        with _manifest_lock(folder, shared=True):  # another process may have fetched it while this one waited
            problem = cache_problem(target, _read_manifest(folder).get(fname), validate, url=url, pinned=pinned)
        if problem is None:
            return target
        _remove_stale_parts(folder, fname)
        if problem != ABSENT:
            log.warning("powergrid: cached %s: %s; fetching it again", target, problem)
        errors = []
        for attempt in range(1, retries + 2):
            try:
                _download_and_record(url, folder, fname, timeout, pinned, validate)
                return target
            except (requests.RequestException, DataFileError, OSError) as exc:  # HTTP errors, truncated bodies, a
                # corrupt download, the cache cleared meanwhile; a bug of ours is raised at once, not retried
                if _is_connection_error(exc):
                    raise DataUnavailableError(f"cannot download {url} ({exc}).{suffix}") from None
                # a refused download is named by its cache name above, not by its deleted temporary file
                reason = exc.args[0].removeprefix(exc.path + ": ") if isinstance(exc, DataFileError) else f"{type(exc).__name__}: {exc}"
                errors.append(f"attempt {attempt}: {reason}")
                time.sleep(max(retry_pause, min(0.2 * attempt, 1.0)))
    raise DownloadError(f"download of {url} into {target} failed {retries + 1} times; nothing was kept in the cache "
                        f"({'; '.join(errors)}).{suffix}")


def _download_and_record(url: str, folder: Path, fname: str, timeout: float, pinned: str | None,
                         validate: Callable[[Path], None] | None) -> None:
    """Download ``url``, check it (``pinned`` SHA-256, ``validate``) and move it onto ``fname`` with its manifest entry;
    a download refused is deleted."""
    download = _download(url, folder, fname, timeout)
    try:
        digest = sha256(download)
        if pinned is not None and digest != pinned:
            raise DataFileError(download, f"the download's SHA-256 is {digest}, expected {pinned} (known_hash)")
        if validate is not None:
            validate(download)
        _record(folder, fname, {"sha256": digest, "size": download.stat().st_size, "url": url}, download)
    finally:
        download.unlink(missing_ok=True)  # a download refused (or moved onto fname: then nothing to do)


_NAME_CHARS = string.ascii_lowercase + string.digits + "_"  # the characters of a temporary file's random part


def _remove_stale_parts(folder: Path, fname: str) -> None:
    """Delete the temporary downloads of ``fname`` (``.<fname>.<8 random characters>.part``, :func:`_new_file`) that a process
    killed while downloading left behind: those not written to for ``STALE_PART_S`` (under ``fname``'s lock no live
    process of this host is writing one; the age keeps one that another host of a shared folder is writing)."""
    pattern = re.compile(re.escape(f".{fname}.") + f"[{_NAME_CHARS}]{{8}}\\.part")
    for path in folder.glob(f".{glob.escape(fname)}.*.part"):
        with contextlib.suppress(OSError):  # gone meanwhile, or (Windows) still open in another process
            if pattern.fullmatch(path.name) and time.time() - path.stat().st_mtime > STALE_PART_S:
                path.unlink()


def _download(url: str, folder: Path, fname: str, timeout: float) -> Path:
    """``url`` downloaded into a new temporary file of ``folder`` (``.<fname>.….part``), flushed to disk."""
    fd, path = _new_file(folder, f".{fname}.", ".part")
    try:
        with os.fdopen(fd, "w+b") as fh:
            pooch.HTTPDownloader(timeout=timeout)(url, fh, None)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _new_file(folder: Path, prefix: str, suffix: str) -> tuple[int, Path]:
    """A new file ``<prefix><8 random characters><suffix>`` in ``folder``, opened for reading and writing: created
    exclusively, as ``tempfile.mkstemp`` does, but with the mode ``open()`` gives (0666 less the umask, applied by
    the system), not mkstemp's 0600, so that a cache folder shared by a group (umask 002) is readable by the group."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        path = folder / f"{prefix}{''.join(secrets.choice(_NAME_CHARS) for _ in range(8))}{suffix}"
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temporary name {prefix}…{suffix} in {folder}")


def _check_writable(folder: Path, need: str) -> None:
    """Raise :class:`CacheNotWritableError` unless a file can be created in ``folder``; ``need`` says which file needs it
    and why."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise CacheNotWritableError(f"{need}, but the cache folder {folder} is not writable ({exc.strerror or exc}), so "
                                    f"nothing can be downloaded into it; set {CACHE_ENV} to a writable folder") from None


def _is_connection_error(exc: Exception) -> bool:
    return isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)) and not isinstance(
        exc, requests.exceptions.ChunkedEncodingError)

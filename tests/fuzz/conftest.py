"""Fixtures of the fuzzers: no network access, no data folder from the shell, networks built once per process.

``POWERGRID_FUZZ_MUTANTS`` (default 500) and ``POWERGRID_FUZZ_SEED`` (default 11) set the size and the
seed of a run; ``POWERGRID_FUZZ_LIMIT_S`` (default 5) is the watchdog that turns a hang into a failure.
"""

from __future__ import annotations

import copy
import os
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from powergrid import builder

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
MUTANTS = int(os.environ.get("POWERGRID_FUZZ_MUTANTS", "500"))
SEED = int(os.environ.get("POWERGRID_FUZZ_SEED", "11"))
LIMIT_S = float(os.environ.get("POWERGRID_FUZZ_LIMIT_S", "5"))


class Hang(BaseException):
    """A mutant ran past the watchdog (a BaseException, so the CLI's error handler does not swallow it)."""


@contextmanager
def watchdog(what: str) -> Iterator[None]:
    """Raise :class:`Hang` in the main thread when the block runs longer than ``LIMIT_S`` (a hang, not a speed test)."""

    def fire(*_: object) -> None:
        raise Hang(f"{what} ran longer than {LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, LIMIT_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def _hostile_environment(monkeypatch, tmp_path):
    """Downloads off, no data folder, work in a temp folder (so a stray write shows up there)."""
    monkeypatch.setenv("POWERGRID_OFFLINE", "1")
    monkeypatch.setenv("POWERGRID_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("POWERGRID_DATA_DIR", raising=False)
    monkeypatch.delenv("POWERGRID_CAISO_URL", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session", autouse=True)
def _networks_built_once() -> Iterator[None]:
    """The real network factories, called once per process and (factory, parameters); each build gets a deep copy.

    Building a feeder in pandapower takes seconds; the fuzzers exercise the configuration, not the factory.
    """
    built: dict[tuple, object] = {}
    real = builder._instantiate

    def instantiate(factory, params):
        key = (factory, params)
        if key not in built:
            built[key] = real(factory, params)
        return copy.deepcopy(built[key])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builder, "_instantiate", instantiate)
        yield


@pytest.fixture(scope="session")
def tally() -> Iterator[Counter]:
    """Outcome counts of a fuzz run, printed at the end (``pytest -s`` shows them)."""
    counts: Counter = Counter()
    yield counts
    if counts:
        print("\nfuzz outcomes: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))

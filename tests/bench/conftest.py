"""The benchmark tests' task configs: the repository's configs/bench (a non-editable install, as nox makes, has none
beside the package)."""

from __future__ import annotations

from pathlib import Path

import pytest

BENCH_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "bench"


@pytest.fixture
def configs(monkeypatch: pytest.MonkeyPatch) -> Path:
    """POWERGRID_BENCH_CONFIGS set to the repository's task configs for the test."""
    monkeypatch.setenv("POWERGRID_BENCH_CONFIGS", str(BENCH_CONFIGS))
    return BENCH_CONFIGS

"""One BLAS thread for the batched solver's small dense products.

The batched power flow multiplies a dense ``Z`` (69 × 69 on ``ieee34_3mg``) by one column per copy. A
multithreaded BLAS splits such a product over its threads, whose start and hand-over cost far more than the
product (≈12 µs on one thread at 16 copies): on a 2-core machine shared with other processes a fixed point of 16
copies (≈10 products) took 35 ms of CPU with OpenBLAS on two threads, against ≈0.3 ms on one.
:func:`one_blas_thread` runs a block with numpy's BLAS limited to one thread, through threadpoolctl, which finds
the BLAS numpy loaded (OpenBLAS, MKL, BLIS…). The limit is process-wide: blocks that overlap (nested, or in
several threads) share it, and the count from before the first is restored when the last one ends (another
thread's BLAS calls in that time run on one thread too). :func:`controllable` is False when threadpoolctl finds
no BLAS it can limit (the block then runs as it is).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np  # noqa: F401  (numpy's BLAS is loaded before the controller looks for it)
from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_open: list[Any] = []  # the limiter of the blocks running now (one), empty when none runs
_depth = 0  # how many blocks run now


@functools.cache
def _blas() -> Any:
    """threadpoolctl's controller of the BLAS libraries loaded in this process (found once, ≈ms)."""
    return ThreadpoolController().select(user_api="blas")


def controllable() -> bool:
    """Whether :func:`one_blas_thread` can limit numpy's BLAS."""
    return bool(_blas().lib_controllers)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with numpy's BLAS on one thread (≈10 µs to enter and leave); a no-op when no BLAS can be
    limited."""
    global _depth
    blas = _blas()
    if not blas.lib_controllers:
        yield
        return
    with _lock:
        if _depth == 0:
            _open.append(blas.limit(limits=1))  # keeps the counts it found, to restore them
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _open.pop().restore_original_limits()

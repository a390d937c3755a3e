"""One BLAS thread for the batched solver's small dense products.

The batched power flow multiplies a dense ``Z`` (69 × 69 on ``ieee34_3mg``) by one column per copy. A
multithreaded BLAS splits such a product over its threads, whose start and hand-over cost far more than the
product (≈12 µs on one thread at 16 copies): on a 2-core machine shared with other processes a fixed point of 16
copies (≈10 products) took 35 ms of CPU with OpenBLAS on two threads, against ≈0.3 ms on one.
:func:`one_blas_thread` runs a block with numpy's BLAS limited to one thread and restores its count after
(process-wide while it runs: another thread's BLAS calls in that time run on one thread too), through
threadpoolctl, which finds the BLAS numpy loaded (OpenBLAS, MKL, BLIS…). :func:`controllable` is False when it
finds none it can limit (the block then runs as it is).
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np  # noqa: F401  (numpy's BLAS is loaded before the controller looks for it)
from threadpoolctl import ThreadpoolController


@functools.cache
def _blas() -> Any:
    """threadpoolctl's controller of the BLAS libraries loaded in this process (found once, ≈ms)."""
    return ThreadpoolController().select(user_api="blas")


def controllable() -> bool:
    """Whether :func:`one_blas_thread` can limit numpy's BLAS."""
    return bool(_blas().lib_controllers)


def one_blas_thread() -> AbstractContextManager[Any]:
    """A context that runs its block with numpy's BLAS on one thread (≈10 µs to enter and leave); a no-op
    when no BLAS can be limited."""
    blas = _blas()
    return blas.limit(limits=1) if blas.lib_controllers else nullcontext()

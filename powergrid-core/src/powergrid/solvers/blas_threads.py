"""One BLAS thread for the batched solver's small dense products (numpy's OpenBLAS).

The batched power flow multiplies a dense ``Z`` (69 × 69 on ``ieee34_3mg``) by one column per copy. OpenBLAS
splits such a product over its threads, whose start and hand-over cost far more than the product (≈12 µs on one
thread at 16 copies): on a 2-core machine shared with other processes a fixed point of 16 copies (≈10 products)
took 35 ms of CPU, against ≈0.3 ms on one thread, and a 69 × 69 by 64 product 7.7 ms against 0.04 ms.
:func:`one_blas_thread` runs a block with OpenBLAS limited to one thread and restores its count after
(process-wide while it runs: another thread's BLAS calls in that time run on one thread too).

It finds numpy's OpenBLAS through the shared libraries next to numpy (the wheels' ``numpy.libs`` or ``.dylibs``);
:data:`CONTROLLABLE` is False when numpy uses another BLAS (the block then runs as it is).
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

#: the setter and getter of OpenBLAS's thread count, by each build's name
_NAMES = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
          ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
          ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
          ("openblas_set_num_threads", "openblas_get_num_threads"))


def _openblas() -> tuple[Any, Any] | None:
    """OpenBLAS's ``set_num_threads`` and ``get_num_threads`` of the library numpy loaded, or None."""
    root = os.path.dirname(os.path.dirname(np.__file__))
    here = os.path.dirname(np.__file__)
    for path in sorted(glob.glob(os.path.join(root, "numpy.libs", "*openblas*"))
                       + glob.glob(os.path.join(here, ".dylibs", "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)  # already loaded by numpy: the same handle
        except OSError:
            continue
        for set_name, get_name in _NAMES:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                setter, getter = getattr(lib, set_name), getattr(lib, get_name)
                setter.argtypes, setter.restype, getter.argtypes, getter.restype = [ctypes.c_int], None, [], ctypes.c_int
                return setter, getter
    return None


_FUNCS = _openblas()
#: whether :func:`one_blas_thread` can limit numpy's BLAS
CONTROLLABLE: bool = _FUNCS is not None


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with numpy's OpenBLAS on one thread (≈0.3 µs when it already is); a no-op for another BLAS."""
    if _FUNCS is None:
        yield
        return
    setter, getter = _FUNCS
    threads = getter()
    if threads == 1:
        yield
        return
    setter(1)
    try:
        yield
    finally:
        setter(threads)

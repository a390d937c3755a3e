"""Progress bars (tqdm) on standard error, shown only when it is a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it") -> Any:
    """A tqdm bar over ``iterable`` (or updated by hand up to ``total``); silent when stderr is not a terminal
    (pipes, CI, log files) so that output stays clean."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True,
                disable=not sys.stderr.isatty())

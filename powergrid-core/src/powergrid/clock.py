"""Time as users write it: durations (``30s``, ``15min``, ``1h``, ``1d``) and the derived tick.

Scenario files give the physics step, the episode, every agent's period and offset and
every link delay as durations. The environment advances in *ticks*: the greatest common
divisor (s) of the physics step and all those durations, so every event falls on a tick.
Ticks are internal; ``infos`` report seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

#: seconds per unit
UNITS = {"s": 1, "min": 60, "h": 3600, "d": 86400}
MAX_DURATION_S = 10 * 366 * 86400  # ten years
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|min|h|d)\s*")
EXPECTED = "a duration such as 30s, 15min, 1h or 1d (whole seconds)"


def parse_duration(value: object, *, zero: bool = False) -> int:
    """``value`` (a string ``<number><unit>``, unit s, min, h or d) in whole seconds.

    Raises ``ValueError`` with what was expected for anything else, a fraction of a second,
    zero (unless ``zero``) or more than ten years.
    """
    expected = EXPECTED + (", ≥ 0" if zero else ", > 0")
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(expected)
    seconds = float(match.group(1)) * UNITS[match.group(2)]
    if not math.isfinite(seconds) or abs(seconds - round(seconds)) > 1e-9 or seconds > MAX_DURATION_S:
        raise ValueError(expected)
    if seconds == 0 and not zero:
        raise ValueError(expected)
    return round(seconds)


def format_duration(seconds: int) -> str:
    """The shortest exact spelling of ``seconds``: ``86400`` → ``1d``, ``90`` → ``90s``."""
    for unit, size in sorted(UNITS.items(), key=lambda u: -u[1]):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def tick_seconds(durations: Iterable[int]) -> int:
    """The tick (s): the greatest common divisor of the non-zero ``durations``."""
    tick = 0
    for d in durations:
        tick = math.gcd(tick, int(d))
    if tick <= 0:
        raise ValueError("no positive duration to derive the tick from")
    return tick


__all__ = ["UNITS", "format_duration", "parse_duration", "tick_seconds"]

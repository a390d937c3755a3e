"""The slacks of a pandapower net: what sets its voltage and balances its power."""

from __future__ import annotations

from typing import Any

import numpy as np


def slack_buses(net: Any) -> list[int]:
    """Bus indices of the in-service slacks: the in-service ext_grids' buses in row order, then the in-service
    slack generators' (``gen.slack``), each bus once. Empty when nothing sets the net's voltage."""
    eg, gen = net.ext_grid, net.gen
    buses = eg.bus[eg.in_service.to_numpy(bool)].tolist()
    if len(gen) and "slack" in gen:
        buses += gen.bus[slack_flags(gen) & gen.in_service.to_numpy(bool)].tolist()
    return [int(b) for b in dict.fromkeys(buses)]


def slack_flags(gen: Any) -> np.ndarray:
    """Which rows of a net's ``gen`` table are slacks (``slack`` True; NaN or None, as a net read from a file or built
    by another tool may hold, is not)."""
    return gen["slack"].eq(True).to_numpy(bool)


__all__ = ["slack_buses", "slack_flags"]

"""How observation features are bounded and normalized: one :class:`Feature` per entry.

A feature holds raw bounds (physical units; observations are clipped to them) and a
reference and scale: with ``spaces.observation: normalized`` an agent sees
``(x − ref)/scale``, about [−1, 1] in normal operation. Protocols declare theirs with
``HorizontalProtocol.observation_features``; device features keep their own bounds.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import gymnasium
import numpy as np


@attrs.frozen
class Feature:
    """Raw bounds ``[low, high]`` (units of the feature) and the normalization ``(x − ref)/scale``."""

    low: float
    high: float
    ref: float = 0.0
    scale: float = 1.0

    @classmethod
    def from_bounds(cls, low: float, high: float) -> Feature:
        """Kept as it is when inside [−1, 1], else mapped onto it (infinite bounds cut at ±1e6)."""
        low, high = max(low, -1e6), min(high, 1e6)
        if (-1.0 <= low and high <= 1.0) or high <= low:
            return cls(low, high)
        return cls(low, high, (low + high) / 2, (high - low) / 2)


#: Energy price, $/MWh: −2,000 to 20,000 (beyond every US ISO's offer cap); seen as (p − 50)/100.
PRICE = Feature(-2000.0, 20000.0, 50.0, 100.0)
#: Bus voltage, pu: 0–2; seen as (V − 1)/0.05, ±1 at the edges of the ±5 % band.
VOLTAGE = Feature(0.0, 2.0, 1.0, 0.05)
#: A 0/1 flag, and a signed unit quantity.
FLAG = Feature(0.0, 1.0)
UNIT = Feature(-1.0, 1.0)
#: Frequency deviation, Hz: ±5; seen as Δf/0.5.
FREQUENCY_DEVIATION = Feature(-5.0, 5.0, 0.0, 0.5)


def power(scale_mw: float = 1.0) -> Feature:
    """Active or reactive power (MW, Mvar), ±10,000; seen as ``x/scale_mw`` (e.g. the zone's load)."""
    return Feature(-1e4, 1e4, 0.0, scale_mw if scale_mw > 0 else 1.0)


def space(features: Sequence[Feature]) -> gymnasium.spaces.Box:
    """The raw-unit Box of ``features``."""
    return gymnasium.spaces.Box(np.array([f.low for f in features], np.float32),
                                np.array([f.high for f in features], np.float32), dtype=np.float32)

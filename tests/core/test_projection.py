"""``clip_action``: the projection distance of an action, each entry capped at its range."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.devices import box, clip_action


@pytest.mark.parametrize(("action", "clipped", "distance"), [
    ([0.5, 1.5], [0.5, 1.5], 0.0),            # inside: kept
    ([1.25, -0.5], [1.0, 0.0], 0.75),         # outside by less than the range: the move
    ([1e30, 0.5], [1.0, 0.5], 2.0),           # r40 F10: counted 1e30; now the range, as ±inf
    ([-5.0, 7.0], [-1.0, 3.0], 2.0 + 3.0),    # further out than the range: the range
    ([np.inf, -np.inf], [0.0, 1.5], 2.0 + 3.0),
    ([np.nan, 3.0], [0.0, 3.0], 2.0),
])
def test_each_entry_counts_at_most_its_range(action, clipped, distance):
    space = box([-1.0, 0.0], [1.0, 3.0])  # ranges 2 and 3
    got, d = clip_action(np.array(action), space)
    assert got.tolist() == clipped
    assert d == distance

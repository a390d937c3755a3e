"""The pack's shared helpers for reading actions, drawing initial states and writing observations."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.devices import box
from powergrid_devices.actions import observation, uniform


@pytest.mark.parametrize(("low", "high"), [(-0.2, 0.2), (0.0, 0.3), (0.1, 0.1), (-3.7e-5, 1.9e3), (2.5, 7.25)])
def test_uniform_draws_what_generator_uniform_draws(low: float, high: float) -> None:
    """The same floats, bit for bit, and the stream left in the same place (scalar calls and ``size=2``)."""
    for seed in range(50):
        ours, numpys = np.random.default_rng(seed), np.random.default_rng(seed)
        drawn = [uniform(ours, low, high) for _ in range(5)]
        expected = [numpys.uniform(low, high) for _ in range(3)] + numpys.uniform(low, high, size=2).tolist()
        assert [x.hex() for x in drawn] == [x.hex() for x in expected]
        assert all(type(x) is float for x in drawn)
        assert ours.random() == numpys.random()


def test_observation_replaces_nan_by_zero_then_clips_to_the_bounds() -> None:
    space = box([0.5, -1.0, 0.0, 0.0], [1.5, 1.0, 1.0, 2.0])
    obs = observation(space, [float("nan"), float("nan"), np.float64(1.7), -0.25])
    assert obs.dtype == np.float32
    assert obs.tolist() == [0.5, 0.0, 1.0, 0.0]
    assert observation(space, [1.0, True, 0.1, 2.0]).tolist() == [1.0, 1.0, np.float32(0.1), 2.0]

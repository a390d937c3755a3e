"""The pack's shared helpers for reading actions, drawing initial states and writing observations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from powergrid.devices import box
from powergrid_devices.actions import BoxAction, BoxRows, StepAction, observation, uniform


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


def test_box_action_read_clips_replaces_non_finite_entries_and_sums_the_distance() -> None:
    act = BoxAction(["p", "q"], [-2.0, -1.0], [3.0, 1.0], [0.5, 0.0])
    assert act.read([1.0, -0.25]) == ([1.0, -0.25], 0.0)
    assert act.read(np.array([5.0, -4.0], np.float32)) == ([3.0, -1.0], 2.0 + 2.0)  # q's move 3 capped at its range 2
    for bad in (math.nan, math.inf, -math.inf):  # the default, at the width of the range
        assert act.read([bad, 0.5]) == ([0.5, 0.5], 5.0)
    assert act.read(None) == ([0.5, 0.0], 0.0)
    assert act.read([1e30, -0.25]) == ([3.0, -0.25], 5.0)  # a finite move counts at most the range, as NaN/inf do
    assert act.read([-9.0, 2.5]) == ([-2.0, 1.0], 5.0 + 1.5)


def test_box_rows_read_as_each_box_action_does() -> None:
    act = BoxAction(["p", "q"], [-2.0, -1.0], [3.0, 1.0], [0.5, 0.0])
    a = np.array([[1.0, -0.25], [math.inf, 7.0], [-9.0, math.nan], [1e30, -0.5], [-12.0, 0.0]])
    values, distance = BoxRows([act] * len(a)).read(a)
    for row, v, d in zip(a, values, distance):
        assert (v.tolist(), float(d)) == act.read(row)


@pytest.mark.parametrize(("low", "high"), [([-math.inf], [1.0]), ([0.0], [math.inf])])
def test_box_action_bounds_must_be_finite(low: list[float], high: list[float]) -> None:
    with pytest.raises(ValueError, match="action bounds must be finite"):
        BoxAction(["u"], low, high, [0.0])


def test_step_action_read_rounds_clips_and_caps_the_distance_at_the_range() -> None:
    """r40b F3: a finite move counted in full (1e30 counted 1e30; -7 on [-2, 2] counted 5, the range is 4)."""
    act = StepAction(-2, 2, "box")
    assert act.read(np.array([0.75]), 0) == (1, 0.25)
    assert act.read(None, 1) == (1, 0.0)
    assert act.read([-7.0], 0) == (-2, 4.0)
    assert act.read([1e30], 0) == (2, 4.0)
    assert act.read([2.4], 0) == (2, pytest.approx(0.4))  # inside the range: the rounding, below the cap
    for bad in (math.nan, math.inf):  # held, at the range
        assert act.read([bad], -1) == (-1, 4.0)

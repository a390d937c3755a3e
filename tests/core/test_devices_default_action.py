"""The core's ``Device.default_action``: zeros clipped to a Box's bounds (physical units, float64, the action's
shape), empty for a space that is not a Box; a subclass's override is what the core property gives."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

from powergrid.devices import Device, box, clip_action


def _device(space: gymnasium.spaces.Space) -> Device:
    device = Device(None, 1.0)
    device.action_space = space
    return device


@pytest.mark.parametrize(("low", "high", "want"), [
    ([-1.0, 0.0], [1.0, 2.0], [0.0, 0.0]),  # 0 inside: 0 (not the midpoint, 0 and 1)
    ([0.1], [0.3], [np.float32(0.1)]),  # 0 below the range: its low bound (as float32 bounds hold it)
    ([-0.3], [-0.1], [np.float32(-0.1)]),  # 0 above it: its high bound
])
def test_zeros_clipped_to_the_bounds(low, high, want) -> None:
    default = _device(box(low, high)).default_action
    assert default.dtype == np.float64 and default.shape == (len(low),)
    assert default.tolist() == [float(w) for w in want]
    assert _device(box(low, high)).action_space.contains(default.astype(np.float32))


def test_a_space_that_is_not_a_box_or_an_empty_box_has_no_entries() -> None:
    assert _device(gymnasium.spaces.Discrete(5, start=-2)).default_action.shape == (0,)
    assert Device(None, 1.0).default_action.shape == (0,)  # the base's empty action space


def test_a_pack_device_gives_its_own_default_through_the_core_property() -> None:
    pytest.importorskip("powergrid_devices")
    from powergrid.params import build_params
    from powergrid.plugins import get_registry

    cls = get_registry().load("device", "DG")
    dg = cls(build_params(cls.Params, {"p_min_mw": 0.2, "p_max_mw": 0.6}), 1.0)
    assert isinstance(dg, Device)
    assert dg.default_action.tolist() == [0.2]  # its p_min_mw; the base's rule would give the bound 0.2 too
    cls = get_registry().load("device", "PV")
    pv = cls(build_params(cls.Params, {"p_max_mw": 0.3}), 1.0)
    assert pv.default_action.tolist() == [1.0]  # all its available power; the base's rule gives 0 (curtailed)
    assert Device.default_action.fget(pv).tolist() == [0.0]


def test_clip_action_puts_a_given_default_in_place_of_a_non_finite_entry() -> None:
    space = box([0.15, 0.0, 0.0], [0.6, 1.0, 1.0])
    action = [np.nan, 5.0, 0.25]
    clipped, distance = clip_action(action, space, [0.15, 0.0, 0.5])
    assert clipped.tolist() == [0.15, 1.0, 0.25]  # 0.15 as given, not the float32 bound 0.15000000596
    assert distance == pytest.approx(0.45 + 1.0)  # the NaN's range and 4 MW beyond 1 capped at the range
    clipped, same = clip_action(action, space)  # without one: the midpoint
    assert clipped[0] == pytest.approx(0.375) and same == distance

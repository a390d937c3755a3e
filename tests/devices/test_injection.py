"""``Device.injection_mw(action, ctx)``: the ``p_mw`` a step under ``action`` would set, predicted without changing the
device (the setpoint rule's PCC headroom reads it instead of stepping a copy)."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import gymnasium
import numpy as np
import pytest

from powergrid.devices import Device, StepContext
from tests.devices.helpers import DEVICES, at, context, device_class, make

#: (type, raw params): every pack device with an action, with variants that reach its limits (V2G, a small tank,
#: a backlog, a COP model, a reactive action, a boxed shunt).
CASES: list[tuple[str, dict[str, Any]]] = [
    ("PV", {"p_max_mw": 0.2}),
    ("PV", {"p_max_mw": 0.2, "s_max_mva": 0.25, "model": "irradiance"}),
    ("Wind", {"p_rated_mw": 1.0, "s_max_mva": 1.1}),
    ("FlexibleLoad", {}),
    ("FlexibleLoad", {"backlog_init_spread": 1.0, "backlog_max_mwh": 0.02, "shift_max_mw": 0.1}),
    ("HVAC", {"t_init_spread": 4.0}),
    ("EVCharger", {"n_ports": 6, "arrival_mean_h": 0.5, "arrival_std_h": 3.0, "dwell_mean_h": 3.0}),
    ("EVCharger", {"n_ports": 6, "v2g": True, "arrival_mean_h": 0.5, "arrival_std_h": 3.0, "dwell_mean_h": 3.0}),
    ("Electrolyzer", {}),
    ("Electrolyzer", {"tank_capacity_kg": 5.0, "tank_init": 0.9}),
    ("FuelCell", {}),
    ("FuelCell", {"tank_capacity_kg": 5.0, "tank_init": 0.1}),
    ("HeatPump", {"t_init_spread": 8.0}),
    ("HeatPump", {"cop_model": "linear", "t_init_c": 54.5}),
    ("WaterHeater", {"t_init_spread": 10.0}),
    ("CHP", {}),
    ("Shunt", {"n_steps": 4, "q_step_mvar": 0.1}),
    ("Shunt", {"n_steps": 4, "action": "box", "kind": "reactor"}),
    ("OLTC", {}),
]


def _actions(space: gymnasium.Space, rng: np.random.Generator) -> list[Any]:
    """A random action, and extremes: NaN, ±inf, 1e12, each bound, out of bounds (one entry or all)."""
    if isinstance(space, gymnasium.spaces.Discrete):
        return [int(rng.integers(space.n)), 0, space.n - 1, -1, space.n + 3]
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    out = [rng.uniform(low, high), rng.uniform(low - (high - low), high + (high - low)), low, high]
    for value in (np.nan, np.inf, -np.inf, 1e12, -1e12):
        out.append(np.full(low.shape, value))
        one = rng.uniform(low, high)
        one[rng.integers(len(one))] = value
        out.append(one)
    return [a.astype(np.float32) if rng.uniform() < 0.5 else a for a in out]


def _dry_run(device: Device, action: Any, ctx: StepContext) -> float:
    probe = copy.deepcopy(device)
    probe.step(action, ctx)
    return float(probe.p_mw)


@pytest.mark.parametrize("kind,raw", CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CASES)])
def test_injection_is_the_stepped_p_mw_and_changes_nothing(kind: str, raw: dict[str, Any]) -> None:
    ctx = context(96, temperature=0.0) if kind in ("HeatPump", "CHP") else context(96)
    rng = np.random.default_rng(7)
    checked = 0
    for seed in range(3):
        device = make(kind, seed=seed, **raw)
        for t in range(0, 96, 1 + seed):  # the first tick (EVs plugging in), then states after random steps
            at(ctx, t)
            for action in _actions(device.action_space, rng):
                before = pickle.dumps(device)
                predicted = device.injection_mw(action, ctx)
                assert pickle.dumps(device) == before, f"{kind} changed by injection_mw at tick {t}"
                expected = _dry_run(device, action, ctx)
                assert predicted == expected, f"{kind} at tick {t} under {action}: {predicted} != {expected}"
                checked += 1
            device.step(_actions(device.action_space, rng)[int(rng.integers(2))], ctx)
    assert checked > 500


def test_every_pack_device_with_an_action_is_predicted_without_a_dry_run() -> None:
    """Each pack device with an action has ``injection_mw`` or (ESS, DG) a ``feasible_range``, and is in
    :data:`CASES`; the GridConnection takes none."""
    for name in DEVICES:
        cls = device_class(name)
        device = make(name)
        if device.action_space is None or getattr(device.action_space, "shape", None) == (0,):
            continue
        assert hasattr(cls, "injection_mw") or hasattr(cls, "feasible_range"), name
        assert name in {k for k, _ in CASES} or hasattr(cls, "feasible_range"), name


@pytest.mark.parametrize("kind,raws", [
    ("PV", [{"p_max_mw": 0.1}, {"p_max_mw": 0.3, "model": "irradiance"}, {"p_max_mw": 0.05}]),
    ("Wind", [{"p_rated_mw": 1.0, "s_max_mva": 1.1}, {"p_rated_mw": 0.4, "s_max_mva": 0.5}]),
])
def test_bound_kernel_devices_predict_their_kernels_p_mw(kind: str, raws: list[dict[str, Any]]) -> None:
    """A device bound to its kernel (state in the kernel's arrays) predicts what the kernel's step sets."""
    devices = [make(kind, seed=i, **raw) for i, raw in enumerate(raws * 2)]
    kernel = type(devices[0]).Kernel(devices)
    kernel.load()
    ctx = context(48)
    ctx.profiles["speed"] = np.random.default_rng(5).uniform(0.0, 30.0, 48)
    rng = np.random.default_rng(3)
    for t in range(48):
        at(ctx, t)
        actions = np.array([_actions(d.action_space, rng)[int(rng.integers(14))] for d in devices], np.float64)
        predicted = [d.injection_mw(a, ctx) for d, a in zip(devices, actions)]
        assert predicted == [_dry_run(d, a, ctx) for d, a in zip(devices, actions)]
        kernel.step(actions, np.full(len(devices), 50.0), ctx)
        assert predicted == kernel.p_mw.tolist()

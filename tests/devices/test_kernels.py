"""Array kernels (DeviceBatch) against the per-object Device.step, for every device type, to 1e-12."""

from __future__ import annotations

import copy

import gymnasium
import numpy as np
import pytest

from powergrid.batch import DeviceBatch
from powergrid.solvers.base import PowerFlowResult

from .helpers import DEVICES, at, context, device_class, make

STEPS = 24
EXTREMES = (np.nan, np.inf, -np.inf, 1e300, -1e300, 0.0)

#: parameter variants per type (mixed in one batch: different bounds, with and without a Q action)
VARIANTS = {
    "ESS": [{}, {"s_max_mva": 0.8, "p_max_mw": 0.6}, {"self_discharge": 0.02, "soc_init": 0.15},
            {"soc_init_spread": 0.3, "capacity_mwh": 0.5, "eta_charge": 0.9, "degradation_cost": 12.0}],
    "PV": [{}, {"s_max_mva": 0.12}, {"model": "irradiance", "p_max_mw": 0.3}],
    "Wind": [{}, {"s_max_mva": 1.2, "p_rated_mw": 1.1}],
    "GridConnection": [{}, {"sell_ratio": 0.5, "import_limit_mw": 0.2, "export_limit_mw": 0.1, "demand_charge": 9.0}],
}


def instances(name: str, n: int = 12) -> list:
    variants = VARIANTS.get(name, [{}])
    return [make(name, seed=i, **variants[i % len(variants)]) for i in range(n)]


def draw(space: gymnasium.spaces.Space, rng: np.random.Generator):
    """A random action: inside and outside the bounds, NaN/inf/huge entries, or None."""
    if rng.random() < 0.1:
        return None
    if not isinstance(space, gymnasium.spaces.Box):
        return space.sample()
    lo, hi = space.low.astype(float), space.high.astype(float)
    a = rng.uniform(lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo))
    wild = rng.random(a.shape) < 0.2
    a[wild] = rng.choice(EXTREMES, size=int(wild.sum()))
    return a


def outputs(d) -> np.ndarray:
    return np.array([d.p_mw, d.q_mvar, d.cost, d.safety, d.projection] + list(d.state_dict().values()), float)


def assert_same(per_object, batched, what: str) -> None:
    for k, (a, b) in enumerate(zip(per_object, batched)):
        np.testing.assert_allclose(outputs(b), outputs(a), rtol=1e-12, atol=1e-12, equal_nan=True,
                                   err_msg=f"{what}, device {k}")


@pytest.mark.parametrize("name", DEVICES)
def test_kernel_equals_per_object_step(name):
    devices = instances(name)
    twins = copy.deepcopy(devices)
    batch = DeviceBatch(twins)
    if name in VARIANTS:
        assert all(kernel is not None for _, kernel in batch.groups), f"{name} has an array kernel"
    rng = np.random.default_rng(42)
    ctxs = [context() for _ in devices]
    for t in range(STEPS):
        step_ctxs = [at(c, (t * 7 + 5 * i) % 96) for i, c in enumerate(ctxs)]
        for c in step_ctxs:
            c.price = float(rng.choice([c.price, -c.price, 0.0]))
        actions = [draw(d.action_space, rng) for d in devices]
        for d, a, c in zip(devices, actions, step_ctxs):
            d.step(copy.deepcopy(a), c)
        batch.step(actions, step_ctxs)
        assert_same(devices, twins, f"{name} step {t}")
        if name == "GridConnection":  # the settlement after the flow: imports and exports, NaN when diverged
            results = []
            for _ in devices:
                r = PowerFlowResult.failed(1, 1, 1, 1)
                r.ext_grid_p_mw = np.array([rng.choice([np.nan, rng.uniform(-2, 2), 0.0])])
                results.append(r)
            for d, r, c in zip(devices, results, step_ctxs):
                d.settle(r, c)
            batch.settle(results, step_ctxs)
            assert_same(devices, twins, f"{name} settle {t}")


def test_wrong_action_size_names_the_entries():
    batch = DeviceBatch([make("ESS"), make("ESS", seed=1)])
    with pytest.raises(ValueError, match=r"expected an action of 1 values \(p\), got 3"):
        batch.step([np.zeros(1), np.zeros(3)], [context(), context()])


def test_types_without_a_kernel_step_per_object():
    assert getattr(device_class("HVAC"), "Kernel", None) is None
    batch = DeviceBatch(instances("HVAC", 3) + instances("ESS", 3))
    kinds = {type(d).__name__: kernel for idx, kernel in batch.groups for d in [batch.devices[idx[0]]]}
    assert kinds["HVAC"] is None and kinds["ESS"] is not None

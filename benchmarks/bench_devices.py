"""Per-device step time: the array kernel (``DeviceBatch``) against the per-object ``Device.step`` loop.

Run: ``python benchmarks/bench_devices.py [--steps N] [--counts 1,10,100,1000]``.

For each device type with a kernel and each instance count, the median over ``--steps``
steps of one batch step divided by the count (µs per device), with random actions inside
the bounds; the per-object column steps the same devices one after another.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import numpy as np

from powergrid.batch import DeviceBatch
from powergrid.devices import StepContext
from powergrid.params import build_params
from powergrid.plugins import get_registry
from powergrid.profiles import PROFILE_NAMES, daily_value

TYPES = {"ESS": {"s_max_mva": 0.8}, "DG": {"commitment": True, "pf_min": 0.9}, "PV": {"s_max_mva": 0.12},
         "Wind": {}, "GridConnection": {}}


def devices(name: str, n: int) -> list:
    cls = get_registry().load("device", name)
    out = []
    for i in range(n):
        d = cls(build_params(cls.Params, TYPES[name]), 0.25)
        d.reset(np.random.default_rng(i))
        out.append(d)
    return out


def step_each(objects: list, actions: list, ctxs: list) -> None:
    for d, a, c in zip(objects, actions, ctxs):
        d.step(a, c)


def median_us(step, actions: list, ctxs: list, steps: int) -> float:
    """Median µs per device of ``step(actions[t % 8], ctxs)``."""
    times = []
    for t in range(steps):
        t0 = time.perf_counter()
        step(actions[t % len(actions)], ctxs)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / len(ctxs) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--counts", default="1,10,100,1000")
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    hours = np.arange(96) * 0.25
    profiles = {role: daily_value(role, hours) for role in PROFILE_NAMES}
    rng = np.random.default_rng(0)
    print(f"{'type':<16}" + "".join(f"{f'object ×{n}':>13}{f'kernel ×{n}':>13}" for n in counts) + "   (µs per device)")
    for name in TYPES:
        row = f"{name:<16}"
        for n in counts:
            objects, twins = devices(name, n), devices(name, n)
            batch = DeviceBatch(twins, kernel_from=1)
            ctxs = [StepContext(0.25, profiles, tick=i % 96, hour=0.0, price=40.0 + i % 7) for i in range(n)]
            space = objects[0].action_space
            actions = [[rng.uniform(space.low, space.high) for _ in range(n)] for _ in range(8)]
            row += f"{median_us(functools.partial(step_each, objects), actions, ctxs, args.steps):>13.2f}"
            row += f"{median_us(batch.step, actions, ctxs, args.steps):>13.2f}"
        print(row)


if __name__ == "__main__":
    main()

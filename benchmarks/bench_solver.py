"""Median solve time of FastSolver (lightsim2grid and numpy backends) vs PandapowerSolver, per template.

Run: ``python benchmarks/bench_solver.py [--steps N] [--pp-steps N] [--templates a,b]``.

Each step draws new independent injections (loads scaled by U(0.5, 1.2), sgens by U(0, 1)), so
the warm start helps little (≈3 Newton iterations); the "smooth" column is a time-series-like
sequence (every injection drifts ±1 % per step, 1–2 iterations) on the first backend.
Times are medians (the machine is shared and noisy); the construction time
(one ``pandapower.runpp`` plus index building) is reported too, and for templates with a
tap changer (the IEEE regulators) the median time of a tap move alone and of a tap move
plus the solve that follows (the first tap-changing transformer, stepping ±1 around its
position; the move patches the admittance entries in place, no recompile).

A second table times :class:`~powergrid.solvers.batched.BatchedSolver` (``--copies``, default
1,4,16,64 copies of the template, each with its own draws): the median time of one batched
call divided by the number of copies (µs per grid, results included), next to the fast
solver's single solve on the first backend.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core: BLAS threads only contend on the small batched products

import argparse
import copy
import statistics
import time
import warnings

import numpy as np

from powergrid.networks import TEMPLATES
from powergrid.solvers.base import Injections
from powergrid.solvers.batched import BatchedSolver
from powergrid.solvers.fast import FastParams, FastSolver
from powergrid.solvers.newton import lightsim2grid_available
from powergrid.solvers.pandapower_solver import PandapowerSolver


def draws(net, n: int, seed: int = 0) -> list[Injections]:
    rng = np.random.default_rng(seed)
    lp, lq = net.load.p_mw.to_numpy(float), net.load.q_mvar.to_numpy(float)
    sp_, sq = net.sgen.p_mw.to_numpy(float), net.sgen.q_mvar.to_numpy(float)
    return [Injections(lp * rng.uniform(0.5, 1.2, lp.size), lq * rng.uniform(0.5, 1.2, lq.size),
                       sp_ * rng.uniform(0.0, 1.0, sp_.size), sq * rng.uniform(0.0, 1.0, sq.size))
            for _ in range(n)]


def smooth(net, n: int, seed: int = 0) -> list[Injections]:
    """A time-series-like sequence: every injection drifts by ±1 % per step (fewer NR iterations)."""
    rng = np.random.default_rng(seed)
    base = draws(net, 1, seed)[0]
    out, f = [], [np.ones_like(a) for a in (base.load_p_mw, base.load_q_mvar, base.sgen_p_mw, base.sgen_q_mvar)]
    for _ in range(n):
        f = [np.clip(x * rng.uniform(0.99, 1.01, x.size), 0.5, 1.2) for x in f]
        out.append(Injections(base.load_p_mw * f[0], base.load_q_mvar * f[1], base.sgen_p_mw * f[2],
                              base.sgen_q_mvar * f[3]))
    return out


def median_solve(solver, injections: list[Injections]) -> tuple[float, int]:
    times, failed = [], 0
    for inj in injections:
        t0 = time.perf_counter()
        res = solver.solve(inj)
        times.append(time.perf_counter() - t0)
        failed += not res.converged
    return statistics.median(times), failed


def median_tap_move(solver, net, injections: list[Injections]) -> tuple[float, float]:
    """Median seconds of ``set_trafo_tap`` alone and of ``set_trafo_tap`` + ``solve`` (NaN without a tap changer)."""
    taps = np.flatnonzero(np.isfinite(net.trafo.tap_pos.to_numpy(float)) & net.trafo.tap_min.notna().to_numpy())
    if not taps.size:
        return float("nan"), float("nan")
    row, pos = int(taps[0]), int(net.trafo.tap_pos.iloc[taps[0]])
    move, both = [], []
    for k, inj in enumerate(injections):
        t0 = time.perf_counter()
        solver.set_trafo_tap(row, pos + (k % 2))
        t1 = time.perf_counter()
        solver.solve(inj)
        t2 = time.perf_counter()
        move.append(t1 - t0)
        both.append(t2 - t0)
    return statistics.median(move), statistics.median(both)


def median_batched(net, copies: int, steps: int, backend: str) -> float:
    """Median seconds per grid of a ``BatchedSolver`` call over ``copies`` copies."""
    solvers = [FastSolver(copy.deepcopy(net), FastParams(backend=backend)) for _ in range(copies)]
    batch = BatchedSolver(solvers)
    per_copy = [draws(net, steps, seed=c) for c in range(copies)]
    times = []
    for k in range(steps):
        step = [d[k] for d in per_copy]
        t0 = time.perf_counter()
        batch.solve(step)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[min(10, steps // 2):]) / copies


def batched_table(names: list[str], counts: list[int], steps: int, backend: str) -> None:
    print(f"\nBatchedSolver, µs per grid (single fast/{backend} solve for comparison)")
    header = f"{'template':<12}{'fast':>10}" + "".join(f"{f'×{n}':>10}" for n in counts)
    print(header)
    print("-" * len(header))
    for name in names:
        try:
            net = TEMPLATES[name]()
        except NotImplementedError:
            continue
        single, _ = median_solve(FastSolver(copy.deepcopy(net), FastParams(backend=backend)), draws(net, steps))
        row = [median_batched(net, n, max(20, steps // n), backend) for n in counts]
        print(f"{name:<12}{single * 1e6:>10.1f}" + "".join(f"{t * 1e6:>10.1f}" for t in row))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000, help="fast-solver steps per template and backend")
    ap.add_argument("--pp-steps", type=int, default=40, help="pandapower steps per template")
    ap.add_argument("--templates", default="", help="comma-separated subset of templates")
    ap.add_argument("--copies", default="1,4,16,64", help="copy counts for the BatchedSolver table ('' to skip)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    names = [n for n in (args.templates.split(",") if args.templates else TEMPLATES)]
    backends = (["lightsim2grid"] if lightsim2grid_available() else []) + ["numpy"]
    header = (f"{'template':<12}{'buses':>6}  " + "".join(f"{'fast/' + b:>20}" for b in backends)
              + f"{'smooth/' + backends[0][:5]:>16}" + f"{'pandapower':>14}" + "".join(f"{'ratio ' + b[:5]:>13}" for b in backends)
              + f"{'build':>10}{'tap move':>12}{'tap+solve':>12}")
    print(header)
    print("-" * len(header))
    for name in names:
        try:
            net = TEMPLATES[name]()
        except NotImplementedError:
            print(f"{name:<12} (not implemented yet)")
            continue
        inj = draws(net, args.steps)
        fast_t, build_t, notes = {}, 0.0, []
        move_t = both_t = float("nan")
        for b in backends:
            t0 = time.perf_counter()
            solver = FastSolver(copy.deepcopy(net), FastParams(backend=b))
            build_t = time.perf_counter() - t0
            if solver.backend != b:
                notes.append(f"{b}: delegated to {solver.backend}")
            median_solve(solver, inj[:20])  # warm up (imports, first factorisation)
            fast_t[b], failed = median_solve(solver, inj)
            if b == backends[0]:
                smooth_t, _ = median_solve(solver, smooth(net, args.steps))
            if failed:
                notes.append(f"{b}: {failed}/{len(inj)} steps did not converge")
            if b == backends[0]:
                move_t, both_t = median_tap_move(solver, net, smooth(net, min(args.steps, 500)))
        ref = PandapowerSolver(copy.deepcopy(net))
        pp_t, failed = median_solve(ref, inj[: args.pp_steps])
        if failed:
            notes.append(f"pandapower: {failed}/{args.pp_steps} steps did not converge")
        row = (f"{name:<12}{len(net.bus):>6}  " + "".join(f"{fast_t[b] * 1e6:>17.1f} µs" for b in backends)
               + f"{smooth_t * 1e6:>13.1f} µs" + f"{pp_t * 1e3:>11.1f} ms" + "".join(f"{pp_t / fast_t[b]:>12.0f}×" for b in backends)
               + f"{build_t * 1e3:>7.1f} ms{move_t * 1e6:>9.1f} µs{both_t * 1e6:>9.1f} µs")
        print(row + ("   [" + "; ".join(notes) + "]" if notes else ""))
    if args.copies:
        batched_table(names, [int(n) for n in args.copies.split(",")], args.steps, backends[0])


if __name__ == "__main__":
    main()

"""Vector env benchmark: env-steps/s of ``VectorPowerGridEnv`` at 1, 4, 16 and 64 copies, before and after.

Run with ``nox -s bench`` or ``python benchmarks/bench_vector.py [--quick] [--cpu-time] [--before COMMIT]``
(``--cpu-time``: every timing is the CPU time of its process, for a machine shared with other jobs).
``configs/ieee34_3mg.yaml`` (3 learned GridAgents, 12 devices, two regulators under automatic
tap control), random actions (uniform in each Box), one process (one core), episodes auto-reset.

- ``env-steps/s``: copies × vector steps / s, median of ``--runs`` runs after a warm-up;
- ``before``: the same measurement of the vector env at ``--before`` (default 348340d: copies
  stepped one after another, each solving its own flow), in a subprocess on that commit's
  sources (``git archive`` into a temporary folder); its runs alternate with the "after" runs, so
  both see the same load of a shared machine;
- ``per runpp``: env-steps in the time of one ``pandapower.runpp(case33bw, lightsim2grid=False)``,
  the median of runs measured before and between the sizes (the issue's target is ≥ 500 at 16 copies);
- ``µs/env-step`` by stage (after, 16 and 64 copies): each copy's step up to the flow (actions, protocols,
  device physics, injections), the flows (fixed point and regulator rounds), each copy's step from
  the flow (accept, settle, cost, rewards, observations, infos), the auto-resets; the flows once
  batched and once one copy after another (each its own Newton–Raphson), in the same process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core: BLAS threads only contend on the small batched products
import bench_env  # after the thread setting (it imports numpy)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "ieee34_3mg.yaml"
COPIES = (1, 4, 16, 64)
STAGE_COPIES = (16, 64)  # the sizes whose stages are timed, flows batched and one by one
SOURCES = ("powergrid-core/src", "powergrid-devices/src", "powergrid-protocols/src", "powergrid-datasets/src")

#: the timer of every measurement: wall time, or with ``--cpu-time`` this process's CPU time (on a machine
#: shared with other jobs the CPU time of a single-threaded run is what a quiet machine's wall time would be)
clock = time.perf_counter


def use_cpu_time(cpu: bool) -> None:
    global clock
    clock = time.process_time if cpu else time.perf_counter


def runpp_seconds(runs: int = 9) -> float:
    """The reference ``runpp`` (:func:`bench_env.runpp_seconds`) timed with this module's clock."""
    return bench_env.runpp_seconds(runs, timer=clock)


def _actions(venv, count: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    n = venv.num_envs
    return [{a: rng.uniform(venv.action_space(a).low, venv.action_space(a).high,
                            size=(n, *venv.action_space(a).shape)).astype(np.float32)
             for a in venv.possible_agents} for _ in range(count)]


def timed_run(cache: dict[int, Any], n: int, steps: int) -> float:
    """Env-steps/s of one run of ``steps`` vector steps of ``n`` copies (built, reset and warmed up at first use)."""
    from powergrid.vector import VectorPowerGridEnv

    if n not in cache:
        venv = VectorPowerGridEnv(CONFIG, n)
        acts = _actions(venv, 16, np.random.default_rng(0))
        venv.reset(seed=0)
        for k in range(max(5, steps // 5)):
            venv.step(acts[k % 16])
        cache.clear()  # one size at a time
        cache[n] = venv, acts
    venv, acts = cache[n]
    t0 = clock()
    for k in range(steps):
        venv.step(acts[k % 16])
    return n * steps / (clock() - t0)


def serve(cpu: bool = False) -> None:
    """The 'before' process: for each line ``n steps`` on stdin, print :func:`timed_run`'s env-steps/s."""
    use_cpu_time(cpu)
    cache: dict[int, Any] = {}
    for line in sys.stdin:
        n, steps = map(int, line.split())
        print(timed_run(cache, n, steps), flush=True)


def stage_times(n: int, steps: int, batched: bool = True) -> dict[str, float]:
    """µs per env-step in each stage of ``VectorPowerGridEnv.step_arrays``: its own calls of each copy's
    ``_before_flow``, of ``_flows``, of each copy's ``_after_flow`` and auto-reset ``_reset``, timed through
    wrappers on those calls (≈ 0.2 µs each), and the rest of the step (its own work: actions split into rows,
    output arrays, infos); ``batched=False``: each copy solves its own flows (Newton–Raphson
    and its own regulator rounds)."""
    from powergrid.vector import VectorPowerGridEnv

    venv = VectorPowerGridEnv(CONFIG, n, batched_flows=batched)
    acts = _actions(venv, 16, np.random.default_rng(0))
    venv.reset(seed=0)
    for k in range(max(5, steps // 5)):  # warm-up: each copy's tap tables and caches are built at first use
        venv.step_arrays(acts[k % 16])
    spent = dict.fromkeys(("to the flow", "flows", "from the flow", "auto-reset", "the vector step's own"), 0.0)

    def timed(stage: str, call: Any) -> Any:
        def run(*args: Any) -> Any:
            t0 = clock()
            out = call(*args)
            spent[stage] += clock() - t0
            return out
        return run

    # instance attributes shadow the methods for this benchmark's env only
    venv._flows = timed("flows", venv._flows)
    for env in venv.envs:
        env._before_flow = timed("to the flow", env._before_flow)
        env._after_flow = timed("from the flow", env._after_flow)
        env._reset = timed("auto-reset", env._reset)
    t0 = clock()
    for k in range(steps):
        venv.step_arrays(acts[k % 16])
    spent["the vector step's own"] = clock() - t0 - sum(spent.values())  # rows of actions, output arrays, infos
    return {key: 1e6 * s / (n * steps) for key, s in spent.items()}


def rates(commit: str, copies: tuple[int, ...], env_steps: int, runs: int
          ) -> tuple[dict[int, float], dict[int, float], float]:
    """Median env-steps/s after (this checkout) and before (``commit``'s sources, in a subprocess), their runs
    interleaved (a shared machine's load drifts), and the median ``runpp`` seconds measured between them."""
    after: dict[int, list[float]] = {n: [] for n in copies}
    before: dict[int, list[float]] = {n: [] for n in copies}
    ref = [runpp_seconds()]
    cache: dict[int, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_vector_") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, *SOURCES], check=True,
                                 capture_output=True).stdout
        archive_path = Path(tmp) / "src.tar"
        archive_path.write_bytes(archive)
        with tarfile.open(archive_path) as tar:
            tar.extractall(tmp, filter="data")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(Path(tmp) / s) for s in SOURCES))
        code = (f"import sys, warnings; warnings.simplefilter('ignore'); sys.path.insert(0, {str(ROOT / 'benchmarks')!r});"
                f"import bench_vector as b, powergrid; assert powergrid.__file__.startswith({tmp!r}), powergrid.__file__;"
                f"b.serve({clock is time.process_time})")
        with subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) as worker:
            assert worker.stdin is not None and worker.stdout is not None
            for n in copies:
                steps = max(10, env_steps // n)
                for _ in range(runs):
                    after[n].append(timed_run(cache, n, steps))
                    worker.stdin.write(f"{n} {steps}\n")
                    worker.stdin.flush()
                    before[n].append(float(worker.stdout.readline()))
                ref.append(runpp_seconds(3))
            worker.stdin.close()
    return ({n: statistics.median(r) for n, r in after.items()}, {n: statistics.median(r) for n, r in before.items()},
            statistics.median(ref))


def profile(n: int, steps: int, top: int = 25) -> None:
    from powergrid.vector import VectorPowerGridEnv

    venv = VectorPowerGridEnv(CONFIG, n)
    acts = _actions(venv, 16, np.random.default_rng(0))
    venv.reset(seed=0)
    bench_env.print_profile(lambda k: venv.step(acts[k % 16]), steps, top)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per size (median)")
    parser.add_argument("--before", default="348340d", help="the commit measured as 'before'")
    parser.add_argument("--profile", type=int, metavar="N", help="cProfile a vector env of N copies instead")
    parser.add_argument("--cpu-time", action="store_true", help="time with each process's CPU time (a loaded machine)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    use_cpu_time(args.cpu_time)
    env_steps = 600 if args.quick else 3000
    if args.profile:
        profile(args.profile, max(10, env_steps // args.profile))
        return
    after, before, ref = rates(args.before, COPIES, env_steps, args.runs)
    stages = {(n, mode): stage_times(n, max(10, env_steps // n), batched=mode == "batched")
              for n in STAGE_COPIES for mode in ("batched", "one by one")}
    print(f"reference: pandapower.runpp(case33bw, lightsim2grid=False) = {ref * 1e3:.1f} ms\n")
    header = (f"| {'copies':>6} | {'before env-steps/s':>18} | {'before per runpp':>16} | {'after env-steps/s':>17} | "
              f"{'after per runpp':>15} | {'after/before':>12} |")
    print(header)
    print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
    for n in COPIES:
        b = before[n]
        print(f"| {n:>6} | {b:>18.0f} | {b * ref:>16.0f} | {after[n]:>17.0f} | {after[n] * ref:>15.0f} | "
              f"{after[n] / b:>12.2f} |", flush=True)
    print("\nafter, µs per env-step by stage:")
    for (n, mode), times in stages.items():
        print(f"  {n} copies, flows {mode}: " + ", ".join(f"{k} {v:.0f}" for k, v in times.items())
              + f" (sum {sum(times.values()):.0f})")


if __name__ == "__main__":
    main()

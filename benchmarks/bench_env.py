"""Environment step benchmark: steps/s, step time vs the bare solve, memory per agent, pandapower baseline.

Run with ``nox -s bench`` or ``python benchmarks/bench_env.py [--quick] [--before COMMIT] [--profile NAME] [--stages]``.
Scenarios are generated programmatically (dict configs for
``MultiAgentPowerGridEnv.from_config``), with random actions (uniform in each Box):

==========  ==========  ====================================================================
name        network     composition
==========  ==========  ====================================================================
1 agent     ieee34_3mg  1 learned ESS device agent (1 agent)
10 agents   ieee34_3mg  10 learned GridAgents (setpoint), each over an ESS, a DG and a PV
                        (40 agents: 10 GridAgents + 30 devices)
100 agents  ieee123     25 learned GridAgents (setpoint) × (ESS, DG, PV) = 100 agents
300 agents  ieee123     75 learned GridAgents (setpoint) × (ESS, DG, PV) = 300 agents
==========  ==========  ====================================================================

Devices are spread evenly over the non-slack buses. Columns:

- ``steps/s``: median of ≥ 5 runs of ``N`` steps after a warm-up (episodes auto-reset);
- ``step/solve``: median step time over the median bare ``FastSolver.solve`` time on the same net
  and injections (warm-started, like in the env);
- ``NR/step``: Newton–Raphson solves per step: the flow and the regulators' re-solves after their tap moves
  (the bare solve is one of them, so ``step/solve`` cannot fall below it);
- ``KB/agent``: tracemalloc of the env after a reset and a few steps, minus the network with its
  compiled solver alone, over the number of agents;
- ``× pandapower``: steps/s over the same scenario with ``solver="pandapower"`` (runpp each step);
- ``vector/core``: env-steps/s of a :class:`~powergrid.vector.VectorPowerGridEnv` of 8 copies in
  one process (one core).

A second table compares steps/s, step/solve and KB/agent with the same measurement on the sources of
each commit of ``--before`` (default 348340d, before the device kernels; comma-separated for several, a table
each; run in a subprocess on ``git archive`` of that commit, nothing written outside a temporary folder),
plus ``configs/ieee34_3mg.yaml`` with random actions as env steps in the time of one
``pandapower.runpp(case33bw, lightsim2grid=False)`` (the issue's target is ≥ 100),
the reference measured in the same run (median of before and after). The "after" figures are the mean of
two measurements, one before and one after the "before" commits (a shared machine's load drifts).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from powergrid.builder import build_network, build_solver
from powergrid.config import EnvConfig
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.plugins import get_registry
from powergrid.progress import progress
from powergrid.vector import VectorPowerGridEnv

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "ieee34_3mg.yaml"
SOURCES = ("powergrid-core/src", "powergrid-devices/src", "powergrid-protocols/src", "powergrid-datasets/src")

#: the timer of every measurement: wall time, or with ``--cpu-time`` this process's CPU time (on a machine
#: shared with other jobs the CPU time of a single-threaded run is what a quiet machine's wall time would be)
clock = time.perf_counter


def use_cpu_time(cpu: bool) -> None:
    global clock
    clock = time.process_time if cpu else time.perf_counter


DEVICE_PARAMS = {
    "ESS": {"p_max_mw": 0.05, "capacity_mwh": 0.2, "soc_init_spread": 0.2},
    "DG": {"p_max_mw": 0.06, "cost_a": 10.0, "cost_b": 55.0},
    "PV": {"p_max_mw": 0.02},
}


def _buses(network: str, count: int) -> list[str]:
    from powergrid.networks import TEMPLATES

    net = TEMPLATES[network]()
    slack = set(int(b) for b in net.ext_grid.bus)
    names = [str(n) for i, n in zip(net.bus.index, net.bus.name) if int(i) not in slack]
    picks = np.linspace(0, len(names) - 1, count).round().astype(int)
    return [names[i] for i in picks]


def grid_scenario(network: str, n_grid: int, devices: tuple[str, ...] = ("ESS", "DG", "PV"),
                  steps: int = 96) -> dict[str, Any]:
    """``n_grid`` learned GridAgents (setpoint protocol), each over one device of each type in ``devices``."""
    buses = _buses(network, n_grid * len(devices))
    agents: list[dict[str, Any]] = []
    for g in range(n_grid):
        children = []
        for j, typ in enumerate(devices):
            did = f"g{g}_{typ.lower()}"
            agents.append({"id": did, "type": typ, "bus": buses[g * len(devices) + j], "params": DEVICE_PARAMS[typ]})
            children.append(did)
        agents.append({"id": f"g{g}", "kind": "grid", "policy": "learned", "protocol": {"type": "setpoint"},
                       "children": children})
    return {"name": f"bench_{network}_{n_grid}x{len(devices)}", "network": {"type": network},
            "time": {"step_minutes": 15, "steps_per_episode": steps}, "agents": agents}


def device_scenario(network: str, steps: int = 96) -> dict[str, Any]:
    """One learned ESS device agent."""
    return {"name": f"bench_{network}_1", "network": {"type": network},
            "time": {"step_minutes": 15, "steps_per_episode": steps},
            "agents": [{"id": "ess", "type": "ESS", "bus": _buses(network, 1)[0], "policy": "learned",
                        "params": DEVICE_PARAMS["ESS"]}]}


def scenarios() -> list[tuple[str, str, dict[str, Any], int]]:
    """``(name, composition, config, number of agents)`` of every benchmarked scenario."""
    return [
        ("1 agent", "ieee34_3mg: 1 learned ESS", device_scenario("ieee34_3mg"), 1),
        ("10 agents", "ieee34_3mg: 10 learned GridAgents x (ESS,DG,PV)", grid_scenario("ieee34_3mg", 10), 40),
        ("100 agents", "ieee123: 25 learned GridAgents x (ESS,DG,PV)", grid_scenario("ieee123", 25), 100),
        ("300 agents", "ieee123: 75 learned GridAgents x (ESS,DG,PV)", grid_scenario("ieee123", 75), 300),
    ]


def _action_sets(spaces: dict[str, Any], count: int, rng: np.random.Generator, batch: int | None = None) -> list[dict]:
    shape = () if batch is None else (batch,)
    return [{a: rng.uniform(s.low, s.high, size=shape + s.shape).astype(np.float32) for a, s in spaces.items()}
            for _ in range(count)]


def _stepper(env: MultiAgentPowerGridEnv) -> Callable[[int], None]:
    """Step ``k`` with random actions (32 sets in turn), resetting at the end of an episode."""
    acts = _action_sets({a: env.action_space(a) for a in env.possible_agents}, 32, np.random.default_rng(0))

    def step(k: int) -> None:
        env.step(acts[k % 32])
        if not env.agents:
            env.reset()

    return step


def env_rate(env: MultiAgentPowerGridEnv, steps: int, runs: int, warmup: int) -> tuple[float, list[float]]:
    """Median steps/s over ``runs`` runs of ``steps`` steps (random actions, auto-reset), after ``warmup`` steps."""
    step = _stepper(env)
    env.reset(seed=0)

    def run(n: int) -> float:
        t0 = clock()
        for k in range(n):
            step(k)
        return n / (clock() - t0)

    run(warmup)
    rates = [run(steps) for _ in range(runs)]
    return statistics.median(rates), rates


def solve_time(env: MultiAgentPowerGridEnv, steps: int = 200, runs: int = 5) -> float:
    """Median seconds of one bare ``solver.solve``, replaying the injections of ``steps`` env steps in order.

    The env's own sequence keeps the warm start realistic (re-solving one fixed case would converge at once).
    """
    from powergrid.solvers.base import Injections

    rng = np.random.default_rng(1)
    acts = _action_sets({a: env.action_space(a) for a in env.possible_agents}, 32, rng)
    env.reset(seed=1)
    recorded = []
    for k in range(steps):
        env.step(acts[k % 32])
        inj = env._injections
        recorded.append(Injections(inj.load_p_mw.copy(), inj.load_q_mvar.copy(), inj.sgen_p_mw.copy(),
                                   inj.sgen_q_mvar.copy()))
        if not env.agents:
            env.reset()
    solver = env.solver
    times = []
    for _ in range(runs):
        t0 = clock()
        for inj in recorded:
            solver.solve(inj)
        times.append((clock() - t0) / len(recorded))
    return statistics.median(times)


def solves_per_step(env: MultiAgentPowerGridEnv, steps: int = 200) -> float:
    """Newton–Raphson solves per env step (the first flow and the regulators' re-solves after tap moves)."""
    solver, count = env.solver, [0]
    flow, reflow = solver.flow, solver.reflow

    def counted(method: Callable[..., bool]) -> Callable[..., bool]:
        def call(*args: Any) -> bool:
            count[0] += 1
            return method(*args)
        return call

    solver.flow, solver.reflow = counted(flow), counted(reflow)
    try:
        rng = np.random.default_rng(1)
        acts = _action_sets({a: env.action_space(a) for a in env.possible_agents}, 32, rng)
        env.reset(seed=1)
        count[0] = 0
        for k in range(steps):
            env.step(acts[k % 32])
            if not env.agents:
                env.reset()
        return count[0] / steps
    finally:
        del solver.flow, solver.reflow


def memory_per_agent(config: dict[str, Any], n_agents: int) -> float:
    """(tracemalloc of the env after reset + 5 steps − the network and its compiled solver) / agents, in bytes."""
    registry = get_registry()
    cfg = EnvConfig.from_dict(config)

    def traced(build: Any) -> int:
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        obj = build()
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        del obj
        return used

    def network_only() -> Any:
        net = build_network(cfg, registry)
        return net, build_solver(cfg, registry, net)

    def full_env() -> Any:
        env = MultiAgentPowerGridEnv(cfg)
        env.reset(seed=0)
        for _ in range(5):
            env.step({a: env.action_space(a).sample() for a in env.agents})
        return env

    network_only(), full_env()  # import and cache warm-up outside the measurement
    net_bytes = statistics.median(traced(network_only) for _ in range(3))
    env_bytes = statistics.median(traced(full_env) for _ in range(3))
    return (env_bytes - net_bytes) / n_agents


def vector_rate(config: dict[str, Any], n: int, steps: int, runs: int) -> float:
    """Median env-steps/s (copies × steps / s) of a VectorPowerGridEnv of ``n`` copies in this process."""
    venv = VectorPowerGridEnv(config, n)
    rng = np.random.default_rng(0)
    acts = _action_sets({a: venv.action_space(a) for a in venv.possible_agents}, 8, rng, batch=n)
    venv.reset(seed=0)
    for k in range(20):
        venv.step(acts[k % 8])
    rates = []
    for _ in range(runs):
        t0 = clock()
        for k in range(steps):
            venv.step(acts[k % 8])
        rates.append(n * steps / (clock() - t0))
    return statistics.median(rates)


def runpp_seconds(runs: int = 9, timer: Callable[[], float] | None = None) -> float:
    """Median seconds of one ``pandapower.runpp(case33bw, lightsim2grid=False)`` (after two warm-up runs),
    timed with ``timer`` (default: this module's clock)."""
    import pandapower as pp
    import pandapower.networks as pn

    timer = timer or clock
    net = pn.case33bw()
    times = []
    with contextlib.redirect_stdout(io.StringIO()):  # pandapower prints a hint per run when numba is absent
        for k in range(runs + 2):
            t0 = timer()
            pp.runpp(net, lightsim2grid=False)
            if k >= 2:
                times.append(timer() - t0)
    return statistics.median(times)


def core_rows(quick: bool, runs: int, cpu: bool = False) -> dict[str, list[float]]:
    """``{scenario: [steps/s, bare solve s, bytes/agent]}`` of every scenario, and ``configs/ieee34_3mg.yaml``
    (random actions) as ``{"ieee34_3mg": [steps/s]}`` — what the before/after table compares."""
    use_cpu_time(cpu)
    scale = 0.2 if quick else 1.0
    rows: dict[str, list[float]] = {}
    for name, _composition, config, n_agents in scenarios():
        env = MultiAgentPowerGridEnv.from_config(config)
        steps = max(50, int((2000 if n_agents < 100 else 600) * scale))
        rate, _ = env_rate(env, steps, runs, warmup=max(20, steps // 5))
        rows[name] = [rate, solve_time(env), memory_per_agent(config, n_agents)]
    env = MultiAgentPowerGridEnv.from_config(CONFIG)
    steps = max(200, int(2000 * scale))
    rows["ieee34_3mg"] = [env_rate(env, steps, runs, warmup=steps // 5)[0]]
    return rows


def on_commit(commit: str, expression: str) -> Any:
    """The JSON value ``expression`` prints, evaluated with this script imported as ``b`` in a subprocess
    whose ``powergrid`` packages are the sources of ``commit`` (``git archive`` into a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="bench_env_") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, *SOURCES], check=True,
                                 capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(Path(tmp) / s) for s in SOURCES))
        code = (f"import json, sys, warnings; warnings.simplefilter('ignore'); sys.path.insert(0, {str(ROOT / 'benchmarks')!r});"
                f"import bench_env as b, powergrid; assert powergrid.__file__.startswith({tmp!r}), powergrid.__file__;"
                f"print(json.dumps({expression}))")
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def print_profile(step: Callable[[int], None], steps: int, top: int) -> None:
    """cProfile ``step(k)`` for ``k`` in ``range(steps)``; print the ``top`` functions by own time."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    for k in range(steps):
        step(k)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def scenario_config(name: str) -> Any:
    """The config of a scenario of :func:`scenarios` by name, or ``configs/ieee34_3mg.yaml`` for "ieee34_3mg"."""
    if name == "ieee34_3mg":
        return CONFIG
    configs = {n: c for n, _, c, _ in scenarios()}
    if name not in configs:
        raise SystemExit(f"no scenario {name!r} (have: ieee34_3mg, {', '.join(configs)})")
    return configs[name]


def profile(name: str, steps: int = 2000, top: int = 15) -> None:
    env = MultiAgentPowerGridEnv.from_config(scenario_config(name))
    env_rate(env, 10, 1, 50)
    print_profile(_stepper(env), steps, top)


#: the parts of a step :func:`stage_times` times: the env's methods, and its device groups' (``groups.…``)
STAGES = ("_check_actions", "_decide_roots", "groups.step", "_device_injections", "_solve", "_account", "_observe",
          "_infos", "_step_dicts", "_reset")


def stage_times(name: str, steps: int = 3000) -> dict[str, float]:
    """CPU µs per step of each part of :data:`STAGES`, "rest" (the step's other work) and "step" (unwrapped), over
    ``steps`` random steps. Each part is wrapped with a timer; a part's time excludes the timed parts it calls (the
    reset's injections, flow, observation and infos count in their rows) and the timer's own cost, measured on an
    empty call with an argument. The parts and "rest" add up to "step" within a few µs (what the timers cost beyond
    that estimate)."""
    env = MultiAgentPowerGridEnv.from_config(scenario_config(name))
    step, clock = _stepper(env), time.process_time
    env.reset(seed=0)
    for k in range(300):
        step(k)
    t0 = clock()
    for k in range(steps):
        step(k)
    plain = clock() - t0
    totals = dict.fromkeys((*STAGES, "timer"), 0.0)
    calls = dict.fromkeys((*STAGES, "timer"), 0)
    inner = [0.0]  # the time of timed calls made inside the current one

    def timed(f: Callable[..., Any], key: str) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            inner.append(0.0)
            t = clock()
            out = f(*args, **kwargs)
            spent = clock() - t
            totals[key] += spent - inner.pop()
            calls[key] += 1
            inner[-1] += spent
            return out
        return run

    empty = timed(lambda *args, **kwargs: None, "timer")
    t0 = clock()
    for _ in range(20000):
        empty(env)
    own, within = (clock() - t0) / 20000, totals["timer"] / 20000  # a timer's cost per call, and inside its clock
    for key in STAGES:
        owner, attr = (env._groups, key[7:]) if key.startswith("groups.") else (env, key)
        setattr(owner, attr, timed(getattr(owner, attr), key))
    t0 = clock()
    for k in range(steps):
        step(k)
    wrapped = clock() - t0 - own * sum(calls[key] for key in STAGES)
    parts = {key: max(totals[key] - within * calls[key], 0.0) for key in STAGES}
    out = {key: 1e6 * t / steps for key, t in parts.items()}
    out["rest"] = 1e6 * (wrapped - sum(parts.values())) / steps
    out["step"] = 1e6 * plain / steps
    return out


def print_stages(steps: int) -> None:
    """:func:`stage_times` of ``ieee34_3mg`` and every scenario as a Markdown table."""
    names = ["ieee34_3mg"] + [n for n, _, _, _ in scenarios()]
    rows = {name: stage_times(name, steps) for name in progress(names, desc="stages", unit="scenario")}
    print("| part | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for key in (*STAGES, "rest", "step"):
        print(f"| `{key}` | " + " | ".join(f"{rows[n][key]:.1f}" for n in names) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per scenario (median)")
    parser.add_argument("--profile", metavar="NAME", help="cProfile one scenario (e.g. '100 agents', 'ieee34_3mg') instead")
    parser.add_argument("--stages", action="store_true", help="CPU µs per step by part of the step, every scenario, instead")
    parser.add_argument("--before", default="348340d",
                        help="the commit(s) measured as 'before', comma-separated, one table each ('' to skip)")
    parser.add_argument("--compare-only", action="store_true", help="only the before/after table (skip the first)")
    parser.add_argument("--cpu-time", action="store_true", help="time with this process's CPU time (a loaded machine)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.profile:
        profile(args.profile)
        return
    if args.stages:
        print_stages(600 if args.quick else 3000)
        return
    use_cpu_time(args.cpu_time)
    scale = 0.2 if args.quick else 1.0
    runs = max(args.runs, 5)
    header = (f"| {'scenario':<10} | {'agents':>6} | {'steps/s':>8} | {'step ms':>7} | {'solve ms':>8} | "
              f"{'step/solve':>10} | {'NR/step':>7} | {'KB/agent':>8} | {'pp steps/s':>10} | {'x pandapower':>12} | {'vector/core':>11} |")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for name, _composition, config, n_agents in progress([] if args.compare_only else scenarios(), desc="bench_env",
                                                         unit="scenario"):
        env = MultiAgentPowerGridEnv.from_config(config)
        steps = max(50, int((2000 if n_agents < 100 else 600) * scale))
        rate, _ = env_rate(env, steps, runs, warmup=max(20, steps // 5))
        solve = solve_time(env)
        mem = memory_per_agent(config, n_agents)
        pp_env = MultiAgentPowerGridEnv.from_config(config, solver="pandapower")
        pp_rate, _ = env_rate(pp_env, max(5, int(20 * scale)), 3, warmup=3)
        vec = vector_rate(config, 8, max(10, int((200 if n_agents < 100 else 60) * scale)), runs)
        print(f"| {name:<10} | {n_agents:>6} | {rate:>8.0f} | {1e3 / rate:>7.3f} | {solve * 1e3:>8.3f} | "
              f"{1.0 / rate / solve:>10.1f} | {solves_per_step(env):>7.2f} | {mem / 1024:>8.1f} | {pp_rate:>10.1f} | "
              f"{rate / pp_rate:>12.0f} | "
              f"{vec:>11.0f} |", flush=True)
    ref = runpp_seconds()
    first = core_rows(args.quick, runs, args.cpu_time)
    commits = [c for c in args.before.split(",") if c]
    befores = {c: on_commit(c, f"b.core_rows({args.quick}, {runs}, {args.cpu_time})") for c in commits}
    # "after" measured again after the befores: the mean of the two brackets the drift of a shared machine's load
    last = core_rows(args.quick, runs, args.cpu_time) if commits else first
    after = {name: [(x + y) / 2 for x, y in zip(first[name], last[name])] for name in first}
    ref = statistics.median([ref, runpp_seconds()])  # before and after the env runs (a shared machine drifts)
    nan = [float("nan")] * 3
    timer = "CPU time" if args.cpu_time else "wall time"
    for commit, before in (befores or {"skipped": {}}).items():
        print(f"\nbefore ({commit}) and after, same run, {timer}; reference pandapower.runpp(case33bw, "
              f"lightsim2grid=False) = {ref * 1e3:.1f} ms\n")
        header = (f"| {'scenario':<10} | {'before steps/s':>14} | {'after steps/s':>13} | {'after/before':>12} | "
                  f"{'before step/solve':>17} | {'after step/solve':>16} | {'before KB/agent':>15} | {'after KB/agent':>14} |")
        print(header)
        print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
        for name, _composition, _config, _n in scenarios():
            (br, bs, bm), (ar, asolve, am) = before.get(name, nan), after[name]
            print(f"| {name:<10} | {br:>14.0f} | {ar:>13.0f} | {ar / br:>12.2f} | {1 / br / bs:>17.1f} | "
                  f"{1 / ar / asolve:>16.1f} | {bm / 1024:>15.1f} | {am / 1024:>14.1f} |")
        b34, a34 = before.get("ieee34_3mg", nan)[0], after["ieee34_3mg"][0]
        print(f"| {'ieee34_3mg':<10} | {b34:>14.0f} | {a34:>13.0f} | {a34 / b34:>12.2f} | steps per runpp: before "
              f"{b34 * ref:.0f}, after {a34 * ref:.0f} (target >= 100) |")
    print("\ncompositions:", file=sys.stderr)
    for name, composition, _, n in scenarios():
        print(f"  {name}: {composition} ({n} agents)", file=sys.stderr)


if __name__ == "__main__":
    main()

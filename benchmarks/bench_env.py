"""Environment step benchmark: steps/s, step time vs the bare solve, memory per agent, pandapower baseline.

Run with ``nox -s bench`` or ``python benchmarks/bench_env.py [--quick] [--profile NAME]``.
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
- ``KB/agent``: tracemalloc of the env after a reset and a few steps, minus the network with its
  compiled solver alone, over the number of agents;
- ``× pandapower``: steps/s over the same scenario with ``solver="pandapower"`` (runpp each step);
- ``vector/core``: env-steps/s of a :class:`~powergrid.vector.VectorPowerGridEnv` of 8 copies in
  one process (one core).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
import warnings
from typing import Any

import numpy as np

from powergrid.builder import build_network, build_solver
from powergrid.config import EnvConfig
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.plugins import get_registry
from powergrid.progress import progress
from powergrid.vector import VectorPowerGridEnv

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


def env_rate(env: MultiAgentPowerGridEnv, steps: int, runs: int, warmup: int) -> tuple[float, list[float]]:
    """Median steps/s over ``runs`` runs of ``steps`` steps (random actions, auto-reset), after ``warmup`` steps."""
    rng = np.random.default_rng(0)
    acts = _action_sets({a: env.action_space(a) for a in env.possible_agents}, 32, rng)
    env.reset(seed=0)

    def run(n: int) -> float:
        t0 = time.perf_counter()
        for k in range(n):
            env.step(acts[k % 32])
            if not env.agents:
                env.reset()
        return n / (time.perf_counter() - t0)

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
        t0 = time.perf_counter()
        for inj in recorded:
            solver.solve(inj)
        times.append((time.perf_counter() - t0) / len(recorded))
    return statistics.median(times)


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
        t0 = time.perf_counter()
        for k in range(steps):
            venv.step(acts[k % 8])
        rates.append(n * steps / (time.perf_counter() - t0))
    return statistics.median(rates)


def profile(name: str, steps: int = 2000, top: int = 15) -> None:
    import cProfile
    import pstats

    config = next(c for n, _, c, _ in scenarios() if n == name)
    env = MultiAgentPowerGridEnv.from_config(config)
    env_rate(env, 10, 1, 50)
    acts = _action_sets({a: env.action_space(a) for a in env.possible_agents}, 32, np.random.default_rng(0))
    prof = cProfile.Profile()
    prof.enable()
    for k in range(steps):
        env.step(acts[k % 32])
        if not env.agents:
            env.reset()
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per scenario (median)")
    parser.add_argument("--profile", metavar="NAME", help="cProfile one scenario (e.g. '100 agents') instead")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.profile:
        profile(args.profile)
        return
    scale = 0.2 if args.quick else 1.0
    runs = max(args.runs, 5)
    header = (f"| {'scenario':<10} | {'agents':>6} | {'steps/s':>8} | {'step ms':>7} | {'solve ms':>8} | "
              f"{'step/solve':>10} | {'KB/agent':>8} | {'pp steps/s':>10} | {'x pandapower':>12} | {'vector/core':>11} |")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for name, _composition, config, n_agents in progress(scenarios(), desc="bench_env", unit="scenario"):
        env = MultiAgentPowerGridEnv.from_config(config)
        steps = max(50, int((2000 if n_agents < 100 else 600) * scale))
        rate, _ = env_rate(env, steps, runs, warmup=max(20, steps // 5))
        solve = solve_time(env)
        mem = memory_per_agent(config, n_agents)
        pp_env = MultiAgentPowerGridEnv.from_config(config, solver="pandapower")
        pp_rate, _ = env_rate(pp_env, max(5, int(20 * scale)), 3, warmup=3)
        vec = vector_rate(config, 8, max(10, int((200 if n_agents < 100 else 60) * scale)), runs)
        print(f"| {name:<10} | {n_agents:>6} | {rate:>8.0f} | {1e3 / rate:>7.3f} | {solve * 1e3:>8.3f} | "
              f"{1.0 / rate / solve:>10.1f} | {mem / 1024:>8.1f} | {pp_rate:>10.1f} | {rate / pp_rate:>12.0f} | "
              f"{vec:>11.0f} |", flush=True)
    print("\ncompositions:", file=sys.stderr)
    for name, composition, _, n in scenarios():
        print(f"  {name}: {composition} ({n} agents)", file=sys.stderr)


if __name__ == "__main__":
    main()

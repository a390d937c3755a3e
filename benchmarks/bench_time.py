"""A simulated day of 1-minute physics on ``configs/hierarchical_3level.yaml``: wall time and action counts.

Run with ``python benchmarks/bench_time.py [--runs N] [--config PATH]``. Each run is one full episode
(a day: 1,440 physics steps of 1 minute) after a warm-up episode, with fixed actions sampled once per
learned agent (the environment's own cost, not the policy's). Printed:

- the median (and min) wall time of a simulated day, and its median CPU time (``time.process_time``,
  what this process used: on a shared machine the wall time also holds waiting for a core), with the
  CPU share of the power flows (``env._solve``: the solver and the regulators' control loop);
- the actions per agent over the day, by level (counted by the environment), and the physics steps.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from powergrid.env import MultiAgentPowerGridEnv

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "hierarchical_3level.yaml"


def one_day(env: MultiAgentPowerGridEnv, seed: int) -> tuple[float, float, float]:
    """Wall, CPU and power-flow CPU seconds of one episode."""
    env.reset(seed=seed)
    actions = {a: env.action_space(a).sample() for a in env.possible_agents}
    solve, flows = env._solve, [0.0]

    def timed(tick: int):
        start = time.process_time()
        result = solve(tick)
        flows[0] += time.process_time() - start
        return result

    env._solve = timed
    wall, cpu = time.perf_counter(), time.process_time()
    while env.agents:
        env.step(actions)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    del env._solve
    return wall, cpu, flows[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--config", default=str(CONFIG))
    args = parser.parse_args()
    env = MultiAgentPowerGridEnv.from_config(args.config)
    one_day(env, seed=0)  # warm-up: imports, first solves
    walls, cpus, flows = zip(*(one_day(env, seed=run) for run in range(1, args.runs + 1)))
    simulated_h = env.max_ticks * env.tick_s / 3600
    print(f"{env.config.name}: {simulated_h:g} h simulated, tick {env.tick_s} s, {env.physics_steps} physics steps, "
          f"{env.max_ticks} env steps, solver {env.solver.name}")
    print(f"wall time per simulated day: median {statistics.median(walls):.3f} s, min {min(walls):.3f} s "
          f"({args.runs} runs); CPU time median {statistics.median(cpus):.3f} s, of which power flows "
          f"{statistics.median(flows):.3f} s")
    by_level: dict[str, list[str]] = {}
    for agent_id, agent in env.scenario.agents.items():
        by_level.setdefault(type(agent).__name__, []).append(f"{agent_id} {env.action_count(agent_id)}")
    for level, rows in by_level.items():
        print(f"{level:<12} " + ", ".join(rows))


if __name__ == "__main__":
    main()

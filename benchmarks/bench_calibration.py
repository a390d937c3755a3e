"""Is the scenario a sound experiment? Reference policies over the same seeds (days of real data).

For each policy (zero = idle devices, rule, random): the mean episode return of the learned agents, each device
counted once (the learned roots' summed), with its standard error over the seeds, the cost ($) and safety terms,
the share of the reward that is safety, the share of bus-ticks inside the voltage band and the failed flows. The rule policy should
beat random by more than two standard errors, and safety should be a minor part of the rule's reward.

    python benchmarks/bench_calibration.py [CONFIG ...] [--seeds 20]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.evaluate import summarize

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", default=[str(ROOT / "configs" / "ieee34_3mg.yaml")])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--policies", default="random,rule,zero")
    args = parser.parse_args()
    for config in args.configs:
        env = MultiAgentPowerGridEnv.from_config(config)
        print(f"\n{Path(config).name}: {args.seeds} seeds, learned agents {', '.join(env.possible_agents)}")
        print("| policy | return (mean ± s.e.) | cost $ | safety term | safety share | in band | failed flows | s |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        done = {}
        for policy in args.policies.split(","):
            started = time.perf_counter()
            s = done[policy] = summarize(env, policy, range(args.seeds))
            print(f"| {policy} | {s.mean_return:,.1f} ± {s.se_return:,.1f} | {s.mean_cost:,.1f} | "
                  f"{s.mean_safety_term:,.1f} | {s.safety_share:.1%} | {s.in_band:.2%} | {s.failures} | "
                  f"{time.perf_counter() - started:.1f} |")
        if {"rule", "random"} <= done.keys():
            mean, se = done["rule"].paired_difference(done["random"])
            print(f"rule − random, paired by day: {mean:,.1f} ± {se:,.1f} ({mean / se:.1f} standard errors)")


if __name__ == "__main__":
    main()

"""``powergrid bench TASK|all``: baselines of the benchmark tasks on their test days, a leaderboard and figures."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from powergrid.bench.tasks import TASKS, TEST_DAYS, task_named


def add_parser(sub: Any, count: Any) -> None:
    """Register ``bench`` on the ``powergrid`` sub-command parser."""
    p = sub.add_parser("bench", help="benchmark tasks: random, rule, oracle (and trained) on fixed test days")
    p.add_argument("task", help=f"one of {', '.join(TASKS)}, or all")
    p.add_argument("--out", default="bench-results", help="folder for leaderboard.md, results.json and PNGs")
    p.add_argument("--days", type=count(1), default=2, help=f"test days (1–{len(TEST_DAYS)})")
    p.add_argument("--train-minutes", type=float, default=0.0,
                   help="train SB3 PPO (parameter sharing) this many minutes per task first (0: no training)")
    p.add_argument("--seed", type=count(0), default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from powergrid.bench.leaderboard import evaluate_task, table, write

    tasks = list(TASKS.values()) if args.task == "all" else [task_named(args.task)]
    for task in tasks:
        task.check_packs()
    if args.days > len(TEST_DAYS):
        from powergrid.bench.tasks import BenchError

        raise BenchError(f"--days: expected at most {len(TEST_DAYS)} test days, got {args.days}")
    if args.train_minutes < 0:
        from powergrid.bench.tasks import BenchError

        raise BenchError(f"--train-minutes: expected a number ≥ 0, got {args.train_minutes}")
    days = TEST_DAYS[: args.days]
    rows, lp, curves, training = [], {}, {}, {}
    for task in tasks:
        trained = {}
        if args.train_minutes > 0:
            from powergrid.bench.train import sb3_ppo

            factory, record = sb3_ppo(task, minutes=args.train_minutes, seed=args.seed)
            trained["sb3_ppo"] = factory
            curves[f"{task.name}_sb3_ppo"] = record.pop("curve")
            training[f"{task.name}/sb3_ppo"] = record
        task_rows, task_lp = evaluate_task(task, days, trained, seed=args.seed)
        rows += task_rows
        lp[task.name] = task_lp
        print(table(task_rows), end="", flush=True)
    command = "powergrid " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["bench"] else \
        f"powergrid bench {args.task} --days {args.days} --train-minutes {args.train_minutes:g} --out {args.out}"
    path = write(rows, lp, Path(args.out), command, days, curves, training)
    print(f"leaderboard: {path}")
    return 0

"""``powergrid bench TASK|all``: baselines of the benchmark tasks on their test days, a leaderboard and figures."""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import sys
from pathlib import Path
from typing import Any

from powergrid.bench.tasks import TASKS, TEST_DAYS, BenchError, task_named

#: Trained baselines: name → (function in powergrid.bench.train, the pip extra it needs).
LIBRARIES = {"sb3_ppo": ("sb3_ppo", "sb3"), "sb3_sac": ("sb3_sac", "sb3"),
             "sb3_sac_residual": ("sb3_sac_residual", "sb3"), "sb3_sac_bc": ("sb3_sac_bc", "sb3"),
             "sb3_bc": ("sb3_bc", "sb3"), "rllib_ppo": ("rllib_ppo", "rllib"), "mappo": ("torchrl_mappo", "mappo")}
#: The modules each pip extra of the trained baselines brings (checked before the run).
EXTRAS = {"sb3": ("torch", "stable_baselines3", "supersuit"), "rllib": ("torch", "ray"),
          "mappo": ("torch", "torchrl", "supersuit")}


def add_parser(sub: Any, count: Any) -> None:
    """Register ``bench`` on the ``powergrid`` sub-command parser."""
    p = sub.add_parser("bench", help="benchmark tasks: random, rule, oracle (and trained) on fixed test days")
    p.add_argument("task", help=f"one of {', '.join(TASKS)}, or all")
    p.add_argument("--out", default="bench-results", help="folder for leaderboard.md, results.json and PNGs")
    p.add_argument("--days", type=count(1), default=2, help=f"test days (1–{len(TEST_DAYS)})")
    p.add_argument("--train-minutes", type=float, default=0.0,
                   help="train each library this many minutes per task first (0: no training)")
    p.add_argument("--libraries", default=",".join(LIBRARIES),
                   help=f"comma-separated trained baselines ({', '.join(LIBRARIES)})")
    p.add_argument("--seed", type=count(0), default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from powergrid.bench.leaderboard import evaluate_task, files, prepare, table, write

    tasks = list(TASKS.values()) if args.task == "all" else [task_named(args.task)]
    for task in tasks:
        task.check_packs()
    if args.days > len(TEST_DAYS):
        raise BenchError(f"--days: expected at most {len(TEST_DAYS)} test days, got {args.days}")
    if not args.train_minutes >= 0:
        raise BenchError(f"--train-minutes: expected a number ≥ 0, got {args.train_minutes}")
    libraries = [name.strip() for name in args.libraries.split(",") if name.strip()]
    unknown = [name for name in libraries if name not in LIBRARIES]
    if unknown:
        raise BenchError(f"--libraries: unknown {', '.join(unknown)} (expected some of {', '.join(LIBRARIES)})")
    for name in libraries if args.train_minutes > 0 else []:  # before any training: not after an hour of it
        extra = LIBRARIES[name][1]
        absent = [module for module in EXTRAS[extra] if _missing(module)]
        if absent:
            raise BenchError(f"{name} needs {', '.join(absent)}: pip install \"powergrid-core[{extra}]\"")
    days = TEST_DAYS[: args.days]
    out = Path(args.out)  # refused before the run, not after it: a file, or a symbolic link where a result goes
    prepare(out, files([t.name for t in tasks], [f"{t.name}_{n}" for t in tasks for n in libraries if args.train_minutes > 0]))
    try:
        import matplotlib  # noqa: F401
        plots = True
    except ImportError:
        plots = False
        print('figures skipped: matplotlib is missing (pip install "powergrid-core[plot]")', flush=True)
    rows, lp, curves, training = [], {}, {}, {}
    for task in tasks:
        trained = {}
        for name in libraries if args.train_minutes > 0 else []:
            factory, record = _train(name, task, args.train_minutes, args.seed)
            trained[name] = factory
            curves[f"{task.name}_{name}"] = record.pop("curve")
            training[f"{task.name}/{name}"] = record
            print(f"{task.name}: {name} trained {record['steps']} steps in {record['wall_s']} s", flush=True)
        task_rows, task_lp = evaluate_task(task, days, trained, seed=args.seed)
        rows += task_rows
        lp[task.name] = task_lp
        print(table(task_rows), end="", flush=True)
    command = "powergrid " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["bench"] else \
        f"powergrid bench {args.task} --days {args.days} --train-minutes {args.train_minutes:g} " \
        f"--libraries {','.join(libraries)} --seed {args.seed} --out {args.out}"
    path = write(rows, lp, out, command, days, curves, training, plots=plots)
    print(f"leaderboard: {path}")
    return 0


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a parent package missing, or the module blocked (None in sys.modules)
        return True


def _train(name: str, task: Any, minutes: float, seed: int) -> tuple[Any, dict[str, Any]]:
    function, extra = LIBRARIES[name]
    try:
        from powergrid.bench import train

        return getattr(train, function)(task, minutes=minutes, seed=seed)
    except ImportError as exc:
        raise BenchError(f"{name} needs {exc.name or 'a missing library'}: pip install "
                         f'"powergrid-core[{extra}]"') from None

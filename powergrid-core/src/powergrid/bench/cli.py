"""``powergrid bench TASK|all``: baselines of the benchmark tasks on their test days, a leaderboard and figures."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
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
    p = sub.add_parser("bench", help="benchmark tasks: random, rule, no action, oracle (and trained) on fixed test days")
    p.add_argument("task", help=f"one of {', '.join(TASKS)}, or all")
    p.add_argument("--out", default="bench-results", help="folder for leaderboard.md, results.json and PNGs (default: bench-results)")
    p.add_argument("--days", type=count(1), default=4, help=f"test days, 1–{len(TEST_DAYS)} (default: 4, the leaderboard's; 12 for claims)")
    p.add_argument("--train-minutes", type=float, default=0.0,
                   help="train each library this many minutes of wall time per task first (default: 0, no "
                        "training; depends on the machine's load)")
    p.add_argument("--train-steps", type=count(1), default=None, metavar="N",
                   help="train each library N env steps per task first: reproducible (with --train-minutes too: "
                        "whichever ends first, no longer reproducible) (default: none, no step budget)")
    p.add_argument("--libraries", default=",".join(LIBRARIES),
                   help=f"comma-separated trained baselines (default: all, {', '.join(LIBRARIES)})")
    p.add_argument("--seed", type=count(0), default=None, help="the test days' first seed and the training seed (default: 0)")
    p.add_argument("--seeds", type=seed_list, default=None, metavar="S,S,…",
                   help="train each library once per seed (e.g. 0,1,2) and pool its row over days × seeds; the test "
                        "days are played from the first seed's draws (default: --seed's one seed)")
    p.add_argument("--policy", action="append", default=[], metavar="[NAME=]MODULE:FACTORY",
                   help="also score your own policy (repeatable): MODULE is imported (the current folder first), "
                        "FACTORY(env) returns the policy function, played and scored as the baselines are; "
                        "NAME (FACTORY when omitted) names its row (default: none, the baselines alone)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from powergrid.bench.leaderboard import evaluate_seeds, evaluate_task, files, prepare, table, write

    tasks = list(TASKS.values()) if args.task == "all" else [task_named(args.task)]
    for task in tasks:
        task.check_packs()
    if args.days > len(TEST_DAYS):
        raise BenchError(f"--days: expected at most {len(TEST_DAYS)} test days, got {args.days}")
    if not args.train_minutes >= 0 or args.train_minutes == float("inf"):
        raise BenchError(f"--train-minutes: expected a finite number ≥ 0, got {args.train_minutes}")
    trains = args.train_minutes > 0 or args.train_steps is not None
    if args.seeds is not None and args.seed is not None:
        raise BenchError(f"--seeds: expected --seed or --seeds, not both; got --seed {args.seed} --seeds "
                         f"{','.join(map(str, args.seeds))}")
    seeds = args.seeds or [0 if args.seed is None else args.seed]
    args.seed = seeds[0]
    if len(seeds) > 1 and not trains:
        raise BenchError(f"--seeds: expected a training budget (--train-steps or --train-minutes) for several training "
                         f"seeds, got --seeds {','.join(map(str, seeds))} and none")
    libraries = [name.strip() for name in args.libraries.split(",") if name.strip()]
    unknown = [name for name in libraries if name not in LIBRARIES]
    if unknown:
        raise BenchError(f"--libraries: unknown {', '.join(unknown)} (expected some of {', '.join(LIBRARIES)})")
    for name in libraries if trains else []:  # before any training: not after an hour of it
        extra = LIBRARIES[name][1]
        absent = [module for module in EXTRAS[extra] if _missing(module)]
        if absent:
            raise BenchError(f"{name} needs {', '.join(absent)}: pip install \"powergrid-core[{extra}]\"")
    days = TEST_DAYS[: args.days]
    reserved = {"random", "rule", "oracle", "none", *(libraries if trains else ())}
    own: dict[str, Any] = {}
    for spec in args.policy:
        name, factory = load_policy(spec)
        if name in reserved or name in own:
            raise BenchError(f"--policy {spec}: the name {name!r} is taken (by "
                             f"{'another --policy' if name in own else 'a baseline'}): give it another, NAME=…")
        own[name] = factory
    if own and trains:  # a factory that fails does so before any training, not after it
        from powergrid.env import MultiAgentPowerGridEnv

        env = MultiAgentPowerGridEnv(tasks[0].config(days[0]))
        for factory in own.values():
            factory(env)
    out = Path(args.out)  # refused before the run, not after it: a file, or a symbolic link where a result goes
    runs = [(n, s, n if len(seeds) == 1 else f"{n}_seed{s}") for n in (libraries if trains else []) for s in seeds]
    prepare(out, files([t.name for t in tasks], [f"{t.name}_{key}" for t in tasks for _, _, key in runs]))
    try:
        import matplotlib  # noqa: F401
        plots = True
    except ImportError:
        plots = False
        print('figures skipped: matplotlib is missing (pip install "powergrid-core[plot]")', flush=True)
    rows, lp, curves, training = [], {}, {}, {}
    for task in tasks:
        trained: dict[str, dict[int, Any]] = {}
        for name, seed, key in runs:
            factory, record = _train(name, task, args.train_minutes, seed, args.train_steps)
            trained.setdefault(name, {})[seed] = factory
            curves[f"{task.name}_{key}"] = record.pop("curve")
            training[f"{task.name}/{name}" + ("" if len(seeds) == 1 else f"/seed{seed}")] = record
            print(f"{task.name}: {name}{'' if len(seeds) == 1 else f' (seed {seed})'} trained {record['steps']} steps "
                  f"in {record['wall_s']} s ({record['cpu_s']} s CPU)", flush=True)
        if len(seeds) == 1:
            task_rows, task_lp = evaluate_task(task, days, {**{n: f[seeds[0]] for n, f in trained.items()}, **own},
                                               seed=args.seed)
        else:
            task_rows, task_lp = evaluate_seeds(task, days, trained, own, seed=args.seed)
        rows += task_rows
        lp.update(task_lp)
        print(table(task_rows), end="", flush=True)
    command = "powergrid " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["bench"] else \
        f"powergrid bench {args.task} --days {args.days} --train-minutes {args.train_minutes:g} " + \
        ("" if args.train_steps is None else f"--train-steps {args.train_steps} ") + \
        f"--libraries {','.join(libraries)} " + \
        (f"--seed {args.seed}" if len(seeds) == 1 else f"--seeds {','.join(map(str, seeds))}") + f" --out {args.out}" + \
        "".join(f" --policy {shlex.quote(spec)}" for spec in args.policy)
    path = write(rows, lp, out, command, days, curves, training, plots=plots)
    print(f"leaderboard: {path}")
    return 0


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a parent package missing, or the module blocked (None in sys.modules)
        return True


def load_policy(spec: str) -> tuple[str, Any]:
    """``--policy [NAME=]MODULE:FACTORY`` as ``(NAME, factory)``: MODULE imported (the current folder first on the
    path, as ``python -m`` does), FACTORY a callable of it (a dotted path within it), ``factory(env)`` → a policy
    function ``policy(env)`` (or ``policy(env, observations)`` with ``observes = True``) returning every learned
    agent's action. Raises :class:`BenchError` naming the option and what was found; the factory returned raises it
    too when FACTORY raises or returns something not callable."""
    where = f"--policy {spec}"
    name, _, target = spec.rpartition("=")
    module_name, _, attribute = target.partition(":")
    if not re.fullmatch(r"[\w.]+", module_name) or not re.fullmatch(r"[\w.]+", attribute):
        raise BenchError(f"{where}: expected [NAME=]MODULE:FACTORY (e.g. mine=my_policies:make), got {spec!r}")
    name = name or attribute.rpartition(".")[2]
    if not re.fullmatch(r"[\w.+-]+", name):
        raise BenchError(f"{where}: expected a NAME of letters, digits and _ . + -, got {name!r}")
    here = os.getcwd()
    sys.path.insert(0, here)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise BenchError(f"{where}: no module {module_name!r} (looked in {here} and on Python's path)") from None
        raise BenchError(f"{where}: importing {module_name} raised ModuleNotFoundError: {exc}") from exc
    except Exception as exc:  # the user's module failed at import: say so, whatever it raised
        raise BenchError(f"{where}: importing {module_name} raised {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(here)
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise BenchError(f"{where}: module {module_name} ({getattr(module, '__file__', '?')}) has no attribute "
                             f"{attribute!r}")
        found = getattr(found, part)
    if not callable(found):
        raise BenchError(f"{where}: {module_name}:{attribute} is a {type(found).__name__}, expected a factory "
                         "(a callable: env → policy function)")

    def factory(env: Any) -> Any:
        try:
            policy = found(env)
        except Exception as exc:
            raise BenchError(f"{where}: the factory raised {type(exc).__name__}: {exc}") from exc
        if not callable(policy):
            raise BenchError(f"{where}: the factory returned a {type(policy).__name__}, expected a policy function "
                             "(env → every learned agent's action)")
        return policy

    return name, factory


def seed_list(text: str) -> list[int]:
    """An argparse type: distinct comma-separated integers ≥ 0 (``--seeds 0,1,2``)."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers ≥ 0 (e.g. 0,1,2), got {text!r}") from None
    if any(s < 0 for s in seeds) or len(set(seeds)) < len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct integers ≥ 0 (e.g. 0,1,2), got {text!r}")
    return seeds


def _train(name: str, task: Any, minutes: float, seed: int, steps: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Train ``name`` on ``task`` within ``minutes`` (0: no limit) and ``steps`` env steps (None: no limit), whichever
    ends first (:func:`powergrid.bench.train.budgeted`): its policy factory and record (``wall_s``, ``cpu_s`` and
    ``children_cpu_s`` of one span, timed by the library's function: its learning, not the imports before it; the
    ``budget`` and the ``env_steps`` trained)."""
    function, extra = LIBRARIES[name]
    try:
        from powergrid.bench import train

        factory, record = train.budgeted(function, task, minutes=minutes, steps=steps, seed=seed)
    except ImportError as exc:
        raise BenchError(f"{name} needs {exc.name or 'a missing library'}: pip install "
                         f'"powergrid-core[{extra}]"') from None
    return factory, record

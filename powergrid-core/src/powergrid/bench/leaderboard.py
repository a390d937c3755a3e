"""Run the baselines of a task on its test days and write the Markdown leaderboard and figures.

Columns: the day-mean objective ($, cost + safety_weight·Δt_h·safety), cost ($) and safety of each
policy; ``gap closed = (rule − policy)/(rule − oracle)`` on the objective (1 = the oracle,
0 = the rule, < 0 worse than the rule); and whether the oracle was ≤ the policy on every day.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from powergrid import __version__
from powergrid.bench.oracle import replay, solve_day
from powergrid.bench.play import DayResult, play
from powergrid.bench.tasks import BenchError, Task
from powergrid.env import MultiAgentPowerGridEnv

#: A trained policy factory: ``env → policy function`` (see :mod:`powergrid.bench.train`).
Trained = Callable[[Any], Callable[[Any], dict[str, Any]]]


@attrs.frozen
class Row:
    """One policy of one task over the test days."""

    task: str
    policy: str
    days: tuple[DayResult, ...]
    seconds: float

    @property
    def objective(self) -> float:
        return float(np.mean([d.objective for d in self.days]))

    @property
    def cost(self) -> float:
        return float(np.mean([d.cost for d in self.days]))

    @property
    def safety(self) -> float:
        return float(np.mean([d.safety for d in self.days]))


def evaluate_task(task: Task, days: Sequence[str], trained: dict[str, Trained] | None = None,
                  seed: int = 0) -> tuple[list[Row], list[float]]:
    """Random, rule, oracle (and ``trained`` policies) on ``days``; also the oracle's LP objectives.

    Every policy plays the ``i``-th day from ``reset(seed + i)``: the same draws for all on a day, and the random
    baseline its own actions each day (one seed for all days replayed one action sequence on every day).
    """
    rows: list[Row] = []
    results: dict[str, list[DayResult]] = {}
    seconds: dict[str, float] = {}
    lp: list[float] = []
    for i, day in enumerate(days):
        day_seed = seed + i
        env = MultiAgentPowerGridEnv(task.config(day))
        policies: dict[str, Any] = {"random": "random", "rule": "rule"}
        for name, factory in (trained or {}).items():
            policies[name] = factory(env)
        for name, policy in policies.items():
            started = time.perf_counter()
            results.setdefault(name, []).append(play(env, policy, day_seed))
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
        view = MultiAgentPowerGridEnv(task.config(day, dispatch_view=True))
        started = time.perf_counter()
        plan = solve_day(view, day_seed)
        results.setdefault("oracle", []).append(play(view, replay(plan), day_seed))
        seconds["oracle"] = seconds.get("oracle", 0.0) + time.perf_counter() - started
        lp.append(plan.objective)
    for name, days_ in results.items():
        rows.append(Row(task.name, name, tuple(days_), seconds[name]))
    return rows, lp


def gap_closed(rule: float, policy: float, oracle: float) -> float:
    """``(rule − policy)/(rule − oracle)``; NaN when the oracle does not beat the rule."""
    return (rule - policy) / (rule - oracle) if rule - oracle > 1e-9 else float("nan")


def table(rows: Iterable[Row]) -> str:
    """The Markdown leaderboard of ``rows`` (grouped by task, in order)."""
    rows = list(rows)
    lines = ["| task | policy | objective $/day | cost $/day | safety/day | gap closed | oracle ≤ policy every day |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for task in dict.fromkeys(r.task for r in rows):
        mine = {r.policy: r for r in rows if r.task == task}
        rule, oracle = mine["rule"], mine["oracle"]
        for name, r in mine.items():
            gap = gap_closed(rule.objective, r.objective, oracle.objective)
            below = all(o.objective <= p.objective + 1e-6 for o, p in zip(oracle.days, r.days))
            lines.append(f"| {task} | {name} | {r.objective:,.1f} | {r.cost:,.1f} | {r.safety:.3f} | "
                         f"{'—' if np.isnan(gap) else f'{gap:.2f}'} | {'yes' if below else 'no'} |")
    return "\n".join(lines) + "\n"


def figures(rows: Sequence[Row], out: Path, curves: dict[str, list[tuple[int, float]]] | None = None) -> list[Path]:
    """PNGs: the first test day's dispatch and voltage envelope per policy; training curves if any."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for task in dict.fromkeys(r.task for r in rows):
        mine = [r for r in rows if r.task == task]
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
        oracle = next(r for r in mine if r.policy == "oracle").days[0]
        for dev, mw in oracle.device_mw.items():
            axes[0].plot(mw, label=dev)
        axes[0].set(title=f"{task}: oracle dispatch, first test day", xlabel="hour", ylabel="MW")
        axes[0].legend(fontsize=6, ncol=2)
        for r in mine:
            d = r.days[0]
            line, = axes[1].plot(d.v_min_pu, label=r.policy)
            axes[1].plot(d.v_max_pu, color=line.get_color(), linestyle="--")
        axes[1].axhspan(0.95, 1.05, color="0.9", zorder=0)
        axes[1].set(title="min (solid) and max (dashed) bus voltage", xlabel="hour", ylabel="pu")
        axes[1].legend(fontsize=7)
        fig.tight_layout()
        path = out / f"{task}_day.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    for name, curve in (curves or {}).items():
        if not curve:
            continue
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        steps, returns = zip(*curve)
        ax.plot(steps, returns)
        ax.set(title=f"training: {name}", xlabel="environment steps", ylabel="mean episode return")
        fig.tight_layout()
        path = out / f"{name}_training.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def environment() -> dict[str, str]:
    """Versions recorded with a leaderboard."""
    import importlib.metadata as md

    found = {"powergrid-core": __version__, "python": platform.python_version()}
    for dist in ("numpy", "scipy", "highspy", "pandapower", "torch", "stable-baselines3", "supersuit", "ray"):
        try:
            found[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return found


def files(tasks: Iterable[str], curves: Iterable[str] = ()) -> list[str]:
    """The names :func:`write` gives its files for ``tasks`` and the training ``curves`` (``<task>_<library>``)."""
    return ["leaderboard.md", "results.json", *(f"{t}_day.png" for t in tasks), *(f"{c}_training.png" for c in curves)]


def prepare(out: Path, names: Iterable[str]) -> None:
    """Create the folder ``out`` for the files ``names``, or raise (:class:`~powergrid.bench.tasks.BenchError`,
    :class:`~powergrid.errors.UsageError`) when ``out`` is a file or one of them is a symbolic link (a write
    through it would land outside ``out``). :func:`powergrid.bench.cli.run` calls it before the run."""
    from powergrid.cli import output_file

    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out}: expected a folder, found a file")
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        output_file(out, name)


def write(rows: Sequence[Row], lp: dict[str, list[float]], out: Path, command: str, days: Sequence[str],
          curves: dict[str, list[tuple[int, float]]] | None = None, training: dict[str, Any] | None = None,
          plots: bool = True) -> Path:
    """``leaderboard.md``, ``results.json`` and (``plots``: needs matplotlib) the PNGs under ``out``, figures
    last; returns the Markdown file."""
    prepare(out, files(dict.fromkeys(r.task for r in rows), curves or {}))
    oracle_ac = {r.task: [d.objective for d in r.days] for r in rows if r.policy == "oracle"}
    text = ["# PowerGrid benchmark leaderboard\n", f"Command: `{command}`\n",
            f"Test days ({len(days)}): {', '.join(days)}. Values are means over the days.\n", table(rows),
            "\nOracle check (LP objective vs. its dispatch replayed in the AC flow, $/day):\n"]
    for task, values in lp.items():
        text.append(f"- {task}: LP {np.mean(values):,.1f}, AC {np.mean(oracle_ac[task]):,.1f}")
    text.append("\nVersions: " + ", ".join(f"{k} {v}" for k, v in environment().items()) + "\n")
    if training:
        text.append("Training: " + json.dumps(training) + "\n")
    path = out / "leaderboard.md"
    path.write_text("\n".join(text), encoding="utf-8")
    (out / "results.json").write_text(json.dumps(
        {"command": command, "days": list(days), "versions": environment(), "training": training or {},
         "rows": [{"task": r.task, "policy": r.policy, "objective": r.objective, "cost": r.cost, "safety": r.safety,
                   "seconds": r.seconds, "per_day": [d.objective for d in r.days],
                   "storage_mwh_per_day": [d.storage_mwh for d in r.days],
                   "failures_per_day": [d.failures for d in r.days]} for r in rows],
         "oracle_lp": lp}, indent=1), encoding="utf-8")
    if plots:
        figures(rows, out, curves)
    return path

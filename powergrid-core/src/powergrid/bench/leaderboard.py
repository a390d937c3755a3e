"""Run the baselines of a task on its test days and write the Markdown leaderboard and figures.

Columns: the day-mean objective ($, cost + safety_weight·Δt_h·safety), cost ($) and safety of each
policy; ``gap closed = (rule − policy)/(rule − oracle)`` on the objective (1 = the oracle,
0 = the rule, < 0 worse than the rule; below the table, per task, a no-action baseline that beats the rule is named
with each learned row's gap closed against it instead); whether the oracle was ≤ the policy on every day; the objective's
standard error over the days; the paired difference policy − rule (mean ± standard error over the days, negative:
cheaper than the rule) and the days on which the policy was cheaper than the rule; the share of hours with every
bus inside the voltage band (:attr:`~powergrid.bench.play.DayResult.in_band`); the learned agents' non-finite,
projected and missing actions over the days (⚠: non-finite or missing ones); and days × seeds (each day is played
once, from its own seed; a trained policy is one training seed, or several with ``--seeds``: its row then pools the
day × seed results, each paired with the rule on its day; its standard errors add the spread of the days' means over
the seeds and the spread of the seeds' means over the days, since the seeds share the test days).
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from powergrid import __version__
from powergrid.bench.oracle import replay, solve_day
from powergrid.bench.play import DayResult, play
from powergrid.bench.tasks import TASKS, Task
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
    #: the training seeds pooled in ``days`` (seed by seed, each the test days in order); empty: one seed (or none)
    seeds: tuple[int, ...] = ()

    @property
    def n_seeds(self) -> int:
        return max(1, len(self.seeds))

    def tiled(self, other: Row) -> tuple[DayResult, ...]:
        """``other``'s days (one seed) repeated for each of this row's seeds, to pair with :attr:`days`."""
        return other.days * (len(self.days) // len(other.days))

    def _se_days_seeds(self, values: Sequence[float]) -> float:
        """Standard error of the mean of ``values`` (one per result, seed by seed) over D days × S seeds:
        √(s²(days' means)/D + s²(seeds' means)/S), the second term only with S > 1. The seeds play the same days, so
        the D·S results are not independent samples, and a seed better on every day is a spread the days' term alone
        does not see; both terms hold the interaction's share, so this errs on the wide side."""
        table = np.reshape(values, (self.n_seeds, -1))
        days, seeds = table.mean(axis=0), table.mean(axis=1)
        if len(days) < 2:
            return float("nan")
        return math.hypot(_se(days), _se(seeds) if len(seeds) > 1 else 0.0)

    @property
    def objective(self) -> float:
        return float(np.mean([d.objective for d in self.days]))

    @property
    def cost(self) -> float:
        return float(np.mean([d.cost for d in self.days]))

    @property
    def safety(self) -> float:
        return float(np.mean([d.safety for d in self.days]))

    @property
    def se(self) -> float:
        """Standard error of the objective over the days (and seeds: :meth:`_se_days_seeds`) ($/day; NaN for one day)."""
        return self._se_days_seeds([d.objective for d in self.days])

    @property
    def in_band(self) -> float:
        """Mean over the days of the share of hours with every bus in the voltage band (0–1)."""
        return float(np.mean([d.in_band for d in self.days]))

    @property
    def nonfinite_actions(self) -> int:
        return sum(d.nonfinite_actions for d in self.days)

    @property
    def projected_actions(self) -> int:
        return sum(d.projected_actions for d in self.days)

    @property
    def missing_actions(self) -> int:
        return sum(d.missing_actions for d in self.days)

    def versus(self, rule: Row) -> tuple[float, float, int]:
        """``self − rule`` paired by day: mean, standard error ($/day; NaN for one day) and the days on which
        ``self`` was cheaper (by more than 1e-6 $); over days × seeds, each seed's day paired with the rule's (the
        standard error as :meth:`_se_days_seeds`)."""
        diff = [p.objective - r.objective for p, r in zip(self.days, self.tiled(rule), strict=True)]
        return float(np.mean(diff)), self._se_days_seeds(diff), sum(d < -1e-6 for d in diff)


def _se(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")


#: The no-action baselines' row names: ``none`` (no learned agent sends an action) and ``none:A`` (agent A sends none,
#: the other learned agents their rule; tasks with several learned agents), :func:`no_action`.
NO_ACTION = "none"


def no_action(env: Any, silent: str | None = None) -> dict[str, Any]:
    """The no-action baseline's actions: None for every learned agent (``silent`` None), whose devices the env leaves
    at their defaults and whose protocol sends no signal (task 5's ISO: the microgrids' rules see the hourly market
    price); or None for the agent ``silent`` alone and every other learned agent's rule action."""
    if silent is None:
        return {a: None for a in env.agents}
    return {a: None if a == silent else env.rule_action(a) for a in env.agents}


def no_action_baselines(env: Any) -> dict[str, Callable[[Any], dict[str, Any]]]:
    """``none`` and, with several learned agents, ``none:A`` for each of them (:func:`no_action`): fixed policies
    that learn nothing, reported beside the rule because one of them can beat it (task 5: ``none:iso``)."""
    found: dict[str, Callable[[Any], dict[str, Any]]] = {NO_ACTION: no_action}
    if len(env.possible_agents) > 1:
        for agent in env.possible_agents:
            found[f"{NO_ACTION}:{agent}"] = lambda e, agent=agent: no_action(e, agent)
    return found


def is_no_action(name: str) -> bool:
    """A no-action baseline's row: ``none`` or ``none:A``."""
    return name == NO_ACTION or name.startswith(f"{NO_ACTION}:")


def is_baseline(name: str) -> bool:
    """A row of a policy that learns nothing: random, rule, oracle, none and none:A."""
    return name in ("random", "rule", "oracle") or is_no_action(name)



def strongest_baseline(rows: Iterable[Row]) -> Row:
    """Of one task's rows, the rule or a no-action baseline, whichever has the lowest mean objective (the rule on a
    tie): the non-learned policy a learned one has to beat."""
    mine = [r for r in rows if r.policy == "rule" or is_no_action(r.policy)]
    return min(mine, key=lambda r: (r.objective, r.policy != "rule"))


def evaluate_task(task: Task, days: Sequence[str], trained: dict[str, Trained] | None = None,
                  seed: int = 0) -> tuple[list[Row], dict[str, list[float]]]:
    """Random, rule, the no-action baselines (:func:`no_action_baselines`), oracle (and ``trained`` policies: name →
    factory ``env → policy``, e.g. your own) on ``days``; also the oracle's LP objectives by task
    (``{task.name: [$/day]}``), as :func:`write` takes them.

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
        policies: dict[str, Any] = {"random": "random", "rule": "rule", **no_action_baselines(env)}
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
    return rows, {task.name: lp}


def evaluate_seeds(task: Task, days: Sequence[str], trained: dict[str, dict[int, Trained]],
                   own: dict[str, Trained] | None = None, seed: int = 0) -> tuple[list[Row], dict[str, list[float]]]:
    """:func:`evaluate_task` with several training seeds: ``trained`` maps a name to ``{training seed: factory}``;
    each of its policies plays the test days as one policy would (from ``reset(seed + i)`` on the ``i``-th day), and
    its row pools the results seed by seed (:attr:`Row.seeds`). ``own`` policies, random, rule and oracle: one row of
    the days each, as :func:`evaluate_task` gives them."""
    keyed = {f"{name}@{s}": factory for name, by_seed in trained.items() for s, factory in by_seed.items()}
    rows, lp = evaluate_task(task, days, {**keyed, **(own or {})}, seed=seed)
    found = {r.policy: r for r in rows}
    pooled = [Row(task.name, name, tuple(d for s in by_seed for d in found[f"{name}@{s}"].days),
                  sum(found[f"{name}@{s}"].seconds for s in by_seed), tuple(by_seed)) for name, by_seed in trained.items()]
    silent = [r for r in rows if is_no_action(r.policy)]
    ordered = [found["random"], found["rule"], *silent, *pooled, *(found[n] for n in own or {}), found["oracle"]]
    return ordered, lp


def gap_closed(rule: float, policy: float, oracle: float) -> float:
    """``(rule − policy)/(rule − oracle)``; NaN when the oracle does not beat the rule."""
    return (rule - policy) / (rule - oracle) if rule - oracle > 1e-9 else float("nan")


def table(rows: Iterable[Row]) -> str:
    """The Markdown leaderboard of ``rows`` (grouped by task, in order)."""
    rows = list(rows)
    lines = ["| task | policy | objective $/day | cost $/day | safety/day | gap closed | oracle ≤ policy every day "
             "| s.e. $/day | − rule $/day (paired ± s.e.) | days ahead of rule | in band % | actions non-finite / projected / missing "
             "| days × seeds |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for task in dict.fromkeys(r.task for r in rows):
        mine = {r.policy: r for r in rows if r.task == task}
        rule, oracle = mine["rule"], mine["oracle"]
        for name, r in mine.items():
            gap = gap_closed(rule.objective, r.objective, oracle.objective)
            below = all(o.objective <= p.objective + 1e-6 for o, p in zip(r.tiled(oracle), r.days))
            diff, diff_se, ahead = r.versus(rule)
            versus = "—" if name == "rule" else f"{diff:+,.1f} ± {_number(diff_se, ',.1f')}"
            flag = " ⚠" if (r.nonfinite_actions or r.missing_actions) and not is_baseline(name) else ""
            lines.append(f"| {task} | {name}{flag} | {r.objective:,.1f} | {r.cost:,.1f} | {r.safety:.3f} | "
                         f"{_number(gap, '.2f')} | {'yes' if below else 'no'} | {_number(r.se, ',.1f')} | {versus} | "
                         f"{'—' if name == 'rule' else f'{ahead}/{len(r.days)}'} | {100 * r.in_band:.1f} | "
                         f"{r.nonfinite_actions} / {r.projected_actions} / {r.missing_actions} | "
                         f"{len(r.days) // r.n_seeds} × {r.n_seeds} |")
    for task in dict.fromkeys(r.task for r in rows):
        mine = [r for r in rows if r.task == task]
        best, rule = strongest_baseline(mine), next(r for r in mine if r.policy == "rule")
        if best is not rule:
            oracle = next(r for r in mine if r.policy == "oracle")
            diff, diff_se, ahead = best.versus(rule)
            learned = [r for r in mine if not is_baseline(r.policy)]
            lines.append(f"\n{task}: the no-action baseline {best.policy} beats the rule ({diff:+,.1f} ± "
                         f"{_number(diff_se, ',.1f')} $/day, {ahead}/{len(best.days)} days) and closes "
                         f"{_number(gap_closed(rule.objective, best.objective, oracle.objective), '.2f')} of the "
                         "rule–oracle gap without learning: read a learned policy against it"
                         + ("" if not learned else f"; gap closed against it, ({best.policy} − policy)/({best.policy} "
                            "− oracle): " + ", ".join(
                             f"{r.policy} {_number(gap_closed(best.objective, r.objective, oracle.objective), '.2f')}"
                             for r in learned)) + ".")
    if any(r.nonfinite_actions and not is_baseline(r.policy) for r in rows):
        lines.append("\n⚠ the policy sent non-finite actions (NaN, ±inf), which the env replaced: its score is not "
                     "its own actions'.")
    if any(r.missing_actions and not is_baseline(r.policy) for r in rows):
        lines.append("\n⚠ the policy sent no action (no key, or None) for learned agents, whose devices the env left at their "
                     "defaults: its score is not its own actions'.")
    return "\n".join(lines) + "\n"


def _number(value: float, spec: str) -> str:
    return "—" if math.isnan(value) else format(value, spec)


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
    for dist in ("powergrid-devices", "powergrid-protocols", "powergrid-datasets", "numpy", "scipy", "highspy",
                 "pandapower", "torch", "stable-baselines3", "supersuit", "ray"):
        try:
            found[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return found


def checkout(folder: Path | None = None) -> dict[str, Any]:
    """The git commit of ``folder`` (default: this package's own folder) and ``dirty`` (a tracked file of the
    checkout differs from it), when the folder's ``__init__.py`` is tracked in a git checkout; else ``{}`` (an
    installed package, no git, a checkout git refuses to read, or git slower than 10 s)."""
    folder = folder or Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:  # no optional locks: `git status` would refresh (rewrite) the user's .git/index
        return subprocess.run(["git", "--no-optional-locks", "-C", str(folder), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        if not git("ls-files", "--", "__init__.py"):  # e.g. installed into a folder of another repository
            return {}
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {}


def task_configs(tasks: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each bench task's (:data:`~powergrid.bench.tasks.TASKS`) config file as read now: its path and SHA-256 (of
    the file's bytes)."""
    found = {}
    for name in (t for t in tasks if t in TASKS):
        path = TASKS[name].config_path()
        found[name] = {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return found


def files(tasks: Iterable[str], curves: Iterable[str] = ()) -> list[str]:
    """The names :func:`write` gives its files for ``tasks`` and the training ``curves`` (``<task>_<library>``)."""
    return ["leaderboard.md", "results.json", *(f"{t}_day.png" for t in tasks), *(f"{c}_training.png" for c in curves)]


def prepare(out: Path, names: Iterable[str]) -> None:
    """Create the folder ``out`` for the files ``names``, or raise :class:`~powergrid.errors.UsageError` when
    ``out`` is a file, cannot be written to, or one of them is a symbolic link (a write through it would land
    outside ``out``). :func:`powergrid.bench.cli.run` calls it before the run."""
    from powergrid.cli import output_file, output_folder

    output_folder(str(out))  # a file in the way, or a folder this user cannot write to: one error now
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        output_file(out, name)


def write(rows: Sequence[Row], lp: dict[str, list[float]], out: Path, command: str, days: Sequence[str],
          curves: dict[str, list[tuple[int, float]]] | None = None, training: dict[str, Any] | None = None,
          plots: bool = True) -> Path:
    """``leaderboard.md``, ``results.json`` and (``plots``: needs matplotlib) the PNGs under ``out``, figures
    last; returns the Markdown file. ``rows`` and ``lp`` as :func:`evaluate_task` returns them (several tasks'
    joined); ``training``: ``"<task>/<library>"`` → the record of :mod:`powergrid.bench.train`."""
    prepare(out, files(dict.fromkeys(r.task for r in rows), curves or {}))
    oracle_ac = {r.task: [d.objective for d in r.days] for r in rows if r.policy == "oracle"}
    versions, code, configs = environment(), checkout(), task_configs(dict.fromkeys(r.task for r in rows))
    text = ["# PowerGrid benchmark leaderboard\n", f"Command: `{command}`\n",
            f"Test days ({len(days)}): {', '.join(days)}. Values are means over the days.\n", table(rows),
            "\nOracle check (LP objective vs. its dispatch replayed in the AC flow, $/day):\n"]
    for task, values in lp.items():
        text.append(f"- {task}: LP {np.mean(values):,.1f}, AC {np.mean(oracle_ac[task]):,.1f}")
    text.append("\nVersions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "\n")
    text.append("Code: " + (f"git {code['commit']}{' (dirty: tracked files differ from it)' if code['dirty'] else ''}"
                            if code else "not a git checkout") + "\n")
    text.append("Task configs (SHA-256): " + ", ".join(f"{c['path']} {c['sha256']}" for c in configs.values()) + "\n")
    if training:
        text += ["Training (steps: the library's count, SB3's agent transitions = env steps × learned agents, RLlib's "
                 "and MAPPO's env steps; demo days: the oracle's days cloned; CPU: this process's, all its threads, and "
                 "that of its child processes that ended during the training; budget: env steps (reproducible), wall "
                 "minutes, or both, whichever ended first; env steps: the env's step() calls trained, demonstrations' "
                 "included):\n",
                 "| task/library | steps | demo days | wall s | CPU s | children CPU s | env steps | budget |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
                 *(f"| {name} | {r.get('steps', '—')} | {r.get('demo_days', '—')} | {r.get('wall_s', '—')} | "
                   f"{r.get('cpu_s', '—')} | {r.get('children_cpu_s', '—')} | {r.get('env_steps', '—')} | "
                   f"{_budget(r.get('budget'))} |" for name, r in training.items()),
                 "\nTraining records: " + json.dumps(_json_safe(training), allow_nan=False) + "\n"]
    path = out / "leaderboard.md"
    path.write_text("\n".join(text), encoding="utf-8")
    rule = {r.task: r for r in rows if r.policy == "rule"}
    (out / "results.json").write_text(json.dumps(_json_safe(
        {"command": command, "days": list(days), "versions": versions, "git": code, "task_configs": configs,
         "training": training or {}, "rows": [_record(r, rule[r.task]) for r in rows], "oracle_lp": lp}), indent=1,
        allow_nan=False), encoding="utf-8")
    if plots:
        figures(rows, out, curves)
    return path


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float as None (JSON's null): strict JSON parsers refuse NaN and Infinity
    (an imitation record's ``critic_loss`` is NaN when no critic step ran)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _budget(budget: dict[str, Any] | None) -> str:
    """A training record's budget as the training table shows it: ``N steps``, ``M min``, or both."""
    if not budget:
        return "—"
    parts = ([f"{budget['steps']} steps"] if budget.get("steps") is not None else []) + \
        ([f"{budget['minutes']:g} min"] if budget.get("minutes") else [])
    return " or ".join(parts)


def _record(r: Row, rule: Row) -> dict[str, Any]:
    """``r`` in results.json: the table's values (NaN as null) and the per-day ones (with several training seeds:
    ``*_per_day`` lists day × seed results, seed by seed, and ``seeds`` and ``per_seed`` say which)."""
    diff, diff_se, ahead = r.versus(rule)
    return {"task": r.task, "policy": r.policy, "objective": r.objective, "cost": r.cost, "safety": r.safety,
            "seconds": r.seconds, "per_day": [d.objective for d in r.days],
            "storage_mwh_per_day": [d.storage_mwh for d in r.days], "failures_per_day": [d.failures for d in r.days],
            "se": r.se, "minus_rule": diff, "minus_rule_se": diff_se, "days_ahead_of_rule": ahead,
            "in_band": r.in_band, "nonfinite_actions": r.nonfinite_actions, "projected_actions": r.projected_actions,
            "missing_actions": r.missing_actions,
            "days_x_seeds": [len(r.days) // r.n_seeds, r.n_seeds], "cost_per_day": [d.cost for d in r.days],
            "safety_per_day": [d.safety for d in r.days], "in_band_per_day": [d.in_band for d in r.days],
            "nonfinite_actions_per_day": [d.nonfinite_actions for d in r.days],
            "projected_actions_per_day": [d.projected_actions for d in r.days],
            "missing_actions_per_day": [d.missing_actions for d in r.days],
            **({} if not r.seeds else {"seeds": list(r.seeds), "per_seed": [
                {"seed": s, "objective": float(np.mean([d.objective for d in chunk])), "per_day": [d.objective for d in chunk]}
                for s, chunk in zip(r.seeds, _chunks(r.days, len(r.days) // r.n_seeds))]})}


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i: i + size] for i in range(0, len(items), size)]

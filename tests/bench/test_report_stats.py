"""The leaderboard's uncertainty, time in band and provenance (r43b F2, F5), the training's CPU time (F4; r43c F12), and the
API path evaluate_task → write (F6), on two days of peak_shaving's random and rule (and its oracle)."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import time

import numpy as np
import pytest

for _pack in ("powergrid_devices", "powergrid_protocols", "powergrid_datasets"):  # the tasks' configs need them
    pytest.importorskip(_pack)

from powergrid.bench.leaderboard import checkout, evaluate_task, table, write  # noqa: E402
from powergrid.bench.tasks import TEST_DAYS, task_named  # noqa: E402

DAYS = TEST_DAYS[:2]


@pytest.fixture(scope="module")
def evaluated():
    return evaluate_task(task_named("peak_shaving"), DAYS)


def test_evaluate_task_feeds_write_and_results_hold_the_days(evaluated, tmp_path):
    """Was: evaluate_task returned the oracle's LP values as a list, which write() indexed as ``{task: list}``
    (AttributeError), and results.json held only the per-day objective."""
    rows, lp = evaluated
    write(rows, lp, tmp_path, "test", DAYS, plots=False)
    results = json.loads((tmp_path / "results.json").read_text())
    got = {r["policy"]: r for r in results["rows"]}
    by = {r.policy: r for r in rows}
    rule = by["rule"]
    for name, r in by.items():
        out = got[name]
        objective = [d.objective for d in r.days]
        assert out["per_day"] == objective and out["objective"] == r.objective  # the existing values, as before
        assert out["cost_per_day"] == [d.cost for d in r.days] and out["safety_per_day"] == [d.safety for d in r.days]
        assert out["se"] == pytest.approx(np.std(objective, ddof=1) / math.sqrt(2), rel=1e-12)
        diff = np.subtract(objective, [d.objective for d in rule.days])
        assert out["minus_rule"] == pytest.approx(diff.mean(), rel=1e-12, abs=1e-12)
        assert out["minus_rule_se"] == pytest.approx(diff.std(ddof=1) / math.sqrt(2), rel=1e-12, abs=1e-12)
        assert out["days_ahead_of_rule"] == int(np.sum(diff < -1e-6))
        assert out["days_x_seeds"] == [2, 1]
        for d, share in zip(r.days, out["in_band_per_day"]):  # every bus in 0.95–1.05 pu, of the 24 hours
            assert share == np.mean((d.v_min_pu >= 0.95) & (d.v_max_pu <= 1.05))
    assert got["random"]["minus_rule"] > 0 and got["oracle"]["days_ahead_of_rule"] == 2
    assert got["random"]["in_band"] < got["rule"]["in_band"]  # random leaves the band more often (0.65 vs 0.75)
    assert got["random"]["projected_actions"] > 0 == got["rule"]["nonfinite_actions"]
    assert all(r["missing_actions_per_day"] == [0, 0] for n, r in got.items() if n != "none")  # they act for every agent
    assert got["none"]["missing_actions_per_day"] == [24, 24]  # the no-action baseline: the learned site, every hour


def test_the_table_adds_columns_and_keeps_the_old_ones(evaluated):
    rows, _ = evaluated
    lines = table(rows).splitlines()
    assert lines[0].startswith("| task | policy | objective $/day | cost $/day | safety/day | gap closed | oracle ≤ policy "
                               "every day | s.e. $/day | − rule $/day (paired ± s.e.) | days ahead of rule | in band % |")
    rule = next(r for r in rows if r.policy == "rule")
    cells = [c.strip() for c in next(line for line in lines if "| rule |" in line).split("|")[1:-1]]
    assert cells[:7] == ["peak_shaving", "rule", f"{rule.objective:,.1f}", f"{rule.cost:,.1f}", f"{rule.safety:.3f}",
                         "0.00", "yes"]
    assert cells[7:] == [f"{rule.se:,.1f}", "—", "—", f"{100 * rule.in_band:.1f}", "0 / 0 / 0", "2 × 1"]


def test_results_identify_the_code_and_the_task_config(evaluated, tmp_path):
    """Was: "powergrid-core 0.1.0" only; now the git commit of the package's checkout (and dirty), each config's
    SHA-256."""
    rows, lp = evaluated
    write(rows, lp, tmp_path, "test", DAYS, plots=False)
    results = json.loads((tmp_path / "results.json").read_text())
    config = task_named("peak_shaving").config_path()
    assert results["task_configs"] == {"peak_shaving": {"path": str(config),
                                                        "sha256": hashlib.sha256(config.read_bytes()).hexdigest()}}
    assert hashlib.sha256(config.read_bytes()).hexdigest() in (tmp_path / "leaderboard.md").read_text()
    assert results["git"] == checkout()
    assert {"powergrid-devices", "powergrid-protocols", "powergrid-datasets"} <= set(results["versions"])
    import powergrid

    folder = __import__("pathlib").Path(powergrid.__file__).parent
    tracked = subprocess.run(["git", "-C", str(folder), "ls-files", "--error-unmatch", "__init__.py"], capture_output=True,
                             text=True) if shutil.which("git") else None
    if tracked is not None and tracked.returncode == 0:  # this install is a checkout (editable), not a copy (nox)
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert results["git"]["commit"] == head.stdout.strip() and isinstance(results["git"]["dirty"], bool)
        assert results["git"]["commit"] in (tmp_path / "leaderboard.md").read_text()


def test_no_checkout_or_no_git_is_recorded_as_none(tmp_path, monkeypatch):
    (tmp_path / "__init__.py").write_text("")
    assert checkout(tmp_path) == {}  # not a git checkout
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=False, capture_output=True)
    assert checkout(tmp_path) == {}  # a checkout that does not track the package
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git at all
    assert checkout() == {}


def test_training_records_cpu_time(evaluated, monkeypatch, tmp_path):
    """Was: wall seconds and steps only. The trainers' clock records wall, CPU and children's CPU time of one span
    (0.2 s of CPU spent in it: cpu_s ≥ 0.2), and the leaderboard's training table shows them beside env steps."""
    from powergrid.bench import train

    started = train._clock()
    while time.process_time() - started[1] < 0.2:
        pass
    record = {"library": "busy", "seed": 0, "steps": 48, **train._spent(started), "curve": []}
    assert record["cpu_s"] >= 0.2 and record["children_cpu_s"] >= 0.0 and record["wall_s"] >= 0.0
    rows, lp = evaluated
    write(rows, lp, tmp_path, "test", DAYS, training={"peak_shaving/sb3_ppo": record}, plots=False)
    board = (tmp_path / "leaderboard.md").read_text()
    assert "| task/library | steps | demo days | wall s | CPU s | children CPU s |" in board
    assert f"| peak_shaving/sb3_ppo | 48 | — | {record['wall_s']} | {record['cpu_s']} | {record['children_cpu_s']} |" in board
    assert json.loads((tmp_path / "results.json").read_text())["training"]["peak_shaving/sb3_ppo"]["cpu_s"] >= 0.2


def test_the_training_cpu_time_spans_what_its_wall_time_does(monkeypatch):
    """Was (r43c F12): ``bench`` replaced the library's span by the whole call's CPU (imports, env and model set-up,
    demonstrations) while wall_s timed the learning alone. Now the record keeps the library's own span: a stand-in
    that spends 0.2 s of CPU before its span keeps its cpu_s of 0.1."""
    from powergrid.bench import train
    from powergrid.bench.cli import _train

    def busy(task, *, minutes, seed):
        start = time.process_time()
        while time.process_time() - start < 0.2:  # as importing torch and building the model do
            pass
        return (lambda env: None), {"library": "busy", "seed": seed, "steps": 48, "wall_s": 0.2, "cpu_s": 0.1,
                                    "children_cpu_s": 0.0, "curve": []}

    monkeypatch.setattr(train, "sb3_ppo", busy)
    _, record = _train("sb3_ppo", task_named("peak_shaving"), 0.01, 0)
    assert (record["wall_s"], record["cpu_s"], record["children_cpu_s"]) == (0.2, 0.1, 0.0)


def test_a_trainer_records_its_span():
    """SB3 PPO without a step (``max_steps=0``): its record holds the three times of its (empty) learning span."""
    pytest.importorskip("stable_baselines3")
    pytest.importorskip("supersuit")
    from powergrid.bench import train

    _, record = train.sb3_ppo(task_named("peak_shaving"), minutes=0.01, max_steps=0)
    assert record["steps"] == 0 and {"wall_s", "cpu_s", "children_cpu_s"} <= set(record)

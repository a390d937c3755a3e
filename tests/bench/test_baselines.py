"""Each benchmark task: random, rule and the HiGHS oracle on two test days (the fast CI part of ``powergrid bench``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from powergrid.bench.oracle import replay, solve_day
from powergrid.bench.play import play
from powergrid.bench.tasks import TASKS, TEST_DAYS, BenchError, task_named
from powergrid.cli import main
from powergrid.env import MultiAgentPowerGridEnv

DAYS = TEST_DAYS[:2]
_RESULTS: dict = {}


def _results(name: str) -> dict:
    """{day: {policy: DayResult}} plus the oracle's LP objective per day (cached per task)."""
    if name not in _RESULTS:
        task = task_named(name)
        out = {}
        for day in DAYS:
            env = MultiAgentPowerGridEnv(task.config(day))
            day_out = {p: play(env, p) for p in ("zero", "random", "rule")}
            view = MultiAgentPowerGridEnv(task.config(day, dispatch_view=True))
            plan = solve_day(view)
            day_out["oracle"] = play(view, replay(plan))
            day_out["lp"] = plan
            out[day] = day_out
        _RESULTS[name] = out
    return _RESULTS[name]


@pytest.mark.parametrize("name", TASKS)
def test_the_oracle_is_at_most_every_policy_on_every_test_day(name):
    for day, r in _results(name).items():
        for policy in ("zero", "random", "rule"):
            assert r["oracle"].objective <= r[policy].objective + 1e-6, (day, policy, r["oracle"].objective,
                                                                         r[policy].objective)


@pytest.mark.parametrize("name", TASKS)
def test_the_linearised_oracle_agrees_with_the_ac_flow(name):
    """The LP's objective and its dispatch replayed in the AC flow agree within 3 % (the linearisation error)."""
    for day, r in _results(name).items():
        lp, ac = r["lp"].objective, r["oracle"].objective
        assert abs(lp - ac) <= 0.03 * abs(ac), (day, lp, ac)
        assert r["oracle"].failures == 0


@pytest.mark.parametrize("name", TASKS)
def test_every_policy_sees_the_same_test_day(name):
    """Prices of a test day are the same for every policy and differ between days."""
    res = _results(name)
    prices = [r["rule"].price for r in res.values()]
    for r in res.values():
        assert (r["random"].price == r["rule"].price).all()
    assert not (prices[0] == prices[1]).all()


def test_the_rule_beats_random_on_economic_dispatch():
    for r in _results("dispatch_mg").values():
        assert r["rule"].objective < r["random"].objective


def test_an_unknown_task_is_one_error_line(capsys):
    assert main(["bench", "no_such_task"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("powergrid: error: unknown task 'no_such_task'") and err.count("\n") == 1


def test_a_missing_config_folder_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv("POWERGRID_BENCH_CONFIGS", str(tmp_path / "absent"))
    with pytest.raises(BenchError, match="absent"):
        task_named("dispatch_mg").config("2023-07-27")


def test_the_command_writes_the_leaderboard_and_figures(tmp_path):
    out = tmp_path / "run"
    assert main(["bench", "peak_shaving", "--days", "1", "--out", str(out)]) == 0
    text = (out / "leaderboard.md").read_text()
    assert "| peak_shaving | oracle |" in text and "| peak_shaving | rule |" in text
    assert (out / "peak_shaving_day.png").stat().st_size > 1000
    assert sorted(p.name for p in out.iterdir()) == ["leaderboard.md", "peak_shaving_day.png", "results.json"]
    rows = json.loads((out / "results.json").read_text())["rows"]
    # the batteries' end-of-day energy change is recorded for every policy (no terminal value: a drain is visible)
    assert all(len(r["storage_mwh_per_day"]) == 1 and abs(r["storage_mwh_per_day"][0]) <= 10.0 for r in rows)  # a 10 MWh battery


def test_the_random_baseline_draws_new_actions_on_every_test_day():
    """evaluate_task played every day from the same seed, so random sent the same battery setpoints each day
    (peak_shaving's hour-0 battery 0.5478 MW on both days); now day i plays from seed + i."""
    from powergrid.bench.leaderboard import evaluate_task

    rows, _ = evaluate_task(task_named("peak_shaving"), DAYS)
    first, second = next(r for r in rows if r.policy == "random").days
    assert not np.array_equal(first.device_mw["ess"], second.device_mw["ess"])

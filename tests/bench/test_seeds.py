"""``powergrid bench --seeds S,S,…``: a trained baseline once per training seed, its row pooled over days × seeds
(mean, standard error, the paired − rule column), each seed's results kept in results.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from powergrid.cli import main

for _pack in ("powergrid_devices", "powergrid_protocols", "powergrid_datasets"):  # the tasks' configs need them
    pytest.importorskip(_pack)


def test_a_pooled_row_is_the_mean_over_days_and_seeds_paired_with_the_rule(configs, tmp_path):
    """Two 'seeds' of one policy, the rule's and the random policy's actions, on 2 days: its row holds the 4 results
    seed by seed; its mean and − rule column are over the 4, each paired with the rule's day; the standard errors add
    the days' spread (each day's mean over the seeds) and the seeds' (each seed's mean over the days): the seeds share
    the days, so 4 results are not 4 independent samples."""
    from powergrid.bench.leaderboard import evaluate_seeds, table, write
    from powergrid.bench.tasks import TEST_DAYS, task_named

    days = TEST_DAYS[:2]
    trained = {"both": {4: lambda env: "rule", 9: lambda env: "random"}}
    rows, lp = evaluate_seeds(task_named("peak_shaving"), days, trained, seed=0)
    assert [r.policy for r in rows] == ["random", "rule", "none", "both", "oracle"]
    random, rule, _, both, _ = rows
    assert both.seeds == (4, 9) and len(both.days) == 4
    assert [d.objective for d in both.days] == [d.objective for d in rule.days + random.days]
    values = np.array([d.objective for d in both.days])
    assert both.objective == pytest.approx(values.mean(), rel=1e-12)

    def two_way(v: np.ndarray) -> float:  # rows: seeds; √(s²(days' means)/2 + s²(seeds' means)/2)
        table = v.reshape(2, 2)
        return float(np.sqrt(table.mean(axis=0).var(ddof=1) / 2 + table.mean(axis=1).var(ddof=1) / 2))

    assert both.se == pytest.approx(two_way(values), rel=1e-12)
    diff = values - np.array([d.objective for d in rule.days * 2])
    mean, se, ahead = both.versus(rule)
    assert mean == pytest.approx(diff.mean(), rel=1e-12) and se == pytest.approx(two_way(diff), rel=1e-12)
    assert ahead == int(np.sum(diff < -1e-6))
    lines = {line.split(" | ")[1]: line for line in table(rows).splitlines() if line.startswith("| peak_shaving")}
    assert lines["both"].endswith("| 2 × 2 |") and lines["rule"].endswith("| 2 × 1 |")
    assert f"| {ahead}/4 |" in lines["both"]
    write(rows, lp, tmp_path, "test", days, plots=False)
    record = {r["policy"]: r for r in json.loads((tmp_path / "results.json").read_text())["rows"]}
    assert record["both"]["days_x_seeds"] == [2, 2] and record["both"]["seeds"] == [4, 9]
    assert [s["per_day"] for s in record["both"]["per_seed"]] == [record["rule"]["per_day"], record["random"]["per_day"]]
    assert record["both"]["objective"] == pytest.approx(np.mean([s["objective"] for s in record["both"]["per_seed"]]))
    assert "seeds" not in record["rule"] and record["rule"]["days_x_seeds"] == [2, 1]


def test_seeds_train_each_library_once_per_seed(configs, tmp_path):
    """``--seeds 0,1`` with a step budget: two training records, one row of 1 day × 2 seeds whose per-seed results
    are the seeds' (they differ: two initialisations) and whose objective is their mean."""
    pytest.importorskip("stable_baselines3")
    pytest.importorskip("supersuit")
    out = tmp_path / "run"
    assert main(["bench", "peak_shaving", "--days", "1", "--train-steps", "30", "--libraries", "sb3_sac",
                 "--seeds", "0,1", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["training"]) == {"peak_shaving/sb3_sac/seed0", "peak_shaving/sb3_sac/seed1"}
    assert [r["seed"] for r in results["training"].values()] == [0, 1]
    assert "--seeds 0,1" in results["command"]
    row = next(r for r in results["rows"] if r["policy"] == "sb3_sac")
    assert row["days_x_seeds"] == [1, 2] and [s["seed"] for s in row["per_seed"]] == [0, 1]
    per_seed = [s["per_day"][0] for s in row["per_seed"]]
    assert per_seed[0] != per_seed[1] and row["per_day"] == per_seed
    assert row["objective"] == pytest.approx(np.mean(per_seed), rel=1e-12)
    rule = next(r for r in results["rows"] if r["policy"] == "rule")
    assert row["minus_rule"] == pytest.approx(np.mean(per_seed) - rule["per_day"][0], rel=1e-12)
    assert row["se"] is None and rule["se"] is None  # one day: no standard error over days, however many seeds


@pytest.mark.parametrize(("option", "message"), [
    (["--seeds", "0,x"], "argument --seeds: expected comma-separated integers ≥ 0 (e.g. 0,1,2), got '0,x'"),
    (["--seeds", "1,1"], "argument --seeds: expected distinct integers ≥ 0 (e.g. 0,1,2), got '1,1'"),
    (["--seeds", "0,-1"], "argument --seeds: expected distinct integers ≥ 0 (e.g. 0,1,2), got '0,-1'"),
    (["--seed", "1", "--seeds", "0,1", "--train-steps", "5"],
     "--seeds: expected --seed or --seeds, not both; got --seed 1 --seeds 0,1"),
    (["--seeds", "0,1"], "--seeds: expected a training budget (--train-steps or --train-minutes) for several training "
                         "seeds, got --seeds 0,1 and none"),
])
def test_bad_seeds_are_one_error_naming_the_option(configs, tmp_path, capsys, option, message):
    assert main(["bench", "peak_shaving", "--days", "1", *option, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("powergrid: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()

"""``powergrid bench --out``: results only inside the folder, a bad folder refused before the run, the table
and results.json written without the plotting extra."""

from __future__ import annotations

import json
import sys

import pytest

from powergrid.cli import main

for _pack in ("powergrid_devices", "powergrid_protocols", "powergrid_datasets"):  # the tasks' configs need them
    pytest.importorskip(_pack)


@pytest.fixture
def no_config(tmp_path, monkeypatch):
    """A config folder without the task's config: the run fails as soon as it reads one (after the output checks)."""
    monkeypatch.setenv("POWERGRID_BENCH_CONFIGS", str(tmp_path / "no_configs"))


def test_a_symbolic_link_in_the_output_folder_is_refused_before_the_run(tmp_path, capsys, no_config):
    """Was: results.json written through a link to a file outside --out, after the run (its text replaced)."""
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").symlink_to(outside)
    assert main(["bench", "peak_shaving", "--days", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and "not found" not in err and err.count("\n") == 1
    assert outside.read_text() == "keep me"


def test_an_output_folder_that_is_a_file_is_refused_before_the_run(tmp_path, capsys, no_config):
    """Was: ``[Errno 17] File exists`` after the whole run, its results lost."""
    out = tmp_path / "a_file"
    out.write_text("")
    assert main(["bench", "peak_shaving", "--days", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"powergrid: error: --out {out}: {out} is a file; expected a folder (existing or to be created)\n"


def test_without_matplotlib_the_table_and_results_are_written(tmp_path, capsys, monkeypatch):
    """Was: the figures first, so an install without the [plot] extra lost the run's results to an ImportError."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as without powergrid-core[plot]
    out = tmp_path / "run"
    assert main(["bench", "peak_shaving", "--days", "1", "--seed", "3", "--out", str(out)]) == 0
    assert 'powergrid-core[plot]' in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["leaderboard.md", "results.json"]
    results = json.loads((out / "results.json").read_text())
    assert {r["policy"] for r in results["rows"]} == {"random", "rule", "none", "oracle"}
    assert all(r["failures_per_day"] == [0] for r in results["rows"])  # failed flows are recorded (none here)
    assert "--seed 3" in results["command"]  # the evaluation's seed is recorded
    for r in results["rows"]:  # each day's cost, safety, time in band and actions beside its objective (r43b F2, F7)
        assert all(len(r[key]) == 1 for key in ("per_day", "cost_per_day", "safety_per_day", "in_band_per_day",
                                                 "nonfinite_actions_per_day", "projected_actions_per_day",
                                                 "missing_actions_per_day"))
        assert r["days_x_seeds"] == [1, 1] and r["se"] is None  # one day: no standard error (null, not NaN)
    assert set(results["task_configs"]) == {"peak_shaving"} and "git" in results  # the code is identified (F5)


def test_a_library_without_its_extra_is_refused_before_any_training(tmp_path, capsys, monkeypatch, no_config):
    """Was: sb3_sac trained its minutes, then rllib_ppo's missing ray ended the run without results."""
    from powergrid.bench.cli import EXTRAS, _missing

    monkeypatch.setitem(sys.modules, "ray", None)  # as without powergrid-core[rllib]
    out = tmp_path / "run"
    assert main(["bench", "p2p_trading", "--days", "1", "--train-minutes", "1", "--libraries", "sb3_sac,rllib_ppo",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    if any(_missing(module) for module in EXTRAS["sb3"]):  # an install without [sb3]: the first library is refused
        assert err.startswith("powergrid: error: sb3_sac needs ") and err.endswith('pip install "powergrid-core[sb3]"\n')
    else:  # sb3_sac could train: the second library's missing extra is found before it does
        assert err == 'powergrid: error: rllib_ppo needs ray: pip install "powergrid-core[rllib]"\n'


def test_results_are_strict_json_with_a_nan_in_a_training_record(tmp_path):
    """Was: ``"critic_loss": NaN`` (sb3_bc takes no critic step) in results.json, which strict JSON parsers (jq,
    JavaScript) refuse; non-finite numbers are null."""
    from powergrid.bench.leaderboard import evaluate_task, write
    from powergrid.bench.tasks import TEST_DAYS, task_named

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    days = TEST_DAYS[:1]
    rows, lp = evaluate_task(task_named("peak_shaving"), days)
    training = {"peak_shaving/sb3_bc": {"steps": 0, "critic_loss": float("nan"), "bc_mse": float("inf")}}
    write(rows, lp, tmp_path, "test", days, training=training, plots=False)
    results = json.loads((tmp_path / "results.json").read_text(), parse_constant=refuse)
    assert results["training"]["peak_shaving/sb3_bc"] == {"steps": 0, "critic_loss": None, "bc_mse": None}
    assert '"critic_loss": null' in (tmp_path / "leaderboard.md").read_text()

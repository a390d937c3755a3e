"""``powergrid bench --train-steps N``: a training budget in env steps, reproducible whatever the machine's load;
bad budgets refused with one error naming the option."""

from __future__ import annotations

import json

import numpy as np
import pytest

from powergrid.cli import main

for _pack in ("powergrid_devices", "powergrid_protocols", "powergrid_datasets"):  # the tasks' configs need them
    pytest.importorskip(_pack)


@pytest.mark.parametrize(("task", "agents"), [("peak_shaving", 1), ("p2p_trading", 3)])
def test_a_step_budget_is_env_steps_in_each_librarys_unit(configs, task, agents):
    """SB3 counts agent transitions (env steps × learned agents), RLlib and MAPPO env steps; a demonstration day costs
    its 24 env steps (sb3_bc: all of the budget, whole days, at least one; sb3_sac_bc: half, the rest SAC's)."""
    from powergrid.bench.tasks import task_named
    from powergrid.bench.train import step_budget

    t = task_named(task)
    assert step_budget("sb3_ppo", t, 100) == {"max_steps": 100 * agents}
    assert step_budget("sb3_sac_residual", t, 100) == {"max_steps": 100 * agents}
    assert step_budget("rllib_ppo", t, 100) == {"max_steps": 100}
    assert step_budget("torchrl_mappo", t, 100) == {"max_steps": 100}
    assert step_budget("sb3_bc", t, 100) == {"demo_days": 4}  # 96 of the 100 steps: 4 whole days
    assert step_budget("sb3_bc", t, 5) == {"demo_days": 1}
    assert step_budget("sb3_sac_bc", t, 100) == {"demo_days": 2, "max_steps": (100 - 48) * agents}
    assert step_budget("sb3_sac_bc", t, 10) == {"demo_days": 1, "max_steps": 0}
    # r44d F7: the demonstrations stop at the 252 training days, SAC gets the rest (was 10,000 // 24 = 416 days asked,
    # 252 played, and SAC 20,000 − 416 × 24 = 10,016 env steps: 16,064 in all)
    assert step_budget("sb3_sac_bc", t, 20_000) == {"demo_days": 252, "max_steps": (20_000 - 252 * 24) * agents}


def test_the_same_step_budget_trains_the_same_policy_twice(configs, tmp_path):
    """Two runs of one command with ``--train-steps`` alone: the same trained objectives to the bit, and the record
    says the budget and the env steps. Residual SAC (240 warm-up steps, then a gradient step per step: 60 here) starts
    at the rule; its day differs from the rule's, so the two runs trained."""
    pytest.importorskip("stable_baselines3")
    pytest.importorskip("supersuit")
    found = []
    for run in ("a", "b"):
        out = tmp_path / run
        assert main(["bench", "peak_shaving", "--days", "1", "--train-steps", "300", "--libraries", "sb3_sac_residual",
                     "--out", str(out)]) == 0
        results = json.loads((out / "results.json").read_text())
        record = results["training"]["peak_shaving/sb3_sac_residual"]
        assert record["budget"] == {"kind": "steps", "steps": 300, "minutes": None}
        assert record["env_steps"] == record["steps"] == 300
        rows = {r["policy"]: r for r in results["rows"]}
        found.append(tuple(rows["sb3_sac_residual"][key] for key in ("per_day", "cost_per_day", "safety_per_day")))
        assert rows["sb3_sac_residual"]["per_day"] != rows["rule"]["per_day"]
        assert (f"| peak_shaving/sb3_sac_residual | 300 | — | {record['wall_s']} | {record['cpu_s']} | "
                f"{record['children_cpu_s']} | 300 | 300 steps |") in (out / "leaderboard.md").read_text()
    assert found[0] == found[1]
    assert np.isfinite(found[0][0]).all()


@pytest.mark.parametrize(("option", "message"), [
    (["--train-steps", "0"], "argument --train-steps: expected an integer ≥ 1, got 0"),
    (["--train-steps", "1e3"], "argument --train-steps: expected an integer, got '1e3'"),
    (["--train-minutes", "inf"], "--train-minutes: expected a finite number ≥ 0, got inf"),
    (["--train-minutes", "-1"], "--train-minutes: expected a finite number ≥ 0, got -1.0"),
])
def test_a_bad_budget_is_one_error_naming_the_option(configs, tmp_path, capsys, option, message):
    assert main(["bench", "peak_shaving", "--days", "1", *option, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("powergrid: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()

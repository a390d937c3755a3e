"""The oracle's sequential LP runs until it stops improving, and holds the regulators where its LP holds them."""

from __future__ import annotations

import pytest
import yaml

from powergrid.bench.oracle import replay, solve_day
from powergrid.bench.play import play
from powergrid.bench.tasks import task_named
from powergrid.env import MultiAgentPowerGridEnv

for _pack in ("powergrid_devices", "powergrid_protocols", "powergrid_datasets"):  # the tasks' configs need them
    pytest.importorskip(_pack)


def test_the_oracle_keeps_improving_on_the_negative_price_day(tmp_path, monkeypatch):
    """voltage_pv on 2023-05-27 (prices down to -15 $/MWh) as calibrated until 356a11f (100 $ per pu·bus·hour, lines
    from 100 %): six passes stopped at 265.0 $/day while the passes still gained 15-20 % each (12 passes: 186.2), so a
    coordinate search on the oracle's own actions beat it by 10 %. (At today's calibration six passes are enough.)"""
    raw = task_named("voltage_pv").raw()
    raw["reward"] = {"cost_weight": 1.0, "safety_weight": 100.0, "max_loading_percent": 100.0}
    (tmp_path / "voltage_pv.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setenv("POWERGRID_BENCH_CONFIGS", str(tmp_path))
    view = MultiAgentPowerGridEnv(task_named("voltage_pv").config("2023-05-27", dispatch_view=True))
    plan = solve_day(view)
    assert plan.ac_objective == pytest.approx(play(view, replay(plan)).objective)
    assert plan.ac_objective < 200.0
    assert play(view, "rule").objective > 400.0  # the rule's day: 438.2


@pytest.mark.parametrize("seed", [0, 6])  # 6: the day's index in `--days 12`
def test_the_oracle_beats_curtailing_all_pv_on_the_negative_price_day(seed):
    """voltage_pv on 2023-05-27 (prices down to -15 $/MWh): its LP held the regulators' taps while its reactive power
    moved them (their line-drop compensators read it), so its AC day (226.2 $ at seed 0, LP 178.3) lost to curtailing
    all PV all day (198.6 $). The second run keeps every relay in its band at the taps it holds."""
    task = task_named("voltage_pv")
    view = MultiAgentPowerGridEnv(task.config("2023-05-27", dispatch_view=True))
    plan = solve_day(view, seed)
    assert plan.ac_objective == pytest.approx(play(view, replay(plan), seed).objective)
    env = MultiAgentPowerGridEnv(task.config("2023-05-27"))
    assert plan.ac_objective < play(env, "zero", seed).objective  # 198.6 $ (seed 0), 199.2 (seed 6)
    assert plan.ac_objective - plan.objective < 0.03 * plan.ac_objective  # the LP held what the AC flow did

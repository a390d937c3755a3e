"""The no-action baselines (r47a F3): ``none`` (no learned agent sends an action) and, with several learned agents,
``none:A`` (A sends none, the others their rule) are played and reported beside the rule on every task. On task 5 the
ISO that sends no price signal beats the ISO's rule, which holds the market price 4 h (period 4) where the
microgrids' rules otherwise see the hourly price: leaderboard days 3,623.2 against the rule's 3,775.9 $/day, 12 test
days 3,072.3 against 3,184.3 (2023-07-27: 4,589.3 against 4,642.0)."""

from __future__ import annotations

import json

from powergrid.bench.leaderboard import evaluate_task, strongest_baseline, table, write
from powergrid.bench.tasks import TEST_DAYS, task_named

DAY = TEST_DAYS[:1]


def test_a_silent_iso_beats_the_rule_on_task_5_and_the_leaderboard_says_so(tmp_path):
    rows, lp = evaluate_task(task_named("hierarchy"), DAY)
    by = {r.policy: r for r in rows}
    assert list(by) == ["random", "rule", "none", "none:iso", "none:mg1", "oracle"]
    (silent,) = by["none:iso"].days
    (rule,) = by["rule"].days
    (nothing,) = by["none"].days
    assert silent.objective < rule.objective - 10.0  # 4,589.3 against 4,642.0 $/day
    assert silent.missing_actions == 24 and nothing.missing_actions == 2 * 24  # one / both learned agents, each hour
    assert by["none:mg1"].days[0].missing_actions == 24
    assert nothing.objective > rule.objective  # mg1's devices idle too: 5,298.5
    assert strongest_baseline(rows) is by["none:iso"]
    board = table(rows)
    assert "| hierarchy | none:iso |" in board and "⚠" not in board  # a baseline's missing actions are its policy
    note = next(line for line in board.splitlines() if line.startswith("hierarchy: the no-action baseline none:iso"))
    assert "beats the rule" in note and "1/1 days" in note
    write(rows, lp, tmp_path, "test", DAY, plots=False)
    record = {r["policy"]: r for r in json.loads((tmp_path / "results.json").read_text())["rows"]}
    assert record["none:iso"]["minus_rule"] < -10.0 and record["none:iso"]["days_ahead_of_rule"] == 1
    assert record["none"]["missing_actions_per_day"] == [48]


def test_a_learned_row_is_read_against_the_stronger_baseline():
    """A policy between the rule and the silent ISO (silent until noon, then the rule): ahead of the rule, behind the
    baseline; the note gives its gap closed against the baseline, negative."""
    def trained(env):
        return lambda e: {a: None if a == "iso" and e.tick < 12 else e.rule_action(a) for a in e.agents}

    rows, _ = evaluate_task(task_named("hierarchy"), DAY, {"half_silent": trained})
    by = {r.policy: r for r in rows}
    mine, best, rule = by["half_silent"].objective, by["none:iso"].objective, by["rule"].objective
    note = next(line for line in table(rows).splitlines() if line.startswith("hierarchy: the no-action baseline"))
    oracle = by["oracle"].objective
    assert best < mine < rule  # 4,589.3 < 4,630.8 < 4,642.0 $/day: gap closed 0.09 against the rule
    assert note.endswith(f"(none:iso − policy)/(none:iso − oracle): half_silent {(best - mine) / (best - oracle):.2f}.")
    assert (best - mine) / (best - oracle) < 0  # -0.58


def test_a_single_agent_task_has_one_no_action_row_and_no_note():
    rows, _ = evaluate_task(task_named("dispatch_mg"), DAY)
    by = {r.policy: r for r in rows}
    assert list(by) == ["random", "rule", "none", "oracle"]
    assert by["none"].objective > by["rule"].objective  # battery and DG idle: 8,327.8 against 5,942.3 $/day
    assert strongest_baseline(rows) is by["rule"]
    assert "no-action baseline" not in table(rows)

"""``powergrid bench TASK --policy [NAME=]MODULE:FACTORY``: a user's policy scored on the baselines' path (r43b F6),
its non-finite (r43b F7) and missing (r43c F2) actions counted and its row marked, and every bad spec one error naming
the option."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from powergrid.cli import main

for _pack in ("powergrid_devices", "powergrid_protocols", "powergrid_datasets"):  # the tasks' configs need them
    pytest.importorskip(_pack)

POLICIES = textwrap.dedent('''
    import numpy as np

    def rule(env):
        """The rule, as a user would write it: must score exactly the rule's row."""
        return lambda e: {a: e.rule_action(a) for a in e.agents}

    def nan_at_noon(env):
        """The rule, but every action NaN at hour 12 (the env replaces them)."""
        def act(e, observations):
            assert set(observations) == set(e.agents)
            out = {a: np.array(e.rule_action(a), np.float32) for a in e.agents}
            if e.tick == 12:
                for a in out:
                    out[a][:] = np.nan
            return out
        act.observes = True
        return act

    def says_nothing(env):
        """No action for any learned agent: an empty mapping at even hours, None for each at odd ones."""
        return lambda e: {} if e.tick % 2 == 0 else dict.fromkeys(e.agents)

    def raises(env):
        raise RuntimeError("weights.pt not found")

    def gives_a_number(env):
        return 3

    LIMIT = 3
''')


@pytest.fixture
def user_module(tmp_path, monkeypatch, configs):
    """A module of the user's in the current folder (not on Python's path otherwise), imported under a fresh name."""
    name = f"user_policies_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(POLICIES)
    monkeypatch.chdir(tmp_path)
    yield name
    sys.modules.pop(name, None)


def test_a_user_policy_is_scored_as_the_baselines_are(tmp_path, user_module, monkeypatch):
    """Was: no option (``--policy``: unrecognized arguments). A user's copy of the rule scores exactly the rule's row
    (the same play and scoring path), and one sending NaN at noon is counted (one action per day) and marked ⚠; one
    sending no actions is counted (each learned agent's 24 hours) and marked ⚠ (was: scored silently, 0 / 0)."""
    from powergrid.bench.tasks import TASKS, TEST_DAYS
    from powergrid.env import MultiAgentPowerGridEnv

    learned = len(MultiAgentPowerGridEnv(TASKS["peak_shaving"].config(TEST_DAYS[0])).possible_agents)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # no figures: faster
    out = tmp_path / "run"
    assert main(["bench", "peak_shaving", "--days", "1", "--out", str(out), "--policy", f"mine={user_module}:rule",
                 "--policy", f"{user_module}:nan_at_noon", "--policy", f"{user_module}:says_nothing"]) == 0
    results = json.loads((out / "results.json").read_text())
    rows = {r["policy"]: r for r in results["rows"]}
    assert list(rows) == ["random", "rule", "none", "mine", "nan_at_noon", "says_nothing", "oracle"]  # NAME defaults to FACTORY's
    for key in ("per_day", "cost_per_day", "safety_per_day", "in_band_per_day", "projected_actions_per_day"):
        assert rows["mine"][key] == rows["rule"][key]
    assert rows["mine"]["minus_rule"] == 0.0 and rows["mine"]["days_ahead_of_rule"] == 0
    assert rows["nan_at_noon"]["nonfinite_actions_per_day"] == [1] and rows["rule"]["nonfinite_actions_per_day"] == [0]
    assert rows["nan_at_noon"]["projected_actions_per_day"][0] >= 1
    assert rows["says_nothing"]["missing_actions_per_day"] == [24 * learned] == [rows["says_nothing"]["missing_actions"]]
    assert all(rows[name]["missing_actions_per_day"] == [0] for name in ("random", "rule", "mine", "nan_at_noon", "oracle"))
    board = (out / "leaderboard.md").read_text()
    assert "| peak_shaving | nan_at_noon ⚠ |" in board and "| peak_shaving | mine |" in board
    assert "⚠ the policy sent non-finite actions" in board
    assert "| 0 / 0 / 0 | 1 × 1 |" in board.split("| peak_shaving | rule |")[1].split("\n")[0]
    assert f"/ {24 * learned} | 1 × 1 |" in board.split("| peak_shaving | says_nothing ⚠ |")[1].split("\n")[0]
    assert "⚠ the policy sent no action (no key, or None) for learned agents" in board


@pytest.mark.parametrize(("spec", "found"), [
    ("{m}", "expected [NAME=]MODULE:FACTORY (e.g. mine=my_policies:make), got '{m}'"),
    ("a b={m}:rule", "expected a NAME of letters, digits and _ . + -, got 'a b'"),
    ("no_such_module_m43b:make", "no module 'no_such_module_m43b' (looked in {cwd} and on Python's path)"),
    ("{m}:absent", "module {m} ({cwd}/{m}.py) has no attribute 'absent'"),
    ("{m}:LIMIT", "{m}:LIMIT is a int, expected a factory (a callable: env → policy function)"),
    ("{m}:raises", "the factory raised RuntimeError: weights.pt not found"),
    ("{m}:gives_a_number", "the factory returned a int, expected a policy function (env → every learned agent's action)"),
    ("random={m}:rule", "the name 'random' is taken (by a baseline): give it another, NAME=…"),
])
def test_a_bad_policy_spec_is_one_error_naming_the_option(tmp_path, capsys, user_module, spec, found):
    spec = spec.format(m=user_module)
    assert main(["bench", "peak_shaving", "--days", "1", "--out", str(tmp_path / "run"), "--policy", spec]) == 2
    err = capsys.readouterr().err
    assert err == f"powergrid: error: --policy {spec}: {found.format(m=user_module, cwd=tmp_path)}\n"
    assert not (tmp_path / "run" / "results.json").exists()


def test_a_failing_factory_is_refused_before_any_training(tmp_path, capsys, user_module, monkeypatch):
    """With --train-minutes the factories are tried on the first day's env first: not after the training's minutes.
    (A stand-in library that fails if it is ever trained; its extra's check emptied so it needs none.)"""
    from powergrid.bench import cli, train

    def never(*args, **kwargs):
        raise AssertionError("trained before the factory was tried")

    monkeypatch.setitem(cli.EXTRAS, "sb3", ())
    monkeypatch.setattr(train, "sb3_ppo", never)
    spec = f"{user_module}:raises"
    assert main(["bench", "peak_shaving", "--days", "1", "--train-minutes", "1", "--libraries", "sb3_ppo",
                 "--out", str(tmp_path / "run"), "--policy", spec]) == 2
    assert capsys.readouterr().err == f"powergrid: error: --policy {spec}: the factory raised RuntimeError: weights.pt not found\n"


def test_a_module_failing_at_import_is_named_not_called_absent(tmp_path, monkeypatch):
    """A module that exists but fails at import (its own missing dependency, an error) is not reported absent."""
    from powergrid.bench.cli import load_policy
    from powergrid.bench.tasks import BenchError

    (tmp_path / "needs_m43b_absent.py").write_text("import m43b_absent_dependency\n")
    (tmp_path / "broken_m43b.py").write_text("raise ValueError('bad weights')\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BenchError, match=r"^--policy needs_m43b_absent:f: importing needs_m43b_absent raised "
                                         r"ModuleNotFoundError: No module named 'm43b_absent_dependency'$"):
        load_policy("needs_m43b_absent:f")
    with pytest.raises(BenchError, match=r"^--policy b=broken_m43b:f: importing broken_m43b raised ValueError: bad weights$"):
        load_policy("b=broken_m43b:f")

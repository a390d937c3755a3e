"""``powergrid bench --help`` states every option's default (r46: it stated only --days')."""

from __future__ import annotations

import argparse

import pytest

from powergrid.bench.cli import LIBRARIES
from powergrid.cli import build_parser, main

#: each option of ``powergrid bench`` and the default its help must state
DEFAULTS = {"--out": "bench-results", "--days": "4", "--train-minutes": "0", "--train-steps": "none",
            "--libraries": "all, " + ", ".join(LIBRARIES), "--seed": "0", "--seeds": "--seed", "--policy": "none"}


def _bench() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser({})._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["bench"]


def test_every_option_is_listed_here():
    options = {a.option_strings[-1] for a in _bench()._actions if a.option_strings and a.dest != "help"}
    assert options == set(DEFAULTS)


def test_bench_help_names_each_default(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["bench", "--help"])
    assert caught.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    bench = _bench()
    for action in bench._actions:
        if action.option_strings and action.dest != "help":
            option = action.option_strings[-1]
            shown = " ".join(bench._get_formatter()._expand_help(action).split())
            assert f"(default: {DEFAULTS[option]}" in shown, (option, shown)
            assert shown in text, option  # as --help prints it

"""Hostile and broken scenario files: mutants of every shipped config through ``powergrid validate``.

A seeded hypothesis run mutates the YAML text (truncation, byte damage, hostile snippets: tags, merge
keys, alias bombs, deep nesting, huge numbers, non-UTF-8) or the parsed tree (a value replaced by a
hostile one, a key dropped or added, a section of the wrong kind). Every mutant must end with exit
code 0 or 2; on 2 with exactly one ``powergrid: error: …`` line that is one of PowerGrid's own
messages (not an unexpected exception), never a traceback. A mutant that validates must also build,
reset and step once with only documented errors, and give finite observations and rewards. Nothing
may be written in the working folder.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from powergrid.cli import main
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import PowerGridError
from tests.fuzz.conftest import CONFIGS, MUTANTS, SEED, watchdog

TEXTS = {path.name: path.read_text(encoding="utf-8") for path in CONFIGS}
TREES = {name: yaml.safe_load(text) for name, text in TEXTS.items()}

SNIPPETS = [
    "? !!python/name:os.system\n: 1\n",
    "evil: !!python/object/apply:os.system ['echo pwned']\n",
    "x: &a [1, 2]\ny: {<<: *a}\n",
    "time: {<<: {step_minutes: 5}}\n",
    "? [1, 2]\n: 3\n",
    "? {a: 1}\n: 3\n",
    "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
    "deep: " + "[" * 200 + "]" * 200 + "\n",
    "seed: " + "9" * 5000 + "\n",
    "seed: -5\n",
    "name: ../../../../tmp/x\n",
    "name: /etc/passwd\n",
    "\t- tab\n",
    "%YAML 1.1\n---\n",
    "--- second\n",
    "*undefined\n",
    "key: 'unterminated\n",
]
HOSTILE = [None, True, "", " ", "x" * 300, "../../../tmp/x", "a/b", "mod:attr", -1, 0, 1, 10**30, -(10**30),
           2**63, 1e308, -1e308, 5e-324, 0.5, 1000000000, [], [1, 2], {}, {"a": 1}, [[[]]], "2023-13-45",
           "NaN", ".inf"]


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indices) inside a parsed config, the root included."""
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _get(node: Any, path: tuple) -> Any:
    for step in path:
        node = node[step]
    return node


@st.composite
def tree_mutant(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(sorted(TREES)))
    tree = yaml.safe_load(TEXTS[name])
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(tree) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _get(tree, path[:-1]), path[-1]
        op = draw(st.sampled_from(["value", "value", "value", "number", "drop", "add"]))
        if op == "value":
            parent[key] = copy.deepcopy(draw(st.sampled_from(HOSTILE)))  # a fresh copy: later mutations may edit it
        elif op == "number":
            parent[key] = draw(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                         st.integers(-(10**25), 10**25)))
        elif op == "drop":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "id", "type", "params", "period", "seed", "name"]))] = \
                copy.deepcopy(draw(st.sampled_from(HOSTILE)))
    return yaml.safe_dump(tree, sort_keys=False, width=10**6)


@st.composite
def text_mutant(draw: st.DrawFn) -> bytes:
    raw = TEXTS[draw(st.sampled_from(sorted(TEXTS)))].encode()
    op = draw(st.sampled_from(["snippet", "snippet", "truncate", "bytes", "line"]))
    if op == "snippet":
        lines = raw.split(b"\n")
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, draw(st.sampled_from(SNIPPETS)).encode())
        return b"\n".join(lines)
    if op == "truncate":
        return raw[: draw(st.integers(0, len(raw)))]
    if op == "bytes":
        data = bytearray(raw)
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    lines = raw.split(b"\n")
    i = draw(st.integers(0, len(lines) - 1))
    j = draw(st.integers(0, len(lines) - 1))
    lines[i] = lines[j]  # a line repeated in another place (duplicate keys, wrong indentation)
    return b"\n".join(lines)


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _step_once(path: Path) -> None:
    """Build, reset and step the validated mutant: only PowerGrid's documented errors, finite outputs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            env = MultiAgentPowerGridEnv.from_config(path)
            observations, _ = env.reset(seed=0)
            actions = {a: env.action_space(a).sample() for a in env.agents}
            observations, rewards, *_ = env.step(actions)
        except PowerGridError:
            return
    for agent, obs in observations.items():
        assert np.isfinite(obs).all(), f"{path.name}: non-finite observation of {agent}"
    for agent, reward in rewards.items():
        assert math.isfinite(reward), f"{path.name}: non-finite reward of {agent}"


@pytest.fixture(scope="module")
def shipped_configs_validate() -> None:
    """Every shipped config validates (and its network is built once, before the watchdog runs)."""
    for config in CONFIGS:
        code, _, err = _cli(["validate", str(config)])
        assert code == 0, err


@seed(SEED)
@settings(max_examples=MUTANTS, deadline=None, database=None, derandomize=False,
          suppress_health_check=list(HealthCheck))
@given(mutant=st.one_of(tree_mutant().map(str.encode), text_mutant()))
def test_every_mutant_ends_in_ok_or_one_error_line(mutant: bytes, tmp_path_factory, tally,
                                                    shipped_configs_validate) -> None:
    folder = tmp_path_factory.mktemp("mutant")
    path = folder / "mutant.yaml"
    path.write_bytes(mutant)
    with watchdog("powergrid validate"):
        code, out, err = _cli(["validate", str(path)])
    assert "Traceback" not in out + err
    assert code in (0, 2), (code, err)
    errors = [line for line in err.splitlines() if not line.startswith("powergrid: warning: ")]
    if code == 2:
        assert len(errors) == 1 and errors[0].startswith("powergrid: error: "), err
        assert "run with --debug" not in errors[0], f"an unexpected exception, not a PowerGrid error: {errors[0]}"
        tally["validate: error (exit 2)"] += 1
    else:
        assert not errors, err
        tally["validate: ok (exit 0)"] += 1
        with watchdog("build, reset and one step"):
            _step_once(path)
        tally["one step: ran or documented error"] += 1
    assert sorted(p.name for p in folder.iterdir()) == ["mutant.yaml"]
    assert not [p for p in Path.cwd().iterdir() if p.name != "cache"], "a mutant wrote into the working folder"
    tally["mutants"] += 1

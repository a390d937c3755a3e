"""Run one page's code blocks in order, in the current folder: ``python runner.py BLOCKS.json``.

python: executed in one namespace per page (as a reader would, top to bottom); bash: every line
is a ``powergrid`` command (optionally after ``NAME=value`` assignments), run through the CLI in a
subprocess and expected to exit 0; yaml: a whole scenario is built, a fragment (sections such as
``datasets:``, an agent's keys, a list of agents) is built in the first shipped scenario it fits
(:data:`BASES`); toml and json: parsed. The first failure
ends the run with the page and line.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import traceback
from pathlib import Path

import tomllib
import yaml

from tests.docs.blocks import TEXT  # the repository root is on PYTHONPATH (conftest.run_env)


def bash(code: str, where: str) -> None:
    for line in code.replace("\\\n", " ").split("\n"):
        words = shlex.split(line, comments=True)
        env = dict(os.environ)
        while words and "=" in words[0] and not words[0].startswith("-"):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        if not words:
            continue
        if words[0] != "powergrid":
            raise SystemExit(f"{where}: `{line.strip()}` is not a powergrid command; mark the block "
                             "<!-- docs-test: skip REASON --> if it cannot run")
        print(f"$ {line.strip()}", flush=True)
        done = subprocess.run([sys.executable, "-m", "powergrid.cli", *words[1:]], env=env)
        if done.returncode != 0:
            raise SystemExit(f"{where}: `{line.strip()}` exited {done.returncode}")


#: Shipped scenarios a fragment is tried in, in this order (the first it builds in passes).
BASES = ("ieee34_3mg.yaml", "ieee34_3mg_iso.yaml", "hierarchical_3level.yaml", "cigre_mv_microgrid.yaml")


def _merge(base: dict, fragment, agent_keys: tuple[str, ...]) -> dict:
    """``base`` with ``fragment`` applied: top-level sections replace the base's; a mapping of agent keys
    goes into the base's first grid agent; a list of agents is merged by id (``...`` stands for the rest)."""
    data = dict(base)
    agents = [dict(a) for a in data["agents"]]
    if isinstance(fragment, list):
        for item in fragment:
            match = next((a for a in agents if a["id"] == item.get("id")), None)
            if match is None:
                raise KeyError(f"no agent {item.get('id')!r}")
            match.update({k: v for k, v in item.items() if k != "..."})
    elif set(fragment) <= set(agent_keys) and not {"network", "agents"} & set(fragment):
        next(a for a in agents if a.get("kind") == "grid").update(fragment)
    else:
        data.update(fragment)
    data["agents"] = agents
    return data


def scenario(code: str, where: str) -> None:
    """Build a yaml block: a whole scenario, or a fragment (sections, agent keys, agents) in a shipped scenario."""
    from powergrid.builder import build_scenario
    from powergrid.config import AGENT_KEYS, TOP_KEYS, EnvConfig

    data = yaml.safe_load(code)
    if isinstance(data, dict) and {"network", "agents"} <= set(data):
        build_scenario(EnvConfig.from_text(code, file=where))
        return
    fits = (isinstance(data, dict) and set(data) <= set(TOP_KEYS) | set(AGENT_KEYS)) or (
        isinstance(data, list) and all(isinstance(a, dict) and "id" in a for a in data))
    if not fits:
        raise SystemExit(f"{where}: a yaml block must be a scenario, scenario sections, agent keys or agents, got {data!r}")
    errors = []
    for name in BASES:
        try:
            merged = _merge(yaml.safe_load(Path("configs", name).read_text()), data, AGENT_KEYS)
            build_scenario(EnvConfig.from_text(yaml.safe_dump(merged), file=where))
            return
        except Exception as exc:  # not this scenario: try the next
            errors.append(f"configs/{name}: {type(exc).__name__}: {exc}")
    raise SystemExit(f"{where}: the fragment builds in none of the shipped scenarios:\n  " + "\n  ".join(errors))


def main(path: str) -> None:
    namespace: dict = {"__name__": "__main__"}
    for block in json.loads(Path(path).read_text()):
        where, lang, code = f"docs/{block['page']}:{block['line']}", block["lang"], block["code"]
        if block["marker"] == "skip" or lang in TEXT:
            continue
        if block["marker"] == "file":
            target = Path(block["arg"])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code + "\n")
            continue
        try:
            if lang in ("python", "py"):
                exec(compile(code, where, "exec"), namespace)
            elif lang in ("bash", "sh", "shell"):
                bash(code, where)
            elif lang in ("yaml", "yml"):
                scenario(code, where)
            elif lang == "toml":
                tomllib.loads(code)
            elif lang == "json":
                json.loads(code)
            else:
                raise SystemExit(f"{where}: no rule to run a {lang!r} block")
        except SystemExit:
            raise
        except BaseException:
            traceback.print_exc()
            raise SystemExit(f"{where}: the {lang} block failed") from None


if __name__ == "__main__":
    main(sys.argv[1])

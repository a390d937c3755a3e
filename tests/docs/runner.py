"""Run one page's code blocks in order, in the current folder: ``python runner.py BLOCKS.json``.

python: executed in one namespace per page (as a reader would, top to bottom); bash: every line
is a ``powergrid`` command (optionally after ``NAME=value`` assignments), run through the CLI in a
subprocess and expected to exit 0; yaml: a whole scenario is built, a section (``datasets:``,
``loads:``…) is built into ``configs/ieee34_3mg.yaml``; toml and json: parsed. The first failure
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


def scenario(code: str, where: str) -> None:
    from powergrid.builder import build_scenario
    from powergrid.config import TOP_KEYS, EnvConfig

    data = yaml.safe_load(code)
    if not isinstance(data, dict) or not set(data) <= set(TOP_KEYS):
        raise SystemExit(f"{where}: a yaml block must be a scenario or scenario sections (keys {TOP_KEYS}), "
                         f"got {sorted(data) if isinstance(data, dict) else type(data).__name__}")
    if not {"network", "agents"} <= set(data):
        data = {**yaml.safe_load(Path("configs/ieee34_3mg.yaml").read_text()), **data}
    build_scenario(EnvConfig.from_text(yaml.safe_dump(data), file=where))


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

"""Generate the reference pages from the code, so they cannot drift from it.

- ``yaml_reference()``: every section of a scenario file from the configuration classes
  (:mod:`powergrid.config`) and every installed plugin's parameters from its declaration
  (:func:`powergrid.params.params_of`: units, defaults, expected values), with each device's
  action space at its default parameters.
- ``cli_reference()``: ``powergrid --help`` and the help of every built-in sub-command.

The mkdocs hook (``hooks.py``) adds both pages to the site at build time; ``python
docs/tools/reference.py yaml|cli`` prints one.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import re
import sys
from typing import Any

import attrs
import gymnasium
import numpy as np

from powergrid import config
from powergrid.params import describe_params, params_of
from powergrid.plugins import get_registry

#: Scenario sections backed by a parameter class, in the order of ``config.TOP_KEYS``.
SECTIONS: dict[str, type] = {
    "time": config._TimeNumbers,
    "reward": config.RewardConfig,
    "loads": config.LoadsConfig,
    "spaces": config.SpacesConfig,
}
#: The plugin kinds that take ``params:`` in YAML, with the key that names them there.
PLUGIN_KINDS = {"network": "network.type", "device": "agents[].type", "protocol": "agents[].protocol.type, horizontal[].type",
                "dataset": "datasets.ROLE.provider", "solver": "solver.type", "policy": "agents[].policy"}


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _first_line(obj: Any) -> str:
    """The first paragraph of ``obj``'s docstring as Markdown (reST roles and double backticks made plain code)."""
    doc = (inspect.getdoc(obj) or "").split("\n\n")[0].replace("\n", " ")
    return re.sub(r":\w+:`~?([^`]+)`", r"`\1`", doc).replace("``", "`")


def params_table(cls: type) -> list[str]:
    """A Markdown table of ``cls``'s fields: name, unit, default, expected values, meaning."""
    rows = describe_params(cls)
    if not rows:
        return ["No parameters.", ""]
    lines = ["| parameter | unit | default | expected | meaning |", "| --- | --- | --- | --- | --- |"]
    for (name, unit, default, expected), field in zip(rows, attrs.fields(cls)):
        lines.append(f"| `{name}` | {_cell(unit or '')} | `{_cell(default)}` | {_cell(expected)} | "
                     f"{_cell(field.metadata.get('doc', ''))} |")
    return [*lines, ""]


def _space(space: gymnasium.spaces.Space) -> str:
    if isinstance(space, gymnasium.spaces.Box):
        if space.shape == (0,):
            return "none (it only measures)"
        low, high = (np.round(np.asarray(b, float), 4).tolist() for b in (space.low, space.high))
        return f"Box {list(space.shape)}: low {low}, high {high}"
    if isinstance(space, gymnasium.spaces.Discrete):
        return f"Discrete: {int(space.start)} … {int(space.start + space.n - 1)}"
    return str(space)


def _device_action(cls: type, params_cls: type) -> str:
    try:
        device = cls(params_cls(), 0.25)
    except Exception as exc:  # a device whose parameters have no defaults (e.g. a Modbus address)
        return f"needs its parameters ({type(exc).__name__})"
    return _space(device.action_space)


def yaml_reference() -> str:
    """The YAML reference page (Markdown)."""
    out = ["# YAML reference", "",
           "Generated from the configuration classes and every installed plugin's parameter declaration "
           "when the site is built (`docs/tools/reference.py`): it cannot drift from the code. "
           "`powergrid plugins --params NAME` prints the same table for one plugin. "
           "Units: MW, MWh, Mvar, MVA, pu, $ and $/MWh, h, s; `1` is dimensionless.", "",
           "## Top-level keys", "", "`" + "`, `".join(config.TOP_KEYS) + "`; `network` and `agents` are required "
           "(see [Scenario files](../configuration.md) for what each holds).", "",
           "## Agent keys", "", "`" + "`, `".join(config.AGENT_KEYS) + "`. " + _first_line(config.AgentConfig), "",
           f"`time:` keys: `{'`, `'.join(config.TIME_KEYS)}`; `link:` keys (`down`/`up`): "
           f"`{'`, `'.join(config.LINK_KEYS)}`; `events:` keys: `{'`, `'.join(config.EVENT_KEYS)}`.", ""]
    time = config.TimeConfig()
    out += ["## `time:`", "", _first_line(config.TimeConfig), "",
            "| key | default | expected |", "| --- | --- | --- |",
            f"| `physics` | `{time.physics_s} s` | a duration: `30s`, `15min`, `1h` (the physics step) |",
            f"| `episode` | `{time.episode_s} s` | a duration, a whole number of physics steps |", ""]
    for section, cls in SECTIONS.items():
        title = "The older `time:` keys" if section == "time" else f"`{section}:`"
        out += [f"## {title}", "", _first_line(cls), "", *params_table(cls)]
    registry = get_registry()
    for kind, where in PLUGIN_KINDS.items():
        records = registry.records(kind)
        out += [f"## {kind.capitalize()} plugins", "", f"Named by `{where}` ({len(records)} installed).", ""]
        for record in records:
            factory = record.load()
            params_cls = params_of(factory, record.name)
            out += [f"### `{record.name}`", "", f"*{record.provider}* — {_cell(_first_line(factory) or record.summary)}", ""]
            if kind in ("policy",):
                continue
            if kind == "device":
                out += [f"Action at the default parameters: {_device_action(factory, params_cls)}.", ""]
            out += params_table(params_cls)
    return "\n".join(out).rstrip() + "\n"


def _parsers(parser: argparse.ArgumentParser, prefix: str) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(prefix, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if any(isinstance(a, argparse._HelpAction) for a in sub._actions):  # pack commands have their own
                    found += _parsers(sub, f"{prefix} {name}")
    return found


def cli_reference() -> str:
    """The command-line reference page (Markdown): the help of every built-in command."""
    from powergrid.cli import build_parser

    out = ["# Command line", "",
           "Generated from the parser when the site is built. Pack commands (`powergrid datasets`, "
           "`powergrid hil`) print their own `--help`; on a core-only install `powergrid --help` names the "
           "pack that provides each. Every bad input ends with one line `powergrid: error: …` and exit code 2.", ""]
    for name, parser in _parsers(build_parser(), "powergrid"):
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            parser.print_help()
        out += [f"## `{name}`", "", "```text", text.getvalue().rstrip(), "```", ""]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write({"yaml": yaml_reference, "cli": cli_reference}[sys.argv[1]]())

"""``powergrid tree SCENARIO``: each agent with its kind, bus and policy, children indented."""

from __future__ import annotations

import argparse

from powergrid.builder import build_scenario
from powergrid.cli import ArgumentParser
from powergrid.config import EnvConfig


def lines(agent, depth: int = 0) -> list[str]:
    """``agent`` and everything below it, one line each."""
    where = f" at bus {agent.bus}" if hasattr(agent, "bus") else ""
    protocol = f" via {type(agent.protocol).__name__}" if getattr(agent, "protocol", None) else ""
    text = [f"{'  ' * depth}{agent.id}: {type(agent).__name__}{where}, policy {agent.policy}{protocol}"]
    for child in agent.children:
        text += lines(child, depth + 1)
    return text


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog="powergrid tree", description="Print a scenario's agent tree.")
    parser.add_argument("scenario", help="a scenario YAML file")
    args: argparse.Namespace = parser.parse_args(argv)
    scenario = build_scenario(EnvConfig.from_yaml(args.scenario))  # errors: one line from powergrid's handler
    for root in scenario.roots:
        print("\n".join(lines(root)))
    return 0

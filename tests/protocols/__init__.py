"""The example configs the protocol tests run: read from the repository's ``configs/`` beside ``tests/`` (nox installs
the packages non-editable, so nothing is looked for beside them)."""

from __future__ import annotations

from pathlib import Path

import yaml

from powergrid.env import MultiAgentPowerGridEnv

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def example_config(name: str) -> dict:
    """``configs/<name>.yaml`` as a mapping, as written (its own spaces)."""
    return yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())


def example_env(name: str, **agent_edits: dict) -> MultiAgentPowerGridEnv:
    """``configs/<name>.yaml`` in physical units (actions MW, $/MWh) with raw observations, not reset;
    ``agent_edits`` {agent id: {field: value}} update those agents' entries (e.g. ``mg2={"policy": "learned"}``)."""
    data = example_config(name)
    data["spaces"] = {"action": "physical", "observation": "raw"}
    unknown = set(agent_edits) - {agent["id"] for agent in data["agents"]}
    if unknown:
        raise KeyError(f"configs/{name}.yaml has no agents {sorted(unknown)}")
    for agent in data["agents"]:
        agent.update(agent_edits.get(agent["id"], {}))
    return MultiAgentPowerGridEnv.from_config(data)

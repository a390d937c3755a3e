"""Scenario mappings for core tests (only core built-ins and the local ConstantPower device)."""

from __future__ import annotations

from pathlib import Path

import powergrid

LOCAL_PLUGINS = Path(__file__).parent / "local_plugins"


def load_local() -> None:
    powergrid.load_plugins(LOCAL_PLUGINS)


def two_feeders(network: str = "case33bw", **extra) -> dict:
    """Two learned device agents and a grid agent of two rule-driven devices on ``network``.

    Actions are in physical units (the ConstantPower scale, 0–2) unless ``extra`` sets ``spaces``.
    """
    extra.setdefault("spaces", {"action": "physical"})
    return {
        "name": "core_two_feeders",
        "network": {"type": network},
        "time": {"step_minutes": 15, "steps_per_episode": 8},
        "agents": [
            {"id": "a", "type": "ConstantPower", "bus": 5, "policy": "learned", "params": {"p_mw": 0.3, "q_mvar": 0.1}},
            {"id": "b", "type": "ConstantPower", "bus": 17, "policy": "learned", "period": 4, "params": {"p_mw": -0.2}},
            {"id": "mg", "kind": "grid", "policy": "learned", "children": ["c", "d"]},
            {"id": "c", "type": "ConstantPower", "bus": 24, "policy": "random", "params": {"p_mw": 0.5}},
            {"id": "d", "type": "ConstantPower", "bus": 30, "params": {"p_mw": 0.2}},
        ],
        **extra,
    }


def two_feeders_of(device: str) -> dict:
    """:func:`two_feeders` with its ``ConstantPower`` devices of type ``device`` (a renamed copy of that plugin)."""
    config = two_feeders()
    for agent in config["agents"]:
        if agent.get("type") == "ConstantPower":
            agent["type"] = device
    return config

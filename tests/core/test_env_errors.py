"""Mistakes in making or moving an environment: one error that says what to do."""

from __future__ import annotations

import pytest

from powergrid.env import MultiAgentPowerGridEnv

pytest.importorskip("powergrid_devices", reason="the PV comes with powergrid-devices")

SCENARIO = {"name": "one_pv", "network": {"type": "case33bw"}, "time": {"step_minutes": 60, "steps_per_episode": 2},
            "agents": [{"id": "pv", "type": "PV", "bus": 5, "policy": "learned"}]}


def test_a_mapping_given_to_the_constructor_points_to_from_config():
    # r40 F9: AttributeError: 'dict' object has no attribute 'network' (from inside the builder)
    with pytest.raises(TypeError, match=r"^MultiAgentPowerGridEnv\(config\): expected an EnvConfig, got dict; build "
                                        r"from a YAML path or a mapping with MultiAgentPowerGridEnv\.from_config"):
        MultiAgentPowerGridEnv(SCENARIO)


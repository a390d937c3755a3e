"""The docs' example scenarios with a learned agent give it a reward that its actions move (a meter bills energy)."""

from __future__ import annotations

import numpy as np
import yaml

from powergrid.env import MultiAgentPowerGridEnv
from tests.docs.blocks import DOCS, blocks
from tests.docs.test_examples import run


def _tutorial_scenario() -> dict:
    """tutorial-custom-device.md's my_storage.yaml, its HeatStorage (the tutorial's own package) an ESS of the
    same parameters."""
    block = next(b for b in blocks(DOCS / "tutorial-custom-device.md") if b.arg == "my_storage.yaml")
    return yaml.safe_load(block.code.replace("type: HeatStorage", "type: ESS"))


def test_the_tutorial_scenario_pays_its_learned_agent_for_what_it_does():
    # r40 F8: no GridConnection under mg, so its reward was 0.00 at every step whatever it did
    env = MultiAgentPowerGridEnv.from_config(_tutorial_scenario())
    returns = []
    for level in (-1.0, 1.0):  # every setpoint at one end of its range all day
        env.reset(seed=0)
        total = 0.0
        while env.agents:
            total += env.step({"mg": np.full(env.action_space("mg").shape, level, np.float32)})[1]["mg"]
        returns.append(total)
    assert returns[0] != returns[1] and all(r < 0 for r in returns), returns


def test_the_dataset_guide_scenario_pays_its_learned_agent_for_what_it_does(examples_path):
    # r40 F8: docs/examples/dataset/scenario.yaml had no GridConnection: reward 0.00 at every step, and a warning
    # that its battery is behind no meter
    out = run(examples_path, """
        import warnings
        import numpy as np
        from powergrid.env import MultiAgentPowerGridEnv

        warnings.simplefilter("error")
        env = MultiAgentPowerGridEnv.from_config("docs/examples/dataset/scenario.yaml")
        returns = []
        for level in (-1.0, 1.0):
            env.reset(seed=0)
            total = 0.0
            while env.agents:
                total += env.step({"mg": np.full(env.action_space("mg").shape, level, np.float32)})[1]["mg"]
            returns.append(total)
        assert returns[0] != returns[1] and all(r < 0 for r in returns), returns
        print("ok")
    """)
    assert out.strip().endswith("ok")

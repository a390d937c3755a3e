"""Every protocol is usable by name from YAML: the example configs run and pass the PettingZoo API test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from powergrid.env import MultiAgentPowerGridEnv

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
NAMES = ["p2p_3mg", "consensus_3mg", "admm_3mg", "lmp_market", "volt_var", "droop"]
KEY = {"p2p_3mg": "P2PTrading", "consensus_3mg": "Consensus", "admm_3mg": "ADMMDispatch", "lmp_market": "LMPMarket",
       "volt_var": "VoltVar", "droop": "Droop"}


@pytest.mark.parametrize("name", NAMES)
def test_example_config_passes_the_parallel_api_test(name):
    env = MultiAgentPowerGridEnv.from_config(CONFIGS / f"{name}.yaml")
    parallel_api_test(env, num_cycles=50)
    env.reset(seed=3)
    for _ in range(6):
        _, rewards, _, _, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
        assert all(np.isfinite(r) for r in rewards.values())
        assert infos["mg1"]["converged"]
    assert KEY[name] in infos["mg1"]

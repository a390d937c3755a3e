"""The SB3 VecEnv is per tick: a learned agent that does not act at every tick is warned about at construction."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("stable_baselines3")

from powergrid.rl.sb3 import PowerGridVecEnv

from .test_sb3_vector import short


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("POWERGRID_OFFLINE", "1")  # the CAISO 2023 data shipped with the dataset pack


def test_an_agent_acting_less_often_than_every_tick_is_named_with_its_period():
    # every slot got a transition at every tick, the multi-rate agent's action ignored at 3 of its 4, silently (r41b
    # F4: hierarchical_3level's mgs at 15 min over 1-min ticks, 14 of 15 transitions with an ignored action)
    config = short(8)
    agents = {a["id"]: a for a in config["agents"]}
    agents["mg1"]["period"] = "1h"  # every 4 physics steps of 15 min
    agents["mg1"]["events"] = {"voltage": True}  # also acts on voltage events, named with them
    agents["mg3"]["events"] = {"voltage": True}  # acts at every tick all the same: events only add actions (r41c F2)
    with pytest.warns(UserWarning) as caught:
        venv = PowerGridVecEnv(config, 1)
    venv.close()
    message = "\n".join(str(w.message) for w in caught if "PowerGridVecEnv" in str(w.message))
    assert "'mg1' (every 1h and on events, ticks of 15min)" in message, message
    assert "'mg2'" not in message and "'mg3'" not in message and "info['acting']" in message and "SingleAgentView" in message


def test_agents_acting_at_every_tick_are_not_warned_about():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PowerGridVecEnv(short(), 1).close()

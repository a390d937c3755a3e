"""The reset's random streams: each consumer gets the child ``Generator.spawn`` would give it, built alone."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv, _stream

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "ieee34_3mg.yaml"


def test_a_stream_draws_like_the_spawned_child():
    for seed in (0, 7, 2**70):
        rng = np.random.default_rng(seed)
        rng.spawn(3)  # children numbered from what was spawned before
        spawned = rng.spawn(5)
        seq = np.random.default_rng(seed).bit_generator.seed_seq
        for key, child in enumerate(spawned, start=3):
            assert (_stream(seq, key).random(8) == child.random(8)).all()
        grandchild = spawned[1].spawn(3)[2]
        assert (_stream(spawned[1].bit_generator.seed_seq, 2).integers(2**63, size=4) == grandchild.integers(2**63, size=4)).all()


def _initial_socs(env: MultiAgentPowerGridEnv, rngs: list[np.random.Generator]) -> list[float]:
    """The initial SOC each ESS of ``env`` draws from its rng in ``rngs`` (device order), on copies."""
    socs = []
    for d, rng in zip(env.scenario.device_agents, rngs):
        if type(d.device).__name__ == "ESS":
            device = copy.deepcopy(d.device)
            device.reset(rng)
            socs.append(device.soc)
    return socs


def test_devices_draw_from_the_last_children_of_each_resets_spawn():
    pytest.importorskip("powergrid_devices", reason="ieee34_3mg's batteries come with powergrid-devices")
    env = MultiAgentPowerGridEnv.from_config(str(CONFIG))
    s = env.scenario
    n = 3 + len(s.device_agents) + len(s.agents) + len(s.horizontal)  # streams per reset
    rng = np.random.default_rng(11)
    for seed in (11, None, None):  # a seeded reset, then the next children of the same sequence
        env.reset(seed=seed)
        children = rng.spawn(n)
        expected = _initial_socs(env, children[::-1])  # the first device takes the last child, and so on
        socs = [d.device.soc for d in s.device_agents if type(d.device).__name__ == "ESS"]
        assert socs == expected
        assert len(set(socs)) == len(socs)  # soc_init_spread > 0: the draws differ

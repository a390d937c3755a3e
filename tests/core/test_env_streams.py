"""The reset's random streams: each consumer gets the child ``Generator.spawn`` would give it, built alone."""

from __future__ import annotations

import copy
from pathlib import Path

import attrs
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


def test_only_devices_that_draw_at_reset_get_their_stream_and_every_key_stays():
    """A DG or ESS without an initial spread draws nothing (no stream built for it); the ones with a spread draw
    the child of their position in the spawn, as when every device got its stream."""
    pytest.importorskip("powergrid_devices", reason="the batteries and generators come with powergrid-devices")
    params = [("ESS", {"soc_init_spread": 0.3}), ("DG", {"init_spread": 1.0, "min_up_h": 1.0}), ("ESS", {}),
              ("DG", {}), ("PV", {}), ("DG", {"init_spread": 0.5, "min_down_h": 2.0})]
    agents = [{"id": f"d{i}", "type": kind, "bus": bus, "params": p}
              for i, ((kind, p), bus) in enumerate(zip(params, ("802", "806", "808", "812", "814", "850")))]
    env = MultiAgentPowerGridEnv.from_config({"name": "streams", "network": {"type": "ieee34"}, "agents": agents,
                                              "time": {"step_minutes": 15, "steps_per_episode": 8}})
    s = env.scenario
    draws_at_reset = [d.device.draws_at_reset() for d in s.device_agents]
    assert draws_at_reset == [True, True, False, False, False, True]
    n = 3 + len(s.device_agents) + len(s.agents) + len(s.horizontal)
    rng = np.random.default_rng(5)
    for seed in (5, None):
        env.reset(seed=seed)
        children = rng.spawn(n)[::-1]  # the first device takes the last child, and so on
        for d, child, draws in zip(s.device_agents, children, draws_at_reset):
            device = copy.deepcopy(d.device)
            device.reset(child)
            assert device.state_dict() == d.device.state_dict()
            if draws:  # its state depends on the stream
                device.reset(np.random.default_rng(123))
                assert device.state_dict() != d.device.state_dict()


def test_a_spread_given_after_the_env_is_built_draws_from_the_devices_own_seeded_stream():
    """Whether a device draws is asked at every reset: a battery given an initial SOC spread between episodes
    (domain randomisation by new parameters) repeats under the same seed and differs between seeds."""
    pytest.importorskip("powergrid_devices", reason="the batteries come with powergrid-devices")
    agents = [{"id": f"b{i}", "type": "ESS", "bus": bus} for i, bus in enumerate(("802", "806", "808"))]
    env = MultiAgentPowerGridEnv.from_config({"name": "spread_later", "network": {"type": "ieee34"}, "agents": agents,
                                              "time": {"step_minutes": 15, "steps_per_episode": 8}})
    batteries = [d.device for d in env.scenario.device_agents]
    assert not any(b.draws_at_reset() for b in batteries)
    for b in batteries:
        b.params = attrs.evolve(b.params, soc_init_spread=0.3)

    def socs(seed: int) -> list[float]:
        env.reset(seed=seed)
        return [b.soc for b in batteries]

    first = socs(1)
    assert socs(1) == first
    assert socs(2) != first
    assert len(set(first)) == 3  # each battery its own stream

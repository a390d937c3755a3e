"""A fast setpoint parent (:class:`powergrid.batching.FastSetpoints`) that sends no action (None, or its key absent):
the children that take its action apply their defaults as in the tree walk, held between the parent's actions while
they act at their own rates, kept through a pickle, forgotten at reset; children in kernel batches or solo."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

import powergrid.batching as batching
from powergrid.env import MultiAgentPowerGridEnv

pytest.importorskip("powergrid_devices", reason="the ESS, DG and PV come with powergrid-devices")
pytest.importorskip("powergrid_protocols", reason="the setpoint protocol comes with powergrid-protocols")

DG_MW = 0.05  # the DG's rule runs it at p_max (its marginal cost 5 $/MWh is below the price); its default is off


def _config() -> dict[str, Any]:
    """One learned setpoint parent acting every 2nd physics step from the 2nd (offset 1): at tick 0 its children
    take its rule; two PVs (default and rule MPPT), an ESS (idle) and a DG, acting every 1, 2 or 3 steps."""
    kids = [{"id": "pv1", "type": "PV", "bus": 17, "params": {"p_max_mw": 0.1}},
            {"id": "pv2", "type": "PV", "bus": 18, "period": 2, "params": {"p_max_mw": 0.1}},
            {"id": "ess", "type": "ESS", "bus": 24, "period": 3, "offset": 2, "params": {"p_max_mw": 0.05, "capacity_mwh": 0.2}},
            {"id": "dg", "type": "DG", "bus": 30, "params": {"p_max_mw": DG_MW, "cost_a": 0.0, "cost_b": 5.0}}]
    return {"name": "fast_missing", "network": {"type": "case33bw"},
            "time": {"physics": "1h", "episode": "8h", "start_hour": 9},
            "spaces": {"action": "physical", "observation": "raw"}, "reward": {"storage_value": "none"},
            "agents": [{"id": "mg", "kind": "grid", "policy": "learned", "protocol": {"type": "setpoint"},
                        "period": 2, "offset": 1, "children": [k["id"] for k in kids]}, *kids]}


def _env(monkeypatch: pytest.MonkeyPatch, *, fast: bool, kernels: bool) -> MultiAgentPowerGridEnv:
    monkeypatch.setattr(batching, "FAST_SETPOINTS", fast)
    monkeypatch.setattr(batching, "KERNEL_MIN_DEVICES", 1 if kernels else 10**9)
    env = MultiAgentPowerGridEnv.from_config(_config())
    assert env._fast.ids == (["mg"] if fast else []) and bool(env._groups.batches) == kernels
    return env


def _run(env: MultiAgentPowerGridEnv, steps: int = 60) -> tuple[list[Any], int]:
    """Observations, rewards, infos and device powers over ``steps`` steps of seeded actions (a third None, a fifth
    left out), the env replaced by its pickled copy mid-episode while ``mg``'s last action was none; how many steps
    its children acted on that held none while ``mg`` did not act."""
    rng, space = np.random.default_rng(3), env.action_space("mg")
    out: list[Any] = [env.reset(seed=5)]
    held = pickled = 0
    none = False  # mg's last action was none
    for k in range(steps):
        if not env.agents:
            out.append(env.reset())
            none = False
            continue
        acting = "mg" in env.acting_agents()
        if not acting and none:
            held += 1
            if not pickled and k > steps // 2:
                env, pickled = pickle.loads(pickle.dumps(env)), k
        u = rng.random()
        sent = {} if u < 0.2 else {"mg": None if u < 0.53 else rng.uniform(space.low, space.high).astype(np.float32)}
        none = sent.get("mg") is None if acting else none
        out.append(env.step(sent))
        out.append({d.id: d.device.p_mw for d in env.scenario.device_agents})
    assert pickled
    return out, held


def _same(a: Any, b: Any, where: str = "") -> None:
    """``a`` and ``b`` (nested dicts, lists, tuples, arrays, numbers, strings) equal bit for bit."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _same(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), where
    elif isinstance(a, float):
        assert np.float64(a).tobytes() == np.float64(b).tobytes(), where
    else:
        assert a == b, where


@pytest.mark.parametrize("kernels", [False, True], ids=["solo", "kernels"])
def test_a_fast_parent_that_sends_none_equals_the_tree_walk(kernels: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bit for bit as the tree walk over 60 steps (7 episodes, resets at the parent's held none), pickled mid-episode."""
    tree, held = _run(_env(monkeypatch, fast=False, kernels=kernels))
    fast, held_fast = _run(_env(monkeypatch, fast=True, kernels=kernels))
    assert held == held_fast >= 5  # children acting on a held none while the parent waits
    _same(tree, fast)


@pytest.mark.parametrize("kernels", [False, True], ids=["solo", "kernels"])
def test_a_reset_forgets_a_fast_parents_missing_action(kernels: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """mg's last action of an episode was none; after the reset it does not act at tick 0 and its children take its
    rule (the DG at p_max), not their defaults (the DG off), as in a new env."""
    env = _env(monkeypatch, fast=True, kernels=kernels)
    env.reset(seed=0)
    env.step({})  # tick 0: mg's rule
    dg = env.scenario.agents["dg"].device
    assert dg.p_mw == pytest.approx(DG_MW)
    while env.agents:
        env.step({})  # mg acts at ticks 1, 3, 5, 7 and sends none: the DG off
        assert dg.p_mw == 0.0
    env.reset(seed=0)
    env.step({})
    assert dg.p_mw == pytest.approx(DG_MW)


@pytest.mark.parametrize("fast", [False, True], ids=["tree", "fast"])
def test_a_learned_child_of_a_parent_that_sends_none_acts_on_its_own_action(fast, monkeypatch) -> None:
    """A learned device child acts on its own action whatever its parent sends (r46d F1: the fast path gave it its
    default, a DG at 0 MW instead of the 0.04 MW it sent); such a parent is left to the tree walk."""
    monkeypatch.setattr(batching, "FAST_SETPOINTS", fast)
    env = MultiAgentPowerGridEnv.from_config({
        "name": "learned_child", "network": {"type": "case33bw"}, "time": {"physics": "1h", "episode": "4h"},
        "spaces": {"action": "physical", "observation": "raw"}, "reward": {"storage_value": "none"},
        "agents": [{"id": "mg", "kind": "grid", "policy": "learned", "protocol": {"type": "setpoint"}, "children": ["dg", "ess"]},
                   {"id": "dg", "type": "DG", "bus": 17, "policy": "learned", "params": {"p_max_mw": 0.05}},
                   {"id": "ess", "type": "ESS", "bus": 18, "params": {"p_max_mw": 0.05, "capacity_mwh": 0.2}}]})
    env.reset(seed=0)
    assert not env._fast
    for sent in ({"mg": None, "dg": np.array([0.04], np.float32)}, {"dg": np.array([0.03], np.float32)}):
        env.step(sent)
        assert env.scenario.agents["dg"].device.p_mw == pytest.approx(float(sent["dg"][0]))
        assert env.scenario.agents["ess"].device.p_mw == 0.0  # not learned: its default (idle)

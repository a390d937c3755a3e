"""A failed step shows in every learned agent's ``converged`` (False) and ``failure`` (its reason), acting or not, in the
PettingZoo env and every adapter: the flag a constraint signal adds failures by, since ``safety`` does not show them
(the step is settled on the last sound flow; docs/rl.md, Cost and safety for constrained RL; r46b F2)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.rl import NumericInfos
from powergrid.rl.gym import SingleAgentView

from .scenarios import CONFIGS

DIVERGED = "power flow diverged"
FAIL_AT = 5  # the tick whose flow fails: the ISO (period 1 h over 15-min ticks) acts at 0, 4, 8, …, not at 5


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("POWERGRID_OFFLINE", "1")  # the CAISO 2023 data shipped with the dataset pack


def diverging(name: str = "ieee34_3mg_iso", on_divergence: str = "terminate") -> dict:
    """``name`` with mg1's battery at 200 MW: discharging it in full fails the flow."""
    config = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text(encoding="utf-8"))
    next(a for a in config["agents"] if a.get("id") == "mg1_ess")["params"].update(p_max_mw=200.0, capacity_mwh=800.0)
    config["reward"]["on_divergence"] = on_divergence
    return config


def actions(space_of, agents, tick: int) -> dict:
    """Idle actions (the middle of every range); mg1 discharges its battery in full at FAIL_AT."""
    out = {a: np.zeros(space_of(a).shape, np.float32) for a in agents}
    if tick == FAIL_AT and "mg1" in out:
        out["mg1"][0] = 1.0  # the battery's entry
    return out


def failed(info: dict) -> bool:
    return info["converged"] is False and info["failure"].startswith(DIVERGED)


@pytest.mark.parametrize("wrapped", [False, True], ids=["pettingzoo", "NumericInfos"])
def test_every_agent_acting_or_not_is_told_in_the_pettingzoo_env(wrapped):
    env = MultiAgentPowerGridEnv.from_config(diverging())
    _, infos = env.reset(seed=0)
    for tick in range(FAIL_AT + 1):
        acting = {a: infos[a]["acting"] for a in env.agents}
        _, _, terminations, _, infos = env.step(actions(env.action_space, env.agents, tick))
        assert all(info["converged"] for info in infos.values()) == (tick < FAIL_AT)
    assert acting == {"iso": False, "mg1": True} and all(terminations.values())
    assert all(failed(infos[a]) for a in ("iso", "mg1"))
    assert infos["iso"]["safety"] == 0.0  # what the constraint signal alone would see
    if wrapped:  # the flag survives the reduction to numbers (TorchRL)
        numeric = NumericInfos(MultiAgentPowerGridEnv.from_config(diverging()))
        numeric.reset(seed=0)
        for tick in range(FAIL_AT + 1):
            *_, infos = numeric.step(actions(numeric.action_space, numeric.agents, tick))
        assert {a: info["converged"] for a, info in infos.items()} == {"iso": False, "mg1": False}


@pytest.mark.parametrize("on_divergence", ["terminate", "penalize"])
def test_rllib_tells_the_agent_that_did_not_act_at_its_next_appearance(on_divergence):
    pytest.importorskip("ray.rllib")
    from powergrid.rl.rllib import RLlibPowerGridEnv

    rl = RLlibPowerGridEnv({"scenario": diverging(on_divergence=on_divergence)})
    obs, _ = rl.reset(seed=0)
    seen: dict[str, list[tuple[int, bool]]] = {"iso": [], "mg1": []}
    while rl.env.tick < 12 and rl.agents:
        tick = rl.env.tick
        obs, _, _, _, infos = rl.step(actions(rl.get_action_space, obs, tick))
        for a, info in infos.items():
            seen[a].append((rl.env.tick, failed(info)))
    if on_divergence == "terminate":  # the episode ends at the failed tick: every agent's final observation says so
        assert seen == {"iso": [(4, False), (FAIL_AT + 1, True)],
                        "mg1": [(t, t == FAIL_AT + 1) for t in range(1, FAIL_AT + 2)]}
    else:  # the ISO's step from tick 4 to 8 held the failed tick 5; mg1 is told at once
        assert seen["iso"] == [(4, False), (8, True), (12, False)]
        assert [t for t, bad in seen["mg1"] if bad] == [FAIL_AT + 1]


def test_the_single_agent_view_tells_the_viewed_agent_whose_step_held_the_failure():
    mg1 = lambda env, aid, obs: actions(env.action_space, ["mg1"], env.tick)["mg1"]  # noqa: E731
    view = SingleAgentView(diverging(on_divergence="penalize"), "iso", policies={"mg1": mg1})
    view.reset(seed=0)
    flags = [failed(view.step(np.zeros(view.action_space.shape, np.float32))[4]) for _ in range(3)]
    assert flags == [False, True, False]  # ticks 0-3, 4-7 (5 failed), 8-11


def test_the_vector_env_tells_every_slot_of_the_copy_that_failed():
    pytest.importorskip("stable_baselines3")
    from powergrid.rl.sb3 import PowerGridVecEnv

    venv = PowerGridVecEnv(diverging("ieee34_3mg"), 2)  # mg1, mg2, mg3 of copies 0 and 1; only copy 0's mg1 fails
    venv.reset()
    for tick in range(FAIL_AT + 1):
        acts = np.zeros((venv.num_envs, *venv.action_space.shape), np.float32)
        acts[0, 0] = 1.0 if tick == FAIL_AT else 0.0
        _, _, dones, infos = venv.step(acts)
    assert [failed(info) for info in infos] == [True] * 3 + [False] * 3
    assert [info["converged"] for info in infos] == [False] * 3 + [True] * 3
    assert dones.tolist() == [True] * 3 + [False] * 3
    venv.close()

"""The adapters' ``failure`` text over a multi-rate agent's held step: the first failure of the ticks summed."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.rl.gym import SingleAgentView

from .scenarios import multi_rate

DIVERGED = "power flow diverged"


def _reason(text: str) -> str:
    """A failure text without its details (a diverged flow's largest injections, r44b F1)."""
    return text.split("; ", 1)[0]


def _diverging() -> dict:
    """multi_rate(10), ``on_divergence: penalize``, and a 400 MW 'fast' store: discharging it fails the flow."""
    config = multi_rate(10)
    config["reward"]["on_divergence"] = "penalize"
    for agent in config["agents"]:
        if agent["id"] == "fast_ess":  # 400 MW at full charge: no flow converges on the MV feeder
            agent["params"] = {"p_max_mw": 400.0, "capacity_mwh": 4000.0}
    return config


def test_the_view_reports_the_failure_of_a_held_tick():
    """'fast' fails tick 1's flow while the viewed 'slow' (period 4) holds its action; tick 3's flow is sound, so the
    step's text was '' while ``converged`` said False."""
    view = SingleAgentView(_diverging(), "slow", policies={
        "fast": lambda env, aid, obs: np.full(3, -1.0 if env.tick == 1 else 0.0, np.float32)})
    view.reset(seed=0)
    _, _, _, _, info = view.step(np.zeros(2, np.float32))
    assert view.env.failure == ""  # the last tick's own flow was sound
    assert (info["ticks"], info["converged"], _reason(info["failure"])) == (4, False, DIVERGED)
    assert info["failure"].startswith(f"{DIVERGED}; largest injections: 'fast_ess' (")  # the 400 MW store first
    _, _, _, _, info = view.step(np.zeros(2, np.float32))  # sound ticks 4-7: the text does not carry over
    assert (info["converged"], info["failure"]) == (True, "")


def test_rllib_reports_the_failure_of_a_held_tick():
    pytest.importorskip("ray")
    from powergrid.rl.rllib import RLlibPowerGridEnv

    rl = RLlibPowerGridEnv({"scenario": _diverging()})
    obs, _ = rl.reset(seed=0)
    texts = []
    for tick in range(8):  # 'fast' fails the flow at tick 1 only; 'slow' is due at ticks 4 and 8
        actions = {a: np.zeros(rl.action_spaces[a].shape, np.float32) for a in obs}
        if tick == 1:
            actions["fast"][:] = -1.0
        obs, _, _, _, infos = rl.step(actions)
        texts.append(_reason(infos["fast"]["failure"]))
        if "slow" in infos:
            assert infos["slow"]["ticks"] == 4
            texts.append(("slow", infos["slow"]["converged"], _reason(infos["slow"]["failure"])))
    assert texts == ["", DIVERGED, "", "", ("slow", False, DIVERGED), "", "", "", "", ("slow", True, "")]

"""A learned agent that sends no action (None, or its key absent): its devices apply their defaults (idle, MPPT…),
with and without a horizontal protocol, on the fast setpoint path and the tree walk, held between its actions; a
price-signal parent that sends none sends no signal (its children see the market price). r45a F1: it was the zero
physical action (a PV's fraction 0: fully curtailed; an ISO's price 0 $/MWh)."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv
from tests.protocols import example_env

MIDDAY = 12  # hourly scenarios: the 13th step is midday, the PV produces


def _p_mw(env, *ids):
    return {i: env.scenario.agents[i].device.p_mw for i in ids}


def _play(env, steps, policy, seed=0):
    """``steps`` steps from ``reset(seed)``; ``policy(t)`` the actions; the last step's infos."""
    env.reset(seed=seed)
    for t in range(steps):
        _, _, _, _, infos = env.step(policy(t))
    return infos


def _nan(env, agent_id):
    return np.full(env.action_space(agent_id).shape, np.nan, np.float32)


@pytest.mark.parametrize("missing", [{}, {"mg1": None}], ids=["key absent", "None"])
def test_a_grid_agent_without_a_horizontal_protocol_leaves_its_devices_at_their_defaults(missing):
    env = example_env("cigre_mv_microgrid", mg1={"period": 1})
    assert env._fast.ids == ["mg1"]  # the fast setpoint path
    devices = ("mg1_ess", "mg1_dg", "mg1_pv")
    steps = 4 * MIDDAY + 1
    infos = _play(env, steps, lambda t: missing)
    got = _p_mw(env, *devices)
    assert infos["mg1"]["projection"] == 0.0  # nothing was sent, nothing moved
    # as a NaN entry (the device's default) does without a horizontal protocol, but not counted as projected
    nan_infos = _play(env, steps, lambda t: {"mg1": _nan(env, "mg1")})
    assert got == _p_mw(env, *devices)
    assert nan_infos["mg1"]["projection"] > 0.0
    assert got["mg1_ess"] == 0.0 and got["mg1_dg"] == 0.0
    pv = env.scenario.agents["mg1_pv"].device
    assert got["mg1_pv"] > 0.05  # at MPPT: the whole available power (the parent commit: 0 MW, fully curtailed)
    # an explicit action after the missing ones is applied again (PV fraction 0: curtailed)
    env.step({"mg1": np.array([0.0, 0.0, 0.0], np.float32)})
    assert pv.p_mw == 0.0


def test_a_fast_parent_that_sent_none_holds_it_between_its_actions():
    """mg1 acts every 2nd tick; its children act every tick and take its held action: the defaults."""
    env = example_env("cigre_mv_microgrid", mg1={"period": 2})
    assert env._fast.ids == ["mg1"]
    curtail = np.zeros(3, np.float32)
    _play(env, 4 * MIDDAY, lambda t: {"mg1": curtail})  # an even tick: mg1 acts at the next one
    pv = env.scenario.agents["mg1_pv"].device
    assert pv.p_mw == 0.0
    env.step({})  # mg1 acts and sends none
    sunny = pv.p_mw
    assert sunny > 0.05
    env.step({"mg1": curtail})  # mg1 does not act: it holds its missing action, the PV stays at MPPT
    assert pv.p_mw > 0.05
    env.step({"mg1": curtail})  # mg1 acts again
    assert pv.p_mw == 0.0


def test_with_a_horizontal_protocol_a_missing_action_is_the_defaults_and_no_order():
    env = example_env("p2p_3mg")
    devices = ("mg1_ess", "mg1_dg", "mg1_pv")
    infos = _play(env, MIDDAY + 1, lambda t: {})
    got = _p_mw(env, *devices)
    assert infos["mg1"]["projection"] == 0.0
    assert got["mg1_ess"] == 0.0 and got["mg1_dg"] == 0.0 and got["mg1_pv"] > 0.2  # PV at MPPT (parent: 0 MW)
    assert infos["mg1"]["P2PTrading"]["trades_mw"].get("mg1", 0.0) == 0.0  # no order placed
    # a NaN action gives the same defaults, counted as projected: the protocol reads the pending setpoints first and
    # puts each device's default_action in place of a NaN entry (docs/protocols.md; it was the middle of the bounds:
    # the DG at half of 0–0.6 MW, the PV at half its available power)
    nan_infos = _play(env, MIDDAY + 1, lambda t: {"mg1": _nan(env, "mg1")})
    assert _p_mw(env, *devices) == got and nan_infos["mg1"]["projection"] > 0.0


def test_a_price_signal_parent_that_sends_none_sends_no_signal():
    """ieee34_3mg_iso: the ISO's missing action leaves its microgrids at the market price, with no signal received
    (the parent commit: a 0 $/MWh signal); the learned mg1 below it still acts on its own action."""
    env = example_env("ieee34_3mg_iso")
    assert env.possible_agents == ["iso", "mg1"]
    mg1 = np.array([0.0, 0.4, 1.0], np.float32)
    env.reset(seed=0)
    pos = [env._agent_pos[a] for a in ("mg1", "mg2", "mg3")]
    for t in range(4 * MIDDAY + 1):
        env.step({"mg1": mg1})
        assert np.isnan(env._signal[pos]).all()
        assert env._price_seen[pos].tolist() == [env.ctx.profiles["price"][t]] * 3
    assert max(env.ctx.profiles["price"][: 4 * MIDDAY + 1]) > 1.0
    assert env.scenario.agents["mg1_dg"].device.p_mw == pytest.approx(0.4)  # mg1's own action


@pytest.mark.parametrize(("config", "edits", "steps"), [("ieee34_3mg_iso", {"iso": {"period": 3}}, 14),
                                                      ("hierarchical_3level", {}, 130)], ids=["no link", "lossy link"])
def test_after_a_price_parent_sends_none_the_rule_answers_at_the_price_its_children_see(config, edits, steps):
    """The ISO signals 150 $/MWh at its first action, then sends none: the microgrids act on the market price, and so
    does the rule ``physical_rule`` gives them (the rule baseline, residual policies, HIL serve; r45d F1: it kept
    answering at 150, on the lossy link for the rest of the day)."""
    env = example_env(config, **edits)
    env.reset(seed=0)
    sent = 0
    for _ in range(steps):
        actions = {a: np.zeros(env.action_space(a).shape, np.float32) for a in env.possible_agents if a != "iso"}
        if "iso" in env.acting_agents():
            sent += 1
            actions["iso"] = np.array([150.0], np.float32) if sent == 1 else None
        env.step(actions)
    assert sent >= 2
    kids = [a.id for a in env.scenario.agents["iso"].children]
    got = [env.physical_rule(k) for k in kids]
    env._signal[:] = np.nan  # no signal anywhere: the rule at the market price
    assert all(np.array_equal(g, env.physical_rule(k)) for g, k in zip(got, kids))


def test_a_learned_grid_agent_under_a_parent_that_sends_none_acts_on_its_own_and_none_gives_defaults():
    """Nested: the ISO and mg1 both send none: mg1's devices at their defaults, its rule-driven peers by their rules."""
    env = example_env("ieee34_3mg_iso")
    _play(env, 4 * MIDDAY + 1, lambda t: {})
    got = _p_mw(env, "mg1_ess", "mg1_dg", "mg1_pv", "mg2_pv")
    assert got["mg1_ess"] == 0.0 and got["mg1_dg"] == 0.0 and got["mg1_pv"] > 0.05
    assert got["mg2_pv"] > 0.05


@pytest.mark.parametrize("missing", [{}, {"pv": None}], ids=["key absent", "None"])
def test_a_learned_device_agent_that_sends_none_applies_its_default(missing):
    data = {
        "name": "learned_pv",
        "network": {"type": "case33bw"},
        "time": {"step_minutes": 60, "steps_per_episode": 24},
        "spaces": {"action": "physical", "observation": "raw"},
        "agents": [{"id": "pv", "type": "PV", "bus": 17, "policy": "learned", "period": 2, "params": {"p_max_mw": 0.5}}],
    }
    env = MultiAgentPowerGridEnv.from_config(data)
    pv = env.scenario.agents["pv"].device
    infos = _play(env, MIDDAY + 1, lambda t: missing)
    assert infos["pv"]["projection"] == 0.0
    assert pv.p_mw > 0.1  # MPPT (the parent commit: fraction 0, 0 MW)
    mppt = pv.p_mw
    env.step({"pv": np.zeros(env.action_space("pv").shape, np.float32)})  # not acting: holds its missing action
    assert pv.p_mw > 0.1 and pv.p_mw == pytest.approx(mppt, rel=0.5)


def test_a_held_missing_action_survives_a_copy_and_ends_with_the_episode():
    """The held 'sent none' is one object through pickle and deepcopy; a reset forgets it (the parent acts on its
    rule before its first action again)."""
    import copy
    import pickle

    env = example_env("cigre_mv_microgrid", mg1={"period": 2})
    curtail = np.zeros(3, np.float32)
    _play(env, 4 * MIDDAY, lambda t: {"mg1": curtail})
    env.step({})  # mg1 acts and sends none; it holds that at the next tick
    for twin in (copy.deepcopy(env), pickle.loads(pickle.dumps(env))):
        twin.step({"mg1": curtail})
        assert twin.scenario.agents["mg1_pv"].device.p_mw > 0.05
    env.reset(seed=0, options=None)
    assert not env._fast._missing  # the behaviour: tests/core/test_fast_setpoints_missing.py


COMMITTED_DG = {"p_max_mw": 0.6, "cost_a": 10.0, "cost_b": 85.0, "commitment": True, "on_init": True,
                "min_up_h": 0.0, "min_down_h": 0.0}


# a dispatching protocol that moves the MW of a device whose learned parent sent none keeps its other entries at its
# default_action: a commitment DG stays on (u = 1); zeros (u = 0) were a stop request that switched it off
@pytest.mark.parametrize("name", ["droop", "admm_3mg"])
def test_a_dispatched_device_without_an_action_keeps_its_default_entries(name):
    env = example_env(name, mg1_dg={"params": COMMITTED_DG})
    env.reset(seed=0)
    dg = env.scenario.agents["mg1_dg"]
    for _ in range(13):
        env.step({})  # mg1 sends none
    assert np.asarray(dg.pending).tolist()[1] == 1.0 and dg.device.on  # was u 0.0: the DG stopped

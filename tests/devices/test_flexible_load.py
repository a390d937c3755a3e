"""FlexibleLoad: curtailment, deferral into and recovery from the backlog, discomfort, end-of-episode safety."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.config import RewardConfig
from tests.devices.helpers import at, context, make


def test_curtail_and_defer_then_recover() -> None:
    flex = make("FlexibleLoad", p_base_mw=0.2, pf=1.0, shift_max_mw=0.05, curtail_cost=200.0, delay_cost=5.0)
    ctx = context(n=3, load=1.0)
    flex.step(np.array([0.1, 0.5]), at(ctx, 0))
    assert flex.p_mw == pytest.approx(-(0.18 - 0.025))
    assert flex.backlog == pytest.approx(0.025 * 0.25)
    assert flex.cost == pytest.approx(200 * 0.1 * 0.2 * 0.25 + 5 * 0.00625 * 0.25)
    assert flex.safety == 0.0 and flex.projection == 0.0
    flex.step(np.array([0.0, -1.0]), at(ctx, 1))  # recover at most B/dt = 0.025 MW
    assert flex.p_mw == pytest.approx(-0.225)
    assert flex.backlog == pytest.approx(0.0)
    assert flex.projection == pytest.approx(0.5)


def test_backlog_left_at_the_end_is_unsafe() -> None:
    flex = make("FlexibleLoad", p_base_mw=0.2)
    ctx = context(n=2, load=1.0)
    flex.step(np.array([0.0, 1.0]), at(ctx, 0))
    assert flex.safety == 0.0
    flex.step(np.array([0.0, 1.0]), at(ctx, 1))
    assert flex.backlog == pytest.approx(2 * 0.05 * 0.25) and flex.safety == pytest.approx(flex.backlog / 0.25)


@pytest.mark.parametrize(("dt_h", "steps", "s"), [(0.25, 2, 1.0), (1.0, 1, 0.5)])
def test_the_reward_charges_safety_weight_per_mwh_left_in_the_backlog_whatever_the_step(dt_h, steps, s) -> None:
    """0.025 MWh deferred and never recovered (0.05 MW over two 15-min steps, 0.025 MW over one 1-h step): the reward's
    safety charge, ``safety_weight·dt_h·safety``, is 40 $/MWh · 0.025 MWh = 1 $ at either step (before: 0.25 and 1 $)."""
    flex = make("FlexibleLoad", dt_h=dt_h, p_base_mw=0.2)
    ctx = context(n=steps, dt_h=dt_h, load=1.0)  # the episode
    for t in range(steps):
        flex.step(np.array([0.0, s]), at(ctx, t))
    assert flex.backlog == pytest.approx(0.025)
    assert RewardConfig().safety_per_step(dt_h) * flex.safety == pytest.approx(40.0 * 0.025)


def test_power_factor_gives_absorbed_q() -> None:
    flex = make("FlexibleLoad", p_base_mw=0.2, pf=0.8)
    flex.step(None, context(load=1.0))
    assert flex.q_mvar == pytest.approx(-0.2 * 0.75)


@pytest.mark.parametrize("profile", ["classes", "uniform"])
def test_the_demand_follows_the_network_loads_at_its_bus(profile) -> None:
    """The demand was ``p_base·L(t)`` everywhere while the network loads follow their customer class: at Bus 5 (only the
    residential Load R5) and Bus 9 (only the commercial Load CI9) the two flexible demands were one curve, 0.32 and
    0.67 pu off their loads' multipliers at some hour."""
    from powergrid.env import MultiAgentPowerGridEnv

    env = MultiAgentPowerGridEnv.from_config({
        "name": "flex", "network": {"type": "cigre_mv"}, "time": {"physics": "1h", "episode": "1d"},
        "loads": {"profile": profile},
        "agents": [{"id": bus.replace(" ", ""), "type": "FlexibleLoad", "bus": bus, "policy": "rule"}
                   for bus in ("Bus 5", "Bus 9", "Bus 10", "Bus 2")]})
    env.reset(seed=0)
    names = list(env.net.load.name)
    r5, ci9, r10, ci10 = (names.index(f"Load {n}") for n in ("R5", "CI9", "R10", "CI10"))
    level = {a: [] for a in env.scenario.agents}
    for _ in range(24):
        env.step({})
        for agent_id, agent in env.scenario.agents.items():
            level[agent_id].append(agent.device.demand / agent.device.params.p_base_mw)
    m = env.load_multipliers
    np.testing.assert_allclose(level["Bus5"], m[:, r5], rtol=1e-12)
    np.testing.assert_allclose(level["Bus9"], m[:, ci9], rtol=1e-12)
    w = np.array([0.47530, 0.06800])  # the base MW of Load R10 and Load CI10
    np.testing.assert_allclose(level["Bus10"], (m[:, r10] * w[0] + m[:, ci10] * w[1]) / w.sum(), rtol=1e-12)
    np.testing.assert_allclose(level["Bus2"], env.ctx.profiles["load"], rtol=1e-12)  # no network load at Bus 2
    if profile == "classes":
        assert np.abs(np.array(level["Bus5"]) - level["Bus9"]).max() > 0.3  # a residential and a commercial shape
    else:
        np.testing.assert_allclose(level["Bus5"], env.ctx.profiles["load"], rtol=1e-12)


def test_rule_defers_only_above_its_band_at_a_negative_mean_price() -> None:
    # a steady −5 $/MWh is its own mean: inside the band, nothing to defer (with (1 + band)·mean the dear threshold
    # fell below the mean and the rule deferred at full rate there); −4 is dear by more than 10 % of |−5|, so it defers
    flex = make("FlexibleLoad", price_band=0.1)
    ctx = context(n=6, price=-5.0)
    for t in range(3):
        flex.step(flex.rule_action(at(ctx, t)), at(ctx, t))
        assert flex.backlog == 0.0
    ctx.profiles["price"][3] = -4.0
    assert flex.rule_action(at(ctx, 3))[1] == 1.0

"""bench.play: one seeded day under a policy."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

from powergrid.bench.play import play
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.evaluate import random_actions
from powergrid.plugins import make_registry
from tests.core.scenarios import load_local, two_feeders


def test_random_agents_of_equal_spaces_draw_their_own_actions():
    """'a' and 'b' have equal Box(0, 2) spaces: play seeded both with the seed, so they drew the same action at every
    tick; now each its own stream (evaluate.seed_action_spaces), the first agent's as a space seeded with the seed."""
    load_local()
    env = MultiAgentPowerGridEnv.from_config(two_feeders(), registry=make_registry(include_local=True))
    sent: list[dict] = []

    def spy(env: MultiAgentPowerGridEnv) -> dict:
        sent.append(random_actions(env))
        return sent[-1]

    play(env, spy, seed=4)
    assert env.action_space("a") == env.action_space("b") and len(sent) == 8
    assert not any(np.array_equal(s["a"], s["b"]) for s in sent)
    alone = gymnasium.spaces.Box(0.0, 2.0, (1,), np.float32)
    alone.seed(4)
    np.testing.assert_array_equal([s["a"] for s in sent], [alone.sample() for _ in sent])


def test_a_day_ended_by_a_failed_flow_is_charged_its_unplayed_hours(tmp_path, monkeypatch):
    """A user's task config (POWERGRID_BENCH_CONFIGS) where a 40 MW battery can crash IEEE 123's flow: the day that
    ends at hour 3 by a failed flow scored 597.6 $ (3 hours' bill), better than the idle battery's whole day
    (7,274.3 $); now the env's failure penalty per tick left counts, as in its reward."""
    for pack in ("powergrid_devices", "powergrid_protocols", "powergrid_datasets"):
        pytest.importorskip(pack)
    from powergrid.bench.tasks import TEST_DAYS, config_dir, task_named

    text = (config_dir() / "dispatch_mg.yaml").read_text()
    assert "p_max_mw: 1.0, capacity_mwh: 4.0" in text
    (tmp_path / "dispatch_mg.yaml").write_text(text.replace("p_max_mw: 1.0, capacity_mwh: 4.0",
                                                            "p_max_mw: 40.0, capacity_mwh: 200.0"))
    monkeypatch.setenv("POWERGRID_BENCH_CONFIGS", str(tmp_path))
    env = MultiAgentPowerGridEnv(task_named("dispatch_mg").config(TEST_DAYS[0]))

    def battery(setpoint: float, from_hour: int) -> object:
        def act(e: MultiAgentPowerGridEnv) -> dict:
            a = np.asarray(e.rule_action("mg"), np.float32).copy()
            a[0] = setpoint if e.tick >= from_hour else 0.0
            return {"mg": a}
        return act

    idle = play(env, battery(0.0, 0))
    crash = play(env, battery(-1.0, 2))
    assert idle.failures == 0 and len(idle.price) == 24
    assert crash.failures == 1 and len(crash.price) == 3  # the episode ended at the failed flow
    assert crash.penalty >= 4000.0 * 21 and crash.objective > idle.objective
    assert crash.objective == pytest.approx(crash.cost + 100.0 * crash.safety + crash.penalty)


@pytest.mark.parametrize("mode", ["terminate", "penalize"])
def test_a_failed_flow_costs_each_root_what_its_reward_is_charged(tmp_path, monkeypatch, mode):
    """p2p_trading's three learned microgrids with a 40 MW battery at mg1 (a user's config): each root pays its own
    infos penalty (P per tick lost and its shortfall below the worst sound tick), so the day's objective is what the
    env's rewards charge. Was the first agent's penalty times three roots: 52.19 $ short (terminate), 3,674 (penalize)."""
    for pack in ("powergrid_devices", "powergrid_protocols", "powergrid_datasets"):
        pytest.importorskip(pack)
    from powergrid.bench.tasks import TEST_DAYS, config_dir, task_named

    text = (config_dir() / "p2p_trading.yaml").read_text()
    small = "{id: mg1_ess, type: ESS, bus: mg1.675, params: {p_max_mw: 0.3, capacity_mwh: 1.0"
    weights = "reward: {cost_weight: 1.0, safety_weight: 100.0}"
    assert small in text and weights in text
    text = text.replace(small, small.replace("p_max_mw: 0.3, capacity_mwh: 1.0", "p_max_mw: 40.0, capacity_mwh: 200.0"))
    (tmp_path / "p2p_trading.yaml").write_text(text.replace(weights, weights[:-1] + f", on_divergence: {mode}}}"))
    monkeypatch.setenv("POWERGRID_BENCH_CONFIGS", str(tmp_path))
    env = MultiAgentPowerGridEnv(task_named("p2p_trading").config(TEST_DAYS[0]))
    charged = []
    step = env.step

    def recording(actions: dict) -> tuple:
        out = step(actions)
        charged.append(-sum(out[1].values()))
        return out

    def act(e: MultiAgentPowerGridEnv) -> dict:
        actions = {a: np.asarray(e.rule_action(a), np.float32).copy() for a in e.agents}
        if 2 <= e.tick <= 4:
            actions["mg1"][0] = -1.0  # mg1's battery charges at 40 MW
        return actions

    env.step = recording
    day = play(env, act)
    assert day.failures >= 1
    assert day.objective == pytest.approx(sum(charged), rel=1e-12)


def test_the_day_s_storage_change_is_the_energy_the_reward_credits():
    """dispatch_mg's battery (4 MWh, η_d < 1) over a test day on the rule: ``storage_mwh`` is the change of the
    energy it could deliver, ``soc·capacity·η_d`` (ESS.stored_mwh), the MWh the reward values at the day's mean price.
    Was ``soc·capacity``: the SOC's MWh, 1/η_d of the credited energy."""
    for pack in ("powergrid_devices", "powergrid_protocols", "powergrid_datasets"):
        pytest.importorskip(pack)
    from powergrid.bench.tasks import TEST_DAYS, task_named

    env = MultiAgentPowerGridEnv(task_named("dispatch_mg").config(TEST_DAYS[0]))
    ess = env.scenario.agents["ess"].device
    assert "ess" in env.scenario.valued_stores and ess.params.eta_discharge < 1.0
    socs = []

    def rule(e: MultiAgentPowerGridEnv) -> dict:
        socs.append(ess.soc)
        return {a: e.rule_action(a) for a in e.agents}

    day = play(env, rule)
    moved = (ess.soc - socs[0]) * ess.params.capacity_mwh
    assert abs(moved) > 0.5
    assert day.storage_mwh == pytest.approx(moved * ess.params.eta_discharge, rel=1e-12)

"""The load forecast protocols share (:class:`powergrid.loads.LoadGroup`): the network loads behind a meter, their
forecast MW (``ctx.load_forecast``: the episode's load schedule without its jitter at the level of the day before's
load, what an operator knows ahead) and
the predicted change from the last tick's actual MW (``ctx.load_multipliers``: what the flow serves, the last reading):
the forecast with the share φ = ``ctx.load_persistence`` of the last deviation from it that persists.
configs/admm_3mg.yaml, reset seed 3."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import yaml

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.loads import LoadGroup, previous_day
from powergrid.vector import VectorPowerGridEnv

from .test_admm_billing import CONFIG


def _zone_loads(net, zone: str) -> np.ndarray:
    """Rows of ``net.load`` in service at a bus of ``zone``."""
    zones = net.bus.zone.astype(str).to_numpy()[net.bus.index.get_indexer(net.load.bus)]
    return np.flatnonzero((zones == zone) & net.load.in_service.to_numpy(bool))


def _env(jitter: float | None = None) -> MultiAgentPowerGridEnv:
    """admm_3mg.yaml, with the loads' ``jitter`` (pu) when given."""
    data = yaml.safe_load(CONFIG.read_text())
    if jitter is not None:
        data["loads"] = {"jitter": jitter}
    return MultiAgentPowerGridEnv.from_config(data)


def test_the_loads_behind_a_pcc_are_its_zones_and_their_forecast_changes_from_the_last_actual_mw():
    """mg1's meter (its trafo mg1.pcc) serves its zone's loads, 1.0 MW at multiplier 1; at each tick their forecast
    is Σ P_i·f_i(t) and the predicted change from the last reading Σ P_i·(f_i(t)·(1 + φ·(m_i(t−1)/f_i(t−1) − 1)) −
    m_i(t−1)), f the forecast and m the actual multipliers, φ = e^−1 (hourly ticks, τ = 1 h) (0 at the first tick: no
    last one)."""
    env = _env()
    env.reset(seed=3)
    net, meter = env.net, env.scenario.agents["mg1_pcc"].device
    loads = LoadGroup.at(net, meter.billed_buses(net))
    np.testing.assert_array_equal(loads.rows, _zone_loads(net, "mg1"))
    np.testing.assert_allclose(loads.mw, (net.load.p_mw * net.load.scaling).to_numpy(float)[loads.rows])
    assert loads.mw.sum() == pytest.approx(1.0)
    f, m = env.ctx.load_forecast, env.ctx.load_multipliers
    assert loads.forecast_mw(env.ctx) == pytest.approx(f[0, loads.rows] @ loads.mw)
    assert loads.forecast_change_mw(env.ctx) == 0.0
    phi = np.exp(-1.0)
    assert env.ctx.load_persistence == pytest.approx(phi, rel=1e-15)
    changes = []
    while env.ctx.tick < 23:
        env.step({"mg1": np.array([0.0, 0.0, 1.0], np.float32)})
        t = env.ctx.tick
        by_hand = sum(net.load.p_mw.iat[i] * net.load.scaling.iat[i]
                      * (f[t, i] * (1.0 + phi * (m[t - 1, i] / f[t - 1, i] - 1.0)) - m[t - 1, i]) for i in loads.rows)
        assert loads.forecast_change_mw(env.ctx) == pytest.approx(by_hand, abs=1e-12)
        assert loads.forecast_mw(env.ctx) == pytest.approx(loads.mw @ f[t, loads.rows], abs=1e-12)
        changes.append(by_hand)
    assert max(np.abs(changes)) > 0.1  # the loads do move over the day: the checks above are not vacuous


def test_the_forecast_is_the_schedule_without_the_jitter():
    """The forecast is the episode's schedule without its jitter at the level of the day before's load (a causal
    level: day 3 is Monday 2023-09-25, levelled on Sunday's load, whose mean is 0.917 times Monday's). Without jitter
    (``loads.jitter: 0``) it is the actual multipliers times that ratio (the actual multipliers themselves when the
    level was the day's own). With jitter (the default 5 %) the forecast is the one the same seed draws without
    it (the same calendar and level); it misses the actual loads behind mg1's meter by their jitter (0.01–0.1 MW, as
    before) and the level's error (0.05–0.15 MW with both). A plan from the last reading and the predicted change
    (from the forecast at the first tick) misses the actual load by exactly the error of the prediction (the forecast
    with the share φ = e^−1 of each load's last deviation that persists), less on the day than the forecast's."""
    exact = _env(jitter=0.0)
    exact.reset(seed=3)
    ratio = previous_day(exact.scenario.providers["load"], 24, 60.0).mean() / exact.ctx.profiles["load"].mean()
    assert ratio == pytest.approx(0.917, abs=1e-3)
    np.testing.assert_allclose(exact.ctx.load_forecast, exact.ctx.load_multipliers * ratio, rtol=1e-12)
    env = _env()
    env.reset(seed=3)
    schedule, actual = env.ctx.load_forecast, env.ctx.load_multipliers
    np.testing.assert_array_equal(schedule, exact.ctx.load_forecast)  # the same forecast, with or without the jitter
    net, meter = env.net, env.scenario.agents["mg1_pcc"].device
    loads = LoadGroup.at(net, meter.billed_buses(net))
    error = (actual - schedule)[:, loads.rows] @ loads.mw  # MW by tick: the forecast's error behind mg1's meter
    assert 0.05 < np.sqrt(np.mean(error**2)) and np.abs(error).max() < 0.15
    jitter = (actual - schedule / ratio)[:, loads.rows] @ loads.mw  # at the day's own level: the jitter alone
    assert 0.01 < np.sqrt(np.mean(jitter**2)) and np.abs(jitter).max() < 0.1
    a, f = actual[:, loads.rows], schedule[:, loads.rows]
    predicted = np.vstack([f[:1], f[1:] * (1.0 + np.exp(-1.0) * (a[:-1] / f[:-1] - 1.0))])
    missed = (a - predicted) @ loads.mw  # MW by tick: the prediction's error
    assert np.mean(missed**2) < np.mean(error**2)
    now = float(a[0] @ loads.mw)
    assert now - loads.forecast_mw(env.ctx) == pytest.approx(error[0], abs=1e-12)
    for t in range(1, 24):
        env.ctx.tick, last = t, now  # the actual MW at the last tick: its reading
        now = float(a[t] @ loads.mw)
        assert now - (last + loads.forecast_change_mw(env.ctx)) == pytest.approx(missed[t], abs=1e-12)


def test_copies_carry_the_forecast():
    """A pickled env (RL workers) and each copy of a vector env hold their episode's forecast: the same schedule
    without the jitter, the forecast change computed from the copy's own arrays."""
    env = _env()
    env.reset(seed=3)
    copy = pickle.loads(pickle.dumps(env))
    np.testing.assert_array_equal(copy.ctx.load_forecast, env.ctx.load_forecast)
    assert not np.array_equal(copy.ctx.load_forecast, copy.ctx.load_multipliers)
    behind = [proto.loads["mg1"] for proto in (env.scenario.horizontal[0], copy.scenario.horizontal[0])]
    for t in range(24):
        env.ctx.tick = copy.ctx.tick = t
        assert behind[1].forecast_change_mw(copy.ctx) == behind[0].forecast_change_mw(env.ctx)
    vector = VectorPowerGridEnv(CONFIG, 2)
    vector.reset(seed=3)
    for i, one in enumerate(vector.envs):
        single = _env()
        single.reset(seed=3 + i)
        np.testing.assert_array_equal(one.ctx.load_forecast, single.ctx.load_forecast)
        np.testing.assert_array_equal(one.ctx.load_multipliers, single.ctx.load_multipliers)
    vector.close()


def test_a_load_out_of_service_or_at_a_bus_out_of_service_is_not_in_the_group():
    """The flow serves neither: they are left out."""
    env = MultiAgentPowerGridEnv.from_config(CONFIG)
    net, meter = env.net, env.scenario.agents["mg1_pcc"].device
    rows = _zone_loads(net, "mg1")
    net.load.loc[net.load.index[rows[0]], "in_service"] = False
    net.bus.loc[net.load.bus.iat[rows[1]], "in_service"] = False
    kept = [r for r in rows[1:] if net.load.bus.iat[r] != net.load.bus.iat[rows[1]]]
    assert 0 < len(kept) < len(rows) - 1
    np.testing.assert_array_equal(LoadGroup.at(net, meter.billed_buses(net)).rows, kept)


def test_the_episode_schedule_is_read_only_and_a_new_one_is_forecast_anew():
    """What a protocol derives from the schedule is computed once an episode (LoadGroup), so the env's arrays are
    read-only: writing into them raises instead of leaving a stale forecast; an assigned schedule is taken up."""
    env = _env()
    env.reset(seed=3)
    group = LoadGroup.at(env.net, np.flatnonzero(env.net.bus.zone.astype(str).to_numpy() == "mg1"))
    assert len(group.rows) > 0
    with pytest.raises(ValueError, match="read-only"):
        env.load_multipliers[:] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        env.ctx.load_forecast[:] = 1.0
    env.step({})
    before = group.forecast_change_mw(env.ctx)
    env.load_multipliers = env.load_multipliers * 1.5  # the last reading's loads 1.5 times what they were
    after = group.forecast_change_mw(env.ctx)
    t, f = env.ctx.tick, env.ctx.load_forecast
    last = env.load_multipliers[t - 1, group.rows] @ group.mw
    # a third of the new reading is new: it adds its persisting share φ of the forecast and leaves the reading
    persisting = env.ctx.load_persistence * (env.load_multipliers[t - 1, group.rows] / f[t - 1, group.rows] * f[t, group.rows]) @ group.mw
    assert after == pytest.approx(before + (persisting - last) / 3.0, abs=1e-9)


def test_a_pickled_or_copied_env_keeps_its_schedule_read_only():
    """A vector env's worker or a checkpoint gets the env by pickle or deepcopy, whose arrays come back writeable:
    the copy freezes them again, and an assigned schedule is a read-only copy."""
    import copy

    env = _env()
    env.reset(seed=3)
    env.step({})
    for clone in (pickle.loads(pickle.dumps(env)), copy.deepcopy(env)):
        for schedule in (clone.load_multipliers, clone.ctx.load_forecast):
            with pytest.raises(ValueError, match="read-only"):
                schedule[:] = 1.0
    mine = np.ones_like(env.load_multipliers)
    env.load_multipliers = mine
    mine[:] = 2.0  # the caller's array stays the caller's
    assert np.all(env.load_multipliers == 1.0) and not env.load_multipliers.flags.writeable

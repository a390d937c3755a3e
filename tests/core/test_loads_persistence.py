"""The load forecast keeps the share of the loads' jitter that persists: :meth:`LoadModel.persistence` (φ of the AR(1)
jitter, ``ctx.load_persistence``) and :meth:`LoadGroup.forecast_change_mw` (each load predicted at
``f(t)·(1 + φ·ε(t−1))``, ``ε(t−1) = a(t−1)/f(t−1) − 1``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from powergrid.config import LoadsConfig, Source
from powergrid.devices import StepContext
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.loads import LoadGroup, LoadModel
from powergrid.networks import TEMPLATES

from .test_loads import MONDAY

CONFIGS = Path(__file__).parents[2] / "configs"


def _episode(ticks: int, step_minutes: float, seed: int, **loads) -> tuple[LoadModel, np.ndarray, np.ndarray]:
    """ieee34's loads (residential: the size rule), an episode of ``ticks`` from 08:00 on a Monday at level 1."""
    model = LoadModel.build(LoadsConfig(default_class="residential", **loads), TEMPLATES["ieee34"](), Source())
    actual, forecast = model.episode(np.ones(ticks), step_minutes=step_minutes, start_hour=8.0, start=MONDAY,
                                     rng=np.random.default_rng(seed))
    return model, actual, forecast


def _context(model: LoadModel, actual: np.ndarray, forecast: np.ndarray, step_minutes: float) -> StepContext:
    return StepContext(dt_h=step_minutes / 60.0, profiles={}, load_multipliers=actual, load_forecast=forecast,
                       load_persistence=model.persistence(step_minutes))


def test_the_change_keeps_the_persisting_share_of_the_last_deviation():
    """Three hourly ticks, jitter 5 % with τ = 2 h (φ = e^−½), the jitter ε drawn by hand from the same seed as the
    module docstring says (ε(0) = σ·η(0), ε(t) = φ·ε(t−1) + √(1−φ²)·σ·η(t)): the actual multiplier is the forecast
    times G·(1 + ε) (G the day's ratio of the gains, one number), and the predicted change of four loads from the
    last reading is Σ P_i·(f_i(t)·(1 + φ·(G·(1 + ε_i(t−1)) − 1)) − a_i(t−1)), not the jitter-free Σ P_i·(f_i(t) −
    a_i(t−1))."""
    model, actual, forecast = _episode(3, 60.0, seed=11, jitter=0.05, jitter_hours=2.0)
    phi = np.exp(-0.5)
    assert model.persistence(60.0) == pytest.approx(phi, rel=1e-15)
    eta = np.random.default_rng(11).standard_normal(actual.shape)
    eps = np.empty_like(eta)
    eps[0] = 0.05 * eta[0]
    for t in (1, 2):
        eps[t] = phi * eps[t - 1] + np.sqrt(1.0 - phi * phi) * 0.05 * eta[t]
    gain = actual / (forecast * (1.0 + eps))
    np.testing.assert_allclose(gain, gain[0, 0], rtol=1e-12)  # one day: one ratio of the gains
    rows, mw = np.array([0, 3, 5, 8]), np.array([0.2, 0.5, 0.1, 0.4])
    group, ctx = LoadGroup(rows, mw), _context(model, actual, forecast, 60.0)
    assert group.forecast_change_mw(ctx) == 0.0  # no last reading at the first tick
    for t in (1, 2):
        ctx.tick = t
        f, last = forecast[t, rows], gain[0, 0] * forecast[t - 1, rows] * (1.0 + eps[t - 1, rows])
        by_hand = float(mw @ (f * (1.0 + phi * (last / forecast[t - 1, rows] - 1.0)) - last))
        assert group.forecast_change_mw(ctx) == pytest.approx(by_hand, abs=1e-12)
        assert abs(by_hand - float(mw @ (f - last))) > 1e-3  # the jitter-free change is another number
        assert group.forecast_mw(ctx) == pytest.approx(float(mw @ f), abs=1e-12)  # the forecast itself is unchanged


def test_persistence_halves_the_error_of_a_minute_by_minute_prediction():
    """One day at 1-minute steps (φ = 0.983): from the last reading, the prediction with the jitter's persistence
    misses each minute's actual MW behind 10 loads by less than half what the jitter-free forecast change does."""
    model, actual, forecast = _episode(1440, 1.0, seed=4)
    rows = np.arange(10)
    mw = np.full(10, 0.1)
    group, ctx = LoadGroup(rows, mw), _context(model, actual, forecast, 1.0)
    now = actual[:, rows] @ mw
    missed = []
    for t in range(1, 1440):
        ctx.tick = t
        missed.append(now[t] - (now[t - 1] + group.forecast_change_mw(ctx)))
    jitter_free = now[1:] - forecast[1:, rows] @ mw  # f(t) − a(t−1) added to a(t−1)
    assert np.sqrt(np.mean(np.square(missed))) < 0.5 * np.sqrt(np.mean(np.square(jitter_free)))


@pytest.mark.parametrize(("loads", "expected"), [
    ({}, np.exp(-60.0 / 60.0)),  # admm_3mg: hourly steps, τ = 1 h
    ({"jitter_hours": 4.0}, np.exp(-60.0 / 240.0)),
    ({"jitter": 0.0}, 0.0),  # no jitter: the forecast is the actual schedule at the day before's level
    ({"profile": "uniform"}, 0.0),
])
def test_the_environment_gives_protocols_the_jitters_persistence(loads, expected):
    """``ctx.load_persistence`` is φ = exp(−Δt/τ) of the configured jitter, set once when the env is built (one value
    per env: it is there before the first reset); without jitter the change is the jitter-free one, f(t) − a(t−1),
    exactly."""
    for pack in ("powergrid_devices", "powergrid_protocols", "powergrid_datasets"):  # admm_3mg's parts
        pytest.importorskip(pack)
    data = yaml.safe_load((CONFIGS / "admm_3mg.yaml").read_text())
    data["loads"] = loads
    env = MultiAgentPowerGridEnv.from_config(data)
    assert env.ctx.load_persistence == pytest.approx(expected, rel=1e-15)
    env.reset(seed=2)
    assert env.ctx.load_persistence == pytest.approx(expected, rel=1e-15)
    if expected == 0.0:
        group = LoadGroup(np.arange(len(env.net.load)), np.ones(len(env.net.load)))
        f, a = env.ctx.load_forecast.sum(axis=1), env.ctx.load_multipliers.sum(axis=1)
        for t in range(1, 24):
            env.ctx.tick = t
            assert group.forecast_change_mw(env.ctx) == pytest.approx(f[t] - a[t - 1], abs=1e-12)

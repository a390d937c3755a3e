"""The loads' forecast on a dataset's days is levelled on the day before's actual load (causal), the same past the
bench's learners get (:func:`powergrid.bench.residual.yesterday`); a profile without a past (the built-in shape) is a
plan and the forecast keeps it. configs/admm_3mg.yaml (caiso_2023, load of the AVA area, hourly, from midnight): the
forecast is the jitter-free schedule, so without jitter it is the actual schedule times the ratio of the day before's
mean load to the day's, computed here by hand from the extract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.loads import previous_day

from .test_admm_billing import CONFIG

pytest.importorskip("powergrid_datasets")


def _env(day: str | None, **loads) -> MultiAgentPowerGridEnv:
    """admm_3mg.yaml with every dataset role starting on ``day`` (None: the built-in shapes, no dataset), reset."""
    data = yaml.safe_load(CONFIG.read_text())
    if day is None:
        data.pop("datasets")
    else:
        for params in data["datasets"].values():
            params["start"] = day
    data["loads"] = loads
    env = MultiAgentPowerGridEnv.from_config(data)
    env.reset(seed=0)
    return env


def _extract_load(first: str, hours: int) -> np.ndarray:
    """By hand: AVA's hourly load (MW) in the extract from ``first`` (UTC) on, in pu of its 2023 mean."""
    from powergrid_datasets.embedded import _table

    column = _table()["load:AVA"]
    return (column[pd.date_range(first, periods=hours, freq="1h", tz="UTC")] / column.mean()).to_numpy()


def test_the_forecast_on_a_dataset_day_is_levelled_on_the_day_befores_load():
    """Thursday 2023-07-27 (Pacific midnight 07:00 UTC): the forecast is the jitter-free schedule at the mean of the
    26th's 24 hours, so without jitter the actual schedule times mean(26th)/mean(27th) (the day's own level before,
    when the forecast was the actual schedule); the jitter moves the actual loads, not the forecast; under the uniform
    profile the forecast is the 26th's load hour by hour."""
    before, today = _extract_load("2023-07-26 07:00", 24), _extract_load("2023-07-27 07:00", 24)
    env = _env("2023-07-27", jitter=0.0)
    np.testing.assert_allclose(env.ctx.profiles["load"], today, rtol=1e-12)
    ratio = before.mean() / today.mean()
    assert abs(ratio - 1.0) > 0.01  # the day's level is not the day before's: the check below can tell them apart
    np.testing.assert_allclose(env.ctx.load_forecast, env.ctx.load_multipliers * ratio, rtol=1e-12)
    jittered = _env("2023-07-27")
    np.testing.assert_allclose(jittered.ctx.load_forecast, env.ctx.load_forecast, rtol=1e-12)
    assert not np.allclose(jittered.ctx.load_multipliers, env.ctx.load_multipliers)
    uniform = _env("2023-07-27", profile="uniform")
    np.testing.assert_allclose(uniform.ctx.load_forecast, np.repeat(before[:, None], len(uniform.net.load), axis=1),
                               rtol=1e-12)
    np.testing.assert_allclose(uniform.ctx.load_multipliers[:, 0], today, rtol=1e-12)


def test_on_the_first_day_of_the_data_the_forecast_takes_the_series_mean():
    """2023-01-01, the extract's first day: no earlier day (of any day type), so the forecast's level is the whole
    series' mean, 1 pu (the load is normalised by it), not the day's own 1.07 pu."""
    env = _env("2023-01-01", jitter=0.0)
    level = env.ctx.profiles["load"].mean()
    assert level == pytest.approx(_extract_load("2023-01-01 08:00", 24).mean(), rel=1e-12) and level > 1.05
    np.testing.assert_allclose(previous_day(env.scenario.providers["load"], 24, 60.0), np.ones(24), rtol=1e-12)
    np.testing.assert_allclose(env.ctx.load_forecast, env.ctx.load_multipliers / level, rtol=1e-12)
    second = _env("2023-01-02", jitter=0.0)  # the next day is levelled on the first
    np.testing.assert_allclose(second.ctx.load_forecast,
                               second.ctx.load_multipliers * level / second.ctx.profiles["load"].mean(), rtol=1e-12)


def test_the_bench_features_and_the_forecast_read_the_same_day_before():
    """The learners' persistence features (bench.residual.yesterday) and the rule's forecast read one past: the day
    before's load, whose daily mean levels the forecast; yesterday's solar too. On the first day, the same fallback."""
    from powergrid.bench.residual import yesterday

    for day, first in (("2023-07-27", "2023-07-26 07:00"), ("2023-01-01", None)):
        env = _env(day, jitter=0.0)
        past = yesterday(env, "load")
        np.testing.assert_array_equal(past, previous_day(env.scenario.providers["load"], 24, 60.0))
        expected = np.ones(24) if first is None else _extract_load(first, 24)
        np.testing.assert_allclose(past, expected, rtol=1e-12)
        np.testing.assert_allclose(env.ctx.load_forecast,
                                   env.ctx.load_multipliers * past.mean() / env.ctx.profiles["load"].mean(), rtol=1e-12)
    solar = yesterday(_env("2023-07-27"), "solar")
    assert solar.shape == (24,) and 0.8 < solar.max() <= 1.0 and solar.min() == 0.0


def test_a_profile_without_a_past_is_a_plan_the_forecast_keeps():
    """The built-in daily shape (no dataset) has no day before: the forecast is its schedule without the jitter, so
    without jitter the actual schedule exactly; no persistence features either."""
    from powergrid.bench.residual import yesterday

    env = _env(None, jitter=0.0)
    assert previous_day(env.scenario.providers["load"], 24, 60.0) is None
    np.testing.assert_array_equal(env.ctx.load_forecast, env.ctx.load_multipliers)
    assert yesterday(env, "load") is None

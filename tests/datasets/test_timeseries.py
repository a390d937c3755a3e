"""TimeSeries: resampling by unit, gap filling, episode windows, splits, alignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powergrid_datasets.timeseries import FILLED, INTERPOLATED, MEASURED, MISSING, TimeSeries, align


def series(values, step="15min", unit="MWh", start="2023-01-01", tz="UTC"):
    index = pd.date_range(pd.Timestamp(start, tz=tz), periods=len(values), freq=step)
    return TimeSeries.from_frame(pd.Series(np.asarray(values, dtype=float), index=index, name="x"), unit)


def test_energy_is_conserved_15min_to_hourly_and_back():
    rng = np.random.default_rng(3)
    ts = series(rng.uniform(0, 5, 96 * 3), unit="MWh")
    hourly = ts.resample(60)
    assert hourly.step == pd.Timedelta(hours=1) and len(hourly) == 72
    assert hourly.values().sum() == pytest.approx(ts.values().sum())
    # each hour is the sum of its four quarter hours
    np.testing.assert_allclose(hourly.values(), ts.values().reshape(-1, 4).sum(axis=1))
    back = hourly.resample(15)
    assert len(back) == len(ts)
    assert back.values().sum() == pytest.approx(ts.values().sum())
    np.testing.assert_allclose(back.values().reshape(-1, 4).sum(axis=1), hourly.values())
    assert set(np.unique(back.provenance.to_numpy())) == {INTERPOLATED}


def test_power_is_averaged_and_upsampling_preserves_energy():
    rng = np.random.default_rng(4)
    ts = series(rng.uniform(10, 50, 96), unit="MW")
    hourly = ts.resample("1h")
    np.testing.assert_allclose(hourly.values(), ts.values().reshape(-1, 4).mean(axis=1))
    back = hourly.resample(15)
    # MW × 0.25 h summed = MWh: the same energy at every step size
    assert (back.values() * 0.25).sum() == pytest.approx((ts.values() * 0.25).sum())
    assert (hourly.values() * 1.0).sum() == pytest.approx((ts.values() * 0.25).sum())
    # and a smooth interpolation rather than a staircase
    assert not np.allclose(back.values()[:4], back.values()[0])


def test_non_multiple_steps_go_through_the_gcd():
    ts = series(np.arange(24.0), step="1h", unit="MWh")
    out = ts.resample(45)
    assert out.step == pd.Timedelta(minutes=45)
    assert out.values().sum() == pytest.approx(ts.values().sum())


def test_downsampling_a_gap_marks_the_bin_missing():
    v = np.ones(8)
    v[5] = np.nan
    hourly = series(v, unit="MW").resample(60)
    assert hourly.provenance["x"].tolist() == [MEASURED, MISSING]
    assert np.isnan(hourly.values()[1])


def test_gap_filling_respects_the_limit():
    v = np.arange(20.0)
    v[3:5] = np.nan      # 2 missing: filled
    v[8:12] = np.nan     # 4 missing: too long for a limit of 3
    ts = series(v, unit="MW").fill_gaps(3)
    prov = ts.provenance["x"].to_numpy()
    assert (prov[3:5] == FILLED).all()
    np.testing.assert_allclose(ts.values()[3:5], [3.0, 4.0])
    assert (prov[8:12] == MISSING).all() and np.isnan(ts.values()[8:12]).all()
    assert (prov[:3] == MEASURED).all()
    # a duration works too: 45 min at 15-min steps is 3 steps
    same = series(v, unit="MW").fill_gaps("45min")
    assert same.provenance["x"].tolist() == ts.provenance["x"].tolist()


def test_gaps_at_the_ends_are_not_extrapolated():
    v = np.arange(10.0)
    v[:2] = np.nan
    v[-1] = np.nan
    ts = series(v, unit="MW").fill_gaps(5)
    assert np.isnan(ts.values()[[0, 1, 9]]).all()


def test_missing_timestamps_become_missing_rows():
    index = pd.date_range("2023-01-01", periods=6, freq="h", tz="UTC").delete([2, 3])
    ts = TimeSeries.from_frame(pd.Series([1.0, 2, 5, 6], index=index, name="x"), "MW", step="1h")
    assert len(ts) == 6
    assert ts.provenance["x"].tolist() == [MEASURED, MEASURED, MISSING, MISSING, MEASURED, MEASURED]


def test_duplicate_timestamps_are_an_error():
    index = pd.DatetimeIndex(["2023-01-01 00:00", "2023-01-01 00:00", "2023-01-01 01:00"], tz="UTC")
    with pytest.raises(ValueError, match="duplicate timestamps"):
        TimeSeries.from_frame(pd.Series([1.0, 2.0, 3.0], index=index), "MW")


@settings(max_examples=60, deadline=None)
@given(gap_start=st.integers(0, 96 * 10 - 20), gap_len=st.integers(5, 40), seed=st.integers(0, 2**32 - 1),
       n_steps=st.sampled_from([24, 96, 192]))
def test_a_window_with_a_long_gap_is_never_sampled(gap_start, gap_len, seed, n_steps):
    v = np.full(96 * 10, 1.0)
    v[gap_start: gap_start + gap_len] = np.nan
    ts = series(v, unit="MW").fill_gaps(4)  # gap_len >= 5: never filled
    starts = ts.window_starts(n_steps)
    for s in starts:
        assert not (s < gap_start + gap_len and gap_start < s + n_steps)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        if len(starts) == 0:
            with pytest.raises(ValueError, match="no window"):
                ts.sample_episode(n_steps, rng)
            break
        t0, values = ts.sample_episode(n_steps, rng)
        assert np.isfinite(values).all() and len(values) == n_steps
        assert t0.hour == 0 and t0.minute == 0


def test_episode_starts_are_local_midnights_and_seeded():
    ts = series(np.arange(96 * 30.0), unit="MW", start="2023-01-01")
    a = ts.sample_episode(96, np.random.default_rng(7), day_tz="America/Los_Angeles")
    b = ts.sample_episode(96, np.random.default_rng(7), day_tz="America/Los_Angeles")
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    assert a[0].tz_convert("America/Los_Angeles").hour == 0
    starts = {ts.sample_episode(96, np.random.default_rng(s))[0] for s in range(30)}
    assert len(starts) > 5


def test_fixed_start_and_its_errors():
    ts = series(np.arange(96 * 3.0), unit="MW")
    t0, v = ts.sample_episode(96, np.random.default_rng(0), start="2023-01-02")
    assert t0 == pd.Timestamp("2023-01-02", tz="UTC") and v[0] == 96.0
    with pytest.raises(ValueError, match="not all valid"):
        ts.sample_episode(200, np.random.default_rng(0), start="2023-01-02")


def test_a_fixed_start_asked_again_gives_the_same_episode_as_fresh_writable_arrays():
    """sample_episode keeps a checked fixed start: the second call gives the same timestamp and values, each
    episode its own writable array, and the series' frame stays writable (the cached column is a copy)."""
    ts = series(np.arange(96 * 3.0), unit="MW")
    first = ts.sample_episode(96, np.random.default_rng(0), start="2023-01-02")
    again = ts.sample_episode(96, np.random.default_rng(1), start="2023-01-02")
    assert first[0] == again[0] == pd.Timestamp("2023-01-02", tz="UTC")
    assert np.array_equal(first[1], np.arange(96.0, 192.0)) and np.array_equal(again[1], first[1])
    again[1][0] = -1.0  # an episode's array is the caller's: writing it changes neither the next nor the series
    assert ts.sample_episode(96, np.random.default_rng(2), start="2023-01-02")[1][0] == 96.0
    assert ts.values()[96] == 96.0 and ts.values().flags.writeable
    ts.data.iloc[0, 0] = 5.0


def test_masks_are_read_only_and_belong_to_their_series():
    """valid() and window_starts() are kept per series: read-only, and a derived series has its own."""
    v = np.ones(96 * 3)
    v[100:102] = np.nan
    gappy = series(v, unit="MW")
    valid, starts = gappy.valid(), gappy.window_starts(96)
    filled = gappy.fill_gaps(4)
    assert not valid.all() and filled.valid().all() and not gappy.valid().all()
    assert starts.tolist() == [0, 192] and filled.window_starts(96).tolist() == [0, 96, 192]
    for mask in (valid, starts):
        with pytest.raises(ValueError, match="read-only"):
            mask[0] = 0
    t0, values = gappy.sample_episode(96, np.random.default_rng(0))
    assert t0 in (gappy.index[0], gappy.index[192]) and np.isfinite(values).all()
    with pytest.raises(ValueError, match="not all valid"):
        gappy.sample_episode(96, np.random.default_rng(0), start="2023-01-02")


def test_split_by_date_ranges():
    ts = series(np.arange(96 * 10.0), unit="MW")
    parts = ts.split(train=("2023-01-01", "2023-01-08"), test=("2023-01-08", None))
    assert len(parts["train"]) == 96 * 7 and len(parts["test"]) == 96 * 3
    assert parts["train"].index[-1] < parts["test"].index[0]
    with pytest.raises(ValueError, match="overlap"):
        ts.split(a=("2023-01-01", "2023-01-05"), b=("2023-01-04", None))


def test_negative_and_outlier_policies():
    v = np.array([1.0, -0.5, 2.0, 1.5] * 24)
    assert series(v, unit="MW").apply_negative_policy("clip").values().min() == 0.0
    invalid = series(v, unit="MW").apply_negative_policy("invalid")
    assert (invalid.provenance["x"].to_numpy()[1::4] == MISSING).all()
    smooth = np.sin(np.linspace(0, 6, 96 * 3)) + 2
    smooth[100] = 50.0
    out = series(smooth, unit="MW").mark_outliers(6.0)
    assert out.provenance["x"].to_numpy()[100] == MISSING
    assert (out.provenance["x"].to_numpy() == MISSING).sum() == 1


def test_align_to_common_range_and_step():
    a = series(np.ones(96 * 2), step="15min", unit="MW", start="2023-01-01")
    b = series(np.ones(30), step="1h", unit="MWh", start="2023-01-01 06:00")
    x, y = align([a, b])
    assert x.step == y.step == pd.Timedelta(hours=1)
    assert x.index.equals(y.index) and x.index[0] == pd.Timestamp("2023-01-01 06:00", tz="UTC")

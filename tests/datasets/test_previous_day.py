"""``SeriesProvider.previous_day``: the local day before an episode's (23 or 25 h before it after a DST change), the
past the loads' forecast is levelled on and the bench's persistence features read; when that day is missing, the most
recent earlier day of the episode's day type, and with none the series' mean. A small ERCOT native-load file
(America/Chicago, CST = UTC−6 in January) whose every hour reads 1000·(day of month) + hour ending MW, so each value
names its day; Sunday 2023-01-08 is missing. The DST days read caiso_2023 (America/Los_Angeles)."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.params import build_params
from powergrid_datasets.providers import ErcotProvider

DAYS = (2, 3, 4, 5, 6, 7, 9, 10)  # Monday 2 … Saturday 7, Monday 9, Tuesday 10 of January 2023


@pytest.fixture
def native_load(tmp_path):
    lines = ["Hour Ending,COAST,EAST,FWEST,NORTH,NCENT,SOUTH,SCENT,WEST,ERCOT"]
    for day in DAYS:
        lines += [f"01/{day:02d}/2023 {he:02d}:00,1,1,1,1,1,1,1,1,{1000 * day + he}" for he in range(1, 25)]
    path = tmp_path / "Native_Load_2023.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _provider(path, **params) -> ErcotProvider:
    return ErcotProvider(build_params(ErcotProvider.Params, {"path": str(path), "normalize": "none", **params}), "load")


def _day(day: int) -> np.ndarray:
    return 1000.0 * day + np.arange(1, 25)


def test_the_previous_day_is_the_day_before_the_episode(native_load):
    provider = _provider(native_load, start="2023-01-10")
    assert provider.previous_day(24, 60.0) is None  # no episode yet
    np.testing.assert_array_equal(provider.episode(24, 60.0, np.random.default_rng(0)), _day(10))
    np.testing.assert_array_equal(provider.previous_day(24, 60.0), _day(9))


def test_a_held_out_previous_day_is_still_the_past(native_load):
    """``date_from`` keeps the 9th out of episodes, not out of the 10th's past."""
    provider = _provider(native_load, start="2023-01-10", date_from="2023-01-10")
    provider.episode(24, 60.0, np.random.default_rng(0))
    np.testing.assert_array_equal(provider.previous_day(24, 60.0), _day(9))


def test_a_missing_previous_day_takes_the_last_day_of_the_same_type(native_load):
    """Monday the 9th: Sunday the 8th is missing, Saturday the 7th is not a weekday: Friday the 6th. Saturday the 7th
    takes Friday the 6th, its previous day, whatever its type."""
    for start, before in (("2023-01-09", 6), ("2023-01-07", 6)):
        provider = _provider(native_load, start=start)
        provider.episode(24, 60.0, np.random.default_rng(0))
        np.testing.assert_array_equal(provider.previous_day(24, 60.0), _day(before))


def test_the_first_day_of_the_data_takes_the_series_mean(native_load):
    """Monday the 2nd has no earlier day: every hour at the mean of the whole series, 1000·mean(days) + 12.5 MW."""
    provider = _provider(native_load, start="2023-01-02")
    provider.episode(24, 60.0, np.random.default_rng(0))
    np.testing.assert_allclose(provider.previous_day(24, 60.0), np.full(24, 1000.0 * np.mean(DAYS) + 12.5), rtol=1e-12)


@pytest.mark.parametrize("step", [60.0, 15.0, 120.0])
@pytest.mark.parametrize("day, before", [("2023-03-13", "2023-03-12"), ("2023-11-06", "2023-11-05"),
                                         ("2023-06-14", "2023-06-13")])
def test_the_previous_day_is_the_local_day_before_across_a_dst_change(day, before, step):
    """The day after a DST change (America/Los_Angeles) is levelled on the local day before, its midnight 23 or 25 h
    back, bit for bit its episode: 24 elapsed hours back began an hour off (r41c F3: up to 0.07 pu a value on
    caiso_2023's AVA load on 2023-03-13)."""
    from powergrid_datasets.embedded import Caiso2023Provider

    def episode(start):
        provider = Caiso2023Provider(build_params(Caiso2023Provider.Params, {"area": "AVA", "start": start}), "load")
        return provider, provider.episode(int(24 * 60 / step), step, np.random.default_rng(0))

    provider, _ = episode(day)
    np.testing.assert_array_equal(provider.previous_day(int(24 * 60 / step), step), episode(before)[1])

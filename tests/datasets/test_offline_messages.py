"""Messages that say what happened: offline, no download is tried; a start time in the episode's own zone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powergrid.params import build_params
from powergrid_datasets.errors import DataFileError, DataUnavailableError
from powergrid_datasets.providers import CaisoProvider
from powergrid_datasets.timeseries import TimeSeries


def test_offline_a_missing_year_does_not_claim_a_failed_download(tmp_path, monkeypatch):
    """r42b F5: with POWERGRID_OFFLINE=1 no request is made, so "the download failed" was untrue."""
    monkeypatch.setenv("POWERGRID_OFFLINE", "1")
    monkeypatch.setenv("POWERGRID_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("POWERGRID_DATA_DIR", str(tmp_path / "empty"))
    provider = CaisoProvider(build_params(CaisoProvider.Params, {"area": "AVA", "year": 2023, "download": True}), "load")
    with pytest.raises(DataUnavailableError) as error:
        provider.raw_series()
    assert "the cache cannot supply it" in str(error.value) and "download failed" not in str(error.value)


def test_a_start_outside_the_data_is_shown_in_the_episode_s_zone():
    """r42b F6: a UTC start was printed as UTC and labelled America/Los_Angeles."""
    index = pd.date_range(pd.Timestamp("2023-01-01", tz="UTC"), periods=96, freq="1h")
    ts = TimeSeries.from_frame(pd.Series(np.arange(96.0), index=index, name="x"), "MW")
    with pytest.raises(DataFileError, match=r"start 2024-05-31 17:00:00-07:00 \(America/Los_Angeles\) is outside"):
        ts.sample_episode(24, np.random.default_rng(0), start=pd.Timestamp("2024-06-01", tz="UTC"),
                          day_tz="America/Los_Angeles")

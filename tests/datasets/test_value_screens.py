"""Values of a user's OASIS or CSV file that were taken silently (r42b F6): ``inf`` cells, negative values clipped
to 0, a spike of 10^k × the typical value. Each is one error or one warning naming the file, line and column."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from powergrid.params import build_params
from powergrid_datasets.errors import DataFileError
from powergrid_datasets.files import numeric
from powergrid_datasets.providers import CaisoProvider

HEADER = "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,TAC_AREA_NAME,MARKET_RUN_ID,MW"
HOURS = 96  # 2023-01-01 00:00 … 2023-01-04 23:00 UTC; data row i is on line i + 2


def load_file(tmp_path, cells: dict[int, str], name: str = "x_SLD_FCST_a.csv"):
    """An hourly AVA load CSV of 1,000–1,023 MW, with the value cells of the data rows in ``cells`` replaced."""
    times = pd.date_range("2023-01-01", periods=HOURS, freq="h", tz="UTC")
    rows = [f"{t:%Y-%m-%dT%H:%M:%S}-00:00,{t + pd.Timedelta(hours=1):%Y-%m-%dT%H:%M:%S}-00:00,x,1,AVA,ACTUAL,"
            f"{cells.get(i, 1000 + i % 24)}" for i, t in enumerate(times)]
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def series(path, **params):
    """The provider's cleaned series (``normalize: none``, MW), and the warnings its preparation gave."""
    provider = CaisoProvider(build_params(CaisoProvider.Params, {"path": str(path), "area": "AVA", "tz": "UTC",
                                                                 "normalize": "none", **params}), "load")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ts = provider.series()
    return ts, [str(w.message) for w in caught]


@pytest.mark.parametrize("cell", ["inf", "-inf", "Infinity", " +inf"])
def test_an_infinite_value_cell_is_an_error_naming_file_line_and_column(tmp_path, cell):
    # was: read as missing and gap-filled without a word
    path = load_file(tmp_path, {10: cell})
    with pytest.raises(DataFileError, match=rf"^{path}: line 12, column MW: not a finite number \(inf\) \(1 such cell\(s\); "
                                            r"expected a finite number in MW; set the dataset's bad_values: missing"):
        series(path)


def test_with_bad_values_missing_an_infinite_cell_is_a_gap_reported_in_the_one_warning(tmp_path):
    path = load_file(tmp_path, {10: "inf", 20: "12o4"})
    ts, caught = series(path, bad_values="missing")
    assert caught == [f"{path}: 2 value cell(s) that are not numbers read as missing (first at line 12, column MW, "
                      f"1 of them inf or -inf)"]
    assert ts.provenance_counts() == {"measured": HOURS - 2, "filled": 2}


@pytest.mark.parametrize("cell", ["", "NA", "N/A", "n/a", "nan", "NaN", "null", "NULL", "None", "#N/A"])
def test_the_documented_missing_markers_are_gaps_without_a_word(tmp_path, cell):
    ts, caught = series(load_file(tmp_path, {10: cell}))
    assert caught == [] and ts.provenance_counts() == {"measured": HOURS - 1, "filled": 1}


def test_negative_values_clipped_to_0_give_one_warning_naming_the_first_line(tmp_path):
    path = load_file(tmp_path, {30: "-500", 31: "-20", 50: "-7"})
    ts, caught = series(path)
    assert caught == [f"3 value(s) clipped to 0 in {path} column MW (AVA), first at line 32 (lowest -500 MW; the "
                      f"dataset's negative setting: keep or invalid to change it)"]
    assert ts.values()[[30, 31, 50]].tolist() == [0.0, 0.0, 0.0]


def test_small_negative_readings_are_clipped_silently_and_other_settings_do_not_clip(tmp_path):
    # night-time solar and wind in the real OASIS files dip to -0.8 % of their peak: a normal reading
    _, caught = series(load_file(tmp_path, {30: "-15"}))  # -1.5 % of the 1,023 MW peak
    assert caught == []
    path = load_file(tmp_path, {30: "-500"}, name="y_SLD_FCST_a.csv")
    for negative in ("keep", "invalid"):
        _, caught = series(path, negative=negative)
        assert caught == []


def test_a_spike_gives_one_warning_with_its_ratio_to_the_median_and_outlier_z_screens_it(tmp_path):
    path = load_file(tmp_path, {40: "1e9"})
    ts, caught = series(path, date_from="2023-01-02")  # cleaned twice (whole series, episode days): one warning
    assert caught == [f"max 1e+09 MW is 10^5 × the median (1,011.5 MW) in {path} column MW (AVA), at line 42; "
                      f"set the dataset's outlier_z (e.g. 6) to screen it"]
    assert ts.values()[40] == 1e9  # reported, not changed
    ts, caught = series(path, outlier_z=6)
    assert caught == [] and np.isfinite(ts.values()).all() and ts.values().max() < 1100


def test_a_value_999_times_the_median_is_not_a_spike(tmp_path):
    _, caught = series(load_file(tmp_path, {40: "1010000"}))  # 998× the 1,011.5 MW median
    assert caught == []


def test_infinite_cells_of_ercot_and_nyiso_columns_are_counted_in_their_warning():
    with pytest.warns(RuntimeWarning, match=r"^f\.csv: 3 cell\(s\) of column COAST are not numbers \(text, inf or -inf\); "
                                            r"read as missing$"):
        out = numeric(pd.Series(["1.5", "inf", "-inf", "12o4", "NA", "9,981.5"]), "f.csv", "COAST")
    assert out.tolist()[0] == 1.5 and np.isnan(out.tolist()[1:5]).all() and out.tolist()[5] == 9981.5
    with pytest.warns(RuntimeWarning, match=r"1 cell\(s\) of column LBMP are not numbers"):
        assert np.isnan(numeric(pd.Series([1.0, np.inf]), "g.csv", "LBMP").iloc[1])


def test_the_real_oasis_files_warn_only_where_a_load_is_far_below_0(caiso_dir):
    """The real 2023 files, default cleaning: the CAISO load and the hubs' solar (night readings down to -0.5 % of
    the peak) are silent; AZPS has two clipped values, the lowest -13,352 MW on 2023-06-24 11:00 UTC."""
    for role, params in (("load", {"area": "CA ISO-TAC"}), ("solar", {"hub": "SP15"}), ("load", {"area": "AZPS"})):
        provider = CaisoProvider(build_params(CaisoProvider.Params, {"path": str(caiso_dir), "normalize": "none",
                                                                     **params}), role)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            provider.series()
        messages = [str(w.message) for w in caught]
        if params.get("area") != "AZPS":
            assert messages == []
        else:
            assert len(messages) == 1 and messages[0].startswith("2 value(s) clipped to 0 in ")
            assert "column MW (AZPS), first at line " in messages[0] and "(lowest -13,352 MW;" in messages[0]

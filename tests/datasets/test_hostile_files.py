"""Broken and hostile OASIS files: each case is one clear error (or warning) naming the file, never its contents."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from powergrid.params import build_params
from powergrid_datasets import cache, caiso
from powergrid_datasets.errors import DataFileError, DataUnavailableError
from powergrid_datasets.providers import CaisoProvider
from powergrid_datasets.timeseries import TimeSeries

HEADER = "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,TAC_AREA_NAME,MARKET_RUN_ID,MW"
PRICE_HEADER = "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,NODE,LMP_TYPE,MARKET_RUN_ID,MW"


def load_csv(start: str, hours: int, value=lambda i: 100.0 + i % 24) -> str:
    times = pd.date_range(start, periods=hours, freq="h", tz="UTC")
    rows = [f"{t:%Y-%m-%dT%H:%M:%S}-00:00,{t + pd.Timedelta(hours=1):%Y-%m-%dT%H:%M:%S}-00:00,x,1,AVA,ACTUAL,{value(i)}"
            for i, t in enumerate(times)]
    return "\n".join([HEADER, *rows]) + "\n"


def price_csv(start: str, hours: int) -> str:
    times = pd.date_range(start, periods=hours, freq="h", tz="UTC")
    rows = [f"{t:%Y-%m-%dT%H:%M:%S}-00:00,{t + pd.Timedelta(hours=1):%Y-%m-%dT%H:%M:%S}-00:00,x,1,N1,LMP,DAM,{30 + i % 24}"
            for i, t in enumerate(times)]
    return "\n".join([PRICE_HEADER, *rows]) + "\n"


def provider(role: str, path, **params) -> CaisoProvider:
    extra = {"area": "AVA"} if role == "load" else {"node": "N1"}
    return CaisoProvider(build_params(CaisoProvider.Params, {"path": str(path), "tz": "UTC", **extra, **params}), role)


def write(folder, name: str, text: str):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_an_unparsable_cell_is_named_by_file_row_and_column(tmp_path):
    text = load_csv("2023-01-01", 72).replace(",AVA,ACTUAL,110.0\n", ",AVA,ACTUAL,12o4\n", 1)
    path = write(tmp_path, "x_SLD_FCST_a.csv", text)
    with pytest.raises(DataFileError, match=r"x_SLD_FCST_a.csv: line 12, column MW: not a number") as err:
        provider("load", path).raw_series()
    assert "12o4" not in str(err.value)


def test_a_bad_cell_is_named_by_its_line_in_the_file_and_its_zip_member(tmp_path):
    """Blank lines (which the CSV reader passes over) and a second CSV in the zip: the error still names the line an
    editor shows and the member (it said row 4 of the zip for line 5 of its second CSV)."""
    good = load_csv("2023-01-01", 3)
    lines = load_csv("2023-01-02", 3).splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",12o4"
    bad = "\n".join([lines[0], lines[1], "", lines[2], lines[3]]) + "\n"  # the bad cell on line 4, after a blank line
    path = tmp_path / "x_SLD_FCST_a.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.csv", good)
        zf.writestr("b.csv", bad)
    with pytest.raises(DataFileError, match=r"x_SLD_FCST_a.zip \(b.csv\): line 4, column MW: not a number \(1 such"):
        provider("load", path).raw_series()


def test_bad_values_missing_reads_them_as_gaps_with_one_warning(tmp_path):
    text = load_csv("2023-01-01", 72).replace(",AVA,ACTUAL,110.0\n", ",AVA,ACTUAL,12o4\n", 1)
    path = write(tmp_path, "x_SLD_FCST_a.csv", text)
    with pytest.warns(RuntimeWarning, match=r"1 value cell\(s\) that are not numbers read as missing \(first at line 12"):
        series = provider("load", path, bad_values="missing").raw_series()
    assert np.isnan(series.values()[10]) and np.isfinite(series.values()).sum() == 71


def test_conflicting_duplicates_are_warned_with_both_files(tmp_path):
    write(tmp_path, "a_SLD_FCST_1.csv", load_csv("2023-01-01", 48))
    write(tmp_path, "b_SLD_FCST_2.csv", load_csv("2023-01-02", 48, value=lambda i: 500.0))
    with pytest.warns(RuntimeWarning, match=r"24 interval\(s\) have different values in two files.*a_SLD_FCST_1.csv"
                                            r".*b_SLD_FCST_2.csv"):
        series = provider("load", tmp_path).raw_series()
    assert series.values()[30] == 500.0  # the later file


def test_one_file_giving_an_interval_two_values_is_an_error_naming_both_lines(tmp_path):
    """It used to warn of 'two files' naming the same file twice and use whichever row came last."""
    text = load_csv("2023-01-01", 12)
    repeated = text.splitlines()[3].rsplit(",", 1)[0] + ",5555.0"  # line 4's hour (02:00) again, another value
    same = text.splitlines()[5]  # line 6 again, the same value: harmless
    path = write(tmp_path, "a_SLD_FCST_1.csv", text + repeated + "\n" + same + "\n")
    with pytest.raises(DataFileError, match=r"a_SLD_FCST_1.csv: line 4 and line 14 give the interval starting "
                                            r"2023-01-01 02:00:00\+00:00 different values \(102.0, 5555.0\)"):
        provider("load", path).raw_series()
    path.write_text(text + same + "\n")
    assert provider("load", path).raw_series().values()[4] == 104.0


def test_an_off_grid_timestamp_names_its_file_and_the_step(tmp_path):
    write(tmp_path, "a_SLD_FCST_1.csv", load_csv("2023-01-01", 48))
    write(tmp_path, "b_SLD_FCST_2.csv", load_csv("2023-01-03 00:07", 3))
    with pytest.raises(DataFileError, match=r"b_SLD_FCST_2.csv: timestamp 2023-01-03 00:07:00\+00:00 is off the "
                                            r"1h grid"):
        provider("load", tmp_path).raw_series()


def test_a_start_outside_the_data_is_a_clear_error(tmp_path):
    path = write(tmp_path, "x_SLD_FCST_a.csv", load_csv("2023-01-01", 72))
    with pytest.raises(DataFileError, match=r"x_SLD_FCST_a.csv: start 2030-01-01 00:00:00\+00:00 \(UTC\) is outside "
                                            r"the data \(2023-01-01 00:00:00\+00:00 … 2023-01-03 23:00:00\+00:00"):
        provider("load", path, start="2030-01-01").episode(24, 60, np.random.default_rng(0))


def test_max_gap_hours_zero_fills_nothing(tmp_path):
    text = load_csv("2023-01-01", 72).replace(",AVA,ACTUAL,110.0\n", ",AVA,ACTUAL,\n", 1)
    path = write(tmp_path, "x_SLD_FCST_a.csv", text)
    ts = provider("load", path, max_gap_hours=0).series()
    assert ts.provenance_counts().get("missing") == 1 and "filled" not in ts.provenance_counts()


def test_a_damaged_deflate_stream_is_a_corrupt_file_error(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x_SLD_FCST_a.csv", load_csv("2023-01-01", 72))
    raw = bytearray(buffer.getvalue())
    start = raw.index(b"x_SLD_FCST_a.csv") + len("x_SLD_FCST_a.csv") + 10
    raw[start: start + 40] = bytes(40)  # the compressed data, not the headers
    path = tmp_path / "x_SLD_FCST_a.zip"
    path.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match="corrupt"):
        provider("load", path).raw_series()
    with pytest.raises(DataFileError, match="corrupt"):
        cache.validate_zip(path)


def test_a_file_of_another_kind_is_refused_without_quoting_it(tmp_path):
    path = write(tmp_path, "secret_SLD_FCST_.csv", "root:x:0:0:root:/root:/bin/bash\nline two\n")
    with pytest.raises(DataFileError) as err:
        provider("load", path).raw_series()
    assert "root" not in str(err.value).replace(str(tmp_path), "")


def test_no_download_unless_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("POWERGRID_OFFLINE", raising=False)
    monkeypatch.setenv("POWERGRID_CAISO_URL", "http://127.0.0.1:9/never")  # would refuse the connection anyway
    plain = CaisoProvider(build_params(CaisoProvider.Params, {"area": "AVA"}), "load")
    with pytest.raises(DataUnavailableError, match="download: true"):
        plain.files()
    assert not list(cache.cache_dir("caiso").iterdir())


def test_identifiers_are_sanitised_in_cache_file_names():
    assert caiso.file_part("/../../../../tmp/PWNED") == "tmp-PWNED"
    assert caiso.file_part("CA ISO-TAC") == "CA-ISO-TAC"
    with pytest.raises(ValueError, match="expected letters"):
        cache.fetch("http://127.0.0.1:9/x", "../../x.zip", subdir="caiso")


def test_every_role_starts_on_one_day_inside_their_common_coverage(tmp_path):
    """Load covers Jan 1–20, price Jan 11–31: every episode starts on a day of Jan 11–20 for both roles."""
    write(tmp_path / "load", "x_SLD_FCST_a.csv", load_csv("2023-01-01", 20 * 24))
    write(tmp_path / "price", "x_PRC_LMP_a.csv", price_csv("2023-01-11", 21 * 24))
    providers = {"load": provider("load", tmp_path / "load"), "price": provider("price", tmp_path / "price")}
    for p in providers.values():
        p.bind(providers)
    days = set()
    for seed in range(12):
        for p in providers.values():
            p.episode(24, 60, np.random.default_rng(seed))
        starts = {p.last_start for p in providers.values()}
        assert len(starts) == 1
        days |= starts
    assert min(days) >= pd.Timestamp("2023-01-11", tz="UTC") and max(days) <= pd.Timestamp("2023-01-20", tz="UTC")
    assert len(days) > 3


def test_roles_without_a_common_day_are_an_error(tmp_path):
    write(tmp_path / "load", "x_SLD_FCST_a.csv", load_csv("2023-01-01", 5 * 24))
    write(tmp_path / "price", "x_PRC_LMP_a.csv", price_csv("2023-02-01", 5 * 24))
    providers = {"load": provider("load", tmp_path / "load"), "price": provider("price", tmp_path / "price")}
    for p in providers.values():
        p.bind(providers)
    with pytest.raises(DataFileError, match="have no day in common"):
        providers["load"].episode(24, 60, np.random.default_rng(0))


def test_an_odd_timestamp_in_a_series_names_the_step_of_the_others():
    index = pd.date_range("2023-01-01", periods=10, freq="h", tz="UTC").append(
        pd.DatetimeIndex([pd.Timestamp("2023-01-01 10:30", tz="UTC")]))
    with pytest.raises(DataFileError, match=r"src: timestamp 2023-01-01 10:30:00\+00:00 is off the 1h grid"):
        TimeSeries.from_frame(pd.Series(np.ones(11), index=index), "MW", source="src")

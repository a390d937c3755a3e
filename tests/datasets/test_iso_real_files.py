"""ERCOT and NYISO readers on real published files, as downloaded (provenance: the README beside them).

The files live beside the repository in ``../shared/data/ercot`` and ``../shared/data/nyiso``
(or in ``$POWERGRID_REAL_ISO_FILES/{ercot,nyiso}``); without them these tests skip. Every
expected value below is a cell of the file, and every time is worked out by hand from
the ISO's convention (ERCOT: Central time, hour ending; NYISO RT: Eastern, interval ending).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from powergrid.params import build_params
from powergrid_datasets import ercot, nyiso
from powergrid_datasets.providers import ErcotProvider

SHARED = Path(os.environ.get("POWERGRID_REAL_ISO_FILES") or Path(__file__).resolve().parents[2].parent / "shared" / "data")


def real(iso: str, name: str) -> Path:
    path = SHARED / iso / name
    if not path.is_file():
        pytest.skip(f"the real {iso.upper()} file {name} is not at {path.parent}")
    return path


def utc(stamp: str) -> pd.Timestamp:
    return pd.Timestamp(stamp, tz="UTC")


def hours_per_local_day(ts, tz: str) -> pd.Series:
    local = ts.index.tz_convert(tz)
    return pd.Series(1, index=local).groupby(local.date).sum()


def test_ercot_native_load_2023_zip_as_published(tmp_path):
    """Native_Load_2023.zip holding Native_Load_2023.xlsx (zipped here around the real workbook)."""
    z = tmp_path / "Native_Load_2023.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(real("ercot", "Native_Load_2023.xlsx"), "Native_Load_2023.xlsx")
    ts = ercot.load_series(z, "ERCOT")
    assert len(ts) == 8760 and ts.valid().all()
    assert (ts.index[0], ts.index[-1]) == (utc("2023-01-01 06:00"), utc("2024-01-01 05:00"))
    days = hours_per_local_day(ts, ercot.TZ)
    assert days[days != 24].to_dict() == {pd.Timestamp("2023-03-12").date(): 23, pd.Timestamp("2023-11-05").date(): 25}
    v = ts.data["ERCOT"]
    assert v[utc("2023-01-01 06:00")] == pytest.approx(35609.173887)  # row "01/01/2023 01:00"
    provider = ErcotProvider(build_params(ErcotProvider.Params, {"path": str(z), "zone": "COAST", "normalize": "none",
                                                                 "start": "2023-11-05"}), "load")
    day = provider.episode(25, 60, np.random.default_rng(0))  # the 25-hour day, hour by hour
    coast = ercot.load_series(z, "COAST").data["COAST"]
    np.testing.assert_array_equal(day, coast[utc("2023-11-05 05:00"):utc("2023-11-06 05:00")].to_numpy())


def test_ercot_native_load_2022_date_time_cell():
    """Native_Load_2022.xlsx: the cell of 12/01/2022 hour ending 01:00 is an Excel date-time, not text."""
    ts = ercot.load_series(real("ercot", "Native_Load_2022.xlsx"), "ERCOT")
    assert len(ts) == 8760 and ts.valid().all()
    v = ts.data["ERCOT"]
    assert v[utc("2022-12-01 06:00")] == pytest.approx(42313.98967)  # that cell's row (row 8018)
    assert v[utc("2022-11-06 06:00")] == pytest.approx(34706.875462)  # "11/06/2022 02:00": 01:00 CDT
    assert v[utc("2022-11-06 07:00")] == pytest.approx(34067.955296)  # "11/06/2022 02:00 DST": 01:00 CST


def test_ercot_native_load_2016_layout():
    """Native_Load_2016.xlsx: date-time stamps ms off the hour, zone names FAR_WEST … SOUTH_C, one blank hour."""
    frame = ercot.read_load_file(real("ercot", "Native_Load_2016.xlsx"))
    coast = frame[frame.zone == "COAST"].set_index("time")["value"]
    assert len(coast) == 8784 and int(coast.isna().sum()) == 1  # HE 24 of 11/06/2016 is blank in the file
    assert np.isnan(coast[utc("2016-11-07 05:00")])
    assert coast[utc("2016-03-13 07:00")] == pytest.approx(7929.553339754454)  # stamp 03:00 of the spring day: 01:00 CST
    assert coast[utc("2016-11-06 07:00")] == pytest.approx(8586.846227429725)  # the second stamp 02:00: 01:00 CST
    ts = ercot.load_series(real("ercot", "Native_Load_2016.xlsx"), "FWEST")  # FAR_WEST under today's name
    days = hours_per_local_day(ts, ercot.TZ)
    assert days[days != 24].to_dict() == {pd.Timestamp("2016-03-13").date(): 23, pd.Timestamp("2016-11-06").date(): 25}


def test_ercot_yearly_dam_spp_workbook():
    """rpt.00013060…DAMLZHBSPP_2021.xlsx: twelve monthly sheets, the repeated hour flagged Y."""
    ts = ercot.price_series(real("ercot", "rpt.00013060.0000000000000000.DAMLZHBSPP_2021.xlsx"), "HB_HOUSTON")
    assert len(ts) == 8760 and ts.valid().all()
    days = hours_per_local_day(ts, ercot.TZ)
    assert days[days != 24].to_dict() == {pd.Timestamp("2021-03-14").date(): 23, pd.Timestamp("2021-11-07").date(): 25}
    v = ts.data["HB_HOUSTON"]
    assert v[utc("2021-03-14 07:00")] == 16.25 and v[utc("2021-03-14 08:00")] == 15.07  # HE 02, then HE 04 (03:00 CDT)
    assert v[utc("2021-11-07 06:00")] == 24.75 and v[utc("2021-11-07 07:00")] == 28.14  # HE 02 N, HE 02 Y
    assert v[utc("2021-01-01 06:00")] == 18.3  # Jan sheet, first HB_HOUSTON row


def test_nyiso_pal_autumn_day():
    """20251102pal.csv (one zone's rows, 00:00 EDT to 03:00 EST): the repeated hour told apart by Time Zone."""
    ts = nyiso.load_series(real("nyiso", "20251102pal.csv"), "CAPITL")
    v = ts.data["CAPITL"]
    assert len(v) == 49 and ts.valid().all() and ts.step == pd.Timedelta(minutes=5)
    assert v.index[0] == utc("2025-11-02 04:00") and v.index[-1] == utc("2025-11-02 08:00")
    assert v[utc("2025-11-02 05:55")] == 1076.7329  # 01:55 EDT
    assert v[utc("2025-11-02 06:00")] == 1065.0978  # 01:00 EST


def test_nyiso_realtime_autumn_day_with_off_grid_runs():
    """20211107realtime_zone.csv (one zone, 00:05 EDT to 03:00 EST): stamps end intervals; 01:57:48, 01:02:48, 01:08:12."""
    path = real("nyiso", "20211107realtime_zone.csv")
    assert nyiso.read_lbmp_file(path)[1] == "RT"
    ts = nyiso.price_series(path, "CAPITL", market="RT")
    v = ts.data["CAPITL"]
    assert len(v) == 48 and ts.valid().all()  # 4 hours of 5-minute intervals, 00:00 EDT to 03:00 EST
    assert v.index[0] == utc("2021-11-07 04:00") and v.iloc[0] == 55.41  # "00:05:00" ends 00:00–00:05 EDT
    assert v[utc("2021-11-07 05:50")] == 109.59  # "01:55:00" EDT
    assert v[utc("2021-11-07 05:55")] == pytest.approx((405.17 * 168 + 173.93 * 132) / 300)  # 01:57:48 EDT and 01:00 EST
    assert v[utc("2021-11-07 06:05")] == pytest.approx((173.93 * 192 + 57.38 * 108) / 300)  # 01:08:12 EST and 01:10 EST
    assert v[utc("2021-11-07 07:55")] == 48.91  # "03:00:00" EST

"""ERCOT and NYISO parsers on small files written in their public layouts, DST days included."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest

from powergrid.params import build_params
from powergrid_datasets import ercot, nyiso
from powergrid_datasets.errors import DataFileError
from powergrid_datasets.providers import ErcotProvider, NyisoProvider


def ercot_native_load(path, days):
    """Native load rows for ``days`` (dates), with ERCOT's 24:00 hour and DST-flagged repeated hour."""
    lines = ["Hour Ending,COAST,EAST,FWEST,NORTH,NCENT,SOUTH,SCENT,WEST,ERCOT"]
    for day in days:
        d = pd.Timestamp(day)
        hours = list(range(1, 25))
        if d == pd.Timestamp("2023-03-12"):
            hours.remove(3)  # 02:00-03:00 CST does not exist
        for he in hours:
            stamp = f"{d:%m/%d/%Y} {he:02d}:00"
            coast = 10000 + 100 * he
            lines.append(f"{stamp},{coast:.2f},1000,500,800,12000,4000,6000,1200,\"{coast + 25500:,.2f}\"")
            if d == pd.Timestamp("2023-11-05") and he == 2:
                lines.append(f"{stamp} DST,{coast + 1:.2f},1000,500,800,12000,4000,6000,1200,{coast + 25501:.2f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ercot_native_load_dst(tmp_path):
    path = ercot_native_load(tmp_path / "Native_Load_2023.csv", ["2023-03-12", "2023-11-05"])
    frame = ercot.read_load_file(path)
    coast = frame[frame.zone == "COAST"].set_index("time")["value"].sort_index()
    # spring day: 23 hours, 2023-03-12 00:00 CST = 06:00Z to 2023-03-13 00:00 CDT = 05:00Z
    spring = coast[pd.Timestamp("2023-03-12 06:00", tz="UTC"): pd.Timestamp("2023-03-13 04:00", tz="UTC")]
    assert len(spring) == 23 and spring.index.to_series().diff().dropna().eq(pd.Timedelta("1h")).all()
    # autumn day: 25 hours, 05:00Z .. 06:00Z next day; HE 02:00 is 06:00Z (CDT), HE 02:00 DST is 07:00Z (CST)
    autumn = coast[pd.Timestamp("2023-11-05 05:00", tz="UTC"): pd.Timestamp("2023-11-06 05:00", tz="UTC")]
    assert len(autumn) == 25
    assert coast[pd.Timestamp("2023-11-05 06:00", tz="UTC")] == 10200.0
    assert coast[pd.Timestamp("2023-11-05 07:00", tz="UTC")] == 10201.0
    # hour ending 24:00 is the last hour of its own day: 23:00-24:00 CST = 05:00Z next day
    assert coast[pd.Timestamp("2023-11-06 05:00", tz="UTC")] == 12400.0
    ts = ercot.load_series(path, "ERCOT")
    assert ts.values()[0] == pytest.approx(10100 + 25500)  # thousands separator parsed


def test_ercot_spp(tmp_path):
    lines = ["Delivery Date,Hour Ending,Repeated Hour Flag,Settlement Point,Settlement Point Price"]
    for he in range(1, 25):
        for point, base in (("HB_HOUSTON", 20.0), ("HB_NORTH", 30.0)):
            lines.append(f"11/05/2023,{he:02d}:00,N,{point},{base + he}")
            if he == 2:
                lines.append(f"11/05/2023,{he:02d}:00,Y,{point},{base + 0.5}")
    path = tmp_path / "cdr.00012331.0000000000000000.20231104.DAMSPNP4190.csv"
    path.write_text("\n".join(lines) + "\n")
    ts = ercot.price_series(tmp_path, "hb_houston")
    assert len(ts) == 25 and ts.valid().all()
    assert ts.data.loc[pd.Timestamp("2023-11-05 07:00", tz="UTC")].iloc[0] == 20.5
    provider = ErcotProvider(build_params(ErcotProvider.Params, {"path": str(path), "settlement_point": "HB_NORTH"}), "price")
    v = provider.episode(24, 60, np.random.default_rng(0))
    assert v[0] == 31.0 and len(v) == 24
    with pytest.raises(DataFileError, match=r"no settlement point 'HB_WEST'.*HB_HOUSTON, HB_NORTH"):
        ercot.price_series(path, "HB_WEST")
    with pytest.raises(DataFileError, match=r"DAMSPNP4190\.csv.*DAM settlement point price report, not native load"):
        ercot.read_load_file(path)


def nyiso_pal_day(day, tz_rows):
    """5-minute rows of one day for two zones; ``tz_rows`` gives (local time, zone) in file order."""
    lines = []
    for i, (stamp, zone) in enumerate(tz_rows):
        for name, ptid, base in (("N.Y.C.", 61761, 5000.0), ("CAPITL", 61757, 1000.0)):
            lines.append(f'"{day} {stamp}","{zone}","{name}",{ptid},{base + i}')
    return lines


def test_nyiso_load_autumn_dst_zip(tmp_path):
    rows = []
    t = pd.Timestamp("2023-11-05 00:00")
    for i in range(24 * 12 + 12):  # 25 local hours of 5-minute stamps
        local = t + pd.Timedelta(minutes=5 * i)
        zone = "EDT" if i < 24 else "EST"
        if i >= 24:
            local = local - pd.Timedelta(hours=1)
        rows.append((local.strftime("%H:%M:%S"), zone))
    lines = ['"Time Stamp","Time Zone","Name","PTID","Load"'] + nyiso_pal_day("11/05/2023", rows)
    z = tmp_path / "20231101pal_csv.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("20231105pal.csv", "\n".join(lines) + "\n")
    ts = nyiso.load_series(z, "N.Y.C.")
    assert ts.step == pd.Timedelta(minutes=5)
    assert len(ts) == 300 and ts.valid().all()  # 25 h × 12, no duplicates after placing EDT/EST
    assert ts.index[0] == pd.Timestamp("2023-11-05 04:00", tz="UTC")
    assert ts.data.loc[pd.Timestamp("2023-11-05 06:00", tz="UTC")].iloc[0] == 5000.0 + 24  # 01:00 EST
    provider = NyisoProvider(build_params(NyisoProvider.Params, {"path": str(z), "zone": "CAPITL"}), "load")
    v = provider.episode(12, 60, np.random.default_rng(0))
    # hourly means of the 5-minute values, divided by the series mean (1000 + 299 / 2)
    np.testing.assert_allclose(v, (1005.5 + 12 * np.arange(12)) / 1149.5)


def test_nyiso_lbmp_spring_and_autumn_without_zone_column(tmp_path):
    header = '"Time Stamp","Name","PTID","LBMP ($/MWHr)","Marginal Cost Losses ($/MWHr)","Marginal Cost Congestion ($/MWHr)"'
    lines = [header]
    for hour in [h for h in range(24) if h != 2]:  # 2023-03-12: no 02:00
        lines.append(f'"03/12/2023 {hour:02d}:00","WEST",61752,{30 + hour},1.5,-{hour}')
    for i, hour in enumerate([0, 1, 1, *range(2, 24)]):  # 2023-11-05: 01:00 twice (EDT then EST)
        lines.append(f'"11/05/2023 {hour:02d}:00","WEST",61752,{50 + i},2.0,-0.5')
    (tmp_path / "lbmp.csv").write_text("\n".join(lines) + "\n")
    ts = nyiso.price_series(tmp_path, "WEST")
    assert ts.data.loc[pd.Timestamp("2023-03-12 07:00", tz="UTC")].iloc[0] == 33.0  # 03:00 EDT
    assert ts.data.loc[pd.Timestamp("2023-11-05 05:00", tz="UTC")].iloc[0] == 51.0  # 01:00 EDT
    assert ts.data.loc[pd.Timestamp("2023-11-05 06:00", tz="UTC")].iloc[0] == 52.0  # 01:00 EST
    assert not ts.index.has_duplicates
    cong = nyiso.price_series(tmp_path, "WEST", "congestion")
    assert cong.data.loc[pd.Timestamp("2023-03-12 07:00", tz="UTC")].iloc[0] == -3.0

"""ERCOT and NYISO parsers on small files written in their published layouts (headers, cell types,
DST days and stamp conventions as the ISOs publish them; the numbers are made up so that every
expected value can be computed by hand). Real published files: ``test_iso_real_files.py``."""

from __future__ import annotations

import datetime as dt
import io
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from powergrid.params import build_params
from powergrid_datasets import ercot, nyiso
from powergrid_datasets.errors import DataFileError
from powergrid_datasets.providers import ErcotProvider, NyisoProvider

from .xlsx_writer import write_xlsx

LOAD_HEADER = ["Hour Ending", "COAST", "EAST", "FWEST", "NORTH", "NCENT", "SOUTH", "SCENT", "WEST", "ERCOT"]
LBMP_HEADER = '"Time Stamp","Name","PTID","LBMP ($/MWHr)","Marginal Cost Losses ($/MWHr)","Marginal Cost Congestion ($/MWHr)"'


def utc(stamp: str) -> pd.Timestamp:
    return pd.Timestamp(stamp, tz="UTC")


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


def test_ercot_native_load_workbook_in_zip_with_a_date_time_cell(tmp_path):
    """Native_Load_YYYY.zip holds one .xlsx; one Hour Ending cell stored as an Excel date-time (as in 2022)."""
    rows = [LOAD_HEADER]
    for he in range(1, 25):
        stamp = dt.datetime(2022, 12, 1, he) if he == 1 else f"12/01/2022 {he:02d}:00"
        rows.append([stamp, *[float(100 * he + z) for z in range(9)]])
        if he == 2:
            rows.append(["11/06/2022 02:00 DST", *[0.5] * 9])  # a flagged repeated hour, out of place on purpose
    book = write_xlsx(tmp_path / "Native_Load_2022.xlsx", {"Sheet1": rows})
    z = tmp_path / "Native_Load_2022.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(book, book.name)
    book.unlink()
    coast = ercot.load_series(z, "COAST").data["COAST"]
    assert coast[utc("2022-12-01 06:00")] == 100.0  # the date-time cell: HE 01 of 12/01 = 00:00 CST
    assert coast[utc("2022-12-02 05:00")] == 2400.0  # HE 24 = 23:00 CST
    assert coast[utc("2022-11-06 07:00")] == 0.5  # 02:00 DST = 01:00 CST (the second 01:00)
    ts = ercot.load_series(tmp_path, "ERCOT")  # a folder holding the zip
    assert ts.data["ERCOT"][utc("2022-12-01 07:00")] == 208.0


def test_ercot_native_load_2016_layout(tmp_path):
    """2016: every stamp a date-time cell a few ms off the hour, old zone names, clock time on DST days."""
    jitter = dt.timedelta(milliseconds=3)
    stamps = [dt.datetime(2016, 3, 13, 1) + jitter, dt.datetime(2016, 3, 13, 3), dt.datetime(2016, 3, 13, 4) - jitter,
              dt.datetime(2016, 11, 6, 1) + jitter, dt.datetime(2016, 11, 6, 2) - jitter, dt.datetime(2016, 11, 6, 2) - jitter,
              dt.datetime(2016, 11, 6, 3), dt.date(2017, 1, 1)]
    header = ["Hour Ending", "COAST", "EAST", "FAR_WEST", "NORTH", "NORTH_C", "SOUTHERN", "SOUTH_C", "WEST", "ERCOT"]
    rows = [header] + [[s, *[float(10 * i + z) for z in range(9)]] for i, s in enumerate(stamps)]
    path = write_xlsx(tmp_path / "Native_Load_2016.xlsx", {"native_Load_2016": rows})
    frame = ercot.read_load_file(path)
    assert set(frame.zone) == set(ercot.ZONES)  # FAR_WEST → FWEST, NORTH_C → NCENT, SOUTHERN → SOUTH, SOUTH_C → SCENT
    fwest = frame[frame.zone == "FWEST"].set_index("time")["value"]
    assert list(fwest.index) == [utc("2016-03-13 06:00"), utc("2016-03-13 07:00"), utc("2016-03-13 08:00"),  # 03:00 ends 01:00 CST
                                 utc("2016-11-06 05:00"), utc("2016-11-06 06:00"), utc("2016-11-06 07:00"),  # 02:00 twice: CDT, CST
                                 utc("2016-11-06 08:00"), utc("2017-01-01 05:00")]  # a bare date is midnight: HE 24
    assert fwest.to_list() == [2.0 + 10 * i for i in range(8)]


def test_ercot_spp_yearly_workbook_every_sheet(tmp_path):
    """The yearly DAM workbook: one sheet per month; dates and hours may be stored as date/time cells."""
    sheets = {}
    for month, day in (("Oct", 31), ("Nov", 6)):
        rows = [["Delivery Date", "Hour Ending", "Repeated Hour Flag", "Settlement Point", "Settlement Point Price"]]
        for he in range(1, 25):
            date_cell = dt.date(2022, 10 if month == "Oct" else 11, day) if he % 2 else f"{10 if month == 'Oct' else 11:02d}/{day:02d}/2022"
            hour_cell = dt.datetime(1899, 12, 30, he % 24) if he % 3 == 0 else f"{he:02d}:00"
            rows.append([date_cell, hour_cell, "N", "HB_HOUSTON", float(he)])
            if month == "Nov" and he == 2:
                rows.append([date_cell, hour_cell, "Y", "HB_HOUSTON", 2.5])
        sheets[month] = rows
    path = write_xlsx(tmp_path / "rpt.00013060.0000000000000000.DAMLZHBSPP_2022.xlsx", sheets)
    ts = ercot.price_series(path, "HB_HOUSTON")
    v = ts.data["HB_HOUSTON"]
    assert v[utc("2022-10-31 05:00")] == 1.0 and v[utc("2022-11-01 04:00")] == 24.0  # HE 24 stored as 00:00 time
    assert v[utc("2022-11-06 06:00")] == 2.0 and v[utc("2022-11-06 07:00")] == 2.5  # repeated hour (CST)
    assert v[utc("2022-11-07 05:00")] == 24.0 and len(v.dropna()) == 49


def test_a_bad_ercot_cell_is_named_by_its_sheet_and_row_or_its_line(tmp_path):
    """Row 3 of sheet 'Feb' was reported as 'row 27' of the workbook (rows counted across sheets); a daily CSV with
    a blank line before the bad cell named the line before it."""
    head = ["Delivery Date", "Hour Ending", "Repeated Hour Flag", "Settlement Point", "Settlement Point Price"]
    sheets = {m: [head] + [[f"{n:02d}/01/2023", f"{h:02d}:00", "N", "HB_HOUSTON", float(h)] for h in range(1, 25)]
              for n, m in ((1, "Jan"), (2, "Feb"))}
    sheets["Feb"][2][1] = "2x:00"
    book = write_xlsx(tmp_path / "rpt.00013060.DAMLZHBSPP_2023.xlsx", sheets)
    with pytest.raises(DataFileError, match=r"DAMLZHBSPP_2023\.xlsx sheet 'Feb': bad date/hour ending '02/01/2023' "
                                            r"'2x:00' \(row 3\)$"):
        ercot.price_series(book, "HB_HOUSTON")
    daily = tmp_path / "cdr.00012331.DAMSPNP4190.csv"
    daily.write_text("DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag\n"
                     "11/01/2023,01:00,HB_HOUSTON,20.0,N\n\n11/01/2023,25:00,HB_HOUSTON,21.0,N\n")
    with pytest.raises(DataFileError, match=r"DAMSPNP4190\.csv: bad date/hour ending '11/01/2023' '25:00' \(line 4\)$"):
        ercot.price_series(daily, "HB_HOUSTON")


@pytest.mark.parametrize(("bad", "message"), [
    ('"07/01/2023 00:1O:00","EDT"', r"line 4: expected a Time Stamp like 07/01/2023 00:05:00, found '07/01/2023 00:1O:00'$"),
    ('"07/01/2023 00:10:00","XDT"', r"line 4: expected Time Zone EST or EDT, found 'XDT'$"),
])
def test_a_bad_nyiso_stamp_or_zone_is_named_by_its_line(tmp_path, bad, message):
    """A stamp with a letter O for a zero used to give pandas' several-line format advice naming 'position 0'
    (a good row); now one line naming the file, the line and the cell."""
    rows = ['"Time Stamp","Time Zone","Name","PTID","Load"', '"07/01/2023 00:00:00","EDT","N.Y.C.",61761,5000.1',
            '"07/01/2023 00:05:00","EDT","N.Y.C.",61761,5001.1', f'{bad},"N.Y.C.",61761,5002.1']
    path = tmp_path / "20230701pal.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataFileError, match=r"20230701pal\.csv: " + message) as err:
        nyiso.read_load_file(path)
    assert "\n" not in str(err.value)


def test_ercot_daily_spp_csv_with_its_own_header(tmp_path):
    """NP4-190-CD daily CSV: DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag (Y = repeated hour)."""
    lines = ["DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag"]
    for he in range(1, 25):
        for point, base in (("HB_HOUSTON", 20.0), ("HB_NORTH", 30.0)):
            lines.append(f"11/05/2023,{he:02d}:00,{point}, {base + he:.2f},N")
            if he == 2:
                lines.append(f"11/05/2023,{he:02d}:00,{point}, {base + 0.5:.2f},Y")
    path = tmp_path / "cdr.00012331.0000000000000000.20231104.123211.DAMSPNP4190.csv"
    path.write_text("\n".join(lines) + "\n")
    ts = ercot.price_series(tmp_path, "hb_houston")
    assert len(ts) == 25 and ts.valid().all()
    assert ts.data.loc[utc("2023-11-05 06:00")].iloc[0] == 22.0  # HE 02 N: 01:00 CDT
    assert ts.data.loc[utc("2023-11-05 07:00")].iloc[0] == 20.5  # HE 02 Y: 01:00 CST
    provider = ErcotProvider(build_params(ErcotProvider.Params, {"path": str(path), "settlement_point": "HB_NORTH"}), "price")
    v = provider.episode(24, 60, np.random.default_rng(0))
    assert v[0] == 31.0 and len(v) == 24
    with pytest.raises(DataFileError, match=r"no settlement point 'HB_WEST'.*HB_HOUSTON, HB_NORTH"):
        ercot.price_series(path, "HB_WEST")
    with pytest.raises(DataFileError, match=r"DAMSPNP4190\.csv.*DAM settlement point price report, not native load"):
        ercot.read_load_file(path)


def test_ercot_layouts_it_does_not_read_are_named(tmp_path):
    rtm = tmp_path / "rtm.csv"
    rtm.write_text("DeliveryDate,DeliveryHour,DeliveryInterval,SettlementPointName,SettlementPointType,SettlementPointPrice,DSTFlag\n"
                   "11/05/2023,1,1,HB_HOUSTON,HU,20.1,N\n")
    with pytest.raises(DataFileError, match=r"rtm\.csv: this is ERCOT's 15-minute real-time settlement point price layout"):
        ercot.read_spp_file(rtm)
    other = write_xlsx(tmp_path / "notes.xlsx", {"Sheet1": [["Date", "Price"], ["11/05/2023", 1.0]]})
    with pytest.raises(DataFileError, match=r"notes\.xlsx sheet 'Sheet1': expected the columns Delivery Date.*DAMSPNP4190") as err:
        ercot.read_spp_file(other)
    assert "<" not in str(err.value)  # the workbook's XML is never printed as an error reply
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "nothing")
    with pytest.raises(DataFileError, match=r"the zip holds no CSV or \.xlsx \(it holds: readme\.txt\)"):
        ercot.read_load_file(empty)
    with pytest.raises(DataFileError, match=r"no ERCOT load files here"):
        ercot.load_series(tmp_path)


def test_a_damaged_file_in_a_folder_is_named_not_passed_over(tmp_path):
    # a folder of native load years, one of them a partial download: it used to be skipped silently (its year
    # missing from the series) or, with a damaged deflate stream, to raise a bare zlib error naming no file
    ercot_native_load(tmp_path / "Native_Load_2023.csv", ["2023-07-01", "2023-07-02"])
    text = ercot_native_load(tmp_path / "x.csv", ["2022-07-01", "2022-07-02"]).read_text()
    (tmp_path / "x.csv").unlink()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Native_Load_2022.csv", text)
    whole = buffer.getvalue()
    damaged = bytearray(whole)
    damaged[60:90] = bytes(b ^ 0x5A for b in damaged[60:90])  # the member's data; the directory is intact
    book = tmp_path / "Native_Load_2021.xlsx"
    for name, content in (("Native_Load_2022.zip", whole[: len(whole) // 2]), ("Native_Load_2022.zip", bytes(damaged)),
                          ("Native_Load_2022.zip", b""), (book.name, whole[:100])):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DataFileError, match=rf"{name.replace('.', '[.]')}.*(corrupt|empty)"):
            ercot.load_series(tmp_path)
        (tmp_path / name).unlink()
    assert len(ercot.load_series(tmp_path)) == 48


def test_ercot_workbook_without_its_reader_says_which_extra(tmp_path, monkeypatch):
    rows = [LOAD_HEADER, ["01/01/2023 01:00", *[1.0] * 9]]
    book = write_xlsx(tmp_path / "Native_Load_2023.xlsx", {"Sheet1": rows})
    monkeypatch.setitem(sys.modules, "python_calamine", None)  # as if the xlsx extra were not installed
    for where in (book, tmp_path):
        with pytest.raises(DataFileError, match=r"Native_Load_2023\.xlsx: reading \.xlsx files needs python-calamine: "
                                                 r"pip install 'powergrid-datasets\[xlsx\]'"):
            ercot.load_series(where)


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


def test_nyiso_pal_off_grid_reading_belongs_to_one_interval(tmp_path):
    """A pal reading at 01:57:48 belongs to the interval starting 01:55 only, weighted by the time it covers there."""
    lines = ['"Time Stamp","Time Zone","Name","PTID","Load"']
    for stamp, load in (("01:50:00", 1000.0), ("01:55:00", 1100.0), ("01:57:48", 1400.0), ("02:00:00", 1200.0), ("02:05:00", 1300.0)):
        lines.append(f'"07/01/2023 {stamp}","EDT","N.Y.C.",61761,{load}')
    (tmp_path / "20230701pal.csv").write_text("\n".join(lines) + "\n")
    ts = nyiso.load_series(tmp_path, "N.Y.C.")
    v = ts.data["N.Y.C."]
    assert list(v.index) == [utc("2023-07-01 05:50") + pd.Timedelta(minutes=5 * i) for i in range(4)]
    assert v[utc("2023-07-01 05:55")] == pytest.approx((1100 * 168 + 1400 * 132) / 300)  # 2 min 48 s and 2 min 12 s
    assert v[utc("2023-07-01 06:00")] == 1200.0  # on-grid neighbours unchanged
    assert v[utc("2023-07-01 05:50")] == 1000.0


def realtime_lines(day: str, rows: list[tuple[str, float]]) -> list[str]:
    return [LBMP_HEADER] + [f'"{day} {stamp}","CAPITL",61757,{price:.2f},1.00,0.00' for stamp, price in rows]


def test_nyiso_rt_stamps_end_the_interval_and_off_grid_runs(tmp_path):
    """realtime_zone: 00:05:00 ends the first interval; 01:57:48 shares (01:55, 02:00] with the 02:00 reading."""
    stamps = [f"{m // 60:02d}:{m % 60:02d}:00" for m in range(5, 24 * 60, 5)]
    rows = [(s, 10.0 + i) for i, s in enumerate(stamps)]
    rows.insert(stamps.index("01:55:00") + 1, ("01:57:48", 100.0))
    lines = realtime_lines("07/01/2023", rows) + [f'"07/02/2023 00:00:00","CAPITL",61757,{10.0 + len(stamps):.2f},1.00,0.00']
    (tmp_path / "20230701realtime_zone.csv").write_text("\n".join(lines) + "\n")
    ts = nyiso.price_series(tmp_path, "CAPITL", market="RT")
    v = ts.data["CAPITL"]
    assert ts.step == pd.Timedelta(minutes=5) and len(v) == 288 and ts.valid().all()
    assert v.index[0] == utc("2023-07-01 04:00") and v.iloc[0] == 10.0  # 00:05 EDT ends 00:00–00:05
    on_grid_0200 = 10.0 + stamps.index("02:00:00")
    assert v[utc("2023-07-01 05:55")] == pytest.approx((100.0 * 168 + on_grid_0200 * 132) / 300)
    assert v[utc("2023-07-01 05:50")] == 10.0 + stamps.index("01:55:00")
    provider = NyisoProvider(build_params(NyisoProvider.Params, {"path": str(tmp_path), "zone": "CAPITL", "market": "RT"}), "price")
    hourly = provider.episode(24, 60, np.random.default_rng(0))
    np.testing.assert_allclose(hourly, v.to_numpy().reshape(24, 12).mean(axis=1))  # resampled to the episode step


def test_nyiso_rt_autumn_day_without_zone_column(tmp_path):
    """The repeated hour of a realtime file: 01:55 EDT, then 01:00 (= 02:00 EDT = 01:00 EST), placed by row order."""
    local = [f"00:{m:02d}:00" for m in range(5, 60, 5)] + [f"01:{m:02d}:00" for m in range(0, 60, 5)]
    local += [f"01:{m:02d}:00" for m in range(0, 60, 5)] + ["02:00:00"]
    rows = [(s, float(i)) for i, s in enumerate(local)]
    (tmp_path / "20231105realtime_zone.csv").write_text("\n".join(realtime_lines("11/05/2023", rows)) + "\n")
    v = nyiso.price_series(tmp_path, "CAPITL", market="RT").data["CAPITL"]
    assert len(v) == len(local) and v.index[0] == utc("2023-11-05 04:00")
    assert (np.diff(v.index.asi8) == 300e9).all() and v.to_list() == [float(i) for i in range(len(local))]


def test_nyiso_dam_and_rt_are_separate_markets(tmp_path):
    (tmp_path / "20230701damlbmp_zone.csv").write_text(
        "\n".join([LBMP_HEADER] + [f'"07/01/2023 {h:02d}:00","CAPITL",61757,{50.0 + h:.2f},1.00,0.00' for h in range(24)]) + "\n")
    rows = [(f"{m // 60:02d}:{m % 60:02d}:00", 5.0) for m in range(5, 24 * 60, 5)]
    (tmp_path / "20230701realtime_zone.csv").write_text("\n".join(realtime_lines("07/01/2023", rows)) + "\n")
    dam = nyiso.price_series(tmp_path, "CAPITL")  # default market DAM: the realtime file is left out
    assert dam.step == pd.Timedelta(hours=1) and len(dam) == 24 and dam.values()[0] == 50.0
    rt = nyiso.price_series(tmp_path, "CAPITL", market="RT")
    assert rt.step == pd.Timedelta(minutes=5) and set(rt.values()[:-1]) == {5.0}
    only_rt = tmp_path / "rt"
    only_rt.mkdir()
    (tmp_path / "20230701realtime_zone.csv").rename(only_rt / "prices.csv")  # no market in the name: 5-minute stamps say RT
    assert nyiso.read_lbmp_file(only_rt / "prices.csv")[1] == "RT"
    with pytest.raises(DataFileError, match=r"no NYISO DAM LBMP files here \(found only other markets: prices\.csv; set market: RT\)"):
        nyiso.price_series(only_rt, "CAPITL")
    wrong = tmp_path / "x" / "20230701damlbmp_zone.csv"
    wrong.parent.mkdir()
    (only_rt / "prices.csv").rename(wrong)
    with pytest.raises(DataFileError, match=r"named a day-ahead file \(damlbmp\) but holds stamps off the hour"):
        nyiso.price_series(wrong, "CAPITL")
    hourly_rt = tmp_path / "20230701rtlbmp_zone.csv"
    hourly_rt.write_text(LBMP_HEADER + '\n"07/01/2023 00:00","CAPITL",61757,1.00,1.00,0.00\n')
    with pytest.raises(DataFileError, match=r"rtlbmp files \(hourly integrated real-time LBMP\) are not read"):
        nyiso.price_series(hourly_rt, "CAPITL")


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


def test_a_cell_that_is_not_a_number_is_warned_with_file_and_column(tmp_path):
    # ERCOT and NYISO used to read '12o4' as missing without a word (CAISO names such cells)
    load = ercot_native_load(tmp_path / "Native_Load_2023.csv", ["2023-07-01"])
    lines = load.read_text().splitlines()
    lines[5] = lines[5].replace(",10500.00,", ",12o4,", 1)
    lines[7] = lines[7].replace(",1000,", ",N/A,", 1)  # a "no value" marker: no warning of its own
    load.write_text("\n".join(lines) + "\n")
    with pytest.warns(RuntimeWarning, match=r"Native_Load_2023\.csv: 1 cell\(s\) of column COAST are not numbers"):
        coast = ercot.load_series(load, "COAST")
    assert np.isnan(coast.values()[4]) and coast.values()[3] == 10400.0
    lbmp = tmp_path / "20230701damlbmp_zone.csv"
    lbmp.write_text("\n".join([LBMP_HEADER] + [f'"07/01/2023 {h:02d}:00","CAPITL",61757,{"x" if h == 3 else 50.0 + h},1.00,0.00'
                                               for h in range(24)]) + "\n")
    with pytest.warns(RuntimeWarning, match=r"20230701damlbmp_zone\.csv: 1 cell\(s\) of column LBMP \(\$/MWHr\) are not numbers"):
        nyiso.price_series(lbmp, "CAPITL")


def test_a_folder_with_rtlbmp_or_hamlbmp_files_reads_its_dam_files(tmp_path):
    # a folder of every zonal LBMP report failed on the hourly-integrated RT or hour-ahead file, although a
    # folder reads only the files of `market` (given alone, such a file is still refused by name)
    rows = [LBMP_HEADER] + [f'"07/01/2023 {h:02d}:00","CAPITL",61757,{50.0 + h:.2f},1.00,0.00' for h in range(24)]
    (tmp_path / "20230701damlbmp_zone.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "20230701rtlbmp_zone.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "20230701hamlbmp_zone.csv").write_text("\n".join(rows) + "\n")
    dam = nyiso.price_series(tmp_path, "CAPITL")
    assert len(dam) == 24 and dam.values()[0] == 50.0
    with pytest.raises(DataFileError, match=r"no NYISO RT LBMP files here \(found only other markets: "
                                            r"20230701damlbmp_zone\.csv, 20230701hamlbmp_zone\.csv, 20230701rtlbmp_zone\.csv"):
        nyiso.price_series(tmp_path, "CAPITL", market="RT")
    with pytest.raises(DataFileError, match=r"rtlbmp files \(hourly integrated real-time LBMP\) are not read"):
        nyiso.price_series(tmp_path / "20230701rtlbmp_zone.csv", "CAPITL")

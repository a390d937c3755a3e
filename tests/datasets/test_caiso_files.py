"""The CAISO parser on the real 2023 OASIS files in ../shared/data/caiso."""

from __future__ import annotations

import csv
import io
import time
import zipfile

import numpy as np
import pandas as pd
import pytest

from powergrid_datasets import caiso


@pytest.fixture(scope="module")
def load_frame(caiso_dir):
    report = caiso.report_of("load")
    files = caiso.files_in(caiso_dir / "load", report)
    caiso._read_files_cached.cache_clear()
    t0 = time.perf_counter()
    frame = caiso.read_files(files, report)
    elapsed = time.perf_counter() - t0
    print(f"\nparsed a year of CAISO SLD_FCST ({len(files)} zips, {len(frame)} rows) in {elapsed:.3f} s")
    return frame, elapsed, files


@pytest.fixture(scope="module")
def ava(load_frame):
    frame, _, _ = load_frame
    return caiso.select(frame, caiso.report_of("load"), source="caiso load", market="ACTUAL", TAC_AREA_NAME="AVA")


@pytest.fixture(scope="module")
def price_frame(caiso_dir):
    report = caiso.report_of("lmp")
    return caiso.read_files(caiso.files_in(caiso_dir / "price", report), report)


def raw_rows(zip_path):
    with zipfile.ZipFile(zip_path) as zf:
        (name,) = zf.namelist()
        with zf.open(name) as fh:
            return list(csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8")))


def test_year_of_ava_load_is_8760_unique_hours(ava, load_frame):
    _, _, files = load_frame
    assert len(files) == 12
    assert len(ava) == 8760
    assert not ava.index.has_duplicates
    assert ava.step == pd.Timedelta(hours=1)
    assert ava.index.is_monotonic_increasing
    # the operating year 2023 in Pacific time: 2023-01-01 00:00 PST .. 2023-12-31 23:00 PST
    assert ava.index[0] == pd.Timestamp("2023-01-01 08:00", tz="UTC")
    assert ava.index[-1] == pd.Timestamp("2024-01-01 07:00", tz="UTC")
    assert ava.provenance_counts() == {"measured": 8760}
    assert np.isfinite(ava.values()).all()


def test_dst_operating_days_in_utc(ava, load_frame, caiso_dir):
    """The 23-hour spring day 2023-03-12 (PST→PDT) is 08:00Z on 03-12 to 07:00Z on 03-13 exclusive (23 UTC hours);
    the 25-hour autumn day 2023-11-05 (PDT→PST) is 07:00Z on 11-05 to 08:00Z on 11-06 exclusive (25 UTC hours),
    its OPR_HR 25 being the repeated 01:00–02:00 local hour, 09:00Z–10:00Z. The UTC index stays gap-free."""
    spring = ava.between("2023-03-12 08:00", "2023-03-13 07:00")
    autumn = ava.between("2023-11-05 07:00", "2023-11-06 08:00")
    assert len(spring) == 23 and spring.valid().all()
    assert len(autumn) == 25 and autumn.valid().all()
    local = ava.index.tz_convert("America/Los_Angeles")
    days = pd.Series(1, index=local.date).groupby(level=0).size()
    assert days[pd.Timestamp("2023-03-12").date()] == 23
    assert days[pd.Timestamp("2023-11-05").date()] == 25
    assert set(days.drop([pd.Timestamp("2023-03-12").date(), pd.Timestamp("2023-11-05").date()])) == {24}
    # hour 25 in the raw November file is the second 01:00 local hour
    rows = [r for r in raw_rows(sorted((caiso_dir / "load").glob("20231101_*"))[0])
            if r["TAC_AREA_NAME"] == "AVA" and r["OPR_DT"] == "2023-11-05" and r["OPR_HR"] == "25"]
    assert len(rows) == 1
    assert rows[0]["INTERVALSTARTTIME_GMT"].startswith("2023-11-05T09:00")
    assert ava.data.loc[pd.Timestamp("2023-11-05 09:00", tz="UTC")].iloc[0] == float(rows[0]["MW"])


def test_values_match_the_raw_csv(ava, caiso_dir):
    rows = [r for r in raw_rows(sorted((caiso_dir / "load").glob("20230701_*"))[0]) if r["TAC_AREA_NAME"] == "AVA"]
    picked = [rows[0], rows[len(rows) // 2], rows[-1]]
    for row in picked:
        t = pd.Timestamp(row["INTERVALSTARTTIME_GMT"]).tz_convert("UTC")
        assert ava.data.loc[t].iloc[0] == pytest.approx(float(row["MW"]))


@pytest.mark.parametrize("lmp_type", ["LMP", "MCE", "MCC", "MCL", "MGHG"])
def test_lmp_rows_filtered_to_component(price_frame, caiso_dir, lmp_type):
    report = caiso.report_of("lmp")
    ts = caiso.select(price_frame, report, source="prices", market="DAM", NODE="0096WD_7_N001", LMP_TYPE=lmp_type)
    assert len(ts) == 8760 and not ts.index.has_duplicates
    rows = [r for r in raw_rows(sorted((caiso_dir / "price").glob("20230301_*"))[0])]
    wanted = [r for r in rows if r["LMP_TYPE"] == lmp_type][:4]
    others = {r["INTERVALSTARTTIME_GMT"]: r for r in rows if r["LMP_TYPE"] != lmp_type}
    for row in wanted:
        t = pd.Timestamp(row["INTERVALSTARTTIME_GMT"]).tz_convert("UTC")
        assert ts.data.loc[t].iloc[0] == pytest.approx(float(row["MW"]))
    # the components add up: LMP = MCE + MCC + MCL + MGHG (so filtering picked one component, not a mix)
    if lmp_type == "LMP":
        parts = sum(caiso.select(price_frame, report, source="p", market="DAM", NODE="0096WD_7_N001",
                                 LMP_TYPE=c).values() for c in ("MCE", "MCC", "MCL", "MGHG"))
        np.testing.assert_allclose(ts.values(), parts, atol=0.02)
    assert others  # the file really interleaves several components


def test_unknown_area_lists_the_available_ones(load_frame):
    frame, _, _ = load_frame
    with pytest.raises(ValueError, match=r"no TAC_AREA_NAME = 'NOPE'.*AVA"):
        caiso.select(frame, caiso.report_of("load"), source="x", TAC_AREA_NAME="NOPE")


def test_renewables_hub_and_type(caiso_dir):
    report = caiso.report_of("renewables")
    frame = caiso.read_files(caiso.files_in(caiso_dir / "solar_wind", report), report)
    solar = caiso.select(frame, report, source="r", TRADING_HUB="NP15", RENEWABLE_TYPE="Solar")
    assert len(solar) == 8760  # the full year of UTC hours ...
    assert solar.provenance_counts()["missing"] == 11  # ... of which OASIS lacks 11 (kept as missing, not dropped)
    with pytest.raises(ValueError, match="ZP26"):
        caiso.select(frame, report, source="r", TRADING_HUB="ZP26", RENEWABLE_TYPE="Wind")

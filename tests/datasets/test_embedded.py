"""The embedded CAISO 2023 extract and its ``caiso_2023`` provider: the raw zips, DST days, units, the day split."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from powergrid import get_registry
from powergrid.config import EnvConfig
from powergrid.params import build_params
from powergrid_datasets import caiso, embedded
from powergrid_datasets.errors import DataFileError
from powergrid_datasets.timeseries import MISSING

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "extract_caiso.py"
LA = "America/Los_Angeles"


def make(role: str, **params):
    cls = get_registry().load("dataset", "caiso_2023")
    return cls(build_params(cls.Params, params, path=f"datasets.{role}"), role)


def local_day(ts: pd.Timestamp) -> pd.Timestamp:
    return ts.tz_convert(LA).normalize()


# -- the extract against the raw OASIS zips -----------------------------------------------
@pytest.fixture(scope="module")
def raw_frames(caiso_dir):
    frames = {}
    for alias in ("load", "lmp", "renewables"):
        report = caiso.report_of(alias)
        frames[alias] = caiso.read_files(caiso.files_in(caiso_dir / report.folder, report), report)
    return frames


@pytest.mark.parametrize("column", list(embedded.columns()))
def test_the_extract_equals_the_series_parsed_from_the_raw_zips(raw_frames, column):
    alias, keys = embedded.columns()[column]
    report = caiso.report_of(alias)
    raw = caiso.select(raw_frames[alias], report, source="raw", market=report.market_run_id, **keys)
    shipped = embedded.series(column)
    pd.testing.assert_index_equal(shipped.index, raw.index)
    np.testing.assert_array_equal(shipped.values(), raw.values())  # bit for bit, NaN where an hour is absent
    np.testing.assert_array_equal(shipped.provenance.to_numpy(), raw.provenance.to_numpy())
    assert shipped.step == raw.step == pd.Timedelta("1h")
    assert shipped.units == {shipped.columns[0]: report.unit}


def test_the_script_rebuilds_the_shipped_files(caiso_dir, tmp_path):
    out = run_script(caiso_dir, tmp_path)
    assert out.returncode == 0, out.stderr
    shipped = Path(embedded.__file__).parent / "data"
    assert (tmp_path / embedded.DATA_FILE).read_bytes() == (shipped / embedded.DATA_FILE).read_bytes()  # byte for byte
    rebuilt = json.loads((tmp_path / embedded.META_FILE).read_text())
    assert rebuilt == embedded.metadata()
    zips = sorted(p.name for p in caiso_dir.rglob("*.zip"))
    listed = sorted(f["name"] for r in rebuilt["reports"].values() for f in r["files"])
    assert listed == zips and len(zips) == 36


def run_script(data_dir: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--data-dir", str(data_dir), "--out", str(out)],
                          capture_output=True, text=True, check=False)


def test_the_script_refuses_a_year_with_a_monthly_zip_missing(caiso_dir, tmp_path):
    """March's load zip left out: one error naming the series and the hours, nothing written (it used to write an
    extract whose load had a month of empty cells over the shipped one)."""
    data = tmp_path / "caiso"
    for path in caiso_dir.rglob("*.zip"):
        if not path.name.startswith("20230301_20230401_SLD_FCST"):
            (data / path.parent.name).mkdir(parents=True, exist_ok=True)
            (data / path.parent.name / path.name).symlink_to(path)
    out = run_script(data, tmp_path / "out")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith("extract_caiso: error: ") and len(out.stderr.strip().splitlines()) == 1
    assert "series load:AVA lacks 743 hours from 2023-03-01 08:00:00+00:00" in out.stderr  # 743: the spring DST month
    assert not (tmp_path / "out").exists()


def test_the_script_names_a_missing_data_folder_in_one_line(tmp_path):
    out = run_script(tmp_path / "absent", tmp_path / "out")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert out.stderr.strip() == f"extract_caiso: error: {tmp_path / 'absent' / 'load'}: no such file or folder"


# -- what the package holds, with no shared folder ------------------------------------------
def test_provenance_and_terms_ship_with_the_data():
    meta = embedded.metadata()
    assert "CAISO" in meta["terms"] and "oasis.caiso.com" in meta["source"]
    assert set(meta["reports"]) == {"SLD_FCST", "PRC_LMP", "SLD_REN_FCST"}
    for report in meta["reports"].values():
        assert len(report["files"]) == 12  # one zip per month of 2023
        assert all(len(f["sha256"]) == 64 and f["name"].startswith("2023") for f in report["files"])
    assert set(meta["columns"]) == set(embedded.columns())
    assert meta["period_utc"] == ["2023-01-01T08:00:00+00:00", "2024-01-01T08:00:00+00:00"]  # local 2023, PST


def test_units_and_magnitudes():
    units = {c: embedded.series(c).units[c] for c in embedded.columns()}
    assert {units[c] for c in units if c.startswith(("load:", "solar:", "wind:"))} == {"MW"}
    assert {units[c] for c in units if c.startswith("lmp:")} == {"$/MWh"}
    caiso_load = embedded.series("load:CA ISO-TAC").values()
    assert 10_000 < caiso_load.min() and caiso_load.max() < 60_000  # the ISO's 2023 load, MW (peak ≈ 44 GW)
    node = "lmp:0096WD_7_N001:"
    parts = sum(embedded.series(node + t).values() for t in ("MCE", "MCC", "MCL", "MGHG"))
    np.testing.assert_allclose(embedded.series(node + "LMP").values(), parts, atol=1e-4)  # LMP = its components
    solar = embedded.series("solar:SP15")
    hour = solar.index.tz_convert(LA).hour
    noon, night = np.nanmean(solar.values()[hour == 12]), np.nanmean(solar.values()[hour == 0])
    assert noon > 2_000 and abs(night) < 50  # MW: a real daily cycle, about zero at midnight


@pytest.mark.parametrize(("day", "hours"), [("2023-03-12", 23), ("2023-11-05", 25), ("2023-07-01", 24)])
def test_dst_operating_days(day, hours):
    ts = embedded.series("load:AVA")
    local = ts.index.tz_convert(LA)
    on_day = local.normalize() == pd.Timestamp(day, tz=LA)
    assert on_day.sum() == hours and ts.valid()[on_day].all()
    provider = make("load", area="AVA", normalize="none", start=day)
    values = provider.episode(hours, 60, np.random.default_rng(0))
    assert provider.last_start == pd.Timestamp(day, tz=LA)
    np.testing.assert_array_equal(values, ts.values()[on_day])  # the whole operating day, MW as reported
    nxt = make("load", area="AVA", normalize="none", start=str((pd.Timestamp(day) + pd.Timedelta(days=1)).date()))
    nxt.episode(4, 15, np.random.default_rng(0))
    assert nxt.last_start - provider.last_start == pd.Timedelta(hours=hours)


@pytest.mark.parametrize("role", ["load", "price", "solar", "wind"])
def test_episodes_follow_the_role_convention_offline(role):
    provider = make(role)
    values = provider.episode(96, 15, np.random.default_rng(7))
    assert values.dtype == np.float64 and values.shape == (96,) and np.isfinite(values).all()
    assert local_day(provider.last_start) == provider.last_start  # a local midnight
    if role == "load":
        assert 0.5 < values.mean() < 1.6  # pu of the yearly mean
    elif role == "price":
        assert -50 < values.mean() < 500 and values.std() > 0  # $/MWh as is
    else:
        assert values.min() >= 0 and values.max() <= 1  # pu of the yearly peak
    np.testing.assert_array_equal(values, provider.episode(96, 15, np.random.default_rng(7)))


def test_an_episode_resamples_once_per_step_and_pickles_without_the_resampled_year(monkeypatch):
    from powergrid_datasets.timeseries import TimeSeries

    provider = make("load")
    calls = []
    resample = TimeSeries.resample
    monkeypatch.setattr(TimeSeries, "resample", lambda self, minutes: calls.append(minutes) or resample(self, minutes))
    first = [provider.episode(96, 15, np.random.default_rng(seed)) for seed in range(3)]
    provider.episode(24, 60, np.random.default_rng(0))
    assert calls == [15, 60]  # a reset no longer resamples the year (was: once per episode)
    small = len(pickle.dumps(provider))
    assert small < len(pickle.dumps(provider.series())) / 2  # the resampled windows are not pickled
    clone = pickle.loads(pickle.dumps(provider))
    for seed, values in enumerate(first):
        np.testing.assert_array_equal(clone.episode(96, 15, np.random.default_rng(seed)), values)


def test_the_same_seed_picks_the_same_day_for_every_role():
    starts = set()
    for role in ("load", "price", "solar", "wind"):
        provider = make(role)
        provider.episode(24, 60, np.random.default_rng(3))
        starts.add(provider.last_start)
    assert len(starts) == 1


def valid_midnights(ts, n_steps: int) -> set:
    """The local days whose midnight starts ``n_steps`` valid values, straight from the frames (rolling window)."""
    ok = (ts.provenance.iloc[:, 0] != MISSING) & ts.data.iloc[:, 0].notna()
    whole = (ok.astype(float).rolling(n_steps).min().shift(-(n_steps - 1)) == 1).to_numpy()
    local = ts.index.tz_convert(LA)
    return set(local[whole & (local.hour == 0) & (local.minute == 0)].date)


@pytest.mark.parametrize("split", ["all", "train", "test"])
def test_bound_roles_draw_the_seeded_common_day_and_its_values(split):
    """Episode after episode, each role's values are its series from the day ``sorted(common days)[rng.integers]``."""
    providers = {"load": make("load", area="AVA", split=split), "price": make("price", split=split),
                 "solar": make("solar", split=split)}
    for provider in providers.values():
        provider.bind(providers)
    post = {"load": lambda x: np.maximum(x, 0.0), "price": lambda x: x, "solar": lambda x: np.clip(x, 0.0, 1.0)}
    for n_steps, step in ((96, 15), (48, 60), (96, 15)):  # back to the first length and step: nothing stale
        windows = {role: p.series().resample(step) for role, p in providers.items()}
        days = sorted(set.intersection(*(valid_midnights(w, n_steps) for w in windows.values())))
        for seed in range(4):
            t0 = pd.Timestamp(days[np.random.default_rng(seed).integers(len(days))], tz=LA)
            for role, provider in providers.items():
                values = provider.episode(n_steps, step, np.random.default_rng(seed))
                assert provider.last_start == t0
                column = windows[role].data.iloc[:, 0]
                np.testing.assert_array_equal(values, post[role](column[column.index >= t0].to_numpy()[:n_steps]))


def test_an_unknown_area_or_a_hub_without_wind_is_refused():
    with pytest.raises(Exception, match="AVA"):
        make("load", area="XYZ")
    with pytest.raises(ValueError, match="no wind at ZP26"):
        make("wind", hub="ZP26")


# -- the fixed day split ----------------------------------------------------------------------
@pytest.mark.parametrize(("split", "first", "last"), [("train", 1, 21), ("validation", 22, 26), ("test", 27, 31)])
def test_the_provider_picks_days_only_from_its_split(split, first, last):
    provider = make("price", split=split)
    days = set()
    for seed in range(150):
        provider.episode(48, 60, np.random.default_rng(seed))  # two-day episodes: both days in the split
        start = provider.last_start.tz_convert(LA)
        days.add(start.normalize())
        assert first <= start.day <= last - 1 and start.hour == 0
    assert len({d.month for d in days}) == 12  # every season in every split


def test_splits_are_disjoint_and_cover_the_year():
    index = embedded.series("load:AVA").index
    masks = [embedded.split_days(index, s, LA) for s in embedded.SPLITS]
    assert (sum(m.astype(int) for m in masks) == 1).all()
    days = [len(set(index[m].tz_convert(LA).date)) for m in masks]
    assert days == [252, 60, 53]


def test_a_split_hides_the_other_days_but_keeps_the_values_and_scale():
    everything, test = make("load", area="SCE-TAC"), make("load", area="SCE-TAC", split="test")
    assert test.series().meta["divisor"] == everything.series().meta["divisor"]  # one scale for every split
    hidden = ~embedded.split_days(test.series().index, "test", LA)
    assert (test.series().provenance.to_numpy()[hidden] == MISSING).all() and np.isnan(test.series().values()[hidden]).all()
    both = [make("load", area="SCE-TAC", split=s, start="2023-08-28") for s in ("all", "test")]
    a, b = (p.episode(24, 60, np.random.default_rng(0)) for p in both)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="not a train day"):
        make("load", split="train", start="2023-08-28")


def test_a_start_belongs_to_the_split_of_its_local_day_whatever_zone_it_is_written_in():
    """21 March 20:00 in Los Angeles is 22 March 03:00 UTC: a train day however it is written (it was refused when
    written in UTC), and 26 March 23:00 (27 March 06:00 UTC) is a validation day, not a test one."""
    local, utc = (make("load", split="train", start=s, start_hour=20) for s in ("2023-03-21T20:00", "2023-03-22T03:00Z"))
    np.testing.assert_array_equal(local.episode(4, 60, np.random.default_rng(0)), utc.episode(4, 60, np.random.default_rng(0)))
    assert local.last_start == utc.last_start == pd.Timestamp("2023-03-22T03:00Z")
    with pytest.raises(ValueError, match=r"2023-03-26 23:00:00-07:00 in America/Los_Angeles\) is not a test day"):
        make("load", split="test", start="2023-03-27T06:00Z", start_hour=23)


@pytest.mark.parametrize(("held_out", "expected"), [
    ({"split": "train"}, r"2023-03-22, not a train day \(days 1–21 of a month\); give a start whose whole episode lies "
                         r"in the train days"),
    ({"date_to": "2023-03-22"}, r"2023-03-22, not before date_to \(2023-03-22\); give a start whose whole episode lies "
                                r"before date_to"),
])
def test_a_fixed_start_whose_episode_runs_into_held_out_days_names_them(held_out, expected):
    """21 March at 20:00 is a train day, but its one-day episode runs into 22 March (held out): the error names the
    start, the held-out day and what is expected (it said 'not all valid ... or has an unfilled gap')."""
    provider = make("load", start="2023-03-21", start_hour=20, **held_out)
    with pytest.raises(DataFileError, match=r"start 2023-03-21 \(2023-03-21 20:00 America/Los_Angeles\): its 96 steps "
                                            r"of 15 min run to 2023-03-22 20:00 and cross " + expected):
        provider.episode(96, 15, np.random.default_rng(0))
    assert make("load", start="2023-03-21", start_hour=20, **held_out).episode(4, 60, np.random.default_rng(0)).size == 4


def test_a_scenario_whose_fixed_start_runs_into_a_held_out_day_names_the_yaml_path():
    pytest.importorskip("powergrid_devices", reason="the scenario's PV comes with powergrid-devices")
    from powergrid.env import MultiAgentPowerGridEnv
    from powergrid.errors import ConfigError

    text = ("name: s\nnetwork: {type: cigre_mv}\ntime: {physics: 1h, episode: 1d, start_hour: 20}\nagents:\n"
            "  - {id: pv, type: PV, bus: 'Bus 5', policy: learned, params: {p_max_mw: 0.1}}\ndatasets:\n"
            "  load: {provider: caiso_2023, split: validation, start: 2023-03-26}\n")
    env = MultiAgentPowerGridEnv(EnvConfig.from_text(text, file="s.yaml"))
    with pytest.raises(ConfigError, match=r"^s\.yaml:7 datasets\.load: caiso_2023 extract \(load:CA ISO-TAC\), "
                                          r"validation days: start 2023-03-26 \(2023-03-26 20:00 America/Los_Angeles\): "
                                          r"its 24 steps of 60 min run to 2023-03-27 20:00 and cross 2023-03-27, not a "
                                          r"validation day \(days 22–26 of a month\); give a start whose whole episode "
                                          r"lies in the validation days$"):
        env.reset(seed=0)


def test_an_empty_split_window_names_the_split():
    provider = make("load", split="train", date_from="2023-03-22", date_to="2023-03-27")  # no train day inside
    with pytest.raises(DataFileError, match=r"caiso_2023 extract \(load:CA ISO-TAC\), train days: no window of 24"):
        provider.episode(24, 60, np.random.default_rng(0))


@pytest.mark.parametrize("held_out", [{"split": "train"}, {"date_to": "2023-03-22"}])
def test_held_out_days_never_reach_an_episode_day_through_cleaning(monkeypatch, held_out):
    """The last train hour (21 March, 23:00) missing: it used to be gap-filled from 22 March, a held-out day, and
    with ``outlier_z`` a train value was judged against held-out ones. Changing only held-out days changes nothing."""
    from powergrid_datasets import providers

    table = embedded._table().copy()
    last_train_hour = pd.Timestamp("2023-03-21T23:00", tz=LA).tz_convert("UTC")
    table.loc[last_train_hour, :] = np.nan
    held = table.index.tz_convert(LA).normalize() == pd.Timestamp("2023-03-22", tz=LA)
    changed = table.copy()
    changed.loc[held, :] *= 1.5
    series = []
    for frame in (table, changed):
        monkeypatch.setattr(embedded, "_table", lambda frame=frame: frame)
        monkeypatch.setattr(providers, "_SERIES_CACHE", {})
        for role in ("load", "wind"):
            series.append(make(role, normalize="none", outlier_z=3.0, **held_out).series())
    train = ~held & (table.index < pd.Timestamp("2023-03-22", tz=LA))
    for before, after in zip(series[:2], series[2:]):
        np.testing.assert_array_equal(before.values()[train], after.values()[train])
    assert np.isnan(series[0].values()[table.index == last_train_hour]).all()  # a gap at the edge stays a gap


# -- a core + datasets install -----------------------------------------------------------------
def test_loads_with_only_core_and_the_dataset_pack(tmp_path):
    """In a fresh process, outside the repository, with the other packs unimportable and no data folder."""
    code = textwrap.dedent("""
        import sys, warnings
        warnings.simplefilter("error")
        for pack in ("powergrid_devices", "powergrid_protocols", "powergrid_hil"):
            sys.modules[pack] = None  # importing it now fails
        import numpy as np
        from powergrid import get_registry
        from powergrid.params import build_params
        cls = get_registry().load("dataset", "caiso_2023")
        provider = cls(build_params(cls.Params, {"area": "PGE-TAC"}, path="datasets.load"), "load")
        values = provider.episode(96, 15, np.random.default_rng(0))
        print(cls.__module__, len(values), round(float(values.mean()), 3))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("POWERGRID_DATA_DIR", "POWERGRID_CAISO_URL")}
    env.update(POWERGRID_OFFLINE="1", POWERGRID_DISABLE_PLUGINS="devices,protocols,hil")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    module, n, mean = out.stdout.split()
    assert module == "powergrid_datasets.embedded" and n == "96" and 0.5 < float(mean) < 1.6

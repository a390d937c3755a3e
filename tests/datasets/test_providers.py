"""Every provider through the registry, the way the environment uses it: build_params, Provider(params, role), episode()."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powergrid import get_registry
from powergrid.errors import ConfigError
from powergrid.first_party import FIRST_PARTY
from powergrid.params import build_params


def make(spec: dict, role: str):
    spec = dict(spec)
    cls = get_registry().load("dataset", spec.pop("provider"))
    return cls(build_params(cls.Params, spec, path=f"datasets.{role}"), role)


def check(values, n_steps, role):
    assert isinstance(values, np.ndarray) and values.dtype == np.float64 and values.shape == (n_steps,)
    assert np.isfinite(values).all()
    if role in ("solar", "wind"):
        assert values.min() >= 0.0 and values.max() <= 1.0
    if role == "load":
        assert values.min() >= 0.0 and 0.2 < values.mean() < 3.0


def test_the_pack_registers_what_core_expects():
    registry = get_registry()
    assert set(FIRST_PARTY["powergrid-datasets"]["dataset"]) <= set(registry.names("dataset"))
    assert "datasets" in registry.names("command")
    record = registry.get("dataset", "caiso")
    assert record.distribution == "powergrid-datasets"


CAISO_SPECS = {
    "price": {"provider": "caiso", "report": "lmp", "node": "0096WD_7_N001", "market": "DAM"},
    "load": {"provider": "caiso", "report": "load", "area": "AVA"},
    "solar": {"provider": "caiso", "report": "renewables", "hub": "NP15", "type": "solar"},
    "wind": {"provider": "caiso", "report": "renewables", "hub": "SP15", "type": "wind"},
}


@pytest.mark.parametrize("role", list(CAISO_SPECS))
@pytest.mark.parametrize("step", [5, 15, 60])
def test_caiso_episodes_follow_the_role_convention(caiso_dir, monkeypatch, role, step):
    monkeypatch.setenv("POWERGRID_DATA_DIR", str(caiso_dir.parent))  # a folder with a caiso/ sub-folder
    provider = make(CAISO_SPECS[role], role)
    n = 24 * 60 // step
    values = provider.episode(n, step, np.random.default_rng(11))
    check(values, n, role)
    assert provider.last_start.tz_convert("America/Los_Angeles").hour == 0
    if role == "price":
        assert 0 < values.mean() < 500  # $/MWh as is
    again = provider.episode(n, step, np.random.default_rng(11))
    np.testing.assert_array_equal(values, again)


def test_caiso_load_is_a_pu_multiplier_of_the_mean(caiso_dir):
    provider = make({"provider": "caiso", "area": "AVA", "path": str(caiso_dir / "load")}, "load")
    assert provider.series().values().mean() == pytest.approx(1.0)
    peak = make({"provider": "caiso", "area": "AVA", "path": str(caiso_dir / "load"), "normalize": "peak",
                 "scale": 0.8}, "load")
    assert peak.series().values().max() == pytest.approx(0.8)


def test_caiso_fixed_start_and_date_range(caiso_dir):
    fixed = make({"provider": "caiso", "area": "AVA", "path": str(caiso_dir), "start": "2023-07-04",
                  "normalize": "none"}, "load")
    values = fixed.episode(24, 60, np.random.default_rng(0))
    assert fixed.last_start == pd.Timestamp("2023-07-04 07:00", tz="UTC")
    raw = fixed.raw_series().between("2023-07-04 07:00", "2023-07-05 07:00").values()
    np.testing.assert_array_equal(values, raw)
    test_period = make({"provider": "caiso", "area": "AVA", "path": str(caiso_dir), "date_from": "2023-10-01",
                        "date_to": "2023-11-01"}, "load")
    for seed in range(20):
        test_period.episode(48, 60, np.random.default_rng(seed))
        assert pd.Timestamp("2023-10-01", tz="America/Los_Angeles") <= test_period.last_start
        assert test_period.last_start + pd.Timedelta(hours=48) <= pd.Timestamp("2023-11-01", tz="America/Los_Angeles")


def test_caiso_solar_capacity_normalisation_and_negatives(caiso_dir):
    provider = make({"provider": "caiso", "hub": "NP15", "path": str(caiso_dir), "capacity_mw": 2500.0}, "solar")
    s = provider.series()
    assert s.values()[np.isfinite(s.values())].min() >= 0.0  # the raw file has negative night values
    assert s.values()[np.isfinite(s.values())].max() == pytest.approx(1862.89544 / 2500.0)
    # the 11 missing hours are single hours, filled (max_gap_hours = 3 by default)
    assert s.provenance_counts()["filled"] == 11


def test_caiso_role_report_mismatch_is_refused():
    with pytest.raises(ValueError, match="report 'lmp' does not give a 'load' profile"):
        make({"provider": "caiso", "report": "lmp"}, "load")
    with pytest.raises(ValueError, match="no 'temperature' profile"):
        make({"provider": "caiso"}, "temperature")


def test_bad_params_give_yaml_paths():
    with pytest.raises(ConfigError, match=r"datasets.price.lmp_type: expected one of 'LMP'"):
        make({"provider": "caiso", "lmp_type": "XYZ"}, "price")
    with pytest.raises(ConfigError, match=r"datasets.load.start: expected a date"):
        make({"provider": "caiso", "start": "not a date"}, "load")
    with pytest.raises(ConfigError, match=r"datasets.load.colour: unknown parameter"):
        make({"provider": "synthetic", "colour": 1}, "load")


@pytest.mark.parametrize("role", ["load", "solar", "wind", "price", "temperature"])
def test_synthetic_is_seeded_and_follows_the_conventions(role):
    provider = make({"provider": "synthetic"}, role)
    a = provider.episode(96, 15, np.random.default_rng(5))
    b = provider.episode(96, 15, np.random.default_rng(5))
    c = provider.episode(96, 15, np.random.default_rng(6))
    check(a, 96, role)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    if role == "temperature":
        assert -20 < a.min() and a.max() < 45


def test_synthetic_without_noise_is_the_documented_formula():
    from powergrid_datasets import synthetic

    p = make({"provider": "synthetic", "noise": 0.0, "start": "2023-06-21"}, "solar")
    v = p.episode(24, 60, np.random.default_rng(0))
    h = np.arange(24.0)
    d = np.full(24, 171.0)
    np.testing.assert_allclose(v, synthetic.solar_shape(h, d))
    assert v[12] == pytest.approx(0.75 + 0.25 * np.sin(2 * np.pi / 365 * 91) * 1.0, rel=0.02)
    assert v[0] == 0.0


def test_pvlib_clear_sky():
    pytest.importorskip("pvlib", reason="pvlib is an optional extra (pip install 'powergrid-datasets[pvlib]')")
    provider = make({"provider": "pvlib", "latitude": 37.87, "longitude": -122.27, "tz": "America/Los_Angeles",
                     "start": "2023-06-21"}, "solar")
    values = provider.episode(96, 15, np.random.default_rng(0))
    check(values, 96, "solar")
    assert values[:16].max() == 0.0  # night until 04:00 local
    assert 0.8 < values.max() <= 1.0 and 44 <= values.argmax() <= 60  # around solar noon (≈ 13:10 PDT)
    random_day = make({"provider": "pvlib"}, "solar").episode(48, 30, np.random.default_rng(3))
    check(random_day, 48, "solar")


@pytest.mark.parametrize("role", ["load", "solar", "wind"])
def test_simbench_profiles(role):
    pytest.importorskip("simbench", reason="simbench is an optional extra (pip install 'powergrid-datasets[simbench]')")
    provider = make({"provider": "simbench"}, role)
    values = provider.episode(96, 15, np.random.default_rng(2))
    check(values, 96, role)
    series = provider.raw_series()
    assert len(series) == 35136 and series.step == pd.Timedelta(minutes=15) and series.valid().all()


def test_simbench_unknown_profile():
    pytest.importorskip("simbench", reason="simbench is an optional extra")
    from powergrid_datasets.errors import DataFileError

    with pytest.raises(DataFileError, match=r"no profile 'XX-9'.*H0-A"):
        make({"provider": "simbench", "profile": "XX-9"}, "load").episode(4, 15, np.random.default_rng(0))


@pytest.mark.parametrize(("spec", "message"), [
    ("{provider: caiso_2023, tz: America/Los_Angelos}",
     r"s\.yaml:7 datasets\.load\.tz: expected a time zone name such as America/Los_Angeles or UTC \(IANA\), "
     r"got 'America/Los_Angelos'"),
    ("{provider: pvlib, tz: Mars/Base}", r"s\.yaml:7 datasets\.load\.tz: expected a time zone name"),
    ("{provider: caiso_2023, start: '2023-03-12T02:30'}",
     r"s\.yaml:7 datasets\.load: start: 2023-03-12T02:30 is not one time in America/Los_Angeles: the clock skips"),
    ("{provider: caiso_2023, date_from: '2023-11-05T01:30'}",
     r"s\.yaml:7 datasets\.load: date_from: 2023-11-05T01:30 is not one time in America/Los_Angeles: .*repeats"),
    ("{provider: caiso, date_from: 2023-12-01, date_to: 2023-06-01}",
     r"s\.yaml:7 datasets\.load: date_from \(2023-12-01\) must be before date_to \(2023-06-01\)"),
])
def test_time_zone_and_dst_mistakes_are_config_errors_at_build(spec, message):
    # they used to pass `powergrid validate` and fail at the first reset as a bare KeyError / NonExistentTimeError
    pytest.importorskip("powergrid_devices", reason="the scenario's PV comes with powergrid-devices")
    from powergrid.builder import build_scenario
    from powergrid.config import EnvConfig

    role = "solar" if "pvlib" in spec else "load"
    text = ("name: s\nnetwork: {type: cigre_mv}\ntime: {physics: 1h, episode: 1d}\nagents:\n"
            "  - {id: pv, type: PV, bus: 'Bus 5', params: {p_max_mw: 0.1}}\ndatasets:\n"
            f"  {role}: {spec}\n")
    if role == "solar":
        message = message.replace("datasets\\.load", "datasets\\.solar")
    with pytest.raises(ConfigError, match=message):
        build_scenario(EnvConfig.from_text(text, file="s.yaml"))


@pytest.mark.parametrize("minutes", [120, 180, 90])
def test_steps_that_miss_a_dst_midnight_still_start_on_every_day(minutes):
    # the resampled grid was aligned to the epoch: with 2 h steps Pacific midnights (08:00 UTC in winter,
    # 07:00 UTC in summer) were on it only in winter, so April-October were never drawn; with 3 h or 90 min none was
    provider = make({"provider": "caiso_2023", "normalize": "none"}, "price")
    steps = 24 * 60 // minutes
    days = provider.start_days(steps, minutes)
    assert len(days) == 365 and {d.month for d in days} == set(range(1, 13))
    months = set()
    for seed in range(12):
        values = provider.episode(steps, minutes, np.random.default_rng(seed))
        start = provider.last_start.tz_convert("America/Los_Angeles")
        assert (start.hour, start.minute) == (0, 0)
        months.add(start.month)
        hourly = make({"provider": "caiso_2023", "normalize": "none", "start": str(start.date())}, "price")
        fine = hourly.episode(24, 60, np.random.default_rng(0))
        if minutes % 60 == 0:  # each coarse step is the mean of its hours
            np.testing.assert_allclose(values, fine.reshape(steps, -1).mean(axis=1), rtol=0, atol=1e-9)
    assert any(4 <= m <= 10 for m in months)
    fixed = make({"provider": "caiso_2023", "normalize": "none", "start": "2023-07-04"}, "price")
    fixed.episode(steps, minutes, np.random.default_rng(0))
    assert fixed.last_start == pd.Timestamp("2023-07-04 07:00", tz="UTC")


def test_a_relative_path_stays_the_scenario_folder_when_the_working_directory_changes(tmp_path, monkeypatch):
    # 'path: data' in scen/x.yaml opened as the relative 'scen/x.yaml' was kept as 'scen/data' and looked up
    # in the working directory of the first reset (a worker process, a notebook's chdir): no such folder
    pytest.importorskip("powergrid_devices", reason="the scenario's battery comes with powergrid-devices")
    from powergrid.env import MultiAgentPowerGridEnv

    from .test_hostile_files import load_csv

    (tmp_path / "scen" / "data").mkdir(parents=True)
    (tmp_path / "scen" / "data" / "x_SLD_FCST_y.csv").write_text(load_csv("2023-07-01 07:00", 24 * 5))
    (tmp_path / "scen" / "x.yaml").write_text(
        "name: x\nnetwork: {type: cigre_mv}\ntime: {physics: 1h, episode: 1d}\n"
        "agents:\n  - {id: b, type: ESS, bus: 'Bus 5', policy: learned}\n"
        "datasets:\n  load: {provider: caiso, path: data, area: AVA}\n")
    monkeypatch.chdir(tmp_path)
    env = MultiAgentPowerGridEnv.from_config("scen/x.yaml")
    monkeypatch.chdir(tmp_path / "scen" / "data")
    env.reset(seed=0)
    assert env.scenario.providers["load"].params.path == str(tmp_path / "scen" / "data")


@pytest.mark.parametrize(("spec", "role"), [({"provider": "caiso_2023", "capacity_mw": 2000}, "load"),
                                            ({"provider": "caiso_2023", "capacity_mw": 2000}, "price"),
                                            ({"provider": "caiso_2023", "capacity_mw": 2000, "normalize": "none"}, "solar")])
def test_capacity_where_it_would_be_ignored_is_refused(spec, role):
    # capacity_mw only divides solar/wind; on a load it was silently ignored (the mean still divided it)
    with pytest.raises(ValueError, match=rf"capacity_mw divides a solar or wind series .*ignored for this {role} profile"):
        make(spec, role)
    assert make({"provider": "caiso_2023", "capacity_mw": 2000}, "solar").params.capacity_mw == 2000


@pytest.mark.parametrize("minutes", [60, 15, 120])
def test_episodes_start_at_the_start_hour(minutes):
    # time.start_hour 6 put the clock (ctx.hour, the observations' hour, the class load shapes) at 06:00 while the
    # data providers still served the day from local midnight: the data and the clock disagreed by 6 hours
    tz = "America/Los_Angeles"
    late = make({"provider": "caiso_2023", "normalize": "none", "start_hour": 6}, "price")
    steps = 24 * 60 // minutes
    assert len(late.start_days(steps, minutes)) == 364  # the year's last day has no 06:00 of the next day
    for seed in range(4):
        values = late.episode(steps, minutes, np.random.default_rng(seed))
        start = late.last_start.tz_convert(tz)
        assert (start.hour, start.minute) == (6, 0)
        two_days = make({"provider": "caiso_2023", "normalize": "none", "start": str(start.date())}, "price")
        np.testing.assert_array_equal(values, two_days.episode(2 * steps, minutes, np.random.default_rng(0))
                                      [6 * 60 // minutes: 6 * 60 // minutes + steps])
    fixed = make({"provider": "caiso_2023", "start": "2023-07-04", "start_hour": 6}, "load")
    fixed.episode(steps, minutes, np.random.default_rng(0))
    assert fixed.last_start == pd.Timestamp("2023-07-04 13:00", tz="UTC")
    as_timestamp = make({"provider": "caiso_2023", "start": "2023-07-04T06:00", "start_hour": 6}, "load")
    as_timestamp.episode(steps, minutes, np.random.default_rng(0))
    assert as_timestamp.last_start == fixed.last_start
    with pytest.raises(ValueError, match=r"start: 2023-07-04T00:00 is 0 h after its local midnight but start_hour is 6"):
        make({"provider": "caiso_2023", "start": "2023-07-04T00:00", "start_hour": 6}, "load")


def test_the_scenario_clock_and_the_data_start_together():
    pytest.importorskip("powergrid_devices", reason="the scenario's PV comes with powergrid-devices")
    from powergrid.env import MultiAgentPowerGridEnv

    env = MultiAgentPowerGridEnv.from_config({
        "name": "s", "network": {"type": "cigre_mv"}, "time": {"physics": "1h", "episode": "1d", "start_hour": 6},
        "agents": [{"id": "pv", "type": "PV", "bus": "Bus 5", "policy": "learned", "params": {"p_max_mw": 0.1}}],
        "datasets": {"price": {"provider": "caiso_2023"}, "load": {"provider": "caiso_2023"},
                     "solar": {"provider": "caiso_2023"}}})
    for seed in range(3):
        _, infos = env.reset(seed=seed)
        stamp = pd.Timestamp(infos["pv"]["timestamp"]).tz_convert("America/Los_Angeles")
        assert stamp.hour == env.ctx.hour == 6
        assert {p.last_start for p in env.scenario.providers.values() if hasattr(p, "last_start")} == {stamp}


def test_the_class_calendar_takes_the_episode_s_day_across_a_clock_change():
    # start_hour counts elapsed hours: on the spring-forward Sunday 2023-03-12, start_hour 23 starts the data at
    # Monday 00:00 local, and the customer classes took Monday's shapes for the Sunday episode
    from powergrid.loads import episode_start

    for start_hour in (0, 6, 23):
        price = make({"provider": "caiso_2023", "start": "2023-03-12", "start_hour": start_hour}, "price")
        price.episode(24, 60, np.random.default_rng(0))
        assert episode_start(price) == pd.Timestamp("2023-03-12").date()


def test_pvlib_starts_at_the_start_hour():
    pytest.importorskip("pvlib", reason="pvlib is an optional extra (pip install 'powergrid-datasets[pvlib]')")
    spec = {"provider": "pvlib", "tz": "America/Los_Angeles", "start": "2023-06-21"}
    day = make(spec, "solar").episode(96, 15, np.random.default_rng(0))
    late = make({**spec, "start_hour": 6}, "solar").episode(72, 15, np.random.default_rng(0))
    np.testing.assert_allclose(late, day[24:], rtol=1e-12)

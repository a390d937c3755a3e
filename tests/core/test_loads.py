"""Per-load demand: customer-class shapes, scaling, seeded AR(1) jitter, daily energy kept, YAML errors."""

from __future__ import annotations

import datetime as dt
import importlib.resources
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest

from powergrid.config import EnvConfig, LoadsConfig, Source
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import ConfigError
from powergrid.loads import CLASSES, DAYS, SEASONS, LoadModel, class_shapes, day_type, season_of
from powergrid.networks import TEMPLATES
from powergrid.plugins import make_registry

from .scenarios import load_local, two_feeders

MONDAY, SUNDAY = dt.date(2023, 1, 16), dt.date(2023, 1, 15)


@pytest.fixture(scope="module")
def registry():
    load_local()
    return make_registry(include_local=True)


def model(network: str = "ieee34", **loads) -> LoadModel:
    return LoadModel.build(LoadsConfig(**loads), TEMPLATES[network](), Source())


def weekday_shape(name: str, season: str = "winter") -> np.ndarray:
    return class_shapes()[CLASSES.index(name), SEASONS.index(season), DAYS.index("weekday")]


def test_the_shipped_shapes_are_complete_and_have_a_week_mean_of_one():
    shapes = class_shapes()
    assert shapes.shape == (len(CLASSES), 3, 3, 96) and (shapes > 0).all()
    week_mean = shapes.mean(axis=3) @ (np.array([5.0, 1.0, 1.0]) / 7.0)  # 5 weekdays, a Saturday, a Sunday
    np.testing.assert_allclose(week_mean, 1.0, atol=2e-4)  # the file holds 4 decimals


@pytest.mark.parametrize("season", SEASONS)
def test_commercial_peaks_by_day_residential_in_the_evening_industrial_is_flattest(season):
    hour = {k: np.argmax(weekday_shape(k, season)) / 4.0 for k in CLASSES}
    assert 8.0 <= hour["commercial"] <= 15.0
    assert 17.0 <= hour["residential"] <= 23.0
    peak_to_mean = {k: weekday_shape(k, season).max() / weekday_shape(k, season).mean() for k in CLASSES}
    assert peak_to_mean["industrial"] < min(peak_to_mean["residential"], peak_to_mean["commercial"])
    # commerce rests on Sunday, households do not
    sunday = class_shapes()[:, SEASONS.index(season), DAYS.index("sunday")].mean(axis=1)
    assert sunday[CLASSES.index("commercial")] < 0.8 < sunday[CLASSES.index("residential")]


def test_calendar_follows_bdew_seasons_and_day_types():
    assert [SEASONS[season_of(dt.date(2023, m, d))] for m, d in ((3, 20), (3, 21), (5, 15), (9, 14), (9, 15), (11, 1))] == \
        ["winter", "transition", "summer", "summer", "transition", "winter"]
    assert [DAYS[day_type(MONDAY + dt.timedelta(days=k))] for k in range(7)] == ["weekday"] * 5 + ["saturday", "sunday"]


def test_default_classes_follow_published_types_and_size():
    cigre = model("cigre_lv").assignment()
    assert (cigre["Load R1"], cigre["Load C1"], cigre["Load I2"]) == ("residential", "commercial", "industrial")
    assert model("cigre_mv").assignment()["Load CI1"] == "commercial"
    ieee = model("ieee34")
    kinds = ieee.assignment()
    assert kinds["844"] == kinds["890"] == "industrial"  # 405 and 450 kW, 25–27× the median load of 16.5 kW
    assert kinds["802-806@802"] == "residential"  # a lumped distributed load
    assert set(kinds.values()) == {"residential", "commercial", "industrial"}


def test_patterns_match_load_or_bus_names_and_later_ones_win():
    m = model("ieee34", default_class="residential", classes={"8*": "commercial", "84?": "industrial"},
              scale={"860": 2.0})
    kinds = m.assignment()
    assert kinds["830"] == "commercial" and kinds["840"] == kinds["844"] == "industrial"
    assert kinds["802-806@806"] == "commercial"  # the bus name 806 matches 8*
    scaled = {n for n, f in zip(m.names, m.scale) if f != 1.0}
    assert m.scale.max() == 2.0 and scaled == {"860", "834-860@860", "860-836@860"}  # the load 860 and those at bus 860


def day_energy(m: LoadModel, level: np.ndarray, matrix: np.ndarray, per_day: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Feeder energy per calendar day (MW·ticks) with the classes and with every load × L(t)."""
    day = (offset + np.arange(len(level))) // per_day
    return np.bincount(day, matrix @ m.weight), np.bincount(day, level * m.weight.sum())


@pytest.mark.parametrize("step_minutes, start_hour", [(15.0, 0), (60.0, 7), (5.0, 22)])
def test_each_days_feeder_energy_equals_the_uniform_modes(step_minutes, start_hour):
    m = model("ieee123", jitter=0.1)
    per_day = int(1440 / step_minutes)
    n = 3 * per_day
    level = np.random.default_rng(0).uniform(0.6, 1.4, n)
    matrix = m.multipliers(level, step_minutes=step_minutes, start_hour=start_hour, start=MONDAY,
                           rng=np.random.default_rng(1))
    classes, uniform = day_energy(m, level, matrix, per_day, start_hour * 60 // int(step_minutes))
    assert len(classes) == (4 if start_hour else 3)  # partial first and last days keep their own energy too
    np.testing.assert_allclose(classes, uniform, rtol=1e-12)
    # the shape within the day is the classes', not L(t)'s: the feeder total is not proportional to L
    assert np.corrcoef(matrix @ m.weight, level)[0, 1] < 0.9


def diversity_factor(base_mw: np.ndarray, matrix: np.ndarray) -> float:
    """Sum of the loads' own peaks over the peak of their sum (1 when all loads share one shape)."""
    loads = matrix * base_mw
    return float(loads.max(axis=0).sum() / loads.sum(axis=1).max())


@pytest.mark.parametrize("network", ["ieee34", "ieee123", "cigre_mv", "case33bw"])
def test_classes_give_diversity_between_buses_and_uniform_gives_none(network):
    net = TEMPLATES[network]()
    base = net.load.p_mw.to_numpy(float)
    level = np.full(96, 1.0)
    kwargs = {"step_minutes": 15.0, "start_hour": 0, "start": MONDAY, "rng": np.random.default_rng(3)}
    uniform = LoadModel.build(LoadsConfig(profile="uniform"), net, Source()).multipliers(level, **kwargs)
    shapes_only = LoadModel.build(LoadsConfig(jitter=0.0), net, Source()).multipliers(level, **kwargs)
    assert diversity_factor(base, uniform) == pytest.approx(1.0, abs=1e-12)
    assert diversity_factor(base, shapes_only) > 1.05  # from the classes alone


def test_jitter_is_ar1_with_the_configured_deviation_and_correlation_time():
    m = model("ieee123", default_class="residential", jitter=0.1, jitter_hours=1.0)
    matrix = m.multipliers(np.ones(4 * 96), step_minutes=15.0, start_hour=0, start=MONDAY, rng=np.random.default_rng(5))
    noise = matrix / matrix.mean(axis=1, keepdims=True) - 1.0  # one class: the shape and the daily gain cancel
    assert noise.std() == pytest.approx(0.1, rel=0.1)
    lag1 = np.mean([np.corrcoef(noise[:-1, i], noise[1:, i])[0, 1] for i in range(noise.shape[1])])
    assert lag1 == pytest.approx(np.exp(-0.25), abs=0.05)  # φ = exp(−Δt/τ) = exp(−15 min / 1 h)


def test_a_weekday_start_and_a_sunday_start_differ_for_commerce():
    m = model("cigre_lv", jitter=0.0)
    level = np.ones(96)
    kwargs = {"step_minutes": 15.0, "start_hour": 0, "rng": np.random.default_rng(0)}
    monday, sunday = (m.multipliers(level, start=d, **kwargs) for d in (MONDAY, SUNDAY))
    shop, home = m.names.index("Load C1"), m.names.index("Load R1")
    assert sunday[:, shop].mean() / sunday[:, home].mean() < 0.75 * monday[:, shop].mean() / monday[:, home].mean()


def make_env(registry, **loads) -> MultiAgentPowerGridEnv:
    return MultiAgentPowerGridEnv.from_config(two_feeders(loads=loads, time={"steps_per_episode": 200}), registry=registry)


def run(env: MultiAgentPowerGridEnv, seed: int, ticks: int = 6) -> list[np.ndarray]:
    env.reset(seed=seed)
    seen = []
    for _ in range(ticks):
        env.step({a: np.zeros(env.action_space(a).shape, np.float32) for a in env.agents})
        seen.append(env._injections.load_p_mw.copy())
    return seen


def test_uniform_mode_is_the_scalar_profile_exactly(registry):
    env = make_env(registry, profile="uniform")
    loads = run(env, seed=7)
    for tick, p in enumerate(loads):
        assert np.array_equal(p, env._base_load_p * env.ctx.profiles["load"][tick])
        assert np.array_equal(env._load_q, env._base_load_q * env.ctx.profiles["load"][len(loads) - 1])


def test_class_mode_is_the_default_and_steps_use_the_matrix_rows(registry):
    env = make_env(registry)
    assert env.config.loads.profile == "classes"
    loads = run(env, seed=7)
    for tick, p in enumerate(loads):
        assert np.array_equal(p, env._base_load_p * env.load_multipliers[tick])
    assert env.load_multipliers.shape == (200, len(env.net.load))
    assert not np.allclose(env.load_multipliers, env.load_multipliers[:, :1])  # loads differ


def test_same_seed_same_matrix_other_seed_other_matrix_and_pickles(registry):
    a, b = make_env(registry), make_env(registry)
    a.reset(seed=11)
    b.reset(seed=11)
    first = a.load_multipliers.copy()
    assert np.array_equal(first, b.load_multipliers)
    b.reset(seed=12)
    assert not np.allclose(first, b.load_multipliers)
    a.reset(seed=11)
    assert np.array_equal(first, a.load_multipliers)
    clone = pickle.loads(pickle.dumps(a))
    assert np.array_equal(run(clone, seed=13), run(a, seed=13))


SCENARIO = """\
network: {type: ieee34}
agents:
  - {id: a, type: ConstantPower, bus: "860", policy: learned, params: {p_mw: 0.1}}
loads:
  profile: classes
  classes:
    "84*": industrial
  scale:
    "860": 1.5
"""


@pytest.mark.parametrize("old, new, expected", [
    ("profile: classes", "profile: uniform", None),
    ("profile: classes", "colour: red", r"cfg.yaml:5 loads.colour: unknown parameter of LoadsConfig"),
    ("profile: classes", "profile: flat", r"cfg.yaml:5 loads.profile: expected one of 'classes', 'uniform', got 'flat'"),
    ("profile: classes", "jitter: 2", r"cfg.yaml:5 loads.jitter: expected a number ≥ 0 and ≤ 0.5, got 2"),
    ("profile: classes", "default_class: offices", r"cfg.yaml:5 loads.default_class: expected one of 'auto', 'residential'"),
    ("industrial", "shops", r"cfg.yaml:7 loads.classes.84\*: expected a customer class \(residential, .*got 'shops'"),
    ("1.5", "-1", r"cfg.yaml:9 loads.scale.860: expected a number ≥ 0 \(pu\), got -1"),
    ('scale:\n    "860": 1.5', "scale: [1, 2]", r"cfg.yaml:8 loads.scale: expected a mapping of load or bus name patterns"),
])
def test_bad_loads_sections_give_located_errors(tmp_path, old, new, expected):
    path = tmp_path / "cfg.yaml"
    path.write_text(SCENARIO.replace(old, new))
    if expected is None:
        loads = EnvConfig.from_yaml(path).loads
        assert (loads.profile, dict(loads.classes), dict(loads.scale)) == ("uniform", {"84*": "industrial"}, {"860": 1.5})
        return
    with pytest.raises(ConfigError, match=expected):
        EnvConfig.from_yaml(path)


def test_a_pattern_matching_no_load_is_an_error_at_build(tmp_path, registry):
    path = tmp_path / "cfg.yaml"
    path.write_text(SCENARIO.replace('"84*"', '"mg9.*"'))
    config = EnvConfig.from_yaml(path)
    with pytest.raises(ConfigError, match=r"cfg.yaml:7 loads.classes.mg9.\*: .*got 'mg9.\*': it matches no load"):
        MultiAgentPowerGridEnv(config, registry=registry)


def test_the_shipped_shapes_are_what_the_script_extracts_from_simbench(tmp_path):
    pytest.importorskip("simbench")
    pytest.importorskip("powergrid_datasets")
    spec = importlib.util.spec_from_file_location("extract", Path(__file__).parents[2] / "scripts" / "extract_load_classes.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "load_classes.csv"
    script.write(script.class_shapes(script.read_profiles()), out, "test")
    shipped = importlib.resources.files("powergrid").joinpath("data", "load_classes.csv").read_text(encoding="utf-8")

    def rows(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("#")]

    assert rows(out.read_text(encoding="utf-8")) == rows(shipped)

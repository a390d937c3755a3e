"""Plugin and scenario parameters built from values a program makes (numpy numbers), not only from YAML."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import ConfigError
from powergrid.params import build_params, choice, integer, numbers, quantity
from powergrid.plugins import make_registry

from .scenarios import load_local, two_feeders


@pytest.fixture(scope="module")
def registry():
    load_local()
    return make_registry(include_local=True)


def test_numpy_numbers_are_numbers_and_bools_are_not(registry):
    """A sweep that writes numpy values into a scenario mapping gets them as numbers (was: 'expected a number > 0
    (MW), got np.float32(0.5)'); a bool stays refused, numpy's too."""
    scenario = two_feeders(reward={"safety_weight": np.float32(20.0), "divergence_penalty": np.int64(500)},
                           time={"physics": "15min", "episode": "2h", "start_hour": np.int64(6)})
    scenario["agents"][0]["params"].update(p_mw=np.float32(0.5), scale_max=np.int64(3))
    env = MultiAgentPowerGridEnv.from_config(scenario, registry=registry)
    reward, params = env.config.reward, env.scenario.agents["a"].device.params
    assert (reward.safety_weight, reward.divergence_penalty, params.p_mw, params.scale_max) == (20.0, 500.0, 0.5, 3.0)
    assert type(reward.safety_weight) is float and type(params.p_mw) is float
    assert env.config.time.start_hour == 6 and type(env.config.time.start_hour) is int
    for bad in (np.bool_(True), True, "0.5", np.float32("nan")):
        scenario["agents"][0]["params"]["p_mw"] = bad
        with pytest.raises(ConfigError, match="p_mw: expected a number"):
            MultiAgentPowerGridEnv.from_config(scenario, registry=registry)
    scenario["agents"][0]["params"]["p_mw"] = 0.5
    for bad in (np.bool_(True), np.float64(6.0), np.int64(24)):
        scenario["time"]["start_hour"] = bad
        with pytest.raises(ConfigError, match="start_hour: expected an integer"):
            MultiAgentPowerGridEnv.from_config(scenario, registry=registry)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: quantity("MW", -0.05, ge=0), r"the default -0.05 is not a number ≥ 0 \(MW\)"),
    (lambda: integer(0, ge=1), "the default 0 is not an integer ≥ 1"),
    (lambda: choice(("a", "b"), "c"), "the default 'c' is not one of 'a', 'b'"),
    (lambda: numbers("pu", [0.9, 1.2], le=1.1), r"the default \[0.9, 1.2\] is not a list of numbers ≤ 1.1 \(pu\)$"),
])
def test_a_default_outside_its_bounds_fails_where_it_is_declared(make, message):
    """A plugin's default its own check rejects was reported as the scenario's mistake, naming no field:
    'agents[3].params: a number ≥ 0 (MW)' for a device whose params the scenario left out
    (/work/notes/R2s30/mist/baddefault.py)."""
    with pytest.raises(ValueError, match=message):
        make()
    assert build_params(attrs.make_class("Fine", {"x": quantity("MW", 0.0, ge=0)}), {}).x == 0.0


@pytest.mark.parametrize("value", [(0.5, 2.0), (0.5, float("nan")), ()])
def test_a_tuple_curve_is_checked_as_a_list_is(value):
    """A tuple of floats (a Python scenario, a sweep) skipped every check of a ``numbers`` field: an efficiency curve
    (0.5, 2.0) with le=1, a NaN, an empty curve were accepted; the same values as a list were refused."""
    curve = attrs.make_class("Curve", {"eff": numbers("1", (0.5, 0.6), ge=0.01, le=1)}, frozen=True)
    with pytest.raises(ConfigError, match=r"params\.eff: expected a list of numbers ≥ 0\.01 and ≤ 1, got"):
        build_params(curve, {"eff": value})
    assert build_params(curve, {"eff": (0.4, 0.7)}).eff == (0.4, 0.7)


def test_a_template_keyword_defaulting_to_none_is_optional_with_its_annotated_type():
    """A network template ``def feeder(n_buses: int = 4, seed: int | None = None)``: a scenario leaving ``seed`` out
    failed ('network.params: a number', the None default run through a number check) and ``seed: 3`` reached the
    template as 3.0 (an int annotation inside Optional was not read)."""
    from powergrid.params import describe_params, params_of

    def feeder(n_buses: int = 4, seed: int | None = None, vm_pu=None):
        return n_buses, seed, vm_pu

    params = params_of(feeder, "network 'feeder'")
    assert [row[3] for row in describe_params(params)] == ["an integer", "an integer or null", "a number (pu) or null"]
    assert attrs.asdict(build_params(params, {})) == {"n_buses": 4, "seed": None, "vm_pu": None}
    given = build_params(params, {"seed": 3, "vm_pu": 1.02})
    assert given.seed == 3 and isinstance(given.seed, int) and given.vm_pu == 1.02
    with pytest.raises(ConfigError, match=r"params\.seed: expected an integer or null, got 2\.5"):
        build_params(params, {"seed": 2.5})


def test_an_unannotated_keyword_defaulting_to_none_keeps_an_integer():
    """``def feeder(seed=None)`` with ``seed: 3`` in the YAML reached the template as 3.0 (the field was a number,
    converted to float): ``random.Random(3.0)``/``np.random.default_rng(3.0)`` fail or differ. An integer stays an int,
    a float stays a float; a string is still refused."""
    import numpy as np

    from powergrid.params import params_of

    def feeder(seed=None, vm_pu=None):
        return seed, vm_pu

    params = params_of(feeder, "network 'feeder'")
    given = build_params(params, {"seed": 3, "vm_pu": 1.02})
    assert given.seed == 3 and type(given.seed) is int and type(given.vm_pu) is float
    assert type(build_params(params, {"seed": np.int64(5)}).seed) is int
    assert type(build_params(params, {"vm_pu": 1}).vm_pu) is int
    with pytest.raises(ConfigError, match=r"params\.seed: expected a number or null, got 'x'"):
        build_params(params, {"seed": "x"})
    with pytest.raises(ConfigError, match=r"params\.seed: expected a number or null, got True"):
        build_params(params, {"seed": True})

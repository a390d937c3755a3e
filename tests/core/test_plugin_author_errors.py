"""A third-party plugin author's mistakes found by review f33 (/work/notes/f33/report.md): each error names the plugin
and what to change, at load or build, not later as a confusing symptom. Plugin classes are defined here (no pack)."""

from __future__ import annotations

import dataclasses
import warnings

import attrs
import numpy as np
import pytest

import powergrid
from powergrid.devices import Device, box, observation_problem
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import PluginError
from powergrid.params import check_unit, numbers, quantity
from powergrid.plugins import PluginRecord, Registry, make_registry
from powergrid.scaffold import new_device, snake_case


def one_device(device: str) -> dict:
    """A scenario of one device agent of type ``device`` on case33bw, two 15-min steps."""
    return {"name": "author", "network": {"type": "case33bw"}, "time": {"step_minutes": 15, "steps_per_episode": 2},
            "agents": [{"id": "x", "type": device, "bus": 5}]}


def test_an_unknown_name_names_the_plugins_that_failed_to_load_not_the_local_plugin_path(tmp_path, monkeypatch):
    # f33 D4: an entry point to a missing module gave "unknown device type 'EVFleet' (installed: none); local plugins
    # load from POWERGRID_PLUGIN_PATH (unset here), which a worker process ..." and the cause only as a warning
    info = tmp_path / "powergrid_evx-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: powergrid-evx\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[powergrid]\nevx = powergrid_evx_missing.plugins\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("POWERGRID_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("POWERGRID_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("POWERGRID_NO_ENTRY_POINTS", raising=False)
    with pytest.warns(RuntimeWarning, match="skipped plugin 'evx'"):
        registry = make_registry(entry_points=True)
    message = registry.unknown_message("device", "EVFleet")
    assert message.startswith("unknown device type 'EVFleet' (installed: ")
    assert ("; plugins that failed to load, which may provide it: 'evx' from powergrid-evx: ModuleNotFoundError: "
            "No module named 'powergrid_evx_missing'") in message
    assert "POWERGRID_PLUGIN_PATH" not in message


def test_the_local_plugin_hint_only_when_no_name_is_close():
    # f33 D8: a typo with a did-you-mean still got the three-line POWERGRID_PLUGIN_PATH/Ray hint
    class Heater(Device):
        pass

    registry = Registry([PluginRecord("Heater", Heater, kind="device"), PluginRecord("SunSpecDevice", Heater, kind="device")])
    typo = registry.unknown_message("device", "Heatr")
    assert "did you mean 'Heater'?" in typo and "POWERGRID_PLUGIN_PATH" not in typo
    assert "POWERGRID_PLUGIN_PATH" in registry.unknown_message("device", "Chiller")
    far = registry.unknown_message("device", "LateDevice")  # a far match: perhaps a local plugin a worker lacks (r31)
    assert "did you mean 'SunSpecDevice'?" in far and "POWERGRID_PLUGIN_PATH (" in far


@pytest.mark.parametrize(("name", "snake", "folder"), [
    ("EVFleet", "ev_fleet", "powergrid-ev-fleet"),  # f33 D9: was powergrid-e-v-fleet / powergrid_e_v_fleet
    ("HeatStorage", "heat_storage", "powergrid-heat-storage"),
    ("MyEV", "my_ev", "powergrid-my-ev"),
    ("EV2Grid", "ev2_grid", "powergrid-ev2-grid"),
])
def test_a_run_of_capitals_is_one_word_of_the_package_name(tmp_path, name, snake, folder):
    assert snake_case(name) == snake
    target = new_device(name, tmp_path)
    assert target.name == folder and (target / "src" / f"powergrid_{snake}").is_dir()


def _register(monkeypatch, params: type, name: str) -> None:
    """Register a device ``name`` with ``params`` as its Params for this test only."""
    monkeypatch.setattr(powergrid.plugins._LOCAL, "records", list(powergrid.plugins._LOCAL.records))
    powergrid.plugins._clear_cache()

    @powergrid.register_device(name)
    class Author(Device):
        Params = params

        def __init__(self, p, dt_h):
            super().__init__(p, dt_h)
            self.action_space = box(0.0, 1.0)

        def step(self, action, ctx):
            self.p_mw = 0.0


@pytest.fixture
def fresh_registry():
    yield
    powergrid.plugins._clear_cache()


def test_params_written_as_a_dataclass_is_a_plugin_error_naming_the_class_and_the_form(monkeypatch, fresh_registry):
    # f33 D5: "NotAnAttrsClassError: <class '...EVFleetParams'> is not an attrs-decorated class." named no device
    @dataclasses.dataclass(frozen=True)
    class FleetParams:
        energy_mwh: float = 1.0

    _register(monkeypatch, FleetParams, "DataclassFleet")
    with pytest.raises(PluginError, match=r"^device 'DataclassFleet' from local:.*test_plugin_author_errors\.py: its "
                                          r"Params .*FleetParams must be an attrs class: @attrs\.frozen, fields made "
                                          r"with powergrid\.params .*; found a dataclass$"):
        MultiAgentPowerGridEnv.from_config(one_device("DataclassFleet"))


def test_annotated_params_attributes_attrs_left_out_are_named(monkeypatch, fresh_registry):
    # f33 D7: one field without an annotation made attrs drop 'energy_mwh: float = 1.0', and the YAML that set it
    # got "unknown parameter energy_mwh"
    @attrs.frozen
    class FleetParams:
        energy_mwh: float = 1.0
        share = quantity("1", 0.1, ge=0, le=1)

    _register(monkeypatch, FleetParams, "HalfTypedFleet")
    config = one_device("HalfTypedFleet")
    config["agents"][0]["params"] = {"energy_mwh": 2.0}
    with pytest.raises(PluginError, match=r"^device 'HalfTypedFleet' from local:.*: its Params .*FleetParams has "
                                          r"annotated attributes that are no fields \(energy_mwh\): attrs ignores "
                                          r"annotations once a field has none \(share\); annotate every field"):
        MultiAgentPowerGridEnv.from_config(config)


def test_well_formed_params_still_build(monkeypatch, fresh_registry):
    @attrs.frozen
    class FleetParams:
        energy_mwh: float = quantity("MWh", 1.0, gt=0)
        count: int = 3
        rate: float = 0.5

    _register(monkeypatch, FleetParams, "GoodFleet")
    config = one_device("GoodFleet")
    config["agents"][0]["params"] = {"energy_mwh": 2.0, "rate": 0.25}
    env = MultiAgentPowerGridEnv.from_config(config)
    assert env.scenario.agents["x"].device.params == FleetParams(2.0, 3, 0.25)


def test_an_empty_unit_is_refused_and_an_unknown_one_warned_about():
    # f33 D6: quantity("", ...) and quantity("kWhh", ...) were accepted and shown as '-' and 'kWhh'
    with pytest.raises(ValueError, match=r"a parameter's unit: expected one such as 'MW'.* or '1' for a dimensionless "
                                         r"number, got ''"):
        quantity("", 1.0)
    with pytest.raises(ValueError, match="got ' '"):
        numbers(" ", (1.0,))
    with pytest.warns(UserWarning, match=r"unit 'kWhh': 'kWhh' is not a known unit symbol") as caught:
        quantity("kWhh", 1.0)
    assert caught[0].filename == __file__  # the line declaring it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for unit in ("1", "MW", "$/MWh", "$/MW²h", "kWh/°C", "$/°Ch", "1/$", "m/s", "L/day", "MW/Hz", "%", "kg", "m^2"):
            check_unit(unit)


def test_a_device_that_overrides_observe_without_an_observation_space_is_named():
    # f33 D2 (the check the builder runs for every device): its observation was dropped without a word
    class Silent(Device):
        def observe(self):
            return np.array([0.7, 0.3], np.float32)

    class Values(Device):
        def observe_values(self):
            return [0.7]

    class Spaced(Silent):
        def __init__(self, params, dt_h):
            super().__init__(params, dt_h)
            self.observation_space = box([0.0, 0.0], [1.0, 1.0])

    assert observation_problem(Silent(None, 0.25)).startswith(
        "Silent overrides observe() but its observation_space is empty (Device's default), so its observation would "
        "be dropped; set self.observation_space in __init__")
    assert "Values overrides observe_values()" in observation_problem(Values(None, 0.25))
    assert observation_problem(Spaced(None, 0.25)) is None
    assert observation_problem(Device(None, 0.25)) is None  # observes nothing, says nothing


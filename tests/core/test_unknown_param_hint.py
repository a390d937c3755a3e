"""An unknown plugin parameter (a dataset's, a device's) gets the "did you mean" of every other unknown key (hold-out
review r40 item 11: ``datasets.price.nodes`` said only "unknown parameter of dataset 'caiso_2023' (known: …)")."""

from __future__ import annotations

from pathlib import Path

import pytest

from powergrid.cli import main

pytest.importorskip("powergrid_devices", reason="the scenario's devices come with powergrid-devices")
pytest.importorskip("powergrid_datasets", reason="the caiso_2023 dataset comes with powergrid-datasets")

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "cigre_mv_microgrid.yaml"


@pytest.mark.parametrize(("old", "new", "message"), [
    ("price: {provider: caiso_2023, node: 0096WD_7_N001}", "price: {provider: caiso_2023, nodes: 0096WD_7_N001}",
     "datasets.price.nodes: unknown parameter of dataset 'caiso_2023' (did you mean 'node'? known: "),
    ("params: {p_max_mw: 0.1}", "params: {p_max_mv: 0.1}",
     "agents[3].params.p_max_mv: unknown parameter of device 'PV' (did you mean 'p_max_mw'? known: "),
])
def test_an_unknown_parameter_gets_the_closest_name(tmp_path, capsys, old, new, message):
    text = CONFIG.read_text()
    assert old in text
    (tmp_path / "s.yaml").write_text(text.replace(old, new))
    assert main(["validate", str(tmp_path / "s.yaml")]) == 2
    err = capsys.readouterr().err
    assert message in err, err


def test_a_far_name_gets_no_suggestion(tmp_path, capsys):
    text = CONFIG.read_text().replace("node: 0096WD_7_N001}", "node: 0096WD_7_N001, colour: red}")
    (tmp_path / "s.yaml").write_text(text)
    assert main(["validate", str(tmp_path / "s.yaml")]) == 2
    err = capsys.readouterr().err
    assert "datasets.price.colour: unknown parameter of dataset 'caiso_2023' (known: " in err, err

"""`powergrid.scaffold.new_protocol` (`powergrid new protocol NAME`) creates a pip-installable vertical-protocol plugin
package whose tests pass as created, that `powergrid plugins` lists and that a scenario runs (r44b finding 3)."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from powergrid.cli import main
from powergrid.scaffold import new_device, new_protocol, registered_name
from tests.devices.test_scaffold import own_tests, plugins_listed
from tests.installs import installed


def test_a_protocol_registers_under_its_snake_case_name():
    assert registered_name("protocol", "PeakTariff") == "peak_tariff"
    assert registered_name("device", "PeakTariff") == "PeakTariff"


@pytest.mark.parametrize(("name", "message"), [
    ("PriceSignal", "a protocol 'price_signal' is already registered by powergrid-protocols"),
    ("Setpoint", "a protocol 'setpoint' is already registered by powergrid-protocols"),
    ("Directive", "a name the generated code imports"),
    ("peak tariff", "CamelCase"),
])
def test_names_that_cannot_be_a_new_protocol_are_refused(tmp_path, name, message):
    with pytest.raises(ValueError, match=message):
        new_protocol(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_device_and_a_protocol_of_one_name_share_the_folder(tmp_path):
    new_device("PeakTariff", tmp_path)
    with pytest.raises(FileExistsError, match="powergrid-peak-tariff already exists"):
        new_protocol("PeakTariff", tmp_path)


def test_scaffolded_protocol_installs_registers_runs_and_passes_its_tests(tmp_path):
    package = new_protocol("PeakTariff", tmp_path)
    assert package == tmp_path / "powergrid-peak-tariff"
    assert "{{" not in "".join(p.read_text() for p in package.rglob("*") if p.is_file())
    with installed(package):
        assert any(words[:2] == ["peak_tariff", "powergrid-peak-tariff"] for words in plugins_listed())
        out = tmp_path / "runs"
        run = subprocess.run([sys.executable, "-m", "powergrid.cli", "run", str(package / "scenario.yaml"), "--episodes", "1",
                              "--out", str(out)], capture_output=True, text=True, cwd=tmp_path, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        with open(out / "peak_tariff_demo_trajectory.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 96 * 3 and {r["agent"] for r in rows} == {"site", "battery", "pcc"}  # a day of 15 min
        assert {r["converged"] for r in rows} == {"True"}
        assert "12 passed" in own_tests(package)


def test_powergrid_new_protocol_on_the_command_line(tmp_path, capsys):
    assert main(["new", "protocol", "PeakTariff", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "powergrid-peak-tariff" / "src" / "powergrid_peak_tariff" / "protocol.py").is_file()
    assert main(["new", "protocol", "PriceSignal", "--dir", str(tmp_path)]) == 2
    assert "a protocol 'price_signal' is already registered by powergrid-protocols" in capsys.readouterr().err

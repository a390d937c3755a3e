"""`powergrid new device NAME` creates a pip-installable plugin package whose tests pass as created."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from powergrid.cli import main
from powergrid.scaffold import snake_case
from tests.installs import installed


def test_snake_case():
    assert snake_case("HeatStorage") == "heat_storage"
    assert snake_case("EV2Grid") == "ev2_grid"  # a run of capitals is one word (f33 D9)


def test_bad_names_and_existing_folders_are_refused(tmp_path, capsys):
    assert main(["new", "device", "heat storage", "--dir", str(tmp_path)]) == 2
    assert "CamelCase" in capsys.readouterr().err
    assert main(["new", "device", "Boiler", "--dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["new", "device", "Boiler", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("powergrid: error: ") and err.count("\n") == 1


def test_a_name_already_registered_is_refused(tmp_path, capsys):
    # `powergrid new device ESS` made powergrid-e-s-s, whose own tests passed; once installed, every powergrid command
    # (even on scenarios without an ESS) failed: "device 'ESS' is registered twice" (/work/notes/R2s30/scaffold_taken.sh)
    assert main(["new", "device", "ESS", "--dir", str(tmp_path)]) == 2
    assert "a device 'ESS' is already registered by powergrid-devices" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def plugins_listed() -> list[list[str]]:
    """The words of each line of ``powergrid plugins`` (name, provider, version, summary…)."""
    listed = subprocess.run([sys.executable, "-m", "powergrid.cli", "plugins"], capture_output=True, text=True, check=True)
    return [line.split() for line in listed.stdout.splitlines()]


def own_tests(package: Path) -> str:
    """Run the tests of a scaffolded package from outside it; their output, asserting they passed."""
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
                           capture_output=True, text=True, cwd=package.parent, check=False)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    return tests.stdout


def test_scaffolded_package_installs_registers_and_passes_its_tests(tmp_path):
    assert main(["new", "device", "HeatStorage", "--dir", str(tmp_path)]) == 0
    package = tmp_path / "powergrid-heat-storage"
    assert "{{" not in "".join(p.read_text() for p in package.rglob("*") if p.is_file())
    with installed(package):
        assert any(words[:2] == ["HeatStorage", "powergrid-heat-storage"] for words in plugins_listed())
        assert " passed" in own_tests(package)

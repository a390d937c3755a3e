"""Paths given on the command line that cannot work are refused at once, with one line naming them (r42b F7):
a scenario "file" that is a FIFO or a device (refused by EnvConfig.from_yaml, for library callers too), an --out
folder this user cannot write to."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from powergrid.cli import main

posix = pytest.mark.skipif(os.name == "nt", reason="FIFOs and POSIX permission bits")


@posix
def test_validate_refuses_a_fifo_without_opening_it(tmp_path):
    # was: validate opened the FIFO and waited forever for a writer (the timeout guards that, not the time taken)
    fifo = tmp_path / "scenario.yaml"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "powergrid.cli", "validate", str(fifo)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == f"powergrid: error: {fifo}: expected a scenario YAML file, found a named pipe (FIFO)"


@posix
def test_the_library_refuses_a_fifo_too(tmp_path):
    # the check is EnvConfig.from_yaml's, so a script calling the library does not hang either
    fifo = tmp_path / "scenario.yaml"
    os.mkfifo(fifo)
    code = ("import sys\nfrom powergrid.config import EnvConfig\nfrom powergrid.errors import ConfigError\n"
            "try:\n    EnvConfig.from_yaml(sys.argv[1])\nexcept ConfigError as exc:\n    print(exc)")
    done = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == f"{fifo}: expected a scenario YAML file, found a named pipe (FIFO)"


@pytest.mark.parametrize("command", [["validate"], ["run"]])
def test_a_folder_or_a_device_is_not_a_scenario_file(tmp_path, capsys, command):
    for path, kind in ((tmp_path, "a folder"), (os.devnull, "a device")):
        assert main([*command, str(path)]) == 2
        assert f"{path}: expected a scenario YAML file, found {kind}" in capsys.readouterr().err


@posix
@pytest.mark.parametrize("command", ["run", "bench"])
@pytest.mark.parametrize("below", ["", "new/sub"])
def test_an_out_that_is_not_writable_is_one_usage_error_naming_it(tmp_path, capsys, below, command):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.access(locked, os.W_OK):
        pytest.skip("this user writes through permission bits (root)")
    if command == "bench":
        for pack in ("powergrid_devices", "powergrid_protocols", "powergrid_datasets"):  # the task's config needs them
            pytest.importorskip(pack)
    out = locked / below if below else locked
    # the scenario need not exist: --out is checked first, before the scenario is read or built
    args = ["run", str(tmp_path / "absent.yaml")] if command == "run" else ["bench", "peak_shaving", "--days", "1"]
    assert main([*args, "--out", str(out)]) == 2
    made = f" (where {out} would be created)" if below else ""
    assert (f"--out {out}: the folder {locked}{made} is not writable (read-only, or no write permission for this user); "
            f"expected a folder this user can write to") in capsys.readouterr().err
    assert list(locked.iterdir()) == []

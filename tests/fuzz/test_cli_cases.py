"""The CLI cases of the break test, with every pack installed: outputs only under --out, pack commands' errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from powergrid.cli import main
from tests.fuzz.conftest import CONFIGS

IEEE34 = next(c for c in CONFIGS if c.name == "ieee34_3mg.yaml").read_text()


def scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["../../../../tmp/x", "/tmp/x", "a/b"])
def test_a_name_that_is_a_path_writes_nothing(tmp_path, capsys, name):
    path = scenario(tmp_path, IEEE34.replace("name: ieee34_3mg", f"name: '{name}'"))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    assert "name: expected a name of letters, digits" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["scenario.yaml"]


def test_run_without_learned_agents_runs_the_internal_policies_and_says_so(tmp_path, capsys):
    text = IEEE34.replace("policy: learned", "policy: rule").replace("episode: 1d", "episode: 1h")
    out = tmp_path / "out"
    assert main(["run", str(scenario(tmp_path, text)), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "no agent has policy: learned; every agent runs its internal policy" in stdout
    assert "1 episode(s) × 4 steps, policy internal" in stdout
    rows = (out / "ieee34_3mg_trajectory.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 * 15  # header + 4 ticks × 15 agents


def test_a_caiso_dataset_never_downloads_unless_asked_and_sanitises_names(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("POWERGRID_OFFLINE", raising=False)
    head = IEEE34.split("datasets:")[0]
    hostile = head + ('datasets:\n  price: {provider: caiso, report: lmp, market: "/../../../../tmp/PWNED", '
                      'allow_url: "http://127.0.0.1:9/x"}\n')
    assert main(["run", str(scenario(tmp_path, hostile)), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "set download: true" in err
    assert not (tmp_path / "cache").exists() and not Path("/tmp/PWNED").exists()


def test_pack_commands_end_bad_input_with_one_line(tmp_path, capsys):
    for argv in (["hil", "serve", str(tmp_path / "missing.yaml")], ["hil", "serve"], ["datasets", "info", "caisso"],
                 ["datasets", "fetch", "synthetic"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("powergrid: error: "), (argv, err)


@pytest.mark.parametrize(("argv", "message"), [
    # these used to run (nan: unpaced, 'every nan s'; -3 steps: nothing; -1 writes/s: every write refused as busy),
    # plot 0 steps / nan minutes, or end in 'ValueError: negative dimensions are not allowed'
    (["hil", "serve", "{config}", "--speedup", "nan"], "argument --speedup: expected a finite number > 0, got 'nan'"),
    (["hil", "serve", "{config}", "--steps", "-3"], "argument --steps: expected an integer ≥ 1, got -3"),
    (["hil", "serve", "{config}", "--max-writes-per-s", "-1"], "argument --max-writes-per-s: expected a finite number > 0"),
    (["hil", "serve", "{config}", "--allow", "bogus"], "argument --allow: expected an IP address or network"),
    (["datasets", "plot", "synthetic", "--steps", "-5", "--out", "{out}/x.png"], "argument --steps: expected an integer ≥ 1"),
    (["datasets", "plot", "synthetic", "--step-minutes", "nan", "--out", "{out}/x.png"],
     "argument --step-minutes: expected a finite number > 0, got 'nan'"),
    (["run", "{config}", "--data-dir", "{out}/missing", "--out", "{out}"], "--data-dir {out}/missing: no such folder"),
    # a bad device name was 'ValueError: … (run with --debug for the traceback)', as if PowerGrid had failed
    (["new", "device", "None", "--dir", "{out}"], "powergrid: error: expected a class name in CamelCase"),
    # a 300-character name ended in 'OSError: [Errno 36] File name too long' (r42b F4)
    (["new", "device", "A" * 300, "--dir", "{out}"], "error: expected a class name of at most 64 characters, got 300"),
    (["new", "device", "Core", "--dir", "{out}"], "error: 'Core' would make a package named powergrid-core, which is PowerGrid's own"),
    # these made packages: StepContext's own test shadowed the StepContext it imports (TypeError at collection);
    # Ess next to ESS made two devices apart by case only
    (["new", "device", "StepContext", "--dir", "{out}"], "error: 'StepContext' is a name the generated code imports"),
    (["new", "device", "Ess", "--dir", "{out}"], "error: a device 'ESS' is already registered by powergrid-devices"),
])
def test_bad_numbers_and_names_on_the_command_line_are_one_line_errors(tmp_path, capsys, argv, message):
    config = str(next(c for c in CONFIGS if c.name == "hil_sunspec.yaml"))
    out = tmp_path / "out"
    argv = [a.format(config=config, out=out) for a in argv]
    if argv[:2] == ["hil", "serve"]:  # bounded: were the check lost, the server would stop after 3 s, not serve forever
        argv[3:3] = ["--duration", "3", "--port", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(out=out) in err, err
    assert not out.exists()  # nothing written


def test_a_symbolic_link_in_the_output_folder_is_not_written_through(tmp_path, capsys):
    # a link planted in a shared --out folder used to redirect the trajectory CSV onto its target
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "ieee34_3mg_trajectory.csv").symlink_to(precious)
    (out / "ieee34_3mg_network.png").symlink_to(precious)
    path = scenario(tmp_path, IEEE34.replace("episode: 1d", "episode: 1h"))
    for argv in (["run", str(path), "--out", str(out)], ["network", "plot", str(path), "--out", str(out)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is a symbolic link; refusing to write through it" in err, err
    assert precious.read_text() == "keep me\n"


@pytest.mark.parametrize(("params", "message"), [
    ("path: missing", "missing: no such file or folder (the dataset's `path` parameter)"),
    ("report: lmp", "no CAISO PRC_LMP data available locally"),
])
def test_validate_finds_a_dataset_without_data_at_its_place_and_never_downloads(tmp_path, capsys, monkeypatch, params,
                                                                                  message):
    # validate said ok; only the first reset of powergrid run failed, with no file or line
    monkeypatch.delenv("POWERGRID_OFFLINE", raising=False)
    monkeypatch.setenv("POWERGRID_CACHE_DIR", str(tmp_path / "cache"))
    text = IEEE34.split("datasets:")[0] + f"datasets:\n  price: {{provider: caiso, {params}}}\n"
    path = scenario(tmp_path, text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    line = text.count("\n")
    assert err.startswith(f"powergrid: error: {path}:{line} datasets.price: ") and message in err, err
    assert "POWERGRID_OFFLINE" not in os.environ and not (tmp_path / "cache").exists()


def test_a_dataset_without_data_at_reset_is_the_same_located_error(tmp_path, monkeypatch):
    # a file gone since the scenario was built (or a run without validate) failed at reset with no file or line
    from powergrid.env import MultiAgentPowerGridEnv
    from powergrid.errors import ConfigError

    monkeypatch.setenv("POWERGRID_OFFLINE", "1")
    text = IEEE34.split("datasets:")[0] + "datasets:\n  price: {provider: caiso, path: missing}\n"
    path = scenario(tmp_path, text)
    env = MultiAgentPowerGridEnv.from_config(path)
    with pytest.raises(ConfigError, match=rf"^{path}:{text.count(chr(10))} datasets\.price: .*missing: no such file"):
        env.reset(seed=0)

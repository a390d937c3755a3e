"""Wording of the --help of the commands that write files (r42b F7)."""

from __future__ import annotations

import pytest

from powergrid.cli import main


@pytest.mark.parametrize("command", [["run"], ["network", "plot"]])
def test_help_names_the_default_output_folder(command, capsys):
    """Without --out, run and network plot write to ./runs; --help did not say so."""
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    assert "(default: ./runs)" in " ".join(capsys.readouterr().out.split())


def test_a_plugins_warning_names_its_file_and_line_without_a_second_prefix(tmp_path, monkeypatch, capsys):
    """r44b F5: a unit typo in a plugin's Params printed 'powergrid: warning: powergrid: unit 'kWhh': …', without the
    file:line that Python's own warning shows."""
    import textwrap

    import powergrid

    monkeypatch.setattr(powergrid.plugins._LOCAL, "records", list(powergrid.plugins._LOCAL.records))
    powergrid.plugins._clear_cache()
    folder = tmp_path / "plugins"
    folder.mkdir()
    plugin = folder / "unit_typo_r44b.py"
    plugin.write_text(textwrap.dedent("""\
        import attrs

        import powergrid
        from powergrid.devices import Device
        from powergrid.params import quantity


        @attrs.frozen
        class TypoParams:
            capacity_mwh: float = quantity("kWhh", 0.05, gt=0)


        @powergrid.register_device("UnitTypoR44b")
        class UnitTypo(Device):
            Params = TypoParams

            def step(self, action, ctx):
                self.p_mw = 0.0
    """))
    config = tmp_path / "typo.yaml"
    config.write_text("name: typo\nnetwork: {type: case33bw}\nagents:\n  - {id: x, type: UnitTypoR44b, bus: 5}\n")
    monkeypatch.setenv("POWERGRID_PLUGIN_PATH", str(folder))
    try:
        assert main(["validate", str(config)]) == 0
    finally:
        powergrid.plugins._clear_cache()
    err = capsys.readouterr().err
    assert f"powergrid: warning: {plugin}:10: unit 'kWhh': 'kWhh' is not a known unit symbol" in err, err
    assert "powergrid: warning: powergrid:" not in err


def test_a_reader_that_leaves_is_not_an_error():
    """r46a F6: ``powergrid plugins | head -1`` ended with 'powergrid: error: BrokenPipeError' and exit code 2 (or
    Python's 'Exception ignored' at exit). A pipe whose reader is gone before the first write: quiet, 141."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)
    try:
        out = subprocess.run([sys.executable, "-c", "import sys; from powergrid.cli import main; sys.exit(main(['plugins']))"],
                             stdout=write, stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write)
    assert (out.returncode, out.stderr) == (141, "")


def test_network_plot_without_matplotlib_is_one_line_like_run_plot(tmp_path, monkeypatch, capsys):
    """r46a F10: 'powergrid: error: ImportError: plots need matplotlib: … (run with --debug for the traceback)'."""
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what Python does for a package that is not there
    assert main(["network", "plot", "case33bw", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == 'powergrid: error: network plot needs matplotlib: pip install "powergrid-core[plot]"\n'
    assert not (tmp_path / "out").exists()

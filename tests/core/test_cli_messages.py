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

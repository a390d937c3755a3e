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

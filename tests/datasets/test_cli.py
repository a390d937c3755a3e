"""``powergrid datasets list | info | plot | fetch`` through ``powergrid``'s main (errors: one line, exit 2)."""

from __future__ import annotations

import pytest

from powergrid.cli import main


def datasets_main():
    return lambda argv: main(["datasets", *argv])


def test_list(capsys):
    assert datasets_main()(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("caiso", "ercot", "nyiso", "simbench", "pvlib", "synthetic"):
        assert name in out
    assert "powergrid-datasets 0.1.0" in out


def test_info_caiso(capsys):
    assert datasets_main()(["info", "caiso"]) == 0
    out = capsys.readouterr().out
    assert "roles: load, price, solar, wind" in out
    for param in ("area", "node", "lmp_type", "hub", "path", "normalize", "max_gap_hours"):
        assert f"  {param}" in out


def test_info_unknown_name(capsys):
    assert datasets_main()(["info", "caisso"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'caiso'" in err and err.startswith("powergrid: error: ") and err.count("\n") == 1


def test_plot_writes_a_png(tmp_path, capsys, caiso_dir):
    pytest.importorskip("matplotlib", reason="plotting needs the plot extra (matplotlib)")
    out = tmp_path / "x.png"
    code = datasets_main()(["plot", "caiso", "--role", "load", "-p", "area=AVA", "-p", f"path={caiso_dir}",
                            "--steps", "96", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


def test_plot_reports_missing_data(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="plotting needs the plot extra (matplotlib)")
    code = datasets_main()(["plot", "caiso", "--role", "load", "--out", str(tmp_path / "y.png")])
    assert code == 2
    assert "POWERGRID_DATA_DIR" in capsys.readouterr().err
    assert not (tmp_path / "y.png").exists()


def test_plot_without_matplotlib(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    code = datasets_main()(["plot", "synthetic", "--role", "load", "--out", str(tmp_path / "z.png")])
    assert code == 2
    assert "pip install 'powergrid-datasets[plot]'" in capsys.readouterr().err


def test_params_are_read_like_scenario_values(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="plotting needs the plot extra (matplotlib)")
    # -p scale=1e1 used to be the text '1e1' (PyYAML) and refused as 'expected a number > 0'
    out = tmp_path / "x.png"
    assert datasets_main()(["plot", "synthetic", "--steps", "24", "-p", "scale=1e1", "-p", "start=", "--out", str(out)]) == 0
    assert out.is_file()
    assert datasets_main()(["plot", "synthetic", "-p", "scale=!!python/object/apply:os.system ['true']",
                            "--out", str(out)]) == 2
    assert "--param scale:1: invalid YAML: unsupported tag" in capsys.readouterr().err


def test_plot_out_must_name_a_png_file_and_nothing_lands_beside_it(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="plotting needs the plot extra (matplotlib)")
    # --out FOLDER wrote FOLDER.png beside the folder and --out NAME wrote NAME.png (matplotlib adds the suffix)
    folder = tmp_path / "out"
    folder.mkdir()
    assert datasets_main()(["plot", "synthetic", "--steps", "24", "--out", str(folder)]) == 2
    assert f"--out {folder} is a folder; expected the PNG file to write" in capsys.readouterr().err
    assert datasets_main()(["plot", "synthetic", "--steps", "24", "--out", str(tmp_path / "noext")]) == 2
    assert "expected a file name ending in .png" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and not any(folder.iterdir())
    # a missing folder is created (it was an [Errno 2] after the data were read); the message names the file written
    out = tmp_path / "a" / "b" / "x.png"
    assert datasets_main()(["plot", "synthetic", "--steps", "24", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {out} (24 values)" in capsys.readouterr().out
    # a file where the folder would be, and a symbolic link at the name: one error each, nothing written
    assert datasets_main()(["plot", "synthetic", "--steps", "24", "--out", str(out / "y.png")]) == 2
    assert f"{out} is a file; expected a folder" in capsys.readouterr().err
    (tmp_path / "link.png").symlink_to(tmp_path / "elsewhere.png")
    assert datasets_main()(["plot", "synthetic", "--steps", "24", "--out", str(tmp_path / "link.png")]) == 2
    assert "is a symbolic link; refusing to write through it" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere.png").exists()

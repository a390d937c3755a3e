"""A scenario's bad dataset through ``powergrid validate`` and ``run``: one error at the role whose data are bad."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from powergrid.cli import main

pytest.importorskip("powergrid_devices", reason="the battery comes with powergrid-devices")

SITE = """\
name: site
network: {type: case33bw}
time: {physics: 1h, episode: 4h}
agents:
  - {id: site, kind: grid, protocol: {type: none}, children: [battery, pcc]}
  - {id: battery, type: ESS, bus: 5, policy: price_arbitrage, params: {p_max_mw: 0.3, capacity_mwh: 1.0}}
  - {id: pcc, type: GridConnection, bus: 0, params: {element: ext_grid}}
datasets:
  load: {provider: caiso_2023}
"""


def _both(tmp_path, capsys, config):
    """validate's and run's stderr (each must fail with exit code 2)."""
    assert main(["validate", str(config)]) == 2
    validate = capsys.readouterr().err
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    return validate, capsys.readouterr().err


def test_a_bad_price_file_is_blamed_on_price_not_on_load(tmp_path, capsys):
    # r40 F2: load's episode read the price file to find the days both roles cover and raised its error, which
    # the run then reported at datasets.load (line 9), a role that has no file
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    config = tmp_path / "site.yaml"
    config.write_text(SITE + "  price: {provider: caiso, path: bad.csv}\n")
    for err in _both(tmp_path, capsys, config):
        assert err.splitlines() == [f"powergrid: error: {config}:10 datasets.price: {tmp_path / 'bad.csv'}: "
                                    f"not an OASIS PRC_LMP report: no LMP_TYPE column"], err


def test_offline_a_download_dataset_not_in_the_cache_fails_validate_and_creates_nothing(tmp_path, capsys):
    # r40 F5: with POWERGRID_OFFLINE=1 (set by the conftest) validate skipped `download: true` and said ok; the run
    # failed, after creating the cache folder and its checksums.json.lock
    config = tmp_path / "site.yaml"
    config.write_text(SITE + "  price: {provider: caiso, download: true, year: 2023}\n")
    for err in _both(tmp_path, capsys, config):
        assert err.startswith(f"powergrid: error: {config}:10 datasets.price: no CAISO PRC_LMP data available "
                              f"locally") and "downloads are off (POWERGRID_OFFLINE=1)" in err, err
    cache = Path(os.environ["POWERGRID_CACHE_DIR"])
    assert sorted(cache.rglob("*")) == []


def test_a_cache_folder_that_cannot_be_made_is_reported_at_the_dataset(tmp_path, capsys, monkeypatch):
    # r46a F4: the cache errors (folder not writable, cannot be created) were bare DatasetErrors, so a run's first
    # reset printed them without the scenario file, line and YAML path every other dataset failure has
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("POWERGRID_CACHE_DIR", str(tmp_path / "file"))
    monkeypatch.setenv("POWERGRID_OFFLINE", "0")
    monkeypatch.setenv("POWERGRID_CAISO_URL", "http://127.0.0.1:9/SingleZip")  # never asked: the folder fails first
    config = tmp_path / "site.yaml"
    config.write_text(SITE + "  price: {provider: caiso, download: true, year: 2023}\n")
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (f"powergrid: error: {config}:10 datasets.price: cache folder {tmp_path / 'file'}/caiso "
                                       f"cannot be created (Not a directory); set POWERGRID_CACHE_DIR to a writable folder\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "site.yaml"]  # r46a F8: no empty --out folder left

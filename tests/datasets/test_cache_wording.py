"""r46a F10's wording items: what a dataset error says comes first, then what to do for the command used.

(a) ``powergrid datasets fetch`` offline pointed at ``datasets.load.path in the scenario YAML`` (no scenario there);
(b) a corrupt cached file offline led with the `path`/POWERGRID_DATA_DIR advice and gave its cause last;
(c) an unreadable ``checksums.json`` read "not recorded in checksums.json";
(d) an online ``powergrid validate`` said only "ok" for a ``download: true`` dataset whose cache it did not check.
Core alone: no powergrid-devices needed (the scenario's one device is defined here)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import powergrid
from powergrid.cli import main
from powergrid.devices import Device

FETCH = ["datasets", "fetch", "caiso", "--role", "load", "-p", "area=AVA", "-p", "year=2023"]
SITE = """\
name: site
network: {type: case33bw}
time: {physics: 1h, episode: 4h}
agents:
  - {id: unit, type: IdleUnitR47, bus: 5}
datasets:
  price: {provider: caiso, download: true, year: 2023}
"""


def _fetch_error(capsys) -> str:
    assert main(FETCH) == 2
    return capsys.readouterr().err


def _january(capsys) -> tuple[Path, str]:
    """The cache file and URL of January's query (the first one fetch asks for), named by fetch's offline error."""
    name, url = re.search(r"(\S+\.zip) is not in the cache .* from (https://\S+)\. To work", _fetch_error(capsys)).groups()
    return Path(os.environ["POWERGRID_CACHE_DIR"]) / "caiso" / name, url


def test_a_fetch_offline_says_to_allow_downloads_not_to_edit_a_scenario(capsys):
    err = _fetch_error(capsys)
    assert "scenario" not in err, err
    assert err.startswith("powergrid: error: no CAISO SLD_FCST data available locally and the cache cannot supply it: "
                          "20230101_20230201_SLD_FCST_ACTUAL_AVA_"), err
    assert re.search(r"\.zip is not in the cache \S+ and downloads are off \(POWERGRID_OFFLINE=1\): unset "
                     r"POWERGRID_OFFLINE \(or set it to 0\) to download it from https://oasis\.caiso\.com/", err), err


def test_a_corrupt_cached_file_offline_gives_its_cause_first(capsys):
    target, url = _january(capsys)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"PK\x03\x04 cut")
    (target.parent / "checksums.json").write_text(json.dumps({target.name: {"sha256": "00" * 32, "size": 1, "url": url}}))
    err = _fetch_error(capsys)
    cause = (f"cached {target}: its size or SHA-256 differs from checksums.json (incomplete or corrupt); downloads are "
             f"off (POWERGRID_OFFLINE=1), so it is kept: delete it, or unset POWERGRID_OFFLINE (or set it to 0) to "
             f"fetch it again from https://")
    assert cause in err, err
    assert err.index("incomplete or corrupt") < err.index("`path` parameter"), err
    assert target.is_file()


def test_an_unreadable_checksums_json_is_named_unreadable_not_unrecorded(capsys):
    target, _ = _january(capsys)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: intact
    manifest = target.parent / "checksums.json"
    manifest.write_text("{ truncated")
    err = _fetch_error(capsys)
    assert "not recorded" not in err, err
    assert (f"cached {target}: {manifest} is unreadable (not JSON: Expecting property name enclosed in double quotes: "
            f"line 1 column 3 (char 2)), so it cannot be verified") in err, err
    manifest.write_text("[]")
    assert f"cached {target}: {manifest} is unreadable (expected a JSON object, got list)" in _fetch_error(capsys)


def test_an_online_validate_says_the_cache_was_not_checked(tmp_path, capsys, monkeypatch):
    @powergrid.register_device("IdleUnitR47")
    class IdleUnit(Device):
        """0 MW, no action (the conftest removes it after the test)."""

        def step(self, action, ctx):
            self.p_mw = 0.0

    config = tmp_path / "site.yaml"
    config.write_text(SITE)
    monkeypatch.delenv("POWERGRID_OFFLINE")
    assert main(["validate", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("; datasets.price: download: true, the cache not checked (POWERGRID_OFFLINE=1 checks it)"), out
    assert sorted(Path(os.environ["POWERGRID_CACHE_DIR"]).rglob("*")) == []  # nothing downloaded or created
    monkeypatch.setenv("POWERGRID_OFFLINE", "1")
    assert main(["validate", str(config)]) == 2
    assert "not checked" not in capsys.readouterr().out

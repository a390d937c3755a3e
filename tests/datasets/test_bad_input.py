"""Bad report files: each gives one clear error that names the file."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest

from powergrid.params import build_params
from powergrid_datasets import caiso
from powergrid_datasets.errors import DataFileError, DataUnavailableError
from powergrid_datasets.providers import CaisoProvider

HEADER = "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,TAC_AREA_NAME,MARKET_RUN_ID,MW\n"
ROW = "2023-01-01T08:00:00-00:00,2023-01-01T09:00:00-00:00,2023-01-01,1,AVA,ACTUAL,1183\n"


def test_a_file_of_another_report(caiso_dir, tmp_path):
    price = sorted((caiso_dir / "price").glob("*.zip"))[0]
    bad = tmp_path / "20230101_20230201_SLD_FCST_ACTUAL_renamed.zip"
    shutil.copy(price, bad)
    with pytest.raises(DataFileError, match=r"renamed\.zip.*PRC_LMP report, not SLD_FCST") as err:
        caiso.read_file(bad, "load")
    assert str(bad) in str(err.value)


def test_a_missing_column(tmp_path):
    bad = tmp_path / "x_SLD_FCST_y.csv"
    bad.write_text(HEADER.replace(",MW\n", ",VALUE\n") + ROW)
    with pytest.raises(DataFileError, match=r"x_SLD_FCST_y\.csv.*missing column\(s\) MW"):
        caiso.read_file(bad, "load")


def test_an_empty_file(tmp_path):
    empty = tmp_path / "empty_SLD_FCST_.csv"
    empty.write_text("")
    with pytest.raises(DataFileError, match=r"empty_SLD_FCST_\.csv: empty file"):
        caiso.read_file(empty, "load")
    header_only = tmp_path / "header_SLD_FCST_.csv"
    header_only.write_text(HEADER)
    with pytest.raises(DataFileError, match=r"header_SLD_FCST_\.csv.*no rows"):
        caiso.read_file(header_only, "load")


def test_a_corrupt_zip(caiso_dir, tmp_path):
    good = sorted((caiso_dir / "load").glob("*.zip"))[0]
    raw = good.read_bytes()
    truncated = tmp_path / "truncated_SLD_FCST_.zip"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFileError, match=r"truncated_SLD_FCST_\.zip: corrupt zip"):
        caiso.read_file(truncated, "load")
    # intact directory, damaged data: the CRC check catches it
    flipped = bytearray(raw)
    flipped[len(raw) // 3] ^= 0xFF
    damaged = tmp_path / "damaged_SLD_FCST_.zip"
    damaged.write_bytes(bytes(flipped))
    with pytest.raises(DataFileError, match=r"damaged_SLD_FCST_\.zip"):
        caiso.read_file(damaged, "load")


def test_an_oasis_error_reply(tmp_path):
    reply = tmp_path / "reply_SLD_FCST_.zip"
    with zipfile.ZipFile(reply, "w") as zf:
        zf.writestr("INVALID_REQUEST.xml", "<m:ERR_CODE>1015</m:ERR_CODE><m:ERR_DESC>GroupZip DownLoad is in "
                    "Processing, Please submit request after Sometime.</m:ERR_DESC>")
    with pytest.raises(DataFileError, match=r"reply_SLD_FCST_\.zip.*no CSV.*Please submit request"):
        caiso.read_file(reply, "load")


def test_a_bad_file_in_a_folder_names_that_file(caiso_dir, tmp_path):
    folder = tmp_path / "caiso"
    folder.mkdir()
    for z in sorted((caiso_dir / "load").glob("*.zip"))[:2]:
        shutil.copy(z, folder)
    (folder / "20230301_20230401_SLD_FCST_ACTUAL_x.zip").write_bytes(b"PK\x03\x04 not really")
    provider = CaisoProvider(build_params(CaisoProvider.Params, {"area": "AVA", "path": str(folder)}), "load")
    with pytest.raises(DataFileError, match=r"20230301_20230401_SLD_FCST_ACTUAL_x\.zip"):
        provider.episode(24, 60, np.random.default_rng(0))


def test_no_data_offline_names_the_env_var_and_the_param():
    provider = CaisoProvider(build_params(CaisoProvider.Params, {"area": "AVA"}), "load")
    with pytest.raises(DataUnavailableError) as err:
        provider.episode(24, 60, np.random.default_rng(0))
    assert "POWERGRID_DATA_DIR" in str(err.value) and "`path`" in str(err.value)
    assert "download: true" in str(err.value)  # never downloaded unless asked


def test_a_path_that_does_not_exist(tmp_path):
    provider = CaisoProvider(build_params(CaisoProvider.Params, {"path": str(tmp_path / "nope")}), "load")
    with pytest.raises(DataUnavailableError, match=r"nope: no such file or folder \(the dataset's `path`"):
        provider.episode(24, 60, np.random.default_rng(0))


def test_a_data_dir_or_cache_dir_that_is_not_a_folder_is_named(tmp_path, monkeypatch):
    # POWERGRID_DATA_DIR set to a missing folder gave 'set ... the POWERGRID_DATA_DIR environment variable'
    # (it was set) and the example 'datasets.load.path' for every role; a cache dir under a file gave a bare
    # NotADirectoryError
    from powergrid_datasets import cache
    from powergrid_datasets.errors import DatasetError
    from powergrid_datasets.providers import ErcotProvider

    monkeypatch.setenv("POWERGRID_DATA_DIR", str(tmp_path / "missing"))
    for provider in (CaisoProvider(build_params(CaisoProvider.Params, {}), "price"),
                     ErcotProvider(build_params(ErcotProvider.Params, {}), "load")):
        with pytest.raises(DataUnavailableError, match=rf"POWERGRID_DATA_DIR={tmp_path / 'missing'}: no such folder"):
            provider.episode(24, 60, np.random.default_rng(0))
    monkeypatch.delenv("POWERGRID_DATA_DIR")
    with pytest.raises(DataUnavailableError, match=r"`path` parameter \(datasets\.price\.path in the scenario YAML\)"):
        CaisoProvider(build_params(CaisoProvider.Params, {}), "price").episode(24, 60, np.random.default_rng(0))
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("POWERGRID_CACHE_DIR", str(tmp_path / "file"))
    with pytest.raises(DatasetError, match=r"cache folder .*file/caiso cannot be created .*set POWERGRID_CACHE_DIR"):
        cache.cache_dir("caiso")


@pytest.mark.skipif(not __import__("os").path.exists("/dev/zero"), reason="needs a device file")
def test_a_path_that_is_neither_file_nor_folder_is_named_so():
    # r46a F10: -p path=/dev/zero said 'no such file or folder' (it exists); never read (it would not end)
    provider = CaisoProvider(build_params(CaisoProvider.Params, {"path": "/dev/zero"}), "load")
    with pytest.raises(DataUnavailableError, match=r"^/dev/zero: not a regular file or folder$"):
        provider.episode(24, 60, np.random.default_rng(0))

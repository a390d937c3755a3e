"""Data files cut short or built to inflate: one error naming the file (zip member) and what is wrong, never a wrong
number read silently nor the whole memory used up."""

from __future__ import annotations

import struct
import tracemalloc
import zipfile

import pytest

from powergrid_datasets import caiso, files
from powergrid_datasets.errors import DataFileError

from .test_hostile_files import load_csv, provider, write


def test_a_csv_cut_inside_its_last_row_names_file_and_line(tmp_path):
    """The last row cut before its last fields ("…,AVA,ACT"): its missing cells were padded and the row read."""
    text = load_csv("2023-01-01", 48).rstrip("\n")
    path = write(tmp_path, "x_SLD_FCST_cut.csv", text[: text.rfind(",") - 3])
    with pytest.raises(DataFileError, match=r"x_SLD_FCST_cut.csv: line 49 has 6 of the header's 7 fields: the file is cut"):
        provider("load", path).raw_series()


@pytest.mark.parametrize("cut_after", [2, 5])
def test_a_row_missing_fields_mid_file_names_the_zip_member_and_line(tmp_path, cut_after):
    lines = load_csv("2023-01-01", 48).splitlines()
    lines[10] = ",".join(lines[10].split(",")[:cut_after])
    path = tmp_path / "x_SLD_FCST.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("inner.csv", "\n".join(lines) + "\n")
    with pytest.raises(DataFileError, match=rf"x_SLD_FCST.zip \(inner.csv\): line 11 has {cut_after} of the header's 7 fields"):
        provider("load", path).raw_series()


def test_quoted_fields_are_counted_as_the_csv_reader_does(tmp_path):
    """A quoted cell holding a comma is one field; a quoted file cut short is still found."""
    text = load_csv("2023-01-01", 48).replace(",x,1,", ',"x,y",1,')
    path = write(tmp_path, "x_SLD_FCST_q.csv", text)
    assert len(provider("load", path).raw_series()) == 48
    write(tmp_path, "x_SLD_FCST_q.csv", text.rstrip("\n")[:-10])
    with pytest.raises(DataFileError, match=r"line 49 has 6 of the header's 7 fields"):
        provider("load", path).raw_series()


def test_the_raw_january_load_cut_inside_a_number_is_refused(caiso_dir, tmp_path):
    """The review's case: the real SLD_FCST CSV with its last line cut inside MW gave 12.0 MW for 1,298 MW."""
    zip_path = sorted((caiso_dir / "load").glob("20230101_*.zip"))[0]
    with zipfile.ZipFile(zip_path) as zf:
        raw = zf.read(zf.namelist()[0]).rstrip(b"\n")
    path = tmp_path / "20230101_20230201_SLD_FCST_ACTUAL_cut.csv"
    path.write_bytes(raw[: raw.rfind(b",ACTUAL,") - 1])  # "…,SYS_FCST_ACT_MW,3.5,8" for 89 MW
    lines = raw.count(b"\n") + 1
    with pytest.raises(DataFileError, match=rf"_cut.csv: line {lines} has \d+ of the header's \d+ fields"):
        caiso.read_file(path, "SLD_FCST")


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    """A member of 65 MiB of blanks in a zip of about 65 kB (1,000×) is refused from its declared size alone, in a
    folder scan too; the same blanks at a ratio within the limit are read (and found to hold no rows)."""
    path = tmp_path / "bomb" / "x_SLD_FCST_b.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("inner.csv", "w") as fh:
        fh.write((load_csv("2023-01-01", 1).splitlines()[0] + "\n").encode())
        for _ in range(65):
            fh.write(b" " * (1 << 20))
    message = r"x_SLD_FCST_b.zip: member inner.csv would inflate to 68,157,\d+ bytes, [\d,]+× its [\d,]+ compressed bytes"
    with pytest.raises(files.CorruptFileError, match=message):
        provider("load", path).raw_series()
    with pytest.raises(files.CorruptFileError, match=message):
        provider("load", path.parent).raw_series()
    small = tmp_path / "x_SLD_FCST_small.zip"
    with zipfile.ZipFile(small, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("inner.csv", load_csv("2023-01-01", 1).splitlines()[0] + "\n" + " " * (1 << 20))
    assert zf.getinfo("inner.csv").file_size > files.MAX_INFLATE * zf.getinfo("inner.csv").compress_size
    with pytest.raises(DataFileError, match="has a header but no rows"):
        provider("load", small).raw_series()


@pytest.mark.parametrize("bad_values", ["error", "missing"])
def test_a_bad_timestamp_is_not_called_a_bad_number(tmp_path, bad_values):
    """A cell of the time column that is not a timestamp is an error whatever bad_values says; its message said
    "set bad_values: missing to treat bad numbers as missing", which does not help."""
    text = load_csv("2023-01-01", 48).replace("\n2023-01-01T05:00:00", "\n2023-01-0lT05:00:00", 1)
    path = write(tmp_path, "x_SLD_FCST_t.csv", text)
    with pytest.raises(DataFileError, match=r"line 7, column INTERVALSTARTTIME_GMT: not a timestamp \(1 such cell\(s\); "
                                            r"expected ISO 8601 such as 2023-01-01T08:00:00-00:00\)$"):
        caiso.read_file(path, "SLD_FCST", bad_values=bad_values)


def _stray_quote_zip(tmp_path, rows: int):
    """A zip of a load CSV whose line 6 opens a quote that is never closed (the rest of the file is one field)."""
    lines = load_csv("2023-01-01", rows).splitlines()
    lines[5] = lines[5].replace(",x,", ',"x,')
    path = tmp_path / "x_SLD_FCST.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("inner.csv", "\n".join(lines) + "\n")
    return path


def test_a_stray_quote_names_the_zip_member_and_the_line_it_opens_on(tmp_path):
    """A quote never closed swallows the rest of the file: past 128 kB the CSV reader refuses the field (a raw
    ``_csv.Error`` naming no file escaped), below it the swallowed row is short of fields."""
    with pytest.raises(DataFileError, match=r"x_SLD_FCST.zip \(inner.csv\): line 6: cannot split the CSV into rows \(field larger"):
        provider("load", _stray_quote_zip(tmp_path, 2880)).raw_series()
    with pytest.raises(DataFileError, match=r"x_SLD_FCST.zip \(inner.csv\): line 6 has 3 of the header's 7 fields"):
        provider("load", _stray_quote_zip(tmp_path, 59)).raw_series()


def test_a_quoted_header_name_holding_a_comma_is_one_field(tmp_path):
    """The header is split as the rows are: ``"A,B"`` is one column, not two (every row was called short)."""
    lines = load_csv("2023-01-01", 48).splitlines()
    path = write(tmp_path, "x_SLD_FCST_h.csv", "\n".join(['"A,B",' + lines[0]] + ["1," + r for r in lines[1:]]) + "\n")
    assert len(provider("load", path).raw_series()) == 48
    assert files.read_header(path)[:2] == ["A,B", "INTERVALSTARTTIME_GMT"]


def test_a_zip_member_whose_header_understates_its_size_is_not_inflated_whole(tmp_path):
    """The bomb guard reads the declared size; a header declaring 1 MiB for 80 MiB of blanks passed it and the member
    was inflated whole in memory before zipfile cut it to the declared size (a 1 MB zip of this kind took 2.2 GB).
    Read in chunks, reading stops at the declared size: the CRC then fails, and the memory stays small."""
    path = tmp_path / "x_SLD_FCST_lie.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("inner.csv", "w") as fh:
        fh.write((load_csv("2023-01-01", 1).splitlines()[0] + "\n").encode())
        for _ in range(80):
            fh.write(b" " * (1 << 20))
    true_size, declared = zf.getinfo("inner.csv").file_size, 1 << 20
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22), (b"PK\x07\x08", 12)):  # central, local, descriptor
        at = data.find(signature)
        if at >= 0 and struct.unpack_from("<I", data, at + offset)[0] == true_size:
            struct.pack_into("<I", data, at + offset, declared)
    path.write_bytes(bytes(data))
    assert zipfile.ZipFile(path).getinfo("inner.csv").file_size == declared
    tracemalloc.start()
    try:
        with pytest.raises(files.CorruptFileError, match=r"x_SLD_FCST_lie.zip \(inner.csv\): corrupt file, cannot read it \(Bad CRC-32"):
            provider("load", path).raw_series()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak:,} bytes allocated at the peak for a member declared as {declared:,} bytes"

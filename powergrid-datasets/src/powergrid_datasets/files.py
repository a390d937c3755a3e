"""Reading report files as ISOs serve them: a CSV, an Excel workbook (``.xlsx``), or a zip holding them.

A workbook is read sheet by sheet (each sheet a table whose first row is the
header) with ``python-calamine``, the ``xlsx`` extra of this package; its cells
keep their Excel types (text, number, date, time).
"""

from __future__ import annotations

import csv
import io
import warnings
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from powergrid_datasets.errors import DataFileError

DATA_SUFFIXES = (".zip", ".csv", ".xlsx")
#: Cell texts that mean "no value" (besides empty cells).
NA_TEXT = ("", "NA", "N/A", "NAN", "NULL", "NONE", "-")
TABLE_SUFFIXES = (".csv", ".xlsx")
#: A zip member that would inflate to more than ``MAX_INFLATE`` times its compressed size and more than
#: ``INFLATE_FLOOR`` bytes is refused before it is read (a zip bomb: a 0.5 MB zip of blanks took 1.2 GB of memory).
#: OASIS's monthly CSVs inflate 12.8–20.3× to at most 4 MB; deflate reaches about 1,000× on repeated bytes.
MAX_INFLATE = 100
INFLATE_FLOOR = 64 << 20
#: Bytes inflated per read: a member is read in chunks, so that one whose header lies about its size is cut at the
#: declared size (which the guard above checked) instead of being inflated whole first.
READ_CHUNK = 1 << 20
XLSX_HINT = "reading .xlsx files needs python-calamine: pip install 'powergrid-datasets[xlsx]'"


class MissingReaderError(DataFileError):
    """A workbook found, but the optional package that reads it is not installed."""


class CorruptFileError(DataFileError):
    """A data file that cannot be read at all: 0 bytes, a damaged or truncated zip or workbook."""


def read_header(path: Path) -> list[str]:
    """The column names of a CSV, of a workbook's first sheet, or of the first table in a zip (an empty or corrupt file raises)."""
    name, opener, is_book = _open_members(path)[0]
    if is_book:
        sheets = _sheets(path, name, opener, header_only=True)
        return [str(c).strip() for c in sheets[0][1]] if sheets else []
    try:
        with opener() as fh:
            line = fh.readline().decode("utf-8-sig", errors="replace").strip()
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise CorruptFileError(path, f"corrupt file, cannot read {name} ({exc}); delete it or fetch it again") from None
    if not line:
        raise DataFileError(path, f"{name} is empty (no header line)")
    return _header_fields(line)


def files_of_report(location: Path, report: str, detect: Callable[[list[str]], str | None]) -> list[Path]:
    """The data files at ``location`` (a file, or a folder searched for CSVs and zips) whose header
    ``detect`` recognises as ``report``. Files of other kinds (a zip of PDFs, an empty header) are passed
    over; a damaged file (0 bytes, a corrupt or truncated zip or workbook), which may be one of the
    report's, raises naming it, as does a workbook without its reader."""
    if location.is_file():
        return [location]
    found = []
    for path in list_data_files(location, [""]):
        try:
            if detect(read_header(path)) == report:
                found.append(path)
        except (MissingReaderError, CorruptFileError):
            raise
        except DataFileError:
            continue
    return found


def report_check(detect: Callable[[list[str]], str | None], label: str, expected: str) -> Callable[[list[str]], None]:
    """A header check that rejects a file ``detect`` recognises as another report of the same ISO."""

    def check(columns: list[str]) -> None:
        found = detect(columns)
        if found is not None and found != expected:
            raise ValueError(f"this is {label} {found} report, not {expected}")

    return check


def read_csv_members(path: Path, *, required: Sequence[str], check_header: Callable[[list[str]], None] | None = None,
                     dtype: dict | str | None = None, usecols: Sequence[str] | Callable[[str], bool] | None = None) -> pd.DataFrame:
    """Every table of ``path`` (a ``.csv``, an ``.xlsx`` sheet by sheet, or a ``.zip`` of them) concatenated.

    Each table's header must contain ``required``; ``check_header(columns)`` may
    raise ``ValueError`` (e.g. "this is another report") which is reported with the
    file (and sheet) name. ``dtype`` and ``usecols`` apply to CSVs; workbook cells
    keep their Excel types (str, float, datetime, date, time) in object columns.
    """
    parts = []
    for name, opener, is_book in _open_members(path):
        where = path if name == path.name else f"{path} ({name})"
        if is_book:
            for sheet, header, rows in _sheets(path, name, opener):
                at = f"{where} sheet {sheet!r}"
                _check_columns(at, header, required, check_header)
                frame = pd.DataFrame(rows, columns=header, dtype=object)
                if frame.empty:
                    raise DataFileError(at, "the sheet has a header but no rows")
                parts.append(frame)
            continue
        try:
            with opener() as fh:
                raw = _read_all(fh)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise CorruptFileError(where, f"corrupt file, cannot read it ({exc}); delete it or fetch it again") from None
        text_head = raw[:4096].decode("utf-8-sig", errors="replace").splitlines()
        if not raw.strip() or not text_head or not text_head[0].strip():
            raise DataFileError(where, "empty file (no header line)")
        columns = _header_fields(text_head[0])
        _check_columns(where, columns, required, check_header)
        _check_field_counts(where, raw, len(columns))
        try:
            frame = pd.read_csv(io.BytesIO(raw), usecols=usecols if usecols is None or callable(usecols) else list(usecols), dtype=dtype,
                                encoding="utf-8-sig", skipinitialspace=True)
        except (ValueError, pd.errors.ParserError) as exc:
            raise DataFileError(where, f"cannot parse the CSV: {exc}") from None
        if frame.empty:
            raise DataFileError(where, "the file has a header but no rows")
        frame.columns = [str(c).strip() for c in frame.columns]
        parts.append(frame)
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def row_place(path: Path, row: int) -> tuple[str, str]:
    """Where data row ``row`` (0-based) of :func:`read_csv_members`' frame of ``path`` is: the file (with its zip
    member or sheet) and ``"line N"`` of a CSV or ``"row N"`` of a sheet (1-based, the header and the blank lines
    the readers pass over counted). Re-reads the file: for error messages only."""
    path = Path(path)
    for name, opener, is_book in _open_members(path):
        where = str(path) if name == path.name else f"{path} ({name})"
        if is_book:
            from python_calamine import CalamineWorkbook  # present: the frame was read with it

            with opener() as fh:
                book = CalamineWorkbook.from_filelike(io.BytesIO(_read_all(fh)))
            for sheet in book.sheet_names:
                filled = [n for n, r in enumerate(book.get_sheet_by_name(sheet).to_python(skip_empty_area=False), 1)
                          if any(c not in ("", None) for c in r)]
                if row < len(filled) - 1:  # the first filled row is the header
                    return f"{where} sheet {sheet!r}", f"row {filled[row + 1]}"
                row -= max(len(filled) - 1, 0)
            continue
        with opener() as fh:
            lines = _read_all(fh).decode("utf-8-sig", errors="replace").splitlines()
        data = [number for number, line in enumerate(lines[1:], start=2) if line.strip()]
        if row < len(data):
            return where, f"line {data[row]}"
        row -= len(data)
    return str(path), f"data row {row + 1}"


def _read_all(fh) -> bytes:
    """The rest of the binary file ``fh``, read ``READ_CHUNK`` bytes at a time (see ``READ_CHUNK``)."""
    return b"".join(iter(lambda: fh.read(READ_CHUNK), b""))


def _header_fields(line: str) -> list[str]:
    """The column names of the CSV header ``line``, split as the rows are (a quoted name may hold a comma)."""
    return [c.strip().strip('"') for c in next(csv.reader([line]), [])]


def _check_field_counts(where: object, raw: bytes, fields: int) -> None:
    """Raise :class:`DataFileError` naming the line where the first non-blank row after the header of the CSV ``raw``
    starts if its number of fields is not ``fields``, or if the CSV cannot be split into rows (a stray quote). pandas
    pads a short row with missing values, so a file cut inside its last row would otherwise be read with a wrong
    number in it. Files without quotes (OASIS's) are counted by commas."""
    if b'"' in raw:  # quoted fields may hold commas and line breaks
        reader = csv.reader(io.StringIO(raw.decode("utf-8-sig", errors="replace")))
        counts = []
        start = 1  # the line where the row being read starts
        try:
            for row in reader:
                if len(row) > 1 or (row and row[0].strip()):
                    counts.append((start, len(row)))
                start = reader.line_num + 1
        except csv.Error as exc:
            raise DataFileError(where, f"line {start}: cannot split the CSV into rows ({exc}; a stray quote?): the file is "
                                       f"damaged; fetch or copy it again") from None
    else:
        counts = [(n, line.count(b",") + 1) for n, line in enumerate(raw.split(b"\n"), 1) if line.strip()]
    short = next(((n, k) for n, k in counts[1:] if k != fields), None)  # counts[0] is the header
    if short is not None:
        raise DataFileError(where, f"line {short[0]} has {short[1]} of the header's {fields} fields: the file is cut or "
                                   f"damaged (a partial download or copy?); fetch or copy it again")


def _check_columns(where: object, columns: list[str], required: Sequence[str], check_header: Callable[[list[str]], None] | None) -> None:
    if check_header is not None:
        try:
            check_header(columns)
        except ValueError as exc:
            raise DataFileError(where, str(exc)) from None
    missing = [c for c in required if c not in columns]
    if missing:
        raise DataFileError(where, f"missing column(s) {', '.join(missing)} (the file has: {', '.join(columns)})")


def _sheets(path: Path, name: str, opener: Callable, header_only: bool = False) -> list[tuple[str, list[str], list[list]]]:
    """The sheets of the workbook ``name`` in ``path`` as (sheet name, header, data rows); fully empty rows dropped."""
    try:
        from python_calamine import CalamineWorkbook
    except ImportError:
        raise MissingReaderError(path, XLSX_HINT) from None
    where = path if name == path.name else f"{path} ({name})"
    try:
        with opener() as fh:
            book = CalamineWorkbook.from_filelike(io.BytesIO(_read_all(fh)))
        out = []
        for sheet in book.sheet_names:
            rows = book.get_sheet_by_name(sheet).to_python()
            if not rows:
                continue
            header = [str(c).strip() for c in rows[0]]
            data = [] if header_only else [r for r in rows[1:] if any(c not in ("", None) for c in r)]
            out.append((sheet, header, data))
            if header_only:
                break
    except DataFileError:
        raise
    except Exception as exc:  # calamine raises its own error types for a corrupt workbook
        raise CorruptFileError(where, f"cannot read the workbook ({exc}); delete it or fetch it again") from None
    if not out:
        raise DataFileError(where, "the workbook has no sheet with data")
    return out


def _open_members(path: Path) -> list[tuple[str, Callable, bool]]:
    """(member name, opener, is a workbook) of each table: the file itself, or the CSVs and workbooks of a zip."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(path, "no such file")
    if path.stat().st_size == 0:
        raise CorruptFileError(path, "empty file (0 bytes)")
    if path.suffix.lower() == ".xlsx" and not zipfile.is_zipfile(path):  # a workbook is a zip
        raise CorruptFileError(path, "corrupt or truncated workbook (not a zip); delete it or fetch it again")
    if path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        try:
            zf = zipfile.ZipFile(path)
            names = [n for n in zf.namelist() if not n.endswith("/")]
        except (zipfile.BadZipFile, OSError) as exc:
            raise CorruptFileError(path, f"corrupt zip ({exc}); delete it or fetch it again") from None
        if "xl/workbook.xml" in names:  # an .xlsx is itself a zip: read it as a workbook, whatever its name
            return [(path.name, lambda: open(path, "rb"), True)]
        tables = [n for n in names if n.lower().endswith(TABLE_SUFFIXES)]
        if not tables:
            detail = ""
            xml = [n for n in names if n.lower().endswith(".xml")]
            if xml:
                detail = ": " + xml_error_text(zf.read(xml[0]))
            raise DataFileError(path, f"the zip holds no CSV or .xlsx (it holds: {', '.join(names) or 'nothing'}){detail}")
        for info in map(zf.getinfo, tables):
            if info.file_size > max(MAX_INFLATE * info.compress_size, INFLATE_FLOOR):
                raise CorruptFileError(path, f"member {info.filename} would inflate to {info.file_size:,} bytes, "
                                             f"{info.file_size / max(info.compress_size, 1):,.0f}× its {info.compress_size:,} "
                                             f"compressed bytes (more than {MAX_INFLATE}×: a zip bomb or a damaged zip); "
                                             f"not read. If it is genuine, unzip it and give the CSV as the path")
        return [(n, (lambda n=n: zf.open(n)), n.lower().endswith(".xlsx")) for n in sorted(tables)]
    return [(path.name, lambda: open(path, "rb"), False)]


def xml_error_text(raw: bytes) -> str:
    """The human part of an OASIS error reply (``<m:ERR_DESC>…``), or the start of the XML."""
    text = raw.decode("utf-8", errors="replace")
    for tag in ("ERR_DESC", "ERR_CODE"):
        start = text.find(tag + ">")
        if start >= 0:
            end = text.find("<", start)
            return text[start + len(tag) + 1: end].strip()
    return text[:200]


def list_data_files(folder: Path, patterns: Sequence[str]) -> list[Path]:
    """The ``.zip``/``.csv``/``.xlsx`` files under ``folder`` (recursively) whose name contains one of ``patterns``."""
    found = []
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file() and p.suffix.lower() in DATA_SUFFIXES and any(pat.upper() in p.name.upper() for pat in patterns):
            found.append(p)
    return found


def pick_series(frame: pd.DataFrame, key_column: str, wanted: str, *, unit: str, source: str,
                what: str, step: str | None = None):
    """The rows of ``frame`` (columns ``time``, ``key_column``, ``value``) whose key is ``wanted``, as a TimeSeries.

    Keys compare case-insensitively; an absent key raises with the available ones.
    Rows on the same timestamp (two files covering one day) keep the last one.
    """
    from powergrid_datasets.timeseries import TimeSeries

    keys = frame[key_column].astype("string").str.strip()
    hit = keys.str.upper() == wanted.strip().upper()
    if not hit.any():
        choices = sorted(keys.dropna().unique())
        raise DataFileError(source, f"no {what} {wanted!r} in the data (available: {', '.join(choices)})")
    rows = frame.loc[hit, ["time", "value"]].drop_duplicates("time", keep="last").set_index("time")["value"]
    return TimeSeries.from_frame(rows.rename(wanted), unit, step=step if len(rows) < 2 else None, source=source,
                                 meta={key_column: wanted})


def numeric(values: pd.Series, where: object, column: str) -> pd.Series:
    """Numbers from the column ``column`` of ``where`` (a file), which may hold thousands separators
    (``"9,981.5"``) or blanks; other text (``12o4``) and ``inf``/``-inf`` (no load or price is infinite) are read
    as missing with one warning naming the file, the column and the number of such cells. Blanks and the texts of
    :data:`NA_TEXT` (any case) are missing values without a warning."""
    if pd.api.types.is_numeric_dtype(values):
        out, count = values.astype("float64"), 0
    else:
        out = pd.to_numeric(values.astype(object), errors="coerce").astype("float64")
        retry = out.isna() & values.notna()
        count = 0
        if retry.any():  # text such as "9,981.5"
            text = values[retry].astype("string").str.replace(",", "", regex=False).str.strip()
            out[retry] = pd.to_numeric(text, errors="coerce").astype("float64")
            bad = out.isna() & values.notna()
            blank = values[bad].astype("string").str.strip().str.upper().isin(NA_TEXT)
            count = int(bad.sum() - blank.sum())
    infinite = np.isinf(out.to_numpy())
    if infinite.any():
        out = out.mask(infinite)
        count += int(infinite.sum())
    if count:
        warnings.warn(f"{where}: {count} cell(s) of column {column} are not numbers (text, inf or -inf); read as missing",
                      RuntimeWarning, stacklevel=3)
    return out

"""Open a user's file unchanged as a :class:`RawTable`: the one place files are opened.

CSV (encoding detection, delimiter sniffing, Excel quirks), Parquet / GeoParquet and OGR
vector formats (GeoJSON, GeoPackage, Shapefile). File-level problems raise
:class:`~riskmodel.errors.InputError`; nothing here interprets values.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from riskmodel.config.reading import normalise_delimiter
from riskmodel.errors import ConfigError, InputError
from riskmodel.io.read.values import STR, str_arrow, str_series, to_np_bool

log = logging.getLogger(__name__)

FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".shp": "shapefile",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".geoparquet": "parquet",
}
_DELIMS = (",", ";", "\t", "|")
# cp1250 bytes of č ć đ š ž Č Ć Đ Š Ž, and of Western latin-1 letters that cp1250 reads as
# letters foreign to Slovene/Croatian (à -> ŕ, ñ -> ń, ø -> ř ...): the two sides of the vote.
_SLHR_BYTES = np.frombuffer("čćđšžČĆĐŠŽ".encode("cp1250"), dtype=np.uint8)
_WEST_BYTES = np.frombuffer("àãåìïñòõøùûÀÃÅÌÏÑÒÕØÙÛ".encode("latin-1"), dtype=np.uint8)
_CP1250_UNDEFINED = np.array([0x81, 0x83, 0x88, 0x90, 0x98])


@dataclass
class RawTable:
    """A file as read, before any interpretation.

    Attributes
    ----------
    data : DataFrame
        Original values: all strings for CSV, typed columns for the other formats.
    geometry : ndarray or None
        Shapely geometries (vector formats); ``None`` entries are missing geometries.
    bad_geometry : ndarray or None
        True where a geometry exists but could not be decoded.
    geometry_crs : str or None
        CRS of the geometries as stored in the file.
    malformed : ndarray or None
        True for CSV rows with more fields than the header.
    truncated_last : bool
        A CSV whose last line has no line end and fewer fields than the header (a file
        still being written): that row is quarantined ``truncated_last_line``.
    meta : dict
        ``format``, ``sha256``, ``encoding``, ``delimiter``, ``layer``.
    warnings : list of str
        File-level notes for the summary.
    """

    data: pd.DataFrame
    geometry: np.ndarray | None = None
    bad_geometry: np.ndarray | None = None
    geometry_crs: str | None = None
    malformed: np.ndarray | None = None
    truncated_last: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def detect_encoding(path: Path, encoding: str | None) -> tuple[str, str, list[str]]:
    """Hash the file and choose its text encoding in one streaming pass.

    Order: BOM (UTF-8 / UTF-16) -> strict UTF-8 -> cp1250 if its Slovene/Croatian letters
    outvote Western latin-1 letters -> latin-1 (decodes anything).

    Returns
    -------
    tuple
        ``(encoding, sha256, warnings)``.
    """
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ConfigError(
                f"unknown encoding {encoding!r}",
                where="--encoding",
                fix="use utf-8, cp1250 or latin-1 (or omit --encoding to detect)",
            ) from None
    h = hashlib.sha256()
    dec = codecs.getincrementaldecoder("utf-8")()
    utf8_ok = encoding is None
    head = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
            if len(head) < 4:
                head += chunk[:4]
            if utf8_ok:
                try:
                    dec.decode(chunk)
                except UnicodeDecodeError:
                    utf8_ok = False
    sha = h.hexdigest()
    if encoding:
        return encoding, sha, []
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", sha, []  # Excel "Unicode text" export
    if utf8_ok:
        try:
            dec.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8_ok = False
    if utf8_ok:
        return ("utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"), sha, []
    hist = np.zeros(256, dtype=np.int64)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            hist += np.bincount(np.frombuffer(chunk, dtype=np.uint8), minlength=256)
    c1 = hist[0x80:0xA0].sum() - hist[_CP1250_UNDEFINED].sum()  # latin-1 control chars
    slhr = hist[_SLHR_BYTES].sum() + c1
    west = hist[_WEST_BYTES].sum()
    if hist[_CP1250_UNDEFINED].sum() == 0 and slhr >= west:
        enc = "cp1250"
    else:
        enc = "latin-1"
    note = f"file is not UTF-8; read as {enc} (detected) -- give --encoding to override"
    return enc, sha, [note]


def sniff_delimiter(lines: list[str]) -> str:
    """Pick the delimiter giving the most consistent field count (> 1) over the first lines."""
    lines = [ln for ln in lines if ln.strip()][:50]
    best, best_score = ",", (-1.0, 0)
    for d in _DELIMS:
        try:
            counts = [len(r) for r in csv.reader(lines, delimiter=d)]
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        score = (sum(c == counts[0] for c in counts) / len(counts), counts[0])
        if score > best_score:
            best, best_score = d, score
    return best


def dedupe_names(header: list[str]) -> list[str]:
    """Make header names unique and non-empty (``a``, ``a.1``; blank -> ``unnamed_3``)."""
    out: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(header):
        name = raw.strip().strip("\ufeff") or f"unnamed_{i + 1}"
        base, k = name, 1
        while name in seen:
            name, k = f"{base}.{k}", k + 1
        seen.add(name)
        out.append(name)
    return out


def load_table(path: Path, *, encoding: str | None, delimiter: str | None, kind: str) -> RawTable:
    """Read a user's file by extension into a :class:`RawTable`, values unchanged.

    Parameters
    ----------
    path : Path
        CSV / TSV / TXT, GeoJSON, GeoPackage, Shapefile or (Geo)Parquet (see :data:`FORMATS`).
    encoding : str or None
        Text encoding of a CSV file; ``None`` detects UTF-8 / UTF-16 / cp1250 / latin-1.
    delimiter : str or None
        CSV delimiter (``","``, ``";"``, ``"tab"`` ...); ``None`` sniffs it.
    kind : str
        What the file holds (``events``, ``effort`` ...): the layer read from a multi-layer
        vector file when one has that name (else the first layer).

    Returns
    -------
    RawTable
        CSV values as strings (blank for empty), other formats with their stored types;
        ``meta`` holds ``format``, ``sha256`` and, for CSV, ``encoding`` and ``delimiter``.

    Raises
    ------
    InputError
        Missing, empty, unreadable or unsupported files, and files without data rows.
    ConfigError
        An unknown ``encoding`` or an invalid ``delimiter``.
    """
    where = str(path)
    if not path.exists():
        raise InputError("file not found", where=where, fix="check the path")
    if path.is_dir():
        raise InputError("is a folder, not a file", where=where, fix="give the file inside it")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"unsupported file type {path.suffix or '(none)'!r}",
            where=where,
            fix="use CSV, GeoJSON, GeoPackage, Shapefile or Parquet (Excel: Save As CSV UTF-8)",
        )
    if path.stat().st_size == 0:
        raise InputError("the file is empty (0 bytes)", where=where, fix="export the data again")
    try:
        if fmt == "csv":
            table = _read_csv(path, encoding, normalise_delimiter(delimiter))
        elif fmt == "parquet":
            table = _read_parquet(path)
        else:
            table = _read_vector(path, kind)
        table.meta["format"] = fmt
        if "sha256" not in table.meta:
            table.meta["sha256"] = _sha256(path)
    except OSError as exc:  # permissions, vanished file, I/O error
        raise InputError(
            f"cannot read the file: {exc.strerror or exc}",
            where=where,
            fix="check the file's permissions and that it is fully copied",
        ) from None
    if len(table.data) == 0:
        raise InputError(
            "the file has a header but no data rows" if fmt == "csv" else "the file holds no rows",
            where=where,
            fix="export the data again including the rows",
        )
    return table


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _read_csv(path: Path, encoding: str | None, delimiter: str | None) -> RawTable:
    where = str(path)
    enc, sha, notes = detect_encoding(path, encoding)
    try:
        with open(path, encoding=enc, newline="") as fh:
            sample = fh.read(1 << 18)
            complete = fh.read(1) == ""
    except UnicodeDecodeError as exc:
        raise InputError(
            f"cannot decode the file as {enc} (byte {exc.start})",
            where=where,
            fix="give the right --encoding (e.g. cp1250) or omit it to detect",
        ) from None
    lines = sample.splitlines()
    if not complete and len(lines) <= 1:
        raise InputError(
            f"no line break in the first {len(sample) // 1024} KiB: this is not a table of "
            "rows (a binary file, or a single line longer than that)",
            where=where,
            fix="give the CSV export itself (one row per line)",
        )
    if not complete and lines:
        lines = lines[:-1]  # the sample may end mid-line
    skip = 0
    while skip < len(lines) and not lines[skip].strip():
        skip += 1  # leading blank lines are not the header
    if skip == len(lines):
        raise InputError("the file is empty (only blank lines)", where=where, fix="export again")
    m = re.fullmatch(r"\s*sep=(.)\s*", lines[skip])
    if m:  # Excel's "sep=;" first line
        delimiter = delimiter or m.group(1)
        skip += 1
        if skip == len(lines):
            raise InputError("the file has no header line", where=where, fix="export again")
    delim = delimiter or sniff_delimiter(lines[skip:])
    header = next(csv.reader([lines[skip]], delimiter=delim))
    names = dedupe_names(header)
    meta = {"encoding": enc, "delimiter": delim, "sha256": sha, "header": header}
    data, malformed = _parse_csv_body(path, names, skip + 1, enc, delim)
    cut = len(data) > 0 and _last_line_cut(path, enc, delim, len(names))
    return RawTable(data=data, malformed=malformed, meta=meta, warnings=notes, truncated_last=cut)


def _last_line_cut(path: Path, enc: str, delim: str, n_fields: int) -> bool:
    """Whether the file ends without a line end in a line with fewer fields than the header
    (the sign of a file still being written; a complete last line without newline is fine)."""
    if enc.startswith("utf-16"):
        return False  # Excel's UTF-16 text exports: not checked byte-wise
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - (1 << 16)))
        tail = fh.read()
    if not tail or tail.endswith((b"\n", b"\r")):
        return False
    last = tail.rsplit(b"\n", 1)[-1].decode(enc, errors="replace")
    try:
        fields = next(csv.reader([last], delimiter=delim), [])
    except csv.Error:  # stray CR or NUL: not a cut line; the row checks judge it
        return False
    return len(fields) < n_fields


def _parse_csv_body(
    path: Path, names: list[str], skip: int, enc: str, delim: str
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Parse the data rows as strings: Arrow (fast) -> pandas C -> strict csv (long rows)."""
    import pyarrow.csv as pv

    where = str(path)
    try:
        tbl = pv.read_csv(
            path,
            read_options=pv.ReadOptions(
                column_names=names,
                skip_rows=skip,
                encoding="utf8" if enc in ("utf-8", "utf-8-sig") else enc,
                block_size=1 << 24,
            ),
            parse_options=pv.ParseOptions(delimiter=delim, ignore_empty_lines=False),
            convert_options=pv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        cols = {n: str_series(tbl.column(i)) for i, n in enumerate(names)}
        return pd.DataFrame(cols), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError, LookupError):
        pass  # blank lines, short/long rows, quoted newlines: let pandas handle them
    common: dict[str, Any] = dict(
        sep=delim,
        header=None,
        names=names,
        skiprows=skip,
        dtype=str,
        na_filter=False,
        keep_default_na=False,
        skip_blank_lines=False,  # blank lines stay rows so row numbers match the file
        encoding=enc,
        index_col=False,
    )
    try:
        with warnings.catch_warnings():
            # It only *warns* (and drops fields) when the first data row is too long.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(path, engine="c", **common)
        return df.fillna("").astype(STR), None
    except pd.errors.ParserWarning:
        pass
    except pd.errors.ParserError as exc:
        if "EOF inside string" in str(exc):
            raise _csv_error(where, exc) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise _csv_error(where, exc) from None
    return _parse_csv_strict(path, names, skip, enc, delim)


def _parse_csv_strict(
    path: Path, names: list[str], skip: int, enc: str, delim: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """Tokenise a file with over-long rows, keeping each such row in place as one field.

    A per-row loop, on purpose: only files the C parser refused get here, and pandas' python
    engine with a callable ``on_bad_lines`` silently stops at an unclosed quote (verified).
    """
    where = str(path)
    n = len(names)
    cols: list[list[str]] = [[] for _ in names]
    malformed: list[bool] = []
    try:
        with open(path, encoding=enc, newline="") as fh:
            reader = csv.reader(fh, delimiter=delim, strict=True)
            for _ in range(skip):
                next(reader, None)
            for rec in reader:
                long = len(rec) > n
                malformed.append(long)
                rec = [delim.join(rec)] + [""] * (n - 1) if long else rec + [""] * (n - len(rec))
                for c, v in zip(cols, rec, strict=True):
                    c.append(v)
    except csv.Error as exc:
        raise InputError(
            f"cannot parse the CSV near line {reader.line_num}: {exc}",
            where=where,
            fix="close unbalanced quotes, or give --delimiter / --encoding explicitly",
        ) from None
    except UnicodeDecodeError as exc:
        raise _csv_error(where, exc) from None
    data = pd.DataFrame({nm: pd.array(c, dtype=STR) for nm, c in zip(names, cols, strict=True)})
    return data, np.asarray(malformed, dtype=bool)


def _csv_error(where: str, exc: Exception) -> InputError:
    msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return InputError(
        f"cannot parse the CSV: {msg}",
        where=where,
        fix="close unbalanced quotes, or give --delimiter / --encoding explicitly",
    )


def _read_parquet(path: Path) -> RawTable:
    import pyarrow.parquet as pq

    where = str(path)
    try:
        schema = pq.read_schema(path)
        if schema.metadata and b"geo" in schema.metadata:
            import geopandas as gpd

            gdf = gpd.read_parquet(path)
            geom = np.asarray(gdf.geometry.values, dtype=object)
            crs = gdf.crs.to_string() if gdf.crs is not None else None
            data = pd.DataFrame(gdf.drop(columns=gdf.geometry.name)).reset_index(drop=True)
            return RawTable(data=data, geometry=geom, geometry_crs=crs)
        data = pd.read_parquet(path).reset_index(drop=True)
    except Exception as exc:  # pyarrow raises many types for corrupt files
        raise InputError(
            f"cannot read the Parquet file: {str(exc).splitlines()[0] if str(exc) else exc!r}",
            where=where,
            fix="write the file again (pandas.to_parquet / GeoDataFrame.to_parquet)",
        ) from None
    return RawTable(data=data)


def _read_vector(path: Path, kind: str) -> RawTable:
    import pyogrio
    import shapely
    from pyogrio.raw import read as ogr_read

    where = str(path)
    notes: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            layers = pyogrio.list_layers(path)
            layer = None
            if len(layers) > 1:
                names = [str(x) for x in layers[:, 0]]
                layer = kind if kind in names else names[0]
                notes.append(f"file has {len(names)} layers; read layer {layer!r}")
            meta, _fids, wkb, fields = ogr_read(path, layer=layer, datetime_as_string=True)
    except Exception as exc:  # pyogrio/GDAL raise several types
        raise InputError(
            f"cannot read the vector file: {str(exc).splitlines()[0] if str(exc) else exc!r}",
            where=where,
            fix="check the file opens in QGIS (shapefiles need their .shx/.dbf/.prj)",
        ) from None
    if caught:
        notes.append(
            f"GDAL reported {len(caught)} problem(s) while reading, e.g. {caught[0].message}"
        )
    cols = [str(c) for c in meta["fields"]]
    data = pd.DataFrame(dict(zip(dedupe_names(cols), fields, strict=True)))
    if wkb is None:
        wkb = np.full(len(data), None, dtype=object)
    geom = shapely.from_wkb(wkb, on_invalid="ignore")
    bad = np.asarray(pd.notna(wkb), dtype=bool) & pd.isna(geom)
    if len(data.columns) == 0:
        data = pd.DataFrame(index=pd.RangeIndex(len(geom)))
    return RawTable(
        data=data.reset_index(drop=True),
        geometry=np.asarray(geom, dtype=object),
        bad_geometry=bad,
        geometry_crs=meta.get("crs"),
        meta={"layer": layer},
        warnings=notes,
    )


def empty_rows(data: pd.DataFrame) -> np.ndarray:
    """True where every field of the row is blank / null."""
    empty = np.ones(len(data), dtype=bool)
    for col in data.columns:
        s = data[col]
        if isinstance(s.dtype, pd.StringDtype) or s.dtype == object:
            empty &= to_np_bool(pc.equal(str_arrow(s), ""))
        else:
            empty &= s.isna().to_numpy()
        if not empty.any():
            break
    return empty

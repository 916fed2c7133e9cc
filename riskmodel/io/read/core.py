"""Private checks behind :mod:`riskmodel.io.read.events`.

File loading (encoding detection, delimiter sniffing, CSV / GeoJSON / GeoPackage / Shapefile /
Parquet), column resolution, and vectorised parsers that mark every bad row with the *first*
check it fails. Row reasons are kept as small integer codes so 5 M-row files stay cheap.

Nothing here changes the user's file: every row read ends up either accepted or quarantined.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import math
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from riskmodel.errors import ConfigError, InputError

# pandas' default string dtype (pyarrow-backed); regex and casts run in Arrow's C++ kernels.
STR = pd.StringDtype("pyarrow", na_value=np.nan)
NAT = np.datetime64("NaT", "us")

# --------------------------------------------------------------------------------------------
# Reason catalogue: code -> (what, fix). Effort start/end reasons carry a ``:start``/``:end``
# suffix (e.g. ``bad_timestamp:end``); the base code is looked up here.
# --------------------------------------------------------------------------------------------
REASONS: dict[str, tuple[str, str]] = {
    "empty_row": ("the row is empty", "delete empty lines; they carry no data"),
    "malformed_row": (
        "the row has more fields than the header",
        'quote values that contain the delimiter, e.g. "PU Novo mesto; PP Metlika"',
    ),
    "missing_timestamp": ("the date/time is empty", "fill in the date and time"),
    "bad_timestamp": (
        "the date/time cannot be read",
        "write ISO 8601 (2024-05-01T14:30:00+02:00) or DD.MM.YYYY HH:MM",
    ),
    "naive_timestamp": (
        "the time has no UTC offset while other rows have one",
        "give --assume-tz Europe/Ljubljana or add the offset (+01:00 / +02:00)",
    ),
    "dst_nonexistent": (
        "the local time does not exist: clocks jumped forward at the DST change",
        "give --dst shift (read with the offset before the change) or --dst drop",
    ),
    "dst_ambiguous": (
        "the local time occurs twice: clocks went back at the DST change",
        "give --dst earliest or --dst latest, or add the UTC offset",
    ),
    "future_timestamp": ("the date/time lies in the future", "check the year and day/month order"),
    "too_old_timestamp": ("the date/time is implausibly old", "check the year (or lower min_date)"),
    "missing_coordinates": ("a coordinate is empty", "fill in both coordinates"),
    "bad_coordinates": (
        "a coordinate is not a finite number",
        "write decimal numbers such as 45.8123 (no degree signs)",
    ),
    "coords_out_of_range": (
        "the coordinates are out of range (latitude within +-90, longitude within +-180)",
        "check the coordinates",
    ),
    "latlon_swapped": (
        "latitude and longitude look swapped: swapped, the point lies in Slovenia",
        "give --swap-latlon to swap them (or map the columns the other way)",
    ),
    "xy_swapped": (
        "easting and northing are swapped relative to the other rows",
        "swap the two values in this row",
    ),
    "projected_as_lonlat": (
        "lon/lat hold projected metres, not degrees",
        "map them as x/y (--column x=... --column y=...) and give --crs EPSG:3794",
    ),
    "empty_geometry": ("the geometry is missing or empty", "draw or fill in the point"),
    "invalid_geometry": ("the geometry is invalid", "repair it (QGIS: Fix geometries)"),
    "not_a_point": ("the geometry is not a point", "convert to points (QGIS: Centroids)"),
    "too_far_from_border": (
        "the point is farther from the border than max_distance_m",
        "check the coordinates, or raise --max-distance-m",
    ),
    "bad_persons": ("persons must be a whole number >= 1", "write the group size as 1, 2, 3 ..."),
    "duplicate_event_id": (
        "the event_id repeats an earlier row (the first one is kept)",
        "remove the copy or give each event a unique id",
    ),
    "duplicate_time_place": (
        "same time and place as an earlier row (the first one is kept)",
        "remove the copy, or merge the groups into one row with their persons",
    ),
    "end_before_start": ("end is before start", "swap start and end or fix the dates"),
    "zero_duration": ("end equals start", "fix the end time or delete the row"),
    "missing_officer_hours": ("officer_hours is empty", "fill in the officer hours"),
    "bad_officer_hours": (
        "officer_hours must be a finite number >= 0",
        "write officer hours as a number such as 16 or 7.5",
    ),
    "unknown_segment": (
        "the segment_id is not a known border segment",
        "use ids from the segments layer (riskmodel segments)",
    ),
    "missing_location": (
        "neither segment_id nor coordinates are given",
        "fill in segment_id or the location",
    ),
}


def reason_text(code: str) -> tuple[str, str]:
    """Return ``(what, fix)`` for a reason code (``code`` or ``code:column``)."""
    base, _, col = code.partition(":")
    what, fix = REASONS.get(base, (base.replace("_", " "), "check the row"))
    if col:
        what = f"{col}: {what}"
    return what, fix


class RowFlags:
    """First failing reason per row, as int16 codes (0 = row still good).

    Parameters
    ----------
    n : int
        Number of rows read.
    """

    def __init__(self, n: int) -> None:
        self.code = np.zeros(n, dtype=np.int16)
        self.names: list[str] = [""]

    def mark(self, mask: np.ndarray | pd.Series | None, reason: str) -> int:
        """Flag rows of ``mask`` that are still good with ``reason``; return how many."""
        if mask is None:
            return 0
        m = np.asarray(mask, dtype=bool) & (self.code == 0)
        k = int(m.sum())
        if k:
            if reason not in self.names:
                self.names.append(reason)
            self.code[m] = self.names.index(reason)
        return k

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of rows that passed every check so far."""
        return self.code == 0

    def reasons(self, mask: np.ndarray) -> np.ndarray:
        """Reason strings for the rows of ``mask``."""
        return np.asarray(self.names, dtype=object)[self.code[mask]]

    def counts(self) -> dict[str, int]:
        """``{reason: n}``, most frequent first (ties by name)."""
        c = np.bincount(self.code, minlength=len(self.names))
        out = {self.names[i]: int(c[i]) for i in range(1, len(self.names)) if c[i]}
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


# --------------------------------------------------------------------------------------------
# Arrow / pandas string helpers
# --------------------------------------------------------------------------------------------
def str_arrow(values: pd.Series) -> pa.ChunkedArray:
    """Values as whitespace-trimmed Arrow strings, nulls as ``""`` (zero-copy when possible)."""
    if not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"):
        values = values.astype(STR)
    arr = values.array.__arrow_array__()
    if not isinstance(arr, pa.ChunkedArray):
        arr = pa.chunked_array([arr])
    if arr.null_count:
        arr = pc.fill_null(arr, "")
    return pc.utf8_trim_whitespace(arr)


def to_np_bool(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Arrow boolean result as a numpy bool array (null -> False)."""
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def str_series(arr: pa.ChunkedArray) -> pd.Series:
    """Arrow strings as a pandas ``str`` Series with a 0..n-1 index."""
    return pd.Series(pd.array(arr, dtype=STR))


def norm_name(name: object) -> str:
    """Normalise a column name: ASCII-fold (č -> c), lower case, non-alphanumerics -> ``_``."""
    s = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    return re.sub(r"[^0-9a-z]+", "_", s.lower()).strip("_")


# --------------------------------------------------------------------------------------------
# File loading
# --------------------------------------------------------------------------------------------
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
_DELIM_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}
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
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def normalise_delimiter(delimiter: str | None) -> str | None:
    """Accept ``","``, ``";"``, ``"tab"``, ``"\\t"`` ... and return the single character."""
    if delimiter is None or delimiter == "":
        return None
    d = _DELIM_NAMES.get(delimiter.lower(), delimiter)
    if len(d) != 1:
        raise ConfigError(
            f"delimiter must be one character, got {delimiter!r}",
            where="--delimiter",
            fix="use ',', ';', tab or '|'",
        )
    return d


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
    """Read a file by extension into a :class:`RawTable` (file-level problems -> InputError)."""
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
    return RawTable(data=data, malformed=malformed, meta=meta, warnings=notes)


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


# --------------------------------------------------------------------------------------------
# Column resolution
# --------------------------------------------------------------------------------------------
def resolve_columns(
    columns: list[str],
    aliases: dict[str, tuple[str, ...]],
    user: dict[str, str],
    known: set[str],
    where: str,
) -> tuple[dict[str, str], list[str]]:
    """Map canonical keys to file columns: user mapping first, then aliases (case-insensitive).

    Parameters
    ----------
    columns : list of str
        Columns in the file.
    aliases : dict
        Canonical key -> accepted normalised names, preferred first.
    user : dict
        Canonical key -> the user's column name (``--column`` / ``[columns]``).
    known : set of str
        Every canonical key of any reader (unknown keys are a configuration error).
    where : str
        File name for messages.

    Returns
    -------
    tuple
        ``(mapping, warnings)``.
    """
    unknown = sorted(set(user) - known)
    if unknown:
        raise ConfigError(
            f"unknown canonical column(s) {', '.join(map(repr, unknown))} in --column / [columns]",
            fix=f"use one of: {', '.join(sorted(known))}",
        )
    normed = {c: norm_name(c) for c in columns}
    mapping: dict[str, str] = {}
    notes: list[str] = []
    for key, name in user.items():
        if key not in aliases:
            continue  # a key of the other reader (events vs effort)
        hit = [c for c in columns if c == name] or [c for c in columns if c.lower() == name.lower()]
        hit = hit or [c for c in columns if normed[c] == norm_name(name)]
        if not hit:
            close = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError(
                f"column {name!r} given for {key} is not in the file{hint}",
                where=where,
                fix=f"use one of the file's columns: {_list(columns)}",
            )
        mapping[key] = hit[0]
    used = set(mapping.values())
    for key, names in aliases.items():
        if key in mapping:
            continue
        cands = [c for c in columns if c not in used and normed[c] in names]
        if not cands:
            continue
        cands.sort(key=lambda c: names.index(normed[c]))
        mapping[key] = cands[0]
        used.add(cands[0])
        if len(cands) > 1:
            notes.append(
                f"several columns could be {key} ({_list(cands)}); used {cands[0]!r} "
                f"-- map another with --column {key}=NAME"
            )
    return mapping, notes


def suggest(
    missing: list[str], columns: list[str], aliases: dict[str, tuple[str, ...]], used: set[str]
) -> dict[str, str]:
    """Closest unused file column for each missing key (difflib ratio against key + aliases)."""
    out: dict[str, str] = {}
    free = [c for c in columns if c not in used]
    for key in missing:
        best, best_r = None, 0.6
        for c in free:
            n = norm_name(c)
            r = max(
                difflib.SequenceMatcher(None, n, a).ratio() for a in (key, *aliases.get(key, ()))
            )
            if r > best_r:
                best, best_r = c, r
        if best is not None:
            out[key] = best
    return out


def missing_columns_error(
    missing: list[str],
    columns: list[str],
    aliases: dict[str, tuple[str, ...]],
    used: set[str],
    where: str,
) -> InputError:
    """One-line error naming the missing columns, the file's columns and close matches."""
    keys = [k for m in missing for k in m.split(" or ")[0].split("+")]
    sugg = suggest(keys, columns, aliases, used)
    parts = [f"missing required column(s): {', '.join(missing)}; the file has: {_list(columns)}"]
    if sugg:
        parts.append("; did you mean " + ", ".join(f"{c!r} for {k}" for k, c in sugg.items()))
    looks_like_data = (
        sum(bool(re.fullmatch(r"[-+0-9.,:/ T]+", c)) for c in columns) > len(columns) / 2
    )
    if looks_like_data:
        fix = "the first line looks like data: add a header line such as timestamp,lat,lon"
    elif sugg:
        k, c = next(iter(sugg.items()))
        fix = f"rename the column or map it, e.g. --column {k}={c} (or [columns] in riskmodel.toml)"
    else:
        fix = f"add the column(s) or map yours with --column {keys[0]}=NAME"
    return InputError("".join(parts), where=where, fix=fix)


def _list(names: list[str], k: int = 12) -> str:
    shown = ", ".join(names[:k])
    return shown + (f", ... ({len(names)} in all)" if len(names) > k else "")


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------
_NULL_TOKENS = pa.array(["na", "n/a", "nan", "null", "none", "-"])


def to_float(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse numbers (decimal point or a single decimal comma).

    Returns
    -------
    tuple of ndarray
        ``(values, missing, bad)``: float64 with NaN where not a finite number; ``missing``
        for blank / null tokens; ``bad`` for present but unparseable or non-finite values.
    """
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        v = np.array(values.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
        missing = np.isnan(v)
        bad = ~missing & ~np.isfinite(v)
        v[bad] = np.nan
        return v, missing, bad
    arr = str_arrow(values)
    missing = to_np_bool(pc.or_(pc.equal(arr, ""), pc.is_in(pc.utf8_lower(arr), _NULL_TOKENS)))
    masked = pc.if_else(pa.chunked_array([pa.array(missing)]), None, arr)
    try:
        v = np.array(pc.cast(masked, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        s = str_series(pc.fill_null(masked, ""))
        one_comma = (s.str.count(",") == 1) & ~s.str.contains(".", regex=False)
        s = s.where(~one_comma, s.str.replace(",", ".", regex=False))
        v = np.array(pd.to_numeric(s, errors="coerce"), dtype=np.float64)
    bad = ~missing & ~np.isfinite(v)
    v[~np.isfinite(v)] = np.nan
    return v, missing, bad


# --------------------------------------------------------------------------------------------
# Times
# --------------------------------------------------------------------------------------------
DST_POLICIES = ("raise", "shift", "earliest", "latest", "drop")
CHUNK = 1_000_000  # rows per string-parsing chunk
_AWARE_RE = r"\d[:.]\d{2}(?:[:.]\d{2}(?:[.,]\d{1,9})?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
_ISO_RE = r"^\d{4}-\d{2}-\d{2}(?:$|[T ])"
_TIME = (
    r"(?:(?:\s*[T ,]\s*|\s+)(?P<H>\d{1,2})[:.](?P<M>\d{2})(?:[:.](?P<S>\d{2}(?:[.,]\d{1,9})?))?)?"
    r"\s*(?P<tz>[zZ]|[+-]\d{2}(?::?\d{2})?)?$"
)
_DMY = r"^(?P<d>\d{1,2})\s*(?P<sep>[./-])\s*(?P<m>\d{1,2})\s*[./-]\s*(?P<y>\d{4})\.?" + _TIME
_YMD = r"^(?P<y>\d{4})\s*(?P<sep>[./-])\s*(?P<m>\d{1,2})\s*[./-]\s*(?P<d>\d{1,2})\.?" + _TIME


def check_tz(assume_tz: str | None) -> str | None:
    """Validate an IANA zone name (``None`` passes)."""
    if assume_tz is None or assume_tz == "":
        return None
    try:
        ZoneInfo(assume_tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {assume_tz!r}",
            where="--assume-tz",
            fix="use an IANA name such as Europe/Ljubljana",
        ) from None
    return assume_tz


def utc_timestamp(value: Any, name: str) -> pd.Timestamp:
    """A UTC Timestamp from str / datetime / Timestamp (naive means UTC)."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(f"{name} is not a date: {value!r}", fix="use YYYY-MM-DD") from None
    if ts is pd.NaT:
        raise ConfigError(f"{name} is not a date: {value!r}", fix="use YYYY-MM-DD")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _iso_to_utc(s: pd.Series, aware: bool) -> np.ndarray:
    """ISO 8601 strings -> datetime64[us] (UTC for aware, wall clock for naive); NaT if not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = pd.to_datetime(s, format="ISO8601", utc=aware, errors="coerce")
    except (ValueError, TypeError, OverflowError):
        return np.full(len(s), NAT)
    if isinstance(r.dtype, pd.DatetimeTZDtype):
        if not aware:  # an offset slipped past the regex: let the strict path decide
            return np.full(len(s), NAT)
        r = r.dt.tz_localize(None)
    return r.to_numpy(dtype="datetime64[us]")


def _slash_order(arr: pa.ChunkedArray, notes: list[str], label: str) -> bool:
    """Decide d/m/y vs m/d/y once per column from slashed values with a part > 12."""
    if not to_np_bool(pc.match_substring(arr, "/")).any():
        return False
    parts = pc.extract_regex(arr, r"^(?P<a>\d{1,2})\s*/\s*(?P<b>\d{1,2})\s*/\s*\d{4}")
    a = pd.to_numeric(pd.Series(pc.struct_field(parts, [0]).to_pandas()), errors="coerce")
    b = pd.to_numeric(pd.Series(pc.struct_field(parts, [1]).to_pandas()), errors="coerce")
    if a.notna().sum() == 0:
        return False
    if (b > 12).any() and not (a > 12).any():
        notes.append(f"{label}: slashed dates read as month/day/year (US order)")
        return True
    if not (a > 12).any():
        notes.append(f"{label}: slashed dates are ambiguous; read as day/month/year")
    return False


def _parse_strings(arr: pa.ChunkedArray, month_first: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """One chunk of trimmed strings -> (UTC instants, naive wall-clock times, n date-only)."""
    n = len(arr)
    utc = np.full(n, NAT)
    local = np.full(n, NAT)
    if to_np_bool(pc.match_substring_regex(arr, r"[A-Za-z]{3}$")).any():
        for pat, off in (
            ("(?i)\\s*(?:utc|gmt)$", "+00:00"),
            ("(?i)\\s*cest$", "+02:00"),
            ("(?i)\\s*cet$", "+01:00"),
        ):
            arr = pc.replace_substring_regex(arr, pat, off)
    aware = to_np_bool(pc.match_substring_regex(arr, _AWARE_RE))
    iso = to_np_bool(pc.match_substring_regex(arr, _ISO_RE))
    s = str_series(arr)
    m = aware & iso
    if m.any():
        utc[m] = _iso_to_utc(s[m], True)
    m = ~aware & iso
    if m.any():
        local[m] = _iso_to_utc(s[m], False)
    left = (s != "").to_numpy() & np.isnat(utc) & np.isnat(local)
    if left.any():
        utc[left], local[left] = _parse_other(s[left], month_first)
    short = to_np_bool(pc.less_equal(pc.utf8_length(arr), 11))
    n_date_only = int((short & (~np.isnat(utc) | ~np.isnat(local))).sum())
    return utc, local, n_date_only


def _parse_other(sub: pd.Series, month_first: bool) -> tuple[np.ndarray, np.ndarray]:
    """Day-first dotted / slashed dates (31.3.2024 2:30, 2024/03/31 ...) -> ISO -> datetimes."""
    ex = sub.str.extract(_DMY)
    miss = ex["y"].isna()
    if miss.any():
        ex2 = sub[miss].str.extract(_YMD)
        ex.loc[miss, ex2.columns] = ex2
    if month_first:
        slash = (ex["sep"] == "/") & ex["d"].notna()
        ex.loc[slash, ["d", "m"]] = ex.loc[slash, ["m", "d"]].to_numpy()
    date = ex["y"] + "-" + ex["m"].str.zfill(2) + "-" + ex["d"].str.zfill(2)
    sec = (":" + ex["S"].str.replace(",", ".", regex=False)).fillna("")
    clock = ("T" + ex["H"].str.zfill(2) + ":" + ex["M"] + sec).fillna("")
    tz = ex["tz"].fillna("")
    iso = (date + clock + tz).reset_index(drop=True)
    aware = (tz != "").to_numpy()
    utc = np.full(len(sub), NAT)
    local = np.full(len(sub), NAT)
    if aware.any():
        utc[aware] = _iso_to_utc(iso[aware], True)
    if (~aware).any():
        local[~aware] = _iso_to_utc(iso[~aware], False)
    return utc, local


def parse_times(
    values: pd.Series,
    *,
    flags: RowFlags,
    label: str,
    assume_tz: str | None,
    dst: str,
    where: str,
    now: pd.Timestamp,
    min_date: pd.Timestamp,
    notes: list[str],
    suffix: str = "",
) -> np.ndarray:
    """Parse a time column into UTC instants, flagging bad rows.

    Aware values (offset / Z / UTC / CET / CEST) are converted to UTC. Naive values need
    ``assume_tz``: without it the file is refused when *all* values are naive, otherwise the
    naive rows are quarantined. Local times that do not exist or occur twice at DST changes
    follow ``dst`` (see :func:`riskmodel.io.read.events.read_events`).

    Returns
    -------
    ndarray
        ``datetime64[ns]`` UTC instants (NaT for flagged rows).
    """
    n = len(values)
    rc = (lambda c: f"{c}:{suffix}") if suffix else (lambda c: c)
    utc = np.full(n, NAT)
    local = np.full(n, NAT)
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        utc[:] = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
        missing = np.isnat(utc)
    elif pd.api.types.is_datetime64_dtype(dtype):
        local[:] = values.to_numpy("datetime64[us]")
        missing = np.isnat(local)
    else:
        arr = str_arrow(values)
        missing = to_np_bool(pc.equal(arr, ""))
        month_first = _slash_order(arr, notes, label)
        n_date_only = 0
        for lo in range(0, n, CHUNK):  # chunks bound the object arrays pandas parses from
            hi = min(lo + CHUNK, n)
            u, lo_, k = _parse_strings(arr.slice(lo, hi - lo), month_first)
            utc[lo:hi], local[lo:hi] = u, lo_
            n_date_only += k
        if n_date_only:
            notes.append(
                f"{label}: {n_date_only} value(s) have a date but no time of day; read as 00:00 "
                "local (they bias the night shift)"
            )
    flags.mark(missing, rc("missing_timestamp"))
    flags.mark(~missing & np.isnat(utc) & np.isnat(local), rc("bad_timestamp"))
    naive = ~np.isnat(local)
    if naive.any():
        if assume_tz is None:
            if np.isnat(utc).all():
                i = int(np.flatnonzero(naive)[0])
                raise InputError(
                    f"{label} values have no time zone (row {i + 1}: {_val(values, i)!r})",
                    where=where,
                    fix="give --assume-tz Europe/Ljubljana, or add UTC offsets such as +02:00",
                )
            flags.mark(naive, rc("naive_timestamp"))
        else:
            _localise(
                local,
                naive,
                utc,
                values,
                flags=flags,
                tz=assume_tz,
                dst=dst,
                where=where,
                label=label,
                rc=rc,
            )
    valid = ~np.isnat(utc)
    fut = valid & (utc > np.datetime64(now.tz_localize(None), "us"))
    old = valid & (utc < np.datetime64(min_date.tz_localize(None), "us"))
    flags.mark(fut, rc("future_timestamp"))
    flags.mark(old, rc("too_old_timestamp"))
    utc[fut | old] = NAT  # also keeps every value inside the ns range
    return utc.astype("datetime64[ns]")


def _val(values: pd.Series, i: int) -> str:
    v = values.iloc[i]
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def _localise(
    local: np.ndarray,
    naive: np.ndarray,
    utc: np.ndarray,
    values: pd.Series,
    *,
    flags: RowFlags,
    tz: str,
    dst: str,
    where: str,
    label: str,
    rc: Any,
) -> None:
    """Fill ``utc`` for naive rows, applying the DST policy to gap / fold times."""
    pos = np.flatnonzero(naive)
    loc = pd.Series(local[pos])
    r = loc.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    utc[pos] = r.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
    hole = r.isna().to_numpy()
    if not hole.any():
        return
    hpos = pos[hole]
    sub = loc[hole].reset_index(drop=True)
    amb = sub.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward").isna().to_numpy()
    if dst == "raise":
        i = int(hpos[0])
        kind = (
            "occurs twice (clocks went back)"
            if amb[0]
            else "does not exist (clocks jumped forward)"
        )
        raise InputError(
            f"row {i + 1}: local {label} {_val(values, i)!r} {kind} in {tz} at the DST change",
            where=where,
            fix="choose --dst shift|earliest|latest|drop (see riskmodel validate --help)",
        )
    gap = ~amb
    if gap.any() and dst in ("shift", "earliest", "latest"):
        # Read with the offset in force before the change (clock not yet moved):
        # 02:30 on the spring night = 01:30 UTC = 03:30 summer time.
        t = sub[gap]
        before = (t - pd.Timedelta(days=1)).dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        off = before.dt.tz_localize(None) - before.dt.tz_convert("UTC").dt.tz_localize(None)
        utc[hpos[gap]] = (t - off).to_numpy("datetime64[us]")
    else:
        flags.mark(_mask(len(utc), hpos[gap]), rc("dst_nonexistent"))
    if amb.any() and dst in ("earliest", "latest"):
        t = sub[amb]
        first = np.full(len(t), dst == "earliest")  # True = summer time = the earlier instant
        res = t.dt.tz_localize(tz, ambiguous=first, nonexistent="NaT")
        utc[hpos[amb]] = res.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
    else:
        flags.mark(_mask(len(utc), hpos[amb]), rc("dst_ambiguous"))


def _mask(n: int, idx: np.ndarray) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[idx] = True
    return m


# --------------------------------------------------------------------------------------------
# Coordinates
# --------------------------------------------------------------------------------------------
# D96/TM (EPSG:3794) and D48/GK (EPSG:3912) value ranges over Slovenia.
EASTING = (370_000.0, 630_000.0)
NORTHING = (30_000.0, 200_000.0)
SI_GRIDS = {"EPSG:3794", "EPSG:3912"}


def _between(v: np.ndarray, lo_hi: tuple[float, float]) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (v >= lo_hi[0]) & (v <= lo_hi[1])


def _near_si(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    return _between(lat, (45.0, 47.0)) & _between(lon, (13.0, 17.0))


@lru_cache(maxsize=16)
def check_crs(crs: str) -> tuple[str, bool]:
    """Validate a CRS string; return ``(normalised, is_geographic)``."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        c = CRS.from_user_input(crs)
    except CRSError:
        raise ConfigError(
            f"unknown CRS {crs!r}", where="--crs", fix="use an EPSG code such as EPSG:3794"
        ) from None
    auth = c.to_authority()
    name = f"{auth[0]}:{auth[1]}" if auth else c.to_wkt()
    return name, bool(c.is_geographic)


@lru_cache(maxsize=32)
def _transformer(src: str, dst: str) -> Any:
    from pyproj import Transformer

    return Transformer.from_crs(src, dst, always_xy=True)


def transform(x: np.ndarray, y: np.ndarray, src: str, dst: str) -> tuple[np.ndarray, np.ndarray]:
    """Reproject finite points (others stay NaN); non-finite results become NaN."""
    ox = np.full(len(x), np.nan)
    oy = np.full(len(y), np.nan)
    m = np.isfinite(x) & np.isfinite(y)
    if m.any():
        if src == dst:
            ox[m], oy[m] = x[m], y[m]
        else:
            with np.errstate(all="ignore"):
                tx, ty = _transformer(src, dst).transform(x[m], y[m], errcheck=False)
            ox[m], oy[m] = tx, ty
    bad = ~(np.isfinite(ox) & np.isfinite(oy))
    ox[bad] = np.nan
    oy[bad] = np.nan
    return ox, oy


@dataclass
class Coords:
    """Resolved coordinates per row (NaN where unusable)."""

    x: np.ndarray
    y: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    source: str
    keys: tuple[str, ...] = ()  # canonical columns the points came from (none: geometry)


def coordinates(
    table: RawTable,
    mapping: dict[str, str],
    *,
    flags: RowFlags,
    crs: str | None,
    swap_latlon: bool,
    metric_crs: str,
    where: str,
    notes: list[str],
) -> Coords | None:
    """Resolve point coordinates from the geometry, lon/lat or x/y columns.

    Returns ``None`` when the file has no coordinate source at all (caller decides).
    """
    data = table.data
    geom = table.geometry
    attr = ("lon" in mapping and "lat" in mapping) or ("x" in mapping and "y" in mapping)
    bad_geom = table.bad_geometry is not None and bool(table.bad_geometry.any())
    # Vector files use their geometry, unless it is entirely absent and attributes hold points.
    if geom is not None and (not attr or bad_geom or not pd.isna(geom).all()):
        return _from_geometry(
            table,
            flags=flags,
            crs=crs,
            swap_latlon=swap_latlon,
            metric_crs=metric_crs,
            where=where,
            notes=notes,
        )
    if "lon" in mapping and "lat" in mapping:
        lon, mlon, blon = to_float(data[mapping["lon"]])
        lat, mlat, blat = to_float(data[mapping["lat"]])
        flags.mark(mlon | mlat, "missing_coordinates")
        flags.mark(blon | blat, "bad_coordinates")
        cols = f"{mapping['lon']}/{mapping['lat']}"
        return _with_keys(
            ("lon", "lat"),
            _lonlat(
                lon,
                lat,
                flags=flags,
                crs=crs,
                swap_latlon=swap_latlon,
                metric_crs=metric_crs,
                where=where,
                notes=notes,
                cols=cols,
            ),
        )
    if "x" in mapping and "y" in mapping:
        x, mx, bx = to_float(data[mapping["x"]])
        y, my, by = to_float(data[mapping["y"]])
        flags.mark(mx | my, "missing_coordinates")
        flags.mark(bx | by, "bad_coordinates")
        cols = (mapping["x"], mapping["y"])
        if crs is None:
            nx, ny = norm_name(cols[0]), norm_name(cols[1])
            if "d96" in nx and "d96" in ny:
                crs = "EPSG:3794"
                notes.append(
                    f"columns {cols[0]}/{cols[1]} read as D96/TM (EPSG:3794) from their names"
                )
            elif "d48" in nx and "d48" in ny:
                crs = "EPSG:3912"
                notes.append(
                    f"columns {cols[0]}/{cols[1]} read as D48/GK (EPSG:3912) from their names"
                )
            else:
                hint = ""
                if (_between(x, EASTING) | _between(x, NORTHING)).mean() > 0.5:
                    hint = " (values look like Slovenian grid metres)"
                raise InputError(
                    f"x/y columns {cols[0]}/{cols[1]} have no coordinate reference system{hint}",
                    where=where,
                    fix="give --crs EPSG:3794 (D96/TM) or --crs EPSG:3912 (old D48/GK)",
                )
        return _with_keys(
            ("x", "y"),
            _xy(
                x,
                y,
                crs,
                flags=flags,
                swap_latlon=swap_latlon,
                metric_crs=metric_crs,
                where=where,
                notes=notes,
                cols=cols,
            ),
        )
    return None


def _with_keys(keys: tuple[str, ...], c: Coords) -> Coords:
    c.keys = keys
    return c


def _lonlat(
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    flags: RowFlags,
    crs: str | None,
    swap_latlon: bool,
    metric_crs: str,
    where: str,
    notes: list[str],
    cols: str,
) -> Coords:
    valid = np.isfinite(lon) & np.isfinite(lat)
    proj = valid & (
        (_between(lon, EASTING) & _between(lat, NORTHING))
        | (_between(lat, EASTING) & _between(lon, NORTHING))
    )
    if valid.any() and proj.sum() > 0.5 * valid.sum():
        if crs is None or check_crs(crs)[1]:
            i = int(np.flatnonzero(proj)[0])
            raise InputError(
                f"columns {cols} hold projected metres such as {lon[i]:.0f}/{lat[i]:.0f}, not "
                "degrees",
                where=where,
                fix="give --crs EPSG:3794 (D96/TM) or EPSG:3912 (D48/GK) to read them as x/y",
            )
        notes.append(f"columns {cols} hold metres; read as x/y in {check_crs(crs)[0]}")
        return _xy(
            lon,
            lat,
            crs,
            flags=flags,
            swap_latlon=swap_latlon,
            metric_crs=metric_crs,
            where=where,
            notes=notes,
            cols=tuple(cols.split("/", 1)),
        )
    flags.mark(proj, "projected_as_lonlat")
    with np.errstate(invalid="ignore"):
        oor = valid & ~proj & ((np.abs(lat) > 90) | (np.abs(lon) > 180))
    flags.mark(oor, "coords_out_of_range")
    swapped = valid & ~oor & ~proj & _near_si(lon, lat) & ~_near_si(lat, lon)
    k = int(swapped.sum())
    if k and swap_latlon:
        lon, lat = np.where(swapped, lat, lon), np.where(swapped, lon, lat)
        notes.append(f"swapped latitude/longitude in {k} row(s) (--swap-latlon)")
    elif k:
        flags.mark(swapped, "latlon_swapped")
        share = k / max(int(valid.sum()), 1)
        if share > 0.5:
            notes.append(
                f"{k} row(s) ({share:.0%}) have latitude and longitude swapped ({cols}); "
                "give --swap-latlon or map the columns the other way"
            )
    lon = np.where(flags.ok, lon, np.nan)
    lat = np.where(flags.ok, lat, np.nan)
    x, y = transform(lon, lat, "EPSG:4326", metric_crs)
    flags.mark(np.isfinite(lon) & ~np.isfinite(x), "coords_out_of_range")
    return Coords(x, y, lon, lat, "lon/lat")


def _xy(
    x: np.ndarray,
    y: np.ndarray,
    crs: str,
    *,
    flags: RowFlags,
    swap_latlon: bool,
    metric_crs: str,
    where: str,
    notes: list[str],
    cols: tuple[str, ...],
) -> Coords:
    name, geographic = check_crs(crs)
    if geographic:
        return _lonlat(
            x,
            y,
            flags=flags,
            crs=None,
            swap_latlon=swap_latlon,
            metric_crs=metric_crs,
            where=where,
            notes=notes,
            cols="/".join(cols),
        )
    valid = np.isfinite(x) & np.isfinite(y)
    if name in SI_GRIDS:
        normal = valid & _between(x, EASTING) & _between(y, NORTHING)
        swapped = valid & _between(x, NORTHING) & _between(y, EASTING)
        if swapped.sum() > normal.sum():
            # Slovenian exports label easting Y and northing X (Gauss-Krüger convention).
            x, y = y, x
            normal, swapped = swapped, normal
            notes.append(
                f"columns {'/'.join(cols)} hold northing/easting (Gauss-Krüger convention: "
                "X = northing, Y = easting); read them swapped"
            )
        flags.mark(swapped, "xy_swapped")
    x = np.where(flags.ok, x, np.nan)
    y = np.where(flags.ok, y, np.nan)
    lon, lat = transform(x, y, name, "EPSG:4326")
    mx, my = transform(x, y, name, metric_crs)
    flags.mark(np.isfinite(x) & ~(np.isfinite(lon) & np.isfinite(mx)), "coords_out_of_range")
    with np.errstate(invalid="ignore"):
        flags.mark((np.abs(lat) > 90) | (np.abs(lon) > 180), "coords_out_of_range")
    return Coords(mx, my, lon, lat, f"x/y {name}")


def _from_geometry(
    table: RawTable,
    *,
    flags: RowFlags,
    crs: str | None,
    swap_latlon: bool,
    metric_crs: str,
    where: str,
    notes: list[str],
) -> Coords:
    import shapely

    geom = table.geometry
    flags.mark(table.bad_geometry, "invalid_geometry")
    missing = pd.isna(geom)
    flags.mark(missing, "empty_geometry")
    g = np.where(missing, None, geom)
    flags.mark(shapely.is_empty(g) & ~missing, "empty_geometry")
    tid = shapely.get_type_id(g)
    single_multi = (tid == 4) & (shapely.get_num_geometries(g) == 1)
    g = np.where(single_multi, shapely.get_geometry(g, 0), g)
    tid = np.where(single_multi, 0, tid)
    flags.mark(~missing & (tid != 0), "not_a_point")
    pts = np.where(flags.ok & (tid == 0), g, None)
    x = shapely.get_x(pts)
    y = shapely.get_y(pts)
    flags.mark(~pd.isna(pts) & ~(np.isfinite(x) & np.isfinite(y)), "invalid_geometry")
    fcrs = table.geometry_crs
    if fcrs is None:
        if crs is None:
            raise InputError(
                "the file has no coordinate reference system",
                where=where,
                fix="give --crs EPSG:4326 (or EPSG:3794 ...) or set the layer CRS in QGIS",
            )
        fcrs = crs
    elif crs is not None and check_crs(crs)[0] != check_crs(fcrs)[0]:
        notes.append(f"the file declares {check_crs(fcrs)[0]}; --crs {crs} ignored")
    return _xy(
        x,
        y,
        fcrs,
        flags=flags,
        swap_latlon=swap_latlon,
        metric_crs=metric_crs,
        where=where,
        notes=notes,
        cols=("geometry x", "geometry y"),
    )


# --------------------------------------------------------------------------------------------
# Border distance
# --------------------------------------------------------------------------------------------
class BorderIndex:
    """Fast point-to-line distance for millions of points.

    The border is densified to samples every ``spacing`` metres in a k-d tree; for each point
    the two nearest samples give candidate segments (and their neighbours), whose exact
    distances are taken. Exact in practice; never more than ``spacing / 2`` too long.

    Parameters
    ----------
    border : GeoDataFrame, GeoSeries, shapely geometry or array of geometries
        Line(s) in ``metric_crs`` (reprojected when it declares another CRS).
    metric_crs : str
        CRS of the points.
    spacing : float
        Densification step in metres.
    """

    def __init__(self, border: Any, metric_crs: str, spacing: float = 50.0) -> None:
        import shapely

        geoms = _border_geoms(border, metric_crs)
        lines = shapely.get_parts(shapely.boundary(geoms[shapely.get_dimensions(geoms) == 2]))
        lines = np.concatenate(
            [lines, shapely.get_parts(geoms[shapely.get_dimensions(geoms) == 1])]
        )
        if len(lines) == 0:
            raise InputError("the border layer holds no lines", fix="give a line layer (--border)")
        a_list, b_list = [], []
        for ln in lines:
            c = shapely.get_coordinates(ln)
            if len(c) >= 2:
                a_list.append(c[:-1])
                b_list.append(c[1:])
        if not a_list:
            raise InputError("the border layer holds no lines", fix="give a line layer (--border)")
        self.a = np.concatenate(a_list)
        self.b = np.concatenate(b_list)
        seg_len = np.hypot(*(self.b - self.a).T)
        k = np.maximum(np.ceil(seg_len / spacing).astype(np.int64), 1)
        seg = np.repeat(np.arange(len(self.a)), k)
        t = (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k)) / np.repeat(k, k)
        samples = self.a[seg] + t[:, None] * (self.b - self.a)[seg]
        samples = np.vstack([samples, self.b[-1:]])
        self.seg = np.append(seg, len(self.a) - 1)
        self.spacing = spacing
        from scipy.spatial import cKDTree

        self.tree = cKDTree(samples)

    def distance(
        self, x: np.ndarray, y: np.ndarray, upper: float, chunk: int = 1_000_000
    ) -> np.ndarray:
        """Distances in metres; ``inf`` beyond ``upper`` (+ spacing) or for NaN points."""
        out = np.full(len(x), np.inf)
        for lo in range(0, len(x), chunk):
            px, py = x[lo : lo + chunk], y[lo : lo + chunk]
            m = np.isfinite(px) & np.isfinite(py)
            if not m.any():
                continue
            p = np.column_stack([px[m], py[m]])
            d, i = self.tree.query(p, k=2, distance_upper_bound=upper + self.spacing, workers=-1)
            best = np.full(len(p), np.inf)
            nseg = len(self.a)
            for j in range(i.shape[1]):
                found = np.isfinite(d[:, j])
                if not found.any():
                    continue
                s0 = self.seg[i[found, j]]
                for s in (s0 - 1, s0, s0 + 1):
                    s = np.clip(s, 0, nseg - 1)
                    best[found] = np.minimum(best[found], _seg_dist(p[found], self.a[s], self.b[s]))
            block = out[lo : lo + chunk]
            block[m] = best
        return out


def _seg_dist(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    den = np.einsum("ij,ij->i", ab, ab)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(den > 0, np.einsum("ij,ij->i", p - a, ab) / den, 0.0)
    t = np.clip(t, 0.0, 1.0)
    q = a + t[:, None] * ab
    return np.hypot(p[:, 0] - q[:, 0], p[:, 1] - q[:, 1])


def _border_geoms(border: Any, metric_crs: str) -> np.ndarray:
    import geopandas as gpd
    import shapely

    if isinstance(border, gpd.GeoDataFrame):
        border = border.geometry
    if isinstance(border, gpd.GeoSeries):
        if (
            border.crs is not None
            and check_crs(border.crs.to_string())[0] != check_crs(metric_crs)[0]
        ):
            border = border.to_crs(metric_crs)
        geoms = np.asarray(border.values, dtype=object)
    elif isinstance(border, shapely.Geometry):
        geoms = np.array([border], dtype=object)
    else:
        geoms = np.asarray(border, dtype=object)
    return geoms[~pd.isna(geoms)]


# --------------------------------------------------------------------------------------------
# Duplicates (sort-based: pandas' hash-based duplicated() costs ~1 GB on 5 M strings)
# --------------------------------------------------------------------------------------------
def duplicated_strings(arr: pa.ChunkedArray) -> np.ndarray:
    """True for every repeat of an earlier value (first occurrence kept), via a stable sort."""
    n = len(arr)
    out = np.zeros(n, dtype=bool)
    if n < 2:
        return out
    order = pc.sort_indices(arr).to_numpy()  # stable: equal values keep file order
    srt = arr.take(pa.array(order))
    same = to_np_bool(pc.equal(srt.slice(1), srt.slice(0, n - 1)))
    out[order[1:][same]] = True
    return out


def duplicated_keys(*keys: np.ndarray) -> np.ndarray:
    """True for every repeat of an earlier key tuple (first occurrence kept)."""
    n = len(keys[0])
    out = np.zeros(n, dtype=bool)
    if n < 2:
        return out
    order = np.lexsort(keys[::-1])  # stable
    same = np.ones(n - 1, dtype=bool)
    for k in keys:
        ks = k[order]
        same &= ks[1:] == ks[:-1]
    out[order[1:][same]] = True
    return out


# --------------------------------------------------------------------------------------------
# Small helpers for report strings
# --------------------------------------------------------------------------------------------
def value_hint(data: pd.DataFrame, cols: list[str], i: int) -> str:
    """``col='value'`` pairs of row position ``i`` for messages."""
    parts = [f"{c}={_val(data[c], i)!r}" for c in cols if c in data.columns]
    return ", ".join(parts)


def as_strings(data: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """The selected rows with every value rendered as a string (blank for null)."""
    sub = data.loc[mask].reset_index(drop=True)
    out = {}
    for c in sub.columns:
        s = sub[c]
        out[c] = s.astype(STR).fillna("") if len(s) else pd.Series([], dtype=STR)
    return pd.DataFrame(out, index=pd.RangeIndex(len(sub)))

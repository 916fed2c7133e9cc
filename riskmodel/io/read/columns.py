"""Column resolution: canonical names, recognised aliases, user mappings and suggestions."""

from __future__ import annotations

import difflib
import logging
import re

from riskmodel.errors import ConfigError, InputError
from riskmodel.io.read.values import norm_name

log = logging.getLogger(__name__)


_COORD_ALIASES: dict[str, tuple[str, ...]] = {
    # Slovene: (geografska) sirina = latitude, dolzina = longitude (after ASCII folding).
    "lat": (
        "lat",
        "latitude",
        "y_wgs",
        "lat_wgs84",
        "wgs84_lat",
        "sirina",
        "geo_sirina",
        "geografska_sirina",
        "zemljepisna_sirina",
    ),
    "lon": (
        "lon",
        "lng",
        "long",
        "longitude",
        "x_wgs",
        "lon_wgs84",
        "wgs84_lon",
        "dolzina",
        "geo_dolzina",
        "geografska_dolzina",
        "zemljepisna_dolzina",
    ),
    "x": ("x", "x_d96", "e", "easting", "x_d48"),
    "y": ("y", "y_d96", "n", "northing", "y_d48"),
}
#: Canonical events column -> recognised (normalised, case-insensitive) names, preferred first.
EVENT_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": (
        "timestamp",
        "datetime",
        "date_time",
        "datum_cas",
        "datum_in_cas",
        "time",
        "date",
        "datum",
        "cas",
    ),
    **_COORD_ALIASES,
    "persons": ("persons", "st_oseb", "n_persons", "count", "group_size", "stevilo_oseb"),
    "event_id": ("event_id", "id", "incident_id", "id_dogodka"),
    "type": ("type", "event_type", "vrsta"),
    "source": ("source", "vir"),
}
#: Canonical effort column -> recognised names.
EFFORT_ALIASES: dict[str, tuple[str, ...]] = {
    "segment_id": ("segment_id", "segment", "odsek", "seg_id"),
    "start": ("start", "from", "zacetek", "start_time", "begin"),
    "end": ("end", "to", "konec", "end_time", "finish"),
    "officer_hours": ("officer_hours", "hours", "ure", "man_hours", "st_ur"),
    **_COORD_ALIASES,
}
#: Every canonical key of any reader (an unknown ``--column`` key is a configuration error).
KNOWN_KEYS = set(EVENT_ALIASES) | set(EFFORT_ALIASES)
#: Keys both readers know: one ``--column``/``[columns]`` mapping serves the events and the
#: effort file, so a mapped name may belong to the other file.
SHARED_KEYS = frozenset(EVENT_ALIASES) & frozenset(EFFORT_ALIASES)


def resolve_columns(
    columns: list[str],
    aliases: dict[str, tuple[str, ...]],
    user: dict[str, str],
    known: set[str],
    where: str,
) -> tuple[dict[str, str], list[str], dict[str, InputError]]:
    """Map canonical keys to file columns: user mapping first, then aliases (case-insensitive).

    A mapped name that is not in the file is an error, except for a key both readers share
    (``SHARED_KEYS``: the coordinates) when no column of the file could be that key either:
    the mapping was then meant for the other file (an events export with its own names beside
    an effort log keyed by segment). Such a mapping is returned in ``skipped`` with its error,
    for the reader to raise if it then lacks a location.

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
        ``(mapping, warnings, skipped)``.
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
    skipped: dict[str, InputError] = {}
    for key, name in user.items():
        if key not in aliases:
            continue  # a key of the other reader (events vs effort)
        hit = [c for c in columns if c == name] or [c for c in columns if c.lower() == name.lower()]
        hit = hit or [c for c in columns if normed[c] == norm_name(name)]
        if not hit:
            close = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            err = InputError(
                f"column {name!r} given for {key} is not in the file{hint}",
                where=where,
                fix=f"use one of the file's columns: {_list(columns)}",
            )
            if (
                key in SHARED_KEYS
                and not close
                and not any(normed[c] in aliases[key] for c in columns)
            ):
                skipped[key] = err
                continue
            raise err
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
    return mapping, notes, skipped


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
    skipped: dict[str, InputError] | None = None,
) -> InputError:
    """One-line error naming the missing columns, the file's columns and close matches; or,
    when the user's mapping named a column this file lacks (``skipped`` of
    :func:`resolve_columns`), that mapping's error."""
    if skipped:
        return next(iter(skipped.values()))
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

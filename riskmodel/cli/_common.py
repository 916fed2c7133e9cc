"""Shared option groups, the one ``KEY=VALUE`` parser, renamed-option aliases and quiet-aware
output for the thin CLI (no engine logic lives here)."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from riskmodel.config.reading import DST_POLICIES
from riskmodel.config.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- context, output


def get_settings(ctx: click.Context | None = None) -> Settings:
    """Settings resolved by the group (file + environment); commands add their flags."""
    ctx = ctx or click.get_current_context()
    return ctx.find_root().obj["settings"]


def is_quiet() -> bool:
    """Whether ``-q`` was given (only errors are shown then)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx and (ctx.find_root().obj or {}).get("quiet"))


def echo(message: str = "", *, err: bool = False) -> None:
    """Print a result line (stdout) or a progress line (``err=True``), unless ``-q``."""
    if not is_quiet():
        click.echo(message, err=err)


def note(message: str) -> None:
    """One ``riskmodel: note: ...`` line on stderr, unless ``-q``."""
    echo(f"riskmodel: note: {message}", err=True)


def workspace_out(settings: Any, *parts: str) -> str:
    """The default ``--out`` of a command in a workspace: ``out_dir/<parts>``; outside one
    there is no such folder (a usage error)."""
    if settings.workspace is None:
        raise click.UsageError("give --out DIR (outside a workspace there is no out folder)")
    return str(Path(settings.out_dir).joinpath(*parts))


# ----------------------------------------------------------------------------- dates


class DayType(click.ParamType):
    """A calendar day by the one rule of :mod:`riskmodel.config.dates` (``YYYY-MM-DD``,
    ``today``, ``tomorrow``, ``yesterday``, ``+N``/``-N``; "today" in setting ``timezone``).

    The command receives the ISO string ``YYYY-MM-DD``; anything else is a usage error (exit 2)
    naming the accepted forms, before any file is read.
    """

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from riskmodel.config.dates import parse_day
        from riskmodel.errors import ConfigError

        obj = (ctx.find_root().obj if ctx is not None else None) or {}
        settings = obj.get("settings")
        tz = settings.timezone if settings is not None else "Europe/Ljubljana"
        what = param.opts[0] if param is not None and param.opts else "date"
        try:
            return parse_day(value, what=what, tz=tz).isoformat()
        except ConfigError as exc:
            self.fail(exc.what + (f"; {exc.fix}" if exc.fix else ""), param, ctx)


DAY = DayType()

# One flag for plan and daily: a shift that already has a plan is never drawn again silently.
replan_option = click.option(
    "--replan",
    is_flag=True,
    help="Draw a shift that already has a plan again; needs --reason, recorded in the audit "
    "log. Without it such a shift is refused (a redraw would replace a random draw).",
)


# ----------------------------------------------------------------------------- KEY=VALUE


def parse_pairs(pairs: tuple[str, ...], option: str, *, json_values: bool = True) -> dict[str, Any]:
    """Parse repeated ``KEY=VALUE`` flags into a dict (later flags win).

    Parameters
    ----------
    pairs : tuple of str
        The raw flag values.
    option : str
        The flag, for the error message.
    json_values : bool
        Decode values as JSON where they parse (numbers, ``true``, ``{}``, ``[12, 14]``); else
        keep every value a string (column names).

    Returns
    -------
    dict
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, val = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=option)
        key, val = key.strip(), val.strip()
        if json_values:
            try:
                out[key] = json.loads(val)
                continue
            except ValueError:
                pass
        out[key] = val
    return out


def pairs_option(
    *decls: str, help: str, metavar: str = "NAME=VALUE", json_values: bool = True, **kw: Any
) -> Callable[[F], F]:
    """A repeatable ``KEY=VALUE`` option whose value reaches the command as a dict."""

    def convert(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict:
        return parse_pairs(value, param.opts[0], json_values=json_values)

    return click.option(*decls, multiple=True, metavar=metavar, callback=convert, help=help, **kw)


# ----------------------------------------------------------------------------- renamed options


def _given(value: Any) -> bool:
    return value is not None and value != () and value != {}


def renamed_option(
    old: str, new: str, dest: str, *, required: bool = False, **option_kw: Any
) -> Callable[[F], F]:
    """Keep ``old`` as a hidden spelling of option ``new`` (parameter ``dest``).

    The old spelling gives the same value and a one-line deprecation note on stderr. Giving
    both is a usage error (``KEY=VALUE`` dicts are merged instead, the new spelling winning).
    With ``required`` the new option (declared not required) must be given in one spelling.
    ``option_kw`` are click settings the old spelling needs to parse like the new one.
    """
    alias = "renamed_" + old.lstrip("-").replace("-", "_")

    def deco(f: F) -> F:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            value = kwargs.pop(alias)
            if _given(value):
                note(f"{old} is deprecated; use {new}")
                current = kwargs.get(dest)
                if isinstance(value, dict):
                    kwargs[dest] = {**value, **(current or {})}
                elif _given(current):
                    raise click.UsageError(f"give {new} only, not also its old spelling {old}")
                else:
                    kwargs[dest] = value
            if required and not _given(kwargs.get(dest)):
                raise click.MissingParameter(param_hint=f"'{new}'", param_type="option")
            return f(*args, **kwargs)

        opt = click.option(old, alias, hidden=True, **option_kw)
        return opt(wrapper)  # type: ignore[return-value]

    return deco


def renamed_pairs(old: str, new: str, dest: str, *, json_values: bool = True) -> Callable[[F], F]:
    """Hidden old spelling of a ``KEY=VALUE`` option (see :func:`renamed_option`)."""

    def convert(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict:
        return parse_pairs(value, old, json_values=json_values)

    return renamed_option(old, new, dest, multiple=True, callback=convert)


# ----------------------------------------------------------------------------- option groups


def out_option(
    required: bool = True, help: str = "Output folder (created if missing)."
) -> Callable[[F], F]:
    """``--out DIR``."""
    return click.option(
        "--out", "out", type=click.Path(file_okay=False), required=required, help=help
    )


def world_option() -> Callable[[F], F]:
    """``--world default|patrolled``: the simulated world (``simulate`` and ``trial``)."""
    from riskmodel.sim.params import WORLDS  # plain dataclasses: cheap at start-up

    return click.option(
        "--world",
        type=click.Choice(list(WORLDS)),
        default="default",
        show_default=True,
        help="patrolled: records made by patrols that follow the records (METHODOLOGY.md).",
    )


def seed_option(
    help: str = "Random seed (deterministic output).", default: int | None = 0
) -> Callable[[F], F]:
    """``--seed N``."""
    return click.option(
        "--seed", type=int, default=default, show_default=default is not None, help=help
    )


@dataclass(frozen=True)
class Inputs:
    """What the reader options name: files and the keyword arguments for the readers."""

    events: Any  # a path (str), a database source (io.read.postgis.DbSource) or None
    effort: Any
    border: str | None
    read_kwargs: dict[str, Any] = field(default_factory=dict)


# Parameter name -> reader keyword (None: not a reader keyword).
_READER_PARAMS = {
    "events": None,
    "effort": None,
    "events_table": None,
    "events_sql": None,
    "effort_table": None,
    "effort_sql": None,
    "quarantine_table": None,
    "border": None,
    "assume_tz": "assume_tz",
    "dst": "dst",
    "encoding": "encoding",
    "delimiter": "delimiter",
    "input_crs": "crs",
    "columns": "columns",
    "swap_latlon": "swap_latlon",
    "max_distance_m": "max_distance_m",
    "strict": "strict",
}


def _reader_option_list(required: bool) -> list[Callable[[F], F]]:
    path = click.Path(dir_okay=False)
    return [
        click.option(
            "--events",
            type=path,
            default=None,
            help="Events file (CSV, GeoJSON, GeoPackage, Parquet, Shapefile; default: setting "
            "events, in a workspace data/events.csv), or a database (postgresql://user@host/db "
            "or service=NAME) with --events-table/--events-sql."
            + ("" if required else " Needed with --date."),
        ),
        click.option(
            "--effort",
            type=path,
            default=None,
            help="Patrol effort log (segment_id or location, start, end, officer_hours; default: "
            "setting effort, in a workspace data/effort.csv when it exists), or a database with "
            "--effort-table/--effort-sql.",
        ),
        click.option(
            "--events-table",
            default=None,
            metavar="SCHEMA.TABLE",
            help="Read events from this table (of --events URI, else setting database).",
        ),
        click.option(
            "--events-sql",
            default=None,
            metavar="SELECT",
            help="... or from this query (run read-only).",
        ),
        click.option(
            "--effort-table", default=None, metavar="SCHEMA.TABLE", help="Effort from a table."
        ),
        click.option("--effort-sql", default=None, metavar="SELECT", help="... or a query."),
        click.option(
            "--quarantine-table",
            default=None,
            metavar="SCHEMA.TABLE",
            help="Also write rows rejected from a database source to this table.",
        ),
        click.option(
            "--border",
            type=path,
            default=None,
            help="Border line file (default: setting border, else the bundled SI-HR border).",
        ),
        click.option(
            "--assume-tz",
            default=None,
            help="Zone for naive timestamps, e.g. Europe/Ljubljana (else they are rejected).",
        ),
        click.option(
            "--dst",
            type=click.Choice(DST_POLICIES),
            default=None,
            help="Naive local times that do not exist / occur twice at DST changes: raise an "
            "error (default); shift (read with the pre-change offset; ambiguous quarantined); "
            "earliest/latest occurrence; drop (quarantine).",
        ),
        click.option(
            "--encoding", default=None, help="Text encoding of CSV inputs (default: detected)."
        ),
        click.option(
            "--delimiter",
            default=None,
            help="Delimiter of CSV inputs: , ; tab | (default: sniffed per file).",
        ),
        click.option(
            "--crs",
            "input_crs",
            default=None,
            help="CRS of x/y columns, e.g. EPSG:3794 or EPSG:3912.",
        ),
        pairs_option(
            "--column",
            "columns",
            metavar="CANON=NAME",
            json_values=False,
            help="Map a canonical column to your column name (repeatable), e.g. "
            "timestamp=DATUM_CAS; adds to [columns] of the configuration.",
        ),
        click.option(
            "--swap-latlon",
            is_flag=True,
            help="Swap lat/lon in rows where only the swapped pair lies in Slovenia.",
        ),
        click.option(
            "--max-distance-m",
            type=float,
            default=None,
            help="Quarantine events farther from the border (default: setting max_distance_m).",
        ),
        click.option("--strict", is_flag=True, help="Any rejected row is an error."),
    ]


def _workspace_files(events: Any, effort: Any, required: bool) -> tuple[Any, Any]:
    """``--events``/``--effort``, else the settings ``events``/``effort`` (in a workspace
    ``data/events.csv``/``data/effort.csv``) when that file exists; a missing ``--events``
    that is required and has no such file is a usage error naming both ways to give it."""
    s = get_settings()
    if events is None and s.events and Path(s.events).is_file():
        events = s.events
    if effort is None and s.effort and Path(s.effort).is_file():
        effort = s.effort
    if events is None and required:
        where = f" (no file at {s.events})" if s.events else ""
        raise click.UsageError(
            f"missing --events{where}: pass --events FILE, or put the events file at the "
            "workspace's data/events.csv (or set events in riskmodel.toml)"
        )
    return events, effort


def reader_options(required: bool = True) -> Callable[[F], F]:
    """The reader option group of every command that reads events or effort files.

    The command receives one ``inputs`` argument (:class:`Inputs`) whose ``read_kwargs`` go to
    the readers unchanged (see :func:`riskmodel.api.read_inputs`).
    """

    def deco(f: F) -> F:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            vals = {name: kwargs.pop(name) for name in _READER_PARAMS}
            read_kwargs = {
                key: vals[name]
                for name, key in _READER_PARAMS.items()
                if key is not None and _given(vals[name])
            }
            # Flags and database settings first, then the workspace's data files.
            events, effort = _workspace_files(*_sources(vals), required)
            inputs = Inputs(events, effort, vals["border"], read_kwargs)
            return f(*args, inputs=inputs, **kwargs)

        for opt in reversed(_reader_option_list(required)):
            wrapper = opt(wrapper)
        return wrapper  # type: ignore[return-value]

    return deco


def _sources(vals: dict[str, Any]) -> tuple[Any, Any]:
    """Events and effort: a file path, a database source, or None (see
    :func:`riskmodel.io.read.postgis.resolve_source`)."""
    from riskmodel.io.read.postgis import resolve_source

    settings = get_settings()
    out = []
    for kind in ("events", "effort"):
        out.append(
            resolve_source(
                settings,
                kind,
                vals[kind],
                table=vals[f"{kind}_table"],
                sql=vals[f"{kind}_sql"],
                quarantine_table=vals["quarantine_table"],
            )
        )
    return out[0], out[1]


def model_options(help_model: str = "") -> Callable[[F], F]:
    """``--model``, ``--trust-model``, ``--models-root`` and ``--allow-external-models``:
    which bundle to load and how far to trust it."""
    opts = [
        click.option(
            "--model",
            default=None,
            help=help_model
            or "Model bundle id or folder (default: the workspace's default model, else the "
            "newest bundle whose signature verifies).",
        ),
        click.option(
            "--trust-model",
            is_flag=True,
            help="Accept a bundle that is unsigned, signed with another key or outside the "
            "models root (check where it came from first); logged and recorded as "
            "trusted_unsigned in the provenance.",
        ),
        models_root_option(),
    ]

    def deco(f: F) -> F:
        for opt in reversed(opts):
            f = opt(f)
        return f

    return deco


def _allow_external_models(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    # Confirming the configured models root on the command line is what a typed
    # --models-root does: the root then counts as given by a flag (see api.models_root).
    if value:
        obj = ctx.find_root().obj
        s = obj["settings"]
        obj["settings"] = s.with_flags(models_root=s.models_root)


def models_root_option() -> Callable[[F], F]:
    """``--models-root DIR`` and ``--allow-external-models``."""

    def deco(f: F) -> F:
        f = click.option(
            "--allow-external-models",
            is_flag=True,
            expose_value=False,
            callback=_allow_external_models,
            help="Accept a models root outside the workspace set by a settings file or "
            "the environment.",
        )(f)
        return click.option(
            "--models-root",
            default=None,
            help="Model registry folder (default: setting models_root; outside the workspace "
            "only with this flag or --allow-external-models).",
        )(f)

    return deco


def one_day_or_range(
    date: str | None, date_from: str | None, to: str | None
) -> tuple[str, str | None]:
    """``--date D`` (one day) or ``--from D --to E`` (a range) -> (first day, last day or None).

    ``--date D --to E`` is the old range spelling: accepted with a note.
    """
    if date is not None and date_from is not None:
        raise click.UsageError("give --date D for one day or --from D --to E, not both")
    if date is not None:
        if to is not None:
            note("--date D --to E is deprecated; use --from D --to E")
        return date, to
    if date_from is None or to is None:
        raise click.UsageError("give --date D for one day or --from D --to E for a range")
    return date_from, to

"""Shared click option decorators and context for the thin CLI (no logic lives here)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click

from riskmodel.config.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("riskmodel")


def get_settings(ctx: click.Context | None = None) -> Settings:
    """Settings resolved by the group (file + environment); commands add their flags."""
    ctx = ctx or click.get_current_context()
    return ctx.find_root().obj["settings"]


def out_option(
    required: bool = True, help: str = "Output folder (created if missing)."
) -> Callable[[F], F]:
    """``--out DIR``."""
    return click.option(
        "--out", "out", type=click.Path(file_okay=False), required=required, help=help
    )


def seed_option(
    help: str = "Random seed (deterministic output).", default: int | None = 0
) -> Callable[[F], F]:
    """``--seed N``."""
    return click.option(
        "--seed", type=int, default=default, show_default=default is not None, help=help
    )


def events_options(required: bool = True) -> Callable[[F], F]:
    """Input options shared by every command that reads events/effort files."""

    def deco(f: F) -> F:
        opts = [
            click.option(
                "--events",
                type=click.Path(dir_okay=False),
                required=required,
                help="Events file (CSV, GeoJSON, GeoPackage, Parquet, Shapefile).",
            ),
            click.option(
                "--effort",
                type=click.Path(dir_okay=False),
                default=None,
                help="Patrol effort log (segment_id or location, start, end, officer_hours).",
            ),
            click.option(
                "--border",
                type=click.Path(dir_okay=False),
                default=None,
                help="Border line file (default: bundled SI-HR border).",
            ),
            click.option(
                "--assume-tz",
                default=None,
                help="Zone for naive timestamps, e.g. Europe/Ljubljana (else they are rejected).",
            ),
            click.option(
                "--crs",
                "input_crs",
                default=None,
                help="CRS of x/y columns, e.g. EPSG:3794 or EPSG:3912.",
            ),
            click.option(
                "--column",
                "columns",
                multiple=True,
                metavar="CANON=NAME",
                help="Map a canonical column to your column name (repeatable), e.g. timestamp=DATUM_CAS.",
            ),
            click.option("--strict", is_flag=True, help="Any rejected row is an error."),
        ]
        for o in reversed(opts):
            f = o(f)
        return f

    return deco


def parse_columns(pairs: tuple[str, ...], settings: Settings) -> dict[str, str]:
    """Merge ``[columns]`` from the config file with ``--column CANON=NAME`` flags (flags win)."""
    mapping = dict(settings.columns)
    for p in pairs:
        if "=" not in p:
            raise click.BadParameter(f"{p!r} is not CANON=NAME", param_hint="--column")
        k, v = p.split("=", 1)
        mapping[k.strip()] = v.strip()
    return mapping

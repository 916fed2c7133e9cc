"""Command-line interface: ``riskmodel <verb>``. Thin: parses flags, calls the library,
translates library errors into one-line messages and exit codes."""

from __future__ import annotations

import atexit
import gc
import logging
import os
import signal
import sys
import threading
from typing import Any

import click

from riskmodel._timing import mark
from riskmodel.config.settings import load_settings
from riskmodel.errors import EXIT_INTERRUPTED, RiskModelError

log = logging.getLogger(__name__)

GC_THRESHOLD = 50_000  # gen-0 allocations between collections in a command (default 700)
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Group(click.Group):
    """Group that turns engine errors into one line on stderr and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        mark("command")  # interpreter start and CLI imports end here (bench/bench_cli.py)
        try:
            return super().invoke(ctx)
        except RiskModelError as exc:
            click.echo(f"riskmodel: error: {exc.one_line()}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo(
                "riskmodel: interrupted; no half-written file was left behind "
                "(score keeps the previous complete set)",
                err=True,
            )
            ctx.exit(EXIT_INTERRUPTED)


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    # The version is looked up only here: importlib.metadata would slow every start.
    if value and not ctx.resilient_parsing:
        from riskmodel import __version__

        click.echo(f"riskmodel, version {__version__}")
        ctx.exit()


def _sigterm(signum: int, frame: Any) -> None:  # turn kill into the same clean path as Ctrl-C
    raise KeyboardInterrupt


@click.group(cls=_Group, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors: no results, notes or progress.")
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Configuration TOML (default ./riskmodel.toml if present).",
)
@click.option(
    "--workspace",
    type=click.Path(file_okay=False),
    default=None,
    help="Station workspace folder (default: RISKMODEL_WORKSPACE, else the nearest "
    "riskmodel.toml with [workspace] upwards; create one with 'riskmodel init DIR').",
)
@click.pass_context
def main(
    ctx: click.Context, verbose: int, quiet: bool, config: str | None, workspace: str | None
) -> None:
    """Risk engine for randomised, risk-weighted, legally capped spot checks on the
    Slovenia-Croatia border."""
    # A command allocates mostly long-lived objects (modules, frames, arrays): at the default
    # gen-0 threshold (700) the collector runs thousands of times during the imports alone.
    # Rarer young collections; cycles are still collected.
    gc.set_threshold(GC_THRESHOLD, 20, 20)
    logging.basicConfig(
        level=logging.WARNING, format="riskmodel: %(levelname)s: %(message)s", stream=sys.stderr
    )
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _sigterm)
    ctx.ensure_object(dict)
    _verbosity(ctx, quiet, verbose)
    try:
        ctx.obj["settings"] = load_settings(config, workspace=workspace)
    except RiskModelError as exc:
        click.echo(f"riskmodel: error: {exc.one_line()}", err=True)
        ctx.exit(exc.exit_code)


def _verbosity(ctx: click.Context, quiet: bool, verbose: int) -> None:
    """Apply ``-q`` / ``-v`` (given before or after the command name) to output and logs."""
    obj = ctx.find_root().ensure_object(dict)
    obj["quiet"] = quiet = bool(quiet or obj.get("quiet"))
    obj["verbose"] = verbose = max(verbose, obj.get("verbose", 0))
    level = (
        logging.ERROR
        if quiet
        else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    )
    logging.getLogger().setLevel(level)
    logging.getLogger(__name__.partition(".")[0]).setLevel(level)  # the whole package


def _command_verbosity(cmd: click.Command) -> None:
    """Give a command its own ``-q``/``-v`` so ``riskmodel score -q ...`` quiets it too."""

    def set_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if value:
            _verbosity(ctx, True, 0)

    def set_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
        if value:
            _verbosity(ctx, False, value)

    cmd.params.append(
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=set_quiet,
            help="Only errors (same as before the command).",
        )
    )
    cmd.params.append(
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            is_eager=True,
            callback=set_verbose,
            help="More log output (same as before the command).",
        )
    )


def _register() -> None:
    # Each module adds its commands to ``main``.
    from riskmodel.cli import (  # noqa: F401
        _core,
        _daily,
        _db,
        _model,
        _plan,
        _publish,
        _score,
        _trial,
        _validate,
    )

    todo = list(main.commands.values())
    while todo:
        cmd = todo.pop()
        if isinstance(cmd, click.Group):
            todo.extend(cmd.commands.values())
        elif not any("-q" in p.opts for p in cmd.params):
            _command_verbosity(cmd)


_register()


def run() -> None:
    """The ``riskmodel`` command: :func:`main`, then a quick exit.

    Tearing the interpreter down (freeing every module, frame and array one by one) took
    ~0.35 s after a ``score`` whose files were already written, synced and renamed into
    place. So, once the command has returned, the process flushes its output, runs the
    ``atexit`` handlers (logging, the phase profile, finalizers) and leaves with
    ``os._exit`` and the command's exit code. With other threads still running, or under a
    profiler, tracer or coverage, it takes the normal exit (which waits for them).
    """
    try:
        main()
        code = 0
    except SystemExit as exc:
        if exc.code is not None and not isinstance(exc.code, int):
            raise  # a message to print: Python's own exit does that
        code = exc.code or 0
    if threading.active_count() > 1 or sys.gettrace() or sys.getprofile():
        sys.exit(code)  # threads to wait for, or a profiler/coverage that writes when we exit
    atexit._run_exitfuncs()  # noqa: SLF001 - what the normal exit would run first
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (| head): the reader has gone
            pass
    os._exit(code)

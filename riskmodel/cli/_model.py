"""Commands: train, backtest, models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from riskmodel.cli import main
from riskmodel.cli._common import events_options, get_settings, parse_columns


def read_kwargs(
    assume_tz: str | None, input_crs: str | None, columns: tuple[str, ...], strict: bool
) -> dict[str, Any]:
    """Reader options shared by every command that reads events."""
    return {
        "columns": parse_columns(columns, get_settings()),
        "assume_tz": assume_tz,
        "crs": input_crs,
        "strict": strict,
    }


def _progress(msg: str) -> None:
    # Progress on stderr only when it is a terminal (quiet in pipes and CI logs).
    ctx = click.get_current_context()
    if not ctx.find_root().obj.get("quiet") and click.get_text_stream("stderr").isatty():
        click.echo(msg, err=True)


@main.command("train")
@events_options()
@click.option("--until", required=True, help="Last local date (YYYY-MM-DD) used for training.")
@click.option("--models-root", default=None, help="Model registry folder (default ./models).")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Model parameter (repeatable), e.g. n_estimators=300.",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS|local",
    help="Build features and train on a Dask cluster (tcp://HOST:8786) or 'local' (in-process "
    "cluster), in bounded memory; needs the 'dask' extra. Default: no Dask.",
)
def train_cmd(
    events: str,
    effort: str | None,
    border: str | None,
    assume_tz: str | None,
    input_crs: str | None,
    columns: tuple[str, ...],
    strict: bool,
    until: str,
    models_root: str | None,
    params: tuple[str, ...],
    scheduler: str | None,
) -> None:
    """Train a model on events up to --until and write a versioned bundle."""
    from riskmodel.api import train_bundle
    from riskmodel.model.pipeline import read_dataset

    s = get_settings().with_flags(models_root=models_root)
    _progress("reading and validating inputs ...")
    ds = read_dataset(
        s,
        events,
        effort,
        border=border,
        end=until,
        read_kwargs=read_kwargs(assume_tz, input_crs, columns, strict),
        quarantine_dir=Path(s.models_root) / "_quarantine",
    )
    _progress("building features and training ...")
    if scheduler:  # Dask is imported only here
        from riskmodel.model.engine import DaskEngine

        with DaskEngine(scheduler) as engine:
            path, man = train_bundle(
                ds, until, settings=s, params=_params(params), root=s.models_root, engine=engine
            )
    else:
        path, man = train_bundle(ds, until, settings=s, params=_params(params), root=s.models_root)
    fit = man["fit"]
    click.echo(f"model {man['model_id'] if 'model_id' in man else path.name} -> {path}")
    click.echo(
        f"  trained on {fit['rows_train']} segment-shifts ({fit['rows_kept']} kept), "
        f"{fit['best_iteration'] + 1} trees, {fit.get('train_seconds', 0):.1f} s"
    )
    tab = man.get("metrics", {}).get("table", {})
    if tab:
        click.echo(
            "  validation HR@10%: "
            + ", ".join(
                f"{k} {v['hr_10']:.3f}" for k, v in tab.items() if v.get("hr_10") is not None
            )
        )


def _params(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in pairs:
        if "=" not in p:
            raise click.BadParameter(f"{p!r} is not NAME=VALUE", param_hint="--param")
        k, v = p.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


@main.command("backtest")
@events_options()
@click.option(
    "--truth",
    type=click.Path(dir_okay=False),
    default=None,
    help="Simulator truth (truth.parquet/csv): adds the oracle.",
)
@click.option("--from", "start", required=True, help="First local date predicted (YYYY-MM-DD).")
@click.option("--to", "end", required=True, help="Last local date predicted (YYYY-MM-DD).")
@click.option("--step-days", type=int, default=28, show_default=True, help="Retrain every N days.")
@click.option(
    "--compare-exposure",
    is_flag=True,
    help="Also train a variant without effort features and compare against true crossings (needs --truth).",
)
@click.option(
    "--param", "params", multiple=True, metavar="NAME=VALUE", help="Model parameter (repeatable)."
)
@click.option(
    "--out", "out", type=click.Path(file_okay=False), required=True, help="Report folder."
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS|local",
    help="Build features and train on a Dask cluster (tcp://HOST:8786) or 'local' (in-process "
    "cluster), in bounded memory; needs the 'dask' extra. Default: no Dask.",
)
def backtest_cmd(
    events: str,
    effort: str | None,
    border: str | None,
    assume_tz: str | None,
    input_crs: str | None,
    columns: tuple[str, ...],
    strict: bool,
    truth: str | None,
    start: str,
    end: str,
    step_days: int,
    compare_exposure: bool,
    params: tuple[str, ...],
    out: str,
    scheduler: str | None,
) -> None:
    """Rolling-origin backtest of the model against baselines (and the oracle)."""
    from riskmodel.evaluation.backtest import run_backtest, short_table, write_report
    from riskmodel.io.read.truth import read_truth
    from riskmodel.model.pipeline import read_dataset

    s = get_settings()
    ds = read_dataset(
        s,
        events,
        effort,
        border=border,
        end=end,
        read_kwargs=read_kwargs(assume_tz, input_crs, columns, strict),
        quarantine_dir=out,
    )
    tr = read_truth(truth) if truth else None
    kw = {
        "step_days": step_days,
        "truth": tr,
        "params": _params(params),
        "compare_exposure": compare_exposure and tr is not None,
    }
    if scheduler:  # Dask is imported only here
        from riskmodel.model.engine import DaskEngine

        with DaskEngine(scheduler) as engine:
            res = run_backtest(ds, start, end, engine=engine, **kw)
    else:
        res = run_backtest(ds, start, end, **kw)
    paths = write_report(res, out)
    click.echo(short_table(res.table))
    if "exposure" in res.info:
        e = res.info["exposure"]
        click.echo(
            "true-crossing HR@10%: "
            + ", ".join(f"{k} {v['true_crossing_hr_10']:.3f}" for k, v in e.items())
        )
    click.echo(f"report: {paths['report']} ({res.info['seconds']:.0f} s)")


@main.group("models")
def models_grp() -> None:
    """List and inspect model bundles."""


@models_grp.command("list")
@click.option("--models-root", default=None, help="Model registry folder.")
def models_list(models_root: str | None) -> None:
    """List bundles with their window and headline metrics."""
    from riskmodel.model.bundle import list_bundles

    s = get_settings().with_flags(models_root=models_root)
    rows = list_bundles(s.models_root)
    if not rows:
        click.echo(f"no bundles in {s.models_root}")
        return
    for m in rows:
        tab = m.get("metrics", {}).get("table", {}).get("model", {})
        hr = tab.get("hr_10")
        tw = m.get("training_window", {})
        click.echo(
            f"{m.get('model_id', '?'):<28} {tw.get('from', '?')}..{tw.get('until', '?')}  "
            f"HR@10% {'' if hr is None else f'{hr:.3f}'}  {m['status']}"
        )


@models_grp.command("show")
@click.argument("model_id")
@click.option("--models-root", default=None, help="Model registry folder.")
def models_show(model_id: str, models_root: str | None) -> None:
    """Print a bundle's manifest (verified) and model card."""
    from riskmodel.model.bundle import verify_bundle

    s = get_settings().with_flags(models_root=models_root)
    p = Path(model_id) if Path(model_id).is_dir() else Path(s.models_root) / model_id
    man = verify_bundle(p, root=s.models_root, trust=Path(model_id).is_dir())
    show = {k: v for k, v in man.items() if k not in ("feature_spec",)}
    click.echo(json.dumps(show, indent=2, sort_keys=True, default=str))
    card = p / "MODEL_CARD.md"
    if card.is_file():
        click.echo(card.read_text())

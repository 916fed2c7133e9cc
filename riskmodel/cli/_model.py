"""Commands: train, backtest, models."""

from __future__ import annotations

import json
import logging
import sys

import click

from riskmodel.cli import main
from riskmodel.cli._common import (
    DAY,
    Inputs,
    echo,
    get_settings,
    models_root_option,
    note,
    pairs_option,
    reader_options,
    renamed_option,
    renamed_pairs,
    workspace_out,
)

log = logging.getLogger(__name__)

_SCHEDULER_HELP = (
    "Build features and train on a Dask cluster (tcp://HOST:8786) or 'local' (in-process "
    "cluster), in bounded memory; needs the 'dask' extra. Default: no Dask."
)


def _model_param_options(f):  # noqa: ANN001, ANN202
    f = renamed_pairs("--param", "--model-param", "model_params")(f)
    return pairs_option(
        "--model-param",
        "model_params",
        help="Model parameter (repeatable), e.g. n_estimators=300 or n_bags=3.",
    )(f)


def _progress(msg: str) -> None:
    # Progress on stderr only when it is a terminal (quiet in pipes and CI logs).
    if sys.stderr.isatty():
        echo(msg, err=True)


@main.command("train")
@reader_options()
@click.option(
    "--to",
    "to",
    type=DAY,
    default=None,
    help="Last local date used for training (default: the last day whose shifts are all "
    "over, and not after the last event).",
)
@renamed_option("--until", "--to", "to", type=DAY)
@models_root_option()
@_model_param_options
@click.option("--scheduler", default=None, metavar="ADDRESS|local", help=_SCHEDULER_HELP)
def train_cmd(
    inputs: Inputs, to: str, models_root: str | None, model_params: dict, scheduler: str | None
) -> None:
    """Train a model on events up to --to (default: the last full day) and write a signed,
    versioned bundle.

    In a workspace the bundle becomes the default model once its signature verifies.
    Without a workspace or RISKMODEL_SIGNING_KEY the bundle is unsigned (score and plan then
    need --trust-model)."""
    from riskmodel.api import models_root as checked_root
    from riskmodel.api import read_inputs, train_bundle, training_engine
    from riskmodel.api._model import default_training_end

    s = get_settings().with_flags(models_root=models_root)
    root = checked_root(s)
    _progress("reading and validating inputs ...")
    ds = read_inputs(
        s,
        inputs.events,
        inputs.effort,
        border=inputs.border,
        end=to,  # none: up to the last event
        read_kwargs=inputs.read_kwargs,
        quarantine_dir=root / "_quarantine",
    )
    if to is None:
        to = default_training_end(ds)
        note(
            f"training up to {to}: the last day whose shifts are all over, not after the last event (--to to choose)"
        )
    _progress("building features and training ...")
    with training_engine(scheduler) as engine:
        path, man = train_bundle(ds, to, settings=s, params=model_params, engine=engine)
    fit = man["fit"]
    echo(f"model {man['model_id']} -> {path}")
    echo(
        f"  trained on {fit['rows_train']} segment-shifts ({fit['rows_kept']} kept), "
        f"{fit['best_iteration'] + 1} trees, {fit.get('train_seconds', 0):.1f} s"
    )
    tab = man.get("metrics", {}).get("table", {})
    if tab:
        echo(
            "  validation HR@10% (recorded events): "
            + ", ".join(
                f"{k} {v['hr_10']:.3f}" for k, v in tab.items() if v.get("hr_10") is not None
            )
        )
    if man["status"] != "verified":
        echo("  unsigned (no workspace key, no RISKMODEL_SIGNING_KEY): score needs --trust-model")
    elif man.get("default"):
        echo("  signed; now the workspace's default model")
    else:
        echo("  signed")
    below = man.get("below_baseline")
    if below:
        back = man.get("previous_default")
        echo(
            f"riskmodel: warning: on its validation windows the model ranks below the "
            f"{below['baseline']} baseline (HR@10% {below['model']:.3f} vs "
            f"{below['baseline_hr_10']:.3f})"
            + (
                f"; to keep the previous default: riskmodel models use {back}"
                if man.get("default") and back
                else ""
            ),
            err=True,
        )


@main.command("backtest")
@reader_options()
@click.option(
    "--truth",
    type=click.Path(dir_okay=False),
    default=None,
    help="Simulator truth (truth.parquet/csv): adds the oracle and the records-vs-truth table.",
)
@click.option(
    "--against",
    type=click.Choice(["records", "truth"]),
    default="records",
    show_default=True,
    help="Score recorded events, or all true crossings (needs --truth); the report says which.",
)
@click.option("--from", "date_from", type=DAY, required=True, help="First local date predicted.")
@click.option("--to", "to", type=DAY, required=True, help="Last local date predicted.")
@click.option("--step-days", type=int, default=28, show_default=True, help="Retrain every N days.")
@click.option(
    "--compare-exposure",
    is_flag=True,
    help="Also train a variant without effort features and compare against true crossings (needs --truth).",
)
@_model_param_options
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default=None,
    help="Report folder (default in a workspace: out/backtest_<from>_<to>).",
)
@click.option("--scheduler", default=None, metavar="ADDRESS|local", help=_SCHEDULER_HELP)
def backtest_cmd(
    inputs: Inputs,
    truth: str | None,
    against: str,
    date_from: str,
    to: str,
    step_days: int,
    compare_exposure: bool,
    model_params: dict,
    out: str | None,
    scheduler: str | None,
) -> None:
    """Rolling-origin backtest of the model against baselines (and the oracle)."""
    from riskmodel.api import backtest, read_inputs
    from riskmodel.cli._common import is_quiet
    from riskmodel.evaluation.backtest import short_table

    def progress(done: int, total: int, msg: str) -> None:
        # A bar on a terminal, one log line per origin in pipes and logs; nothing with -q.
        if not sys.stderr.isatty():
            click.echo(f"riskmodel: backtest: {msg}", err=True)
            return
        bar = "#" * (24 * done // max(total, 1))
        click.echo(f"\r[{bar:<24}] {done}/{total} {msg[:60]:<60}", err=True, nl=done >= total)

    if against == "truth" and not truth:
        raise click.UsageError("--against truth needs --truth FILE (the simulator's truth)")
    settings = get_settings()
    if out is None:
        out = workspace_out(settings, f"backtest_{date_from}_{to}")
    _progress("reading and validating inputs ...")
    ds = read_inputs(
        settings,
        inputs.events,
        inputs.effort,
        border=inputs.border,
        end=to,
        read_kwargs=inputs.read_kwargs,
        quarantine_dir=out,
    )
    res, paths = backtest(
        ds,
        date_from,
        to,
        out=out,
        truth=truth,
        step_days=step_days,
        params=model_params,
        compare_exposure=compare_exposure,
        scheduler=scheduler,
        progress=None if is_quiet() else progress,
        against=against,
    )
    if "target_text" in res.info:
        echo(f"scored against {res.info['target_text']}")
    echo(short_table(res.table))
    for tgt, sb in res.info.get("side_by_side", {}).items():
        echo(
            f"HR@10% vs {tgt}: "
            + ", ".join(f"{m} {r['hr_10']:.3f}" for m, r in sb["methods"].items())
        )
    if "exposure" in res.info:
        e = res.info["exposure"]
        echo(
            "true-crossing HR@10%: "
            + ", ".join(f"{k} {v['true_crossing_hr_10']:.3f}" for k, v in e.items())
        )
    if res.verdict()["text"]:
        echo(res.verdict()["text"])
    echo(f"report: {paths['report']} ({res.info['seconds']:.0f} s)")


@main.group("models")
def models_grp() -> None:
    """List, inspect and choose model bundles."""


def _hr10_vs_baseline(m: dict) -> str:
    table = m.get("metrics", {}).get("table", {}) if isinstance(m.get("metrics"), dict) else {}
    own = (table.get("model") or {}).get("hr_10")
    base = [
        (v.get("hr_10"), k)
        for k, v in table.items()
        if k not in ("model", "oracle") and isinstance(v, dict) and v.get("hr_10") is not None
    ]
    best = max(base) if base else None
    text = "-" if own is None else f"{own:.3f}"
    return text + (f" vs {best[0]:.3f} {best[1]}" if best else "")


@models_grp.command("list")
@models_root_option()
def models_list(models_root: str | None) -> None:
    """List bundles: id, created, training window, validation HR@10% against the best
    baseline, status (verified / unsigned / REFUSED: reason); * marks the default model."""
    from riskmodel.api import list_models

    s = get_settings().with_flags(models_root=models_root)
    rows = list_models(s)
    if not rows:
        echo(f"no bundles in {s.models_root}")
        return
    table = [("", "id", "created", "training window", "val. HR@10% vs best baseline", "status")]
    for m in rows:
        tw = m.get("training_window") if isinstance(m.get("training_window"), dict) else {}
        table.append(
            (
                "*" if m.get("default") else "",
                str(m["model_id"]),
                str(m.get("created", "?"))[:19],
                f"{tw.get('from', '?')} .. {tw.get('until', '?')}",
                _hr10_vs_baseline(m),
                str(m["status"]),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    for r in table:
        echo("  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5])


@models_grp.command("show")
@click.argument("model_id", required=False)
@models_root_option()
def models_show(model_id: str | None, models_root: str | None) -> None:
    """Print a bundle's manifest (hashes checked, with its status) and model card (default:
    the workspace's default model)."""
    from riskmodel.api import show_model

    manifest, card = show_model(get_settings().with_flags(models_root=models_root), model_id)
    echo(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    if card is not None:
        echo(card)


@models_grp.command("use")
@click.argument("model_id")
@models_root_option()
def models_use(model_id: str, models_root: str | None) -> None:
    """Make MODEL_ID the workspace's default model (only a bundle whose signature verifies)."""
    from riskmodel.api import use_model

    used = use_model(get_settings().with_flags(models_root=models_root), model_id)
    echo(f"default model: {used}")

"""``riskmodel validate``: read the input files, check them, report; change nothing."""

from __future__ import annotations

import logging

from riskmodel.cli import main
from riskmodel.cli._common import Inputs, echo, get_settings, out_option, reader_options

log = logging.getLogger(__name__)


@main.command("validate")
@reader_options(required=True)
@out_option(required=False, help="Write rejected_<input>.csv here (default: write no files).")
def validate(inputs: Inputs, out: str | None) -> None:
    """Read the events (and effort) files, check every row and report: rows read, accepted,
    quarantined by reason, time span, extent and share near the border. Exit 0 when the files
    are usable; 3 on a file-level problem, when every row of a file was quarantined, or with
    --strict when any row is quarantined."""
    from riskmodel.api import validate_inputs

    results = validate_inputs(
        get_settings(),
        inputs.events,
        inputs.effort,
        border=inputs.border,
        read_kwargs=inputs.read_kwargs,
        out=out,
    )
    for res, written in results:
        for line in res.report_lines():
            echo(line)
        if written:
            echo(f"  wrote {written}")
    for res, _ in results:
        err = res.all_rejected_error()
        if err is not None:
            raise err
    if inputs.read_kwargs.get("strict"):
        for res, _ in results:
            err = res.first_rejection_error()
            if err is not None:
                raise err

"""validate: predict measured rows and report the error."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..report import serialize, tables, train_tables
from ..validate.run import validate_file
from .common import JsonOpt, app, emit_json, out
from .inputs import text_file_cb


@app.command("validate")
def validate_cmd(
    file: Annotated[
        Path, typer.Argument(help="measured results CSV (shared SCHEMA.md)", callback=text_file_cb)
    ],
    models_csv: Annotated[
        Path | None, typer.Option(help="models.csv (default: beside FILE)", callback=text_file_cb)
    ] = None,
    quiet: Annotated[bool, typer.Option(help="summaries only, no per-row table")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Predict every usable inference and training row of FILE and report the error per chip
    family, metric and chip (last line: the inference median)."""
    r = validate_file(file, models_csv)
    if as_json:
        emit_json(serialize.validation_dict(r))
        return
    tables.render_validation(out, r, rows=not quiet)
    if r.training is not None:
        train_tables.render_training_validation(out, r.training, rows=not quiet)
    out.print(f"median_abs_pct_error={r.median_abs_pct:.2f} rows={len(r.results)}", highlight=False)

"""validate: predict measured rows and report the error."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import api
from ..catalog.stacks import packaged_residuals
from ..report import serialize, tables, train_tables
from ..resolve import read_band_file
from .bands_opts import merge_residuals
from .calibrate_cmds import profiles_option
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
    cv: Annotated[
        bool,
        typer.Option(
            "--cv",
            help="cross-validate instead: leave one source out (recalibrate without it, "
            "predict it), error and band coverage per group",
        ),
    ] = False,
    profile: Annotated[
        Path | None,
        typer.Option(help="calibration directory written by 'siliconomics calibrate'"),
    ] = None,
    level: Annotated[float, typer.Option(min=0.5, max=0.99, help="error-band level")] = 0.8,
    as_json: JsonOpt = False,
) -> None:
    """Predict every usable inference and training row of FILE and report the error per chip
    family, metric and chip (last line: the inference median). Every prediction carries its
    software stack and a band (``low``/``high`` in --json) from cross-validated residuals."""
    if cv:
        from ..catalog.registry import efficiency_profiles
        from ..validate.cv import cross_validate, load_samples
        from .calibrate_cmds import cv_summary, render_cv

        samples, _ = load_samples([file])
        rep = cross_validate(samples, efficiency_profiles(), level=level)
        emit_json(cv_summary(rep)) if as_json else render_cv(rep)
        return
    ps = profiles_option(profile)
    resid = None
    if profile is not None:
        bands = profile / "bands.toml"
        user = read_band_file(bands) if bands.exists() else ()
        resid = merge_residuals(user, packaged_residuals())
    r = api.validate(
        file, models_csv=models_csv, profile_set=ps, residuals=resid, level=level
    ).value
    if as_json:
        emit_json(serialize.validation_dict(r))
        return
    tables.render_validation(out, r, rows=not quiet)
    if r.training is not None:
        train_tables.render_training_validation(out, r.training, rows=not quiet)
    out.print(f"median_abs_pct_error={r.median_abs_pct:.2f} rows={len(r.results)}", highlight=False)

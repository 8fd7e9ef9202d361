"""Validate a set of measured rows: every usable inference row (analytic estimate plus the
serving simulator, :mod:`.serve_rows`) and every usable training row (:mod:`.train_rows`),
with error summaries per chip family, metric and chip.

Pure: the rows and the catalog they resolve through come from the edge (reading the measured
file and its ``models.csv`` is the edge's job, see :func:`siliconomics.api.validate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..calibrate.bands import DEFAULT_LEVEL
from ..catalog.catalog import Catalog
from ..catalog.stacks import ProfileSet, packaged_residuals
from ..errors import SiliconomicsError
from ..measured.rows import MeasuredRow
from ..measured.training import TrainRow
from .banded import Residual, default_profile_set, row_band, row_profile
from .rows import RowResult, Skipped, ValidationReport, summaries
from .serve_rows import run_with_simulator
from .train_rows import validate_training_rows


def validate_rows(
    rows: list[MeasuredRow],
    catalog: Catalog,
    *,
    profile_set: ProfileSet | None = None,
    residuals: Sequence[Residual] | None = None,
    level: float = DEFAULT_LEVEL,
) -> ValidationReport:
    """Every usable inference row of ``rows`` predicted with the profile of its (chip family,
    stack) from ``profile_set`` (default: the packaged calibration) and compared, each with
    the band of its prediction from ``residuals`` (default: the packaged band table).
    Training rows are counted in ``not_inference``."""
    results: list[RowResult] = []
    skipped: list[Skipped] = []
    not_inference = 0
    ps = profile_set or default_profile_set(catalog.profiles)
    resid = packaged_residuals() if residuals is None else residuals
    for row in rows:
        if row.kind != "inference":
            not_inference += 1
            continue
        if row.problem:
            skipped.append(Skipped(row=row, reason=f"not read: {row.problem}"))
            continue
        if not row.usable:
            skipped.append(Skipped(row=row, reason="marked usable=false in the file"))
            continue
        try:
            model = catalog.model(row.model)
            fam = catalog.chip(row.chip).family
            rp, note = row_profile(row, fam, ps)
            res = run_with_simulator(row, model, catalog.with_profiles({fam: rp.profile}))
            band = row_band(row, model, rp, note, res.predicted, resid, level)
            results.append(replace(res, band=band))
        except SiliconomicsError as e:
            skipped.append(Skipped(row=row, reason=str(e)))
    return ValidationReport(
        results=tuple(results),
        skipped=tuple(skipped),
        not_inference=not_inference,
        by_family=summaries(results, "family"),
        by_metric=summaries(results, "metric"),
        by_chip=summaries(results, "chip"),
    )


def validate_measured(
    rows: list[MeasuredRow],
    training_rows: list[TrainRow],
    catalog: Catalog,
    *,
    profile_set: ProfileSet | None = None,
    residuals: Sequence[Residual] | None = None,
    level: float = DEFAULT_LEVEL,
) -> ValidationReport:
    """The inference report of ``rows`` with the training report of ``training_rows``
    attached (``training``); every prediction with its band."""
    kw = {"profile_set": profile_set, "residuals": residuals, "level": level}
    report = validate_rows(rows, catalog, **kw)  # type: ignore[arg-type]
    training = validate_training_rows(training_rows, catalog, **kw)  # type: ignore[arg-type]
    return replace(report, training=training)

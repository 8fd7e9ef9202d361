"""Validate a set of measured rows: every usable inference row (analytic estimate plus the
serving simulator, :mod:`.serve_rows`) and every usable training row (:mod:`.train_rows`),
with error summaries per chip family, metric and chip.

Pure: the rows and the catalog they resolve through come from the edge (reading the measured
file and its ``models.csv`` is the edge's job, see :func:`siliconomics.api.validate`).
"""

from __future__ import annotations

from dataclasses import replace

from ..catalog.catalog import Catalog
from ..errors import SiliconomicsError
from ..measured.rows import MeasuredRow
from ..measured.training import TrainRow
from .rows import RowResult, Skipped, ValidationReport, summaries
from .serve_rows import run_with_simulator
from .train_rows import validate_training_rows


def validate_rows(rows: list[MeasuredRow], catalog: Catalog) -> ValidationReport:
    """Every usable inference row of ``rows`` predicted and compared (training rows are
    counted in ``not_inference``)."""
    results: list[RowResult] = []
    skipped: list[Skipped] = []
    not_inference = 0
    for row in rows:
        if row.kind != "inference":
            not_inference += 1
            continue
        if not row.usable:
            skipped.append(Skipped(row=row, reason="marked usable=false in the file"))
            continue
        try:
            results.append(run_with_simulator(row, catalog.model(row.model), catalog))
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
    rows: list[MeasuredRow], training_rows: list[TrainRow], catalog: Catalog
) -> ValidationReport:
    """The inference report of ``rows`` with the training report of ``training_rows``
    attached (``training``)."""
    report = validate_rows(rows, catalog)
    return replace(report, training=validate_training_rows(training_rows, catalog))

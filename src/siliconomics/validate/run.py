"""Predict each usable measured inference row and compare (``siliconomics validate``).

Mapping of a row to a model run (SCHEMA.md scenarios):

* ``static_batch``, ``latency``: :func:`estimate_static` with the row's batch and lengths.
* ``offline``: :func:`estimate_max_throughput` with ``batch`` as the engine's limit per replica
  (empty = memory decides) and the dataset's mean lengths.
* ``server``: the serving simulator's capacity search (max Poisson rate within the row's p99
  limits), run by :func:`.suite.validate_rows` through :mod:`.serve_rows`, which also reports the
  simulated value beside each offline row (``run_row`` itself stays analytic: calibration
  fits call it many times).

Row fields that are empty are filled by stated, documented defaults and listed per row in
``assumptions`` (an empty KV dtype becomes the 16-bit activation format: the frameworks'
default). A row that lacks something the model cannot assume (lengths, chip count) is
listed with the reason instead.
"""

from __future__ import annotations

from ..catalog.catalog import Catalog
from ..catalog.schema import ModelSpec
from ..errors import DoesNotFitError, SiliconomicsError
from ..inference.estimate import Estimate, estimate_max_throughput, estimate_static
from ..measured.rows import MeasuredRow
from ..ops.device import Device
from ..parallel.plan import InferencePlan
from .rows import RowResult, candidate_plans, row_device

METRICS = (
    "output_tokens_per_s",
    "total_tokens_per_s",
    "ttft_s",
    "tpot_s",
    "e2e_latency_s",
    "samples_per_s",
)


def _metric(est: Estimate, row: MeasuredRow) -> float:
    m = row.metric
    if m == "output_tokens_per_s":
        return float(est.output_tokens_per_s)
    if m == "total_tokens_per_s":
        return float(est.output_tokens_per_s * (est.input_len + est.output_len) / est.output_len)
    if m == "ttft_s":
        return float(est.ttft_s)
    if m == "tpot_s":
        return float(est.tpot_s)
    if m == "e2e_latency_s":
        return float(est.e2e_s)
    if m == "samples_per_s":
        return float(est.output_tokens_per_s / est.output_len)
    raise AssertionError(m)


def _run(
    row: MeasuredRow,
    model: ModelSpec,
    dev: Device,
    plan: InferencePlan,
) -> tuple[Estimate, str]:
    I, O = row.input_len or 0.0, row.output_len or 0.0
    if row.scenario in ("static_batch", "latency"):
        if row.batch is None:
            raise SiliconomicsError("static/latency row without a batch size")
        est = estimate_static(model, dev, plan, row.batch, I, O)
        return est, str(est.decode_bound if row.metric != "ttft_s" else est.prefill_bound)
    if row.scenario == "offline":
        est = estimate_max_throughput(model, dev, plan, I, O, batch_limit=row.batch)
        return est, str(est.decode_bound)
    if row.scenario == "server":
        raise SiliconomicsError("server scenario needs the request-level serving simulator")
    raise SiliconomicsError(f"unknown scenario '{row.scenario}'")


def run_row(row: MeasuredRow, model: ModelSpec, catalog: Catalog) -> RowResult:
    """Predict one row (raises SiliconomicsError with the reason if it cannot); the row's chip
    and its family's efficiency profile come from ``catalog``."""
    dev = row_device(row, catalog)
    if row.input_len is None or row.output_len is None:
        raise SiliconomicsError(
            f"mean input/output length unknown for length_dist '{row.length_dist}'"
        )
    if row.metric not in METRICS:
        raise SiliconomicsError(f"metric '{row.metric}' is not an inference metric")
    candidates = candidate_plans(row)
    for k, (plan, notes) in enumerate(candidates):
        if row.n_chips is not None and plan.chips != row.n_chips:
            raise SiliconomicsError(
                f"layout {plan.replicas} x tp{plan.tp} x pp{plan.pp} != n_chips {row.n_chips}"
            )
        try:
            est, bound = _run(row, model, dev, plan)
        except DoesNotFitError:
            if k == len(candidates) - 1:
                raise
            continue
        return RowResult(
            row=row,
            family=dev.chip.family,
            predicted=_metric(est, row),
            bound=bound,
            assumptions=(*notes, *est.assumptions),
        )
    raise AssertionError("no candidate plan")

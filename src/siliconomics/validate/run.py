"""Predict each usable measured inference row and compare (``siliconomics validate``).

Mapping of a row to a model run (SCHEMA.md scenarios):

* ``static_batch``, ``latency``: :func:`estimate_static` with the row's batch and lengths.
* ``offline``: :func:`estimate_max_throughput` with ``batch`` as the engine's limit per replica
  (empty = memory decides) and the dataset's mean lengths.
* ``server``: the serving simulator's capacity search (max Poisson rate within the row's p99
  limits), run by :func:`validate_rows` through :mod:`.serve_rows`, which also reports the
  simulated value beside each offline row (``run_row`` itself stays analytic: calibration
  fits call it many times).

Row fields that are empty are filled by stated, documented defaults and listed per row in
``assumptions`` (an empty KV dtype becomes the 16-bit activation format: the frameworks'
default). A row that lacks something the model cannot assume (lengths, chip count) is
listed with the reason instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..catalog.registry import chips, get_chip, get_model, models
from ..catalog.schema import ChipSpec, EfficiencyProfile, ModelSpec
from ..catalog.stacks import ProfileSet, packaged_residuals
from ..errors import DoesNotFitError, SiliconomicsError
from ..inference.estimate import Estimate, estimate_max_throughput, estimate_static
from ..measured.rows import MeasuredRow, read_measured, read_models_csv
from ..parallel.plan import InferencePlan
from .banded import Residual, RowBand, default_profile_set, row_band, row_profile

METRICS = (
    "output_tokens_per_s",
    "total_tokens_per_s",
    "ttft_s",
    "tpot_s",
    "e2e_latency_s",
    "samples_per_s",
)


@dataclass(frozen=True, kw_only=True)
class RowResult:
    row: MeasuredRow
    family: str
    predicted: float
    bound: str
    assumptions: tuple[str, ...] = ()
    simulated: float | None = None
    """offline rows: the serving simulator's steady-state prediction, shown beside
    ``predicted`` (the static max-throughput estimate), see serve_rows.py"""
    band: RowBand | None = None
    """the row's software stack and the error band of ``predicted`` (validate/banded.py)"""

    @property
    def signed_pct(self) -> float:
        return 100.0 * (self.predicted - self.row.value) / self.row.value

    @property
    def abs_pct(self) -> float:
        return abs(self.signed_pct)


@dataclass(frozen=True, kw_only=True)
class Skipped:
    row: MeasuredRow
    reason: str


@dataclass(frozen=True, kw_only=True)
class Summary:
    group: str
    n: int
    median_abs_pct: float
    median_signed_pct: float
    max_abs_pct: float


@dataclass(frozen=True, kw_only=True)
class ValidationReport:
    results: tuple[RowResult, ...]
    skipped: tuple[Skipped, ...]
    not_inference: int = 0
    by_family: tuple[Summary, ...] = field(default=())
    by_metric: tuple[Summary, ...] = field(default=())
    by_chip: tuple[Summary, ...] = field(default=())
    training: ValidationReport | None = None
    """the training rows (kind=training), validated by :mod:`.train_rows`"""

    @property
    def median_abs_pct(self) -> float:
        if not self.results:
            return math.nan
        return float(np.median([r.abs_pct for r in self.results]))


def _summaries(results: Iterable[RowResult], key: str) -> tuple[Summary, ...]:
    groups: dict[str, list[RowResult]] = {}
    for r in results:
        g = r.family if key == "family" else (r.row.metric if key == "metric" else r.row.chip)
        groups.setdefault(g, []).append(r)
    out = []
    for g, rs in sorted(groups.items()):
        abs_ = [x.abs_pct for x in rs]
        out.append(
            Summary(
                group=g,
                n=len(rs),
                median_abs_pct=float(np.median(abs_)),
                median_signed_pct=float(np.median([x.signed_pct for x in rs])),
                max_abs_pct=float(np.max(abs_)),
            )
        )
    return tuple(out)


def _plans(row: MeasuredRow) -> list[tuple[InferencePlan, list[str]]]:
    """The row's layout; an empty KV dtype yields candidates in order of preference."""
    notes: list[str] = []
    act = row.act_dtype or "bf16"
    if not row.act_dtype:
        notes.append("act_dtype empty -> bf16")
    weight = row.weight_dtype or act
    kvs: list[tuple[str, list[str]]] = [(row.kv_dtype, [])] if row.kv_dtype else []
    if not row.kv_dtype:
        wide = act if act in ("bf16", "fp16", "fp32") else "bf16"
        kvs.append((wide, [f"kv_dtype empty -> {wide} (framework default)"]))
        if act != wide and act in ("fp8", "int8"):
            kvs.append(
                (
                    act,
                    [
                        f"kv_dtype empty -> {act}: a {wide} cache cannot hold the "
                        "measured batch, so the run must have used this"
                    ],
                )
            )
    return [
        (
            InferencePlan(
                tp=row.tp or 1,
                pp=row.pp or 1,
                ep=row.ep or 1,
                replicas=row.replicas or 1,
                weight_dtype=weight,
                act_dtype=act,
                kv_dtype=kv,
            ),
            notes + extra,
        )
        for kv, extra in kvs
    ]


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
    chip: ChipSpec,
    plan: InferencePlan,
    eff: EfficiencyProfile | None,
) -> tuple[Estimate, str]:
    I, O = row.input_len or 0.0, row.output_len or 0.0
    if row.scenario in ("static_batch", "latency"):
        if row.batch is None:
            raise SiliconomicsError("static/latency row without a batch size")
        est = estimate_static(model, chip, plan, row.batch, I, O, eff=eff)
        return est, str(est.decode_bound if row.metric != "ttft_s" else est.prefill_bound)
    if row.scenario == "offline":
        est = estimate_max_throughput(model, chip, plan, I, O, batch_limit=row.batch, eff=eff)
        return est, str(est.decode_bound)
    if row.scenario == "server":
        raise SiliconomicsError("server scenario needs the request-level serving simulator")
    raise SiliconomicsError(f"unknown scenario '{row.scenario}'")


def run_row(
    row: MeasuredRow, model: ModelSpec, profiles: dict[str, EfficiencyProfile] | None = None
) -> RowResult:
    """Predict one row (raises SiliconomicsError with the reason if it cannot)."""
    chip = get_chip(row.chip)
    eff = profiles.get(chip.family) if profiles else None
    if row.dp not in (None, 1):
        raise SiliconomicsError("attention data parallelism (dp > 1) is not modelled yet")
    if row.input_len is None or row.output_len is None:
        raise SiliconomicsError(
            f"mean input/output length unknown for length_dist '{row.length_dist}'"
        )
    if row.metric not in METRICS:
        raise SiliconomicsError(f"metric '{row.metric}' is not an inference metric")
    candidates = _plans(row)
    for k, (plan, notes) in enumerate(candidates):
        if row.n_chips is not None and plan.chips != row.n_chips:
            raise SiliconomicsError(
                f"layout {plan.replicas} x tp{plan.tp} x pp{plan.pp} != n_chips {row.n_chips}"
            )
        try:
            est, bound = _run(row, model, chip, plan, eff)
        except DoesNotFitError:
            if k == len(candidates) - 1:
                raise
            continue
        return RowResult(
            row=row,
            family=chip.family,
            predicted=_metric(est, row),
            bound=bound,
            assumptions=(*notes, *est.assumptions),
        )
    raise AssertionError("no candidate plan")


def validate_rows(
    rows: list[MeasuredRow],
    extra_models: dict[str, ModelSpec] | None = None,
    profiles: Mapping[str, EfficiencyProfile] | None = None,
    *,
    profile_set: ProfileSet | None = None,
    residuals: Sequence[Residual] | None = None,
    level: float = 0.8,
) -> ValidationReport:
    """Predict every usable inference row with the profile of its (chip family, stack) from
    ``profile_set`` (default: the packaged calibration, or ``profiles`` if given) and attach
    the band of each prediction from ``residuals`` (default: the packaged band table)."""
    results: list[RowResult] = []
    skipped: list[Skipped] = []
    not_inference = 0
    extra = extra_models or {}
    ps = profile_set or default_profile_set(profiles)
    resid = packaged_residuals() if residuals is None else residuals
    for row in rows:
        if row.kind != "inference":
            not_inference += 1
            continue
        if not row.usable:
            skipped.append(Skipped(row=row, reason="marked usable=false in the file"))
            continue
        try:
            model = extra[row.model] if row.model in extra else get_model(row.model)
            from .serve_rows import run_with_simulator  # local: serve_rows builds on this

            fam = get_chip(row.chip).family
            rp, note = row_profile(row, fam, ps)
            res = run_with_simulator(row, model, {fam: rp.profile})
            band = row_band(row, model, rp, note, res.predicted, resid, level)
            results.append(replace(res, band=band))
        except SiliconomicsError as e:
            skipped.append(Skipped(row=row, reason=str(e)))
    return ValidationReport(
        results=tuple(results),
        skipped=tuple(skipped),
        not_inference=not_inference,
        by_family=_summaries(results, "family"),
        by_metric=_summaries(results, "metric"),
        by_chip=_summaries(results, "chip"),
    )


def validate_file(
    path: Path,
    models_csv: Path | None = None,
    profiles: Mapping[str, EfficiencyProfile] | None = None,
    *,
    profile_set: ProfileSet | None = None,
    residuals: Sequence[Residual] | None = None,
    level: float = 0.8,
) -> ValidationReport:
    """Validate every usable inference row of ``path``. Models come from the catalog, and
    from ``models_csv`` (default: a ``models.csv`` beside ``path``) for ids it lacks."""
    rows = read_measured(path)
    mc = models_csv if models_csv is not None else path.parent / "models.csv"
    extra: dict[str, ModelSpec] = {}
    if mc.exists():
        known = models()
        extra = {k: v for k, v in read_models_csv(mc).items() if k not in known}
    _ = chips()  # load (and validate) the chip catalog up front: a broken file fails here
    from .train_rows import validate_training_file  # local: train_rows imports this module

    ps = profile_set or default_profile_set(profiles)
    resid = packaged_residuals() if residuals is None else residuals
    report = validate_rows(rows, extra, profile_set=ps, residuals=resid, level=level)
    training = validate_training_file(path, extra, profile_set=ps, residuals=resid, level=level)
    return replace(report, training=training)

"""Grouped cross-validation by source.

Every source group (:func:`~siliconomics.calibrate.samples.source_group`: one document or one
MLPerf submission) is held out in exactly one fold: the whole calibration
(:func:`~siliconomics.calibrate.hierarchy.calibrate`) is re-run without the fold's rows and the
held-out rows are predicted with the result. With ``folds=None`` each source is its own fold
(leave one source out); with ``folds=K`` the sources are dealt into K folds by a stable hash of
their name (grouped K-fold: each fold leaves out about 1/K of the sources at once, never part
of a source). Either way no prediction comes from a fit that saw a row of its source. The
error of those predictions is the headline; in-sample error (every row predicted by the
calibration fitted on all rows, itself included) is reported beside it, labelled as such.

Fits may run on a deterministic stratified subset of the rows (``fit_cap``: at most that many
rows per (source, chip, model, kind) cell, evenly spread over the cell's rows sorted by
configuration), so that a source publishing hundreds of near-identical configurations does not
dominate a family's fit nor the run time; every usable row is still predicted and scored.

Band coverage is checked the same way: each held-out row's band is built from the
cross-validated residuals of the *other* sources only (:func:`~siliconomics.calibrate.bands.band_for`
with ``exclude_group``). Each band is then widened by the half-width scale of its (kind,
family), estimated from the other sources' held-out rows of that family
(:func:`~siliconomics.calibrate.bands.family_scales`), and the report gives the coverage with
those scales, overall and per group.

Pure: measured files are read at the edge (:func:`siliconomics.resolve.measured_files`), which
also hands in the :class:`~siliconomics.catalog.catalog.Catalog` the rows resolve through.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..calibrate.bands import (
    Band,
    BandQuery,
    Need,
    Residual,
    band_for,
    family_scales,
    is_time_metric,
    scale_key,
    t_ratio,
)
from ..calibrate.hierarchy import Calibration, FitCache, FitRecord, calibrate, fittable
from ..calibrate.samples import Sample, make_sample
from ..catalog.catalog import Catalog
from ..catalog.stacks import ProfileSet, resolve_profile, stacks
from ..errors import SiliconomicsError
from ..measured.rows import MeasuredRow
from ..measured.training import TrainRow
from .rows import Skipped
from .run import run_row
from .serve_rows import SERVER_REQUESTS, run_server_row
from .train_rows import run_train_row

GROUP_KEYS = ("family", "model_class", "regime", "dtype", "stack")


def make_samples(
    rows: Iterable[MeasuredRow], trains: Iterable[TrainRow], catalog: Catalog
) -> tuple[list[Sample], list[Skipped]]:
    """Usable rows as samples (chips and models resolved through ``catalog``); rows whose
    model or chip is unknown are skipped with the reason."""
    table = stacks()
    by_id = {t.row.id: t for t in trains}
    out: list[Sample] = []
    skipped: list[Skipped] = []
    for row in rows:
        row = by_id[row.id].row if row.id in by_id else row  # training columns' problems too
        if row.problem:
            skipped.append(Skipped(row=row, reason=f"not read: {row.problem}"))
            continue
        if not row.usable:
            continue
        try:
            model = catalog.model(row.model)
            fam = catalog.chip(row.chip).family
        except SiliconomicsError as e:
            skipped.append(Skipped(row=row, reason=str(e)))
            continue
        out.append(make_sample(row, model, fam, table, by_id.get(row.id)))
    return out, skipped


def predict(
    s: Sample,
    profiles: ProfileSet,
    catalog: Catalog,
    *,
    server_requests: int = SERVER_REQUESTS,
) -> float:
    """One row predicted with its (family, stack) profile (server rows by the simulator's
    capacity search with ``server_requests`` requests per trial)."""
    rp = resolve_profile(profiles, s.family, s.stack, s.workload)
    cat = catalog.with_profiles({s.family: rp.profile})
    if s.train is not None:
        return run_train_row(s.train, s.model, cat).predicted
    if s.row.scenario == "server":
        return run_server_row(s.row, s.model, cat, n_requests=server_requests).predicted
    return run_row(s.row, s.model, cat).predicted


def speed_log_ratio(measured: float, predicted: float, metric: str) -> float:
    r = math.log(measured / predicted)
    return -r if is_time_metric(metric) else r


@dataclass(frozen=True, kw_only=True)
class CVRow:
    """One held-out row: its keys, measured value, predictions and band (flat, so the report
    round-trips through JSON)."""

    id: str
    kind: str
    chip: str
    family: str
    stack: str
    regime: str
    model_class: str
    dtype: str
    group: str
    metric: str
    measured: float
    in_sample: float
    """predicted by the calibration fitted on every row (this one included); NaN for server
    rows (the simulator is run only for the cross-validated prediction)"""
    cross_validated: float
    """predicted by the calibration fitted without this row's source"""
    band_lo: float
    band_hi: float
    """the band in log speed ratio, from the other sources' residuals, scaled"""
    band_basis: str = ""
    band_reason: str = ""

    @property
    def cv_pct(self) -> float:
        return 100.0 * (self.cross_validated - self.measured) / self.measured

    @property
    def in_pct(self) -> float:
        return 100.0 * (self.in_sample - self.measured) / self.measured

    @property
    def band(self) -> Band:
        return Band(
            lo=self.band_lo,
            hi=self.band_hi,
            level=0.0,
            n=0,
            basis=self.band_basis,
            reason=self.band_reason,
        )

    @property
    def covered(self) -> bool:
        return self.band.covers(self.measured, self.cross_validated, self.metric)

    def residual(self, scale: float = 1.0, family_scale: float = 0.0) -> Residual:
        return Residual(
            id=self.id,
            kind=self.kind,
            family=self.family,
            stack=self.stack,
            regime=self.regime,
            model_class=self.model_class,
            dtype=self.dtype,
            group=self.group,
            log_ratio=speed_log_ratio(self.measured, self.cross_validated, self.metric),
            scale=scale,
            family_scale=family_scale,
        )


@dataclass(frozen=True, kw_only=True)
class GroupStat:
    key: str
    group: str
    n: int
    sources: int
    cv_median_abs_pct: float
    cv_median_signed_pct: float
    in_sample_median_abs_pct: float
    coverage: float


@dataclass(frozen=True, kw_only=True)
class CVReport:
    rows: tuple[CVRow, ...]
    records: tuple[FitRecord, ...]
    """the fits of the calibration on every row (what ``siliconomics calibrate`` writes)"""
    level: float
    method: str
    band_scale: Mapping[str, float] = field(default_factory=dict)
    """the band half-width scale per kind (inference, training)"""
    family_scale: Mapping[str, float] = field(default_factory=dict)
    """the band half-width scale per ``kind/family`` (:func:`~siliconomics.calibrate.bands.family_scales`)"""
    fit_rows: Mapping[str, int] = field(default_factory=dict)
    """rows the fits used per kind (after ``fit_cap``)"""
    skipped: tuple[Skipped, ...] = ()
    calibration: Calibration | None = None
    """the calibration on every row (None when the report was read back from JSON)"""

    def residuals(self) -> tuple[Residual, ...]:
        return tuple(
            r.residual(
                self.band_scale.get(r.kind, 1.0),
                self.family_scale.get(f"{r.kind}/{scale_key(r.kind, r.family, r.stack)}", 0.0),
            )
            for r in self.rows
        )

    def stats(self, kind: str, key: str | None = None) -> list[GroupStat]:
        rows = [r for r in self.rows if r.kind == kind]
        groups: dict[str, list[CVRow]] = {}
        for r in rows:
            g = "all" if key is None else str(getattr(r, key))
            groups.setdefault(g, []).append(r)
        return [_stat(key or "all", g, rs) for g, rs in sorted(groups.items())]

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "method": self.method,
            "band_scale": dict(self.band_scale),
            "family_scale": dict(self.family_scale),
            "fit_rows": dict(self.fit_rows),
            "records": [{**r.__dict__, "params": list(r.params)} for r in self.records],
            "rows": [r.__dict__ for r in self.rows],
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CVReport:
        return cls(
            rows=tuple(CVRow(**r) for r in raw["rows"]),
            records=tuple(FitRecord(**{**r, "params": tuple(r["params"])}) for r in raw["records"]),
            level=float(raw["level"]),
            method=str(raw["method"]),
            band_scale={k: float(v) for k, v in raw.get("band_scale", {}).items()},
            family_scale={k: float(v) for k, v in raw.get("family_scale", {}).items()},
            fit_rows={k: int(v) for k, v in raw.get("fit_rows", {}).items()},
        )


def _median(xs: Sequence[float]) -> float:
    ys = [x for x in xs if math.isfinite(x)]
    return float(np.median(ys)) if ys else math.nan


def _stat(key: str, group: str, rs: Sequence[CVRow]) -> GroupStat:
    return GroupStat(
        key=key,
        group=group,
        n=len(rs),
        sources=len({r.group for r in rs}),
        cv_median_abs_pct=_median([abs(r.cv_pct) for r in rs]),
        cv_median_signed_pct=_median([r.cv_pct for r in rs]),
        in_sample_median_abs_pct=_median([abs(r.in_pct) for r in rs]),
        coverage=float(np.mean([r.covered for r in rs])),
    )


def profile_set(cal: Calibration, origin: str = "calibration") -> ProfileSet:
    return ProfileSet(families=cal.families, stacks=cal.stacks, origin=origin)


def query(s: Sample, profiles: ProfileSet) -> BandQuery:
    rp = resolve_profile(profiles, s.family, s.stack, s.workload)
    return BandQuery(
        kind=s.row.kind,
        family=s.family,
        stack=s.stack,
        regime=s.regime,
        model_class=s.model_class,
        stack_measured=rp.basis != "inherited",
    )


def fit_subset(samples: Sequence[Sample], cap: int | None) -> list[Sample]:
    """At most ``cap`` rows per (source, chip, model, kind) cell, spread evenly over the
    cell's rows sorted by configuration (scenario, metric, lengths, chips, batch, id):
    deterministic, and every cell keeps its extremes. ``None``: every row."""
    if cap is None:
        return list(samples)
    cells: dict[tuple[str, ...], list[Sample]] = {}
    for s in samples:
        cells.setdefault((s.group, s.row.chip, s.row.model, s.row.kind), []).append(s)
    out: list[Sample] = []
    for k in sorted(cells):
        rs = sorted(cells[k], key=_config_key)
        if len(rs) > cap:
            step = (len(rs) - 1) / max(cap - 1, 1)
            rs = [rs[round(i * step)] for i in range(cap)]
        out += rs
    keep = {id(s) for s in out}
    return [s for s in samples if id(s) in keep]


def _config_key(s: Sample) -> tuple[Any, ...]:
    r = s.row
    return (
        r.scenario,
        r.metric,
        r.input_len or 0.0,
        r.output_len or 0.0,
        r.n_chips or 0,
        r.batch or 0,
        r.id,
    )


def fold_of(group: str, folds: int | None) -> str:
    """The fold a source group is held out in: itself (leave one source out) or a stable hash
    of its name modulo ``folds``."""
    if folds is None:
        return group
    return f"fold {zlib.crc32(group.encode('utf-8')) % folds}"


def method_text(folds: int | None, fit_cap: int | None) -> str:
    how = (
        "leave one source out"
        if folds is None
        else f"grouped {folds}-fold by source (sources dealt into {folds} folds by a hash of "
        "their name; a fold leaves out all rows of its sources)"
    )
    cap = (
        ""
        if fit_cap is None
        else f"; fits on at most {fit_cap} rows per (source, chip, model) cell"
    )
    return how + cap


Mapper = Callable[
    [Callable[["FoldJob"], "FoldResult"], Sequence["FoldJob"]], Iterable["FoldResult"]
]
FoldResult = tuple[list[tuple[Sample, float, float]], list[Skipped]]


@dataclass(frozen=True, kw_only=True)
class FoldJob:
    """One fold: recalibrate on ``fit`` and predict ``held`` (and their in-sample values with
    ``full_set``, the calibration on every row)."""

    held: list[Sample]
    fit: list[Sample]
    catalog: Catalog
    full_set: ProfileSet
    server_requests: int
    cache: FitCache | None = None


def run_fold(job: FoldJob) -> FoldResult:
    """(sample, in-sample, cross-validated) of the held-out rows, and the rows that cannot be
    predicted with the reason."""
    cal = calibrate(job.fit, job.catalog, job.cache)
    fset = profile_set(cal)
    preds: list[tuple[Sample, float, float]] = []
    skipped: list[Skipped] = []
    for s in job.held:
        try:
            cv = predict(s, fset, job.catalog, server_requests=job.server_requests)
            ins = (
                math.nan
                if s.row.scenario == "server" and s.train is None
                else predict(s, job.full_set, job.catalog)
            )
        except SiliconomicsError as e:
            skipped.append(Skipped(row=s.row, reason=str(e)))
            continue
        preds.append((s, ins, cv))
    return preds, skipped


def cross_validate(
    samples: Sequence[Sample],
    catalog: Catalog,
    *,
    level: float = 0.8,
    folds: int | None = None,
    fit_cap: int | None = None,
    server_requests: int = SERVER_REQUESTS,
    mapper: Mapper | None = None,
) -> CVReport:
    """Grouped cross-validation of ``samples`` on top of ``catalog``'s profiles (see the
    module docstring for ``folds``, ``fit_cap`` and ``server_requests``). ``mapper``: how the
    folds are run (default: one after the other, sharing a memo of fits; the edge may pass a
    process pool's ``map``: the folds are independent, so the result is the same)."""
    cache = FitCache()
    base = catalog.profiles
    usable = [s for s in samples if fittable(s, base[s.family], catalog)]
    fit_rows = fit_subset(usable, fit_cap)
    full = calibrate(fit_rows, catalog, cache)
    full_set = profile_set(full)
    fold = {s.group: fold_of(s.group, folds) for s in samples}
    jobs = [
        FoldJob(
            held=[s for s in samples if fold[s.group] == f],
            fit=[s for s in fit_rows if fold[s.group] != f],
            catalog=catalog,
            full_set=full_set,
            server_requests=server_requests,
            cache=cache if mapper is None else None,
        )
        for f in sorted(set(fold.values()))
    ]
    preds: list[tuple[Sample, float, float]] = []
    skipped: list[Skipped] = []
    for p, sk in (map if mapper is None else mapper)(run_fold, jobs):
        preds += p
        skipped += sk
    preds.sort(key=lambda p: (p[0].row.kind, p[0].row.id))
    rows, scales, fscales = _banded_rows(preds, full_set, level)
    counts = {k: sum(s.workload == k for s in fit_rows) for k in ("inference", "training")}
    return CVReport(
        rows=rows,
        records=full.records,
        level=level,
        method=method_text(folds, fit_cap),
        band_scale=scales,
        family_scale=fscales,
        fit_rows=counts,
        skipped=tuple(skipped),
        calibration=full,
    )


def _banded_rows(
    preds: Sequence[tuple[Sample, float, float]], full_set: ProfileSet, level: float
) -> tuple[tuple[CVRow, ...], dict[str, float], dict[str, float]]:
    """Rows with their held-out bands and the scales (per kind, per ``kind/family``).

    Each row's band is built from the other sources' residuals at scale 1, then widened by its
    (kind, family) scale estimated from the *other sources'* held-out rows
    (:func:`~siliconomics.calibrate.bands.family_scales`), so the coverage reported for a row
    never used that row's own miss. The scales returned are those on all rows (shipped in
    ``bands.toml``)."""
    bare = [
        CVRow(
            id=s.row.id,
            kind=s.row.kind,
            chip=s.row.chip,
            family=s.family,
            stack=s.stack,
            regime=s.regime,
            model_class=s.model_class,
            dtype=s.dtype,
            group=s.group,
            metric=s.row.metric,
            measured=s.row.value,
            in_sample=ins,
            cross_validated=cv,
            band_lo=0.0,
            band_hi=0.0,
        )
        for s, ins, cv in preds
    ]
    resid = [r.residual() for r in bare]
    out = []
    for r, (s, _, _) in zip(bare, preds, strict=True):
        b = band_for(resid, query(s, full_set), level=level, exclude_group=s.group)
        out.append(replace(r, band_lo=b.lo, band_hi=b.hi, band_basis=b.basis, band_reason=b.reason))
    needs = [_need(r) for r in out]
    per_row, kinds, fams = family_scales(needs, level)
    # the Student-t widening a shipped band gets for the sources behind its scale
    # (bands._scaled), here for the *other* sources behind the held-out row's scale
    srcs: dict[tuple[str, str], set[str]] = {}
    for x in needs:
        srcs.setdefault((x.kind, x.family), set()).add(x.group)
    ts = [t_ratio(len(srcs[(x.kind, x.family)] - {x.group}), level) for x in needs]
    rows = tuple(_rescale(r, sc, t) for r, sc, t in zip(out, per_row, ts, strict=True))
    return rows, kinds, {f"{k}/{f}": v for (k, f), v in fams.items()}


def _need(r: CVRow) -> Need:
    c, h = (r.band_lo + r.band_hi) / 2.0, (r.band_hi - r.band_lo) / 2.0
    x = speed_log_ratio(r.measured, r.cross_validated, r.metric)
    return Need(
        kind=r.kind,
        family=scale_key(r.kind, r.family, r.stack),
        group=r.group,
        need=abs(x - c) / max(h, 1e-12),
    )


def _rescale(r: CVRow, scale: float, t: float = 1.0) -> CVRow:
    c, h = (r.band_lo + r.band_hi) / 2.0, (r.band_hi - r.band_lo) / 2.0
    key = scale_key(r.kind, r.family, r.stack).replace("stack:", "stack ")
    why = (
        f"half-width x{scale:.3g} (the {key} {r.kind} scale from the other sources' "
        "held-out coverage)"
    )
    if t > 1.0005:
        why += f" x{t:.3g} (Student-t for the sources behind that scale)"
    return replace(
        r,
        band_lo=c - h * scale * t,
        band_hi=c + h * scale * t,
        band_reason=f"{r.band_reason}; {why}" if r.band_reason else why,
    )

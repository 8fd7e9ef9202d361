"""Grouped cross-validation: leave one source out.

For each source group (:func:`~siliconomics.calibrate.samples.source_group`: one document or
one MLPerf submission), the whole calibration (:func:`~siliconomics.calibrate.hierarchy.calibrate`)
is re-run without that source's rows and the held-out rows are predicted with the result. The
error of those predictions is the headline: it is what a user should expect on measurements the
model has not seen from a source it has not seen. In-sample error (every row predicted by the
calibration fitted on all rows, itself included) is reported beside it, labelled as such.

Band coverage is checked the same way: each held-out row's band is built from the
cross-validated residuals of the *other* sources only (:func:`~siliconomics.calibrate.bands.band_for`
with ``exclude_group``), and the report gives the fraction of rows whose measured value falls
inside, overall and per group.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..calibrate.bands import Band, BandQuery, Residual, band_for, is_time_metric
from ..calibrate.hierarchy import Calibration, FitCache, calibrate, fittable, with_profile
from ..calibrate.samples import Sample, make_sample
from ..catalog.registry import get_chip, get_model, models
from ..catalog.schema import EfficiencyProfile
from ..catalog.stacks import ProfileSet, resolve_profile, stacks
from ..errors import SiliconomicsError
from ..measured.rows import read_measured, read_models_csv
from ..measured.training import read_training_rows
from .rows import Skipped
from .run import run_row
from .serve_rows import run_server_row
from .train_rows import run_train_row

GROUP_KEYS = ("family", "model_class", "regime", "dtype", "stack")


def load_samples(paths: Sequence[Path]) -> tuple[list[Sample], list[Skipped]]:
    """Usable rows of measured files (each with an optional ``models.csv`` beside it) as
    samples; rows whose model or chip is unknown are skipped with the reason."""
    known = models()
    table = stacks()
    out: list[Sample] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for path in paths:
        mc = path.parent / "models.csv"
        extra = (
            {k: v for k, v in read_models_csv(mc).items() if k not in known} if mc.exists() else {}
        )
        trains = {tr.row.id: tr for tr in read_training_rows(path)}
        for row in read_measured(path):
            if not row.usable:
                continue
            if row.id in seen:
                skipped.append(Skipped(row=row, reason="duplicate id (also in an earlier file)"))
                continue
            seen.add(row.id)
            try:
                model = extra[row.model] if row.model in extra else get_model(row.model)
                fam = get_chip(row.chip).family
            except SiliconomicsError as e:
                skipped.append(Skipped(row=row, reason=str(e)))
                continue
            out.append(make_sample(row, model, fam, table, trains.get(row.id)))
    return out, skipped


def predict(s: Sample, profiles: ProfileSet, *, simulate_server: bool = True) -> float:
    """One row predicted with its (family, stack) profile (server rows by the simulator)."""
    rp = resolve_profile(profiles, s.family, s.stack, s.workload)
    prof = with_profile(s.family, rp.profile)
    if s.train is not None:
        return run_train_row(s.train, s.model, prof).predicted
    if s.row.scenario == "server" and simulate_server:
        return run_server_row(s.row, s.model, prof).predicted
    return run_row(s.row, s.model, prof).predicted


def speed_log_ratio(measured: float, predicted: float, metric: str) -> float:
    r = math.log(measured / predicted)
    return -r if is_time_metric(metric) else r


@dataclass(frozen=True, kw_only=True)
class CVRow:
    sample: Sample
    in_sample: float
    """predicted by the calibration fitted on every row (this one included)"""
    cross_validated: float
    """predicted by the calibration fitted without this row's source"""
    band: Band
    """from the other sources' cross-validated residuals"""

    @property
    def cv_pct(self) -> float:
        return 100.0 * (self.cross_validated - self.sample.row.value) / self.sample.row.value

    @property
    def in_pct(self) -> float:
        return 100.0 * (self.in_sample - self.sample.row.value) / self.sample.row.value

    @property
    def covered(self) -> bool:
        return self.band.covers(self.sample.row.value, self.cross_validated, self.sample.row.metric)

    def residual(self) -> Residual:
        s = self.sample
        return Residual(
            id=s.row.id,
            kind=s.row.kind,
            family=s.family,
            stack=s.stack,
            regime=s.regime,
            model_class=s.model_class,
            dtype=s.dtype,
            group=s.group,
            log_ratio=speed_log_ratio(s.row.value, self.cross_validated, s.row.metric),
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
    skipped: tuple[Skipped, ...]
    calibration: Calibration
    """the calibration on every row (what ``siliconomics calibrate`` writes)"""
    level: float

    def residuals(self) -> tuple[Residual, ...]:
        return tuple(r.residual() for r in self.rows)

    def stats(self, kind: str, key: str | None = None) -> list[GroupStat]:
        rows = [r for r in self.rows if r.sample.row.kind == kind]
        groups: dict[str, list[CVRow]] = {}
        for r in rows:
            g = "all" if key is None else str(getattr(r.sample, key))
            groups.setdefault(g, []).append(r)
        return [_stat(key or "all", g, rs) for g, rs in sorted(groups.items())]


def _stat(key: str, group: str, rs: Sequence[CVRow]) -> GroupStat:
    return GroupStat(
        key=key,
        group=group,
        n=len(rs),
        sources=len({r.sample.group for r in rs}),
        cv_median_abs_pct=float(np.median([abs(r.cv_pct) for r in rs])),
        cv_median_signed_pct=float(np.median([r.cv_pct for r in rs])),
        in_sample_median_abs_pct=float(np.median([abs(r.in_pct) for r in rs])),
        coverage=float(np.mean([r.covered for r in rs])),
    )


def _usable(samples: Sequence[Sample], base: Mapping[str, EfficiencyProfile]) -> list[Sample]:
    return [s for s in samples if fittable(s, base[s.family])]


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


def cross_validate(
    samples: Sequence[Sample],
    base: Mapping[str, EfficiencyProfile],
    *,
    level: float = 0.8,
) -> CVReport:
    """Leave-one-source-out over ``samples`` on top of ``base`` (packaged profiles)."""
    cache = FitCache()
    fit_rows = _usable(samples, base)
    full = calibrate(fit_rows, base, cache)
    full_set = profile_set(full)
    preds: list[tuple[Sample, float, float]] = []
    skipped: list[Skipped] = []
    groups = sorted({s.group for s in samples})
    for g in groups:
        held = [s for s in samples if s.group == g]
        fold = profile_set(calibrate([s for s in fit_rows if s.group != g], base, cache))
        for s in held:
            try:
                preds.append((s, predict(s, full_set), predict(s, fold)))
            except SiliconomicsError as e:
                skipped.append(Skipped(row=s.row, reason=str(e)))
    resid = [
        Residual(
            id=s.row.id,
            kind=s.row.kind,
            family=s.family,
            stack=s.stack,
            regime=s.regime,
            model_class=s.model_class,
            dtype=s.dtype,
            group=s.group,
            log_ratio=speed_log_ratio(s.row.value, cv, s.row.metric),
        )
        for s, _, cv in preds
    ]
    rows = tuple(
        CVRow(
            sample=s,
            in_sample=ins,
            cross_validated=cv,
            band=band_for(resid, query(s, full_set), level=level, exclude_group=s.group),
        )
        for s, ins, cv in preds
    )
    return CVReport(rows=rows, skipped=tuple(skipped), calibration=full, level=level)

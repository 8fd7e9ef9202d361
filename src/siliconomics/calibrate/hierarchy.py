"""Hierarchical calibration of the efficiency profiles on measured rows (the policy is
:mod:`.policy`).

:func:`calibrate` takes usable rows (:class:`~.samples.Sample`) and the packaged profiles (their
op-level factors are kept) and returns a :class:`Calibration`: one profile per family (its
default stack), per-stack overrides, and a :class:`FitRecord` per fit saying what was fitted on
how many rows, what was inherited, and which factors sit at a bound.

Each fit is robust least squares on log(predicted / measured) (``soft_l1``, scale 0.1) plus
``SHRINK_ROWS`` pseudo-residuals pulling each factor toward its parent level's value, started
from the fixed all-chips priors (never from a previous fit), so a re-run reproduces the fit and
a fold of cross-validation never starts from values that saw its held-out rows. Fits are pure
functions of their rows: :class:`FitCache` memoises them by (level, row ids, anchor) so that
leave-one-source-out only refits the families a fold touches.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from ..catalog.catalog import Catalog
from ..catalog.schema import EfficiencyProfile
from ..catalog.stacks import StackProfile, Workload, default_stack, stacks
from ..errors import SiliconomicsError
from ..validate.run import run_row
from ..validate.train_rows import run_train_row
from . import policy as P
from .samples import Sample


@dataclass(frozen=True, kw_only=True)
class FitRecord:
    """One fit (or inheritance) at one level."""

    workload: Workload
    family: str
    stack: str
    level: str
    """``family``, ``chip``, ``stack``, ``inherit`` or ``fill``"""
    params: tuple[str, ...]
    values: dict[str, float]
    n_rows: int
    anchor: str
    """the parent level the factors shrink toward"""
    at_bound: dict[str, str] = field(default_factory=dict)
    median_abs_pct_before: float = float("nan")
    median_abs_pct_after: float = float("nan")
    note: str = ""
    chip: str = ""
    """the chip of a ``chip``-level fit"""


@dataclass(frozen=True, kw_only=True)
class Calibration:
    families: dict[str, EfficiencyProfile]
    stacks: dict[tuple[str, str], StackProfile]
    records: tuple[FitRecord, ...]


def predict_sample(s: Sample, prof: EfficiencyProfile, catalog: Catalog) -> float:
    """The analytic prediction of one row under ``prof`` (what fits use); chips and models
    resolve through ``catalog``."""
    cat = with_profile(catalog, s.family, prof)
    if s.train is not None:
        return run_train_row(s.train, s.model, cat).predicted
    return run_row(s.row, s.model, cat).predicted


def with_profile(catalog: Catalog, family: str, prof: EfficiencyProfile) -> Catalog:
    """``catalog`` with ``prof`` as ``family``'s efficiency profile (a fit trial)."""
    return catalog.with_profiles({family: prof})


def fittable(s: Sample, prof: EfficiencyProfile, catalog: Catalog) -> bool:
    """Rows the analytic model predicts (server rows need the simulator and are not fitted)."""
    try:
        v = predict_sample(s, prof, catalog)
    except SiliconomicsError:
        return False
    return bool(np.isfinite(v) and v > 0)


_E2E_MARKS = ("rows of", "training rows", "inherited from", "median of", "measured.csv")


def op_level_base(profiles: Mapping[str, EfficiencyProfile]) -> dict[str, EfficiencyProfile]:
    """The profiles with every factor that an earlier end-to-end calibration set (fitted on
    measured rows, inherited, median-filled: read from its provenance) reset to the priors
    (training factors to unset), keeping op-level and spec-derived values. Calibration starts
    here, so it is a pure function of the op-level data and the rows it is given."""
    out = {}
    for fam, prof in profiles.items():
        upd: dict[str, float | None] = {}
        prov = dict(prof.provenance)
        for k, text in prof.provenance.items():
            if k not in P.BOUNDS and k not in P.INHERITED_FIELDS:
                continue
            if text.startswith("fitted on shared/data/measured-ops"):
                continue  # op-level: kept
            if any(m in text for m in _E2E_MARKS):
                upd[k] = (
                    None
                    if k in P.TRAIN_FIELDS
                    or k in ("lowp_gemm_efficiency", "grouped_gemm_efficiency")
                    else (P.PRIORS.get(k, getattr(prof, k)))
                )
                # the earlier fit's text no longer describes the value; a fit or an
                # inheritance of this run writes its own
                prov[k] = "all-chips prior (siliconomics.calibrate.policy.PRIORS), not fitted"
        prov = {k: v for k, v in prov.items() if not k.startswith("chip_factors.")}
        out[fam] = prof.model_copy(update={**upd, "provenance": prov, "chip_factors": {}})
    return out


def _log_resid(samples: Sequence[Sample], prof: EfficiencyProfile, catalog: Catalog) -> np.ndarray:
    return np.array([np.log(predict_sample(s, prof, catalog) / s.row.value) for s in samples])


XTOL = 1e-3
"""a fit stops when its factors move by less than 0.1% of their bound range (finer is below
what end-to-end rows resolve, and costs evaluations of every row)"""


def shrunk_fit(
    residuals: Callable[[dict[str, float]], np.ndarray],
    params: Sequence[str],
    anchor: Mapping[str, float],
    shrink_rows: float = P.SHRINK_ROWS,
) -> dict[str, float]:
    """Bounded robust least squares of ``residuals`` plus shrinkage toward ``anchor``: each
    factor adds ``sqrt(shrink_rows)`` pseudo-residuals of 0.1 x (distance from the anchor in
    units of ``PRIOR_SD`` of its bound range). Starts from the fixed priors."""
    from scipy.optimize import least_squares

    if not params:
        return {}
    lo = np.array([P.BOUNDS[p][0] for p in params])
    hi = np.array([P.BOUNDS[p][1] for p in params])
    scale = hi - lo
    za = np.clip((np.array([anchor[p] for p in params]) - lo) / scale, 0.0, 1.0)
    x0 = np.clip(np.array([P.PRIORS[p] for p in params]), lo + 1e-3 * scale, hi - 1e-3 * scale)
    w = np.sqrt(shrink_rows) * 0.1 / P.PRIOR_SD

    def values(z: np.ndarray) -> dict[str, float]:
        return {p: float(v) for p, v in zip(params, lo + z * scale, strict=True)}

    def fun(z: np.ndarray) -> np.ndarray:
        return np.concatenate([residuals(values(z)), w * (z - za)])

    res = least_squares(
        fun,
        (x0 - lo) / scale,
        bounds=(0.0, 1.0),
        loss="soft_l1",
        f_scale=0.1,
        diff_step=1e-3,
        xtol=XTOL,
        ftol=1e-6,
        max_nfev=200,
    )
    return values(res.x)


class FitCache:
    """Memo of fits by (level, row ids, plan, anchor, base profile): cross-validation folds that
    leave a level's rows untouched reuse its fit."""

    def __init__(self) -> None:
        self._d: dict[tuple[object, ...], FitRecord] = {}

    def get(self, key: tuple[object, ...], compute: Callable[[], FitRecord]) -> FitRecord:
        if key not in self._d:
            self._d[key] = compute()
        return self._d[key]


def _pct(logerr: np.ndarray) -> float:
    return float(np.median(np.expm1(np.abs(logerr))) * 100) if len(logerr) else float("nan")


def _fit_level(
    wl: Workload,
    family: str,
    stack: str,
    level: str,
    rows: Sequence[Sample],
    base: EfficiencyProfile,
    plan: Sequence[str],
    anchor: Mapping[str, float],
    anchor_name: str,
    cache: FitCache,
    catalog: Catalog,
) -> FitRecord:
    params = P.affordable(plan, len(rows))
    key = (
        (wl, family, stack, level, anchor_name),
        tuple(s.row.id for s in rows),
        params,
        tuple(round(anchor[p], 12) for p in plan),
        base.model_dump_json(),
    )
    return cache.get(
        key,
        lambda: _do_fit(wl, family, stack, level, rows, base, plan, anchor, anchor_name, catalog),
    )


def _do_fit(
    wl: Workload,
    family: str,
    stack: str,
    level: str,
    rows: Sequence[Sample],
    base: EfficiencyProfile,
    plan: Sequence[str],
    anchor: Mapping[str, float],
    anchor_name: str,
    catalog: Catalog,
) -> FitRecord:
    params = P.affordable(plan, len(rows))

    def resid(v: Mapping[str, float]) -> np.ndarray:
        return _log_resid(rows, base.model_copy(update=v), catalog)

    values = shrunk_fit(resid, params, anchor)
    bounds = {p: b for p in params if (b := P.at_bound(p, values[p])) is not None}
    before = after = float("nan")
    if params:
        before = _pct(resid({p: anchor[p] for p in params}))
        after = _pct(resid(values))
    skipped = tuple(p for p in plan if p not in params)
    note = (
        f"{len(rows)} rows support {len(params)} of {len(plan)} planned factors; "
        f"{', '.join(skipped)} inherited from {anchor_name}"
        if skipped
        else ""
    )
    return FitRecord(
        workload=wl,
        family=family,
        stack=stack,
        level=level,
        params=params,
        values=values,
        n_rows=len(rows),
        anchor=anchor_name,
        at_bound=bounds,
        median_abs_pct_before=before,
        median_abs_pct_after=after,
        note=note,
    )


def _anchor(
    prof: EfficiencyProfile, parent: EfficiencyProfile | None, plan: Sequence[str]
) -> dict[str, float]:
    out = {}
    for p in plan:
        v = getattr(parent, p) if parent is not None else None
        out[p] = float(v) if v is not None else P.PRIORS[p]
    return out


def _order(families: Sequence[str], inherit: Mapping[str, str]) -> list[str]:
    """Parents before children."""

    def depth(f: str) -> int:
        d = 0
        while f in inherit:
            f, d = inherit[f], d + 1
        return d

    return sorted(families, key=lambda f: (depth(f), f))


def _calibrate_workload(
    wl: Workload,
    samples: Sequence[Sample],
    profiles: dict[str, EfficiencyProfile],
    cache: FitCache,
    catalog: Catalog,
) -> tuple[list[FitRecord], dict[tuple[str, str], StackProfile]]:
    table = stacks()
    plan_of = P.FIT_PLAN if wl == "inference" else P.TRAIN_FIT_PLAN
    inherit = P.INHERIT if wl == "inference" else P.TRAIN_INHERIT
    copied = P.INHERITED_FIELDS if wl == "inference" else P.TRAIN_FIELDS
    records: list[FitRecord] = []
    overrides: dict[tuple[str, str], StackProfile] = {}
    mine = [s for s in samples if s.workload == wl]
    for fam in _order(list(profiles), inherit):
        parent = profiles.get(inherit[fam]) if fam in inherit else None
        if parent is not None:
            upd = {k: getattr(parent, k) for k in copied if getattr(parent, k) is not None}
            profiles[fam] = profiles[fam].model_copy(update=upd)
            records.append(
                FitRecord(
                    workload=wl,
                    family=fam,
                    stack="",
                    level="inherit",
                    params=(),
                    values=upd,
                    n_rows=0,
                    anchor=inherit[fam],
                    note=f"inherited from {inherit[fam]} (same stack or vendor), then "
                    "fitted where its own rows allow",
                )
            )
        dflt = default_stack(fam, wl, table)
        rows = [s for s in mine if s.family == fam and s.stack == dflt]
        plan = plan_of.get(fam, ())
        if plan and rows:
            anchor = _anchor(profiles[fam], parent, plan)
            name = inherit.get(fam, "all chips (priors)")
            rec = _fit_level(
                wl, fam, dflt, "family", rows, profiles[fam], plan, anchor, name, cache, catalog
            )
            profiles[fam] = profiles[fam].model_copy(update=rec.values)
            records.append(rec)
            chip_recs = _fit_chips(wl, fam, dflt, rows, profiles[fam], plan, cache, catalog)
            profiles[fam] = _with_chip_factors(profiles[fam], chip_recs)
            records += chip_recs
        for st in sorted({s.stack for s in mine if s.family == fam} - {dflt}):
            srows = [s for s in mine if s.family == fam and s.stack == st]
            splan = P.stack_plan(wl, [s.row.act_dtype or "bf16" for s in srows])
            if not P.affordable(splan, len(srows)):
                continue
            anchor = _anchor(profiles[fam], profiles[fam], splan)
            # the stack's own factors win over chip factors (as siliconomics.catalog.stacks
            # resolves a fitted stack)
            own = P.affordable(splan, len(srows))
            sbase = profiles[fam].model_copy(
                update={
                    "chip_factors": {
                        c: {k: v for k, v in f.items() if k not in own}
                        for c, f in profiles[fam].chip_factors.items()
                    }
                }
            )
            rec = _fit_level(
                wl,
                fam,
                st,
                "stack",
                srows,
                sbase,
                splan,
                anchor,
                f"{fam} ({dflt})",
                cache,
                catalog,
            )
            records.append(rec)
            overrides[(fam, st)] = StackProfile(
                family=fam,
                stack=st,
                factors=rec.values,
                n_rows=rec.n_rows,
                provenance={k: _provenance(rec, k) for k in rec.params},
            )
    return records, overrides


def _fit_chips(
    wl: Workload,
    family: str,
    stack: str,
    rows: Sequence[Sample],
    fam_prof: EfficiencyProfile,
    plan: Sequence[str],
    cache: FitCache,
    catalog: Catalog,
) -> list[FitRecord]:
    """The chip level: in a family with default-stack rows on at least ``MIN_CHIPS`` chips,
    each chip's factors (:func:`~.policy.chip_affordable`) fitted on its own rows, shrunk
    toward the family's fitted values."""
    by_chip: dict[str, list[Sample]] = {}
    for s in rows:
        by_chip.setdefault(s.row.chip, []).append(s)
    if len(by_chip) < P.MIN_CHIPS:
        return []
    anchor = {p: float(v) if (v := getattr(fam_prof, p)) is not None else P.PRIORS[p] for p in plan}
    out = []
    for chip, crows in sorted(by_chip.items()):
        params = P.chip_affordable(
            plan,
            len(crows),
            len({s.group for s in crows}),
            [s.row.act_dtype or "bf16" for s in crows],
        )
        if not params:
            continue
        key = (
            (wl, family, stack, "chip", chip),
            tuple(s.row.id for s in crows),
            params,
            tuple(round(anchor[p], 12) for p in plan),
            fam_prof.model_dump_json(),
        )
        out.append(
            cache.get(
                key,
                partial(
                    _do_chip_fit, wl, family, stack, chip, crows, fam_prof, params, anchor, catalog
                ),
            )
        )
    return out


def _chip_trial(prof: EfficiencyProfile, chip: str, v: Mapping[str, float]) -> EfficiencyProfile:
    own = {**prof.chip_factors.get(chip, {}), **v}
    return prof.model_copy(update={"chip_factors": {**prof.chip_factors, chip: own}})


def _do_chip_fit(
    wl: Workload,
    family: str,
    stack: str,
    chip: str,
    rows: Sequence[Sample],
    fam_prof: EfficiencyProfile,
    params: Sequence[str],
    anchor: Mapping[str, float],
    catalog: Catalog,
) -> FitRecord:
    def resid(v: Mapping[str, float]) -> np.ndarray:
        return _log_resid(rows, _chip_trial(fam_prof, chip, v), catalog)

    values = shrunk_fit(resid, params, anchor)
    return FitRecord(
        workload=wl,
        family=family,
        stack=stack,
        level="chip",
        chip=chip,
        params=tuple(params),
        values=values,
        n_rows=len(rows),
        anchor=f"{family} (family fit)",
        at_bound={p: b for p in params if (b := P.at_bound(p, values[p])) is not None},
        median_abs_pct_before=_pct(resid({p: anchor[p] for p in params})),
        median_abs_pct_after=_pct(resid(values)),
    )


def _with_chip_factors(prof: EfficiencyProfile, recs: Sequence[FitRecord]) -> EfficiencyProfile:
    out = prof
    for r in recs:
        out = _chip_trial(out, r.chip, r.values)
    return out


def _latency_kinds(catalog: Catalog | None) -> dict[str, str]:
    """family -> how its ``collective_latency_s`` is read (:func:`~.policy.latency_kind`)."""
    if catalog is None:
        return {}
    tops: dict[str, list[str]] = {}
    for c in catalog.chips.values():
        tops.setdefault(c.family, []).append(c.interconnect.topology)
    return {f: P.latency_kind(t) for f, t in tops.items()}


def _peers(kind: Mapping[str, str], fam: str, k: str, pool: Sequence[str]) -> list[str]:
    """The fitted families ``fam`` takes factor ``k`` from: for ``collective_latency_s`` those
    whose fabrics price it the same way, when any; else all of ``pool``."""
    if k != "collective_latency_s" or fam not in kind:
        return list(pool)
    same = [f for f in pool if kind.get(f) == kind[fam]]
    return same or list(pool)


def _median_fill(
    wl: Workload,
    profiles: dict[str, EfficiencyProfile],
    records: Sequence[FitRecord],
    catalog: Catalog | None = None,
) -> dict[str, tuple[dict[str, float], str]]:
    """Families with neither rows nor a parent take the median of the fitted families (NVIDIA
    families keep their op-level values); ``collective_latency_s`` only from fitted families
    whose fabrics price it the same way (:func:`~.policy.latency_kind`), when there are any.
    Returns family -> (values set, note)."""
    fitted = sorted(
        {r.family for r in records if r.workload == wl and r.level == "family" and r.params}
    )
    kind = _latency_kinds(catalog)
    inherit = P.INHERIT if wl == "inference" else P.TRAIN_INHERIT
    fields = P.MEDIAN_FIELDS if wl == "inference" else ("train_comm_overlap",)
    notes: dict[str, tuple[dict[str, float], str]] = {}
    if not fitted:
        return notes
    # A family with rows too few for a planned factor and no parent takes the all-chips value
    # (median of the families that fitted it) rather than the op-level prior.
    for r in records:
        plan = (P.FIT_PLAN if wl == "inference" else P.TRAIN_FIT_PLAN).get(r.family, ())
        missing = [p for p in plan if p not in r.params]
        if r.workload != wl or r.level != "family" or r.family in inherit or not missing:
            continue
        upd = {}
        for k in missing:
            fams = _peers(kind, r.family, k, fitted)
            vals = [
                x.values[k]
                for x in records
                if x.workload == wl and k in x.values and x.level == "family" and x.family in fams
            ]
            if vals:
                upd[k] = float(statistics.median(vals))
        profiles[r.family] = profiles[r.family].model_copy(update=upd)
        if upd:
            notes[r.family] = (
                upd,
                f"all-chips level: median of the families that fitted it ({r.n_rows} rows of "
                f"{r.family} with {r.stack} support no fit)",
            )
    for fam in profiles:
        if fam in notes or any(r.family == fam and r.level == "family" for r in records):
            continue
        if fam in fitted or fam in inherit or (wl == "inference" and fam.startswith("nvidia-")):
            continue
        if wl == "training" and profiles[fam].train_comm_overlap is not None:
            continue
        upd = {}
        for k in fields:
            vals = [
                v
                for f in _peers(kind, fam, k, fitted)
                if (v := getattr(profiles[f], k)) is not None
            ]
            if vals:
                upd[k] = float(statistics.median(vals))
        profiles[fam] = profiles[fam].model_copy(update=upd)
        same = _peers(kind, fam, "collective_latency_s", fitted)
        lat = (
            f"; collective_latency_s from the {kind[fam]} fabrics ({', '.join(same)})"
            if wl == "inference" and "collective_latency_s" in upd and same != fitted
            else ""
        )
        notes[fam] = (
            upd,
            f"median of the calibrated families ({', '.join(fitted)}): no rows{lat}",
        )
    return notes


def _provenance(rec: FitRecord, k: str) -> str:
    joint = ", ".join(p for p in rec.params if p != k) or "-"
    bound = f"; AT ITS {rec.at_bound[k].upper()} BOUND" if k in rec.at_bound else ""
    who = f"{rec.chip} ({rec.family})" if rec.chip else rec.family
    return (
        f"fitted on {rec.n_rows} {rec.workload} rows of {who} with {rec.stack} "
        f"({rec.level} level, joint with {joint}, shrunk toward {rec.anchor}; median |err| "
        f"{rec.median_abs_pct_before:.1f}% at the anchor -> {rec.median_abs_pct_after:.1f}%)"
        f"{bound}"
    )


def calibrate(
    samples: Sequence[Sample],
    catalog: Catalog,
    cache: FitCache | None = None,
) -> Calibration:
    """Fit every family and stack on ``samples`` (usable, fittable rows) on top of
    ``catalog``'s profiles (the packaged ones: op-level factors kept), inference first, then
    training; rows resolve their chips and models through ``catalog``."""
    cache = cache or FitCache()
    profiles = op_level_base(catalog.profiles)
    records: list[FitRecord] = []
    overrides: dict[tuple[str, str], StackProfile] = {}
    for wl in ("inference", "training"):
        recs, ov = _calibrate_workload(wl, samples, profiles, cache, catalog)
        records += recs
        overrides.update(ov)
        fill = _median_fill(wl, profiles, recs, catalog)
        records += [
            FitRecord(
                workload=wl,
                family=f,
                stack="",
                level="fill",
                params=(),
                values=v,
                n_rows=0,
                anchor="median of fitted families",
                note=n,
            )
            for f, (v, n) in fill.items()
        ]
    return Calibration(families=profiles, stacks=overrides, records=tuple(records))


def with_provenance(cal: Calibration, source: str) -> dict[str, EfficiencyProfile]:
    """The calibrated family profiles with each fitted factor's provenance updated."""
    out = dict(cal.families)
    for rec in cal.records:  # in calibration order: later records override earlier ones
        prov = dict(out[rec.family].provenance)
        if rec.level == "family":
            for k in rec.params:
                prov[k] = f"{_provenance(rec, k)}; data: {source}"
        elif rec.level == "chip":
            for k in rec.params:
                prov[f"chip_factors.{rec.chip}.{k}"] = f"{_provenance(rec, k)}; data: {source}"
        elif rec.level in ("inherit", "fill"):
            for k in rec.values:
                prov[k] = f"{rec.note}; data: {source}"
        out[rec.family] = out[rec.family].model_copy(update={"provenance": prov})
    return out

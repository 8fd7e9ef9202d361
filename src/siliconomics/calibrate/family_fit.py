"""Family-level calibration of efficiency factors on measured end-to-end results.

Procedure (reproducible with ``scripts/calibrate_families.py``):

1. Op-level factors come first from op-level data where it exists (NVIDIA: the measured-ops
   GEMM/element-wise/NCCL timings, :mod:`.ops_fit`). Those are not refitted here.
2. For each chip family, the few factors listed for it in ``FIT_PLAN`` (at most one factor per
   three rows, never per row) are fitted jointly on *all* usable rows of that family by robust
   least squares on log(predicted / measured) (``soft_l1`` loss, scale 0.1), within physical
   bounds (``BOUNDS``). Factors a family has no rows to inform are inherited from the family
   named in ``INHERIT`` and say so in their provenance.
3. Out-of-sample accuracy is reported by leave-one-out: each row is predicted by factors fitted
   without it. The generated docs/VALIDATION.md shows in-sample and leave-one-out error side
   by side, so over-fitting would be visible.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from ..catalog.catalog import Catalog
from ..catalog.schema import EfficiencyProfile
from ..errors import SiliconomicsError
from ..measured.rows import MeasuredRow
from ..validate.run import run_row

BOUNDS: dict[str, tuple[float, float]] = {
    "gemm_efficiency": (0.10, 0.95),
    "lowp_gemm_efficiency": (0.10, 0.95),
    "memory_efficiency": (0.40, 0.95),
    "attention_efficiency": (0.10, 0.90),
    "collective_latency_s": (2e-6, 60e-6),  # >= one scale-up hop incl. sync (NCCL H100: 4.3 µs)
    "step_overhead_s": (0.0, 20e-3),
}

#: Fixed starting points of every fit: the H100 op-level measurements (GEMM 0.77, HBM 0.88;
#: scripts/calibrate_nvidia.py) and round defaults for the time constants.
PRIORS: dict[str, float] = {
    "gemm_efficiency": 0.77,
    "lowp_gemm_efficiency": 0.77,
    "memory_efficiency": 0.88,
    "attention_efficiency": 0.6,
    "collective_latency_s": 5e-6,
    "step_overhead_s": 1e-3,
}

#: Factors fitted on each family's end-to-end rows, in the order of how directly the rows
#: constrain them (the decision, per family, of what the data can and cannot tell).
FIT_PLAN: dict[str, tuple[str, ...]] = {
    "nvidia-hopper": ("lowp_gemm_efficiency", "step_overhead_s"),
    "nvidia-blackwell": ("lowp_gemm_efficiency",),
    "amd-cdna3": ("lowp_gemm_efficiency",),
    "aws-neuron-v2": (
        "gemm_efficiency",
        "memory_efficiency",
        "collective_latency_s",
        "step_overhead_s",
    ),
    "intel-gaudi": ("lowp_gemm_efficiency",),
    "aws-neuron-v3": ("gemm_efficiency",),
}

#: Families without enough rows of their own take factors from the nearest family with the
#: same software stack (or, failing that, the same vendor).
INHERIT: dict[str, str] = {
    "nvidia-blackwell": "nvidia-hopper",
    "nvidia-ada": "nvidia-hopper",
    "amd-cdna2": "amd-cdna3",
    "amd-cdna4": "amd-cdna3",
    "aws-neuron-v3": "aws-neuron-v2",
    "aws-neuron-v4": "aws-neuron-v3",
}


@dataclass(frozen=True, kw_only=True)
class FamilyFit:
    """Result of fitting one family."""

    family: str
    params: tuple[str, ...]
    values: dict[str, float]
    n_rows: int
    median_abs_pct_before: float
    median_abs_pct_after: float
    loo_median_abs_pct: float
    """leave-one-out: each row predicted with factors fitted on the others"""


Predict = Callable[[MeasuredRow, EfficiencyProfile], float]


def _predictor(catalog: Catalog) -> Predict:
    def predict(row: MeasuredRow, prof: EfficiencyProfile) -> float:
        trial = catalog.with_profiles({prof.family: prof})
        return run_row(row, catalog.model(row.model), trial).predicted

    return predict


def _residuals(
    rows: Sequence[MeasuredRow], prof: EfficiencyProfile, predict: Predict
) -> np.ndarray:
    return np.array([np.log(predict(r, prof) / r.value) for r in rows])


def bounded_fit(
    residuals: Callable[[dict[str, float]], np.ndarray],
    params: Sequence[str],
    bounds: Mapping[str, tuple[float, float]],
    priors: Mapping[str, float],
) -> dict[str, float]:
    """Deterministic robust least squares of ``residuals(values)`` over ``params`` in their
    ``bounds``, always starting from the fixed ``priors`` (not from the file's current values),
    so a re-run reproduces the same fit and leave-one-out never starts from a fit that saw the
    held-out row."""
    if not params:
        return {}
    lo = np.array([bounds[p][0] for p in params])
    hi = np.array([bounds[p][1] for p in params])
    scale = hi - lo
    # Start strictly inside the box: an exact bound stalls the trust-region solver.
    x0 = np.clip(
        np.array([priors[p] for p in params], dtype=float), lo + 1e-3 * scale, hi - 1e-3 * scale
    )

    def values(z: np.ndarray) -> dict[str, float]:
        return {p: float(v) for p, v in zip(params, lo + z * scale, strict=True)}

    res = least_squares(
        lambda z: residuals(values(z)),
        (x0 - lo) / scale,
        bounds=(0.0, 1.0),
        loss="soft_l1",
        f_scale=0.1,
        diff_step=1e-3,
        max_nfev=200,
    )
    return values(res.x)


def fit_params(
    rows: Sequence[MeasuredRow], base: EfficiencyProfile, params: Sequence[str], predict: Predict
) -> dict[str, float]:
    """Least-squares fit of ``params`` on ``rows`` starting from ``base`` (deterministic)."""
    return bounded_fit(
        lambda v: _residuals(rows, base.model_copy(update=v), predict), params, BOUNDS, PRIORS
    )


def fit_family(
    family: str,
    rows: Sequence[MeasuredRow],
    base: EfficiencyProfile,
    catalog: Catalog,
    *,
    params: Sequence[str] | None = None,
    leave_one_out: bool = True,
) -> FamilyFit:
    """Fit ``params`` (default ``FIT_PLAN[family]``) of one family on its rows (chips and
    models resolve through ``catalog``; ``base`` replaces the family's profile in it)."""
    params = tuple(FIT_PLAN.get(family, ()) if params is None else params)
    if len(rows) < 2 * max(len(params), 1) and params:
        raise SiliconomicsError(
            f"{family}: {len(rows)} rows cannot constrain {len(params)} factors"
        )
    predict = _predictor(catalog)
    before = np.abs(_residuals(rows, base, predict))
    values = fit_params(rows, base, params, predict)
    fitted = base.model_copy(update=values)
    after = np.abs(_residuals(rows, fitted, predict))
    loo = np.full(len(rows), np.nan)
    if leave_one_out and params and len(rows) > 1:
        for i in range(len(rows)):
            rest = [r for j, r in enumerate(rows) if j != i]
            vi = fit_params(rest, base, params, predict)
            loo[i] = abs(np.log(predict(rows[i], base.model_copy(update=vi)) / rows[i].value))

    def pct(logerr: np.ndarray) -> float:
        return float(np.median(np.expm1(logerr)) * 100) if len(logerr) else float("nan")

    return FamilyFit(
        family=family,
        params=params,
        values=values,
        n_rows=len(rows),
        median_abs_pct_before=pct(before),
        median_abs_pct_after=pct(after),
        loo_median_abs_pct=pct(loo) if np.isfinite(loo).all() else pct(after),
    )

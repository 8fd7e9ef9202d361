"""Family-level calibration of the training factors on measured training rows.

Same procedure as :mod:`.family_fit` (robust least squares on log(predicted / measured),
``soft_l1`` loss, scale 0.1, from fixed priors, within physical bounds, at most one factor per
two rows, leave-one-out reported), applied to the training-only profile fields:

* ``train_gemm_efficiency`` — bf16 training GEMMs (forward, dgrad, wgrad);
* ``train_lowp_gemm_efficiency`` — fp8/int8 training GEMMs (casts and scaling included);
* ``train_comm_overlap`` — fraction of tensor/context/pipeline/expert-parallel traffic hidden
  behind compute (Transformer Engine user-buffer overlap, XLA collective matmuls).

Families with too few rows take factors from the family named in ``TRAIN_INHERIT`` (same
software stack) or, for the overlap, the median of the fitted families; each profile's
provenance says which. Reproduce with ``scripts/calibrate_training.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..catalog.catalog import Catalog
from ..catalog.schema import EfficiencyProfile, ModelSpec
from ..errors import SiliconomicsError
from ..measured.training import TrainRow
from ..validate.train_rows import run_train_row
from .family_fit import FamilyFit, bounded_fit

TRAIN_BOUNDS: dict[str, tuple[float, float]] = {
    "train_gemm_efficiency": (0.30, 0.95),
    "train_lowp_gemm_efficiency": (0.20, 0.95),
    "train_comm_overlap": (0.0, 1.0),
}
#: Starting points: the H100 op-level GEMM efficiency (0.77, measured-ops), the same for
#: 8-bit GEMMs, and no overlap.
TRAIN_PRIORS: dict[str, float] = {
    "train_gemm_efficiency": 0.77,
    "train_lowp_gemm_efficiency": 0.77,
    "train_comm_overlap": 0.0,
}
#: What each family's training rows can constrain (bf16 GEMMs on NVIDIA keep the op-level
#: measurement: only two bf16 Hopper rows exist).
TRAIN_FIT_PLAN: dict[str, tuple[str, ...]] = {
    "nvidia-hopper": ("train_lowp_gemm_efficiency", "train_comm_overlap"),
    "nvidia-blackwell": ("train_lowp_gemm_efficiency",),
    "google-tpu": ("train_gemm_efficiency", "train_lowp_gemm_efficiency", "train_comm_overlap"),
}
TRAIN_INHERIT: dict[str, str] = {
    "nvidia-blackwell": "nvidia-hopper",
    "nvidia-ada": "nvidia-hopper",
    "nvidia-ampere": "nvidia-hopper",
}


Rows = Sequence[tuple[TrainRow, ModelSpec]]


def _residuals(rows: Rows, prof: EfficiencyProfile, catalog: Catalog) -> np.ndarray:
    out = []
    trial = catalog.with_profiles({prof.family: prof})
    for tr, model in rows:
        pred = run_train_row(tr, model, trial).predicted
        out.append(np.log(pred / tr.row.value))
    return np.array(out)


def fit_train_params(
    rows: Rows, base: EfficiencyProfile, params: Sequence[str], catalog: Catalog
) -> dict[str, float]:
    """Deterministic least-squares fit of ``params`` from the fixed priors."""
    return bounded_fit(
        lambda v: _residuals(rows, base.model_copy(update=v), catalog),
        params,
        TRAIN_BOUNDS,
        TRAIN_PRIORS,
    )


def fit_train_family(
    family: str,
    rows: Rows,
    base: EfficiencyProfile,
    catalog: Catalog,
    *,
    leave_one_out: bool = True,
) -> FamilyFit:
    """Fit ``TRAIN_FIT_PLAN[family]`` on the family's training rows (chips resolve through
    ``catalog``; ``base`` replaces the family's profile in it)."""
    params = TRAIN_FIT_PLAN.get(family, ())
    if params and len(rows) < 2 * len(params):
        raise SiliconomicsError(
            f"{family}: {len(rows)} rows cannot constrain {len(params)} factors"
        )
    before = np.abs(_residuals(rows, base, catalog))
    values = fit_train_params(rows, base, params, catalog)
    after = np.abs(_residuals(rows, base.model_copy(update=values), catalog))
    loo = np.full(len(rows), np.nan)
    if leave_one_out and params and len(rows) > 1:
        for i in range(len(rows)):
            vi = fit_train_params([r for j, r in enumerate(rows) if j != i], base, params, catalog)
            loo[i] = abs(_residuals([rows[i]], base.model_copy(update=vi), catalog)[0])

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

"""Predict each usable measured *training* row (``kind=training``) and compare.

Row -> plan: the row's dp/tp/pp/cp/ep, ``virtual_pp``, ``micro_batch``, ``recompute``,
``fsdp``/``zero_stage``, ``train_method`` and GEMM format are used as stated. A knob the row
leaves empty is a stated assumption: where several values are valid (virtual stages, micro
batch, recomputation) the fastest valid one that fits memory is taken — the published runs are
tuned, so the model assumes the tuned choice — and the row's ``assumptions`` say which was
picked. Rows whose modelled memory exceeds the chip are still predicted, with a note.

Metrics (SCHEMA.md): ``step_time_s``; ``train_tokens_per_s``; ``samples_per_s`` (sequences of
``seq_len``); ``model_flops_per_s_per_chip`` with the FLOP counter of the reporting framework
(MaxText: 6 x all parameters x tokens + attention, not causally halved before 2023-11-08, per
each row's notes; others: this model's 6N + causal attention); ``train_tokens_per_s_incl_eval``
is predicted as training throughput (eval excluded, so the prediction is an upper bound of a
lower bound — flagged). ``time_to_train_s`` needs convergence data and is never run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..catalog.catalog import Catalog
from ..catalog.schema import ModelSpec
from ..catalog.stacks import ProfileSet, packaged_residuals
from ..errors import SiliconomicsError
from ..measured.training import TrainRow
from ..ops.device import Device
from ..training.estimate import TrainEstimate, evaluate_grid, result_at, train_device
from ..training.flops import framework_flops_per_seq
from ..training.plan import RECOMPUTE, TrainPlan, grid_of, plan_validity
from ..training.precision import RECIPES
from .banded import Residual, default_profile_set, row_band, row_profile
from .rows import RowResult, Skipped, ValidationReport, row_device, summaries

METRICS = (
    "step_time_s",
    "train_tokens_per_s",
    "samples_per_s",
    "model_flops_per_s_per_chip",
    "train_tokens_per_s_incl_eval",
)


def _recipe_of(tr: TrainRow, act: str, notes: list[str]) -> str:
    """The training recipe of a row: its ``act_dtype`` (a format or a recipe name such as
    ``fp8-cs``, ``mxfp8``, ``nvfp4``, ``fp8-dpa-act``: the MLPerf importer names the recipe
    from the launch config's FP8 switches). A plain ``fp8`` NeMo MLPerf LoRA row without its
    config runs NVIDIA's published recipe: FP8 attention (training_results_v4.0
    llama2_70b_lora config_common.sh: FP8_DPA=1, NVTE_FP8_DPA_BWD=1) and the activation
    function's input stored in FP8 (FP8_ACT=1 in every v4.0 and v4.1 config and v5.0's
    single-node ones)."""
    if act not in RECIPES or not RECIPES[act].lowp:
        return "bf16"
    if act == "fp8" and tr.train_method == "lora" and tr.software.lower().startswith("nemo"):
        notes.append(
            "NeMo MLPerf LoRA -> fp8-dpa-act recipe (FP8 attention, FP8 frozen weights, "
            "activation-function input stored in FP8)"
        )
        return "fp8-dpa-act"
    return act


def _candidates(tr: TrainRow, model: ModelSpec, notes: list[str]) -> list[TrainPlan]:
    r = tr.row
    tp, pp, cp, ep = r.tp or 1, r.pp or 1, tr.cp or 1, r.ep or 1
    n = r.n_chips or 0
    dp = r.dp or (n // (tp * pp * cp) if n else 1)
    if n and dp * tp * pp * cp != n:
        raise SiliconomicsError(f"layout dp{dp} x tp{tp} x pp{pp} x cp{cp} != n_chips {n}")
    gb = tr.global_batch_seqs or 0
    if tr.fsdp.isdigit():
        zero, shard = 3, int(tr.fsdp)
    elif tr.fsdp == "true":
        zero, shard = 3, 0
    elif tr.fsdp == "false":
        zero, shard = tr.zero_stage if tr.zero_stage is not None else 1, 0
    else:
        zero, shard = tr.zero_stage if tr.zero_stage is not None else 1, 0
        if tr.zero_stage is None:
            notes.append("parameter sharding not stated -> zero=1 (distributed optimizer)")
    act = r.act_dtype or "bf16"
    # Megatron-Bridge performance recipes set ddp.grad_reduce_in_fp32=False (bf16 gradient
    # buffers; NVIDIA-NeMo/Megatron-Bridge scripts/performance configs, whose results are its
    # docs/performance-summary.md); its library recipes and others keep fp32
    # (recipes/llama/llama3.py _llama3_common: grad_reduce_in_fp32=True).
    bridge = "megatron-bridge" in tr.software.lower() and "performance" in r.source.lower()
    if bridge:
        notes.append("Megatron-Bridge recipe -> bf16 gradient buffers (grad_reduce_in_fp32=False)")
    # Megatron-Bridge's performance script runs a row marked 'tokendrop' with
    # apply_moe_token_drop(): capacity factor 1.0, expert inputs padded to capacity
    # (NVIDIA-NeMo/Megatron-Bridge scripts/performance, set_user_overrides/use_tokendrop).
    cf = 0.0
    if model.moe is not None and "'tokendrop'" in tr.notes:
        cf = 1.0
        notes.append("page qualifier 'tokendrop' -> capacity factor 1.0, padded to capacity")
    base = TrainPlan(
        capacity_factor=cf,
        grad_dtype="bf16" if bridge else "fp32",
        dp=dp,
        tp=tp,
        pp=pp,
        cp=cp,
        ep=ep,
        zero=zero,
        shard=shard,
        dtype=_recipe_of(tr, act, notes),
        method="lora" if tr.train_method == "lora" else "full",
        recompute=tr.recompute if tr.recompute in RECOMPUTE else "none",  # type: ignore[arg-type]
    )
    vpps = [tr.virtual_pp] if tr.virtual_pp else ([1, 2, 4, 8] if pp > 1 else [1])
    mbs = [tr.micro_batch] if tr.micro_batch else [b for b in (1, 2, 4, 8) if gb % (dp * b) == 0]
    rcs = [base.recompute] if tr.recompute in RECOMPUTE else list(RECOMPUTE)
    if tr.recompute == "custom":
        notes.append(
            "recompute 'custom' (per-tensor policy / host offload) -> best of the policies "
            "the chip allows"
        )
    return [
        replace(base, vpp=v, micro_batch=b, recompute=c)  # type: ignore[arg-type]
        for v in vpps
        for b in mbs
        for c in rcs
    ]


def _metric(tr: TrainRow, model: ModelSpec, tokens_per_s: float, step_s: float) -> float:
    r = tr.row
    S = tr.seq_len or 0
    if r.metric in ("train_tokens_per_s", "train_tokens_per_s_incl_eval"):
        return tokens_per_s
    if r.metric == "step_time_s":
        return step_s
    if r.metric == "samples_per_s":
        return tokens_per_s / S
    if r.metric == "model_flops_per_s_per_chip":
        maxtext = tr.software.lower().startswith("maxtext")
        causal = "non-causal" not in tr.notes
        per_seq = framework_flops_per_seq(
            model, S, params="total" if maxtext else "matmul", causal=causal
        )
        return per_seq * tokens_per_s / S / (r.n_chips or 1)
    raise AssertionError(r.metric)


@dataclass(frozen=True, kw_only=True)
class TrainRowResult:
    predicted: float
    bound: str
    assumptions: tuple[str, ...]


def best_row_estimate(
    tr: TrainRow, model: ModelSpec, dev: Device, notes: list[str]
) -> TrainEstimate:
    """The row's plan on ``dev`` (a training device): its stated knobs, the unstated ones at
    the fastest valid choice that fits (module docstring); notes what it assumed."""
    plans = _candidates(tr, model, notes)
    gb, S = tr.global_batch_seqs or 0, tr.seq_len or 0
    g = grid_of(plans)
    ok, reasons = plan_validity(model, dev, g, S, gb)
    if not ok.any():
        raise SiliconomicsError(f"the row's layout is invalid here: {reasons[0]}")
    g = g.take(np.flatnonzero(ok))
    res = evaluate_grid(model, dev, g, seq_len=S, global_batch_seqs=gb)
    fits = np.ravel(res.memory.fits)
    # Fastest plan that fits; if none fits, the one needing least memory (the run fit, so
    # it must have used at least that much recomputation/offload).
    i = int(np.argmax(np.where(fits, np.ravel(res.tokens_per_s), -1.0)))
    if not fits.any():
        i = int(np.argmin(np.ravel(res.memory.total)))
    est = result_at(res, i, model, dev, seq_len=S, global_batch_seqs=gb)
    if len(plans) > 1:
        notes.append(f"unstated knobs -> fastest valid: {est.plan.label()}")
    if not fits[i]:
        notes.append(
            f"modelled memory {est.memory_total / 2**30:.0f} GiB exceeds "
            f"{est.memory_capacity / 2**30:.0f} GiB (the run fit: the memory model is "
            "conservative here)"
        )
    return est


def run_train_row(tr: TrainRow, model: ModelSpec, catalog: Catalog) -> TrainRowResult:
    """Predict one training row (raises SiliconomicsError with the reason if it cannot); the
    row's chip and its family's efficiency profile come from ``catalog``."""
    r = tr.row
    if r.metric not in METRICS:
        raise SiliconomicsError(f"metric '{r.metric}' needs convergence data; not a step metric")
    if not tr.seq_len or not tr.global_batch_seqs:
        raise SiliconomicsError("seq_len and global_batch_seqs are needed")
    dev = train_device(row_device(r, catalog))
    notes: list[str] = []
    est = best_row_estimate(tr, model, dev, notes)
    if r.metric == "train_tokens_per_s_incl_eval":
        notes.append("measured time includes eval; predicted training throughput excludes it")
    return TrainRowResult(
        predicted=_metric(tr, model, est.tokens_per_s, est.step_time_s),
        bound=est.bound,
        assumptions=(*notes, *est.assumptions[:-1]),
    )


def train_rows_by_family(
    rows: list[TrainRow], catalog: Catalog
) -> list[tuple[TrainRow, ModelSpec | None, str]]:
    """Usable training rows with their model (None if unknown) and chip family."""
    out = []
    for tr in rows:
        if not tr.row.usable:
            continue
        m = catalog.models.get(tr.row.model)
        out.append((tr, m, catalog.chip(tr.row.chip).family))
    return out


def validate_training_rows(
    rows: list[TrainRow],
    catalog: Catalog,
    *,
    profile_set: ProfileSet | None = None,
    residuals: Sequence[Residual] | None = None,
    level: float = 0.8,
) -> ValidationReport:
    """Every usable training row predicted with the profile of its (chip family, stack) and
    compared, each with its error band, as a report of the same shape as the inference one
    (``not_inference`` = training rows not usable)."""
    results: list[RowResult] = []
    skipped: list[Skipped] = []
    unusable = 0
    ps = profile_set or default_profile_set(catalog.profiles)
    resid = packaged_residuals() if residuals is None else residuals
    for tr in rows:
        if tr.row.problem:
            unusable += 1
            skipped.append(Skipped(row=tr.row, reason=f"not read: {tr.row.problem}"))
            continue
        if not tr.row.usable:
            unusable += 1
            skipped.append(Skipped(row=tr.row, reason="marked usable=false in the file"))
            continue
        try:
            model = catalog.model(tr.row.model)
            fam = catalog.chip(tr.row.chip).family
            rp, note = row_profile(tr.row, fam, ps)
            out = run_train_row(tr, model, catalog.with_profiles({fam: rp.profile}))
        except SiliconomicsError as e:
            skipped.append(Skipped(row=tr.row, reason=str(e)))
            continue
        results.append(
            RowResult(
                row=tr.row,
                family=fam,
                predicted=out.predicted,
                bound=out.bound,
                assumptions=out.assumptions,
                band=row_band(tr.row, model, rp, note, out.predicted, resid, level),
            )
        )
    return ValidationReport(
        results=tuple(results),
        skipped=tuple(skipped),
        not_inference=0,
        by_family=summaries(results, "family"),
        by_metric=summaries(results, "metric"),
        by_chip=summaries(results, "chip"),
    )

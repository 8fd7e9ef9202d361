"""Does the training search stay real? For every published training row, the MFU of the
fastest plan the search proposes for the same model, chip, chip count, batch, sequence, format
and method, against the MFU the published run reached (both in this model's units: model
FLOPs ``6N + causal attention`` — LoRA ``4N`` — over the peak of the run's GEMM format).

Issue 10 item 6 asks the ratio to stay within 1.10: a larger ratio means the search credits
plans with speed no published stack has shown. The ratio is a diagnostic, never a cap.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.schema import ModelSpec
from ..errors import SiliconomicsError
from ..ops.device import Device
from ..training.estimate import train_device
from ..training.flops import framework_flops_per_seq, model_flops_per_token
from ..training.precision import peak_dtype
from ..training.search import search_plans
from .train_rows import TrainRow, _recipe_of, best_row_estimate


@dataclass(frozen=True, kw_only=True)
class Realism:
    """One published row against the search's best plan."""

    row_id: str
    published_mfu: float
    search_mfu: float
    search_plan: str
    plan_mfu: float = float("nan")
    """the model's MFU for the published plan (its unstated knobs at the fastest valid choice,
    as ``validate`` predicts the row)"""
    published_plan: str = ""

    @property
    def ratio(self) -> float:
        return self.search_mfu / self.published_mfu

    @property
    def row_error(self) -> float:
        """model / published on the published plan: > 1 means the step model itself is
        optimistic for this run, whatever plan the search picks"""
        return self.plan_mfu / self.published_mfu

    @property
    def search_gain(self) -> float:
        """searched / published plan, both in the model: what the search credits beyond the
        published layout (``ratio = row_error x search_gain``)"""
        return self.search_mfu / self.plan_mfu


def published_tokens_per_s(tr: TrainRow, model: ModelSpec) -> float:
    """Whole-job training tokens/s of a measured row (its metric converted)."""
    r, S, gb = tr.row, tr.seq_len or 0, tr.global_batch_seqs or 0
    if r.metric in ("train_tokens_per_s", "train_tokens_per_s_incl_eval"):
        return r.value
    if r.metric == "step_time_s":
        return gb * S / r.value
    if r.metric == "samples_per_s":
        return r.value * S
    if r.metric == "model_flops_per_s_per_chip":
        maxtext = tr.software.lower().startswith("maxtext")
        causal = "non-causal" not in tr.notes
        per_seq = framework_flops_per_seq(
            model, S, params="total" if maxtext else "matmul", causal=causal
        )
        return r.value * (r.n_chips or 1) / per_seq * S
    raise SiliconomicsError(f"metric '{r.metric}' is not a step metric")


def configuration(tr: TrainRow) -> tuple[object, ...]:
    """What makes two published rows the same training configuration for the realism check:
    model, chip, chip count, sequence length, global batch, method and recipe (the software,
    date and layout may differ)."""
    r = tr.row
    dtype = _recipe_of(tr, r.act_dtype or "bf16", [])
    method = "lora" if tr.train_method == "lora" else "full"
    return (r.model, r.chip, r.n_chips, tr.seq_len, tr.global_batch_seqs, method, dtype)


def published_mfu(tr: TrainRow, model: ModelSpec, device: Device) -> float:
    """The MFU a published row reached, in this model's units (module docstring)."""
    r = tr.row
    S, gb, n = tr.seq_len or 0, tr.global_batch_seqs or 0, r.n_chips or 0
    if not (S and gb and n):
        raise SiliconomicsError("seq_len, global_batch_seqs and n_chips are needed")
    dtype = _recipe_of(tr, r.act_dtype or "bf16", [])
    method = "lora" if tr.train_method == "lora" else "full"
    peak = train_device(device).peak_flops(peak_dtype(dtype))
    tps = published_tokens_per_s(tr, model)
    return tps * model_flops_per_token(model, S, method=method) / (n * peak)


def search_vs_published(tr: TrainRow, model: ModelSpec, device: Device) -> Realism:
    """The search's best plan for the row's configuration against the published MFU."""
    r = tr.row
    S, gb, n = tr.seq_len or 0, tr.global_batch_seqs or 0, r.n_chips or 0
    pub = published_mfu(tr, model, device)
    dtype = _recipe_of(tr, r.act_dtype or "bf16", [])
    method = "lora" if tr.train_method == "lora" else "full"
    best = search_plans(
        model, device, n, seq_len=S, global_batch_seqs=gb, dtype=dtype, method=method, top=1
    )[0]
    try:
        own = best_row_estimate(tr, model, train_device(device), [])
        plan_mfu, plan_label = own.mfu, own.plan.short_label()
    except SiliconomicsError:
        plan_mfu, plan_label = float("nan"), ""
    return Realism(
        row_id=r.id,
        published_mfu=pub,
        search_mfu=best.mfu,
        search_plan=best.plan.short_label(),
        plan_mfu=plan_mfu,
        published_plan=plan_label,
    )

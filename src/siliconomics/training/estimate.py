"""Training estimates: one plan (:func:`estimate_training`), many plans at once
(:func:`evaluate_grid`), and time, cost and energy to train a token budget."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ..catalog.registry import get_chip, get_efficiency
from ..catalog.schema import EfficiencyProfile, ModelSpec
from ..economics.cost import ChipPower, power_per_chip_w
from ..errors import DoesNotFitError, SiliconomicsError
from ..ops.device import Device
from ..units import fmt_si
from .flops import model_flops_per_token
from .memory import TrainMemory, train_memory
from .plan import PlanGrid, TrainPlan, grid_of
from .precision import peak_dtype
from .step import Overlap, StepTime, step_time

F = NDArray[np.float64]


def train_device(chip_id: str, eff: EfficiencyProfile | None = None) -> Device:
    """A chip with its family's efficiency profile, training factors applied where the
    profile has them (``train_gemm_efficiency``, ``train_lowp_gemm_efficiency``)."""
    chip = get_chip(chip_id)
    prof = eff if eff is not None else get_efficiency(chip.family)
    upd: dict[str, float] = {}
    if prof.train_gemm_efficiency is not None:
        upd["gemm_efficiency"] = prof.train_gemm_efficiency
    if prof.train_lowp_gemm_efficiency is not None:
        upd["lowp_gemm_efficiency"] = prof.train_lowp_gemm_efficiency
    return Device(chip=chip, eff=prof.model_copy(update=upd) if upd else prof)


def default_overlap(dev: Device) -> Overlap:
    """The family's fraction of TP/CP/PP/EP communication hidden (0 if not calibrated)."""
    f = dev.eff.train_comm_overlap or 0.0
    return Overlap(tp=f, pp=f, ep=f)


@dataclass(frozen=True, kw_only=True)
class GridResult:
    """Every plan of a grid evaluated: arrays over plans."""

    grid: PlanGrid
    step: StepTime
    memory: TrainMemory
    tokens_per_s: F
    mfu: F
    hfu: F


@dataclass(frozen=True, kw_only=True)
class TrainEstimate:
    """One training configuration: speed, utilisation, memory and where the time goes."""

    model: ModelSpec
    device: Device
    plan: TrainPlan
    seq_len: int
    global_batch_seqs: int
    step_time_s: float
    tokens_per_s: float
    """whole job"""
    mfu: float
    """model FLOPs / (time x chips x peak of the plan's GEMM format)"""
    hfu: float
    """as mfu, counting recomputed forward FLOPs too"""
    breakdown: dict[str, float]
    """seconds per step by component; sums to step_time_s"""
    memory: dict[str, float]
    """bytes per chip by component"""
    memory_capacity: float
    microbatches: int
    assumptions: tuple[str, ...] = ()
    why: tuple[str, ...] = field(default=())
    """for searched plans: what makes this plan fast or slow relative to the best"""

    @property
    def chips(self) -> int:
        return self.plan.chips

    @property
    def tokens_per_s_per_chip(self) -> float:
        return self.tokens_per_s / self.chips

    @property
    def model_flops_per_s_per_chip(self) -> float:
        peak = self.device.peak_flops(peak_dtype(self.plan.dtype))
        return self.mfu * peak

    @property
    def memory_total(self) -> float:
        return sum(self.memory.values())

    @property
    def bound(self) -> str:
        """The largest non-compute share of the step, or 'compute'."""
        b = self.breakdown
        compute = b["forward"] + b["backward"] + b["recompute"] + b["optimizer"]
        others = {k: v for k, v in b.items() if k not in ("forward", "backward", "recompute")}
        k, v = max(others.items(), key=lambda kv: kv[1])
        return "compute" if compute >= v else k


def evaluate_grid(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    *,
    seq_len: int,
    global_batch_seqs: int,
    overlap: Overlap | None = None,
    algorithm: str = "auto",
) -> GridResult:
    """Step time, memory and utilisation of every plan in ``g`` (no validity filtering)."""
    overlap = overlap or default_overlap(dev)
    st = step_time(
        model,
        dev,
        g,
        seq_len=seq_len,
        global_batch=global_batch_seqs,
        overlap=overlap,
        algorithm=algorithm,
    )
    mem = train_memory(model, dev, g, seq_len=seq_len, global_batch=global_batch_seqs)
    tokens = float(global_batch_seqs * seq_len)
    t = st.total
    peak = dev.peak_flops(peak_dtype(g.dtype)) * g.chips
    mflops = tokens * model_flops_per_token(model, seq_len, method=g.method)
    fwd_layers = tokens * model_flops_per_token(model, seq_len, method="full") / 3.0
    hflops = mflops + np.where(g.recompute == 2, fwd_layers, 0.0)
    return GridResult(
        grid=g,
        step=st,
        memory=mem,
        tokens_per_s=tokens / t,
        mfu=mflops / (t * peak),
        hfu=hflops / (t * peak),
    )


def _assumptions(dev: Device, plan: TrainPlan, ov: Overlap) -> tuple[str, ...]:
    out = list(dev.assumptions(peak_dtype(plan.dtype)))
    ic = dev.chip.interconnect
    if plan.chips > ic.scale_up_domain and ic.scale_out_bytes_per_s is None:
        out.append(
            f"{dev.id}: scale-out bandwidth unpublished, assumed 12.5 GB/s per chip (100 Gb/s)"
        )
    out.append(
        f"overlap: {ov.tp:.0%} of tp/sp, {ov.pp:.0%} of pp send/recv hidden; dp "
        f"{'hidden behind backward' if ov.dp else 'exposed'}; pipeline stages balanced"
    )
    if peak_dtype(plan.dtype) != "bf16":
        out.append(
            f"{plan.dtype} recipe: transformer-block GEMMs at the {peak_dtype(plan.dtype)} "
            "rate with their quantisation passes; LM head, router, norms and collectives "
            "stay 16-bit"
        )
    if plan.method != "full":
        out.append(
            f"{plan.method}: frozen base (no weight gradients), rank-{plan.lora_rank} BF16 "
            "adapters on the attention projections"
        )
    return tuple(out)


def result_at(
    res: GridResult, i: int, model: ModelSpec, dev: Device, **kw: object
) -> TrainEstimate:
    """The ``i``-th plan of a grid result as a :class:`TrainEstimate`."""
    plan = res.grid.plan(i)
    seq_len = int(kw["seq_len"])  # type: ignore[call-overload]
    gb = int(kw["global_batch_seqs"])  # type: ignore[call-overload]
    ov = kw.get("overlap") or default_overlap(dev)
    assert isinstance(ov, Overlap)
    return TrainEstimate(
        model=model,
        device=dev,
        plan=plan,
        seq_len=seq_len,
        global_batch_seqs=gb,
        step_time_s=float(np.ravel(res.step.total)[i]),
        tokens_per_s=float(np.ravel(res.tokens_per_s)[i]),
        mfu=float(np.ravel(res.mfu)[i]),
        hfu=float(np.ravel(res.hfu)[i]),
        breakdown={k: float(np.ravel(v)[i]) for k, v in res.step.parts().items()},
        memory={
            k: float(np.ravel(np.broadcast_to(v, res.grid.dp.shape))[i])
            for k, v in res.memory.parts().items()
        },
        memory_capacity=res.memory.capacity,
        microbatches=int(np.ravel(res.step.microbatches)[i]),
        assumptions=_assumptions(dev, plan, ov),
    )


def _fit_error(est: TrainEstimate) -> DoesNotFitError:
    short = est.memory_total - est.memory_capacity
    parts = ", ".join(f"{k} {fmt_si(v, 'B', binary=True)}" for k, v in est.memory.items() if v > 0)
    biggest = max(((k, v) for k, v in est.memory.items() if k != "reserve"), key=lambda kv: kv[1])[
        0
    ]
    hint = {
        "activations": "try recompute=full, a smaller micro_batch, or more tp/pp/cp",
        "optimizer state": "try zero=1 or higher (shard optimizer state over data parallel)",
        "gradients": "try zero=2 or higher",
        "weights": "try zero=3 (FSDP), or more tp/pp",
    }[biggest]
    if biggest != "activations" and est.plan.shard_group == 1:
        # ZeRO/FSDP shard over data (and context) parallel ranks; with one rank there is
        # nothing to shard over.
        hint = (
            "ZeRO/FSDP cannot help at dp*cp=1; use more chips (dp>1 with zero=1..3) or more tp/pp"
        )
    return DoesNotFitError(
        f"{est.model.id} does not fit on {est.chips} x {est.device.id} with {est.plan.label()}: "
        f"needs {fmt_si(est.memory_total, 'B', binary=True)} per chip of "
        f"{fmt_si(est.memory_capacity, 'B', binary=True)} ({parts}); short by "
        f"{fmt_si(short, 'B', binary=True)}, largest: {biggest}",
        shortfall_bytes=short,
        suggestion=hint,
    )


def estimate_training(
    model: ModelSpec,
    chip_id: str,
    plan: TrainPlan,
    *,
    seq_len: int,
    global_batch_seqs: int,
    overlap: Overlap | None = None,
    algorithm: str = "auto",
    eff: EfficiencyProfile | None = None,
    check_memory: bool = True,
) -> TrainEstimate:
    """Estimate one training plan. Raises a clear error for an invalid plan and
    :class:`DoesNotFitError` (naming what overflowed, by how much) when it does not fit."""
    if seq_len < 1 or global_batch_seqs < 1:
        raise SiliconomicsError("seq_len and global_batch_seqs must be positive integers")
    dev = train_device(chip_id, eff)
    plan.validate(model, dev, seq_len=seq_len, global_batch=global_batch_seqs)
    g = grid_of([plan])
    kw = {"seq_len": seq_len, "global_batch_seqs": global_batch_seqs, "overlap": overlap}
    res = evaluate_grid(model, dev, g, algorithm=algorithm, **kw)  # type: ignore[arg-type]
    est = result_at(res, 0, model, dev, **kw)
    if check_memory and est.memory_total > est.memory_capacity:
        raise _fit_error(est)
    return est


@dataclass(frozen=True, kw_only=True)
class TrainCost:
    """Time, money and energy to train on a token budget."""

    tokens: float
    time_s: float
    chip_hours: float
    cost_usd: float
    """NaN when no price is known"""
    energy_j: float
    """NaN when the chip's TDP is unknown and cannot be estimated"""
    power_w_per_chip: float
    power: ChipPower | None


def time_and_cost_to_train(
    est: TrainEstimate, tokens: float, price_usd_per_chip_hour: float | None
) -> TrainCost:
    """Wall time, chip-hours, cost and energy to train ``tokens`` tokens at ``est``'s speed.
    Power uses economics' model with activity = the share of the step in compute (busy
    matrix/memory units) versus communication, bubble and overhead."""
    if tokens <= 0:
        raise SiliconomicsError(f"tokens must be positive, got {tokens}")
    t = tokens / est.tokens_per_s
    chip_h = t * est.chips / 3600.0
    b = est.breakdown
    busy = b["forward"] + b["backward"] + b["recompute"] + b["optimizer"]
    watts, power = power_per_chip_w(est.device.chip, busy / est.step_time_s)
    w = float(watts)
    return TrainCost(
        tokens=tokens,
        time_s=t,
        chip_hours=chip_h,
        cost_usd=chip_h * price_usd_per_chip_hour if price_usd_per_chip_hour else float("nan"),
        energy_j=w * est.chips * t,
        power_w_per_chip=w,
        power=power,
    )

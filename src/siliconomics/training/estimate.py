"""Training estimates: one plan (:func:`estimate_training`), many plans at once
(:func:`evaluate_grid`), and time, cost and energy to train a token budget."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..catalog.schema import ModelSpec
from ..economics.cost import ChipPower, power_per_chip_w
from ..errors import DoesNotFitError, SiliconomicsError
from ..ops.device import Device
from ..units import fmt_si
from . import gridcore
from .flops import model_flops_per_token
from .kernels import SC
from .memory import TrainMemory, train_memory
from .plan import _INT_FIELDS, PlanGrid, TrainPlan, check_model, scalar_grid, stage_layers
from .precision import peak_dtype
from .step import (
    LayoutTimes,
    Overlap,
    StepTime,
    _plan_times,
    layout_key,
    layout_times,
    step_time,
    step_total,
    total_time,
)

F = NDArray[np.float64]


_TRAIN_DEV: dict[tuple[int, int], tuple[Any, Any, Device]] = {}


def train_device(device: Device) -> Device:
    """``device`` (a chip with its family's efficiency profile) with the training factors
    applied where the profile has them (``train_gemm_efficiency``,
    ``train_lowp_gemm_efficiency``). Cached per chip and profile object."""
    key = (id(device.chip), id(device.eff))
    hit = _TRAIN_DEV.get(key)
    if hit is not None and hit[0] is device.chip and hit[1] is device.eff:
        return hit[2]
    out = _train_device(device)
    if len(_TRAIN_DEV) > 64:
        _TRAIN_DEV.clear()
    _TRAIN_DEV[key] = (device.chip, device.eff, out)
    return out


def _train_device(device: Device) -> Device:
    chip, prof = device.chip, device.eff
    upd: dict[str, float] = {}
    if prof.train_gemm_efficiency is not None:
        upd["gemm_efficiency"] = prof.train_gemm_efficiency
    if prof.train_lowp_gemm_efficiency is not None:
        upd["lowp_gemm_efficiency"] = prof.train_lowp_gemm_efficiency
    upd_any: dict[str, float | None] = dict(upd)
    if prof.grouped_gemm_efficiency is not None:
        # fitted on inference rows (the serving stacks' fused MoE kernels); training's
        # grouped GEMMs (Megatron/TE) have no factor of their own yet
        upd_any["grouped_gemm_efficiency"] = None
    return Device(chip=chip, eff=prof.model_copy(update=upd_any) if upd_any else prof)


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


#: plans per block of the vectorised evaluation: its ~100 temporaries of this many float64
#: stay in the L2 cache (a larger grid is evaluated block by block)
BLOCK = 4096


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
    """Step time, memory and utilisation of every plan in ``g`` (no validity filtering).

    The layout-only part of the step (:class:`.step.LayoutTimes`: layer, edge, TP/CP/EP
    times, parameters per chip) is computed once per distinct layout and the rest per plan,
    in blocks of :data:`BLOCK` plans; the results equal an evaluation of every plan on its
    own (``tests/test_train_fast.py``)."""
    check_model(model)
    overlap = overlap or default_overlap(dev)
    shape = np.shape(g.dp)
    flat = _flat(g)
    kw = {"seq_len": seq_len, "global_batch_seqs": global_batch_seqs}
    if gridcore.use(model, algorithm, flat.size, flat.recompute):
        res = _evaluate_compiled(model, dev, flat, overlap=overlap, algorithm=algorithm, **kw)
    elif flat.size <= BLOCK:
        res = _evaluate_flat(model, dev, flat, overlap=overlap, algorithm=algorithm, **kw)
    else:
        parts = [
            _evaluate_flat(
                model,
                dev,
                flat.take(np.arange(i, min(i + BLOCK, flat.size))),
                overlap=overlap,
                algorithm=algorithm,
                **kw,
            )
            for i in range(0, flat.size, BLOCK)
        ]
        res = _concat(parts, flat)
    return res if shape == (flat.size,) else _reshape(res, g, shape)


def _flat(g: PlanGrid) -> PlanGrid:
    """``g`` with every per-plan field a 1-D array of one length."""
    names = (*_INT_FIELDS, "recompute", "sp")
    vals = [getattr(g, k) for k in names]
    if all(type(v) is np.ndarray and v.ndim == 1 and v.size == vals[0].size for v in vals):
        return g
    arrs = np.broadcast_arrays(*(np.asarray(v) for v in vals))
    if all(a.ndim == 1 for a in arrs) and all(isinstance(getattr(g, k), np.ndarray) for k in names):
        return g
    flat = {k: np.ravel(a).copy() for k, a in zip(names, arrs, strict=True)}
    return replace(g, **flat)  # type: ignore[arg-type]


def _map_fields(obj: Any, fn: Any) -> Any:
    """A dataclass of arrays with ``fn`` applied to each array field (floats kept)."""
    return replace(
        obj,
        **{
            f.name: fn(getattr(obj, f.name))
            for f in fields(obj)
            if isinstance(getattr(obj, f.name), np.ndarray)
        },
    )


def _concat(parts: list[GridResult], g: PlanGrid) -> GridResult:
    def cat(name: str, sub: str | None = None) -> Any:
        objs = [getattr(p, name) for p in parts]
        if sub is None:
            return np.concatenate(objs)
        vals = [getattr(o, sub) for o in objs]
        return np.concatenate(vals) if isinstance(vals[0], np.ndarray) else vals[0]

    step = replace(parts[0].step, **{f.name: cat("step", f.name) for f in fields(StepTime)})
    mem = replace(parts[0].memory, **{f.name: cat("memory", f.name) for f in fields(TrainMemory)})
    return GridResult(
        grid=g,
        step=step,
        memory=mem,
        tokens_per_s=cat("tokens_per_s"),
        mfu=cat("mfu"),
        hfu=cat("hfu"),
    )


def _reshape(res: GridResult, g: PlanGrid, shape: tuple[int, ...]) -> GridResult:
    def rs(a: Any) -> Any:
        return a.reshape(shape) if np.size(a) == int(np.prod(shape)) else a

    return GridResult(
        grid=g,
        step=_map_fields(res.step, rs),
        memory=_map_fields(res.memory, rs),
        tokens_per_s=rs(res.tokens_per_s),
        mfu=rs(res.mfu),
        hfu=rs(res.hfu),
    )


def grid_layouts(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    *,
    seq_len: int,
    overlap: Overlap,
    algorithm: str = "auto",
) -> LayoutTimes:
    """:class:`.step.LayoutTimes` of every plan of a flat grid, computed once per distinct
    layout (:func:`.step.layout_key`) and scattered back."""
    first, inv = layout_key(g)
    sub = g.take(first)
    lt = layout_times(model, dev, sub, seq_len=seq_len, overlap=overlap, algorithm=algorithm)
    return lt.take(inv, (sub.size,))


def _evaluate_compiled(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    *,
    seq_len: int,
    global_batch_seqs: int,
    overlap: Overlap,
    algorithm: str,
) -> GridResult:
    """:func:`_evaluate_flat` through the compiled per-plan loop (:mod:`.gridcore`), on the
    whole flat grid at once."""
    tokens = float(global_batch_seqs * seq_len)
    out = gridcore.evaluate(
        model,
        dev,
        g,
        seq_len=seq_len,
        global_batch=global_batch_seqs,
        overlap=overlap,
        algorithm=algorithm,
        peak=dev.peak_flops(peak_dtype(g.dtype)),
        mflops=tokens * _flops_per_token(model, seq_len, g.method),
        fwd_layers=tokens * _flops_per_token(model, seq_len, "full") / 3.0,
    )
    st, mem, tps, mfu, hfu = gridcore.results(out, dev)
    return GridResult(grid=g, step=st, memory=mem, tokens_per_s=tps, mfu=mfu, hfu=hfu)


def _evaluate_flat(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    *,
    seq_len: int,
    global_batch_seqs: int,
    overlap: Overlap,
    algorithm: str,
) -> GridResult:
    lt = grid_layouts(model, dev, g, seq_len=seq_len, overlap=overlap, algorithm=algorithm)
    lq = stage_layers(model, g.pp, g.vpp)
    st = step_time(
        model,
        dev,
        g,
        seq_len=seq_len,
        global_batch=global_batch_seqs,
        overlap=overlap,
        algorithm=algorithm,
        layouts=lt,
        lq=lq,
    )
    mem = train_memory(
        model,
        dev,
        g,
        seq_len=seq_len,
        global_batch=global_batch_seqs,
        params=(lt.per_layer, lt.edges),
        lq=lq,
    )
    return _grid_result(model, dev, g, st, mem, seq_len, global_batch_seqs)


def _grid_result(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    st: StepTime,
    mem: TrainMemory,
    seq_len: int,
    global_batch_seqs: int,
) -> GridResult:
    tokens = float(global_batch_seqs * seq_len)
    t = st.total
    peak = dev.peak_flops(peak_dtype(g.dtype)) * g.chips
    mflops = tokens * _flops_per_token(model, seq_len, g.method)
    fwd_layers = tokens * _flops_per_token(model, seq_len, "full") / 3.0
    hflops = mflops + np.where(g.recompute == 2, fwd_layers, 0.0)
    return GridResult(
        grid=g,
        step=st,
        memory=mem,
        tokens_per_s=tokens / t,
        mfu=mflops / (t * peak),
        hfu=hflops / (t * peak),
    )


_FLOPS: dict[tuple[int, int, str], tuple[ModelSpec, float]] = {}


def _flops_per_token(model: ModelSpec, seq_len: int, method: str) -> float:
    """:func:`.flops.model_flops_per_token`, memoised per model object."""
    key = (id(model), seq_len, method)
    hit = _FLOPS.get(key)
    if hit is not None and hit[0] is model:
        return hit[1]
    v = model_flops_per_token(model, seq_len, method=method)
    if len(_FLOPS) > 1024:
        _FLOPS.clear()
    _FLOPS[key] = (model, v)
    return v


def step_times_only(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    *,
    seq_len: int,
    global_batch_seqs: int,
    overlap: Overlap | None = None,
    algorithm: str = "auto",
) -> F:
    """Time-only path for the plan search: the step time of every plan of a flat grid
    (equal to ``evaluate_grid(...).step.total``), without the components, memory or
    utilisation; in blocks of :data:`BLOCK` plans."""
    ov = overlap or default_overlap(dev)
    g = _flat(g)
    if gridcore.use(model, algorithm, g.size, g.recompute):
        kw: dict[str, Any] = {"overlap": ov, "algorithm": algorithm, "time_only": True}
        t = gridcore.evaluate(model, dev, g, seq_len=seq_len, global_batch=global_batch_seqs, **kw)
        return t[0]
    out = np.empty(g.size)
    for i in range(0, g.size, BLOCK):
        b = g if g.size <= BLOCK else g.take(np.arange(i, min(i + BLOCK, g.size)))
        lt = grid_layouts(model, dev, b, seq_len=seq_len, overlap=ov, algorithm=algorithm)
        out[i : i + b.size] = step_total(
            model,
            dev,
            b,
            lt,
            seq_len=seq_len,
            global_batch=global_batch_seqs,
            overlap=ov,
            algorithm=algorithm,
        )
    return out


def _assumptions(dev: Device, plan: TrainPlan, ov: Overlap) -> tuple[str, ...]:
    out = list(dev.assumptions(peak_dtype(plan.dtype)))
    ic = dev.chip.interconnect
    if plan.chips > ic.scale_up_domain and ic.scale_out_bytes_per_s is None:
        out.append(
            f"{dev.id}: scale-out bandwidth unpublished, assumed 12.5 GB/s per chip (100 Gb/s)"
        )
    out.append(
        f"overlap: {ov.tp:.0%} of tp/sp, {ov.pp:.0%} of pp send/recv hidden (never more than "
        f"the micro-batch's compute); dp "
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
    shards_it = {"optimizer state": 1, "gradients": 2, "weights": 3}
    if biggest in shards_it and est.plan.zero >= shards_it[biggest]:
        # already sharded by the plan's ZeRO stage: only a larger shard group or tp/pp helps
        hint = f"zero={est.plan.zero} already shards it; use more chips or more tp/pp"
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
    device: Device,
    plan: TrainPlan,
    *,
    seq_len: int,
    global_batch_seqs: int,
    overlap: Overlap | None = None,
    algorithm: str = "auto",
    check_memory: bool = True,
) -> TrainEstimate:
    """Estimate one training plan on ``device`` (the chip and its efficiency profile; the
    training factors are applied here). Raises a clear error for an invalid plan and
    :class:`DoesNotFitError` (naming what overflowed, by how much) when it does not fit.

    The plan is evaluated on Python numbers (:data:`.kernels.SC`), the same formulas as
    :func:`evaluate_grid` in the same order, so the two agree (``tests/test_train_fast.py``)."""
    if seq_len < 1 or global_batch_seqs < 1:
        raise SiliconomicsError("seq_len and global_batch_seqs must be positive integers")
    check_model(model)
    dev = train_device(device)
    plan.validate(model, dev, seq_len=seq_len, global_batch=global_batch_seqs)
    est = _estimate_one(model, dev, plan, seq_len, global_batch_seqs, overlap, algorithm)
    if check_memory and est.memory_total > est.memory_capacity:
        raise _fit_error(est)
    return est


def _estimate_one(
    model: ModelSpec,
    dev: Device,
    plan: TrainPlan,
    seq_len: int,
    gb: int,
    overlap: Overlap | None,
    algorithm: str,
) -> TrainEstimate:
    """One valid plan through the scalar kernels: the :class:`TrainEstimate` that
    ``result_at(evaluate_grid(...), 0, ...)`` gives."""
    ov = overlap or default_overlap(dev)
    g = scalar_grid(plan)
    lt = layout_times(model, dev, g, seq_len=seq_len, overlap=ov, algorithm=algorithm, xp=SC)
    p = _plan_times(model, dev, g, lt, seq_len, gb, ov, algorithm, SC)
    mem = train_memory(
        model, dev, g, seq_len=seq_len, global_batch=gb, params=(lt.per_layer, lt.edges), xp=SC
    )
    m, t = p["m"], float(total_time(p, dev.eff.step_overhead_s))
    tokens = float(gb * seq_len)
    peak = dev.peak_flops(peak_dtype(g.dtype)) * plan.chips
    mflops = tokens * _flops_per_token(model, seq_len, g.method)
    fwd_layers = tokens * _flops_per_token(model, seq_len, "full") / 3.0
    hflops = mflops + (fwd_layers if plan.recompute == "full" else 0.0)
    breakdown = {
        "forward": m * p["fwd"],
        "backward": m * p["bwd"],
        "recompute": m * p["rc"],
        "tp/sp comm": m * p["t_tp"],
        "cp comm": m * p["t_cp"],
        "ep all-to-all": m * p["t_ep"],
        "pp send/recv": m * p["t_pp"],
        "fsdp gather/scatter": m * p["t_fsdp"],
        "pipeline bubble": p["bubble"],
        "dp grad/param comm": p["dp_exposed"],
        "optimizer": p["t_opt"],
        "overhead": dev.eff.step_overhead_s,
    }
    return TrainEstimate(
        model=model,
        device=dev,
        plan=plan,
        seq_len=seq_len,
        global_batch_seqs=gb,
        step_time_s=t,
        tokens_per_s=tokens / t,
        mfu=float(mflops / (t * peak)),
        hfu=float(hflops / (t * peak)),
        breakdown={k: float(v) for k, v in breakdown.items()},
        memory={k: float(v) for k, v in mem.parts().items()},
        memory_capacity=mem.capacity,
        microbatches=int(m),
        assumptions=_assumptions(dev, plan, ov),
    )


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

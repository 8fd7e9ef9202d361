"""Search the training plan space for (model, chip, chip count, global batch).

Candidates are the cross product of tp (powers of two inside the scale-up domain, and the
domain size), pp (powers of two), cp, vpp and micro-batch (1, 2, 4, 8), ZeRO stage 1 or 3,
recomputation (none, selective, full) and, for MoE models, ep — built as numpy arrays, filtered
by the vectorised validity rules of :func:`.plan.plan_validity`, and evaluated in one call
(:func:`.estimate.evaluate_grid`). Plans that fit memory are ranked by tokens/s; each of the
top few says where its step time goes, which is why it wins or loses against the best.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from ..catalog.schema import ModelSpec
from ..errors import DoesNotFitError, SiliconomicsError
from ..ops.device import Device
from ..units import fmt_si
from .estimate import (
    GridResult,
    TrainEstimate,
    default_overlap,
    evaluate_grid,
    result_at,
    step_times_only,
    train_device,
)
from .lora import check_method
from .memory import train_memory
from .plan import RECOMPUTE, PlanGrid, resolve_etp
from .precision import check_recipe
from .step import Overlap

_POW2 = (1, 2, 4, 8, 16, 32, 64)


def candidate_grid(
    model: ModelSpec,
    domain: int,
    n_chips: int,
    *,
    dtype: str = "bf16",
    method: str = "full",
    optimizer: str = "adam",
    seq_len: int = 4096,
    lora_rank: int = 16,
    offload: bool = False,
) -> PlanGrid:
    """Every combination of degrees whose product is ``n_chips`` (before validity rules);
    ``offload``: the chip can offload activations to host memory, so ``recompute=offload``
    is a candidate too."""
    tps = sorted({t for t in _POW2 if t <= domain} | {domain})
    pps = [p for p in _POW2 if p <= model.n_layers]
    cps = [c for c in (1, 2, 4, 8) if seq_len >= 4096 * c or c == 1]
    eps = [e for e in _POW2 if model.moe and e <= model.moe.n_experts] if model.moe else [1]
    rcs = (0, 1, 2, 3) if offload else (0, 1, 2)
    combos = [
        c
        for c in itertools.product(tps, pps, cps, eps, (1, 2, 4, 8), (1, 2, 4, 8), (1, 3), rcs)
        if n_chips % (c[0] * c[1] * c[2]) == 0 and (c[1] > 1 or c[4] == 1)
    ]
    if not combos:
        raise SiliconomicsError(f"no parallel layout divides {n_chips} chips")
    a = np.array(combos, dtype=np.int64).T
    tp, pp, cp, ep, vpp, mb, zero, rc = a
    dp = n_chips // (tp * pp * cp)
    return PlanGrid(
        dp=dp,
        tp=tp,
        pp=pp,
        cp=cp,
        ep=ep,
        etp=resolve_etp(np.zeros_like(tp), tp, dp * cp, ep),
        vpp=vpp,
        zero=zero,
        shard=dp * cp,
        micro_batch=mb,
        recompute=rc,
        sp=tp > 1,
        dtype=dtype,
        optimizer=optimizer,
        method=method,
        lora_rank=lora_rank,
    )


def _why(
    est: TrainEstimate, best: TrainEstimate | None, n_valid: int, n_fit: int
) -> tuple[str, ...]:
    b, t = est.breakdown, est.step_time_s
    costs = sorted(
        ((k, v) for k, v in b.items() if k not in ("forward", "backward") and v / t >= 0.005),
        key=lambda kv: -kv[1],
    )
    out = [", ".join(f"{k} {v / t:.0%}" for k, v in costs[:3]) or "almost pure compute"]
    free = est.memory_capacity - est.memory_total
    out.append(f"{fmt_si(free, 'B', binary=True)} free per chip")
    if best is None:
        out.insert(0, f"fastest of {n_fit} plans that fit ({n_valid} valid layouts evaluated)")
    else:
        out.insert(0, f"{est.tokens_per_s / best.tokens_per_s - 1:+.1%} tokens/s vs the best")
    return tuple(out)


def search_grid(
    model: ModelSpec,
    device: Device,
    n_chips: int,
    *,
    seq_len: int,
    global_batch_seqs: int,
    dtype: str = "bf16",
    method: str = "full",
    optimizer: str = "adam",
    overlap: Overlap | None = None,
    lora_rank: int = 16,
) -> tuple[GridResult, int]:
    """All valid candidate plans evaluated (arrays); also returns how many were generated.
    ``device``: the chip and its (inference) efficiency profile; training factors are applied
    here (:func:`train_device`)."""
    g2, generated = _valid_grid(
        model,
        device,
        n_chips,
        seq_len=seq_len,
        global_batch_seqs=global_batch_seqs,
        dtype=dtype,
        method=method,
        optimizer=optimizer,
        lora_rank=lora_rank,
    )
    res = evaluate_grid(
        model,
        train_device(device),
        g2,
        seq_len=seq_len,
        global_batch_seqs=global_batch_seqs,
        overlap=overlap,
    )
    return res, generated


def _valid_grid(
    model: ModelSpec,
    device: Device,
    n_chips: int,
    *,
    seq_len: int,
    global_batch_seqs: int,
    dtype: str,
    method: str,
    optimizer: str,
    lora_rank: int,
) -> tuple[PlanGrid, int]:
    """The valid candidate plans, and how many candidates were generated."""
    from .plan import can_offload, check_model, plan_validity

    check_model(model)
    dev = train_device(device)
    chip_id = dev.id
    check_recipe(dev, dtype)
    check_method(method, dtype)
    g = candidate_grid(
        model,
        dev.chip.interconnect.scale_up_domain,
        n_chips,
        dtype=dtype,
        method=method,
        optimizer=optimizer,
        seq_len=seq_len,
        lora_rank=lora_rank,
        offload=can_offload(dev),
    )
    ok, _ = plan_validity(model, dev, g, seq_len, global_batch_seqs)
    g2 = g.take(np.flatnonzero(ok))
    if g2.size == 0:
        raise SiliconomicsError(
            f"no valid layout of {n_chips} x {chip_id} for {model.id} with global batch "
            f"{global_batch_seqs} x {seq_len} tokens (degrees must divide chips, heads, "
            "layers and the batch)"
        )
    return g2, g.size


def search_plans(
    model: ModelSpec,
    device: Device,
    n_chips: int,
    *,
    seq_len: int,
    global_batch_seqs: int,
    top: int = 5,
    dtype: str = "bf16",
    method: str = "full",
    optimizer: str = "adam",
    overlap: Overlap | None = None,
    lora_rank: int = 16,
) -> list[TrainEstimate]:
    """The ``top`` fastest valid plans that fit memory, best first, each with ``why``.
    Raises :class:`DoesNotFitError` naming the smallest footprint when none fits."""
    if n_chips < 1 or seq_len < 1 or global_batch_seqs < 1:
        raise SiliconomicsError("chips, seq_len and global batch must be positive")
    g, _ = _valid_grid(
        model,
        device,
        n_chips,
        seq_len=seq_len,
        global_batch_seqs=global_batch_seqs,
        dtype=dtype,
        method=method,
        optimizer=optimizer,
        lora_rank=lora_rank,
    )
    dev = train_device(device)
    chip_id = dev.id
    ov = overlap or default_overlap(dev)
    kw = {"seq_len": seq_len, "global_batch_seqs": global_batch_seqs, "overlap": overlap}
    # Time-only path: memory of every valid plan, the step time of those that fit, and the
    # full estimate of the winners only (the same numbers evaluate_grid gives for them).
    mem = train_memory(model, dev, g, seq_len=seq_len, global_batch=global_batch_seqs)
    fits = np.ravel(mem.fits)
    if not fits.any():
        i = int(np.argmin(np.ravel(mem.total)))
        one = evaluate_grid(model, dev, g.take(np.array([i])), **kw)  # type: ignore[arg-type]
        est = result_at(one, 0, model, dev, **kw)
        short = est.memory_total - est.memory_capacity
        raise DoesNotFitError(
            f"{model.id} does not fit on {n_chips} x {chip_id} in any of {g.size} valid "
            f"plans: the smallest footprint ({est.plan.label()}) needs "
            f"{fmt_si(est.memory_total, 'B', binary=True)} per chip of "
            f"{fmt_si(est.memory_capacity, 'B', binary=True)}, short by "
            f"{fmt_si(short, 'B', binary=True)}",
            shortfall_bytes=short,
            suggestion="use more chips, a chip with more memory, or a shorter sequence",
        )
    gf = g.take(np.flatnonzero(fits))
    t = step_times_only(
        model, dev, gf, seq_len=seq_len, global_batch_seqs=global_batch_seqs, overlap=ov
    )
    tps = float(global_batch_seqs * seq_len) / t
    order = np.argsort(-tps, kind="stable")[: max(top, 1)]
    order = order[tps[order] > 0]
    best_res = evaluate_grid(model, dev, gf.take(order), **kw)  # type: ignore[arg-type]
    ests = [result_at(best_res, k, model, dev, **kw) for k in range(order.size)]
    n_fit = int(fits.sum())
    best = ests[0]
    return [
        replace(e, why=_why(e, None if k == 0 else best, g.size, n_fit)) for k, e in enumerate(ests)
    ]


__all__ = ["RECOMPUTE", "candidate_grid", "search_grid", "search_plans"]

"""Parallel layout of one training job, and arrays of layouts for vectorised search.

Notation (ARCHITECTURE.md): dp data-parallel degree (batch shards, includes ZeRO/FSDP shards),
tp tensor parallel (optionally with sequence parallelism, Korthikanti et al. 2022), pp pipeline
stages with ``vpp`` virtual stages each (interleaved 1F1B, Narayanan et al. 2021), cp context
parallel (sequence sharded, ring attention), ep expert parallel (carved out of dp x cp, as in
Megatron-Core). Chips = dp * tp * pp * cp. Rank order: tp innermost, then cp, dp, pp.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray

from ..catalog.schema import ModelSpec
from ..errors import SiliconomicsError
from ..ops.device import Device
from ..units import DTYPES

I = NDArray[np.int64]
Recompute = Literal["none", "selective", "full"]
RECOMPUTE: tuple[str, ...] = ("none", "selective", "full")
Method = Literal["full", "lora"]
METHODS: tuple[str, ...] = get_args(Method)
#: Optimizer state bytes per trained parameter beyond the 16-bit weights and the gradients.
#: adam: fp32 master copy + two fp32 moments (Kingma & Ba 2015; ZeRO paper's K=12);
#: adam-8bit: fp32 master + two 8-bit moments (Dettmers et al. 2022); sgd: fp32 master +
#: momentum; adafactor: fp32 master + factored second moment (~0; Shazeer & Stern 2018).
OPTIMIZER_BYTES: dict[str, float] = {"adam": 12.0, "adam-8bit": 6.0, "sgd": 8.0, "adafactor": 4.0}


@dataclass(frozen=True, kw_only=True)
class TrainPlan:
    """How one training job is laid out on chips."""

    dp: int = 1
    """data-parallel degree (batch shards, including ZeRO/FSDP shards)"""
    tp: int = 1
    """tensor-parallel degree (chips), must stay inside the scale-up domain"""
    pp: int = 1
    """pipeline stages"""
    cp: int = 1
    """context-parallel degree (sequence shards, ring attention)"""
    ep: int = 1
    """expert-parallel degree (MoE), divides dp * cp"""
    vpp: int = 1
    """virtual stages per pipeline rank; > 1 = interleaved 1F1B schedule"""
    sp: bool = True
    """sequence parallelism inside the tp group (norms/dropout sharded; AG+RS instead of AR)"""
    zero: int = 1
    """ZeRO stage: 0 replicated, 1 optimizer state sharded (Megatron distributed optimizer),
    2 + gradients, 3 + parameters (FSDP)"""
    shard: int = 0
    """ZeRO/FSDP sharding group size (0 = all dp * cp ranks; smaller = hybrid sharding)"""
    micro_batch: int = 1
    """sequences per data-parallel rank per micro-step"""
    recompute: Recompute = "none"
    """activation recomputation: none, selective (attention core / element-wise), full"""
    dtype: str = "bf16"
    """GEMM input format (bf16, fp8, int8); weights are kept 16-bit, master copy fp32"""
    optimizer: str = "adam"
    """optimizer (state bytes per parameter in OPTIMIZER_BYTES)"""
    method: Method = "full"
    """full-parameter training or LoRA (frozen base, adapters trained)"""
    lora_rank: int = 16
    """LoRA rank r (adapters on the attention projections, Hu et al. 2021)"""

    def __post_init__(self) -> None:
        check_plan_fields(self)

    @property
    def chips(self) -> int:
        return self.dp * self.tp * self.pp * self.cp

    @property
    def schedule(self) -> str:
        return "interleaved-1f1b" if self.vpp > 1 else ("1f1b" if self.pp > 1 else "none")

    @property
    def shard_group(self) -> int:
        return self.shard or self.dp * self.cp

    def label(self) -> str:
        parts = [f"dp={self.dp}", f"tp={self.tp}", f"pp={self.pp}"]
        parts += [f"{k}={getattr(self, k)}" for k in ("cp", "ep", "vpp") if getattr(self, k) > 1]
        parts += [f"zero={self.zero}", f"mb={self.micro_batch}", f"recompute={self.recompute}"]
        if self.tp > 1 and not self.sp:
            parts.append("sp=0")
        if self.shard and self.zero == 3:
            parts.append(f"shard={self.shard}")
        return " ".join(parts)

    def short_label(self) -> str:
        """Compact form for tables: ``dp4 tp4 pp4/v4 z1 mb1 rc:full`` (no rc: no recompute)."""
        s = f"dp{self.dp} tp{self.tp}" + ("" if self.sp or self.tp == 1 else "(no sp)")
        s += f" pp{self.pp}" + (f"/v{self.vpp}" if self.vpp > 1 else "")
        s += "".join(f" {k}{getattr(self, k)}" for k in ("cp", "ep") if getattr(self, k) > 1)
        s += f" z{self.zero}" + (f"/{self.shard}" if self.shard and self.zero == 3 else "")
        rc = {"none": "", "selective": " rc:sel"}.get(self.recompute, f" rc:{self.recompute}")
        return s + f" mb{self.micro_batch}{rc}"

    def microbatches(self, global_batch_seqs: int) -> int:
        return global_batch_seqs // (self.dp * self.micro_batch)

    def validate(self, model: ModelSpec, dev: Device, *, seq_len: int, global_batch: int) -> None:
        """Raise a clear error naming the field for an impossible plan; never fix it."""
        for name in ("dp", "tp", "pp", "cp", "ep", "vpp", "micro_batch", "lora_rank"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < 1:
                raise SiliconomicsError(f"{name} must be a positive integer, got {v!r}")
        if self.zero not in (0, 1, 2, 3):
            raise SiliconomicsError(f"zero must be 0, 1, 2 or 3, got {self.zero!r}")
        if self.recompute not in RECOMPUTE:
            raise SiliconomicsError(
                f"recompute '{self.recompute}' is unknown; allowed: {', '.join(RECOMPUTE)}"
            )
        if self.optimizer not in OPTIMIZER_BYTES:
            raise SiliconomicsError(
                f"optimizer '{self.optimizer}' is unknown; allowed: {', '.join(OPTIMIZER_BYTES)}"
            )
        if self.method not in ("full", "lora"):
            raise SiliconomicsError(f"method '{self.method}': allowed: full, lora")
        if self.dtype not in DTYPES:
            raise SiliconomicsError(f"dtype '{self.dtype}': allowed: {', '.join(DTYPES)}")
        dev.peak_flops(self.dtype)  # raises if the chip lacks the format
        mask, reason = plan_validity(model, dev, _grid1(self), seq_len, global_batch)
        if not mask.all():
            raise SiliconomicsError(f"plan {self.label()}: {reason[0]}")


# ---- arrays of plans ------------------------------------------------------------------------

_INT_FIELDS = ("dp", "tp", "pp", "cp", "ep", "vpp", "zero", "shard", "micro_batch")


@dataclass(frozen=True, kw_only=True)
class PlanGrid:
    """Many plans at once: integer arrays of one shape; formats and method shared."""

    dp: I
    tp: I
    pp: I
    cp: I
    ep: I
    vpp: I
    zero: I
    shard: I
    """sharding group size (0 already resolved to dp * cp)"""
    micro_batch: I
    recompute: I
    """index into RECOMPUTE"""
    sp: NDArray[np.bool_]
    dtype: str = "bf16"
    optimizer: str = "adam"
    method: str = "full"
    lora_rank: int = 16

    @property
    def chips(self) -> I:
        return self.dp * self.tp * self.pp * self.cp

    @property
    def size(self) -> int:
        return int(np.asarray(self.dp).size)

    def plan(self, i: int) -> TrainPlan:
        """The ``i``-th plan (flat index) as a :class:`TrainPlan`."""
        kw = {k: int(np.ravel(getattr(self, k))[i]) for k in _INT_FIELDS}
        return TrainPlan(
            **kw,
            recompute=RECOMPUTE[int(np.ravel(self.recompute)[i])],  # type: ignore[arg-type]
            sp=bool(np.ravel(self.sp)[i]),
            dtype=self.dtype,
            optimizer=self.optimizer,
            method=self.method,  # type: ignore[arg-type]
            lora_rank=self.lora_rank,
        )

    def take(self, idx: I) -> PlanGrid:
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        for k in (*_INT_FIELDS, "recompute", "sp"):
            kw[k] = np.ravel(kw[k])[idx]
        return PlanGrid(**kw)


def _grid1(p: TrainPlan) -> PlanGrid:
    return grid_of([p])


def grid_of(plans: Sequence[TrainPlan]) -> PlanGrid:
    """Stack plans that share formats, optimizer and method into a :class:`PlanGrid`."""
    p0 = plans[0]
    for p in plans:
        if (p.dtype, p.optimizer, p.method, p.lora_rank) != (
            p0.dtype,
            p0.optimizer,
            p0.method,
            p0.lora_rank,
        ):
            raise SiliconomicsError("plans in one grid must share dtype, optimizer and method")
    arr = {k: np.array([getattr(p, k) for p in plans], dtype=np.int64) for k in _INT_FIELDS}
    arr["shard"] = np.array([p.shard_group for p in plans], dtype=np.int64)
    return PlanGrid(
        **arr,
        recompute=np.array([RECOMPUTE.index(p.recompute) for p in plans], dtype=np.int64),
        sp=np.array([p.sp and p.tp > 1 for p in plans]),
        dtype=p0.dtype,
        optimizer=p0.optimizer,
        method=p0.method,
        lora_rank=p0.lora_rank,
    )


def plan_validity(
    model: ModelSpec, dev: Device, g: PlanGrid, seq_len: int, global_batch: int
) -> tuple[NDArray[np.bool_], list[str]]:
    """Vectorised validity of every plan in ``g``: (mask, first reason per invalid plan)."""
    L, H, K = model.n_layers, model.n_heads, model.n_kv_heads
    dom = dev.chip.interconnect.scale_up_domain
    E = model.moe.n_experts if model.moe else 1
    stages = g.pp * g.vpp
    mb_total = g.dp * g.micro_batch
    m = global_batch // np.maximum(mb_total, 1)
    checks: list[tuple[NDArray[np.bool_], str]] = [
        (
            g.tp <= dom,
            f"tp exceeds {dev.id}'s scale-up domain of {dom} chips "
            f"({dev.chip.interconnect.scale_up_name or dev.chip.interconnect.topology}); tensor "
            "parallelism needs the scale-up fabric",
        ),
        (H % g.tp == 0, f"tp must divide the model's {H} attention heads"),
        (
            (K % g.tp == 0) | (g.tp % K == 0),
            f"tp must divide the {K} KV heads, or be a multiple of them (replicated KV heads)",
        ),
        (
            (L % stages == 0) | ((L + 2) % stages == 0),
            f"pp*vpp must divide the {L} layers (or {L + 2} = layers + embedding + loss, "
            "as Megatron pipeline layouts count them)",
        ),
        ((g.vpp == 1) | (g.pp > 1), "vpp > 1 needs pp > 1"),
        (seq_len % (2 * g.cp) == 0, f"2*cp must divide seq_len {seq_len} (load-balanced CP)"),
        (global_batch % np.maximum(mb_total, 1) == 0, "dp*micro_batch must divide global batch"),
        ((g.vpp == 1) | (m % g.pp == 0), "interleaved schedule needs micro-batches % pp == 0"),
        ((g.ep == 1) | (model.moe is not None), f"ep > 1 needs an MoE model; {model.id} is dense"),
        (E % g.ep == 0, f"ep must divide the {E} experts"),
        ((g.dp * g.cp) % g.ep == 0, "ep must divide dp*cp (experts are sharded over DP ranks)"),
        ((g.dp * g.cp) % np.maximum(g.shard, 1) == 0, "shard group must divide dp*cp"),
    ]
    mask = np.ones(np.shape(g.dp), dtype=bool)
    reasons = [""] * mask.size
    for ok, why in checks:
        ok = np.broadcast_to(ok, mask.shape)
        for i in np.flatnonzero(mask & ~ok):
            reasons[i] = why
        mask &= ok
    return mask, [r for r in reasons if r]


def check_plan_fields(plan: TrainPlan) -> None:
    """Fields whose bad values would crash downstream (a zero degree divides by zero, an
    unknown optimizer has no state size); recompute and zero are checked, with the other
    layout rules, by :func:`plan_validity`."""
    for name in ("dp", "tp", "pp", "cp", "ep", "vpp", "micro_batch", "lora_rank"):
        v = getattr(plan, name)
        if not isinstance(v, int | np.integer) or v < 1:
            raise SiliconomicsError(f"plan {name}={v}: must be an integer >= 1")
    if plan.shard < 0:
        raise SiliconomicsError(f"plan shard={plan.shard}: must be >= 0 (0 = all dp*cp ranks)")
    if plan.optimizer not in OPTIMIZER_BYTES:
        raise SiliconomicsError(
            f"optimizer '{plan.optimizer}': allowed {', '.join(OPTIMIZER_BYTES)}"
        )
    if plan.method not in METHODS:
        raise SiliconomicsError(f"method '{plan.method}': allowed {', '.join(METHODS)}")


def parse_plan(text: str, base: TrainPlan | None = None) -> TrainPlan:
    """``"tp=8,pp=4,dp=16,recompute=selective"`` -> :class:`TrainPlan` (unset fields from
    ``base``). Keys are TrainPlan field names; ``mb`` abbreviates ``micro_batch`` and
    ``fsdp=N`` means ``zero=3,shard=N``."""
    kw: dict[str, object] = {}
    names = {f.name: f for f in fields(TrainPlan)}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, val = item.partition("=")
        key = {"mb": "micro_batch", "vp": "vpp", "zero_stage": "zero"}.get(key.strip(), key.strip())
        if key == "fsdp" and sep:  # FSDP over N ranks = ZeRO-3 with a sharding group of N
            kw["zero"] = 3
            key = "shard"
        if not sep or key not in names:
            raise SiliconomicsError(
                f"--plan '{item}': expected KEY=VALUE with KEY one of {', '.join(names)}"
            )
        val = val.strip()
        if key in ("recompute", "dtype", "optimizer", "method"):
            kw[key] = val
        elif key == "sp":
            kw[key] = val.lower() in ("1", "true", "yes", "on")
        else:
            try:
                kw[key] = int(val)
            except ValueError:
                raise SiliconomicsError(f"--plan {key}: '{val}' is not an integer") from None
    return replace(base or TrainPlan(), **kw)  # type: ignore[arg-type]

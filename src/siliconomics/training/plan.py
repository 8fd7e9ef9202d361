"""Parallel layout of one training job, and arrays of layouts for vectorised search.

Notation (ARCHITECTURE.md): dp data-parallel degree (batch shards, includes ZeRO/FSDP shards),
tp tensor parallel (optionally with sequence parallelism, Korthikanti et al. 2022), pp pipeline
stages with ``vpp`` virtual stages each (interleaved 1F1B, Narayanan et al. 2021), cp context
parallel (sequence sharded, ring attention), ep expert parallel with etp expert tensor parallel
(Megatron-Core's expert groups: the tp x cp x dp ranks of a stage are regrouped into ep x etp x
expert-dp, so ep may span dp and tp, as Megatron-Core and NeMo run it). Chips = dp * tp * pp * cp.
Rank order: tp innermost, then cp, dp, pp; expert groups: etp innermost, then ep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from ..catalog.schema import ModelSpec
from ..errors import SiliconomicsError
from ..ops.device import Device
from .lora import check_method
from .precision import check_recipe

I = NDArray[np.int64]
Recompute = Literal["none", "selective", "full", "offload"]
RECOMPUTE: tuple[str, ...] = ("none", "selective", "full", "offload")
Method = Literal["full", "lora", "qlora"]
METHODS: tuple[str, ...] = get_args(Method)
#: Optimizer state bytes per trained parameter beyond the 16-bit weights and the gradients.
#: adam: fp32 master copy + two fp32 moments (Kingma & Ba 2015; ZeRO paper's K=12);
#: adam-8bit: fp32 master + two 8-bit moments (Dettmers et al. 2022); sgd: fp32 master +
#: momentum; adafactor: fp32 master + factored second moment (~0; Shazeer & Stern 2018).
OPTIMIZER_BYTES: dict[str, float] = {"adam": 12.0, "adam-8bit": 6.0, "sgd": 8.0, "adafactor": 4.0}
#: Gradient buffer bytes per trained parameter by ``grad_dtype``; with bf16 gradients the
#: optimizer keeps an fp32 copy of its gradient shard (+4 bytes of optimizer state).
GRAD_DTYPE_BYTES: dict[str, float] = {"fp32": 4.0, "bf16": 2.0}
DISPATCHERS: tuple[str, ...] = ("alltoall", "deepep")


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
    """expert-parallel degree (MoE); ep * etp divides tp * dp * cp"""
    etp: int = 0
    """expert tensor-parallel degree (each expert's FFN split etp ways); 0 = Megatron-Core's
    default etp = tp when ep * tp divides tp * dp * cp, else 1 (as the NeMo MoE recipes set)"""
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
    """training number format (recipe of :mod:`.precision`: bf16, fp8, fp8-cs, fp8-dpa, mxfp8,
    nvfp4, mxfp4, int8); weights are kept 16-bit, master copy fp32"""
    optimizer: str = "adam"
    """optimizer (state bytes per parameter in OPTIMIZER_BYTES)"""
    grad_dtype: Literal["fp32", "bf16"] = "fp32"
    """gradient buffers: fp32 main grads (Megatron ``--accumulate-allreduce-grads-in-fp32``,
    MaxText) or bf16 (Megatron-Core's default ``grad_reduce_in_fp32=False``, set explicitly
    in Megatron-Bridge performance recipes); the distributed optimizer then keeps an fp32 grad
    shard (Megatron dist_optimizer table: 6 + 12/d vs 4 + 16/d bytes per parameter)"""
    method: Method = "full"
    """full-parameter training, LoRA (frozen base, adapters trained) or QLoRA (frozen 4-bit
    NF4 base dequantised to BF16 per use)"""
    lora_rank: int = 16
    """LoRA rank r (adapters on the attention projections, Hu et al. 2021)"""
    capacity_factor: float = 0.0
    """MoE expert capacity factor: > 0 = token dropping with every expert's buffer padded to
    cf x its mean load (GShard, MaxText ``capacity_factor``), so expert compute and all-to-all
    scale by cf; 0 = dropless (the busiest rank's expected load sets the pace)"""

    dispatcher: Literal["alltoall", "deepep"] = "alltoall"
    """MoE token dispatcher: ``alltoall`` (Megatron-Core's default for expert parallelism:
    every token-expert pair travels on its own) or ``deepep`` (DeepEP / HybridEP, Megatron's
    ``flex`` dispatcher: a token goes once to each distinct destination rank)"""

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
        if self.ep > 1 and self.etp > 0:
            parts.append(f"etp={self.etp}")
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
        if not self.capacity_factor >= 0:
            raise SiliconomicsError(
                f"capacity_factor must be >= 0 (0 = dropless), got {self.capacity_factor!r}"
            )
        if not isinstance(self.etp, int | np.integer) or self.etp < 0:
            raise SiliconomicsError(f"etp must be 0 (auto) or a positive integer, got {self.etp!r}")
        if self.zero not in (0, 1, 2, 3):
            raise SiliconomicsError(f"zero must be 0, 1, 2 or 3, got {self.zero!r}")
        if self.recompute not in RECOMPUTE:
            raise SiliconomicsError(
                f"recompute '{self.recompute}' is unknown; allowed: {', '.join(RECOMPUTE)}"
            )
        if self.grad_dtype not in GRAD_DTYPE_BYTES:
            raise SiliconomicsError(f"grad_dtype '{self.grad_dtype}': allowed: fp32, bf16")
        if self.dispatcher not in DISPATCHERS:
            raise SiliconomicsError(
                f"dispatcher '{self.dispatcher}': allowed: {', '.join(DISPATCHERS)}"
            )
        if self.optimizer not in OPTIMIZER_BYTES:
            raise SiliconomicsError(
                f"optimizer '{self.optimizer}' is unknown; allowed: {', '.join(OPTIMIZER_BYTES)}"
            )
        check_recipe(dev, self.dtype)  # unknown format, or one the chip lacks: one-line error
        check_method(self.method, self.dtype)
        why = plan_invalid_reason(model, dev, scalar_grid(self), seq_len, global_batch)
        if why is not None:
            raise SiliconomicsError(f"plan {self.label()}: {why}")


# ---- arrays of plans ------------------------------------------------------------------------

_INT_FIELDS = ("dp", "tp", "pp", "cp", "ep", "etp", "vpp", "zero", "shard", "micro_batch")


@dataclass(frozen=True, kw_only=True)
class PlanGrid:
    """Many plans at once: integer arrays of one shape; formats and method shared."""

    dp: I
    tp: I
    pp: I
    cp: I
    ep: I
    etp: I
    """expert tensor parallel (0 already resolved, see :func:`resolve_etp`)"""
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
    capacity_factor: float = 0.0
    grad_dtype: str = "fp32"
    dispatcher: str = "alltoall"

    @property
    def grad_bytes(self) -> float:
        return GRAD_DTYPE_BYTES[self.grad_dtype]

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
            capacity_factor=self.capacity_factor,
            grad_dtype=self.grad_dtype,  # type: ignore[arg-type]
            dispatcher=self.dispatcher,  # type: ignore[arg-type]
        )

    def take(self, idx: I) -> PlanGrid:
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        for k in (*_INT_FIELDS, "recompute", "sp"):
            kw[k] = np.ravel(kw[k])[idx]
        return PlanGrid(**kw)


def scalar_grid(p: TrainPlan) -> PlanGrid:
    """One plan as a :class:`PlanGrid` of Python numbers (the single-plan path of
    :mod:`.kernels`): fields resolved as :func:`grid_of` resolves them."""
    dp_cp = p.dp * p.cp
    etp = p.etp
    if etp <= 0:  # resolve_etp
        etp = p.tp if (p.tp * dp_cp) % max(p.ep * p.tp, 1) == 0 else 1
    return PlanGrid(
        dp=p.dp,  # type: ignore[arg-type]
        tp=p.tp,  # type: ignore[arg-type]
        pp=p.pp,  # type: ignore[arg-type]
        cp=p.cp,  # type: ignore[arg-type]
        ep=p.ep,  # type: ignore[arg-type]
        etp=etp,  # type: ignore[arg-type]
        vpp=p.vpp,  # type: ignore[arg-type]
        zero=p.zero,  # type: ignore[arg-type]
        shard=p.shard or dp_cp,  # type: ignore[arg-type]
        micro_batch=p.micro_batch,  # type: ignore[arg-type]
        recompute=RECOMPUTE.index(p.recompute),  # type: ignore[arg-type]
        sp=p.sp and p.tp > 1,  # type: ignore[arg-type]
        dtype=p.dtype,
        optimizer=p.optimizer,
        method=p.method,
        lora_rank=p.lora_rank,
        capacity_factor=p.capacity_factor,
        grad_dtype=p.grad_dtype,
        dispatcher=p.dispatcher,
    )


def grid_of(plans: Sequence[TrainPlan]) -> PlanGrid:
    """Stack plans that share formats, optimizer and method into a :class:`PlanGrid`."""
    p0 = plans[0]
    for p in plans:
        shared = (p.dtype, p.optimizer, p.method, p.lora_rank, p.capacity_factor, p.grad_dtype)
        if (*shared, p.dispatcher) != (
            p0.dtype,
            p0.optimizer,
            p0.method,
            p0.lora_rank,
            p0.capacity_factor,
            p0.grad_dtype,
            p0.dispatcher,
        ):
            raise SiliconomicsError("plans in one grid must share dtype, optimizer and method")
    arr = {k: np.array([getattr(p, k) for p in plans], dtype=np.int64) for k in _INT_FIELDS}
    arr["shard"] = np.array([p.shard_group for p in plans], dtype=np.int64)
    arr["etp"] = resolve_etp(arr["etp"], arr["tp"], arr["dp"] * arr["cp"], arr["ep"])
    return PlanGrid(
        **arr,
        recompute=np.array([RECOMPUTE.index(p.recompute) for p in plans], dtype=np.int64),
        sp=np.array([p.sp and p.tp > 1 for p in plans]),
        dtype=p0.dtype,
        optimizer=p0.optimizer,
        method=p0.method,
        lora_rank=p0.lora_rank,
        capacity_factor=p0.capacity_factor,
        grad_dtype=p0.grad_dtype,
        dispatcher=p0.dispatcher,
    )


def plan_validity(
    model: ModelSpec, dev: Device, g: PlanGrid, seq_len: int, global_batch: int
) -> tuple[NDArray[np.bool_], list[str]]:
    """Vectorised validity of every plan in ``g``: (mask, first reason per invalid plan)."""
    mask = np.ones(np.shape(g.dp), dtype=bool)
    reasons = [""] * mask.size
    for ok, why in _validity_checks(model, dev, g, seq_len, global_batch, np.maximum):
        ok = np.broadcast_to(ok, mask.shape)
        for i in np.flatnonzero(mask & ~ok):
            reasons[i] = why
        mask &= ok
    return mask, [r for r in reasons if r]


def plan_invalid_reason(
    model: ModelSpec, dev: Device, g: PlanGrid, seq_len: int, global_batch: int
) -> str | None:
    """The first rule of :func:`plan_validity` that one plan of Python numbers breaks (the
    single-plan path: no numpy), or None."""
    for ok, why in _validity_checks(model, dev, g, seq_len, global_batch, max):
        if not ok:
            return why
    return None


def _validity_checks(
    model: ModelSpec, dev: Device, g: PlanGrid, seq_len: int, global_batch: int, maximum: Any
) -> list[tuple[Any, str]]:
    """The layout rules as (ok, reason) pairs, on arrays of plans or one plan's numbers."""
    L, H, K = model.n_layers, model.n_heads, model.n_kv_heads
    dom = dev.chip.interconnect.scale_up_domain
    E = model.moe.n_experts if model.moe else 1
    stages = g.pp * g.vpp
    mb_total = g.dp * g.micro_batch
    m = global_batch // maximum(mb_total, 1)
    return [
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
            stages <= L + 2,
            f"pp*vpp must not exceed the {L} layers + 2 (embedding and loss count as one "
            "layer each in Megatron pipeline layouts)",
        ),
        ((g.vpp == 1) | (g.pp > 1), "vpp > 1 needs pp > 1"),
        (seq_len % (2 * g.cp) == 0, f"2*cp must divide seq_len {seq_len} (load-balanced CP)"),
        (global_batch % maximum(mb_total, 1) == 0, "dp*micro_batch must divide global batch"),
        ((g.vpp == 1) | (m % g.pp == 0), "interleaved schedule needs micro-batches % pp == 0"),
        ((g.ep == 1) | (model.moe is not None), f"ep > 1 needs an MoE model; {model.id} is dense"),
        (E % g.ep == 0, f"ep must divide the {E} experts"),
        (
            (g.tp * g.dp * g.cp) % (g.ep * maximum(g.etp, 1)) == 0,
            "ep*etp must divide tp*dp*cp (Megatron-Core regroups a stage's ranks into experts)",
        ),
        ((g.dp * g.cp) % maximum(g.shard, 1) == 0, "shard group must divide dp*cp"),
        (
            (g.cp == 1) | (model.linear_attention is None),
            "cp > 1 is not modelled for Gated DeltaNet layers (context parallelism would pass "
            "the recurrent state between ranks)",
        ),
        (
            (g.recompute != OFFLOAD) | can_offload(dev),
            f"recompute=offload needs the chip's host memory and host link, both above zero "
            f"({dev.id}'s spec has none: chips.<id>.memory.host_bytes, "
            "host_link_bytes_per_s); Grace superchips (gh200, gb200, gb300) have them",
        ),
    ]


OFFLOAD = RECOMPUTE.index("offload")


def can_offload(dev: Device) -> bool:
    """The chip spec gives host memory and a host link (both above zero) to offload to."""
    m = dev.chip.memory
    return bool(
        m.host_bytes is not None
        and m.host_bytes.value > 0
        and m.host_link_bytes_per_s is not None
        and m.host_link_bytes_per_s.value > 0
    )


def resolve_etp(etp: I, tp: I, dp_cp: I, ep: I) -> I:
    """Expert tensor parallelism with 0 = auto resolved: Megatron-Core's default etp = tp where
    ep * tp divides tp * dp * cp, else 1 (experts whole on each rank)."""
    auto = np.where((tp * dp_cp) % np.maximum(ep * tp, 1) == 0, tp, 1)
    return np.where(etp > 0, etp, auto).astype(np.int64)


def stage_layers(model: ModelSpec, pp: I, vpp: I, xp: Any = None) -> NDArray[np.float64]:
    """pp x the layers on the busiest pipeline rank (= L when the stages balance), so that
    ``stage_layers / pp`` is the busiest rank's share. Stages balance when pp*vpp divides the
    layers, or the layers + 2 (Megatron layouts count the embedding and the loss as one layer
    each); otherwise (e.g. DeepSeek-V3's 61 layers on pp=16) the busiest rank holds
    ``ceil(L / (pp*vpp))`` layers per virtual stage (Megatron-Core's
    ``pipeline_model_parallel_layout`` / first- and last-stage layer counts) and every rank
    waits for it. ``xp``: the backend of :mod:`.kernels` (numpy when None)."""
    L = model.n_layers
    if xp is not None and not isinstance(pp, np.ndarray):  # one plan, Python numbers
        stages = max(pp * vpp, 1)
        if L % stages == 0 or (L + 2) % stages == 0:
            return float(L)
        return xp.ceil(L / stages) * vpp * pp
    stages = np.maximum(pp * vpp, 1)
    even = (L % stages == 0) | ((L + 2) % stages == 0)
    busiest = np.ceil(L / stages) * vpp * pp
    return np.where(even, float(L), busiest).astype(np.float64)


def last_rank_layers(model: ModelSpec, pp: I, vpp: I, xp: Any) -> Any:
    """Decoder layers on the last pipeline rank when the model has multi-token-prediction
    modules: Megatron-Core places the MTP modules and the loss on the last (virtual) stage, and
    the layouts that go with them (Megatron-Bridge's DeepSeek-V3 recipe, ``layout_map`` of
    ``recipes/deepseek/deepseek_v3.py`` @5776a6d9: pp16 ``[E+4] + 14x[4] + [1+mtp+loss]``,
    pp4 x vpp4 likewise over 16 virtual stages, pp8 ``[E+8] + 6x[8] + [5+mtp+loss]``) give
    every other virtual stage ``c = ceil(L/(pp*vpp))`` layers and the last one what is left,
    ``max(L - (pp*vpp - 1)*c, 0)``. The last rank holds ``vpp - 1`` full virtual stages and
    that last one. ``xp``: the backend of :mod:`.kernels`."""
    L = model.n_layers
    stages = pp * vpp
    c = xp.ceil(L / stages)
    return (vpp - 1) * c + xp.maximum(L - (stages - 1) * c, 0.0)


def check_model(model: ModelSpec) -> None:
    """Refuse, by name, models whose layers the training step model does not price."""
    if model.global_attention is not None:
        raise SiliconomicsError(
            f"training {model.id} is not modelled: its full-attention layers have another head "
            "width and KV heads than its windowed ones (Gemma 4 global_head_dim); inference is"
        )


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
    if not isinstance(plan.etp, int | np.integer) or plan.etp < 0:
        raise SiliconomicsError(f"plan etp={plan.etp}: must be 0 (auto) or an integer >= 1")
    if not plan.capacity_factor >= 0:
        raise SiliconomicsError(
            f"plan capacity_factor={plan.capacity_factor}: must be >= 0 (0 = dropless)"
        )
    if plan.dispatcher not in DISPATCHERS:
        raise SiliconomicsError(
            f"plan dispatcher '{plan.dispatcher}': allowed {', '.join(DISPATCHERS)}"
        )


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
        if key in ("recompute", "dtype", "optimizer", "method", "grad_dtype", "dispatcher"):
            kw[key] = val
        elif key == "capacity_factor":
            try:
                kw[key] = float(val)
            except ValueError:
                raise SiliconomicsError(f"--plan {key}: '{val}' is not a number") from None
        elif key == "sp":
            kw[key] = val.lower() in ("1", "true", "yes", "on")
        else:
            try:
                kw[key] = int(val)
            except ValueError:
                raise SiliconomicsError(f"--plan {key}: '{val}' is not an integer") from None
    return replace(base or TrainPlan(), **kw)  # type: ignore[arg-type]

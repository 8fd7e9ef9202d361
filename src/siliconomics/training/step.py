"""Time of one optimizer step, vectorised over arrays of plans (:class:`PlanGrid`).

One micro-batch of ``mb`` sequences on one pipeline stage (T = mb·S/cp local tokens):

* forward: per layer the GEMMs of :mod:`..inference.forward` at training shapes (QKV, output
  projection, MLP or experts; tile/wave and systolic padding from :mod:`..ops.roofline`), fused
  causal attention ``4·T·hq·hd·(S+1)/2`` FLOPs, element-wise norms/activations; once per
  pipeline the LM head and the loss. Backward: every GEMM again as dgrad ``[T×n]·[n×k]`` and
  wgrad ``[k×T]·[T×n]`` (2x forward; LoRA: dgrad only), attention 2.5x forward (FlashAttention-2
  recomputes the scores: 5 matmuls against 2, Dao 2023), element-wise 2x.
* recomputation: full = the layers' forward once more (and its TP collectives); selective =
  the element-wise forward (flash attention already recomputes the attention core) and, in
  multi-head latent attention, the Q/K/V up-projections (Megatron-Core ``mla_up_proj``).
* tensor parallel: 2 all-reduces per layer per pass (GPT-J blocks: 1), or with sequence
  parallelism the same volume as all-gather + reduce-scatter (Korthikanti et al. 2022);
  context parallel: ring attention passes (cp-1) K/V blocks forward, K/V and dK/dV backward;
  expert parallel: dispatch + combine all-to-all per MoE layer and pass.
* pipeline: the stages are assumed balanced (frameworks split layers so that embedding and
  loss count, e.g. Megatron's pipeline layouts), so a stage does 1/pp of all the work, except
  that multi-token-prediction modules and both LM-head passes sit on the last rank
  (:func:`.plan.last_rank_layers`), which sets the pace when they outweigh the layers moved
  off it; each
  micro-batch sends its activations forward and gradients back once per virtual stage.

Step (Narayanan et al. 2021, §2.2): ``(m + (pp-1)/vpp) · t_microbatch`` with m = global batch
/ (dp·mb) micro-batches — the bubble is ``(pp-1)/vpp`` micro-batch times — plus the exposed
data-parallel gradient/parameter collectives, the optimizer update (memory-bound) and a fixed
per-step overhead. What overlaps with what is the explicit :class:`Overlap`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..catalog.schema import ModelSpec
from ..ops.device import Device
from ..ops.linear_attention import CHUNK_STATE_BYTES, chunked_flops_per_token, in_width
from ..ops.roofline import OpCost, memory_op
from ..parallel import hierarchical as coll
from ..parallel.moe import dispatch_combine, expert_ops, experts_hit, imbalance
from .flops import attended_keys
from .host import expert_loop_host_time
from .kernels import (
    NP,
    all_reduce_time,
    attention_time,
    consts,
    gemm_time,
    group,
    group_time,
    memory_time,
    send_recv_time,
)
from .lora import adapter_times_lean, dequant_time_lean
from .memory import (
    ACT_BYTES,
    GRAD_BYTES,
    WEIGHT_BYTES,
    chip_params,
    expert_dp,
    lora_params_per_layer,
    offload_exposed_time,
    routed_params_per_layer,
)
from .plan import OPTIMIZER_BYTES, PlanGrid, last_rank_layers, stage_layers
from .precision import (
    attention_dtype,
    quant_time,
    quant_time_lean,
    recipe,
    weight_cast_bytes,
)
from .stack import clamp_passes, megatron_stack, moe_dispatch_efficiency, moe_layer_efficiency

F = NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class Overlap:
    """Which communication hides behind computation: stated assumptions, not fitted."""

    tp: float = 0.0
    """fraction of TP/SP collectives hidden behind GEMMs (Megatron/TE user-buffer overlap is
    opt-in; 0 = serialised), never more than the micro-batch's compute (likewise ``pp``, ``ep``)"""
    dp: bool = True
    """gradient reduce-scatter hides behind the last micro-batch's backward and the parameter
    all-gather behind the first forward (Megatron overlap-grad-reduce/param-gather, XLA async
    collectives); only the excess is exposed"""
    fsdp: bool = True
    """ZeRO-3/FSDP gathers are prefetched layer by layer: hidden up to the micro-batch compute"""
    cp: bool = True
    """ring-attention transfers hide behind the attention compute of the previous block"""
    pp: float = 0.0
    """fraction of plain-1F1B pipeline send/receive hidden (the interleaved schedule hides it
    behind the other chunks' compute up to that compute)"""
    ep: float = 0.0
    """fraction of MoE all-to-all hidden"""


@dataclass(frozen=True, kw_only=True)
class StepTime:
    """Seconds per optimizer step by component (they sum to ``total``), arrays over plans."""

    forward: F
    backward: F
    recompute: F
    tp_comm: F
    cp_comm: F
    ep_comm: F
    pp_comm: F
    fsdp_comm: F
    """exposed part only (likewise every *_comm field)"""
    bubble: F
    dp_comm: F
    optimizer: F
    overhead: F
    dp_comm_total: F
    """data-parallel collective time before overlap"""
    microbatches: F
    t_microbatch: F

    def parts(self) -> dict[str, F]:
        return {
            "forward": self.forward,
            "backward": self.backward,
            "recompute": self.recompute,
            "tp/sp comm": self.tp_comm,
            "cp comm": self.cp_comm,
            "ep all-to-all": self.ep_comm,
            "pp send/recv": self.pp_comm,
            "fsdp gather/scatter": self.fsdp_comm,
            "pipeline bubble": self.bubble,
            "dp grad/param comm": self.dp_comm,
            "optimizer": self.optimizer,
            "overhead": self.overhead,
        }

    def _set_total(self, total: F) -> None:
        """Set :attr:`total` when already summed in its order (the compiled grid path)."""
        object.__setattr__(self, "_total", total)

    @property
    def total(self) -> F:
        known: F | None = self.__dict__.get("_total")
        if known is not None:
            return known
        out: F = np.zeros(np.shape(self.forward))
        for v in self.parts().values():
            out = out + v
        return out


def _t(op: OpCost) -> F:
    return op.time


class _Gemm:
    """A GEMM time priced later, in one batched kernel call with the layer's other GEMMs
    (``w`` x the time; see :meth:`_Layer.settle`). Only ``w * gemm`` and ``sum + gemm`` are
    defined: anything else needs the layer settled first."""

    __slots__ = ("i", "w", "w2")
    __array_ufunc__ = None  # ndarray + _Gemm -> _Gemm.__radd__, not an object array

    def __init__(self, i: int, w: float = 1.0, w2: float = 1.0) -> None:
        self.i, self.w, self.w2 = i, w, w2
        """``w2 * (w * time)``: a weighted time scaled again (elementwise's ``2.0 * t``)"""

    def __rmul__(self, w: float) -> _Gemm:
        if self.w == 1.0:  # w * (1.0 * t) == w * t
            return _Gemm(self.i, w)
        if self.w2 != 1.0:
            raise TypeError("a deferred time scaled three times: settle the layer first")
        return _Gemm(self.i, self.w, w)

    def value(self, times: Any) -> Any:
        """The term's seconds once ``times`` (a row per deferred op) are priced."""
        t = self.w * times[self.i]
        return t if self.w2 == 1.0 else self.w2 * t

    def __radd__(self, other: Any) -> _Sum:
        return _Sum((other, self))


class _Sum:
    """A running sum kept as its terms, added up in order once the GEMMs are priced."""

    __slots__ = ("terms",)
    __array_ufunc__ = None

    def __init__(self, terms: tuple[Any, ...] = ()) -> None:
        self.terms = terms

    def __add__(self, other: Any) -> _Sum:
        return _Sum((*self.terms, other))

    def __radd__(self, other: Any) -> _Sum:
        return _Sum((other, *self.terms))


_SUMS = ("fwd", "bwd", "elem_fwd", "attn_fwd")
"""what a settle adds up (attn_fwd: one deferred op)"""


class _Layer:
    """Forward/backward op times of one transformer layer (averaged over layer kinds), on
    arrays of plans (``xp`` = :data:`.kernels.NP`) or one plan of Python numbers (``SC``)."""

    def __init__(
        self,
        model: ModelSpec,
        dev: Device,
        g: PlanGrid,
        seq_len: int,
        xp: Any = NP,
        batch: list[tuple[Any, ...]] | None = None,
        settle: Any = None,
        like: _Layer | None = None,
    ) -> None:
        self.model, self.dev, self.g, self.xp = model, dev, g, xp
        self._settle = settle
        """a compiled settle (:func:`.gridcore.settle`), or None for numpy"""
        self.c = consts(dev)
        self.S = float(seq_len)
        self.T: Any
        self.hq: Any
        self.hkv: Any
        self.tp: Any
        if like is not None:  # the same plans: shapes already computed there
            self.T, self.hq, self.hkv, self.tp = like.T, like.hq, like.hkv, like.tp
        else:
            tp = xp.f(g.tp)
            self.T = g.micro_batch * seq_len / xp.f(g.cp)
            self.hq = xp.ceil(model.n_heads / tp)
            self.hkv = xp.ceil(model.n_kv_heads / tp)
            self.tp = tp
        # numpy: sums of terms whose GEMMs are priced together (settle); scalar: numbers
        self.fwd: Any = _Sum() if xp is NP else 0.0
        self.bwd: Any = _Sum() if xp is NP else 0.0
        self.elem_fwd: Any = _Sum() if xp is NP else 0.0
        self.attn_fwd: Any = 0.0
        self._gemms: list[tuple[Any, ...]] = [] if batch is None else batch
        """deferred GEMMs (numpy path), possibly shared with other layers (``batch``)"""
        self.mla_up_fwd: Any = 0.0
        """forward of the MLA up-projections (what selective recomputation redoes)"""
        self.rc = recipe(g.dtype)
        self.accum_bytes = 2.0 * g.grad_bytes
        """bytes per weight-gradient element a wgrad GEMM moves: it accumulates into the
        main-grad buffer (Megatron-Core gradient_accumulation_fusion: the GEMM's C is the
        fp32, or with grad_reduce_in_fp32=False bf16, grad buffer, read and written)"""

    def gemm(
        self,
        m: ArrayLike,
        n: ArrayLike,
        k: ArrayLike,
        weight: float = 1.0,
        *,
        frozen: bool = False,
        util_m: ArrayLike | None = None,
        lowp: bool = True,
    ) -> None:
        """A linear layer's forward and backward (dgrad + wgrad), ``weight`` layers' worth.
        ``lowp=False``: stays BF16 under every recipe (LM head, router); the recipe's
        quantisation passes and QLoRA's dequantisation are added (:mod:`.precision`,
        :mod:`.lora`)."""
        c, r, xp = self.c, self.rc, self.xp
        lp = lowp and r.lowp
        peak = c.gemm_peak(r.gemm_dtype if lp else "bf16")
        a = r.bytes_per_elem if lp else ACT_BYTES

        def op(mm: ArrayLike, nn: ArrayLike, kk: ArrayLike, um: Any, ob: float = ACT_BYTES) -> Any:
            if xp is NP:  # deferred: priced with the layer's other GEMMs in settle()
                self._gemms.append((mm, nn, kk, mm if um is None else um, peak, a, ob))
                return _Gemm(len(self._gemms) - 1)
            return gemm_time(
                c, xp, mm, nn, kk, peak=peak, a_bytes=a, w_bytes=a, out_bytes=ob, util_m=um
            )

        self.fwd = self.fwd + weight * op(m, n, k, util_m)
        self.bwd = self.bwd + weight * op(m, k, n, util_m)
        if not frozen:  # accumulates into the gradient buffer: read + write (accum_bytes)
            self.bwd = self.bwd + weight * op(k, n, m, None, self.accum_bytes)
        if lp:
            qf, qb = quant_time_lean(c, xp, r, m, n, k, frozen=frozen)
            self.fwd, self.bwd = self.fwd + weight * qf, self.bwd + weight * qb
        if frozen:
            dq = weight * dequant_time_lean(c, xp, self.g.method, k, n)
            self.fwd, self.bwd = self.fwd + dq, self.bwd + dq

    def settle(self, *others: _Layer) -> _Layer:
        """Price the deferred GEMMs in one kernel call over (GEMMs x plans) and add up the
        sums term by term in the order they were built (bit-identical to adding each GEMM's
        time as it came); ``others``: layers sharing this one's batch, settled with it. May
        be called again after more GEMMs (e.g. to read a partial sum): the sums are arrays
        until the next deferred GEMM is added to them."""
        if self.xp is not NP or (self._settle is not None and self._settle(self, others)):
            return self
        times: Any = None
        if self._gemms:
            times = self._price(self._gemms)
            self._gemms.clear()
        for ly in (self, *others):
            for name in _SUMS:
                v = getattr(ly, name)
                if isinstance(v, _Gemm):
                    v = _Sum((v,))
                if isinstance(v, _Sum):
                    acc: Any = np.zeros(np.shape(self.T))
                    for t in v.terms:
                        acc = acc + (t.value(times) if isinstance(t, _Gemm) else t)
                    setattr(ly, name, acc)
        return self

    def _price(self, rows: list[tuple[Any, ...]]) -> Any:
        """Seconds of each deferred op (rows) on every plan: the GEMMs in one kernel call,
        the memory-bound and attention ops (``(flops, bytes, rate)`` rows) each by
        :func:`.kernels.attention_time` (= :func:`.kernels.memory_time` at the vector rate)."""
        n = int(np.size(self.T))
        times = np.empty((len(rows), n))
        gi = [i for i, r in enumerate(rows) if len(r) == 7]
        if gi:
            shapes = np.empty((4, len(gi), n))  # m, n, k, util_m of each GEMM (rows) x plans
            for k, i in enumerate(gi):
                for j in range(4):
                    shapes[j, k] = rows[i][j]
            mm, nn, kk, um = shapes.reshape(4, len(gi) * n)
            pk, aa, ob = (np.repeat(np.array([rows[i][j] for i in gi]), n) for j in (4, 5, 6))
            times[gi] = gemm_time(
                self.c, NP, mm, nn, kk, peak=pk, a_bytes=aa, w_bytes=aa, out_bytes=ob, util_m=um
            ).reshape(len(gi), n)
        for i, r in enumerate(rows):
            if len(r) == 3:
                times[i] = attention_time(self.c, NP, r[0], r[1], peak=r[2])
        return times

    def rate_op(self, flops: Any, nbytes: Any, rate: float) -> Any:
        """A memory-bound or fused-attention op at ``rate`` FLOP/s: deferred to the settle on
        numpy (a :class:`_Gemm` handle), priced now on Python numbers."""
        if self.xp is NP:
            self._gemms.append((flops, nbytes, rate))
            return _Gemm(len(self._gemms) - 1)
        return attention_time(self.c, self.xp, flops, nbytes, peak=rate)

    def adapter(self, m: ArrayLike, k: ArrayLike, n: ArrayLike, weight: float = 1.0) -> None:
        """LoRA/QLoRA adapter on a ``[m x k] @ [k x n]`` projection (nothing for full),
        ``weight`` layers' worth."""
        if self.g.method != "full":
            f, b = adapter_times_lean(self.c, self.xp, m, k, n, self.g.lora_rank)
            if weight != 1.0:
                f, b = weight * f, weight * b
            self.fwd, self.bwd = self.fwd + f, self.bwd + b

    def elementwise(self, nbytes: Any, flops: Any, weight: float = 1.0) -> None:
        if self.xp is NP:
            t = weight * self.rate_op(flops, nbytes, self.c.vector_flops)
        else:
            t = weight * memory_time(self.c, self.xp, nbytes, flops)
        self.fwd, self.bwd, self.elem_fwd = self.fwd + t, self.bwd + 2.0 * t, self.elem_fwd + t


def layer_times(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    seq_len: int,
    xp: Any = NP,
    *,
    settle: bool = True,
    compiled: Any = None,
) -> _Layer:
    """Forward and backward time of one average transformer layer, one micro-batch
    (``settle=False``: GEMMs still deferred, see :meth:`_Layer.settle`; ``compiled``: the
    compiled settle to use, :func:`.gridcore.settle`)."""
    ly = _Layer(model, dev, g, seq_len, xp, settle=compiled)
    T, hq, hkv, tp, hd, D = ly.T, ly.hq, ly.hkv, ly.tp, model.head_dim, model.d_model
    lora = g.method != "full"
    # Gated DeltaNet hybrids: the softmax-attention ops are fa layers' worth, the rest
    # (_gdn_layer) 1 - fa; fa = 1 otherwise (x 1.0 is exact: other models are unchanged)
    fa = model.n_attention_layers / model.n_layers
    if model.mla is None:
        q = 2 * hq if model.attn_output_gate else hq  # the output gate doubles q_proj
        ly.gemm(T, (q + 2 * hkv) * hd, D, fa, frozen=lora)
        ly.adapter(T, D, (hq + 2 * hkv) * hd, fa)
        attn_flops = fa * 4.0 * T * hq * hd * attended_keys(model, ly.S)
        v_dim = hd
    else:
        mla = model.mla
        lat = mla.kv_lora_rank + mla.qk_rope_head_dim
        q_in = mla.q_lora_rank or D
        if mla.q_lora_rank:
            ly.gemm(T, mla.q_lora_rank, D, frozen=lora)
        f0 = ly.settle().fwd  # partial sums: deferred GEMMs priced first
        ly.gemm(T, hq * hd, q_in, frozen=lora)
        if mla.q_lora_rank:  # an up-projection only from a query latent
            ly.mla_up_fwd = ly.settle().fwd - f0
        ly.gemm(T, lat, D, frozen=lora)
        f0 = ly.settle().fwd
        ly.gemm(T, hq * (hd - mla.qk_rope_head_dim + mla.v_head_dim), mla.kv_lora_rank)
        ly.mla_up_fwd = ly.mla_up_fwd + ly.settle().fwd - f0
        attn_flops = 2.0 * T * hq * (hd + mla.v_head_dim) * attended_keys(model, ly.S)
        v_dim = mla.v_head_dim
    attn_bytes = fa * ACT_BYTES * T * (2 * hq * hd + 2 * hkv * hd * g.cp)
    adt = attention_dtype(dev, ly.rc)
    af = ly.rate_op(attn_flops, attn_bytes, ly.c.attn_peak(adt))
    ly.fwd, ly.bwd, ly.attn_fwd = ly.fwd + af, ly.bwd + 2.5 * af, af
    ly.gemm(T, D, hq * v_dim, fa, frozen=lora)
    if model.mla is None:
        ly.adapter(T, hq * v_dim, D, fa)
    if model.linear_attention is not None:
        _gdn_layer(ly, model, 1.0 - fa, frozen=lora)
    sp_tokens = xp.where(g.sp, T / tp, T)
    norms = model.blocks_per_layer
    ly.elementwise(norms * 3.0 * sp_tokens * D * ACT_BYTES, norms * 8.0 * sp_tokens * D)
    mats_in = 2 if model.gated else 1
    L = model.n_layers
    n_moe = model.n_moe_layers
    n_dense = model.n_dense_ffn_layers
    if n_dense:
        w = n_dense / L
        f = xp.ceil(model.d_ff / tp)
        ly.gemm(T, mats_in * f, D, w, frozen=lora)
        ly.elementwise(T * f * ACT_BYTES * (mats_in + 1), 4.0 * T * f, w)
        ly.gemm(T, D, f, w, frozen=lora)
    if n_moe and model.moe is not None:
        _moe_layer(ly, model, n_moe / L, frozen=lora)
    return ly.settle() if settle else ly


def _gdn_layer(ly: _Layer, model: ModelSpec, w: float, *, frozen: bool) -> None:
    """Gated DeltaNet layers, ``w`` layers' worth (:mod:`..ops.linear_attention`): the input
    and output projections (GEMMs, heads split over tp), the convolution and gated norm
    (streaming), and the chunked gated delta rule over the whole sequence (matrix FLOPs at
    the 16-bit attention rate, as flash-linear-attention's kernels run whatever the recipe;
    backward 2.5x the forward, as for fused attention)."""
    la = model.linear_attention
    assert la is not None
    xp, T, D = ly.xp, ly.T, model.d_model
    nk, nv = xp.ceil(la.n_k_heads / ly.tp), xp.ceil(la.n_v_heads / ly.tp)
    dk, dv = la.k_head_dim, la.v_head_dim
    ch = 2 * nk * dk + nv * dv
    ly.gemm(T, in_width(la.kind, nk, nv, dk, dv), D, w, frozen=frozen)
    conv_norm_bytes = T * (2.0 * ch + 3.0 * nv * dv) * ACT_BYTES
    ly.elementwise(conv_norm_bytes, T * (2.0 * la.conv_kernel * ch + 4.0 * nv * dv), w)
    flops = T * chunked_flops_per_token(la.kind, nk, nv, dk, dv, la.chunk)
    states = 2.0 * nv * dk * dv * CHUNK_STATE_BYTES / la.chunk
    nbytes = T * ((ch + nv * dv) * ACT_BYTES + states)
    core = ly.rate_op(flops, nbytes, ly.c.attn_peak("bf16"))
    ly.fwd, ly.bwd = ly.fwd + w * core, ly.bwd + 2.5 * (w * core)
    ly.gemm(T, D, nv * dv, w, frozen=frozen)


def _moe_layer(ly: _Layer, model: ModelSpec, w: float, *, frozen: bool) -> None:
    """Routed experts of an MoE layer (:mod:`..parallel.moe`: router, permute, grouped GEMMs at
    the busiest rank's load, unpermute) and shared experts, ``w`` layers' worth. Megatron-Core
    runs MoE with sequence parallelism, so each rank routes T/tp tokens; its expert group of
    ep x etp ranks serves the tokens of ep*etp/tp attention groups, so a rank computes
    ``T·k·etp/tp`` token-expert pairs on average, at width Fe/etp. Backward: GEMMs twice
    (dgrad + wgrad; dgrad only when frozen), memory-bound ops twice."""
    assert model.moe is not None
    g, dev, T, tp, r = ly.g, ly.dev, ly.T, ly.tp, ly.rc
    a = r.bytes_per_elem if r.lowp else ACT_BYTES
    ops = expert_ops(
        dev,
        model,
        local_tokens=T / tp,
        group_tokens=T * g.ep * g.etp / tp,
        ep=g.ep,
        etp=g.etp,
        compute_dtype=r.gemm_dtype if r.lowp else "bf16",
        a_bytes=a,
        w_bytes=a,
        out_bytes=ACT_BYTES,
        capacity_factor=g.capacity_factor or None,
    )
    moe = model.moe
    mats_in = 2 if model.gated else 1
    fe = np.ceil(moe.moe_d_ff / g.etp)
    group_tokens = T * g.ep * g.etp / tp
    hit = experts_hit(group_tokens, moe.n_experts / g.ep, moe.n_experts, moe.experts_per_token)
    bw = dev.hbm_bytes_per_s * dev.eff.memory_efficiency
    ly.settle()  # partial sums below: deferred GEMMs priced first
    f0, b0 = ly.fwd, ly.bwd
    d_eff = moe_dispatch_efficiency(dev)  # XLA's sort/gather/scatter of token copies (.stack)
    for op in ops:
        t = w * op.time
        if op.name in ("moe_permute", "moe_unpermute"):
            t = t / d_eff
        ly.fwd = ly.fwd + t
        if op.op_class != "gemm":
            ly.bwd, ly.elem_fwd = ly.bwd + 2.0 * t, ly.elem_fwd + t
            continue
        ly.bwd = ly.bwd + t  # dgrad: the forward's shape transposed
        if not frozen and op.name in ("moe_up", "moe_down"):
            # wgrad: one [Fe x rows] @ [rows x D] per expert touched, accumulating into the
            # grad buffer; with few rows per expert the accumulate traffic dominates.
            n_w = (mats_in if op.name == "moe_up" else 1) * fe * model.expert_width
            accum = hit * n_w * ly.accum_bytes / bw
            ly.bwd = ly.bwd + w * np.maximum(op.time, accum + dev.eff.kernel_overhead_s)
        elif not frozen:
            ly.bwd = ly.bwd + t
    # Megatron-Core's alltoall dispatcher receives the tokens grouped by source rank and sorts
    # them by local expert before the experts and back after (token_dispatcher.py
    # "Permutation 2", sort_chunks_by_idxs): one read + write of the rank's rows each way.
    n_local = moe.n_experts / g.ep
    rows_r = (
        T
        * g.etp
        / tp
        * moe.experts_per_token
        * imbalance(
            T * g.ep * g.etp / tp * moe.experts_per_token / g.ep, g.ep, g.capacity_factor or None
        )
    )
    sort_b = np.where(
        (g.ep > 1) & (n_local > 1), rows_r * model.expert_width * 2.0 * ACT_BYTES, 0.0
    )
    t_sort = w * 2.0 * _t(memory_op(dev, "moe_sort_chunks", sort_b))  # before + after
    ly.fwd, ly.bwd = ly.fwd + t_sort, ly.bwd + t_sort  # the gradients are sorted back likewise
    if model.activation_clamp and megatron_stack(dev):  # clamp outside the fused GLU (.stack)
        cf, cb = clamp_passes(rows_r * fe * mats_in * ACT_BYTES)
        tf_, tb_ = _t(memory_op(dev, "moe_act_clamp", cf)), _t(memory_op(dev, "moe_act_clamp", cb))
        ly.fwd, ly.elem_fwd = ly.fwd + w * tf_, ly.elem_fwd + w * tf_
        ly.bwd = ly.bwd + w * tb_
    # Transformer Engine's GroupedLinear runs one cuBLAS GEMM per local expert (multi-stream
    # loop, transformer_engine/pytorch/module/grouped_linear.py), so each expert GEMM is
    # ``hit`` launches, not one: fwd 2, dgrad 2, wgrad 2 (frozen: 4 in all).
    calls = 4.0 if frozen else 6.0
    ly.bwd = ly.bwd + w * calls * np.maximum(hit - 1.0, 0.0) * dev.eff.kernel_overhead_s
    if r.lowp:  # the recipe's quantisation passes around both expert GEMMs (.precision)
        rows = T * moe.experts_per_token * g.etp / tp
        W = model.expert_width
        for m_, n_, k_ in ((rows, mats_in * fe, W), (rows, W, fe)):
            qf, qb = quant_time(dev, r, m_, n_, k_, frozen=frozen)
            ly.fwd, ly.bwd = ly.fwd + w * qf, ly.bwd + w * qb
    # the host's per-expert loop after the dispatcher's device-to-host sync (.host): the expert
    # section lasts at least the host time (the router/permute ops are in it, a slight excess)
    ly.settle()
    eff = moe_layer_efficiency(dev)
    if eff != 1.0:  # Megatron-Core's measured MoE layer against this op model (.stack)
        ly.fwd, ly.bwd = f0 + (ly.fwd - f0) / eff, b0 + (ly.bwd - b0) / eff
    hf, hb = expert_loop_host_time(dev, n_local, lowp=r.lowp)
    ly.fwd = ly.fwd + w * np.maximum(hf - (ly.fwd - f0) / max(w, 1e-12), 0.0)
    ly.bwd = ly.bwd + w * np.maximum(hb - (ly.bwd - b0) / max(w, 1e-12), 0.0)
    if moe.n_shared_experts:
        fs = np.ceil(moe.n_shared_experts * moe.moe_d_ff / tp)
        ly.gemm(T, mats_in * fs, model.d_model, w, frozen=frozen)
        ly.gemm(T, model.d_model, fs, w, frozen=frozen)


def _expert_dp_sync(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    layers: F,
    red: F,
    gat: F,
    local: F,
    algorithm: str,
) -> tuple[F, F, F]:
    """Move the routed experts' gradient/parameter sync from the dp x cp group to the
    expert-data-parallel group (tp*dp*cp/(ep*etp) ranks, ep*etp apart: Megatron-Core's expert
    DP), which with wide EP spans nodes one rank per node. Returns (reduce, gather, optimizer
    params per chip) with the routed share replaced."""
    routed = routed_params_per_layer(model, g) * layers
    nrep = np.asarray(g.dp * g.cp, dtype=np.float64)
    edp, stride = expert_dp(g), g.ep * np.maximum(g.etp, 1)
    zero0 = g.zero == 0

    def red_of(n: F, s: ArrayLike, b: F) -> F:
        rs = coll.reduce_scatter_time(dev, b * g.grad_bytes, n, s, algorithm)
        return np.where(zero0, 2.0 * rs, rs)

    def gat_of(n: F, s: ArrayLike, b: F) -> F:
        ag = coll.all_gather_time(dev, b * WEIGHT_BYTES, n, s, algorithm)
        return np.where(zero0, 0.0, ag)

    # The dense group's collectives are linear in bytes: take the routed share out of them.
    # ZeRO-3/FSDP plans keep the dense-group accounting (not split for MoE here).
    keep = g.zero == 3
    red_new = red - (red_of(nrep, g.tp, routed) - red_of(nrep, g.tp, 0.0 * routed))
    gat_new = gat - (gat_of(nrep, g.tp, routed) - gat_of(nrep, g.tp, 0.0 * routed))
    red_new = red_new + red_of(edp, stride, routed)
    gat_new = gat_new + gat_of(edp, stride, routed)
    shard = np.maximum(g.shard, 1).astype(np.float64)
    local_new = local - routed / shard + routed / np.maximum(edp, 1.0)
    return (
        np.where(keep, red, red_new),
        np.where(keep, gat, gat_new),
        np.where(keep | (g.zero == 0), local, local_new),
    )


def edge_times(
    model: ModelSpec, dev: Device, g: PlanGrid, seq_len: int, xp: Any = NP
) -> tuple[Any, Any]:
    """(forward, backward) of embedding, final norm, LM head and loss for one micro-batch."""
    ly = _edge_layer(model, dev, g, seq_len, xp).settle()
    return ly.fwd, ly.bwd


def _edge_layer(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    seq_len: int,
    xp: Any,
    batch: list[tuple[Any, ...]] | None = None,
    like: _Layer | None = None,
) -> _Layer:
    ly = _Layer(model, dev, g, seq_len, xp, batch, like=like)
    T, D = ly.T, model.d_model
    v = xp.ceil(model.vocab_size / ly.tp)
    ly.gemm(T, v, D, frozen=g.method != "full", lowp=False)  # LM head stays BF16
    ly.elementwise(T * D * ACT_BYTES * 3 + 12.0 * T * v, 6.0 * T * v)  # gather, norm, loss
    return ly


@dataclass(frozen=True, kw_only=True)
class LayoutTimes:
    """What depends on a plan's layout inside a stage only, i.e. on (tp, cp, micro-batch, sp,
    ep, etp): one micro-batch's layer and edge times, the per-layer TP, CP and EP
    communication, and the parameters per chip. A grid of plans shares few layouts, so the
    vectorised path computes these once per distinct layout (:func:`layout_key`)."""

    fwd: Any
    bwd: Any
    elem_fwd: Any
    mla_up_fwd: Any
    """forward of the MLA up-projections (what selective recomputation redoes)"""
    attn_fwd: Any
    e_fwd: Any
    e_bwd: Any
    ar: Any
    """one TP all-reduce of a layer's activations"""
    cp_layer: Any
    """exposed ring-attention time of one layer, forward + backward"""
    a2a: Any
    """expert-parallel dispatch + combine of one MoE layer's forward (0 for dense models)"""
    per_layer: Any
    edges: Any

    def take(self, idx: NDArray[np.int64], shape: tuple[int, ...]) -> LayoutTimes:
        """Scatter per-layout values back to the plans (``idx``: layout of each plan)."""
        kw: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float):  # the same for every layout (e.g. no all-to-all)
                kw[f.name] = v
                continue
            a = np.asarray(v, dtype=np.float64)
            kw[f.name] = a[idx] if a.shape == shape else np.full(shape, a)[idx]
        return LayoutTimes(**kw)


def layout_layers(
    model: ModelSpec, dev: Device, g: PlanGrid, seq_len: int, xp: Any = NP, settle: Any = None
) -> tuple[_Layer, _Layer]:
    """One micro-batch's average layer and edges (embedding, LM head, loss) of every plan in
    ``g``, their GEMMs priced in one batch (``settle``: a compiled :meth:`_Layer.settle`,
    :func:`.gridcore.settle`; numpy when None)."""
    ly = layer_times(model, dev, g, seq_len, xp, settle=False, compiled=settle)
    edge = _edge_layer(model, dev, g, seq_len, xp, ly._gemms, like=ly)
    ly.settle(edge)
    return ly, edge


def layout_times(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    *,
    seq_len: int,
    overlap: Overlap,
    algorithm: str = "auto",
    xp: Any = NP,
) -> LayoutTimes:
    """:class:`LayoutTimes` of every plan in ``g`` (or of one plan with ``xp=SC``)."""
    ov, c = overlap, consts(dev)
    ly, edge = layout_layers(model, dev, g, seq_len, xp)
    e_fwd, e_bwd = edge.fwd, edge.bwd
    T, tp, cp = ly.T, g.tp, g.cp
    # tensor parallel: one all-reduce of the layer's activations (AG+RS with SP).
    ar = all_reduce_time(c, xp, T * model.d_model * ACT_BYTES, tp, 1, algorithm)
    # context parallel: ring attention, (cp-1) K/V blocks per pass forward, 2x backward.
    kv = T * 2 * ly.hkv * model.head_dim * ACT_BYTES
    ring = xp.where(cp > 1, (cp - 1) * send_recv_time(c, xp, kv, tp), 0.0)
    hide = ly.attn_fwd if ov.cp else 0.0
    cp_layer = xp.maximum(ring - hide, 0.0) + xp.maximum(2.0 * ring - 2.5 * hide, 0.0)
    a2a: Any = 0.0
    if model.moe is not None:
        a2a = dispatch_combine(
            dev,
            model,
            tokens_per_rank=T / tp,
            ep=g.ep,
            stride=g.etp,
            dispatch_bytes=ACT_BYTES,
            combine_bytes=ACT_BYTES,
            capacity_factor=g.capacity_factor or None,
            dedup=g.dispatcher == "deepep",
        ).time
    per_layer, edges = chip_params(model, g, xp)
    return LayoutTimes(
        fwd=ly.fwd,
        bwd=ly.bwd,
        elem_fwd=ly.elem_fwd,
        mla_up_fwd=ly.mla_up_fwd,
        attn_fwd=ly.attn_fwd,
        e_fwd=e_fwd,
        e_bwd=e_bwd,
        ar=ar,
        cp_layer=cp_layer,
        a2a=a2a,
        per_layer=per_layer,
        edges=edges,
    )


_LAYOUT_FIELDS = ("tp", "cp", "micro_batch", "sp", "ep", "etp")


def layout_key(g: PlanGrid) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(flat index of the first plan of each distinct layout, layout of every plan) over the
    flattened grid: plans equal in ``_LAYOUT_FIELDS`` share their :class:`LayoutTimes`."""
    cols = [np.ravel(np.asarray(getattr(g, k), dtype=np.int64)) for k in _LAYOUT_FIELDS]
    n = max(c.size for c in cols)
    cols = [np.broadcast_to(c, (n,)) if c.size != n else c for c in cols]
    tp, cp, mb, sp, ep, etp = cols
    if n and int((tp | cp | ep | etp | mb).max()) < 1024 and int(np.min(cols)) >= 0:
        # 10 bits a field: one int64 key per plan
        key = (((((tp << 10) | cp) << 10 | mb) << 1 | sp) << 10 | ep) << 10 | etp
        _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    else:
        _, first, inv = np.unique(np.stack(cols, 1), axis=0, return_index=True, return_inverse=True)
    return first.astype(np.int64), np.ravel(inv).astype(np.int64)


def step_time(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    *,
    seq_len: int,
    global_batch: int,
    overlap: Overlap | None = None,
    algorithm: str = "auto",
    layouts: LayoutTimes | None = None,
    lq: Any = None,
) -> StepTime:
    """Step time of every plan in ``g`` by component (module docstring). ``layouts``: the
    plans' :class:`LayoutTimes` when already computed (else computed here, on ``g``);
    ``lq``: :func:`.plan.stage_layers` of ``g`` when already known."""
    ov = overlap or Overlap()
    lt = layouts or layout_times(model, dev, g, seq_len=seq_len, overlap=ov, algorithm=algorithm)
    p = _plan_times(model, dev, g, lt, seq_len, global_batch, ov, algorithm, NP, lq)
    m, z = p["m"], np.zeros(np.shape(p["fwd"]))
    return StepTime(
        forward=m * p["fwd"],
        backward=m * p["bwd"],
        recompute=m * p["rc"],
        tp_comm=m * p["t_tp"],
        cp_comm=m * p["t_cp"],
        ep_comm=m * p["t_ep"] + z,
        pp_comm=m * p["t_pp"],
        fsdp_comm=m * p["t_fsdp"],
        bubble=p["bubble"],
        dp_comm=p["dp_exposed"],
        optimizer=p["t_opt"] + z,
        overhead=z + dev.eff.step_overhead_s,
        dp_comm_total=p["dp_total"],
        microbatches=m + z,
        t_microbatch=p["t_mb"],
    )


def total_time(p: dict[str, Any], overhead_s: float) -> Any:
    """The step time from :func:`_plan_times`' parts, summed in :attr:`StepTime.total`'s
    order (so both agree to the last bit)."""
    m = p["m"]
    t = m * p["fwd"] + m * p["bwd"] + m * p["rc"] + m * p["t_tp"] + m * p["t_cp"]
    t = t + m * p["t_ep"] + m * p["t_pp"] + m * p["t_fsdp"] + p["bubble"] + p["dp_exposed"]
    return t + p["t_opt"] + overhead_s


def step_total(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    lt: LayoutTimes,
    *,
    seq_len: int,
    global_batch: int,
    overlap: Overlap,
    algorithm: str = "auto",
    xp: Any = NP,
) -> Any:
    """Time-only path (plan search, one plan): the step time of every plan in ``g``, equal to
    :attr:`StepTime.total` of :func:`step_time`."""
    p = _plan_times(model, dev, g, lt, seq_len, global_batch, overlap, algorithm, xp)
    return total_time(p, dev.eff.step_overhead_s)


def _dp_collectives(
    c: Any,
    xp: Any,
    shard: Any,
    nrep: Any,
    tp: Any,
    params_stage: Any,
    trainable: Any,
    g_bytes: Any,
    grad_bytes: Any,
    algorithm: str,
) -> tuple[Any, Any, Any, Any, Any]:
    """The data-parallel collectives of a step: FSDP all-gather and reduce-scatter of the
    stage's parameters (over ``shard`` ranks), ZeRO reduce-scatter and all-gather of the
    trainable ones (over dp*cp) and the hybrid-FSDP all-reduce across replicas. On 1-D numpy
    grids the three groups are priced in one :func:`.kernels.group` call and the five buffers
    in one :func:`.kernels.group_time` call, over the concatenated plans (element-wise, so
    bit-identical to one call each)."""
    hn, hs = nrep / shard, tp * shard
    arrs = (shard, nrep, hn, tp, hs, params_stage, trainable, g_bytes)
    n = np.size(nrep)
    if xp is NP and all(type(a) is np.ndarray and a.shape == (n,) for a in arrs):
        big = group(
            c, xp, np.concatenate((shard, nrep, hn)), np.concatenate((tp, tp, hs)), algorithm
        )
        b = np.empty((2, 3 * n))
        b[0, :n], b[1, :n] = params_stage * WEIGHT_BYTES, params_stage * grad_bytes
        b[0, n : 2 * n], b[1, n : 2 * n] = g_bytes, trainable * WEIGHT_BYTES
        b[0, 2 * n :], b[1, 2 * n :] = g_bytes / shard, 0.0
        t = group_time(big, b)
        return t[0, :n], t[1, :n], t[0, n : 2 * n], t[1, n : 2 * n], 2.0 * t[0, 2 * n :]
    fsdp_group = group(c, xp, shard, tp, algorithm)
    ag = group_time(fsdp_group, params_stage * WEIGHT_BYTES)
    rs = group_time(fsdp_group, params_stage * grad_bytes)
    dp_group = group(c, xp, nrep, tp, algorithm)
    rs_dp = group_time(dp_group, g_bytes)
    ag_dp = group_time(dp_group, trainable * WEIGHT_BYTES)
    hyb = all_reduce_time(c, xp, g_bytes / shard, hn, hs, algorithm)
    return ag, rs, rs_dp, ag_dp, hyb


def _plan_times(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    lt: LayoutTimes,
    seq_len: int,
    global_batch: int,
    ov: Overlap,
    algorithm: str,
    xp: Any,
    lq: Any = None,
) -> dict[str, Any]:
    """The per-plan part of the step (pipeline, data parallel, optimizer) on top of the
    layouts' times ``lt``: the components of :class:`StepTime` per micro-batch or step."""
    c = consts(dev)
    L = model.n_layers
    pp = xp.f(g.pp)
    T, tp, cp, dp = g.micro_batch * seq_len / xp.f(g.cp), g.tp, g.cp, g.dp
    # Lq/pp layers on the busiest pipeline rank (L/pp when the stages balance); multi-token
    # prediction modules (one average layer + LM head and loss each) run once per pipeline.
    Lq = stage_layers(model, g.pp, g.vpp, xp) if lq is None else lq
    mtp = float(model.n_mtp_layers)
    fwd = (Lq * lt.fwd + lt.e_fwd * (1.0 + mtp) + mtp * lt.fwd) / pp
    bwd = (Lq * lt.bwd + lt.e_bwd * (1.0 + mtp) + mtp * lt.bwd) / pp
    if mtp:  # the MTP modules and both LM-head-and-loss passes sit on the last rank
        n_last = last_rank_layers(model, g.pp, g.vpp, xp)
        fwd = xp.maximum(fwd, (n_last + mtp) * lt.fwd + (1.0 + mtp) * lt.e_fwd)
        bwd = xp.maximum(bwd, (n_last + mtp) * lt.bwd + (1.0 + mtp) * lt.e_bwd)
    rc = xp.where(g.recompute == 2, Lq * lt.fwd / pp, 0.0)
    rc = rc + xp.where(g.recompute == 1, Lq * (lt.elem_fwd + lt.mla_up_fwd) / pp, 0.0)
    if np.any(np.asarray(g.recompute) == 3):  # offload: host transfers the compute leaves bare
        rc = rc + offload_exposed_time(model, dev, g, seq_len, global_batch, Lq, fwd, bwd, xp)
    passes = 2.0 + (g.recompute == 2)  # forward, backward (+ recomputed forward)

    # tensor parallel: 2 collectives' worth of all-reduce per layer and pass (AG+RS with SP).
    per_layer_ar = model.blocks_per_layer
    n_moe = model.n_moe_layers
    # The overlap fractions hide communication behind the micro-batch's own compute, never
    # more than that compute: exposed = max(raw x (1 - overlap), raw - compute).
    busy = fwd + bwd + rc
    t_tp_raw = per_layer_ar * lt.ar * passes * Lq / pp
    t_tp = xp.maximum(t_tp_raw * (1.0 - ov.tp), t_tp_raw - busy)
    t_cp = lt.cp_layer * Lq / pp
    # expert parallel: dispatch + combine per MoE layer and pass.
    t_ep: Any = 0.0
    if model.moe is not None:
        t_ep_raw = lt.a2a * passes * (n_moe / L) * Lq / pp
        t_ep = xp.maximum(t_ep_raw * (1.0 - ov.ep), t_ep_raw - busy)
    # pipeline: activations forward and gradients back once per virtual stage. The
    # interleaved schedule overlaps these transfers with the other chunks' compute
    # (Megatron-LM overlap_p2p_comm, on by default there); plain 1F1B waits for them.
    hop = send_recv_time(c, xp, T * model.d_model * ACT_BYTES, tp * cp * dp)
    p2p = 2.0 * g.vpp * hop
    plain = xp.maximum(p2p * (1.0 - ov.pp), p2p - (fwd + bwd))
    t_pp = xp.where(g.vpp > 1, xp.maximum(p2p - (fwd + bwd), 0.0), plain) * (pp > 1)

    per_layer, edges = lt.per_layer, lt.edges
    params_stage = (per_layer * L + edges) / pp
    full = g.method == "full"
    trainable = params_stage if full else lora_params_per_layer(model, g.lora_rank, tp) * L / pp
    nrep = xp.f(dp * cp)
    shard = xp.maximum(g.shard, 1)
    # ZeRO-3 / FSDP: gather weights forward and backward, reduce-scatter grads, per micro-batch.
    fsdp_on = (g.zero == 3) & full
    g_bytes = trainable * g.grad_bytes
    ag, rs, rs_dp, ag_dp, hyb = _dp_collectives(
        c, xp, shard, nrep, tp, params_stage, trainable, g_bytes, g.grad_bytes, algorithm
    )
    fsdp_raw = xp.where(fsdp_on, 2.0 * ag + rs, 0.0)
    t_fsdp = xp.maximum(fsdp_raw - busy, 0.0) if ov.fsdp else fsdp_raw

    t_mb = fwd + bwd + rc + t_tp + t_cp + t_ep + t_pp + t_fsdp
    m = global_batch / xp.f(dp * g.micro_batch)
    # warm-up and cool-down: (pp-1) chunk steps each way, every one waiting for its stage hop
    # (nothing else to overlap the transfer with yet)
    bubble = (pp - 1.0) / g.vpp * t_mb + 2.0 * (pp - 1.0) * hop

    # data parallel, once per step: ZeRO-0 all-reduce; ZeRO-1/2 reduce-scatter + all-gather;
    # hybrid FSDP (shard < dp*cp) all-reduces the sharded gradients across replicas.
    red = xp.where(fsdp_on, hyb, xp.where(g.zero == 0, 2.0 * rs_dp, rs_dp))
    gat = xp.where(fsdp_on | (g.zero == 0), 0.0, ag_dp)
    local = xp.where(g.zero >= 1, trainable / shard, trainable)
    if model.moe is not None and full:
        red, gat, local = _expert_dp_sync(model, dev, g, L / pp, red, gat, local, algorithm)
    dp_total = red + gat
    hidden = xp.maximum(red - bwd, 0.0) + xp.maximum(gat - fwd, 0.0)
    dp_exposed = hidden if ov.dp else dp_total
    # optimizer: read+write states and master weights, read grads, write 16-bit weights.
    opt_bytes = local * (2.0 * OPTIMIZER_BYTES[g.optimizer] + GRAD_BYTES + WEIGHT_BYTES)
    t_opt = memory_time(c, xp, opt_bytes, 10.0 * local)
    # low-precision weight copies, cast once per step (none when the frozen base is stored so)
    # (none at all: nothing to add, t_opt + 0.0 == t_opt)
    if recipe(g.dtype).lowp and full:
        cast = weight_cast_bytes(recipe(g.dtype), per_layer * L / pp, stored_lowp=not full)
        t_opt = t_opt + xp.where(cast > 0, memory_time(c, xp, cast), 0.0)
    return {
        "fwd": fwd,
        "bwd": bwd,
        "rc": rc,
        "t_tp": t_tp,
        "t_cp": t_cp,
        "t_ep": t_ep,
        "t_pp": t_pp,
        "t_fsdp": t_fsdp,
        "t_mb": t_mb,
        "m": m,
        "bubble": bubble,
        "dp_exposed": dp_exposed,
        "dp_total": dp_total,
        "t_opt": t_opt,
    }

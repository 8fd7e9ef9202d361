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
  loss count, e.g. Megatron's pipeline layouts), so a stage does 1/pp of all the work; each
  micro-batch sends its activations forward and gradients back once per virtual stage.

Step (Narayanan et al. 2021, §2.2): ``(m + (pp-1)/vpp) · t_microbatch`` with m = global batch
/ (dp·mb) micro-batches — the bubble is ``(pp-1)/vpp`` micro-batch times — plus the exposed
data-parallel gradient/parameter collectives, the optimizer update (memory-bound) and a fixed
per-step overhead. What overlaps with what is the explicit :class:`Overlap`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..catalog.schema import ModelSpec
from ..ops.device import Device
from ..ops.roofline import OpCost, attention_op, gemm, memory_op
from ..parallel import hierarchical as coll
from ..parallel.moe import dispatch_combine, expert_ops, experts_hit, imbalance
from .host import expert_loop_host_time
from .lora import adapter_times, dequant_time
from .memory import (
    ACT_BYTES,
    GRAD_BYTES,
    WEIGHT_BYTES,
    chip_params,
    expert_dp,
    lora_params_per_layer,
    routed_params_per_layer,
)
from .plan import OPTIMIZER_BYTES, PlanGrid, stage_layers
from .precision import attention_dtype, quant_time, recipe, weight_cast_bytes

F = NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class Overlap:
    """Which communication hides behind computation: stated assumptions, not fitted."""

    tp: float = 0.0
    """fraction of TP/SP collectives hidden behind GEMMs (Megatron/TE user-buffer overlap is
    opt-in; 0 = serialised)"""
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

    @property
    def total(self) -> F:
        out: F = np.zeros(np.shape(self.forward))
        for v in self.parts().values():
            out = out + v
        return out


def _t(op: OpCost) -> F:
    return op.time


class _Layer:
    """Forward/backward op times of one transformer layer (averaged over layer kinds)."""

    def __init__(self, model: ModelSpec, dev: Device, g: PlanGrid, seq_len: int) -> None:
        self.model, self.dev, self.g = model, dev, g
        tp = g.tp.astype(np.float64)
        self.T = g.micro_batch * seq_len / g.cp.astype(np.float64)
        self.S = float(seq_len)
        self.hq = np.ceil(model.n_heads / tp)
        self.hkv = np.ceil(model.n_kv_heads / tp)
        self.tp = tp
        self.fwd: F = np.zeros(np.shape(tp))
        self.bwd: F = np.zeros(np.shape(tp))
        self.elem_fwd: F = np.zeros(np.shape(tp))
        self.attn_fwd: F = np.zeros(np.shape(tp))
        self.mla_up_fwd: F = np.zeros(np.shape(tp))
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
        d, r = self.dev, self.rc
        lp = lowp and r.lowp
        cd = r.gemm_dtype if lp else "bf16"
        a = r.bytes_per_elem if lp else ACT_BYTES

        def op(
            name: str,
            mm: ArrayLike,
            nn: ArrayLike,
            kk: ArrayLike,
            um: ArrayLike | None,
            ob: float = ACT_BYTES,
        ) -> F:
            c = gemm(
                d,
                name,
                mm,
                nn,
                kk,
                compute_dtype=cd,
                a_bytes=a,
                w_bytes=a,
                out_bytes=ob,
                util_m=um,
            )
            return c.time

        self.fwd = self.fwd + weight * op("fwd", m, n, k, util_m)
        self.bwd = self.bwd + weight * op("dgrad", m, k, n, util_m)
        if not frozen:  # accumulates into the gradient buffer: read + write (accum_bytes)
            self.bwd = self.bwd + weight * op("wgrad", k, n, m, None, self.accum_bytes)
        if lp:
            qf, qb = quant_time(d, r, m, n, k, frozen=frozen)
            self.fwd, self.bwd = self.fwd + weight * qf, self.bwd + weight * qb
        if frozen:
            dq = weight * dequant_time(d, self.g.method, k, n)
            self.fwd, self.bwd = self.fwd + dq, self.bwd + dq

    def adapter(self, m: ArrayLike, k: ArrayLike, n: ArrayLike) -> None:
        """LoRA/QLoRA adapter on a ``[m x k] @ [k x n]`` projection (nothing for full)."""
        if self.g.method != "full":
            f, b = adapter_times(self.dev, m, k, n, self.g.lora_rank)
            self.fwd, self.bwd = self.fwd + f, self.bwd + b

    def elementwise(self, nbytes: F, flops: F, weight: float = 1.0) -> None:
        t = weight * _t(memory_op(self.dev, "e", nbytes, flops))
        self.fwd, self.bwd, self.elem_fwd = self.fwd + t, self.bwd + 2.0 * t, self.elem_fwd + t


def layer_times(model: ModelSpec, dev: Device, g: PlanGrid, seq_len: int) -> _Layer:
    """Forward and backward time of one average transformer layer, one micro-batch."""
    ly = _Layer(model, dev, g, seq_len)
    T, hq, hkv, tp, hd, D = ly.T, ly.hq, ly.hkv, ly.tp, model.head_dim, model.d_model
    lora = g.method != "full"
    if model.mla is None:
        ly.gemm(T, (hq + 2 * hkv) * hd, D, frozen=lora)
        ly.adapter(T, D, (hq + 2 * hkv) * hd)
        attn_flops = 4.0 * T * hq * hd * (ly.S + 1) / 2.0
        v_dim = hd
    else:
        mla = model.mla
        lat = mla.kv_lora_rank + mla.qk_rope_head_dim
        q_in = mla.q_lora_rank or D
        if mla.q_lora_rank:
            ly.gemm(T, mla.q_lora_rank, D, frozen=lora)
        f0 = ly.fwd
        ly.gemm(T, hq * hd, q_in, frozen=lora)
        if mla.q_lora_rank:  # an up-projection only from a query latent
            ly.mla_up_fwd = ly.fwd - f0
        ly.gemm(T, lat, D, frozen=lora)
        f0 = ly.fwd
        ly.gemm(T, hq * (hd - mla.qk_rope_head_dim + mla.v_head_dim), mla.kv_lora_rank)
        ly.mla_up_fwd = ly.mla_up_fwd + ly.fwd - f0
        attn_flops = 2.0 * T * hq * (hd + mla.v_head_dim) * (ly.S + 1) / 2.0
        v_dim = mla.v_head_dim
    attn_bytes = ACT_BYTES * T * (2 * hq * hd + 2 * hkv * hd * g.cp)
    adt = attention_dtype(dev, ly.rc)
    af = _t(attention_op(dev, "attn", attn_flops, attn_bytes, compute_dtype=adt))
    ly.fwd, ly.bwd, ly.attn_fwd = ly.fwd + af, ly.bwd + 2.5 * af, af
    ly.gemm(T, D, hq * v_dim, frozen=lora)
    if model.mla is None:
        ly.adapter(T, hq * v_dim, D)
    sp_tokens = np.where(g.sp, T / tp, T)
    norms = 1 if model.parallel_attn_mlp else 2
    ly.elementwise(norms * 3.0 * sp_tokens * D * ACT_BYTES, norms * 8.0 * sp_tokens * D)
    mats_in = 2 if model.gated else 1
    L = model.n_layers
    n_moe = model.n_moe_layers
    if L - n_moe:
        w = (L - n_moe) / L
        f = np.ceil(model.d_ff / tp)
        ly.gemm(T, mats_in * f, D, w, frozen=lora)
        ly.elementwise(T * f * ACT_BYTES * (mats_in + 1), 4.0 * T * f, w)
        ly.gemm(T, D, f, w, frozen=lora)
    if n_moe and model.moe is not None:
        _moe_layer(ly, model, n_moe / L, frozen=lora)
    return ly


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
    f0, b0 = ly.fwd, ly.bwd
    for op in ops:
        t = w * op.time
        ly.fwd = ly.fwd + t
        if op.op_class != "gemm":
            ly.bwd, ly.elem_fwd = ly.bwd + 2.0 * t, ly.elem_fwd + t
            continue
        ly.bwd = ly.bwd + t  # dgrad: the forward's shape transposed
        if not frozen and op.name in ("moe_up", "moe_down"):
            # wgrad: one [Fe x rows] @ [rows x D] per expert touched, accumulating into the
            # grad buffer; with few rows per expert the accumulate traffic dominates.
            n_w = (mats_in if op.name == "moe_up" else 1) * fe * model.d_model
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
    sort_b = np.where((g.ep > 1) & (n_local > 1), rows_r * model.d_model * 2.0 * ACT_BYTES, 0.0)
    t_sort = w * 2.0 * _t(memory_op(dev, "moe_sort_chunks", sort_b))  # before + after
    ly.fwd, ly.bwd = ly.fwd + t_sort, ly.bwd + t_sort  # the gradients are sorted back likewise
    # Transformer Engine's GroupedLinear runs one cuBLAS GEMM per local expert (multi-stream
    # loop, transformer_engine/pytorch/module/grouped_linear.py), so each expert GEMM is
    # ``hit`` launches, not one: fwd 2, dgrad 2, wgrad 2 (frozen: 4 in all).
    calls = 4.0 if frozen else 6.0
    ly.bwd = ly.bwd + w * calls * np.maximum(hit - 1.0, 0.0) * dev.eff.kernel_overhead_s
    if r.lowp:  # the recipe's quantisation passes around both expert GEMMs (.precision)
        rows = T * moe.experts_per_token * g.etp / tp
        for m_, n_, k_ in ((rows, mats_in * fe, model.d_model), (rows, model.d_model, fe)):
            qf, qb = quant_time(dev, r, m_, n_, k_, frozen=frozen)
            ly.fwd, ly.bwd = ly.fwd + w * qf, ly.bwd + w * qb
    # the host's per-expert loop after the dispatcher's device-to-host sync (.host): the expert
    # section lasts at least the host time (the router/permute ops are in it, a slight excess)
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
    nrep = (g.dp * g.cp).astype(np.float64)
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


def edge_times(model: ModelSpec, dev: Device, g: PlanGrid, seq_len: int) -> tuple[F, F]:
    """(forward, backward) of embedding, final norm, LM head and loss for one micro-batch."""
    ly = _Layer(model, dev, g, seq_len)
    T, D = ly.T, model.d_model
    v = np.ceil(model.vocab_size / ly.tp)
    ly.gemm(T, v, D, frozen=g.method != "full", lowp=False)  # LM head stays BF16
    ly.elementwise(T * D * ACT_BYTES * 3 + 12.0 * T * v, 6.0 * T * v)  # gather, norm, loss
    return ly.fwd, ly.bwd


def step_time(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    *,
    seq_len: int,
    global_batch: int,
    overlap: Overlap | None = None,
    algorithm: str = "auto",
) -> StepTime:
    """Step time of every plan in ``g`` by component (module docstring)."""
    ov = overlap or Overlap()
    L = model.n_layers
    pp = g.pp.astype(np.float64)
    ly = layer_times(model, dev, g, seq_len)
    e_fwd, e_bwd = edge_times(model, dev, g, seq_len)
    T, tp, cp, dp = ly.T, g.tp, g.cp, g.dp
    # Lq/pp layers on the busiest pipeline rank (L/pp when the stages balance); multi-token
    # prediction modules (one average layer + LM head and loss each) run once per pipeline.
    Lq = stage_layers(model, g.pp, g.vpp)
    mtp = float(model.n_mtp_layers)
    fwd = (Lq * ly.fwd + e_fwd * (1.0 + mtp) + mtp * ly.fwd) / pp
    bwd = (Lq * ly.bwd + e_bwd * (1.0 + mtp) + mtp * ly.bwd) / pp
    rc = np.where(g.recompute == 2, Lq * ly.fwd / pp, np.where(g.recompute == 1, 0.0, 0.0))
    rc = rc + np.where(g.recompute == 1, Lq * (ly.elem_fwd + ly.mla_up_fwd) / pp, 0.0)
    passes = 2.0 + (g.recompute == 2)  # forward, backward (+ recomputed forward)

    # tensor parallel: 2 collectives' worth of all-reduce per layer and pass (AG+RS with SP).
    per_layer_ar = 1.0 if model.parallel_attn_mlp else 2.0
    n_moe = model.n_moe_layers
    ar = coll.all_reduce_time(dev, T * model.d_model * ACT_BYTES, tp, 1, algorithm)
    t_tp = per_layer_ar * ar * passes * Lq / pp * (1.0 - ov.tp)
    # context parallel: ring attention, (cp-1) K/V blocks per pass forward, 2x backward.
    kv = T * 2 * ly.hkv * model.head_dim * ACT_BYTES
    ring = np.where(cp > 1, (cp - 1) * coll.send_recv_time(dev, kv, tp), 0.0)
    hide = ly.attn_fwd if ov.cp else 0.0
    cp_layer = np.maximum(ring - hide, 0.0) + np.maximum(2.0 * ring - 2.5 * hide, 0.0)
    t_cp = cp_layer * Lq / pp
    # expert parallel: dispatch + combine per MoE layer and pass.
    t_ep = np.zeros(np.shape(fwd))
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
        t_ep = a2a * passes * (n_moe / L) * Lq / pp * (1.0 - ov.ep)
    # pipeline: activations forward and gradients back once per virtual stage. The
    # interleaved schedule overlaps these transfers with the other chunks' compute
    # (Megatron-LM overlap_p2p_comm, on by default there); plain 1F1B waits for them.
    hop = coll.send_recv_time(dev, T * model.d_model * ACT_BYTES, tp * cp * dp)
    p2p = 2.0 * g.vpp * hop
    t_pp = np.where(g.vpp > 1, np.maximum(p2p - (fwd + bwd), 0.0), p2p * (1.0 - ov.pp)) * (pp > 1)

    per_layer, edges = chip_params(model, g)
    params_stage = (per_layer * L + edges) / pp
    full = g.method == "full"
    trainable = params_stage if full else lora_params_per_layer(model, g.lora_rank, tp) * L / pp
    nrep = (dp * cp).astype(np.float64)
    shard = np.maximum(g.shard, 1)
    # ZeRO-3 / FSDP: gather weights forward and backward, reduce-scatter grads, per micro-batch.
    fsdp_on = (g.zero == 3) & full
    ag = coll.all_gather_time(dev, params_stage * WEIGHT_BYTES, shard, tp, algorithm)
    rs = coll.reduce_scatter_time(dev, params_stage * g.grad_bytes, shard, tp, algorithm)
    fsdp_raw = np.where(fsdp_on, 2.0 * ag + rs, 0.0)
    busy = fwd + bwd + rc
    t_fsdp = np.maximum(fsdp_raw - busy, 0.0) if ov.fsdp else fsdp_raw

    t_mb = fwd + bwd + rc + t_tp + t_cp + t_ep + t_pp + t_fsdp
    m = global_batch / (dp * g.micro_batch).astype(np.float64)
    # warm-up and cool-down: (pp-1) chunk steps each way, every one waiting for its stage hop
    # (nothing else to overlap the transfer with yet)
    bubble = (pp - 1.0) / g.vpp * t_mb + 2.0 * (pp - 1.0) * hop

    # data parallel, once per step: ZeRO-0 all-reduce; ZeRO-1/2 reduce-scatter + all-gather;
    # hybrid FSDP (shard < dp*cp) all-reduces the sharded gradients across replicas.
    g_bytes = trainable * g.grad_bytes
    rs_dp = coll.reduce_scatter_time(dev, g_bytes, nrep, tp, algorithm)
    ag_dp = coll.all_gather_time(dev, trainable * WEIGHT_BYTES, nrep, tp, algorithm)
    hyb = coll.all_reduce_time(dev, g_bytes / shard, nrep / shard, tp * shard, algorithm)
    red = np.where(fsdp_on, hyb, np.where(g.zero == 0, 2.0 * rs_dp, rs_dp))
    gat = np.where(fsdp_on | (g.zero == 0), 0.0, ag_dp)
    local = np.where(g.zero >= 1, trainable / shard, trainable)
    if model.moe is not None and full:
        red, gat, local = _expert_dp_sync(model, dev, g, L / pp, red, gat, local, algorithm)
    dp_total = red + gat
    hidden = np.maximum(red - bwd, 0.0) + np.maximum(gat - fwd, 0.0)
    dp_exposed = hidden if ov.dp else dp_total
    # optimizer: read+write states and master weights, read grads, write 16-bit weights.
    opt_bytes = local * (2.0 * OPTIMIZER_BYTES[g.optimizer] + GRAD_BYTES + WEIGHT_BYTES)
    t_opt = _t(memory_op(dev, "optimizer", opt_bytes, 10.0 * local))
    # low-precision weight copies, cast once per step (none when the frozen base is stored so)
    cast = weight_cast_bytes(ly.rc, per_layer * L / pp, stored_lowp=not full)
    t_opt = t_opt + np.where(cast > 0, _t(memory_op(dev, "weight-cast", cast)), 0.0)
    z = np.zeros(np.shape(fwd))
    return StepTime(
        forward=m * fwd,
        backward=m * bwd,
        recompute=m * rc,
        tp_comm=m * t_tp,
        cp_comm=m * t_cp,
        ep_comm=m * t_ep + z,
        pp_comm=m * t_pp,
        fsdp_comm=m * t_fsdp,
        bubble=bubble,
        dp_comm=dp_exposed,
        optimizer=t_opt + z,
        overhead=z + dev.eff.step_overhead_s,
        dp_comm_total=dp_total,
        microbatches=m + z,
        t_microbatch=t_mb,
    )

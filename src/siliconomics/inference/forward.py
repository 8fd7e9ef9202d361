"""Cost of one forward step of a transformer on one model replica, per chip.

A step processes ``batch`` sequences, each with ``seq_new`` new tokens on top of ``ctx_past``
tokens already in the KV cache: prefill is ``(B, S, 0)``, a decode step ``(B, 1, c)``, a prefill
chunk ``(B, chunk, done)``. All three may be numpy arrays and broadcast together.

Per layer (notation of ARCHITECTURE.md; T = B*s new tokens, t = tp, hq = ceil(H/t) query heads
per chip, hkv = ceil(K/t) KV heads per chip — KV heads are replicated when K < t):

=============  ======================================  ==========================================
op             FLOPs per chip                           bytes per chip
=============  ======================================  ==========================================
qkv_proj       2 T D (hq + 2 hkv) hd                    weights D (hq+2hkv) hd + activations
attention      4 B s hq hd keys  (keys = c + (s+1)/2,   KV cache B (c+s) 2 hkv hd + Q/O
               causal; capped at the window)
o_proj         2 T hq hd D                              weights hq hd D + activations
mlp            2 T D F' (3 matrices if gated) / t       weights 3 D F / t + activations
moe            2 T k 3 D Fe / t                         weights of the experts hit on this chip
all-reduce     -                                         2 per layer of T D bytes (1 if parallel
                                                         attention+MLP), ring/mesh/torus model
=============  ======================================  ==========================================

FLOP counts follow Kaplan et al. 2020 (2 FLOPs per multiply-add) and the causal-attention
accounting of Dao, "FlashAttention-2" (2023). MLA follows DeepSeek-V2 (2024) §2.1: the cache
holds ``kv_lora_rank + qk_rope_head_dim`` values per token and layer, replicated on every TP
rank; decode uses the weight-absorbed form, prefill the decompressed form.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..catalog.schema import ModelSpec
from ..ops.device import Device
from ..ops.roofline import OpCost, attention_op, gemm, memory_op
from ..parallel.collectives import all_reduce, send_recv_time
from ..parallel.plan import InferencePlan
from ..units import DTYPE_BYTES

F = NDArray[np.float64]


@dataclass(frozen=True)
class ForwardCost:
    """Per-op costs of one forward step (summed over layers), and the step time."""

    ops: tuple[OpCost, ...]
    step_overhead_s: float
    pipeline_s: F = field(default_factory=lambda: np.zeros(()))

    host_launch_s: float | None = None

    @property
    def kernels(self) -> F:
        """Kernel launches in the step (every op, comm included, times its repeats)."""
        n: F = np.zeros(())
        for op in self.ops:
            n = n + op.launches
        return n

    @property
    def time(self) -> F:
        device: F = np.zeros(())
        for op in self.ops:
            device = device + op.time
        if self.host_launch_s:  # eager launches: the host may fall behind the device
            device = np.maximum(device, self.kernels * self.host_launch_s)
        return np.asarray(self.step_overhead_s, dtype=np.float64) + self.pipeline_s + device

    def by_class(self) -> dict[str, F]:
        out: dict[str, F] = {}
        for op in self.ops:
            out[op.op_class] = out.get(op.op_class, 0.0) + op.time
        return out

    def bound_shares(self) -> dict[str, F]:
        """Time attributed to the binding resource of each op (compute, memory, comm,
        overhead), summed over ops; the largest share names the step's bound."""
        shares = {"compute": 0.0, "memory": 0.0, "interconnect": 0.0, "overhead": 0.0}
        acc: dict[str, F] = {k: np.zeros(()) for k in shares}
        for op in self.ops:
            roof = np.maximum(op.t_compute, op.t_memory)
            acc["compute"] = acc["compute"] + np.where(op.t_compute >= op.t_memory, roof, 0.0)
            acc["memory"] = acc["memory"] + np.where(op.t_compute < op.t_memory, roof, 0.0)
            acc["interconnect"] = acc["interconnect"] + op.t_comm
            acc["overhead"] = acc["overhead"] + op.t_overhead
        acc["overhead"] = acc["overhead"] + self.step_overhead_s + self.pipeline_s
        return acc


def _heads_per_chip(model: ModelSpec, tp: int) -> tuple[int, int]:
    hq = -(-model.n_heads // tp)
    hkv = -(-model.n_kv_heads // tp)
    return hq, hkv


def _layer_counts(model: ModelSpec) -> tuple[int, int, int, int]:
    """(full-attention layers, windowed layers, dense-FFN layers, MoE layers)."""
    L = model.n_layers
    if model.sliding_window and model.sliding_window_every:
        n_full = L // model.sliding_window_every
    elif model.sliding_window:
        n_full = 0
    else:
        n_full = L
    n_moe = model.n_moe_layers
    return n_full, L - n_full, L - n_moe, n_moe


def forward_cost(
    model: ModelSpec,
    dev: Device,
    plan: InferencePlan,
    batch: ArrayLike,
    seq_new: ArrayLike,
    ctx_past: ArrayLike = 0.0,
    *,
    logits_tokens: ArrayLike | None = None,
) -> ForwardCost:
    """Cost of one forward step (all pipeline stages in sequence) for one replica.

    ``logits_tokens`` is the number of positions that go through the LM head (default: one per
    sequence, as in generation)."""
    B = np.asarray(batch, dtype=np.float64)
    s = np.asarray(seq_new, dtype=np.float64)
    c = np.asarray(ctx_past, dtype=np.float64)
    T = B * s
    t = plan.tp
    a = DTYPE_BYTES[plan.act_dtype]
    w = DTYPE_BYTES[plan.weight_dtype]
    kvb = DTYPE_BYTES[plan.kv_dtype]
    emb_b = max(w, 2.0)  # embeddings and LM head stay 16-bit in quantised checkpoints
    cd = plan.compute_dtype
    ad = dev.attention_dtype(plan.act_dtype, plan.kv_dtype)
    D, hd = model.d_model, model.head_dim
    hq, hkv = _heads_per_chip(model, t)
    n_full, n_swa, n_dense, n_moe = _layer_counts(model)
    L = model.n_layers
    ops: list[OpCost] = []

    def g(name: str, m: ArrayLike, n: float, k: float, **kw: object) -> OpCost:
        return gemm(dev, name, m, n, k, compute_dtype=cd, a_bytes=a, w_bytes=w, out_bytes=a, **kw)  # type: ignore[arg-type]

    # ---- attention block -------------------------------------------------------------
    keys_full = c + (s + 1.0) / 2.0
    cache_full = c + s
    if model.mla is None:
        ops.append(g("qkv_proj", T, (hq + 2 * hkv) * hd, D).scaled(L))
        for n_layers, window in ((n_full, None), (n_swa, model.sliding_window)):
            if n_layers == 0:
                continue
            keys = keys_full if window is None else np.minimum(keys_full, window)
            cache = cache_full if window is None else np.minimum(cache_full, window)
            flops = 4.0 * B * s * hq * hd * keys
            nbytes = B * cache * 2 * hkv * hd * kvb + 2.0 * T * hq * hd * a
            name = "attention" if window is None else "attention_window"
            ops.append(attention_op(dev, name, flops, nbytes, compute_dtype=ad).scaled(n_layers))
        ops.append(g("o_proj", T, D, hq * hd).scaled(L))
    else:
        mla = model.mla
        nope = hd - mla.qk_rope_head_dim
        lat = mla.kv_lora_rank + mla.qk_rope_head_dim
        if mla.q_lora_rank:
            ops.append(g("q_a_proj", T, mla.q_lora_rank, D).scaled(L))
            ops.append(g("q_b_proj", T, hq * hd, mla.q_lora_rank).scaled(L))
        else:
            ops.append(g("q_proj", T, hq * hd, D).scaled(L))
        ops.append(g("kv_a_proj", T, lat, D).scaled(L))
        # kv_b: absorbed into q/o for decode; decompresses cached latents for prefill.
        ops.append(g("kv_b_proj", T, hq * (nope + mla.v_head_dim), mla.kv_lora_rank).scaled(L))
        absorbed = 2.0 * B * s * hq * keys_full * (2 * mla.kv_lora_rank + mla.qk_rope_head_dim)
        naive = 2.0 * B * s * hq * keys_full * (hd + mla.v_head_dim)
        flops = np.where(s > 1, naive, absorbed)
        nbytes = B * cache_full * lat * kvb + 2.0 * T * hq * hd * a
        ops.append(attention_op(dev, "attention", flops, nbytes, compute_dtype=ad).scaled(L))
        ops.append(g("o_proj", T, D, hq * mla.v_head_dim).scaled(L))

    norms_per_layer = 1 if model.parallel_attn_mlp else 2
    norm = memory_op(dev, "norm+residual", 3.0 * T * D * a, 8.0 * T * D)
    ar_per_layer = 1 if model.parallel_attn_mlp else 2
    if t > 1:
        # The stack's algorithm for this message size (parallel/collectives.py); a fused
        # all-reduce + residual + RMSNorm kernel saves the norm's launch.
        ar = all_reduce(dev, T * D * a, t)
        norm = ar.fold_norm(norm)
        ops.append(ar.op("tp_all_reduce", T * D * a).scaled(ar_per_layer * L))
    ops.append(norm.scaled(norms_per_layer * L))

    # ---- feed-forward --------------------------------------------------------------
    mats_in = 2 if model.gated else 1
    if n_dense:
        f = -(-model.d_ff // t)
        ops.append(g("mlp_up", T, mats_in * f, D).scaled(n_dense))
        ops.append(
            memory_op(dev, "mlp_act", T * f * a * (mats_in + 1), 4.0 * T * f).scaled(n_dense)
        )
        ops.append(g("mlp_down", T, D, f).scaled(n_dense))
    if n_moe and model.moe is not None:
        moe = model.moe
        E, k = moe.n_experts, moe.experts_per_token
        etp = t // plan.ep
        fe = -(-moe.moe_d_ff // etp)
        local_experts = E / plan.ep
        hit = local_experts * (1.0 - (1.0 - k / E) ** T)  # expected experts touched per chip
        rows = T * k / plan.ep  # token-expert pairs computed on this chip
        per_expert = T * k / E
        ops.append(g("router", T, E, D).scaled(n_moe))
        ops.append(
            g("moe_up", rows, mats_in * fe, D, weight_reads=hit, util_m=per_expert).scaled(n_moe)
        )
        ops.append(
            memory_op(dev, "moe_act", rows * fe * a * (mats_in + 1), 4.0 * rows * fe).scaled(n_moe)
        )
        ops.append(g("moe_down", rows, D, fe, weight_reads=hit, util_m=per_expert).scaled(n_moe))
        if moe.n_shared_experts:
            fs = -(-moe.n_shared_experts * moe.moe_d_ff // t)
            ops.append(g("shared_expert_up", T, mats_in * fs, D).scaled(n_moe))
            ops.append(g("shared_expert_down", T, D, fs).scaled(n_moe))

    # ---- embeddings, final norm, LM head -----------------------------------------------
    lt = B if logits_tokens is None else np.asarray(logits_tokens, dtype=np.float64)
    ops.append(memory_op(dev, "embedding", T * D * (a + emb_b)))
    ops.append(memory_op(dev, "final_norm", 2.0 * T * D * a))
    vocab_shard = -(-model.vocab_size // t)
    head_dtype = dev.attention_dtype("bf16", "fp16")  # the LM head stays 16-bit
    ops.append(
        gemm(
            dev,
            "lm_head",
            lt,
            vocab_shard,
            D,
            compute_dtype=head_dtype,
            a_bytes=a,
            w_bytes=emb_b,
            out_bytes=4.0,
        )
    )

    pipeline = np.zeros(())
    if plan.pp > 1:
        crosses = plan.chips_per_replica > dev.chip.interconnect.scale_up_domain
        pipeline = (plan.pp - 1) * send_recv_time(dev, T * D * a, crosses_domain=crosses)
    return ForwardCost(
        ops=tuple(ops),
        step_overhead_s=dev.eff.step_overhead_s,
        pipeline_s=np.asarray(pipeline, dtype=np.float64),
        host_launch_s=dev.eff.host_launch_s,
    )

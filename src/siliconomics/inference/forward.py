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
moe            router 2 T D E; grouped GEMMs 2 (T k/ep)  weights of the experts hit on this chip,
               3 D Fe/etp x busiest-rank imbalance      permute/unpermute 2 T D (1+k)
all-reduce     -                                         2 per layer of T D bytes (1 if parallel
                                                         attention+MLP), ring/mesh/torus model
all-to-all     -                                         dp > 1: dispatch + combine per MoE layer
=============  ======================================  ==========================================

Attention data parallelism (``plan.dp``): attention, norms and dense FFN layers see the
``B/dp`` sequences of one dp group (T/dp tokens, heads split over tp); the experts see all T
tokens of the replica, spread over ep = dp*tp/etp chips (:mod:`..parallel.moe`), and tokens
reach them by all-to-all. With dp = 1 the tokens are replicated over the tp group, each chip
computes its experts' rows and the tensor-parallel all-reduce combines them (no all-to-all).

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
from ..ops.linear_attention import linear_shape
from ..ops.quant import stored_weight_bytes
from ..ops.roofline import OpCost, attention_op, gemm, memory_op
from ..parallel.collectives import all_reduce, send_recv_time
from ..parallel.memory import INDEXER_KEY_BYTES, INDEXER_SCALE_BYTES
from ..parallel.moe import INFERENCE_EXPERT_LOAD_CV, dispatch_combine, expert_ops
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
    host_seq_s: F = field(default_factory=lambda: np.zeros(()))
    """host time of the step's running sequences (``host_per_seq_s`` x sequences per rank)"""

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
        # The serving loop's per-sequence host work overlaps the device (overlap scheduler):
        # the step lasts as long as the slower of the two.
        device = np.maximum(device, self.host_seq_s)
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
        busy: F = np.zeros(())
        for op in self.ops:
            busy = busy + op.time
        acc["overhead"] = acc["overhead"] + np.maximum(self.host_seq_s - busy, 0.0)
        return acc


def _heads_per_chip(model: ModelSpec, tp: int) -> tuple[int, int]:
    hq = -(-model.n_heads // tp)
    hkv = -(-model.n_kv_heads // tp)
    return hq, hkv


def _layer_counts(model: ModelSpec) -> tuple[int, int, int, int]:
    """(full-attention layers, windowed layers, dense-FFN layers, MoE layers); linear-attention
    layers (Gated DeltaNet, Mamba-2: ``model.n_linear_layers``) are neither full nor
    windowed."""
    L = model.n_layers
    if model.sliding_window and model.sliding_window_every:
        n_full = L // model.sliding_window_every
    elif model.sliding_window:
        n_full = 0
    else:
        n_full = model.n_attention_layers
    n_moe = model.n_moe_layers
    return n_full, model.n_attention_layers - n_full, model.n_dense_ffn_layers, n_moe


@dataclass(frozen=True, kw_only=True)
class _Step:
    """Shapes and formats of one forward step, shared by the op builders below."""

    model: ModelSpec
    dev: Device
    plan: InferencePlan
    B: F
    """sequences of one attention (dp) group"""
    s: F
    c: F
    T_all: F
    """tokens of the whole replica (what the experts see)"""
    verify: bool = False
    """a speculative-decoding verification step: the ``s`` new tokens of each sequence go
    through the decode (absorbed MLA) attention kernels, not the prefill ones"""

    @property
    def T(self) -> F:
        """tokens of one attention group"""
        return self.B * self.s

    @property
    def a(self) -> float:
        return DTYPE_BYTES[self.plan.act_dtype]

    @property
    def r(self) -> float:
        """Residual-stream format: GEMMs quantise their inputs to ``act_dtype``, but their
        outputs, the residual stream, norms and the tensor-parallel all-reduce stay 16-bit
        (TensorRT-LLM and vLLM FP8/FP4 recipes; all-reduce kernels run in the model's
        16-bit dtype)."""
        return max(self.a, 2.0)

    @property
    def w(self) -> float:
        return stored_weight_bytes(self.plan.weight_dtype)  # block scales included (ops/quant.py)

    def g(self, name: str, m: ArrayLike, n: float, k: float) -> OpCost:
        return gemm(
            self.dev,
            name,
            m,
            n,
            k,
            compute_dtype=self.plan.compute_dtype,
            a_bytes=self.a,
            w_bytes=self.w,
            out_bytes=self.r,
            weight_stream=self.dev.weight_stream_factor(self.plan.compute_dtype),
        )


def _attention_ops(st: _Step) -> list[OpCost]:
    """QKV, attention and output projection of every layer (GQA/MHA/MQA, windowed layers)."""
    model, dev, plan = st.model, st.dev, st.plan
    D, hd = model.d_model, model.head_dim
    hq, hkv = _heads_per_chip(model, plan.tp)
    B, s, T = st.B, st.s, st.T
    kvb = DTYPE_BYTES[plan.kv_dtype]
    ad = dev.attention_dtype(plan.act_dtype, plan.kv_dtype)
    n_full, n_swa, _, _ = _layer_counts(model)
    keys_full = st.c + (s + 1.0) / 2.0
    cache_full = st.c + s
    La = model.n_attention_layers
    q = 2 * hq if model.attn_output_gate else hq  # the output gate doubles q_proj
    ga = model.global_attention
    # (layers, window, head width, KV heads per chip, KV projections) per kind of layer
    kinds = [(n_full, None, hd, hkv, 2), (n_swa, model.sliding_window, hd, hkv, 2)]
    if ga is None:
        ops = [st.g("qkv_proj", T, (q + 2 * hkv) * hd, D).scaled(La)]
    else:  # Gemma 4: the full layers have their own head width and KV heads (K = V: one proj)
        kinds[0] = (n_full, None, ga.head_dim, -(-ga.n_kv_heads // plan.tp), 1 if ga.k_eq_v else 2)
        ops = [
            st.g(name, T, (q + nkv * kh) * h, D).scaled(n)
            for name, (n, _, h, kh, nkv) in zip(("qkv_proj_global", "qkv_proj"), kinds, strict=True)
            if n
        ]
    for n_layers, window, h, kh, _ in kinds:
        if n_layers == 0:
            continue
        keys = keys_full if window is None else np.minimum(keys_full, window)
        cache = cache_full if window is None else np.minimum(cache_full, window)
        flops = 4.0 * B * s * hq * h * keys
        nbytes = B * cache * 2 * kh * h * kvb + 2.0 * T * hq * h * st.a
        name = "attention" if window is None else "attention_window"
        ops.append(attention_op(dev, name, flops, nbytes, compute_dtype=ad).scaled(n_layers))
    if ga is None:
        ops.append(st.g("o_proj", T, D, hq * hd).scaled(La))
    else:
        ops += [
            st.g(name, T, D, hq * h).scaled(n)
            for name, (n, _, h, _, _) in zip(("o_proj_global", "o_proj"), kinds, strict=True)
            if n
        ]
    if model.linear_attention is not None:
        ops += _linear_attention_ops(st)
    return ops


def _linear_attention_ops(st: _Step) -> list[OpCost]:
    """Linear-attention layers, Gated DeltaNet or Mamba-2 (:mod:`..ops.linear_attention`):
    input and output projections, the convolution, the recurrence and the gated norm. Decode
    steps (and speculative verification) run the recurrent form on the vector units, reading
    and writing each sequence's state once; prompt chunks run the chunked form at the
    attention rate."""
    model, dev, plan = st.model, st.dev, st.plan
    n = model.n_linear_layers
    sh = linear_shape(model, plan.tp)
    D, B, s, T = model.d_model, st.B, st.s, st.T
    prefill = (s > 1) & (not st.verify)
    flops = T * np.where(prefill, sh.prefill_flops_per_token(), sh.decode_flops_per_token())
    rate = np.where(
        prefill,
        dev.peak_flops(dev.attention_dtype(plan.act_dtype, "bf16")) * dev.eff.attention_efficiency,
        dev.vector_flops,
    )
    per_tok = sh.core_token_bytes(st.a) + np.where(prefill, sh.prefill_state_bytes_per_token(), 0.0)
    # Verification writes the state after each of its s tokens into a slot of its own (to
    # roll back to the last accepted one) and reads the current one: (1 + s) caches moved;
    # a plain step reads and writes one.
    seq_bytes = (1.0 + s) * sh.cache_bytes() if st.verify else sh.step_state_bytes_per_seq()
    nbytes = B * seq_bytes + T * per_tok
    bw = np.where(
        prefill,
        dev.hbm_bytes_per_s * dev.eff.memory_efficiency,
        dev.linear_decode_bytes_per_s(sh.kind),
    )
    core = attention_op(
        dev, "linear_attention", flops, nbytes, compute_dtype="bf16", rate=rate, bandwidth=bw
    )
    conv = memory_op(
        dev, "linear_conv", T * sh.conv_token_bytes(st.a), T * sh.conv_flops_per_token()
    )
    norm = memory_op(
        dev, "linear_gated_norm", T * sh.norm_token_bytes(st.a), T * sh.norm_flops_per_token()
    )
    return [
        st.g("linear_in_proj", T, sh.in_width, D).scaled(n),
        conv.scaled(n),
        core.scaled(n),
        norm.scaled(n),
        st.g("linear_out_proj", T, D, sh.out_in).scaled(n),
    ]


def _mla_ops(st: _Step) -> list[OpCost]:
    """Multi-head latent attention (DeepSeek-V2 §2.1): absorbed for decode, decompressed for
    prefill."""
    model, dev, plan = st.model, st.dev, st.plan
    assert model.mla is not None
    mla = model.mla
    D, hd, L = model.d_model, model.head_dim, model.n_layers
    hq, _ = _heads_per_chip(model, plan.tp)
    B, s, T = st.B, st.s, st.T
    keys_full = st.c + (s + 1.0) / 2.0
    nope = hd - mla.qk_rope_head_dim
    lat = mla.kv_lora_rank + mla.qk_rope_head_dim
    ops: list[OpCost] = []
    if mla.q_lora_rank:
        ops.append(st.g("q_a_proj", T, mla.q_lora_rank, D).scaled(L))
        ops.append(st.g("q_b_proj", T, hq * hd, mla.q_lora_rank).scaled(L))
    else:
        ops.append(st.g("q_proj", T, hq * hd, D).scaled(L))
    ops.append(st.g("kv_a_proj", T, lat, D).scaled(L))
    # kv_b: absorbed into q/o for decode; decompresses cached latents for prefill.
    ops.append(st.g("kv_b_proj", T, hq * (nope + mla.v_head_dim), mla.kv_lora_rank).scaled(L))
    if model.dsa is not None:
        ops += _dsa_ops(st, hq, lat)
        ops.append(st.g("o_proj", T, D, hq * mla.v_head_dim).scaled(L))
        return ops
    absorbed = 2.0 * B * s * hq * keys_full * (2 * mla.kv_lora_rank + mla.qk_rope_head_dim)
    naive = 2.0 * B * s * hq * keys_full * (hd + mla.v_head_dim)
    prefill = (s > 1) & (not st.verify)  # verification runs the decode kernels (MQA form)
    flops = np.where(prefill, naive, absorbed)
    nbytes = B * (st.c + s) * lat * DTYPE_BYTES[plan.kv_dtype] + 2.0 * T * hq * hd * st.a
    ad = dev.attention_dtype(plan.act_dtype, plan.kv_dtype)
    # absorbed decode at the MLA kernels' 16-bit rate; prefill is plain FMHA
    decode = dev.mla_decode_flops(plan.act_dtype, plan.kv_dtype)
    rate = np.where(prefill, dev.peak_flops(ad) * dev.eff.attention_efficiency, decode)
    ops.append(attention_op(dev, "attention", flops, nbytes, compute_dtype=ad, rate=rate).scaled(L))
    ops.append(st.g("o_proj", T, D, hq * mla.v_head_dim).scaled(L))
    return ops


TOPK_LOGIT_READS = 2.0
"""reads of the FP32 indexer logits by the top-k: a radix select's histogram and filter of the
first pass; later passes see few candidates (TensorRT-LLM tech blog 15)"""


def _dsa_ops(st: _Step, hq: int, lat: int) -> list[OpCost]:
    """DeepSeek Sparse Attention (DeepSeek-V3.2 report; TensorRT-LLM tech blog 15): the
    lightning indexer, its top-k and the MLA attention over the selected tokens.

    * Indexer projections: its query from the query latent (``q_lora_rank -> index_n_heads x
      index_head_dim``), its key and per-head weights from the hidden state (``D ->
      index_head_dim + index_n_heads``); not split over tensor parallelism (blog 15).
    * Indexer scores: ``2 index_n_heads index_head_dim`` FLOPs per (query, cached key) at the
      chip's FP8 rate (:meth:`.Device.indexer_dtype`) and ``attention_efficiency``; it reads
      its key cache (FP8 key + scale per token) and the queries, and writes one FP32 logit per
      (query, key).
    * Top-k: reads those logits :data:`TOPK_LOGIT_READS` times.
    * Sparse MLA: the absorbed (MQA) form over ``min(keys, index_topk)`` tokens for decode and
      prompt chunks alike (FlashMLA's and TensorRT-LLM's DSA kernels run MQA mode only) at the
      sparse-MLA kernel rate; a decode step reads each sequence's selected latents
      (``min(context, index_topk)``), a prompt chunk the cache once.
    The indexer runs whatever the context (vLLM, SGLang; TensorRT-LLM skips it below
    ``index_topk`` tokens, where it is cheap)."""
    model, dev, plan = st.model, st.dev, st.plan
    dsa, mla = model.dsa, model.mla
    assert dsa is not None and mla is not None
    L = model.n_layers
    B, s, T = st.B, st.s, st.T
    hI, dI, k = dsa.index_n_heads, dsa.index_head_dim, float(dsa.index_topk)
    keys_full = st.c + (s + 1.0) / 2.0
    cache_full = st.c + s
    pairs = B * s * keys_full
    ops = [
        st.g("indexer_q_proj", T, hI * dI, mla.q_lora_rank or model.d_model).scaled(L),
        st.g("indexer_k_proj", T, dI + hI, model.d_model).scaled(L),
    ]
    idt = dev.indexer_dtype()
    idx_bytes = (
        B * cache_full * (dI * INDEXER_KEY_BYTES + INDEXER_SCALE_BYTES)
        + T * hI * (dI * INDEXER_KEY_BYTES + 8.0)  # FP8 query, its float32 scale, head weight
        + 4.0 * pairs
    )
    ops.append(
        attention_op(dev, "indexer", 2.0 * hI * dI * pairs, idx_bytes, compute_dtype=idt).scaled(L)
    )
    topk_bytes = 4.0 * TOPK_LOGIT_READS * pairs
    ops.append(attention_op(dev, "indexer_topk", 0.0, topk_bytes, compute_dtype=idt).scaled(L))
    keys = np.minimum(keys_full, k)
    read = np.minimum(cache_full, s * k)
    flops = 2.0 * B * s * hq * keys * (2 * mla.kv_lora_rank + mla.qk_rope_head_dim)
    nbytes = B * read * lat * DTYPE_BYTES[plan.kv_dtype] + 2.0 * T * hq * model.head_dim * st.a
    act, kv = plan.act_dtype, plan.kv_dtype
    rate = np.where(
        (s > 1) & (not st.verify),
        dev.sparse_mla_flops(act, kv, prefill=True),
        dev.sparse_mla_flops(act, kv, prefill=False),
    )
    ad = dev.mla_decode_dtype(act, kv)
    ops.append(attention_op(dev, "attention", flops, nbytes, compute_dtype=ad, rate=rate).scaled(L))
    return ops


def _block_ops(st: _Step) -> list[OpCost]:
    """Norms, residual adds and the tensor-parallel all-reduces of every layer."""
    model, dev, t = st.model, st.dev, st.plan.tp
    T, D, L, a = st.T, model.d_model, model.n_layers, st.r
    per_layer = model.blocks_per_layer
    norm = memory_op(dev, "norm+residual", 3.0 * T * D * a, 8.0 * T * D)
    ops = []
    if t > 1:
        # The stack's algorithm for this message size (parallel/collectives.py); a fused
        # all-reduce + residual + RMSNorm kernel saves the norm's launch.
        ar = all_reduce(dev, T * D * a, t)
        norm = ar.fold_norm(norm)
        ops.append(ar.op("tp_all_reduce", T * D * a).scaled(per_layer * L))
    ops.append(norm.scaled(per_layer * L))
    return ops


def _dense_ffn_ops(st: _Step, n_dense: int) -> list[OpCost]:
    model, dev, T, a = st.model, st.dev, st.T, st.a
    mats_in = 2 if model.gated else 1
    f = -(-model.d_ff // st.plan.tp)
    return [
        st.g("mlp_up", T, mats_in * f, model.d_model).scaled(n_dense),
        memory_op(dev, "mlp_act", T * f * (st.r * mats_in + a), 4.0 * T * f).scaled(n_dense),
        st.g("mlp_down", T, model.d_model, f).scaled(n_dense),
    ]


def _moe_ops(st: _Step, n_moe: int) -> list[OpCost]:
    """Routed experts (:mod:`..parallel.moe`), shared experts and, with attention data
    parallelism, the expert-parallel all-to-all."""
    model, dev, plan = st.model, st.dev, st.plan
    assert model.moe is not None
    moe = model.moe
    # dp = 1: every tp rank holds all T tokens and routes them itself; dp > 1: each chip
    # routes and dispatches its 1/(dp*tp) share.
    local = st.T_all if plan.dp == 1 else st.T_all / (plan.dp * plan.tp)
    ops = expert_ops(
        dev,
        model,
        local_tokens=local,
        group_tokens=st.T_all,
        ep=plan.ep,
        etp=plan.etp,
        compute_dtype=plan.compute_dtype,
        a_bytes=st.a,
        w_bytes=st.w,
        out_bytes=st.r,
        weight_stream=dev.weight_stream_factor(plan.compute_dtype),
        grouped_efficiency=dev.grouped_gemm_peak_efficiency(plan.compute_dtype),
        load_cv=INFERENCE_EXPERT_LOAD_CV,
    )
    if plan.dp > 1:
        ops.append(
            dispatch_combine(
                dev,
                model,
                tokens_per_rank=local,
                ep=plan.ep,
                stride=plan.etp,
                dispatch_bytes=st.a,
                combine_bytes=st.r,
                load_cv=INFERENCE_EXPERT_LOAD_CV,
            )
        )
    if moe.n_shared_experts:
        mats_in = 2 if model.gated else 1
        fs = -(-moe.n_shared_experts * moe.moe_d_ff // plan.tp)
        ops.append(st.g("shared_expert_up", st.T, mats_in * fs, model.d_model))
        ops.append(st.g("shared_expert_down", st.T, model.d_model, fs))
    return [op.scaled(n_moe) for op in ops]


def _edge_ops(st: _Step, logits_tokens: F) -> list[OpCost]:
    """Embedding gather, final norm and LM head (16-bit, one position per sequence)."""
    model, dev = st.model, st.dev
    T, D, a = st.T, model.d_model, st.r
    emb_b = max(st.w, 2.0)  # embeddings and LM head stay 16-bit in quantised checkpoints
    vocab_shard = -(-model.vocab_size // st.plan.tp)
    head_dtype = dev.attention_dtype("bf16", "fp16")
    head = gemm(
        dev,
        "lm_head",
        logits_tokens,
        vocab_shard,
        D,
        compute_dtype=head_dtype,
        a_bytes=a,
        w_bytes=emb_b,
        out_bytes=4.0,
    )
    return [
        memory_op(dev, "embedding", T * D * (a + emb_b)),
        memory_op(dev, "final_norm", 2.0 * T * D * a),
        head,
    ]


def projection_op(
    model: ModelSpec, dev: Device, plan: InferencePlan, batch: ArrayLike, name: str, n: int, k: int
) -> OpCost:
    """One ``k -> n`` linear layer over one new token of each of ``batch`` sequences (per
    attention group), in the plan's formats: e.g. the MTP module's ``2D -> D`` projection."""
    B = np.asarray(batch, dtype=np.float64)
    one = np.ones_like(B)
    st = _Step(model=model, dev=dev, plan=plan, B=B / plan.dp, s=one, c=0.0 * one, T_all=B)
    return st.g(name, st.T, n, k)


def forward_cost(
    model: ModelSpec,
    dev: Device,
    plan: InferencePlan,
    batch: ArrayLike,
    seq_new: ArrayLike,
    ctx_past: ArrayLike = 0.0,
    *,
    logits_tokens: ArrayLike | None = None,
    verify: bool = False,
) -> ForwardCost:
    """Cost of one forward step (all pipeline stages in sequence) for one replica.

    ``batch`` is the replica's batch; with attention data parallelism each dp group runs
    ``batch/dp`` of it. ``logits_tokens`` is the number of positions that go through the LM
    head (default: one per sequence, as in generation). ``verify``: a speculative-decoding
    verification step, whose ``seq_new`` tokens per sequence (the last accepted one and the
    drafts) run through the decode attention kernels (:mod:`.speculative`)."""
    B = np.asarray(batch, dtype=np.float64)
    s = np.asarray(seq_new, dtype=np.float64)
    c = np.asarray(ctx_past, dtype=np.float64)
    st = _Step(model=model, dev=dev, plan=plan, B=B / plan.dp, s=s, c=c, T_all=B * s, verify=verify)
    _, _, n_dense, n_moe = _layer_counts(model)
    ops = _attention_ops(st) if model.mla is None else _mla_ops(st)
    ops += _block_ops(st)
    if n_dense:
        ops += _dense_ffn_ops(st, n_dense)
    if n_moe and model.moe is not None:
        ops += _moe_ops(st, n_moe)
    lt = B if logits_tokens is None else np.asarray(logits_tokens, dtype=np.float64)
    ops += _edge_ops(st, lt / plan.dp)
    pipeline = np.zeros(())
    if plan.pp > 1:
        crosses = plan.chips_per_replica > dev.chip.interconnect.scale_up_domain
        pipeline = (plan.pp - 1) * send_recv_time(
            dev, st.T * model.d_model * st.r, crosses_domain=crosses
        )
    h = dev.eff.host_per_seq_s or 0.0
    return ForwardCost(
        ops=tuple(ops),
        step_overhead_s=dev.eff.step_overhead_s,
        pipeline_s=np.asarray(pipeline, dtype=np.float64),
        host_launch_s=dev.eff.host_launch_s,
        host_seq_s=np.asarray(h * st.B, dtype=np.float64),
    )

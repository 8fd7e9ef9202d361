"""Memory per chip of a training job: weights, gradients, optimizer state, activations, reserve.

Parameters and states (bytes per parameter; Megatron-LM distributed-optimizer accounting,
``docs/source/api-guide/dist_optimizer.md``: bf16 params + fp32 grads = 6 + 12/d):

* weights 2 (16-bit; fp8/int8 training keeps 16-bit weights and casts per GEMM), gradients 4
  (fp32 main-grad buffers), optimizer state ``OPTIMIZER_BYTES`` (Adam: fp32 master + 2 moments
  = 12). ZeRO (Rajbhandari et al. 2020) shards, over the sharding group, stage 1: optimizer
  state; stage 2: + gradients; stage 3 (FSDP): + weights, plus two gathered layers in flight.
* LoRA: the frozen base keeps only its 16-bit weights; adapters get gradients and state.

Activations per transformer layer and token, in bytes (Korthikanti et al. 2022, "Reducing
Activation Recomputation in Large Transformer Models", §4: ``sbh(34 + 5as/h)`` for GPT with
16-bit activations and 1-byte dropout masks), generalised to GQA and gated MLPs:

* kept whole on every tp rank unless sequence parallel (then /tp): the two norm inputs 4D, the
  QKV input 2D, the MLP input 2D, two dropout masks 2D (only with dropout): 10D for GPT;
* split over tp: Q, K, V ``2(hq + 2hkv)hd``, attention output ``2 hq hd``, MLP intermediates
  ``2F·(gate/up) + 2F`` (down input), softmax statistics ``4 hq`` (flash attention), or without
  flash attention the score, softmax and mask tensors ``5 hq S`` instead. fp8/int8 training
  saves the quantised GEMM inputs (QKV, output-projection, MLP and down-projection inputs) at
  1 byte (Transformer Engine, AQT). GPT (F = 4D, MHA, dropout): 10 + 24/t, and
  ``34/t`` with sequence parallelism — the paper's Table 2.
* selective recomputation drops the ``5 hq S`` term (the paper's selective policy; flash
  attention never stores it); full recomputation keeps only each layer's input, 2D per token
  (/tp with SP), plus one layer's activations rebuilt during its backward.
* backward working set: the gradients of the MLP gate/up outputs of one layer (the largest
  tensors alive in a layer's backward), on top of every policy.

Pipeline: the first 1F1B stage holds ``min(pp, m)`` micro-batches of its L/pp layers, i.e. L
layers' worth; interleaving multiplies by ``1 + (pp-1)/(pp·vpp)`` (Korthikanti §4.2.3). The
last stage adds fp32 logits and loss, ``4·tokens·V/tp`` (the paper's 4sbv/t), or the backward
working set if larger (the logits are freed before the layers' backward). A fragmentation
and runtime reserve (the profile's ``memory_reserve_fraction``) comes off the capacity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..catalog.schema import ModelSpec
from ..ops.device import Device
from ..parallel.memory import param_counts
from ..parallel.moe import imbalance
from .kernels import NP, consts
from .lora import base_weight_bytes
from .plan import OPTIMIZER_BYTES, PlanGrid, stage_layers
from .precision import recipe

F = NDArray[np.float64]
WEIGHT_BYTES = 2.0
GRAD_BYTES = 4.0
ACT_BYTES = 2.0


def _by_unique(fn: Callable[..., float], *arrays: NDArray[Any]) -> F:
    """Evaluate scalar ``fn`` once per distinct tuple of ``arrays`` and scatter back."""
    b = np.broadcast_arrays(*[np.asarray(a) for a in arrays])
    keys = np.stack([x.ravel() for x in b], axis=1)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    vals = np.array([fn(*(int(v) for v in row)) for row in uniq], dtype=np.float64)
    return vals[np.ravel(inv)].reshape(b[0].shape)


_PARAMS: dict[tuple[int, int, int, int], tuple[ModelSpec, float]] = {}


def _param_memo(model: ModelSpec, tp: int, ep: int, etp: int) -> float:
    """Parameters of one layer (``etp`` > 0), or of embedding + LM head (``etp`` = 0), on one
    chip; memoised per model object, since the plan search asks for the same few layouts."""
    key = (id(model), tp, ep, etp)
    hit = _PARAMS.get(key)
    if hit is not None and hit[0] is model:
        return hit[1]
    if etp:
        pc = param_counts(model, tp, ep, etp)
        v = (pc["attention"] + pc["ffn_dense"] + pc["ffn_experts"] + pc["norms"]) / (model.n_layers)
    else:
        pc = param_counts(model, tp, 1)
        v = pc["embedding"] + pc["lm_head"]
    if len(_PARAMS) > 4096:
        _PARAMS.clear()
    _PARAMS[key] = (model, v)
    return v


def chip_params(model: ModelSpec, g: PlanGrid, xp: Any = None) -> tuple[Any, Any]:
    """(transformer-layer params of one layer on one chip, averaged over layers; embedding
    + LM head params on one chip) under tp/ep sharding. ``xp``: the backend of
    :mod:`.kernels` (numpy arrays when None or NP; Python numbers for one plan)."""
    if xp is not None and not isinstance(g.tp, np.ndarray):
        etp = g.etp if g.etp >= 1 else 1
        return _param_memo(model, int(g.tp), int(g.ep), int(etp)), _param_memo(
            model, int(g.tp), 1, 0
        )

    if np.ndim(g.tp) == 1 and np.size(g.tp) <= 64:  # a few layouts: look each one up
        rows = list(zip(g.tp.tolist(), g.ep.tolist(), np.maximum(g.etp, 1).tolist(), strict=True))
        return np.array([_param_memo(model, *r) for r in rows]), np.array(
            [_param_memo(model, r[0], 1, 0) for r in rows]
        )

    def body(tp: int, ep: int, etp: int) -> float:
        return _param_memo(model, tp, ep, etp)

    def edges(tp: int) -> float:
        return _param_memo(model, tp, 1, 0)

    return _by_unique(body, g.tp, g.ep, np.maximum(g.etp, 1)), _by_unique(edges, g.tp)


def routed_params_per_layer(model: ModelSpec, g: PlanGrid) -> F:
    """Routed-expert parameters of one layer on one chip, averaged over layers: ceil(E/ep)
    experts of width Fe/etp in each MoE layer. They are replicated over the expert-data-parallel
    group of ``expert_dp`` ranks, not over dp x cp like the rest."""
    if model.moe is None:
        return np.zeros(np.shape(g.tp))
    moe = model.moe
    mats = 3 if model.gated else 2
    per = np.ceil(moe.n_experts / g.ep) * mats * model.expert_width
    per = per * np.ceil(moe.moe_d_ff / np.maximum(g.etp, 1))
    return np.asarray(per * model.n_moe_layers / model.n_layers, dtype=np.float64)


def expert_dp(g: PlanGrid) -> F:
    """Expert-data-parallel degree: the tp x dp x cp ranks of a stage hold each expert shard
    tp*dp*cp / (ep*etp) times (Megatron-Core's expert-DP group, ranks ep*etp apart)."""
    return np.asarray(
        (g.tp * g.dp * g.cp) / np.maximum(g.ep * np.maximum(g.etp, 1), 1), dtype=np.float64
    )


def lora_params_per_layer(model: ModelSpec, rank: int, tp: NDArray) -> F:
    """Adapter parameters of one layer on one chip: rank-r A and B matrices on the QKV and
    output projections (Hu et al. 2021 adapt the attention weights; in a Gated DeltaNet
    hybrid, of its softmax-attention layers)."""
    hd = model.head_dim
    qkv_out = (model.n_heads + 2 * model.n_kv_heads) * hd
    full: float = rank * (model.d_model + qkv_out) + rank * (model.n_heads * hd + model.d_model)
    if model.linear_attention is not None:  # adapters on the softmax-attention layers only
        full = full * model.n_attention_layers / model.n_layers
    return full / np.asarray(tp, dtype=np.float64)


def activation_bytes_per_token_layer(
    model: ModelSpec,
    g: PlanGrid,
    seq_len: int,
    *,
    flash: bool = True,
    dropout: bool = False,
    xp: Any = NP,
) -> F:
    """Stored activations of one layer per local token on one chip (no recomputation).
    ``flash=False`` adds the attention score/softmax/mask tensors (``5 hq S`` bytes: what
    selective recomputation removes); ``dropout`` adds two 1-byte masks of width D."""
    tp = xp.f(g.tp)
    D, hd = model.d_model, model.head_dim
    hq = xp.ceil(model.n_heads / tp)
    hkv = xp.ceil(model.n_kv_heads / tp)
    mats_in = 2 if model.gated else 1
    # GEMM inputs saved for the weight gradient: quantised copies in low-precision training
    # (Transformer Engine and AQT keep the quantised input; block scales included), else
    # 16-bit. A frozen base (LoRA/QLoRA) saves no input for its unadapted MLP GEMMs.
    rc = recipe(g.dtype)
    gi = rc.bytes_per_elem if rc.lowp else ACT_BYTES
    mlp_in = 0.0 if g.method != "full" else 1.0
    w = 2 * D * ACT_BYTES + (1 + mlp_in) * D * gi + (2.0 * D if dropout else 0.0)
    whole = xp.where(g.sp, w / tp, w)
    # Q, K, V and the attention output (kept 16-bit for the attention backward), the
    # output-projection input copy when it is quantised, softmax statistics.
    attn_core = 4.0 * hq if flash else 5.0 * hq * seq_len
    # FP8 attention (cuDNN FP8 fused attention) saves Q, K, V and O in FP8
    qkvo = 1.0 if rc.fp8_attention else ACT_BYTES
    q = 2 * hq if model.attn_output_gate else hq  # the gated output keeps its gate
    split = qkvo * ((q + 2 * hkv) * hd + hq * hd) + attn_core
    if gi < ACT_BYTES:
        split = split + gi * hq * hd
    la = model.linear_attention
    if la is not None:  # Gated DeltaNet layers: their share of the layers stores instead ...
        fa = model.n_attention_layers / model.n_layers
        nk, nv = xp.ceil(la.n_k_heads / tp), xp.ceil(la.n_v_heads / tp)
        ch = 2 * nk * la.k_head_dim + nv * la.v_head_dim
        # ... the conv input and output (q, k, v), the gate z, beta and alpha, the output and
        # the gated norm's output (the out_proj input; its quantised copy in low precision)
        gdn = ACT_BYTES * (2 * ch + 3 * nv * la.v_head_dim + 2 * nv)
        if gi < ACT_BYTES:
            gdn = gdn + gi * nv * la.v_head_dim
        split = fa * split + (1 - fa) * gdn
    if model.moe is None:
        f = xp.ceil(model.d_ff / tp)
        if model.ffn_layers is not None:  # some layers are a mixer alone (Nemotron-H)
            f = f * (model.ffn_layers / model.n_layers)
    else:
        moe = model.moe
        frac_moe = model.n_moe_layers / model.n_layers
        skew = _moe_rank_skew(model, g, seq_len)
        fe = xp.ceil(moe.moe_d_ff / tp) * (moe.experts_per_token * skew + moe.n_shared_experts)
        frac_dense = (
            1 - frac_moe if model.ffn_layers is None else model.n_dense_ffn_layers / model.n_layers
        )
        f = frac_moe * fe + frac_dense * xp.ceil(model.d_ff / tp)
        split = split + frac_moe * moe_permuted_input_bytes(model, g, gi) * skew
    # MLP: up/gate outputs (the activation function's input: 16-bit, or FP8 where the recipe
    # stores it so) and the down-projection input.
    act_in = 1.0 if rc.fp8_act_store else ACT_BYTES
    split = split + f * (act_in * mats_in + gi * mlp_in)
    return whole + split


def moe_permuted_input_bytes(model: ModelSpec, g: PlanGrid, gi: float) -> F:
    """Per token of an MoE layer, per chip: the expert inputs saved for the wgrad beyond the
    one MLP input counted above. The expert fc1 input is the permuted token copies, k rows per
    token (Transformer Engine ``GroupedLinear`` saves ``inputmats`` = all ``sum(m_splits)``
    rows; Megatron-Core's permute keeps no other copy): ``(k - 1)·D·bytes``, /tp as the
    sequence-parallel routed tokens are. Frozen experts (LoRA) save none. LatentMoE: the k
    copies are latent-wide and the latent -> D projection's input (one more latent row) is
    saved too: ``(k + 1)·latent·bytes``."""
    assert model.moe is not None
    tp = np.asarray(g.tp, dtype=np.float64)
    full = np.where(g.method == "full", 1.0, 0.0)
    k = model.moe.experts_per_token
    if model.moe.latent_dim is not None:
        return full * (k + 1) * model.moe.latent_dim * gi / tp
    return full * (k - 1) * model.d_model * gi / tp


def _moe_rank_skew(model: ModelSpec, g: PlanGrid, seq_len: int) -> F:
    """Busiest expert-parallel rank's routed rows / the mean (``parallel.moe.imbalance``;
    the capacity factor when tokens are dropped): the rank that runs out of memory first."""
    assert model.moe is not None
    tokens = g.micro_batch * seq_len / np.asarray(g.cp, dtype=np.float64)
    rows = tokens * model.moe.experts_per_token * g.etp / np.asarray(g.tp, dtype=np.float64)
    return imbalance(rows, g.ep, g.capacity_factor or None)


def mla_up_proj_freed_bytes_per_token(model: ModelSpec, g: PlanGrid) -> F:
    """What selective recomputation frees per layer and token in a multi-head latent attention
    model: the up-projected Q, K, V (``(hq + 2hkv)·hd`` per tp rank, as stored above) are
    rebuilt in the backward from the latents, which are kept instead (``q_lora_rank +
    kv_lora_rank + qk_rope_head_dim`` 16-bit values, not split over tp). Megatron-Core's
    ``recompute_modules=["mla_up_proj"]`` (MLASelfAttention), which the Megatron-Bridge
    DeepSeek-V3 recipes set; the step charges the two up-projection GEMMs' forward again
    (``training/step.py``). 0 for other attention."""
    z = np.zeros(np.shape(g.tp))
    mla = model.mla
    if mla is None:
        return z
    tp = np.asarray(g.tp, dtype=np.float64)
    rc = recipe(g.dtype)
    qkvo = 1.0 if rc.fp8_attention else ACT_BYTES
    hq, hkv = np.ceil(model.n_heads / tp), np.ceil(model.n_kv_heads / tp)
    q = hq if mla.q_lora_rank else 0.0  # Q is an up-projection only from a query latent
    qkv = qkvo * (q + 2 * hkv) * model.head_dim
    latent = ACT_BYTES * ((mla.q_lora_rank or 0) + mla.kv_lora_rank + mla.qk_rope_head_dim)
    return np.asarray(np.maximum(qkv - latent, 0.0) + z, dtype=np.float64)


def inflight_microbatches(g: PlanGrid, pp: Any, global_batch: int, xp: Any = NP) -> Any:
    """Micro-batches whose activations the first pipeline rank holds at its peak: ``min(pp,
    m)`` under 1F1B (``m`` micro-batches per step), ``pp (1 + (pp-1)/(pp vpp))`` interleaved
    (Narayanan et al. 2021)."""
    m = xp.maximum(global_batch // xp.maximum(g.dp * g.micro_batch, 1), 1)
    return xp.where(g.vpp > 1, pp * (1.0 + (pp - 1) / (pp * g.vpp)), xp.minimum(pp, m))


def offloaded_bytes(total: Any, layer: Any, host: float, xp: Any = NP) -> Any:
    """Stored activations moved to host memory under ``recompute=offload``: all of ``total``
    but two layers' worth (``layer`` each: the one computing and the one in transfer), at most
    the chip's ``host`` share (Megatron-Core ``cpu_offloading``: a layer's activations are
    copied out asynchronously after its forward and prefetched back before its backward)."""
    return xp.minimum(xp.maximum(total - 2.0 * layer, 0.0), host)


def offload_exposed_time(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    seq_len: int,
    global_batch: int,
    lq: Any,
    fwd: Any,
    bwd: Any,
    xp: Any = NP,
) -> Any:
    """Per micro-batch, the host transfers of ``recompute=offload`` that its compute does not
    hide: the micro-batch's offloaded bytes go out over the host link during its forward
    (``fwd`` s on the busiest rank) and come back during its backward (``bwd``), one direction
    each: ``max(0, X - fwd) + max(0, X - bwd)`` with ``X = bytes / host link``. Zero for the
    other policies."""
    c = consts(dev)
    if not c.host_bw:
        return xp.where(g.recompute == 3, math.inf, 0.0)
    pp = xp.f(g.pp)
    tokens = g.micro_batch * seq_len / xp.f(g.cp)
    stored = activation_bytes_per_token_layer(model, g, seq_len, xp=xp) * tokens
    inflight = inflight_microbatches(g, pp, global_batch, xp)
    n = xp.where(pp > 1, inflight, 1.0)
    total = xp.where(pp > 1, stored * (lq / pp) * inflight, stored * lq)
    x = offloaded_bytes(total, stored, c.host_bytes, xp) / n / c.host_bw
    exposed = xp.maximum(x - fwd, 0.0) + xp.maximum(x - bwd, 0.0)
    return xp.where(g.recompute == 3, exposed, 0.0)


def layer_input_bytes_per_token(model: ModelSpec, g: PlanGrid, xp: Any = NP) -> F:
    """What full recomputation keeps per layer and token: the layer input (/tp with SP)."""
    base = ACT_BYTES * model.d_model
    return xp.where(g.sp, base / g.tp, base + 0.0 * g.tp)


def _mlp_grad_bytes_per_token(model: ModelSpec, g: PlanGrid, xp: Any = NP) -> F:
    """Gradients of the MLP gate/up outputs of one token (16-bit), per chip: the largest
    tensors alive during a layer's backward."""
    tp = xp.f(g.tp)
    mats_in = 2 if model.gated else 1
    if model.moe is None:
        f = xp.ceil(model.d_ff / tp)
    else:
        moe = model.moe
        f = xp.ceil(moe.moe_d_ff / tp) * (moe.experts_per_token + moe.n_shared_experts)
    return ACT_BYTES * mats_in * f


@dataclass(frozen=True, kw_only=True)
class TrainMemory:
    """Bytes per chip on the most loaded chip, arrays over plans."""

    weights: F
    grads: F
    optimizer: F
    activations: F
    reserve: float
    capacity: float

    @property
    def total(self) -> F:
        return self.weights + self.grads + self.optimizer + self.activations + self.reserve

    @property
    def free(self) -> F:
        return self.capacity - self.total

    @property
    def fits(self) -> NDArray[np.bool_]:
        return self.free >= 0

    def parts(self) -> dict[str, F]:
        return {
            "weights": self.weights,
            "gradients": self.grads,
            "optimizer state": self.optimizer,
            "activations": self.activations,
            "reserve": np.asarray(self.reserve),
        }


def train_memory(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    *,
    seq_len: int,
    global_batch: int,
    params: tuple[Any, Any] | None = None,
    lq: Any = None,
    xp: Any = NP,
) -> TrainMemory:
    """Per-chip memory of every plan in ``g`` (see module docstring for the formulas).
    ``params``: :func:`chip_params` of ``g`` when already known; ``xp``: the backend of
    :mod:`.kernels` (``SC`` for one plan of Python numbers); ``lq``: :func:`.plan.stage_layers`
    of ``g`` when already known."""
    # pp x layers of the busiest rank (L when even)
    L = stage_layers(model, g.pp, g.vpp, xp) if lq is None else lq
    pp = xp.f(g.pp)
    per_layer, edges = params or chip_params(model, g, xp)
    # Most loaded stage: its L/pp layers plus the larger edge (embedding or LM head).
    edge_chip = xp.where(pp > 1, edges / 2.0, edges)
    params_ = per_layer * L / pp + edge_chip
    shard = xp.maximum(xp.f(g.shard), 1.0)
    if g.method != "full":
        trainable = lora_params_per_layer(model, g.lora_rank, g.tp) * L / pp
    else:
        trainable = params_
    z = g.zero
    # frozen base (LoRA/QLoRA): layers stored FP8 or NF4 per lora.base_weight_bytes; the
    # embedding and LM head stay 16-bit; adapters (16-bit) are counted with the trainables.
    wb = base_weight_bytes(g.method, recipe(g.dtype))
    weights = per_layer * L / pp * wb + edge_chip * WEIGHT_BYTES
    weights = weights + (0.0 if g.method == "full" else trainable * WEIGHT_BYTES)
    # FSDP: weights sharded, two layers gathered (current + prefetched) in flight; never more
    # than sharding saves (a stage that small keeps its weights gathered, as FSDP's
    # reshard_after_forward=False does).
    gathered = xp.minimum(2.0 * per_layer * WEIGHT_BYTES, weights * (1.0 - 1.0 / shard))
    weights = xp.where((z >= 3) & (g.method == "full"), weights / shard + gathered, weights)
    grads = trainable * g.grad_bytes
    grads = xp.where(z >= 2, grads / shard, grads)
    # bf16 gradient buffers: the distributed optimizer keeps an fp32 copy of its grad shard
    fp32_grad_copy = GRAD_BYTES if g.grad_bytes < GRAD_BYTES else 0.0
    opt = trainable * (OPTIMIZER_BYTES[g.optimizer] + fp32_grad_copy)
    opt = xp.where(z >= 1, opt / shard, opt)
    if model.moe is not None and g.method == "full":
        # Routed experts shard their states over the expert-data-parallel group only.
        routed = routed_params_per_layer(model, g) * L / pp
        dense, edp = trainable - routed, np.maximum(expert_dp(g), 1.0)
        ob = OPTIMIZER_BYTES[g.optimizer] + fp32_grad_copy
        opt = np.where(z >= 1, dense * ob / shard + routed * ob / edp, opt)
        gb = g.grad_bytes
        grads = np.where(z >= 2, dense * gb / shard + routed * gb / edp, grads)

    tokens = g.micro_batch * seq_len / xp.f(g.cp)  # local tokens per micro-batch
    act_layer = activation_bytes_per_token_layer(model, g, seq_len, xp=xp) * tokens
    keep_full = layer_input_bytes_per_token(model, g, xp) * tokens
    rc = g.recompute
    act_sel = act_layer - mla_up_proj_freed_bytes_per_token(model, g) * tokens
    stored = xp.where(rc == 2, keep_full, xp.where(rc == 1, act_sel, act_layer))
    # Backward working set: the largest gradient buffers alive in a layer's backward, those of
    # the MLP's gate/up outputs; under full recomputation also the rebuilt layer.
    grads_ws = _mlp_grad_bytes_per_token(model, g, xp) * tokens
    live_extra = xp.where(rc == 2, act_layer, 0.0) + grads_ws
    inflight = inflight_microbatches(g, pp, global_batch, xp)
    # Activation offload (recompute=offload): all but two layers' stored activations (the one
    # computing, the one in transfer) go to host memory, as much as the host share holds.
    host = consts(dev).host_bytes
    off = rc == 3

    def resident(total: Any) -> Any:
        return xp.where(off, total - offloaded_bytes(total, stored, host, xp), total)

    first = resident(stored * (L / pp) * inflight) + live_extra
    # fp32 logits and their gradient are freed after the LM head's backward, before the
    # layers' backward builds its working set: the stage peaks at the larger of the two.
    logits = 4.0 * tokens * xp.ceil(model.vocab_size / g.tp)
    last = resident(stored * (L / pp)) + xp.maximum(live_extra, logits)
    single = resident(stored * L) + xp.maximum(live_extra, logits)
    acts = xp.where(pp > 1, xp.maximum(first, last), single)
    return TrainMemory(
        weights=weights,
        grads=grads,
        optimizer=opt,
        activations=acts,
        reserve=consts(dev).reserve_bytes,
        capacity=consts(dev).hbm_bytes,
    )

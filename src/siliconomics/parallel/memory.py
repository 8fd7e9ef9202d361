"""Memory footprint per chip of an inference replica: weights + KV cache + activations +
runtime reserve. Parameter counts follow the layer formulas in :mod:`..inference.forward`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..catalog.schema import ModelSpec
from ..ops.device import Device
from ..ops.linear_attention import cache_bytes_per_seq, linear_params_per_layer, linear_shape
from ..ops.quant import stored_weight_bytes
from ..parallel.plan import InferencePlan
from ..units import DTYPE_BYTES

F = NDArray[np.float64]


INDEXER_KEY_BYTES = 1.0
"""bytes per value of the DSA lightning indexer's keys and queries: FP8 in every shipped
implementation (DeepGEMM's MQA-logits kernel in vLLM, SGLang and TensorRT-LLM; TensorRT-LLM
tech blog 15: 'Indexer K cache: Blockwise FP8')"""
INDEXER_SCALE_BYTES = 4.0
"""the float32 scale stored with each token's indexer key (one block of ``index_head_dim``)"""


def param_counts(
    model: ModelSpec, tp: int = 1, ep: int = 1, etp: int | None = None
) -> dict[str, float]:
    """Parameters held by ONE chip of a tp-way (ep-way for experts, each expert split etp
    ways; default etp = tp/ep) shard, by component, for the whole model (all layers). With
    tp=ep=1 these are the model's total parameters."""
    D, hd, L = model.d_model, model.head_dim, model.n_layers
    hq = -(-model.n_heads // tp)
    hkv = -(-model.n_kv_heads // tp)
    if model.mla is None:
        q = 2 * hq if model.attn_output_gate else hq  # the gate doubles q_proj
        attn = D * (q + 2 * hkv) * hd + hq * hd * D
        if model.qkv_bias:
            attn += (q + 2 * hkv) * hd
    else:
        m = model.mla
        lat = m.kv_lora_rank + m.qk_rope_head_dim
        nope = hd - m.qk_rope_head_dim
        q = (D * m.q_lora_rank + m.q_lora_rank * hq * hd) if m.q_lora_rank else D * hq * hd
        attn = q + D * lat + m.kv_lora_rank * hq * (nope + m.v_head_dim) + hq * m.v_head_dim * D
        if model.dsa is not None:  # lightning indexer: whole on every tp rank
            x = model.dsa
            attn += (m.q_lora_rank or D) * x.index_n_heads * x.index_head_dim
            attn += D * (x.index_head_dim + x.index_n_heads) + 2 * x.index_head_dim
    mats = 3 if model.gated else 2
    n_moe = model.n_moe_layers
    n_dense = model.n_dense_ffn_layers
    dense_ffn = mats * D * -(-model.d_ff // tp)
    experts = 0.0
    if model.moe is not None:
        moe = model.moe
        etp_ = max(tp // ep, 1) if etp is None else etp
        W = model.expert_width
        experts = -(-moe.n_experts // ep) * mats * W * -(-moe.moe_d_ff // etp_)
        experts += mats * D * -(-(moe.n_shared_experts * moe.moe_d_ff) // tp) + D * moe.n_experts
        if moe.latent_dim is not None:  # LatentMoE: D -> latent and back, whole on every rank
            experts += 2 * D * moe.latent_dim
    vocab = -(-model.vocab_size // tp) * D
    attention = float(attn * model.n_attention_layers)
    ga = model.global_attention
    if ga is not None:  # the full-attention layers have their own head width and KV heads
        n_full = model.n_layers // model.sliding_window_every
        hkv_g = -(-ga.n_kv_heads // tp)
        attn_g = D * (hq + (1 if ga.k_eq_v else 2) * hkv_g) * ga.head_dim + hq * ga.head_dim * D
        attention = float(attn * (model.n_attention_layers - n_full) + attn_g * n_full)
    if model.linear_attention is not None:
        attention += linear_params_per_layer(model, tp) * model.n_linear_layers
    return {
        "attention": attention,
        "ffn_dense": float(dense_ffn * n_dense),
        "ffn_experts": float(experts * n_moe),
        "norms": float(2 * D * L + D)
        if model.ffn_layers is None
        else float(D * (L + model.ffn_layers) + D),
        "embedding": float(vocab),
        "lm_head": 0.0 if model.tied_embeddings else float(vocab),
    }


def total_params(model: ModelSpec) -> float:
    return sum(param_counts(model).values())


def active_params(model: ModelSpec) -> float:
    """Parameters used per token (MoE: shared + top-k experts), embeddings included."""
    pc = param_counts(model)
    if model.moe is None:
        return sum(pc.values())
    moe = model.moe
    mats = 3 if model.gated else 2
    n_moe = model.n_moe_layers
    routed = moe.n_experts * mats * model.expert_width * moe.moe_d_ff * n_moe
    active_routed = moe.experts_per_token * mats * model.expert_width * moe.moe_d_ff * n_moe
    return sum(pc.values()) - routed + active_routed


def weight_bytes_per_chip(model: ModelSpec, plan: InferencePlan) -> float:
    """Weights on the most loaded chip (pipeline stages hold L/pp layers; embeddings and the
    LM head stay 16-bit when linear layers are quantised)."""
    pc = param_counts(model, plan.tp, plan.ep, plan.etp)
    w = stored_weight_bytes(plan.weight_dtype)  # block scales included
    emb_b = max(w, 2.0)
    layers = (pc["attention"] + pc["ffn_dense"] + pc["ffn_experts"]) * w + pc["norms"] * 2.0
    edge = max(pc["embedding"], pc["lm_head"]) if plan.pp > 1 else pc["embedding"] + pc["lm_head"]
    if model.n_layers % plan.pp:  # uneven stages: the busiest holds ceil(L/pp) layers
        layers = layers * _stage_layers(model, plan) / (model.n_layers / plan.pp)
    return float(layers / plan.pp + edge * emb_b)


def _stage_layers(model: ModelSpec, plan: InferencePlan) -> float:
    """Layers on the busiest pipeline stage: L/pp, or ceil(L/pp) when pp does not divide L
    (e.g. DeepSeek-V3's 61 layers on pp=8: 8 on the busiest stage)."""
    L = model.n_layers
    return L / plan.pp if L % plan.pp == 0 else float(-(-L // plan.pp))


def kv_bytes_per_token_per_chip(model: ModelSpec, plan: InferencePlan) -> float:
    """KV-cache bytes one token adds on one chip (all its layers), for full-attention layers.
    GQA heads are replicated when K < tp; MLA latents are replicated on every TP rank. With
    attention data parallelism each sequence lives on one of the dp groups, so a replica's
    tokens cost 1/dp of this per chip on average (the KV cache per dp rank)."""
    kvb = DTYPE_BYTES[plan.kv_dtype]
    layers = _stage_layers(model, plan) / plan.dp
    if model.mla is not None:
        latent = (model.mla.kv_lora_rank + model.mla.qk_rope_head_dim) * kvb
        if model.dsa is not None:  # + the indexer's FP8 key and its float32 scale
            latent += model.dsa.index_head_dim * INDEXER_KEY_BYTES + INDEXER_SCALE_BYTES
        return layers * latent
    hkv = -(-model.n_kv_heads // plan.tp)
    if model.linear_attention is not None:  # only the full-attention layers cache K and V
        layers = layers * model.n_attention_layers / model.n_layers
    ga = model.global_attention
    if ga is not None:  # windowed and full layers of different shapes: their mean per layer
        n_full = model.n_layers // model.sliding_window_every
        full = n_full * 2 * -(-ga.n_kv_heads // plan.tp) * ga.head_dim
        window = (model.n_layers - n_full) * 2 * hkv * model.head_dim
        return layers * (full + window) / model.n_layers * kvb
    return layers * 2 * hkv * model.head_dim * kvb


def kv_full_fraction(model: ModelSpec, plan: InferencePlan) -> float:
    """Share of a token's KV bytes held by the full-attention layers of a sliding-window model
    (the rest stops growing at the window): the share of full layers, 1/every, or with
    ``global_attention`` the full layers' share of the bytes. 1 without windows."""
    if not model.sliding_window or model.mla is not None:
        return 1.0
    every = model.sliding_window_every
    if not every:
        return 0.0
    ga = model.global_attention
    if ga is None:
        return 1.0 / every
    n_full = model.n_layers // every
    full = n_full * -(-ga.n_kv_heads // plan.tp) * ga.head_dim
    window = (model.n_layers - n_full) * -(-model.n_kv_heads // plan.tp) * model.head_dim
    return full / (full + window)


def state_bytes_per_seq_per_chip(model: ModelSpec, plan: InferencePlan) -> float:
    """Fixed-size cache of one sequence on one chip, whatever its length: the Gated DeltaNet
    layers' recurrent states and convolution inputs (:mod:`..ops.linear_attention`);
    0 for models without linear-attention layers. Stage and attention-dp shares as for
    :func:`kv_bytes_per_token_per_chip`."""
    if model.linear_attention is None:
        return 0.0
    layers = _stage_layers(model, plan) / plan.dp * model.n_linear_layers / model.n_layers
    return float(layers * cache_bytes_per_seq(model, plan.tp))


def kv_bytes_per_seq_per_chip(model: ModelSpec, plan: InferencePlan, ctx: ArrayLike) -> F:
    """KV bytes of one sequence of ``ctx`` tokens on one chip (windowed layers cap at W;
    linear-attention layers add their fixed-size state)."""
    c = np.asarray(ctx, dtype=np.float64)
    per_tok = kv_bytes_per_token_per_chip(model, plan)
    if model.sliding_window and model.mla is None:
        full_frac = kv_full_fraction(model, plan)
        return per_tok * (full_frac * c + (1 - full_frac) * np.minimum(c, model.sliding_window))
    if model.linear_attention is not None:
        return per_tok * c + state_bytes_per_seq_per_chip(model, plan)
    return per_tok * c


def activation_bytes_per_chip(model: ModelSpec, plan: InferencePlan, tokens: ArrayLike) -> F:
    """Peak transient activations of a forward over ``tokens`` new tokens: the widest layer
    input/output pair plus fp32 logits of one position per sequence (upper bound: all).
    ``tokens`` are the replica's; each attention data-parallel rank holds 1/dp of them."""
    T = np.asarray(tokens, dtype=np.float64) / plan.dp
    a = DTYPE_BYTES[plan.act_dtype]
    hq = -(-model.n_heads // plan.tp)
    widest = max(2 * -(-model.d_ff // plan.tp), hq * model.head_dim * 3, model.d_model)
    if model.global_attention is not None:
        widest = max(widest, hq * model.global_attention.head_dim * 3)
    if model.linear_attention is not None:
        widest = max(widest, linear_shape(model, plan.tp).in_width)
    if model.moe is not None:
        widest = max(widest, 2 * model.moe.moe_d_ff * model.moe.experts_per_token)
    return T * (2 * model.d_model + widest) * a


@dataclass(frozen=True, kw_only=True)
class MemoryBreakdown:
    """Bytes per chip."""

    weights: float
    kv_cache: F
    activations: F
    reserve: float
    capacity: float

    @property
    def total(self) -> F:
        return self.weights + self.kv_cache + self.activations + self.reserve

    @property
    def free(self) -> F:
        return self.capacity - self.total

    @property
    def fits(self) -> NDArray[np.bool_]:
        return self.free >= 0


def memory_breakdown(
    model: ModelSpec,
    dev: Device,
    plan: InferencePlan,
    batch: ArrayLike,
    ctx: ArrayLike,
    prefill_tokens: ArrayLike,
) -> MemoryBreakdown:
    """Footprint of ``batch`` sequences of up to ``ctx`` tokens while prefilling at most
    ``prefill_tokens`` tokens in one step."""
    B = np.asarray(batch, dtype=np.float64)
    weights = weight_bytes_per_chip(model, plan)
    return MemoryBreakdown(
        weights=weights,
        kv_cache=B * kv_bytes_per_seq_per_chip(model, plan, ctx),
        activations=activation_bytes_per_chip(model, plan, prefill_tokens),
        reserve=dev.reserve_bytes(weights),
        capacity=dev.hbm_bytes,
    )

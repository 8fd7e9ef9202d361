"""Model FLOPs of training, for MFU and for frameworks' own FLOP counters.

Per token, forward: ``2 N_mm + 4 L H hd · (S+1)/2`` — two FLOPs per multiply-add over the
active linear-layer weights N_mm (attention, MLP or routed + shared experts, and the LM head;
the embedding lookup has none), plus the causal attention matmuls (QK^T and PV over on average
(S+1)/2 keys). Training = 3x forward (backward = dgrad + wgrad, Kaplan et al. 2020;
Narayanan et al. 2021 eq. 3); LoRA = 2x (the frozen base needs no weight gradients).
MFU counts these model FLOPs (PaLM, Chowdhery et al. 2022, App. B); HFU adds recomputation.
"""

from __future__ import annotations

from ..catalog.schema import ModelSpec
from ..ops.linear_attention import chunked_flops_per_token
from ..parallel.memory import active_params, param_counts


def matmul_params(model: ModelSpec) -> float:
    """Active linear-layer parameters per token (LM head included, embedding lookup not)."""
    pc = param_counts(model)
    head = pc["lm_head"] if not model.tied_embeddings else pc["embedding"]
    return active_params(model) - pc["embedding"] - pc["lm_head"] - pc["norms"] + head


def attended_keys(model: ModelSpec, seq_len: float, *, causal: bool = True) -> float:
    """Keys one query attends to, averaged over positions and layers: (S+1)/2 causal (S not),
    and with sliding-window layers (``sliding_window`` W, every ``sliding_window_every``-th
    layer full) ``f·keys + (1-f)·min(keys, W)``, f the fraction of full-attention layers. The
    fused kernels skip the tiles outside the window (FlashAttention and cuDNN FusedAttention
    with ``window_size=(W, 0)``: Transformer Engine PR #992, cuDNN >= 9.2, NVIDIA/
    TransformerEngine PR #2624), so the windowed layers cost their window, not the sequence."""
    keys = (seq_len + 1) / 2.0 if causal else float(seq_len)
    if model.sliding_window:
        every = model.sliding_window_every
        full_frac = (1.0 / every) if every else 0.0
        return full_frac * keys + (1 - full_frac) * min(keys, model.sliding_window)
    return keys


def attention_flops_per_token(model: ModelSpec, seq_len: float, *, causal: bool = True) -> float:
    """Forward attention-matmul FLOPs per token (QK^T and PV), all layers."""
    if model.mla is not None:
        per_head = model.head_dim + model.mla.v_head_dim
    else:
        per_head = 2 * model.head_dim
    keys_w = attended_keys(model, seq_len, causal=causal)
    la = model.linear_attention
    if la is None:
        return 2.0 * model.n_layers * model.n_heads * per_head * keys_w
    # Gated DeltaNet hybrid: softmax attention in its full-attention layers only, and the
    # chunked gated delta rule's matrix FLOPs in the others (ops/linear_attention.py)
    dk, dv = la.k_head_dim, la.v_head_dim
    gdn = chunked_flops_per_token(la.kind, la.n_k_heads, la.n_v_heads, dk, dv, la.chunk)
    softmax = 2.0 * model.n_attention_layers * model.n_heads * per_head * keys_w
    return softmax + model.n_linear_layers * gdn


def forward_flops_per_token(model: ModelSpec, seq_len: float) -> float:
    return 2.0 * matmul_params(model) + attention_flops_per_token(model, seq_len)


def model_flops_per_token(model: ModelSpec, seq_len: float, *, method: str = "full") -> float:
    """Training model FLOPs per token: 3x forward (full), 2x forward (LoRA)."""
    return (3.0 if method == "full" else 2.0) * forward_flops_per_token(model, seq_len)


def framework_flops_per_seq(
    model: ModelSpec, seq_len: int, *, params: str = "total", causal: bool = True
) -> float:
    """Per-sequence training FLOPs as a framework's counter computes them:
    ``6 * N * S + 3 * attention`` with N = all parameters (``"total"``, MaxText's
    ``6 * num_params``) or the linear-layer ones (``"matmul"``); attention causal (halved) or
    not (MaxText before 2023-11-08)."""
    n = sum(param_counts(model).values()) if params == "total" else matmul_params(model)
    return seq_len * (6.0 * n + 3.0 * attention_flops_per_token(model, seq_len, causal=causal))

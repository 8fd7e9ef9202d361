"""Gated DeltaNet layers (Qwen3-Next, Qwen3.5): per-chip shapes, FLOPs and bytes, shared by the
reference op list (:mod:`..inference.forward`), the lean kernel (:mod:`..inference.kernel`) and the
memory model (:mod:`..parallel.memory`).

A Gated DeltaNet layer (Yang, Kautz and Hatamizadeh, "Gated Delta Networks: Improving Mamba2
with Delta Rule", ICLR 2025; Hugging Face ``Qwen3NextGatedDeltaNet``) runs, per token:

* ``in_proj_qkvz`` (D -> 2 nk dk + 2 nv dv) and ``in_proj_ba`` (D -> 2 nv): GEMMs;
* a causal depthwise convolution of width ``conv_kernel`` over the q, k, v channels
  (``2 nk dk + nv dv``);
* the gated delta rule per value head on a ``dk x dv`` state S (q and k heads shared by
  ``nv / nk`` value heads):
  ``S <- alpha S + beta k (v - S^T k)^T``, output ``S^T q``;
* an RMSNorm of the output gated by ``silu(z)``, and ``out_proj`` (nv dv -> D): a GEMM.

Tensor parallelism splits the heads (vLLM and SGLang shard ``linear_num_key_heads`` and
``linear_num_value_heads`` over the TP ranks).

**Decode** (one token per sequence, the fused recurrent kernel): the state is read and written
once per step, ``2 nv dk dv`` values of ``state_dtype`` per sequence and layer; the arithmetic
is ``DECODE_FLOPS_PER_STATE`` = 7 FLOPs per state element (decay 1, ``S^T k`` 2, rank-1 update
2, ``S^T q`` 2), on the vector units: under one FLOP per byte, so memory-bound on every chip.

**Prefill** (chunked form, ``chunk_gated_delta_rule`` of flash-linear-attention with chunks of
``CHUNK`` = 64 tokens, the kernel vLLM and SGLang run): per token and value head,
``2 C (3 dk + 2 dv)`` FLOPs inside the chunk (``K K^T``, ``T K``, ``Q K^T``; ``T V``, the
masked scores times the values) and ``6 dk dv`` across chunks (``W S``, ``Q S``, ``K^T V``), as
matrix products at the attention rate; each chunk's state is written and read once
(``2 nv dk dv`` 16-bit values per ``C`` tokens).

Three kernels per layer besides the projections (vLLM's ``causal_conv1d``, the gated delta
rule, the gated RMSNorm), each streaming its activations: the convolution reads and writes the
q, k, v channels (``2 (2 nk dk + nv dv) a`` bytes per token), the recurrence reads them and
writes its output (``(2 nk dk + 2 nv dv) a``), the norm reads the output and the gate and writes
the result (``3 nv dv a``). The serving cache holds, per sequence and layer, the state
(``nv dk dv`` values in ``state_dtype``) and the convolution's last ``conv_kernel - 1`` inputs
(16-bit), whatever the context length; every step reads and writes it once per sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.schema import ModelSpec
from ..units import DTYPE_BYTES

CHUNK = 64.0
"""tokens per chunk of flash-linear-attention's chunked gated delta rule (``BT = 64``)"""
DECODE_FLOPS_PER_STATE = {"gated-deltanet": 7.0, "mamba2": 5.0}
"""FLOPs per state element per decoded token. Gated DeltaNet: decay, S^T k, rank-1 update,
S^T q. Mamba-2 (``selective_state_update``): decay, dt B x^T, C h."""
CONV_STATE_BYTES = 2.0
"""the convolution's cached inputs stay in the model's 16-bit format"""
CHUNK_STATE_BYTES = 2.0
"""per-chunk states of the chunked kernel, 16-bit (the final state is in ``state_dtype``)"""


def in_width(kind: str, nk: float, nv: float, dk: float, dv: float) -> float:
    """Output width of a layer's input projections: q/k (Mamba-2: B/C per group), v and the
    gate z (Mamba-2: x and z) per value head, and per value head beta and alpha (Gated
    DeltaNet) or dt (Mamba-2)."""
    return 2 * nk * dk + 2 * nv * dv + (2 if kind == "gated-deltanet" else 1) * nv


def chunked_flops_per_token(
    kind: str, nk: float, nv: float, dk: float, dv: float, chunk: float
) -> float:
    """Matrix FLOPs of the chunked (prefill) form per token, all heads of one chip.

    Gated DeltaNet (flash-linear-attention's ``chunk_gated_delta_rule``), per value head:
    ``2 C (3 dk + 2 dv)`` inside the chunk (``K K^T``, the WY transform of K, ``Q K^T``; of V,
    the masked scores times the values) and ``6 dk dv`` across chunks (``W S``, ``Q S``,
    ``K^T V``). Mamba-2 (state-space duality, Dao and Gu 2024), per head ``2 C dv`` (the masked
    scores times x) and ``4 dk dv`` (chunk states ``B^T x`` and outputs ``C h``), plus
    ``2 C dk`` per group for the scores ``C B^T``."""
    if kind == "gated-deltanet":
        return nv * (2.0 * chunk * (3 * dk + 2 * dv) + 6.0 * dk * dv)
    return nv * (2.0 * chunk * dv + 4.0 * dk * dv) + nk * 2.0 * chunk * dk


@dataclass(frozen=True)
class LinearShape:
    """One linear-attention layer's dimensions on one chip of a ``tp``-way shard (Mamba-2:
    nk = groups, nv = heads, dk = state size, dv = head dim)."""

    kind: str
    nk: int  # query/key heads on this chip (Mamba-2: B/C groups)
    nv: int  # value heads on this chip
    dk: int
    dv: int
    conv_kernel: int
    state_bytes: float  # bytes per state element
    chunk: float = CHUNK

    @property
    def conv_channels(self) -> int:
        """q, k and v channels through the convolution (Mamba-2: x, B and C)."""
        return 2 * self.nk * self.dk + self.nv * self.dv

    @property
    def in_width(self) -> int:
        """Output width of the input projections."""
        return int(in_width(self.kind, self.nk, self.nv, self.dk, self.dv))

    @property
    def out_in(self) -> int:
        """Input width of ``out_proj``."""
        return self.nv * self.dv

    @property
    def state_elems(self) -> int:
        return self.nv * self.dk * self.dv

    def cache_bytes(self) -> float:
        """Per-sequence cache of the layer: the recurrent state and the convolution's inputs."""
        conv = (self.conv_kernel - 1) * self.conv_channels * CONV_STATE_BYTES
        return self.state_elems * self.state_bytes + conv

    def decode_flops_per_token(self) -> float:
        return DECODE_FLOPS_PER_STATE[self.kind] * self.state_elems

    def prefill_flops_per_token(self) -> float:
        return chunked_flops_per_token(self.kind, self.nk, self.nv, self.dk, self.dv, self.chunk)

    def core_token_bytes(self, act_bytes: float) -> float:
        """The recurrence's per-token traffic: q, k, v in, the output out."""
        return (self.conv_channels + self.nv * self.dv) * act_bytes

    def conv_token_bytes(self, act_bytes: float) -> float:
        """The convolution reads and writes the q, k, v channels."""
        return 2.0 * self.conv_channels * act_bytes

    def conv_flops_per_token(self) -> float:
        return 2.0 * self.conv_kernel * self.conv_channels

    def norm_token_bytes(self, act_bytes: float) -> float:
        """The gated RMSNorm reads the output and the gate z and writes the normed output."""
        return 3.0 * self.nv * self.dv * act_bytes

    def norm_flops_per_token(self) -> float:
        return 4.0 * self.nv * self.dv

    def prefill_state_bytes_per_token(self) -> float:
        """Per-chunk states written and read by the chunked kernel, per token."""
        return 2.0 * self.state_elems * CHUNK_STATE_BYTES / self.chunk

    def step_state_bytes_per_seq(self) -> float:
        """The cache read at the start of a step and written at its end, per sequence: the
        recurrent state and the convolution's inputs."""
        return 2.0 * self.cache_bytes()


def cache_bytes_per_seq(model: ModelSpec, tp: int) -> float:
    """Per-sequence cache of one linear-attention layer as a server holds it: ``state_slots``
    copies of the state and conv inputs (several under speculative decoding)."""
    la = model.linear_attention
    assert la is not None
    return la.state_slots * linear_shape(model, tp).cache_bytes()


def linear_shape(model: ModelSpec, tp: int) -> LinearShape:
    la = model.linear_attention
    assert la is not None
    return LinearShape(
        kind=la.kind,
        chunk=float(la.chunk),
        nk=-(-la.n_k_heads // tp),
        nv=-(-la.n_v_heads // tp),
        dk=la.k_head_dim,
        dv=la.v_head_dim,
        conv_kernel=la.conv_kernel,
        state_bytes=float(DTYPE_BYTES[la.state_dtype]),
    )


def linear_params_per_layer(model: ModelSpec, tp: int) -> float:
    """Parameters of one linear-attention layer on one chip: the projections, the
    convolution, the per-head decay and step parameters and the gated norm."""
    sh = linear_shape(model, tp)
    D = model.d_model
    if sh.kind == "mamba2":  # A_log, D, dt_bias per head; conv bias; grouped norm over d_inner
        extra = 3 * sh.nv + sh.conv_channels + sh.nv * sh.dv
    else:  # A_log, dt_bias per value head; the gated norm of one head's width
        extra = 2 * sh.nv + sh.dv
    return float(D * sh.in_width + sh.out_in * D + sh.conv_kernel * sh.conv_channels + extra)

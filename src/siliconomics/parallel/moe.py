"""Mixture-of-experts physics shared by inference and training: routing statistics, the
grouped expert GEMMs, router, permute/unpermute and the expert-parallel all-to-all.

Notation: T tokens entering the MoE layer on one expert-parallel group, E routed experts, k
experts per token, ep expert-parallel ranks (each holds E/ep experts), etp expert-tensor-parallel
ranks (each expert's FFN width split etp ways), D hidden size, Fe expert FFN width.

* Token-expert pairs per rank: ``rows = T·k/ep`` on average. Routing is a multinomial draw, so
  the busiest of ep ranks gets more. With uniform routing (the ideal the load-balancing loss or
  DeepSeek's bias update drives towards) a rank's load is Binomial(ep·rows, 1/ep), and the
  expected maximum of ep such loads is, by the Gaussian extreme-value approximation
  (Gumbel 1958; the ``sqrt(2 ln n)`` term of the expected max of n normals),
  ``rows · (1 + sqrt(2 ln(ep) · (1 - 1/ep) / rows))``. Every rank waits for the busiest
  (the grouped GEMM and the all-to-all are synchronous), so compute and receive traffic scale
  by that factor. With a ``capacity_factor`` cf (GShard-style token dropping, MaxText's
  ``capacity_factor``) every expert's buffer is padded to cf x its mean load, so the factor is
  cf whatever the routing. Real routers are also skewed
  by expert popularity: in inference (a trained router, no load-balancing loss at work) the
  per-expert loads have a coefficient of variation ``c`` (:data:`INFERENCE_EXPERT_LOAD_CV`), so a
  rank's load (E/ep experts) adds ``c²·ep/E`` to its squared CV and the busiest rank carries
  ``rows · (1 + sqrt(2 ln(ep) · ((1 - 1/ep)/rows + c²·ep/E)))``. Training keeps c = 0:
  benchmarks force-balance the routing (Megatron-Bridge) or train with a balancing loss, and
  replicated hot experts (DeepSeek EPLB) bring inference close to that bound too.
* Experts touched per rank: with T tokens each choosing k of E experts, a given expert is hit
  with probability ``1 - (1 - k/E)^T``; the rank streams the weights of those experts only.
* Grouped GEMM: see :func:`..ops.roofline.grouped_gemm` (per-expert tile padding on GPUs, array
  fill on systolic arrays, waves over all experts' tiles).
* Router: the ``T x D @ D x E`` gating GEMM, then softmax/sigmoid + top-k over ``T·E`` fp32
  scores (read and write, ~10 FLOPs each), a memory-bound op.
* Permute / unpermute: tokens are gathered into expert-sorted order before the experts and
  scattered back (weighted sum of k outputs) after: each reads T·D and writes T·k·D values
  (or the reverse), ``2·T·D·(1 + k)·bytes`` in all (Megatron-Core ``moe_permute``/``unpermute``,
  TensorRT-LLM / SGLang expand-and-reduce kernels).
* LatentMoE (NVIDIA Nemotron 3 Super/Ultra, ``moe.latent_dim`` = ℓ): each routed token is
  projected ``D -> ℓ`` before the permute and dispatch and ``ℓ -> D`` after the combine and
  unpermute (``fc1_latent_proj`` / ``fc2_latent_proj``; vLLM's ``NemotronHMoE`` holds them as
  ``ReplicatedLinear``, whole on every tensor-parallel rank, over the tokens that rank routes).
  Permute, the grouped GEMMs (``ℓ x Fe`` experts), unpermute and the all-to-all payload all run
  at width ℓ instead of D (W below: ℓ, or D without a latent); the router and the shared
  experts stay at D.
* All-to-all (expert parallelism across ranks): each rank sends its own ``T_r`` tokens to the
  ranks that own their experts; a token goes once to each distinct destination rank (DeepEP and
  TensorRT-LLM's wide-EP kernels deduplicate per rank), ``ep·(1 - (1 - 1/ep)^k)`` ranks on
  average. Dispatch carries activations in the compute format, combine returns 16-bit partial
  outputs. The collective is priced on the topology by
  :func:`.hierarchical.all_to_all_time`: scale-up links inside an NVSwitch / NVL72 / torus
  domain, the NIC for the share bound for other domains.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..catalog.schema import ModelSpec
from ..ops.device import Device
from ..ops.roofline import OpCost, comm_op, gemm, grouped_gemm, memory_op
from . import hierarchical as coll

F = NDArray[np.float64]

#: Coefficient of variation of the per-expert token loads of a trained router at inference,
#: without expert replication: DeepSeek-R1, EP32 on GB200, machine-translation data, no EPLB,
#: per expert slot std 164.1 tokens on a mean of 128 (TensorRT-LLM tech blog 4, "Scaling
#: Expert Parallelism in TensorRT-LLM (Part 1)", Table 1; per rank 491.6 on 1024, i.e.
#: 1.28/sqrt(8), as independent experts predict). Other models and datasets differ (the blog
#: finds the skew dataset-dependent); applied to every MoE model in inference, a stated
#: assumption.
INFERENCE_EXPERT_LOAD_CV = 164.1 / 128.0


def _quant_flops(elems: ArrayLike, a_bytes: float) -> F:
    """Vector FLOPs of quantising ``elems`` values to a sub-16-bit format on the fly: a block
    amax (1 compare per value), a scale and a multiply-round per value, ~3 per value; zero for
    16-bit inputs (no quantisation)."""
    e = np.asarray(elems, dtype=np.float64)
    return np.asarray(3.0 * e if a_bytes < 2.0 else 0.0 * e, dtype=np.float64)


def imbalance(
    rows_per_rank: ArrayLike,
    ranks: ArrayLike,
    capacity_factor: float | None = None,
    *,
    load_cv: float = 0.0,
    n_experts: int = 1,
) -> F:
    """Expected (busiest rank load) / (mean load) for ``ranks`` expert-parallel ranks that each
    receive ``rows_per_rank`` token-expert pairs on average (module docstring); ``load_cv`` is
    the per-expert popularity skew of ``n_experts`` experts (0: uniform routing); a capacity
    factor (padded expert buffers) replaces it."""
    m = np.maximum(np.asarray(rows_per_rank, dtype=np.float64), 1e-9)
    n = np.maximum(np.asarray(ranks, dtype=np.float64), 1.0)
    c = 2.0 * np.log(n) * (1.0 - 1.0 / n)
    skew = 2.0 * np.log(n) * load_cv**2 * n / n_experts
    f = 1.0 + np.sqrt(c / m + skew)
    if capacity_factor:
        f = np.full_like(f, capacity_factor)
    return np.asarray(f, dtype=np.float64)


def experts_hit(tokens: ArrayLike, n_local: ArrayLike, n_experts: int, k: int) -> F:
    """Expected number of a rank's ``n_local`` experts that at least one of ``tokens`` picks."""
    T = np.asarray(tokens, dtype=np.float64)
    p_miss = (1.0 - k / n_experts) ** T
    return np.asarray(n_local, dtype=np.float64) * (1.0 - p_miss)


def distinct_ranks(k: int, ep: ArrayLike) -> F:
    """Expected number of distinct expert-parallel ranks one token is sent to (its k experts
    drawn uniformly over ep ranks)."""
    n = np.maximum(np.asarray(ep, dtype=np.float64), 1.0)
    return n * (1.0 - (1.0 - 1.0 / n) ** k)


def expert_ops(
    dev: Device,
    model: ModelSpec,
    *,
    local_tokens: ArrayLike,
    group_tokens: ArrayLike,
    ep: ArrayLike,
    etp: ArrayLike,
    compute_dtype: str,
    a_bytes: float,
    w_bytes: float,
    out_bytes: float,
    capacity_factor: float | None = None,
    weight_stream: float = 1.0,
    grouped_efficiency: float | None = None,
    load_cv: float = 0.0,
) -> list[OpCost]:
    """Router, permute, the two grouped expert GEMMs, their activation and unpermute for one MoE
    layer on one rank (forward only).

    ``local_tokens`` are the tokens this rank routes, permutes and unpermutes; ``group_tokens``
    those whose experts live in this rank's expert-parallel group of ``ep`` ranks: the rank
    computes ``group_tokens·k/ep`` pairs (times the busiest-rank imbalance) at width Fe/etp.
    ``weight_stream``: fraction of the streaming bandwidth the grouped GEMMs reach on their
    weights (:meth:`..ops.device.Device.weight_stream_factor`; inference passes it, training
    keeps 1: its expert GEMMs are compute-bound); ``grouped_efficiency``: fraction of the
    peak they reach (inference passes :meth:`..ops.device.Device.grouped_gemm_peak_efficiency`;
    default, and training: the profile's GEMM efficiency); ``load_cv``: expert popularity skew
    (:func:`imbalance`; inference passes :data:`INFERENCE_EXPERT_LOAD_CV`, training 0)."""
    assert model.moe is not None
    moe = model.moe
    E, k = moe.n_experts, moe.experts_per_token
    T = np.asarray(group_tokens, dtype=np.float64)
    Tl = np.asarray(local_tokens, dtype=np.float64)
    ep_ = np.asarray(ep, dtype=np.float64)
    fe = np.ceil(moe.moe_d_ff / np.asarray(etp, dtype=np.float64))
    mats_in = 2 if model.gated else 1
    D, W = model.d_model, model.expert_width
    mean_rows = T * k / ep_
    rows = mean_rows * imbalance(mean_rows, ep_, capacity_factor, load_cv=load_cv, n_experts=E)
    n_local = E / ep_
    hit = experts_hit(T, n_local, E, k)
    rd = dev.attention_dtype("bf16", "fp16")  # the router runs in 16 bits (fp32 scores)
    ops = [
        gemm(dev, "router", Tl, E, D, compute_dtype=rd, a_bytes=2.0, w_bytes=2.0, out_bytes=4.0),
        memory_op(dev, "router_topk", 8.0 * Tl * E, 10.0 * Tl * E),
    ]
    latent = moe.latent_dim

    def projection(name: str, n: int, k: int) -> OpCost:
        """One of LatentMoE's D <-> latent projections over the tokens this rank routes."""
        return gemm(
            dev,
            name,
            Tl,
            n,
            k,
            compute_dtype=compute_dtype,
            a_bytes=a_bytes,
            w_bytes=w_bytes,
            out_bytes=out_bytes,
        )

    if latent is not None:  # LatentMoE's D -> latent projection of the routed tokens
        ops.append(projection("moe_latent_down", latent, D))
    # Expand: read each token once in the 16-bit residual format, write its k copies in
    # the GEMM input format (the quantisation is fused into the expand kernel).
    ops.append(
        memory_op(
            dev,
            "moe_permute",
            Tl * W * (out_bytes + k * a_bytes),
            _quant_flops(Tl * k * W, a_bytes),
        )
    )

    def grouped(name: str, n: F, kk: F | int) -> OpCost:
        return grouped_gemm(
            dev,
            name,
            rows,
            n,
            kk,
            hit,
            compute_dtype=compute_dtype,
            a_bytes=a_bytes,
            w_bytes=w_bytes,
            out_bytes=out_bytes,
            weight_stream=weight_stream,
            efficiency=grouped_efficiency,
        )

    ops.append(grouped("moe_up", mats_in * fe, W))
    # The up GEMM writes 16-bit outputs; the activation (SwiGLU) reads them and writes the
    # down GEMM's input, quantised to the compute format in the same kernel.
    act_bytes = rows * fe * (mats_in * out_bytes + a_bytes)
    ops.append(
        memory_op(dev, "moe_act", act_bytes, 4.0 * rows * fe + _quant_flops(rows * fe, a_bytes))
    )
    ops.append(grouped("moe_down", W * np.ones_like(fe), fe))
    ops.append(memory_op(dev, "moe_unpermute", Tl * W * (1.0 + k) * out_bytes, 2.0 * Tl * k * W))
    if latent is not None:  # and back: latent -> D
        ops.append(projection("moe_latent_up", D, latent))
    return ops


def dispatch_combine(
    dev: Device,
    model: ModelSpec,
    *,
    tokens_per_rank: ArrayLike,
    ep: ArrayLike,
    stride: ArrayLike,
    dispatch_bytes: float,
    combine_bytes: float = 2.0,
    capacity_factor: float | None = None,
    dedup: bool = True,
    load_cv: float = 0.0,
) -> OpCost:
    """Expert-parallel all-to-all of one MoE layer's forward: dispatch (each rank sends its
    ``tokens_per_rank`` tokens to the ranks owning their experts) plus combine (the expert
    outputs come back). ``stride`` is the rank distance between members of the ep group.
    ``dedup=False``: every token-expert pair travels on its own (Megatron-Core's ``alltoall``
    token dispatcher permutes the tokens into expert order first, so a token with two experts
    on one rank is sent twice): ``k`` copies per token instead of the distinct ranks.
    ``load_cv``: expert popularity skew of the busiest receiver (:func:`imbalance`)."""
    assert model.moe is not None
    k = model.moe.experts_per_token
    ep_ = np.asarray(ep, dtype=np.float64)
    tok = np.asarray(tokens_per_rank, dtype=np.float64)
    copies = distinct_ranks(k, ep_) if dedup else np.full_like(ep_, float(k))
    sends = tok * copies * model.expert_width
    # The busiest rank receives imbalance x the mean: the collective ends when it has.
    mean_rows = tok * k
    skew = imbalance(
        mean_rows, ep_, capacity_factor, load_cv=load_cv, n_experts=model.moe.n_experts
    )
    nbytes = sends * (dispatch_bytes + combine_bytes)
    busiest = sends * skew
    t = coll.all_to_all_time(dev, busiest * dispatch_bytes, ep_, stride) + coll.all_to_all_time(
        dev, busiest * combine_bytes, ep_, stride
    )
    return comm_op("ep_all_to_all", np.where(ep_ > 1, nbytes, 0.0), np.where(ep_ > 1, t, 0.0))

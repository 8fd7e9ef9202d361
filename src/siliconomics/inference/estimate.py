"""Latency and throughput of one deployment: static batches and max-throughput operation.

* Static batch (``static_batch`` / ``latency`` scenarios): prefill of the whole batch
  (TTFT), then ``output_len - 1`` decode steps at growing context. TPOT is the mean decode step,
  integrated over the context with a 4-point midpoint rule (decode time is nearly affine in
  context, so this is accurate to well under 1%).
* Max throughput (``offline``): continuous batching in steady state. The running batch B is the
  smaller of the engine limit and what the free memory holds at the average context
  ``input + output/2`` (paged KV cache). Each request costs one prefill of ``input`` tokens
  (batched up to ``max_prefill_tokens`` per step) and ``output`` decode slots, so per replica
  ``tokens/s = B * O / (B * I * t_prefill_per_token + O * t_decode(B))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..catalog.schema import ChipSpec, EfficiencyProfile, ModelSpec
from ..errors import DoesNotFitError, SiliconomicsError
from ..ops.device import Device
from ..parallel.memory import (
    MemoryBreakdown,
    activation_bytes_per_chip,
    kv_bytes_per_seq_per_chip,
    memory_breakdown,
    state_bytes_per_seq_per_chip,
    weight_bytes_per_chip,
)
from ..parallel.plan import InferencePlan
from ..units import fmt_si
from . import adp, buckets, graphs, speculative
from .forward import ForwardCost, forward_cost
from .speculative import Speculative

F = NDArray[np.float64]
_QUAD = (np.arange(4) + 0.5) / 4.0  # midpoints of 4 equal context slices


def make_device(chip: ChipSpec, eff: EfficiencyProfile) -> Device:
    """A chip with the efficiency profile of its stack (the edge picks the profile)."""
    return Device(chip=chip, eff=eff)


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """Result of one (or an array of) inference configuration(s) for one replica layout."""

    model: ModelSpec
    device: Device
    plan: InferencePlan
    scenario: str
    batch: F
    input_len: F
    output_len: F
    ttft_s: F
    tpot_s: F
    e2e_s: F
    output_tokens_per_s: F
    """whole deployment (all replicas)"""
    prefill: ForwardCost
    decode: ForwardCost
    """decode step at the mid-generation context (for the breakdown)"""
    memory: MemoryBreakdown
    prefill_time_share: F
    """fraction of busy time spent in prefill (to split cost between input and output)"""
    assumptions: tuple[str, ...] = ()
    """stated assumptions the model had to make (unpublished peaks, defaults)"""
    spec: Speculative | None = None
    """speculative decoding the estimate priced (None: one token per decode step)"""
    shapes: buckets.Buckets | None = None
    """compiled sequence buckets a static batch ran padded to (None: none)"""

    @property
    def output_tokens_per_s_per_chip(self) -> F:
        return self.output_tokens_per_s / self.plan.chips

    @property
    def decode_bound(self) -> NDArray[np.str_]:
        return _bound_name(self.decode)

    @property
    def prefill_bound(self) -> NDArray[np.str_]:
        return _bound_name(self.prefill)


def _bound_name(fc: ForwardCost) -> NDArray[np.str_]:
    shares = fc.bound_shares()
    names = list(shares)
    stacked = np.stack(np.broadcast_arrays(*[np.asarray(v) for v in shares.values()]))
    return np.asarray(names)[np.argmax(stacked, axis=0)]


def _check_lengths(batch: F, input_len: F, output_len: F) -> None:
    for name, v in (("batch", batch), ("input_len", input_len), ("output_len", output_len)):
        if np.any(~np.isfinite(v)) or np.any(v < 1):
            raise SiliconomicsError(f"{name} must be >= 1, got {np.min(v):g}")


def _context_note(model: ModelSpec, input_len: F, output_len: F) -> tuple[str, ...]:
    """Running past the trained context is physically possible (vendors benchmark it) but
    the answer quality is not the model's: say so rather than refuse."""
    longest = float(np.max(input_len + output_len))
    if model.max_position is not None and longest > model.max_position:
        return (
            f"input + output = {longest:g} tokens exceeds {model.id}'s trained maximum "
            f"context of {model.max_position}: speed is modelled, output quality is not",
        )
    return ()


def _require_fit(
    mem: MemoryBreakdown, model: ModelSpec, dev: Device, plan: InferencePlan, what: str
) -> None:
    if np.all(mem.fits):
        return
    short = float(np.max(-mem.free))
    hint = suggest_tp(model, dev, plan)
    raise DoesNotFitError(
        f"{model.id} does not fit on {plan.chips_per_replica} x {dev.id} ({what}): needs "
        f"{fmt_si(float(np.max(mem.total)), 'B', binary=True)} per chip of "
        f"{fmt_si(mem.capacity, 'B', binary=True)} (weights "
        f"{fmt_si(mem.weights, 'B', binary=True)}, KV cache "
        f"{fmt_si(float(np.max(mem.kv_cache)), 'B', binary=True)}), short by "
        f"{fmt_si(short, 'B', binary=True)}",
        shortfall_bytes=short,
        suggestion=hint,
    )


def suggest_tp(model: ModelSpec, dev: Device, plan: InferencePlan) -> str:
    """The smallest tensor-parallel degree (within the scale-up domain) whose weights fit."""
    domain = dev.chip.interconnect.scale_up_domain
    for tp in (1, 2, 4, 8, 12, 16, 32, 64):
        if tp > max(domain, 1) * plan.pp or tp > model.n_heads:
            break
        ep = plan.ep if tp % plan.ep == 0 else 1
        p = InferencePlan(
            tp=tp,
            pp=plan.pp,
            ep=ep,
            weight_dtype=plan.weight_dtype,
            act_dtype=plan.act_dtype,
            kv_dtype=plan.kv_dtype,
        )
        w = weight_bytes_per_chip(model, p)
        free = dev.usable_bytes(w) - w
        if free > 0.1 * dev.hbm_bytes:
            return f"smallest tp that fits the weights with 10% left for KV cache: tp={tp}"
    return (
        "it does not fit within one scale-up domain; use pipeline stages (pp) or a "
        "narrower weight dtype"
    )


def _decode_mean(
    model: ModelSpec,
    dev: Device,
    plan: InferencePlan,
    B: F,
    ctx0: F,
    steps: F,
    shapes: buckets.Buckets | None = None,
) -> F:
    """Mean decode-step time over contexts ctx0 .. ctx0+steps (midpoint rule). With static
    shapes each step attends over its cache bucket, a step function of the context: the mean
    is taken over the buckets the steps cross, weighted by the steps spent in each
    (:func:`.buckets.decode_points`; the engine compiled for prompt + output tokens)."""
    if shapes is None:
        ctx = ctx0[..., None] + steps[..., None] * _QUAD
        fc = forward_cost(model, dev, plan, B[..., None], 1.0, ctx)
        return np.asarray(fc.time.mean(axis=-1), dtype=np.float64)
    lengths, w = buckets.decode_points(shapes, ctx0, steps, ctx0 + steps + 1.0)
    t = forward_cost(model, dev, plan, B[None, ...], 1.0, lengths).time
    return np.asarray(np.sum(w * t, axis=0), dtype=np.float64)


def estimate_static(
    model: ModelSpec,
    dev: Device,
    plan: InferencePlan,
    batch: ArrayLike,
    input_len: ArrayLike,
    output_len: ArrayLike,
    *,
    check_memory: bool = True,
    shapes: buckets.Buckets | None = None,
    spec: Speculative | None = None,
) -> Estimate:
    """Static batch: every sequence has ``input_len`` prompt and ``output_len`` new tokens
    (``dev``: the chip and its efficiency profile). ``shapes``: the deployment's compiled
    buckets; default: automatic buckets where the profile has ``shape_bucket_min`` (static-shape
    stacks), else none. ``spec``: speculative decoding with the model's MTP module
    (:mod:`.speculative`)."""
    plan.validate(model, dev)
    if spec is not None:
        speculative.check(model, spec)
        if shapes is not None or dev.eff.shape_bucket_min is not None:
            raise SiliconomicsError(
                "speculative decoding on a static-shape (bucketed) stack is not modelled"
            )
    B, I, O = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (batch, input_len, output_len))
    )
    _check_lengths(B, I, O)
    if shapes is None and dev.eff.shape_bucket_min is not None:
        shapes = buckets.Buckets(minimum=dev.eff.shape_bucket_min)
    mem_model = model if spec is None else speculative.memory_model(model, spec)
    mem = memory_breakdown(mem_model, dev, plan, B, I + O, B * I)
    if check_memory:
        _require_fit(mem, model, dev, plan, f"batch {np.max(B):g} x {np.max(I + O):g} tokens")
    steps = np.maximum(O - 1.0, 0.0)
    shape_notes: tuple[str, ...] = ()
    if shapes is None:
        prefill = forward_cost(model, dev, plan, B, I, 0.0)
        decode_mid = forward_cost(model, dev, plan, B, 1.0, I + steps / 2)
    else:
        I_run = buckets.prompt_length(shapes, I, I + O)
        prefill = forward_cost(model, dev, plan, B, I_run, 0.0)
        mid = buckets.cache_length(shapes, I + np.maximum(steps, 1.0) / 2, I + O)
        decode_mid = forward_cost(model, dev, plan, B, 1.0, mid)
        last = buckets.cache_length(shapes, I + steps, I + O)
        shape_notes = (
            buckets.describe(shapes, float(np.max(I)), float(np.max(I_run)), float(np.max(last))),
        )
    ttft = prefill.time
    if spec is None:
        tpot = _decode_mean(model, dev, plan, B, I, steps, shapes)
    else:
        decode_mid = speculative.step_cost(model, dev, plan, B, I + steps / 2, spec)
        tpot = _spec_step_mean(model, dev, plan, B, I, steps, spec) / spec.accepted
    e2e = ttft + steps * tpot
    tput = plan.replicas * B * O / e2e
    return Estimate(
        model=model,
        device=dev,
        plan=plan,
        scenario="static_batch",
        batch=B,
        input_len=I,
        output_len=O,
        ttft_s=ttft,
        tpot_s=np.where(steps > 0, tpot, 0.0),
        e2e_s=e2e,
        output_tokens_per_s=tput,
        prefill=prefill,
        decode=decode_mid,
        memory=mem,
        prefill_time_share=ttft / e2e,
        assumptions=_assumptions(dev, plan)
        + _padding_note(model, plan)
        + shape_notes
        + _context_note(model, I, O)
        + _mla_note(model, dev, plan)
        + _linear_note(model, plan)
        + _latent_note(model)
        + _spec_note(spec),
        spec=spec,
        shapes=shapes,
    )


def _spec_step_mean(
    model: ModelSpec, dev: Device, plan: InferencePlan, B: F, ctx0: F, steps: F, spec: Speculative
) -> F:
    """Mean speculative step time over contexts ctx0 .. ctx0+steps (as :func:`_decode_mean`)."""
    ctx = ctx0[..., None] + steps[..., None] * _QUAD
    fc = speculative.step_cost(model, dev, plan, B[..., None], ctx, spec)
    return np.asarray(fc.time.mean(axis=-1), dtype=np.float64)


def _spec_note(spec: Speculative | None) -> tuple[str, ...]:
    return () if spec is None else (spec.describe(),)


def max_batch(
    model: ModelSpec, dev: Device, plan: InferencePlan, ctx: ArrayLike, prefill_tokens: ArrayLike
) -> F:
    """Largest number of concurrent sequences of ``ctx`` tokens that fit in memory (may be 0)."""
    w = weight_bytes_per_chip(model, plan)
    free = dev.usable_bytes(w) - w - activation_bytes_per_chip(model, plan, prefill_tokens)
    per_seq = kv_bytes_per_seq_per_chip(model, plan, ctx)
    return np.maximum(np.floor(free / per_seq), 0.0)


def estimate_max_throughput(
    model: ModelSpec,
    dev: Device,
    plan: InferencePlan,
    input_len: ArrayLike,
    output_len: ArrayLike,
    *,
    batch_limit: ArrayLike | None = None,
    max_prefill_tokens: float = 8192.0,
    reserve_full_length: bool = False,
    aligned_context: bool = False,
    graph_batch_sizes: Sequence[float] | None = None,
    spec: Speculative | None = None,
) -> Estimate:
    """Steady-state continuous batching with every request available (MLPerf Offline)
    (``dev``: the chip and its efficiency profile).

    The KV cache holds the running batch at its average context ``input + output/2`` (paged
    cache allocated as tokens are generated, vLLM/SGLang). ``reserve_full_length``: the
    engine admits a request only once blocks for its whole ``input + output`` are free
    (TensorRT-LLM's default ``GUARANTEED_NO_EVICT`` capacity scheduler), so the batch that
    memory holds is sized at the full length. With attention data parallelism the dp ranks'
    context chunks fall independently unless ``aligned_context`` (coordinated context
    scheduling), which stretches the rank-local prefill work (:mod:`.adp`).
    ``graph_batch_sizes``: the engine replays generation-only steps from CUDA graphs captured
    at these batch sizes (per attention rank), padding the batch up to one (:mod:`.graphs`).
    ``spec``: speculative decoding with the model's MTP module (:mod:`.speculative`)."""
    plan.validate(model, dev)
    if spec is not None:
        speculative.check(model, spec)
        if graph_batch_sizes:
            raise SiliconomicsError("speculative decoding with CUDA-graph padding is not modelled")
    mem_model = model if spec is None else speculative.memory_model(model, spec)
    I, O = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (input_len, output_len)))
    _check_lengths(np.ones_like(I), I, O)
    # The prefill token budget is per engine; with attention data parallelism every dp rank
    # schedules its own (SGLang, TensorRT-LLM attention-DP).
    chunk = np.maximum(max_prefill_tokens * plan.dp, I)
    avg_ctx = I + O / 2.0
    held = I + O if reserve_full_length else avg_ctx
    cap = max_batch(mem_model, dev, plan, held, chunk)
    if batch_limit is not None:
        cap = np.minimum(cap, np.asarray(batch_limit, dtype=np.float64))
    mem0 = memory_breakdown(mem_model, dev, plan, np.maximum(cap, 1.0), held, chunk)
    if np.any(cap < 1):
        _require_fit(
            memory_breakdown(mem_model, dev, plan, 1.0, held, chunk),
            model,
            dev,
            plan,
            f"one sequence of {np.max(held):g} tokens",
        )
    B = np.maximum(cap, 1.0)
    # Prefill: as many whole prompts as fit in one chunk, batched.
    bp = np.maximum(np.floor(chunk / I), 1.0)
    prefill = forward_cost(model, dev, plan, bp, I, 0.0)
    t_prefill_tok = prefill.time / (bp * I)
    if plan.dp > 1 and not aligned_context:
        t_prefill_tok = t_prefill_tok * adp.unaligned_prefill_scale(
            prefill, plan.dp, B, I, O, max_prefill_tokens
        )
    # Decode: with pp > 1 the batch is split into pp micro-batches that fill the pipeline.
    micro = np.maximum(B / plan.pp, 1.0)
    if spec is None:
        t_dec = _decode_mean(model, dev, plan, micro, I, O)
    else:  # time per output token: a step emits `accepted` tokens per sequence
        t_dec = _spec_step_mean(model, dev, plan, micro, I, O, spec) / spec.accepted
    if graph_batch_sizes:
        # only steps with no context chunk on any rank replay a graph
        p = adp.context_step_share(B / plan.dp, I, O, max_prefill_tokens)
        pad = graphs.padding_time(model, dev, plan, micro, avg_ctx, graph_batch_sizes)
        t_dec = t_dec + (1.0 - p) ** plan.dp * pad
    decode_mid = (
        forward_cost(model, dev, plan, micro, 1.0, avg_ctx)
        if spec is None
        else speculative.step_cost(model, dev, plan, micro, avg_ctx, spec)
    )
    # With pp > 1 the pp micro-batches in flight carry context chunks too (in-flight batching
    # schedules each micro-batch on its own, as the simulator's pp virtual engines do), so the
    # stages prefill concurrently: the wall time of a token's prefill is its full-depth time
    # over pp, as for decode (t_dec is the full-depth time of a micro-batch of B/pp).
    busy_prefill = B * I * t_prefill_tok / plan.pp
    busy_decode = O * t_dec
    per_replica = B * O / (busy_prefill + busy_decode)
    tpot = t_dec + busy_prefill / O
    ttft = prefill.time  # unloaded; queueing belongs to the serving simulator
    return Estimate(
        model=model,
        device=dev,
        plan=plan,
        scenario="max_throughput",
        batch=B,
        input_len=I,
        output_len=O,
        ttft_s=ttft,
        tpot_s=tpot,
        e2e_s=ttft + O * tpot,
        output_tokens_per_s=plan.replicas * per_replica,
        prefill=prefill,
        decode=decode_mid,
        memory=mem0,
        prefill_time_share=busy_prefill / (busy_prefill + busy_decode),
        assumptions=_assumptions(dev, plan)
        + _padding_note(model, plan)
        + _context_note(model, I, O)
        + _mla_note(model, dev, plan)
        + _linear_note(model, plan)
        + _latent_note(model)
        + _spec_note(spec),
        spec=spec,
    )


def _padding_note(model: ModelSpec, plan: InferencePlan) -> tuple[str, ...]:
    """A tp that does not divide the heads is run as NxD Inference runs it: heads padded to a
    multiple of tp (vLLM and TensorRT-LLM refuse such a tp). Say so, with the waste."""
    if model.n_heads % plan.tp == 0:
        return ()
    per = -(-model.n_heads // plan.tp)
    padded = per * plan.tp
    return (
        f"tp={plan.tp} does not divide the {model.n_heads} attention heads: padded to {padded} "
        f"({per} per chip, {100 * (padded - model.n_heads) / padded:.0f}% of attention work "
        "wasted) as NxD Inference pads; vLLM and TensorRT-LLM refuse such a tp",
    )


def _linear_note(model: ModelSpec, plan: InferencePlan) -> tuple[str, ...]:
    """What a Gated DeltaNet / Mamba-2 hybrid adds to the answer: which layers cache no KV,
    and the fixed-size state every sequence holds instead (docs/MODEL.md)."""
    la = model.linear_attention
    if la is None:
        return ()
    state = state_bytes_per_seq_per_chip(model, plan)
    kind = "Gated DeltaNet" if la.kind == "gated-deltanet" else "Mamba-2"
    what = "linear attention" if la.kind == "gated-deltanet" else "Mamba-2 mixers"
    return (
        f"{kind}: {model.n_linear_layers} of {model.n_layers} layers are {what} "
        f"with no KV cache; each sequence holds {state / 2**20:.1f} MiB of "
        f"{la.state_dtype} state and conv inputs per chip whatever its length, read and "
        "written once per decode step (recurrent form on the vector units; prompt chunks in "
        "the chunked form)",
    )


def _latent_note(model: ModelSpec) -> tuple[str, ...]:
    """LatentMoE (docs/MODEL.md): the routed experts and their all-to-all at a latent width."""
    if model.moe is None or model.moe.latent_dim is None:
        return ()
    lat, D = model.moe.latent_dim, model.d_model
    return (
        f"LatentMoE: routed tokens are projected {D:,} -> {lat:,} before dispatch and back "
        f"after combine (two projections whole on every tensor-parallel rank); the experts, "
        f"permute and all-to-all run at {lat:,} ({D / lat:.0f}x less traffic per token than "
        "at the hidden size), the router and shared experts at the hidden size",
    )


def _mla_note(model: ModelSpec, dev: Device, plan: InferencePlan) -> tuple[str, ...]:
    if model.mla is None:
        return ()
    basis = (
        "published MLA decode kernel benchmarks"
        if dev.eff.mla_decode_efficiency is not None
        else "no MLA kernel figure for this family: its fused-attention efficiency"
    )
    d = dev.mla_decode_dtype(plan.act_dtype, plan.kv_dtype)
    if model.dsa is not None:
        x, e = model.dsa, dev.eff
        measured = (
            "published sparse MLA kernel benchmarks"
            if e.sparse_mla_decode_efficiency is not None
            else "no sparse MLA kernel figure for this family: its MLA decode factor"
        )
        dec = dev.sparse_mla_flops(plan.act_dtype, plan.kv_dtype, prefill=False)
        pre = dev.sparse_mla_flops(plan.act_dtype, plan.kv_dtype, prefill=True)
        peak = dev.peak_flops(d)
        return (
            f"DeepSeek Sparse Attention: MLA (MQA form, decode and prefill alike) over at most "
            f"{x.index_topk:,} selected tokens per query at {dec / peak:.2f} (decode) and "
            f"{pre / peak:.2f} (prefill) of the {dev.chip.id} {d} peak ({measured}); the "
            f"lightning indexer ({x.index_n_heads} heads x {x.index_head_dim}, "
            f"{dev.indexer_dtype()}, not split over tp) scores every cached token and its top-k "
            "reads the logits twice; its FP8 key cache adds "
            f"{x.index_head_dim + 4} bytes per token and layer",
        )
    return (
        f"MLA decode attention at {dev.mla_decode_efficiency:.2f} of the {dev.chip.id} {d} "
        f"peak ({basis}; the kernels run its matmuls in {d} whatever the cache format)",
    )


def _assumptions(dev: Device, plan: InferencePlan) -> tuple[str, ...]:
    return tuple(
        dev.assumptions(plan.compute_dtype, dev.attention_dtype(plan.act_dtype, plan.kv_dtype))
    )

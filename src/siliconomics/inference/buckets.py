"""Static-shape buckets: stacks whose compiler needs fixed tensor shapes run every prompt and
every decode step at a compiled sequence length, padding up to it.

AWS Neuron's inference libraries compile one program per *bucket*: a context-encoding bucket
for the prompt (the whole padded prompt is computed) and a token-generation bucket for each
decode step (attention reads the whole padded cache length). With automatic bucketing the
buckets are the powers of two from 128 up to the compiled maximum, which is itself the last
bucket (NxD Inference feature guide, "Bucketing": "Context encoding: Powers of two between
128 and the max context length. Token generation: Powers of two between 128 and the maximum
sequence length", aws-neuron/aws-neuron-sdk@81ce03ae
libraries/nxd-inference/developer_guides/feature-guide.rst; vLLM on Neuron the same,
vllm-user-guide-v1.rst; transformers-neuronx buckets its positions the same way). A
deployment may list its own buckets instead (``context_encoding_buckets`` /
``token_generation_buckets``).

The efficiency profile's ``shape_bucket_min`` turns automatic bucketing on for a family (the
smallest bucket, 128 on Neuron); without explicit lists the compiled maximum (the last bucket,
for prompts and cache alike: the maximum context length defaults to the sequence length) is
taken as the workload's prompt + output, the smallest engine that serves it. Pure functions
on numpy arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F = NDArray[np.float64]


@dataclass(frozen=True)
class Buckets:
    """The shapes one deployment was compiled for (empty tuple: automatic buckets)."""

    minimum: int
    """smallest automatic bucket (powers of two from here)"""
    context: tuple[int, ...] = ()
    """explicit context-encoding buckets (prompt lengths), ascending"""
    generation: tuple[int, ...] = ()
    """explicit token-generation buckets (cache lengths), ascending"""

    @staticmethod
    def explicit(context: Sequence[int], generation: Sequence[int]) -> Buckets:
        c, g = tuple(sorted(int(x) for x in context)), tuple(sorted(int(x) for x in generation))
        return Buckets(minimum=min((*c, *g), default=1), context=c, generation=g)


def _pow2_up(n: F, minimum: int, cap: F) -> F:
    """Smallest power of two >= n (at least ``minimum``), not past ``cap`` (the last bucket)."""
    n = np.maximum(n, 1.0)
    p = np.exp2(np.ceil(np.log2(n)))
    return np.minimum(np.maximum(p, float(minimum)), np.maximum(cap, n))


def _listed(n: F, buckets: tuple[int, ...]) -> F:
    """Smallest listed bucket >= n; a length past the largest runs unpadded."""
    b = np.asarray(buckets, dtype=np.float64)
    i = np.searchsorted(b, n, side="left")
    return np.where(i < len(b), b[np.minimum(i, len(b) - 1)], n)


def prompt_length(b: Buckets, prompt: F, seq_len: F) -> F:
    """Tokens the prefill computes for a prompt of ``prompt`` tokens (engine compiled for
    ``seq_len`` = prompt + output when the buckets are automatic: NxD Inference's maximum
    context length defaults to its sequence length)."""
    if b.context:
        return _listed(prompt, b.context)
    return _pow2_up(prompt, b.minimum, seq_len)


def cache_length(b: Buckets, ctx: F, seq_len: F) -> F:
    """Cache positions a decode step attends over at context ``ctx`` (engine compiled for
    ``seq_len`` = prompt + output when the buckets are automatic)."""
    if b.generation:
        return _listed(ctx, b.generation)
    return _pow2_up(ctx, b.minimum, seq_len)


def decode_points(b: Buckets, ctx0: F, steps: F, seq_len: F) -> tuple[F, F]:
    """Cache lengths and weights of a generation's decode steps: the steps attend over contexts
    ``ctx0 + 1 .. ctx0 + steps``, each padded to its bucket, so the mean step is
    ``sum_k w[k] * step(L[k])`` (``w`` sums to 1 where ``steps`` > 0). Returns arrays of shape
    ``(K, *broadcast shape)``: bucket ``k`` holds the steps whose context lies in
    ``(L[k-1], L[k]]``; with explicit buckets a last point stands for the steps past the largest
    bucket, which run unpadded (at their mean context)."""
    ctx0, steps, seq_len = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (ctx0, steps, seq_len))
    )
    lo, hi = ctx0, ctx0 + steps
    if b.generation:
        edges = np.asarray(b.generation, dtype=np.float64).reshape((-1,) + (1,) * lo.ndim)
        uppers = np.broadcast_to(edges, (len(b.generation), *lo.shape))
        lowers = np.concatenate([np.zeros((1, *lo.shape)), uppers[:-1]])
        lengths = uppers
        top = float(b.generation[-1])
        beyond_lo = np.maximum(lo, top)
        beyond = np.clip(hi - beyond_lo, 0.0, None)
        beyond_len = (beyond_lo + 1.0 + hi) / 2.0
    else:
        k_hi = int(np.ceil(np.log2(max(float(np.max(seq_len, initial=1.0)), 1.0))))
        k_lo = int(np.floor(np.log2(b.minimum)))
        pw = np.exp2(np.arange(k_lo, max(k_hi, k_lo) + 1, dtype=np.float64))
        pw = pw.reshape((-1,) + (1,) * lo.ndim)
        cap = np.maximum(seq_len, 1.0)
        uppers = np.minimum(np.maximum(pw, float(b.minimum)), cap)
        lowers = np.concatenate([np.zeros((1, *lo.shape)), uppers[:-1]])
        lengths = uppers
        beyond = None
    counts = np.clip(np.minimum(hi, uppers) - np.maximum(lo, lowers), 0.0, None)
    if beyond is not None:
        lengths = np.concatenate([lengths, beyond_len[None]])
        counts = np.concatenate([counts, beyond[None]])
    n = np.where(steps > 0, steps, 1.0)
    return np.ascontiguousarray(lengths), counts / n


def describe(b: Buckets, prompt: float, padded_prompt: float, last_cache: float) -> str:
    """One assumption line for an answer."""
    src = (
        f"context buckets {', '.join(map(str, b.context))}; generation buckets "
        f"{', '.join(map(str, b.generation))}"
        if b.context or b.generation
        else f"automatic buckets: powers of two from {b.minimum} up to the compiled length, "
        "taken as this workload's prompt + output"
    )
    return (
        f"static shapes ({src}): the {prompt:g}-token prompt runs as {padded_prompt:g} tokens "
        f"and decode attends over up to {last_cache:g} cached positions per step"
    )

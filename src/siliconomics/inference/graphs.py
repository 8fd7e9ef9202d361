"""Decode steps replayed from captured CUDA graphs, with the batch padded to a captured size.

An engine that captures CUDA graphs for a list of batch sizes and pads (TensorRT-LLM's PyTorch
executor with ``cuda_graph_config.enable_padding: true``: "batches are rounded up to the
nearest cuda_graph_batch_size", tensorrt_llm/llmapi/llm_args.py ``CudaGraphConfig``; vLLM and
SGLang pad to their capture sizes the same way) runs a generation-only step of ``b`` sequences
per attention rank as one of ``pad(b) = min{s in sizes : s >= b}`` sequences; a batch above the
largest size runs eagerly, unpadded. The dummy sequences carry no KV cache, so attention is
unchanged, but every token-proportional op (projections, MLP or experts, norms, all-reduce,
all-to-all, LM head) processes ``pad(b)`` tokens:

    t_decode(b) -> t_decode(b) + t_rest(pad(b)) - t_rest(b),

``t_rest`` the step's ops other than attention. Only generation-only steps are replayed from a
graph; mixed context + generation steps run eagerly, so the prefill side is not padded. With
power-of-two sizes the waste averages ~1/3 of the token-proportional work at large batch
(e.g. 1,400 sequences run as 2,048).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..catalog.schema import ModelSpec
from ..ops.device import Device
from ..parallel.plan import InferencePlan
from .forward import ForwardCost, forward_cost

F = NDArray[np.float64]


def padded_batch(batch: ArrayLike, sizes: Sequence[float]) -> F:
    """The captured size a batch of ``batch`` sequences runs as (itself above the largest)."""
    b = np.asarray(batch, dtype=np.float64)
    s = np.sort(np.asarray(sizes, dtype=np.float64))
    if s.size == 0:
        return b
    i = np.searchsorted(s, np.ceil(b - 1e-9), side="left")
    return np.asarray(np.where(i < s.size, s[np.minimum(i, s.size - 1)], b), dtype=np.float64)


def _rest_time(fc: ForwardCost) -> F:
    t: F = np.zeros(())
    for op in fc.ops:
        if op.op_class != "attention":  # attention, windowed attention, the DSA indexer
            t = t + op.time
    return t


def padding_time(
    model: ModelSpec,
    dev: Device,
    plan: InferencePlan,
    batch: ArrayLike,
    ctx: ArrayLike,
    sizes: Sequence[float],
) -> F:
    """Extra time of one decode step of ``batch`` sequences of the replica (``batch/dp`` per
    attention rank) when it is padded to a captured graph size (module docstring)."""
    B = np.asarray(batch, dtype=np.float64)
    per_rank = np.maximum(B / plan.dp, 1.0)
    pad = padded_batch(per_rank, sizes) * plan.dp
    real = forward_cost(model, dev, plan, B, 1.0, ctx)
    padded = forward_cost(model, dev, plan, pad, 1.0, ctx)
    extra = _rest_time(padded) - _rest_time(real)
    return np.asarray(np.where(pad > B, np.maximum(extra, 0.0), 0.0), dtype=np.float64)

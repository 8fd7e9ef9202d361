"""Attention data parallelism under in-flight batching: context chunks that do not line up.

With attention data parallelism (``plan.dp`` > 1) every dp rank schedules its own requests,
but the ranks run each step together (the MoE all-to-all synchronises them), so a step lasts
as long as its busiest rank. A rank that prefills a context chunk holds the others, which only
decode, waiting: the iteration time is ``max`` over ranks (TensorRT-LLM tech blog 10, "ADP
Balance Strategy", https://github.com/NVIDIA/TensorRT-LLM/blob/main/docs/source/blogs/
tech_blog/blog10_ADP_Balance_Strategy.md, "Mathematical Modeling": with round-robin request
placement and no coordinated waiting, DeepSeek-V3 on 8 GB200 with DP8/EP8 reached 25,664
tokens/s against 39,552 for perfectly balanced iterations; coordinating context phases across
ranks, ``attention_dp_config.enable_balance``, recovered 1.31-1.33x).

Model (steady state, every rank alike). A rank runs ``B_r = B/dp`` sequences; each request
spends ``S = O + ceil(I/C)`` steps in the engine and needs ``ceil(I/C)`` context steps, or
``1/floor(C/I)`` of one when several prompts share a chunk of ``C`` tokens. A given step
therefore carries a context chunk on a rank with probability

    p = min(1, B_r · c_req / S),   c_req = ceil(I/C) if I > C else 1 / floor(C/I).

If the ranks' context steps fall independently (no coordination), a fraction
``1 - (1 - p)^dp`` of steps carries at least one chunk and lasts as long as a chunk step, where
perfectly aligned ranks would need only ``p``: the rank-local part of the prefill (attention,
projections, norms, dense and shared FFN, router, permute, the all-to-all that the busiest
sender bounds, LM head) takes

    M = (1 - (1 - p)^dp) / p          (1 <= M <= dp)

times its aligned time. The routed-expert GEMMs and their activation see the tokens of all
ranks (expert parallelism), so their total work does not grow. ``M`` tends to 1 when every
step carries a chunk on every rank (prefill-heavy mixes) and to dp when chunks are rare
(short prompts, long outputs). Not modelled: the context length mix within a chunk (fixed
ISL/OSL rows need none) and partial overlap of a chunk with the waiting ranks' decode work.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .forward import ForwardCost

F = NDArray[np.float64]

EXPERT_SIDE = frozenset({"moe_up", "moe_down", "moe_act"})
"""ops that process the pooled tokens of all dp ranks (expert parallelism)"""


def context_step_share(
    batch_per_rank: ArrayLike, input_len: ArrayLike, output_len: ArrayLike, chunk: ArrayLike
) -> F:
    """``p``: the share of steps in which one dp rank runs a context chunk (module docstring);
    ``chunk`` is the rank's prefill token budget per step."""
    Br = np.maximum(np.asarray(batch_per_rank, dtype=np.float64), 1.0)
    I = np.maximum(np.asarray(input_len, dtype=np.float64), 1.0)
    O = np.maximum(np.asarray(output_len, dtype=np.float64), 1.0)
    C = np.maximum(np.asarray(chunk, dtype=np.float64), 1.0)
    ctx_steps = np.ceil(I / C)
    per_req = np.where(I > C, ctx_steps, 1.0 / np.maximum(np.floor(C / I), 1.0))
    return np.asarray(np.minimum(1.0, Br * per_req / (O + ctx_steps)), dtype=np.float64)


def unaligned_factor(p: ArrayLike, dp: int) -> F:
    """``M = (1 - (1 - p)^dp) / p``: how much longer the rank-local prefill work takes when
    the dp ranks' context steps fall independently instead of together."""
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1.0)
    return np.asarray((1.0 - (1.0 - q) ** dp) / q, dtype=np.float64)


def rank_local_time(fc: ForwardCost) -> F:
    """Time of the ops of a step that each dp rank runs on its own tokens (all but the
    routed-expert GEMMs and their activation)."""
    t: F = np.zeros(())
    for op in fc.ops:
        if op.name not in EXPERT_SIDE:
            t = t + op.time
    return t


def unaligned_prefill_scale(
    prefill: ForwardCost,
    dp: int,
    batch: ArrayLike,
    input_len: ArrayLike,
    output_len: ArrayLike,
    chunk_per_rank: ArrayLike,
) -> F:
    """Factor on a prefill step's time when the ``dp`` ranks of a replica running ``batch``
    sequences schedule their context chunks independently (1 for dp = 1)."""
    if dp <= 1:
        return np.ones(())
    p = context_step_share(
        np.asarray(batch, dtype=np.float64) / dp, input_len, output_len, chunk_per_rank
    )
    m = unaligned_factor(p, dp)
    t = np.maximum(prefill.time, 1e-30)
    return np.asarray((t + (m - 1.0) * rank_local_time(prefill)) / t, dtype=np.float64)

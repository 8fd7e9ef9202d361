"""LoRA and QLoRA fine-tuning: frozen base, trained low-rank adapters (Hu et al. 2021;
Dettmers et al. 2023).

Step cost, per frozen linear layer ``Y = X W`` (``[m x k] @ [k x n]``, forward ``2mnk``):
full training runs forward + dgrad ``dX = dY W^T`` + wgrad ``dW = X^T dY`` = ``3 · 2mnk``; a
frozen layer needs no wgrad, so ``2 · 2mnk`` — the backward of the base's linear layers is
halved, i.e. one third of their full-training work is skipped. Attention and the element-wise
ops still back-propagate in full (the adapters of earlier layers need dX), and the LM head
needs its dgrad. Each adapted projection adds two thin BF16 GEMMs ``X A`` (``[m x k] @ [k x r]``)
and ``(XA) B`` (``[m x r] @ [r x n]``) forward and their dgrads and wgrads backward; with
r = 16 they are memory-bound (they re-read X and dY), so they go through the roofline, not a
FLOP count. Adapters sit on the attention projections (QKV and output), as MLPerf's
llama2_70b_lora (NeMo ``target_modules: ['attention']``, ``adapter_dim 16``) and Hu et al. do.

Memory: the frozen base keeps its weights only — 16-bit, FP8 where the recipe stores FP8
parameters (MLPerf NeMo LoRA sets ``fp8_params`` with FP8), or 4-bit NormalFloat for QLoRA:
0.5 byte + double-quantised block constants 0.127 bit (Dettmers et al. 2023, §3: 64-value
blocks, 8-bit constants in 256-blocks) = 0.516 byte per parameter; gradients and optimizer
state exist for the adapters only. A frozen GEMM does not save its input for a weight
gradient (autograd saves X only when W requires grad), so the MLP inputs are not stored.

QLoRA computes in BF16: before each use of a frozen weight (forward, dgrad, and the recomputed
forward) the NF4 blocks are dequantised into a BF16 buffer — a memory-bound pass reading 0.516
and writing 2 bytes per weight (bitsandbytes ``dequantize_4bit`` ahead of the matmul).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import SiliconomicsError
from ..ops.device import Device
from ..ops.roofline import gemm, memory_op
from .kernels import gemm_time, memory_time
from .precision import Recipe

F = NDArray[np.float64]
METHODS: tuple[str, ...] = ("full", "lora", "qlora")
#: NF4 payload + double-quantised constants (Dettmers et al. 2023: 4 + 0.127 bits).
NF4_BYTES = (4.0 + 0.127) / 8.0
ACT_BYTES = 2.0


def check_method(method: str, dtype: str) -> None:
    """Raise a one-line error for an unknown method or a QLoRA run with a low-precision
    GEMM format (QLoRA dequantises to BF16 and computes there)."""
    if method not in METHODS:
        raise SiliconomicsError(f"method '{method}': allowed: {', '.join(METHODS)}")
    if method == "qlora" and dtype not in ("bf16", "fp16"):
        raise SiliconomicsError(
            f"method qlora computes in bf16 on dequantised 4-bit weights; --dtype {dtype} is "
            "not allowed with it (use bf16)"
        )


def frozen(method: str) -> bool:
    return method != "full"


def base_weight_bytes(method: str, r: Recipe) -> float:
    """Stored bytes per base parameter: 16-bit; FP8 for a frozen base under an FP8 recipe
    (``fp8_params``); NF4 for QLoRA."""
    if method == "qlora":
        return NF4_BYTES
    if method == "lora" and r.lowp:
        return r.payload_bytes
    return 2.0


def dequant_time(dev: Device, method: str, k: ArrayLike, n: ArrayLike) -> F:
    """Seconds to dequantise one frozen ``k x n`` NF4 weight to BF16 (QLoRA), else 0."""
    w = np.asarray(k, dtype=np.float64) * np.asarray(n, dtype=np.float64)
    if method != "qlora":
        return 0.0 * w
    return memory_op(dev, "nf4-dequant", w * (NF4_BYTES + ACT_BYTES)).time


def adapter_times(dev: Device, m: ArrayLike, k: ArrayLike, n: ArrayLike, rank: int) -> tuple[F, F]:
    """(forward, backward) seconds of one rank-``rank`` adapter on a ``[m x k] @ [k x n]``
    projection: ``XA``, ``(XA)B`` forward; dgrads ``dY B^T``, ``(dY B^T) A^T`` and wgrads
    ``X^T (dY B^T)``, ``(XA)^T dY`` backward, all BF16 through the roofline."""

    def t(mm: ArrayLike, nn: ArrayLike, kk: ArrayLike) -> F:
        c = gemm(
            dev,
            "lora",
            mm,
            nn,
            kk,
            compute_dtype="bf16",
            a_bytes=ACT_BYTES,
            w_bytes=ACT_BYTES,
            out_bytes=ACT_BYTES,
        )
        return c.time

    fwd = t(m, rank, k) + t(m, n, rank)
    bwd = t(m, rank, n) + t(m, k, rank) + t(k, rank, m) + t(rank, n, m)
    return fwd, bwd


def dequant_time_lean(c: Any, xp: Any, method: str, k: Any, n: Any) -> Any:
    """:func:`dequant_time` through the lean kernels (:mod:`.kernels`)."""
    w = xp.f(k) * xp.f(n)
    if method != "qlora":
        return 0.0 * w
    return memory_time(c, xp, w * (NF4_BYTES + ACT_BYTES))


def adapter_times_lean(c: Any, xp: Any, m: Any, k: Any, n: Any, rank: int) -> tuple[Any, Any]:
    """:func:`adapter_times` through the lean kernels (:mod:`.kernels`)."""
    peak = c.gemm_peak("bf16")

    def t(mm: Any, nn: Any, kk: Any) -> Any:
        return gemm_time(
            c, xp, mm, nn, kk, peak=peak, a_bytes=ACT_BYTES, w_bytes=ACT_BYTES, out_bytes=ACT_BYTES
        )

    fwd = t(m, rank, k) + t(m, n, rank)
    bwd = t(m, rank, n) + t(m, k, rank) + t(k, rank, m) + t(rank, n, m)
    return fwd, bwd

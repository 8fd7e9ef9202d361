"""Low-precision training recipes: which GEMMs run in which format, and what quantising costs.

A recipe is data (:data:`RECIPES`): the matrix format whose peak the GEMMs run at, the stored
width of a quantised operand (payload + block scales), whether the cast needs a separate amax
pass, whether the backward GEMMs need a second (transposed / column-wise) quantised copy, and
whether attention runs in FP8 too. Sources are per recipe (``source``).

What runs in low precision (Transformer Engine / Megatron-Core, MaxText AQT): the linear
layers of each transformer block — QKV, output projection, MLP / expert GEMMs — in all three
passes (forward, dgrad, wgrad). The LM head (Megatron's ``output_layer`` is a plain
``ColumnParallelLinear``), the MoE router, norms, softmax and the attention batched matmuls stay
BF16 unless the recipe says otherwise (``fp8_attention``, e.g. MLPerf LoRA's ``FP8_DPA=1``).

Quantisation cost (memory-bound element-wise passes, :func:`quant_bytes`), per GEMM of
``[m x k] @ [k x n]`` on one micro-batch:

* forward: the input X (``m·k``) is read at 16 bits, (current scaling: read once more for the
  amax), and written at ``b`` bytes per element, twice when the wgrad needs a transposed copy;
* backward: the output gradient dY (``m·n``) likewise, its second copy feeding the wgrad;
* weights (``k·n``): cast once per optimizer step (cached across micro-batches, Megatron's
  ``is_first_microbatch``), both copies; stored FP8 weights (``fp8_params``) skip it.

``b`` = payload bytes + scale bytes / block (MXFP8: 1 + 1/32; NVFP4: 0.5 + 1/16 E4M3 scale per
16 values; MXFP4: 0.5 + 1/32). Block-scaled formats must be quantised along the contraction
dimension of each GEMM, so the backward needs column-wise copies as Hopper's per-tensor FP8
needs transposes (FP8 WGMMA reads both operands K-major).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import SiliconomicsError
from ..ops.device import Device
from ..ops.roofline import memory_op
from .kernels import memory_time

F = NDArray[np.float64]
ACT_BYTES = 2.0


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """One training number format as a framework runs it."""

    name: str
    gemm_dtype: str
    """matrix format whose peak the low-precision GEMMs run at (bf16, fp8, fp4, int8)"""
    payload_bytes: float
    """bytes per quantised element (fp8 1, fp4 0.5)"""
    block: int = 0
    """scaling block along the contraction dim (0 = per-tensor or per-row scale)"""
    scale_bytes: float = 0.0
    """bytes per block scale (E8M0 or E4M3: 1)"""
    amax_pass: bool = False
    """current scaling: a separate read of the 16-bit tensor for its amax before the cast"""
    transposed_copy: bool = True
    """the backward GEMMs need a second quantised copy (transposed or column-wise scaled)"""
    needs_block_mma: bool = False
    """block-scaled MMA hardware (Blackwell tcgen05, CDNA4): chips with an fp4 rate"""
    fp8_attention: bool = False
    """attention batched matmuls in FP8 too (cuDNN FP8 fused attention)"""
    wgrad_rht: bool = False
    """the wgrad operands' column-wise copies pass through a 16-point random Hadamard
    transform, whose amax needs one more 16-bit read of the tensor before the cast
    (Transformer Engine NVFP4BlockScaling)"""
    fp8_act_store: bool = False
    """the activation function's input (SwiGLU gate/up outputs) saved in FP8 for its backward
    instead of 16 bits (Megatron-Core ``activation_func_fp8_input_store``); a memory saving
    only: the activation kernel writes the FP8 copy as it reads its input"""
    source: str = ""

    @property
    def lowp(self) -> bool:
        return self.gemm_dtype != "bf16"

    @property
    def bytes_per_elem(self) -> float:
        """Stored bytes of one quantised element including its share of the block scale."""
        return self.payload_bytes + (self.scale_bytes / self.block if self.block else 0.0)


_TE = "NVIDIA Transformer Engine docs, 'Using FP8 with Transformer Engine' (recipes)"
RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(name="bf16", gemm_dtype="bf16", payload_bytes=2.0, transposed_copy=False),
        Recipe(name="fp16", gemm_dtype="bf16", payload_bytes=2.0, transposed_copy=False),
        Recipe(
            name="fp8",
            gemm_dtype="fp8",
            payload_bytes=1.0,
            source=f"{_TE}: DelayedScaling (per-tensor, amax history; cast and amax fused); "
            "Micikevicius et al. 2022, 'FP8 Formats for Deep Learning'",
        ),
        Recipe(
            name="fp8-cs",
            gemm_dtype="fp8",
            payload_bytes=1.0,
            amax_pass=True,
            source=f"{_TE}: Float8CurrentScaling (per-tensor amax of the current tensor)",
        ),
        Recipe(
            name="fp8-dpa",
            gemm_dtype="fp8",
            payload_bytes=1.0,
            fp8_attention=True,
            source="mlcommons/training_results_v4.0 NVIDIA llama2_70b_lora configs/"
            "config_common.sh (FP8_DPA=1, NVTE_FP8_DPA_BWD=1) and conf/"
            "megatron_gpt_peft_tuning_config.yaml (fp8_params)",
        ),
        Recipe(
            name="fp8-dpa-act",
            gemm_dtype="fp8",
            payload_bytes=1.0,
            fp8_attention=True,
            fp8_act_store=True,
            source="NVIDIA's NeMo MLPerf LoRA recipe where memory is tight: fp8-dpa plus "
            "FP8_ACT=1 (model.activation_func_fp8_input_store in conf/"
            "megatron_gpt_peft_tuning_config.yaml): mlcommons/training_results_v4.0 NVIDIA "
            "llama2_70b_lora config_DGXH100_1x8x4xtp4pp1cp1.sh and the other v4.0 configs, "
            "training_results_v4.1 config_common.sh, training_results_v5.0 "
            "config_DGXB200_1x8x1xtp1pp1cp1.sh ('To avoid OOM')",
        ),
        Recipe(
            name="fp8-act",
            gemm_dtype="fp8",
            payload_bytes=1.0,
            fp8_act_store=True,
            source="AMD's MLPerf LoRA recipe: FP8 GEMMs with FP8_DPA=0 and FP8_ACTIVATION=True "
            "(fp8_activation_input_store): mlcommons/training_results_v5.0 AMD llama2_70b_lora "
            "config_MI300X_1x8x1.sh",
        ),
        Recipe(
            name="mxfp8",
            gemm_dtype="fp8",
            payload_bytes=1.0,
            block=32,
            scale_bytes=1.0,
            needs_block_mma=True,
            source=f"{_TE}: MXFP8BlockScaling (32-element blocks, E8M0 scales); OCP "
            "Microscaling Formats (MX) v1.0 spec",
        ),
        Recipe(
            name="nvfp4",
            gemm_dtype="fp4",
            payload_bytes=0.5,
            block=16,
            scale_bytes=1.0,
            amax_pass=True,
            needs_block_mma=True,
            wgrad_rht=True,
            source=f"{_TE}: NVFP4BlockScaling (16-element blocks, E4M3 scales + per-tensor "
            "FP32 scale from a global amax); NVIDIA, 'Pretraining LLMs with NVFP4' (arXiv "
            "2509.25149)",
        ),
        Recipe(
            name="mxfp4",
            gemm_dtype="fp4",
            payload_bytes=0.5,
            block=32,
            scale_bytes=1.0,
            needs_block_mma=True,
            source="OCP Microscaling Formats (MX) v1.0 spec (32-element blocks, E8M0 scales)",
        ),
        Recipe(
            name="int8",
            gemm_dtype="int8",
            payload_bytes=1.0,
            transposed_copy=False,
            source="MaxText AQT int8 training (per-row dynamic scales fused by XLA into the "
            "producer; the MXU reads either layout)",
        ),
    )
}
#: Formats a user may ask for in training (``--dtype``).
TRAIN_DTYPES: tuple[str, ...] = tuple(RECIPES)


def recipe(name: str) -> Recipe:
    """The recipe of a training ``--dtype``; an unknown name is a one-line error."""
    try:
        return RECIPES[name]
    except KeyError:
        raise SiliconomicsError(
            f"dtype '{name}' is not a training format; allowed: {', '.join(TRAIN_DTYPES)}"
        ) from None


def check_recipe(dev: Device, name: str) -> Recipe:
    """The recipe, after checking the chip can run it (raises a one-line error if not)."""
    r = recipe(name)
    dev.peak_flops(r.gemm_dtype)  # raises if the chip lacks the format
    if r.needs_block_mma and not (dev.chip.supports("fp4") and dev.chip.peak_flops("fp4")):
        raise SiliconomicsError(
            f"dtype '{name}' needs block-scaled matrix hardware (Blackwell, CDNA4); "
            f"{dev.id} has none; allowed here: fp8, fp8-cs, bf16"
        )
    return r


def peak_dtype(name: str) -> str:
    """The matrix format whose peak a training ``dtype`` runs its GEMMs (and MFU) at."""
    return RECIPES[name].gemm_dtype if name in RECIPES else name


def _rht_bytes(r: Recipe, frozen: bool) -> float:
    """Bytes per element of the extra 16-bit read a random Hadamard transform's amax costs the
    wgrad copy (none without a wgrad)."""
    return ACT_BYTES if (r.wgrad_rht and not frozen) else 0.0


def quant_bytes(
    r: Recipe, m: ArrayLike, n: ArrayLike, k: ArrayLike, *, frozen: bool = False
) -> tuple[F, F]:
    """(forward, backward) bytes moved quantising the activations of one ``[m x k] @ [k x n]``
    GEMM on one micro-batch (module docstring). ``frozen``: no wgrad, so one copy each."""
    m_, n_, k_ = (np.asarray(x, dtype=np.float64) for x in (m, n, k))
    if not r.lowp:
        z: F = np.zeros(np.broadcast(m_, n_, k_).shape)
        return z, z
    reads = ACT_BYTES * (2.0 if r.amax_pass else 1.0)
    copies = 2.0 if (r.transposed_copy and not frozen) else 1.0
    per_elem = reads + copies * r.bytes_per_elem + _rht_bytes(r, frozen)
    fwd: F = m_ * k_ * per_elem + 0.0 * n_
    bwd: F = m_ * n_ * per_elem + 0.0 * k_
    return fwd, bwd


def quant_time(
    dev: Device, r: Recipe, m: ArrayLike, n: ArrayLike, k: ArrayLike, *, frozen: bool = False
) -> tuple[F, F]:
    """(forward, backward) seconds of the quantisation passes of one GEMM (memory-bound)."""
    fb, bb = quant_bytes(r, m, n, k, frozen=frozen)
    if not r.lowp:
        return fb, bb
    return memory_op(dev, "quantise", fb).time, memory_op(dev, "quantise-grad", bb).time


def quant_time_lean(
    c: Any, xp: Any, r: Recipe, m: Any, n: Any, k: Any, *, frozen: bool = False
) -> tuple[Any, Any]:
    """:func:`quant_time` through the lean kernels (:mod:`.kernels`; ``c`` the device
    constants, ``xp`` the backend), for a low-precision recipe."""
    reads = ACT_BYTES * (2.0 if r.amax_pass else 1.0)
    copies = 2.0 if (r.transposed_copy and not frozen) else 1.0
    per_elem = reads + copies * r.bytes_per_elem + _rht_bytes(r, frozen)
    m_, n_, k_ = xp.f(m), xp.f(n), xp.f(k)
    fwd = m_ * k_ * per_elem + 0.0 * n_
    bwd = m_ * n_ * per_elem + 0.0 * k_
    return memory_time(c, xp, fwd), memory_time(c, xp, bwd)


def weight_cast_bytes(r: Recipe, params: ArrayLike, *, stored_lowp: bool = False) -> F:
    """Bytes moved once per step casting the 16-bit weights to the GEMM format (both copies);
    zero for BF16 and for weights stored in the low-precision format."""
    p = params if isinstance(params, float) else np.asarray(params, dtype=np.float64)
    if not r.lowp or stored_lowp:
        return 0.0 * p
    copies = 2.0 if r.transposed_copy else 1.0
    return p * (ACT_BYTES + copies * r.bytes_per_elem)


def attention_dtype(dev: Device, r: Recipe) -> str:
    """Format of the attention batched matmuls: FP8 where the recipe says so and the chip has
    it, else BF16."""
    if r.fp8_attention and dev.chip.supports("fp8") and dev.chip.peak_flops("fp8"):
        return "fp8"
    return "bf16"

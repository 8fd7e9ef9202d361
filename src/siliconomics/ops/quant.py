"""Stored bytes of a quantised weight element, block scales included (inference checkpoints).

The unit table (``units.DTYPE_BYTES``) gives the payload width; block-scaled formats also store
a scale per block, which weight-streaming (decode) reads with every weight:

* ``fp4``: NVFP4, the 4-bit format TensorRT-LLM / ModelOpt checkpoints use on Blackwell — E2M1
  values with an E4M3 scale per 16 and one FP32 scale per tensor: 0.5 + 1/16 byte (NVIDIA,
  "Introducing NVFP4 for Efficient and Accurate Low-Precision Inference", technical blog,
  2025-06; MXFP4's 32-blocks with E8M0 scales would be 0.5 + 1/32);
* ``int4``: weight-only AWQ/GPTQ with groups of 128 along the input dimension, an FP16 scale
  and a packed 4-bit zero point per group: 0.5 + 2.5/128 byte (Lin et al. 2024, AWQ, group
  size 128; AutoAWQ packs zeros into int32);
* ``fp8`` / ``int8``: per-tensor or per-channel scales, negligible: 1 byte.
"""

from __future__ import annotations

from ..units import DTYPE_BYTES

#: Scale bytes per weight element of the block-scaled formats (module docstring).
SCALE_BYTES_PER_ELEM: dict[str, float] = {"fp4": 1.0 / 16.0, "int4": 2.5 / 128.0}


def stored_weight_bytes(dtype: str) -> float:
    """Bytes per stored weight element of ``dtype``, block scales included."""
    return DTYPE_BYTES[dtype] + SCALE_BYTES_PER_ELEM.get(dtype, 0.0)

"""Parallel layout and numeric formats of one inference deployment.

Notation (used throughout): tp tensor-parallel degree, pp pipeline stages, ep expert-parallel
degree (inside the tp group), replicas independent model copies. Degrees count chips.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.schema import ModelSpec
from ..errors import SiliconomicsError
from ..ops.device import Device
from ..units import DTYPE_BYTES, dtype_bytes


@dataclass(frozen=True, kw_only=True)
class InferencePlan:
    """How one model replica is laid out on chips, and in which formats it runs."""

    tp: int = 1
    """tensor-parallel degree (chips); heads are padded when tp does not divide them"""
    pp: int = 1
    """pipeline stages"""
    ep: int = 1
    """expert-parallel degree (MoE), must divide tp: each chip holds E/ep experts"""
    replicas: int = 1
    """independent copies serving the load"""
    weight_dtype: str = "bf16"
    """format of linear-layer weights in memory (int4/fp4/int8/fp8 = quantised)"""
    act_dtype: str = "bf16"
    """format of activations at the matmul inputs (the compute format)"""
    kv_dtype: str = "bf16"
    """format of the KV cache"""

    @property
    def chips_per_replica(self) -> int:
        return self.tp * self.pp

    @property
    def chips(self) -> int:
        return self.chips_per_replica * self.replicas

    @property
    def compute_dtype(self) -> str:
        """Matmuls run in the wider of the weight and activation formats (weight-only
        quantisation dequantises to the activation format)."""
        w, a = DTYPE_BYTES[self.weight_dtype], DTYPE_BYTES[self.act_dtype]
        return self.act_dtype if a >= w else self.weight_dtype

    def validate(self, model: ModelSpec, dev: Device) -> None:
        """Raise a clear error for an impossible plan; never silently fix it."""
        for name in ("tp", "pp", "ep", "replicas"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise SiliconomicsError(f"{name} must be a positive integer, got {v!r}")
        for name in ("weight_dtype", "act_dtype", "kv_dtype"):
            dtype_bytes(getattr(self, name))
        if self.act_dtype in ("int4", "fp4") and self.weight_dtype not in ("int4", "fp4"):
            raise SiliconomicsError(
                f"act_dtype {self.act_dtype} needs 4-bit weights too (weight_dtype is "
                f"{self.weight_dtype})"
            )
        dev.peak_flops(self.compute_dtype)  # raises if the chip lacks the format
        if self.pp > model.n_layers:
            raise SiliconomicsError(f"pp={self.pp} exceeds the model's {model.n_layers} layers")
        if self.ep > 1:
            if model.moe is None:
                raise SiliconomicsError(
                    f"ep={self.ep} needs a mixture-of-experts model; "
                    f"'{model.id}' is dense (use ep=1)"
                )
            if self.tp % self.ep:
                raise SiliconomicsError(f"ep={self.ep} must divide tp={self.tp}")
            if model.moe.n_experts % self.ep:
                raise SiliconomicsError(
                    f"ep={self.ep} must divide the {model.moe.n_experts} experts"
                )
        if self.tp > model.n_heads:
            raise SiliconomicsError(f"tp={self.tp} exceeds the model's {model.n_heads} heads")

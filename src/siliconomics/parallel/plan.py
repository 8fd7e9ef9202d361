"""Parallel layout and numeric formats of one inference deployment.

Notation (used throughout): tp tensor-parallel degree, pp pipeline stages, dp attention
data-parallel degree inside one replica (DP-attention: each of dp groups of tp chips runs
attention for its own 1/dp of the batch), ep expert-parallel degree over the dp x tp chips of a
stage (each chip holds E/ep experts, each split etp = dp*tp/ep ways), replicas independent model
copies. Degrees count chips; one replica has dp x tp x pp chips.

Layouts this covers: TensorRT-LLM ``tp_size=8, moe_ep_size=8`` (dp=1, tp=8, ep=8), ``moe_tp_size``
= etp; SGLang ``--tp 8 --enable-dp-attention --dp 8 --ep 8`` and DeepSeek's wide-EP decode
(dp=8..320, tp=1, ep=dp); vLLM ``--data-parallel-size N --enable-expert-parallel``.
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
    """expert-parallel degree (MoE), must divide dp*tp: each chip holds E/ep experts"""
    dp: int = 1
    """attention data-parallel degree inside one replica (DP-attention): attention and dense
    layers run on dp groups of tp chips, each with 1/dp of the batch and of the KV cache;
    experts are spread over all dp*tp chips (ep of them)"""
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
        return self.dp * self.tp * self.pp

    @property
    def etp(self) -> int:
        """expert tensor-parallel degree: each expert's FFN is split over dp*tp/ep chips"""
        return max(self.dp * self.tp // self.ep, 1)

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
        for name in ("tp", "pp", "ep", "dp", "replicas"):
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
            if (self.dp * self.tp) % self.ep:
                raise SiliconomicsError(
                    f"ep={self.ep} must divide dp*tp={self.dp * self.tp} (experts are spread "
                    "over the chips of one pipeline stage)"
                )
            if self.ep > model.moe.n_experts:
                # Serving stacks place ceil(E/ep) experts per rank (SGLang/TensorRT-LLM add
                # redundant copies of hot experts, e.g. 288 slots for 256 experts on EP72).
                raise SiliconomicsError(f"ep={self.ep} exceeds the {model.moe.n_experts} experts")
        if self.tp > model.n_heads:
            raise SiliconomicsError(f"tp={self.tp} exceeds the model's {model.n_heads} heads")

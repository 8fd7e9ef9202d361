"""A chip as the cost model sees it: SI peaks plus the efficiency profile of its stack.

``Device`` is the only object the op layer needs. It is built once per (chip, profile) and
is cheap to pass around; all numbers are plain floats in SI units.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.schema import ChipSpec, EfficiencyProfile, Sourced
from ..errors import SiliconomicsError

# Where a format's peak is unpublished, the nearest wider format with a published rate.
_FALLBACK: dict[str, tuple[str, ...]] = {
    "fp4": ("fp4", "fp8", "bf16"),
    "int4": ("int4", "int8", "bf16"),
    "fp8": ("fp8", "bf16"),
    "int8": ("int8", "bf16"),
    "fp16": ("fp16", "bf16"),
    "tf32": ("tf32", "bf16"),
}
_LOWP = frozenset({"fp8", "int8", "fp4", "int4"})


@dataclass(frozen=True, kw_only=True)
class Device:
    """Derived view of a chip for cost functions."""

    chip: ChipSpec
    eff: EfficiencyProfile

    @property
    def id(self) -> str:
        return self.chip.id

    def peak_flops(self, dtype: str) -> float:
        """Dense matrix peak (FLOP/s) for ``dtype``.

        A format the hardware lacks is an error. A format it has but whose peak is
        unpublished (e.g. Gaudi 2 FP8) runs at the nearest wider published rate (fp4 -> fp8
        -> bf16, int8 -> bf16): a conservative, stated assumption (see :meth:`assumptions`)."""
        if not self.chip.supports(dtype):
            raise SiliconomicsError(
                f"chip '{self.chip.id}' has no {dtype} matrix support in hardware; "
                f"supported: {', '.join(self.supported_dtypes())}"
            )
        for d in _FALLBACK.get(dtype, (dtype,)):
            v = self.chip.peak_flops(d)
            if v is not None and self.chip.supports(d):
                return v
        known = self.supported_dtypes()
        hint = (
            f"choose one of: {', '.join(known)}"
            if known
            else "no matrix peak of this chip is published, so it cannot be estimated"
        )
        raise SiliconomicsError(
            f"chip '{self.chip.id}': {dtype} peak is not published (unknown); {hint}"
        )

    def assumptions(self, *dtypes: str) -> list[str]:
        """Stated assumptions the model made for this chip and these formats."""
        out = []
        for dtype in dict.fromkeys(dtypes):
            if self.chip.supports(dtype) and self.chip.peak_flops(dtype) is None:
                for d in _FALLBACK.get(dtype, ())[1:]:
                    if self.chip.peak_flops(d) is not None:
                        out.append(
                            f"{self.chip.id}: {dtype} peak unpublished, assumed equal "
                            f"to the {d} rate (no speed-up)"
                        )
                        break
        return out

    def gemm_efficiency(self, dtype: str) -> float:
        """Fraction of the ``dtype`` peak that large GEMMs reach in this stack."""
        if dtype in _LOWP and self.eff.lowp_gemm_efficiency is not None:
            return self.eff.lowp_gemm_efficiency
        return self.eff.gemm_efficiency

    def grouped_gemm_peak_efficiency(self, dtype: str) -> float:
        """Fraction of the ``dtype`` peak that grouped (MoE expert) GEMMs reach in inference,
        before the stack's :attr:`grouped_efficiency` factor: the profile's sourced
        ``fp4_grouped_gemm_efficiency`` for block-scaled 4-bit, else :meth:`gemm_efficiency`."""
        f = self.eff.fp4_grouped_gemm_efficiency
        return f if dtype == "fp4" and f is not None else self.gemm_efficiency(dtype)

    def weight_stream_factor(self, dtype: str) -> float:
        """Fraction of the streaming bandwidth a ``dtype`` GEMM reaches on its weights:
        the profile's ``fp4_weight_stream_efficiency`` for block-scaled 4-bit GEMMs, else 1."""
        f = self.eff.fp4_weight_stream_efficiency
        return f if dtype == "fp4" and f is not None else 1.0

    @property
    def grouped_efficiency(self) -> float:
        """Fraction of a dense GEMM's compute rate that grouped MoE expert GEMMs reach in this
        stack (``grouped_gemm_efficiency``; 1 where the profile does not set it); their weight
        streaming runs at the dense rate."""
        g = self.eff.grouped_gemm_efficiency
        return 1.0 if g is None else g

    def attention_dtype(self, act_dtype: str, kv_dtype: str) -> str:
        """Attention matmuls (QK^T, PV) run in the KV-cache format when the chip has it and it
        is at least 8 bits wide (FP8 FMHA), else in the 16-bit activation format: no stack
        runs attention in 4-bit. A chip whose matrix engine has no 16-bit path (Maia 200:
        FP8/FP6/FP4 only) runs them in FP8."""
        for d in (kv_dtype, act_dtype, "fp8"):
            if d in ("fp8", "bf16", "fp16", "fp32") and self.chip.supports(d):
                try:
                    self.peak_flops(d)
                    return d
                except SiliconomicsError:
                    continue
        return "bf16"

    def mla_decode_dtype(self, act_dtype: str, kv_dtype: str) -> str:
        """Format of the absorbed MLA decode matmuls. The shipped MLA decode kernels compute
        the latent QK/PV matmuls in 16 bits whatever the cache format (FlashMLA is BF16/FP16
        only; CUTLASS MLA and AITER's MLA kernels convert an FP8 cache to BF16 before the
        matmuls; TensorRT-LLM's FP8-cache kernel measures no faster); a chip without a 16-bit
        matrix path (Maia 200) runs them in its attention format."""
        for d in ("bf16", "fp16"):
            if self.chip.supports(d) and self.chip.peak_flops(d) is not None:
                return d
        return self.attention_dtype(act_dtype, kv_dtype)

    @property
    def mla_decode_efficiency(self) -> float:
        """The profile's measured ``mla_decode_efficiency``, else its ``attention_efficiency``."""
        f = self.eff.mla_decode_efficiency
        return self.eff.attention_efficiency if f is None else f

    def linear_decode_bytes_per_s(self, kind: str = "gated-deltanet") -> float:
        """HBM bandwidth of a linear-attention layer's recurrent decode kernel: for Gated
        DeltaNet the profile's ``linear_decode_efficiency`` (a kernel benchmark), else (and for
        Mamba-2, which has no benchmark here) its ``memory_efficiency``."""
        f = self.eff.linear_decode_efficiency if kind == "gated-deltanet" else None
        return self.hbm_bytes_per_s * (self.eff.memory_efficiency if f is None else f)

    def mla_decode_flops(self, act_dtype: str, kv_dtype: str) -> float:
        """FLOP/s of absorbed MLA decode attention: the :meth:`mla_decode_dtype` peak times
        :attr:`mla_decode_efficiency`."""
        d = self.mla_decode_dtype(act_dtype, kv_dtype)
        return self.peak_flops(d) * self.mla_decode_efficiency

    def sparse_mla_flops(self, act_dtype: str, kv_dtype: str, *, prefill: bool) -> float:
        """FLOP/s of token-level sparse MLA (DeepSeek Sparse Attention): the
        :meth:`mla_decode_dtype` peak times the profile's ``sparse_mla_decode_efficiency`` or
        ``sparse_mla_prefill_efficiency``, each defaulting to :attr:`mla_decode_efficiency`."""
        f = (
            self.eff.sparse_mla_prefill_efficiency
            if prefill
            else self.eff.sparse_mla_decode_efficiency
        )
        d = self.mla_decode_dtype(act_dtype, kv_dtype)
        return self.peak_flops(d) * (self.mla_decode_efficiency if f is None else f)

    def indexer_dtype(self) -> str:
        """Format of the DSA lightning indexer's scoring matmuls: FP8 (blockwise FP8 query and
        key cache in DeepGEMM's MQA-logits kernel, which vLLM, SGLang and TensorRT-LLM run) where
        the chip has it, else the chip's attention format."""
        return self.attention_dtype("fp8", "fp8")

    def supported_dtypes(self) -> list[str]:
        return [
            d
            for d in ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4")
            if self.chip.supports(d) and self.chip.peak_flops(d) is not None
        ]

    @property
    def vector_flops(self) -> float:
        """Element-wise throughput; falls back to 1/8 of the bf16 matrix peak, a conservative
        ratio (H100: 134/989 = 0.135; Gaudi 3: 28.7/1835 = 0.016 is lower, and published)."""
        v = self.chip.compute.vector_bf16
        if v is not None:
            return v.value
        bf = self.chip.peak_flops("bf16") or self.chip.peak_flops("fp16") or 1e12
        return bf / 8

    @property
    def hbm_bytes(self) -> float:
        return _need(self.chip.memory.capacity_bytes, self.chip.id, "memory.capacity_bytes")

    @property
    def hbm_bytes_per_s(self) -> float:
        return _need(self.chip.memory.bytes_per_s, self.chip.id, "memory.bytes_per_s")

    @property
    def usable_hbm_bytes(self) -> float:
        """Capacity minus the runtime reserve of the profile (context, allocator, graphs), for
        a reserve taken of the capacity (see :meth:`usable_bytes`)."""
        return self.hbm_bytes * (1.0 - self.eff.memory_reserve_fraction)

    def reserve_bytes(self, weights: float) -> float:
        """The runtime reserve per chip with ``weights`` bytes of weights: the profile's
        fraction of the capacity, or of what the weights leave free when the engine sizes its
        KV cache from free memory (``memory_reserve_of_free``, TensorRT-LLM)."""
        free = self.eff.memory_reserve_of_free
        base = max(self.hbm_bytes - weights, 0.0) if free else self.hbm_bytes
        return base * self.eff.memory_reserve_fraction

    def usable_bytes(self, weights: float) -> float:
        """Capacity minus :meth:`reserve_bytes` (weights, activations and KV cache share it)."""
        return self.hbm_bytes - self.reserve_bytes(weights)

    @property
    def scale_up_bytes_per_s_dir(self) -> float:
        """Scale-up bandwidth per chip in one direction (sheet values are bidirectional)."""
        v = self.chip.interconnect.scale_up_bytes_per_s
        if v is None:
            return self.pcie_bytes_per_s_dir
        return v.value / 2.0

    @property
    def pcie_bytes_per_s_dir(self) -> float:
        # PCIe Gen4 x16 ~ 32 GB/s/dir, Gen5 x16 ~ 64 GB/s/dir; used only where no scale-up
        # bandwidth is published. Gen5 for chips from 2022 on (an inferred default).
        year = self.chip.year or 2022
        return 64e9 if year >= 2022 else 32e9

    @property
    def scale_out_bytes_per_s_dir(self) -> float:
        v = self.chip.interconnect.scale_out_bytes_per_s
        return v.value if v is not None else 12.5e9  # 100 Gb/s per chip: inferred default


def _need(v: Sourced | None, chip: str, field: str) -> float:
    if v is None:
        raise SiliconomicsError(
            f"chip '{chip}': {field} is unknown (not published); "
            "the model needs it for this estimate"
        )
    return v.value

"""What a scan finds: one :class:`Finding` per place that ties a project to CUDA.

``KINDS`` is the closed list of finding kinds; every knowledge-base entry and every effort
rule names one of them (a test checks both files cover every kind).
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS: dict[str, str] = {
    "flash-attn": "FlashAttention package (flash_attn), CUDA kernels",
    "xformers": "xFormers memory-efficient attention, CUDA kernels",
    "bitsandbytes": "bitsandbytes 8/4-bit quantisation and optimisers, CUDA kernels",
    "apex": "NVIDIA Apex fused optimisers / layers / amp",
    "transformer-engine": "NVIDIA Transformer Engine modules",
    "fp8-te": "FP8 training or inference through Transformer Engine (fp8_autocast)",
    "deepspeed": "DeepSpeed runtime (ZeRO, engine)",
    "deepspeed-ops": "DeepSpeed CUDA ops (deepspeed.ops: fused Adam, inference kernels)",
    "triton-kernel": "hand-written Triton kernel (@triton.jit)",
    "cupy": "CuPy arrays / raw CUDA kernels",
    "vllm": "vLLM serving engine",
    "vllm-custom-ops": "vLLM CUDA custom ops (vllm._C, vllm._custom_ops)",
    "nccl-setting": "NCCL-specific setting (NCCL_* environment variable, nvidia-nccl wheel)",
    "cuda-source": "CUDA C++ source file (.cu / .cuh)",
    "cuda-extension": "CUDA extension build or JIT load (cpp_extension, load_inline, CUDAExtension)",
    "torch-cuda-call": "torch.cuda.* API call or .cuda() device move",
    "cuda-graph": "CUDA graph capture (torch.cuda.graph, CUDAGraph, make_graphed_callables)",
    "nccl-backend": "torch.distributed process group with backend='nccl'",
    "collective": "explicit torch.distributed collective (all_reduce, all_gather, ...)",
    "torch-compile": "torch.compile (Inductor generates Triton kernels on CUDA)",
    "fsdp": "PyTorch FSDP (FullyShardedDataParallel / fully_shard)",
}


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One place in the project that ties it to CUDA."""

    file: str
    """path inside the project (posix, relative)"""
    line: int
    """1-based line number (0 when the whole file is the finding)"""
    kind: str
    """one of :data:`KINDS`"""
    text: str
    """the matched text, shortened to one line"""
    loc: int = 0
    """lines of code behind the finding (CUDA sources: non-blank lines of the file)"""
    dependency: bool = False
    """a declared dependency (requirements, pyproject, setup.py, wheel METADATA), not code"""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True, kw_only=True)
class ScanResult:
    """Everything a scan found, plus what it looked at."""

    findings: tuple[Finding, ...]
    files_scanned: int
    python_files: int
    unparsable: tuple[str, ...] = ()
    """Python files the ``ast`` parser rejected (scanned with text rules only)"""

    def by_kind(self) -> dict[str, list[Finding]]:
        out: dict[str, list[Finding]] = {}
        for f in self.findings:
            out.setdefault(f.kind, []).append(f)
        return out

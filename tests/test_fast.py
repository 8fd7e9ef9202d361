"""The lean step kernel and the time-only static estimates agree with the reference
(forward_cost / estimate_static) to 1e-12 relative, with the same memory verdict, on a grid of
layouts that covers what the catalog has: dense (MHA, GQA), MoE (expert parallel, shared
experts, attention data parallel with all-to-all), MLA, sliding windows, FP8/FP4/INT4, tp > 1,
pp > 1, GPU tiles and systolic arrays, switch/mesh/torus/PCIe fabrics, eager host launches."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from siliconomics import resolve
from siliconomics.errors import SiliconomicsError
from siliconomics.inference.estimate import estimate_max_throughput, estimate_static
from siliconomics.inference.fast import (
    Layout,
    static_point,
    static_times,
    static_times_many,
    throughput_times,
)
from siliconomics.inference.forward import forward_cost
from siliconomics.inference.kernel import NP, PY, build_step_kernel, step_kernel
from siliconomics.parallel.plan import InferencePlan

RTOL = 1e-12
FIELDS = ("ttft_s", "tpot_s", "e2e_s", "output_tokens_per_s")

LAYOUTS = [
    ("h100-sxm", "llama-3.1-70b", {"tp": 4}),
    ("h100-sxm", "llama-2-7b", {"tp": 1}),  # MHA, no all-reduce
    ("h100-sxm", "mixtral-8x7b", {"tp": 2, "ep": 2}),  # MoE, expert parallel
    ("h200-sxm", "deepseek-v3", {"tp": 8, "ep": 8, "weight_dtype": "fp8", "act_dtype": "fp8"}),
    ("h200-sxm", "deepseek-v3", {"tp": 1, "dp": 8, "ep": 8, "weight_dtype": "fp8"}),  # DP-attn
    ("b200", "gpt-oss-120b", {"tp": 2, "weight_dtype": "fp4", "kv_dtype": "fp8"}),  # windows
    ("tpu-v5e", "llama-3.1-8b", {"tp": 4}),  # systolic, torus
    ("trn2", "llama-3.1-70b", {"tp": 8, "pp": 2}),  # pipeline stages
    ("mi300x", "qwen3-235b-a22b", {"tp": 8, "ep": 8, "weight_dtype": "fp8", "act_dtype": "fp8"}),
    ("gaudi2", "llama-2-70b", {"tp": 8}),
    ("h100-sxm", "llama-3.1-405b", {"tp": 8, "pp": 4, "weight_dtype": "fp8", "act_dtype": "fp8"}),
    ("l4", "mistral-7b-v0.1", {"tp": 2, "weight_dtype": "int4"}),  # PCIe, sliding window
    ("a100-sxm-80gb", "gpt-3-175b", {"tp": 8, "pp": 2, "replicas": 3}),
    ("tpu-v6e", "llama-4-scout", {"tp": 8, "ep": 8}),  # interleaved MoE, chunked attention
    # DeepSeek Sparse Attention: contexts on both sides of index_topk (2,048)
    ("h200-sxm", "deepseek-v3.2", {"tp": 8, "ep": 8, "weight_dtype": "fp8", "act_dtype": "fp8"}),
    ("b200", "deepseek-v3.2", {"dp": 8, "ep": 8, "weight_dtype": "fp4", "kv_dtype": "fp8"}),
    # Gated DeltaNet hybrids: per-sequence states, gated full attention, fp32 state (Qwen3.5)
    ("h200-sxm", "qwen3-next-80b-a3b", {"tp": 2, "ep": 2, "weight_dtype": "fp8"}),
    ("b200", "qwen3.5-397b-a17b", {"tp": 8, "weight_dtype": "fp4", "kv_dtype": "fp8"}),
    # Mamba-2 hybrids: mixers without an FFN block, squared-ReLU experts / MLPs
    ("h100-sxm", "nemotron-3-nano-30b-a3b", {"tp": 2, "ep": 2}),
    ("h200-sxm", "nemotron-h-56b", {"tp": 4, "weight_dtype": "fp8", "act_dtype": "fp8"}),
    # LatentMoE: experts, permute and all-to-all at the latent width, replicated projections
    ("b200", "nemotron-3-super-120b-a12b", {"tp": 2, "ep": 2, "weight_dtype": "fp4"}),
    ("b200", "nemotron-3-super-120b-a12b", {"dp": 4, "ep": 4, "weight_dtype": "fp8"}),
    # Gemma 4: full-attention layers of their own head width and KV heads (K = V)
    ("h100-sxm", "gemma-4-31b", {"tp": 2}),
    ("b200", "gemma-4-26b-a4b", {"tp": 2, "ep": 2, "weight_dtype": "fp8", "act_dtype": "fp8"}),
]

B_AXIS = np.array([1.0, 3.0, 8.0, 33.0, 256.0])
I_AXIS = np.array([1.0, 7.0, 128.0, 3000.0])
O_AXIS = np.array([1.0, 2.0, 100.0, 1500.0])


def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    B, I, O = np.meshgrid(B_AXIS, I_AXIS, O_AXIS, indexing="ij")
    return B, I, O


def _layout(chip: str, model: str, kw: dict) -> tuple:
    return resolve.model(model), resolve.device(chip), InferencePlan(**kw)


def _eager(dev):  # eager host launches, per-sequence host work, slower grouped MoE kernels
    upd = {"host_launch_s": 4e-6, "host_per_seq_s": 2e-5, "grouped_gemm_efficiency": 0.6}
    eff = dev.eff.model_copy(update=upd)
    return dataclasses.replace(dev, eff=eff)


def _close(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=0.0)


@pytest.mark.parametrize(("chip", "model", "kw"), LAYOUTS)
def test_static_times_match_estimate_static(chip: str, model: str, kw: dict) -> None:
    m, dev, plan = _layout(chip, model, kw)
    B, I, O = _grid()
    ref = estimate_static(m, dev, plan, B, I, O, check_memory=False)
    got = static_times(m, dev, plan, B, I, O, block=7)  # several blocks, one partial
    for f in FIELDS:
        _close(getattr(got, f), getattr(ref, f))
    assert np.array_equal(got.fits, ref.memory.fits)
    assert np.array_equal(got.free_bytes, ref.memory.free)
    for j in [0, 17, 41, B.size - 1]:
        idx = np.unravel_index(j, B.shape)
        p = static_point(m, dev, plan, B[idx], I[idx], O[idx])
        for f in FIELDS:
            _close(np.asarray(getattr(p, f)), getattr(ref, f)[idx])
        assert p.fits == bool(ref.memory.fits[idx])


@pytest.mark.parametrize(("chip", "model", "kw"), LAYOUTS[:6] + LAYOUTS[9:11] + LAYOUTS[14:])
def test_step_time_matches_forward_cost(chip: str, model: str, kw: dict) -> None:
    """Prefill, decode and chunked-prefill steps (new tokens on top of a past context)."""
    m, dev, plan = _layout(chip, model, kw)
    for d in (dev, _eager(dev)):
        B, s, c = np.meshgrid([1.0, 5.0, 64.0], [1.0, 2.0, 512.0], [0.0, 31.0, 9000.0])
        want = forward_cost(m, d, plan, B, s, c).time
        k = build_step_kernel(m, d, plan)
        _close(k.step_time(NP, B, s, c), want)
        pts = zip(B.ravel(), s.ravel(), c.ravel(), strict=True)
        flat = [k.step_time(PY, float(b), float(n), float(p)) for b, n, p in pts]
        _close(np.array(flat), want.ravel())


def test_eager_profile_static_times() -> None:
    m, dev, plan = _layout("h100-sxm", "llama-3.1-8b", {"tp": 2})
    dev = _eager(dev)
    B, I, O = _grid()
    ref = estimate_static(m, dev, plan, B, I, O, check_memory=False)
    got = static_times(m, dev, plan, B, I, O)
    for f in FIELDS:
        _close(getattr(got, f), getattr(ref, f))


def test_blocks_and_many_layouts_give_the_same_numbers() -> None:
    layouts = [Layout(*_layout(*x), *_grid()) for x in LAYOUTS[:3]]
    many = static_times_many(layouts)
    for lay, got in zip(layouts, many, strict=True):
        one = static_times(*lay, block=5)
        for f in (*FIELDS, "free_bytes"):
            assert np.array_equal(getattr(got, f), getattr(one, f))
        assert got.ttft_s.shape == _grid()[0].shape


def test_kernel_is_built_once_per_layout() -> None:
    m, dev, plan = _layout("h100-sxm", "llama-3.1-70b", {"tp": 4})
    assert step_kernel(m, dev, plan) is step_kernel(m, dev, InferencePlan(tp=4))
    assert step_kernel(m, dev, plan) is not step_kernel(m, dev, InferencePlan(tp=8))


def test_bad_input_is_a_clear_error() -> None:
    m, dev, plan = _layout("h100-sxm", "llama-3.1-70b", {"tp": 4})
    with pytest.raises(SiliconomicsError, match="input_len"):
        static_times(m, dev, plan, [1, 2], [128, 0], 64)
    with pytest.raises(SiliconomicsError, match="batch"):
        static_point(m, dev, plan, float("nan"), 128, 64)
    with pytest.raises(SiliconomicsError, match="tp="):
        static_point(m, dev, InferencePlan(tp=128), 1, 128, 64)


ENGINES = [
    {},
    {"reserve_full_length": True, "graph_batch_sizes": (1, 2, 4, 8, 16, 64, 256, 384)},
    {"aligned_context": True, "max_prefill_tokens": 2048.0},
]


@pytest.mark.parametrize(("chip", "model", "kw"), LAYOUTS)
@pytest.mark.parametrize("engine", ENGINES)
def test_throughput_times_match_estimate_max_throughput(
    chip: str, model: str, kw: dict, engine: dict
) -> None:
    m, dev, plan = _layout(chip, model, kw)
    I, O, lim = np.meshgrid(I_AXIS, O_AXIS, [1.0, 16.0, 1e9], indexing="ij")
    got = throughput_times(m, dev, plan, I, O, batch_limit=lim, **engine)
    ok = got.fits
    if not ok.any():
        return
    ref = estimate_max_throughput(m, dev, plan, I[ok], O[ok], batch_limit=lim[ok], **engine)
    assert np.array_equal(got.batch[ok], ref.batch)
    for f in (*FIELDS, "prefill_time_share"):
        _close(getattr(got, f)[ok], getattr(ref, f))


def test_grouped_gemm_efficiency_slows_moe_only() -> None:
    """The grouped-kernel factor divides the compute term of the expert GEMMs: a compute-bound
    MoE step (a 64 x 512-token prefill) gets slower, a memory-bound one (one decode token,
    which streams the experts' weights at the dense rate) and a dense model do not move, and
    training keeps the factor at 1."""
    from siliconomics.training.estimate import train_device

    for model, kw, moves in (
        ("mixtral-8x7b", {"tp": 2, "ep": 2}, True),
        ("llama-3.1-8b", {"tp": 1}, False),
    ):
        m, dev, plan = _layout("h100-sxm", model, kw)
        slow = dataclasses.replace(
            dev, eff=dev.eff.model_copy(update={"grouped_gemm_efficiency": 0.5})
        )
        B, s, c = np.array([1.0, 64.0]), np.array([1.0, 512.0]), np.array([100.0, 0.0])
        base = forward_cost(m, dev, plan, B, s, c).time
        got = forward_cost(m, slow, plan, B, s, c).time
        assert got[0] == base[0]
        assert bool(got[1] > base[1]) if moves else got[1] == base[1]
        assert train_device(slow).grouped_efficiency == 1.0

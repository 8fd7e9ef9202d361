"""Attention data parallelism with unaligned context chunks (inference/adp.py) and the MoE
expand / activation byte formats (parallel/moe.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from siliconomics import resolve
from siliconomics.catalog.registry import get_model
from siliconomics.inference.adp import context_step_share, unaligned_factor
from siliconomics.inference.estimate import estimate_max_throughput
from siliconomics.inference.forward import forward_cost
from siliconomics.inference.graphs import padded_batch, padding_time
from siliconomics.parallel.plan import InferencePlan

FP4 = {"weight_dtype": "fp4", "act_dtype": "fp4", "kv_dtype": "fp8"}


def test_unaligned_factor_limits() -> None:
    # every step carries a chunk on every rank: aligned already
    assert unaligned_factor(1.0, 8) == pytest.approx(1.0)
    # rare chunks: every chunk gets a step of its own, dp times the aligned count
    assert unaligned_factor(1e-6, 8) == pytest.approx(8.0, rel=1e-4)
    m = unaligned_factor(np.array([0.01, 0.1, 0.5]), 8)
    assert np.all(np.diff(m) < 0) and np.all((m > 1.0) & (m < 8.0))
    assert unaligned_factor(0.3, 1) == pytest.approx(1.0)


def test_context_step_share() -> None:
    # 64 prompts of 128 tokens per 8192-token chunk: 512 sequences need 8 chunk steps per
    # 2049 steps of a request's life
    assert context_step_share(512, 128, 2048, 8192) == pytest.approx(8 / 2049)
    # a 20000-token prompt needs 3 chunks of 8192; 1000 of them per 2003 steps -> capped at 1
    assert context_step_share(1000, 20000, 2000, 8192) == pytest.approx(1.0)
    assert context_step_share(10, 20000, 2000, 8192) == pytest.approx(30 / 2003)


@pytest.mark.parametrize(
    "grouped",
    [
        pytest.param("neutral", id="mechanism"),
        pytest.param(
            "calibrated",
            id="calibrated-profile",
            marks=pytest.mark.xfail(
                strict=True,
                reason="with the fitted Blackwell grouped_gemm_efficiency (0.59) and the "
                "measured MLA decode kernel rate, decode is slower while MoE prefill stays about "
                "2x too fast (docs/MODEL.md, MoE: what is still missing), so the prefill share "
                "and the alignment gain come out 1.18x",
            ),
        ),
    ],
)
def test_adp_balance_blog_ratio(grouped: str) -> None:
    """TensorRT-LLM tech blog 10 (ADP Balance Strategy): DeepSeek-V3 on 8 GB200, DP8/EP8,
    803/3653 tokens: coordinated context scheduling gave 1.31-1.33x over round-robin, and
    balanced iterations bound the gain at 39,552/25,664 = 1.54x. The modelled ratio of
    aligned to unaligned context chunks must fall in that range: the mechanism with the
    grouped-kernel and MLA-decode kernel factors neutral, and (a known gap, xfail) with the
    calibrated profile."""
    m, dev = get_model("deepseek-v3"), resolve.device("gb200")
    if grouped == "neutral":
        upd = {"grouped_gemm_efficiency": None, "mla_decode_efficiency": None}
        eff = dev.eff.model_copy(update=upd)
        dev = dataclasses.replace(dev, eff=eff)
    plan = InferencePlan(tp=1, dp=8, ep=8, **FP4)
    kw = {"max_prefill_tokens": 8192.0}
    al = estimate_max_throughput(m, dev, plan, 803, 3653, aligned_context=True, **kw)
    un = estimate_max_throughput(m, dev, plan, 803, 3653, **kw)
    ratio = float(al.output_tokens_per_s / un.output_tokens_per_s)
    assert 1.25 <= ratio <= 1.6
    assert float(un.prefill_time_share) > float(al.prefill_time_share)


def test_no_adp_no_change() -> None:
    """dp = 1: the context alignment does not apply."""
    m, dev = get_model("qwen3-30b-a3b"), resolve.device("b200")
    plan = InferencePlan(tp=1, **FP4)
    a = estimate_max_throughput(m, dev, plan, 1000, 1000, aligned_context=True)
    b = estimate_max_throughput(m, dev, plan, 1000, 1000)
    assert float(a.output_tokens_per_s) == float(b.output_tokens_per_s)


def test_moe_expand_and_activation_bytes() -> None:
    """FP4 MoE: the expand reads 16-bit tokens and writes k FP4 copies; the activation reads the
    16-bit up-projection output (2 matrices, gated) and writes the FP4 down-projection input."""
    m, dev = get_model("qwen3-30b-a3b"), resolve.device("b200")
    assert m.moe is not None
    plan = InferencePlan(tp=1, **FP4)
    fc = forward_cost(m, dev, plan, 4, 256, 0.0)
    ops = {op.name: op for op in fc.ops}
    T, D, k, n = 4 * 256, m.d_model, m.moe.experts_per_token, m.n_moe_layers
    assert float(ops["moe_permute"].bytes) == pytest.approx(n * T * D * (2.0 + k * 0.5))
    act = ops["moe_act"]
    # rows x Fe elements: bytes per element 2 x 2 (read) + 0.5 (write)
    elems = float(act.bytes) / (2 * 2.0 + 0.5)
    assert float(act.flops) == pytest.approx(elems * (4.0 + 3.0))


def test_padded_batch() -> None:
    sizes = (1, 2, 4, 8, 256, 384, 512, 1024, 2048)
    got = padded_batch(np.array([1.0, 3.0, 300.0, 384.0, 1400.0, 3000.0]), sizes)
    assert got.tolist() == [1.0, 4.0, 384.0, 384.0, 2048.0, 3000.0]
    assert padded_batch(7.0, ()) == 7.0


def test_graph_padding_slows_decode_only_when_padded() -> None:
    """A decode batch padded from 1,400 to 2,048 costs more; one already at a captured size
    costs nothing extra; attention (no KV for dummy sequences) is not padded."""
    m, dev = get_model("llama-3.3-70b"), resolve.device("b200")
    plan = InferencePlan(tp=1, **FP4)
    sizes = (1024.0, 2048.0)
    extra = padding_time(m, dev, plan, 1400.0, 1000.0, sizes)
    step = forward_cost(m, dev, plan, 1400.0, 1.0, 1000.0).time
    assert 0.0 < float(extra) < float(step)
    assert float(padding_time(m, dev, plan, 1024.0, 1000.0, sizes)) == 0.0
    a = estimate_max_throughput(m, dev, plan, 128, 2048, batch_limit=1400.0)
    b = estimate_max_throughput(
        m, dev, plan, 128, 2048, batch_limit=1400.0, graph_batch_sizes=sizes
    )
    assert float(b.output_tokens_per_s) < float(a.output_tokens_per_s)
    assert float(b.tpot_s) > float(a.tpot_s)

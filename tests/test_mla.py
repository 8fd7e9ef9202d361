"""Absorbed multi-head latent attention in decode runs at the 16-bit peak times the profile's
measured MLA kernel efficiency (``mla_decode_efficiency``, else ``attention_efficiency``),
whatever the cache format; prefill (decompressed, plain FMHA) keeps the attention-format
rate. Both step-time paths agree, on every chip family."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from siliconomics import resolve
from siliconomics.inference.forward import forward_cost
from siliconomics.inference.kernel import NP, build_step_kernel
from siliconomics.parallel.plan import InferencePlan

PLAN = InferencePlan(
    tp=1, dp=8, ep=8, weight_dtype="fp4", act_dtype="fp8", kv_dtype="fp8"
)  # the MLPerf v5.1 DeepSeek-R1 layout on 8 B200


def _attention(dev, B: float, s: float, c: float):
    fc = forward_cost(resolve.model("deepseek-r1"), dev, PLAN, B, s, c)
    (op,) = [o for o in fc.ops if o.name == "attention"]
    return op


def _with(dev, **upd):
    return dataclasses.replace(dev, eff=dev.eff.model_copy(update=upd))


def test_decode_at_the_16bit_kernel_rate() -> None:
    dev = resolve.device("b200")
    assert dev.eff.mla_decode_efficiency is not None
    op = _attention(dev, 160.0, 1.0, 5000.0)
    rate = dev.peak_flops("bf16") * dev.eff.mla_decode_efficiency
    np.testing.assert_allclose(op.t_compute, op.flops / rate, rtol=1e-12)
    # without the kernel figure: the fused-attention efficiency, still of the 16-bit peak
    # (an FP8 cache buys no matmul speed), not of the FP8 peak
    old = _attention(_with(dev, mla_decode_efficiency=None), 160.0, 1.0, 5000.0)
    bf16 = dev.peak_flops("bf16") * dev.eff.attention_efficiency
    np.testing.assert_allclose(old.t_compute, old.flops / bf16, rtol=1e-12)
    fp8 = dev.peak_flops("fp8") * dev.eff.attention_efficiency
    assert float(op.t_compute) > 2.0 * float(old.flops / fp8)


def test_prefill_keeps_the_attention_rate() -> None:
    dev = resolve.device("b200")
    op = _attention(dev, 4.0, 800.0, 0.0)
    fp8 = dev.peak_flops("fp8") * dev.eff.attention_efficiency
    np.testing.assert_allclose(op.t_compute, op.flops / fp8, rtol=1e-12)


def test_family_without_a_kernel_figure_uses_16bit() -> None:
    dev = resolve.device("mi300x")
    assert dev.eff.mla_decode_efficiency is None
    plan = dataclasses.replace(PLAN, weight_dtype="fp8")
    fc = forward_cost(resolve.model("deepseek-r1"), dev, plan, 64.0, 1.0, 4000.0)
    (op,) = [o for o in fc.ops if o.name == "attention"]
    bf16 = dev.peak_flops("bf16") * dev.eff.attention_efficiency
    np.testing.assert_allclose(op.t_compute, op.flops / bf16, rtol=1e-12)


@pytest.mark.parametrize("chip", ["b200", "h200-sxm", "mi300x", "maia-200", "tpu-v6e"])
def test_step_kernel_matches_forward_cost(chip: str) -> None:
    m, dev = resolve.model("deepseek-r1"), resolve.device(chip)
    plan = PLAN if chip == "b200" else dataclasses.replace(PLAN, weight_dtype="fp8")
    B, s, c = np.meshgrid([1.0, 64.0, 512.0], [1.0, 2.0, 800.0], [0.0, 5000.0])
    want = forward_cost(m, dev, plan, B, s, c).time
    got = build_step_kernel(m, dev, plan).step_time(NP, B, s, c)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize(
    ("chip", "want"),
    [
        ("b200", "0.41 of the b200 bf16"),
        ("mi300x", "no MLA kernel figure"),
        ("maia-200", "fp8 peak"),
    ],
)
def test_the_answer_states_the_mla_rate(chip: str, want: str) -> None:
    from siliconomics.inference.estimate import estimate_static

    plan = PLAN if chip == "b200" else dataclasses.replace(PLAN, weight_dtype="fp8")
    est = estimate_static(resolve.model("deepseek-r1"), resolve.device(chip), plan, 64, 1000, 100)
    notes = [a for a in est.assumptions if a.startswith("MLA decode attention")]
    assert len(notes) == 1 and want in notes[0]
    dense = estimate_static(
        resolve.model("llama-3.1-8b"),
        resolve.device(chip),
        dataclasses.replace(plan, dp=1, ep=1),
        8,
        100,
        10,
    )
    assert not any(a.startswith("MLA") for a in dense.assumptions)

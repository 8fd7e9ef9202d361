"""Speculative decoding with the model's MTP module: a step verifies K + 1 tokens per sequence
through the decode kernels and runs the one-layer MTP module K times; it emits ``accepted``
tokens per sequence (an input). Checked against the one published sweep that gives both the
acceptance and the speed: DeepSeek-R1 on 8 B200, batch 1, 1k/2k, MTP 1-5 (TensorRT-LLM tech
blog 1, 'Autoregressive MTP Layers')."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from siliconomics import resolve
from siliconomics.cli import app, main
from siliconomics.errors import SiliconomicsError
from siliconomics.inference.estimate import estimate_max_throughput, estimate_static
from siliconomics.inference.forward import forward_cost
from siliconomics.inference.speculative import Speculative, step_cost
from siliconomics.parallel.plan import InferencePlan

R1 = "deepseek-r1"
# blog 1's layout: attention TP8, experts TP2 x EP4 (the 253 tokens/s row), NVFP4 experts
BLOG1 = InferencePlan(tp=8, ep=4, weight_dtype="fp4", act_dtype="fp4", kv_dtype="bf16")
# (draft tokens, acceptance rate = tokens per step, tokens/s per user); without MTP: 111
BLOG1_MTP = [(1, 1.92, 198), (2, 2.58, 250), (3, 2.82, 253), (4, 2.99, 245), (5, 3.01, 239)]


def test_speedups_match_the_published_mtp_sweep() -> None:
    """Given each run's acceptance, the modelled speed-up over no MTP is within 8% of the
    measured one for MTP 1-5 (the cost of verifying more tokens and drafting more)."""
    m, dev = resolve.model(R1), resolve.device("b200")
    base = float(estimate_static(m, dev, BLOG1, 1, 1024, 2048).tpot_s)
    for k, acc, tps in BLOG1_MTP:
        e = estimate_static(m, dev, BLOG1, 1, 1024, 2048, spec=Speculative(k, acc))
        modelled = base / float(e.tpot_s)
        assert modelled == pytest.approx(tps / 111.0, rel=0.08), (k, modelled)


def test_verification_runs_the_decode_kernels() -> None:
    m, dev = resolve.model(R1), resolve.device("b200")

    def attn(verify: bool):
        fc = forward_cost(m, dev, BLOG1, 4.0, 4.0, 3000.0, verify=verify)
        (op,) = [o for o in fc.ops if o.name == "attention"]
        return op

    # absorbed (2 x 512 + 64) against decompressed (192 + 128) FLOPs per key and head
    np.testing.assert_allclose(attn(True).flops / attn(False).flops, 1088 / 320, rtol=1e-12)
    rate = dev.mla_decode_flops("fp4", "bf16")
    np.testing.assert_allclose(attn(True).t_compute, attn(True).flops / rate, rtol=1e-12)


def test_a_step_is_verification_plus_k_drafts() -> None:
    m, dev = resolve.model(R1), resolve.device("b200")
    spec = Speculative(3, 2.5)
    fc = step_cost(m, dev, BLOG1, 8.0, 2000.0, spec)
    drafts = [op for op in fc.ops if op.name.startswith("mtp_")]
    names = {op.name for op in drafts}
    assert {"mtp_eh_proj", "mtp_lm_head", "mtp_attention", "mtp_moe_up"} <= names
    verify = forward_cost(m, dev, BLOG1, 8.0, 4.0, 2000.0, logits_tokens=32.0, verify=True)
    extra = sum(float(op.time) for op in drafts)
    assert float(fc.time) == pytest.approx(float(verify.time) + extra, rel=1e-12)


def test_nothing_accepted_costs_more_than_plain_decoding() -> None:
    m, dev = resolve.model(R1), resolve.device("b200")
    plain = estimate_static(m, dev, BLOG1, 16, 1024, 512)
    spec = estimate_static(m, dev, BLOG1, 16, 1024, 512, spec=Speculative(2, 1.0))
    assert float(spec.tpot_s) > float(plain.tpot_s)
    # the MTP layer's weights and KV cache are held too
    assert float(spec.memory.weights) > float(plain.memory.weights)


def test_max_throughput_gains_with_good_acceptance() -> None:
    m, dev = resolve.model(R1), resolve.device("h200-sxm")
    plan = InferencePlan(tp=8, ep=8, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
    plain = estimate_max_throughput(m, dev, plan, 1024, 1024, batch_limit=32)
    spec = estimate_max_throughput(
        m, dev, plan, 1024, 1024, batch_limit=32, spec=Speculative(1, 1.9)
    )
    assert float(spec.output_tokens_per_s) > 1.3 * float(plain.output_tokens_per_s)


@pytest.mark.parametrize(
    ("k", "acc", "msg"),
    [
        (0, 1.0, "--mtp"),
        (17, 2.0, "from 1 to 16"),
        (2, 0.5, r"\[1, 3\]"),
        (2, 3.5, r"\[1, 3\]"),
        (1, float("nan"), "--accepted"),
    ],
)
def test_bad_speculation_is_a_clear_error(k: int, acc: float, msg: str) -> None:
    with pytest.raises(SiliconomicsError, match=msg):
        Speculative(k, acc)


def test_a_model_without_mtp_module_is_refused() -> None:
    m, dev = resolve.model("llama-3.1-8b"), resolve.device("h100-sxm")
    with pytest.raises(SiliconomicsError, match="no multi-token-prediction module"):
        estimate_static(m, dev, InferencePlan(), 1, 128, 128, spec=Speculative(1, 1.5))


def _error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    assert e.value.code not in (0, None)
    return capsys.readouterr().err


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    base = "estimate --model deepseek-r1 --chip b200 --tp 8 --ep 4 --weights-dtype fp4 --mtp 3"
    assert "--mtp needs --accepted" in _error(capsys, *base.split())
    assert "[1, 4]" in _error(capsys, *base.split(), "--accepted", "5")
    dense = "estimate --model llama-3.1-8b --chip h100-sxm --mtp 1 --accepted 1.5"
    err = _error(capsys, *dense.split())
    assert "no multi-token-prediction module" in err
    assert "Traceback" not in err
    run = CliRunner().invoke
    res = run(app, [*base.split(), "--accepted", "2.82"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "speculative decoding: MTP module drafts 3" in res.output
    assert "mtp_lm_head" in res.output

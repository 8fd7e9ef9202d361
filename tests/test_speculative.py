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


def test_compare_with_mtp_is_the_reference_estimate_of_its_choice() -> None:
    """`compare --mtp` picks, per chip, a layout and batch limit whose figures are those of the
    speculative max-throughput estimate at that layout and limit; under a tight TPOT target
    the drafts buy a larger batch and more tokens per chip than plain decoding."""
    from siliconomics.search.compare import BATCH_LADDER, compare_chips

    m, dev = resolve.model(R1), resolve.device("b200")
    kw = dict(input_len=1024, output_len=2048, tpot_s=0.02, weight_dtype="fp8")
    kw |= dict(act_dtype="fp8", kv_dtype="fp8")
    spec = Speculative(3, 2.82)
    (plain,) = compare_chips(m, [dev], **kw).choices  # type: ignore[arg-type]
    cmp = compare_chips(m, [dev], spec=spec, **kw)  # type: ignore[arg-type]
    (ch,) = cmp.choices
    assert cmp.spec == spec and ch.feasible and plain.feasible
    assert ch.value("tpot_s") <= 0.02
    assert ch.value("tokens_per_s_per_chip") > 2 * plain.value("tokens_per_s_per_chip")
    assert ch.value("batch") > plain.value("batch")
    assert ch.assessment is not None
    p = ch.assessment.estimate.plan
    ref = estimate_max_throughput(m, dev, p, 1024, 2048, batch_limit=BATCH_LADDER, spec=spec)
    i = ch.index
    assert ch.value("tpot_s") == float(np.broadcast_to(ref.tpot_s, ref.batch.shape)[i])
    assert ch.value("tokens_per_s") == float(
        np.broadcast_to(ref.output_tokens_per_s, ref.batch.shape)[i]
    )


def test_compare_cli_with_mtp(capsys: pytest.CaptureFixture[str]) -> None:
    base = "compare --model deepseek-r1 --chip b200 --input 1024 --output 1024 --tpot 30ms"
    assert "--mtp needs --accepted" in _error(capsys, *base.split(), "--mtp", "2")
    assert "--accepted needs --mtp" in _error(capsys, *base.split(), "--accepted", "2")
    dense = "compare --model llama-3.1-8b --chip h100-sxm --mtp 1 --accepted 1.5"
    assert "no multi-token-prediction module" in _error(capsys, *dense.split())
    res = CliRunner().invoke(
        app, [*base.split(), "--mtp", "2", "--accepted", "2.5", "--json"], env={"COLUMNS": "200"}
    )
    assert res.exit_code == 0, res.output
    import json

    d = json.loads(res.output)
    assert d["speculative"]["draft_tokens"] == 2 and d["speculative"]["accepted"] == 2.5
    assert d["chips"][0]["feasible"]


# --- the fleet planner -----------------------------------------------------------------------

R1_WORKLOAD = {
    "model": R1,
    "rate_rps": 4,
    "input": {"mean": 1000, "sigma": 0.5, "max": 8000},
    "output": {"mean": 2000, "sigma": 0.5, "max": 16000},
    "slo": {"ttft": "5s", "tpot": "25ms", "percentile": 90},
    "weights_dtype": "fp8",
    "act_dtype": "fp8",
    "kv_dtype": "fp8",
}


def _plan(disaggregation: str, **workload: object):
    from siliconomics.fleet.planner import plan_fleet, prepare
    from siliconomics.fleet.spec import parse_spec
    from siliconomics.resolve import packaged

    raw = {
        "chips": ["b200", "h200-sxm"],
        "disaggregation": disaggregation,
        "workloads": [{**R1_WORKLOAD, **workload}],
    }
    return plan_fleet(prepare(parse_spec(raw), packaged()))


def test_plan_with_mtp_buys_fewer_chips_and_says_how_it_checked() -> None:
    """Under a 25 ms TPOT target the drafts let a replica run a larger batch, so the fleet is
    cheaper; its latency comes from the estimate (the simulator does not model MTP), and the
    chosen pool's TPOT is the speculative estimate's."""
    from siliconomics.fleet.confirm import NO_MTP_SIM

    plain = _plan("off")
    mtp = _plan("off", mtp={"draft_tokens": 3, "accepted": 2.82})
    assert mtp.usd_per_hour < 0.7 * plain.usd_per_hour
    (lat,) = mtp.latency
    assert lat.source == NO_MTP_SIM and lat.tpot_p_s <= 0.025
    (plain_lat,) = plain.latency
    assert plain_lat.source.startswith("simulation")


def test_disaggregated_decode_pool_prices_the_drafts() -> None:
    from siliconomics.fleet.disagg import decode_grid
    from siliconomics.fleet.spec import Workload
    from siliconomics.fleet.workload import Bucket

    m, dev = resolve.model(R1), resolve.device("b200")
    b = Bucket(
        workload="w", index=0, lo=0, hi=np.inf, share=1.0, rate_rps=1.0, mean_input=1000.0,
        mean_output=2000.0, p_input=1500.0, p_output=3000.0,
    )  # fmt: skip
    plain_w = Workload.model_validate(R1_WORKLOAD)
    spec_w = Workload.model_validate({**R1_WORKLOAD, "mtp": {"draft_tokens": 1, "accepted": 1.9}})
    plain, spec = decode_grid(m, dev, plain_w, [b]), decode_grid(m, dev, spec_w, [b])
    assert [p.tp for p in plain.plans] == [p.tp for p in spec.plans]
    # per layout and batch: TPOT = speculative step / accepted, at the same mean contexts
    i = next(j for j, q in enumerate(spec.plans) if q.tp == 8)
    p = spec.plans[i]
    batch = float(spec.cap_rps[i, 0, 6] * 2000.0 * spec.tpot_s[i, 0, 6])  # cap = batch / (O tpot)
    assert batch == pytest.approx(64.0)
    ctx = 1000.0 + 2000.0 * (np.arange(4) + 0.5) / 4.0
    micro = np.full(4, max(batch / p.pp, 1.0))
    step = step_cost(m, dev, p, micro, ctx, Speculative(1, 1.9)).time.mean()
    assert float(spec.tpot_s[i, 0, 6]) == pytest.approx(float(step) / 1.9, rel=1e-12)
    assert float(spec.tpot_s[i, 0, 6]) < float(plain.tpot_s[i, 0, 6])


@pytest.mark.parametrize(
    ("mtp", "model", "msg"),
    [
        ({"draft_tokens": 3, "accepted": 5}, R1, r"workloads\.0\.mtp.*\[1, 4\]"),
        ({"draft_tokens": 0, "accepted": 1}, R1, r"workloads\.0\.mtp.*draft_tokens"),
        ({"draft_tokens": 1}, R1, r"workloads\.0\.mtp\.accepted"),
        ({"draft_tokens": 1, "accepted": 1.5}, "llama-3.1-8b", r"workloads\.0\.mtp.*no multi"),
    ],
)
def test_plan_spec_mtp_errors_name_the_field(mtp: dict, model: str, msg: str) -> None:
    with pytest.raises(SiliconomicsError, match=msg):
        _plan("off", model=model, mtp=mtp)


def test_tco_with_mtp(capsys: pytest.CaptureFixture[str]) -> None:
    """`tco --mtp` prices tokens at the speculative throughput (the compare search's choice)."""
    from siliconomics import api

    kw = dict(input_len=1024, output_len=2048, tpot="20ms", weights_dtype="fp8")
    kw |= dict(act_dtype="fp8", kv_dtype="fp8")
    plain = api.tco("b200", R1, **kw).value.throughput  # type: ignore[arg-type]
    spec = api.tco("b200", R1, mtp=3, accepted=2.82, **kw).value.throughput  # type: ignore[arg-type]
    assert plain is not None and spec is not None
    assert spec.output_tokens_per_s_per_chip > 2 * plain.output_tokens_per_s_per_chip
    assert spec.speculative.startswith("speculative decoding") and not plain.speculative
    assert "give --model" in _error(
        capsys, "tco", "--chip", "b200", "--mtp", "1", "--accepted", "1.5"
    )

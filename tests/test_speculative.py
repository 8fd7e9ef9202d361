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


def test_plan_with_mtp_buys_fewer_chips_confirmed_in_the_simulator() -> None:
    """Under a 25 ms TPOT target the drafts let a replica run a larger batch, so the fleet is
    cheaper; the simulator confirms its latency with the speculative engine."""
    plain = _plan("off")
    mtp = _plan("off", mtp={"draft_tokens": 3, "accepted": 2.82})
    assert mtp.usd_per_hour < 0.7 * plain.usd_per_hour
    for r in (plain, mtp):
        (lat,) = r.latency
        assert lat.source.startswith("simulation") and lat.tpot_p_s <= 0.025


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


# --- the serving simulator -------------------------------------------------------------------

H200_R1 = dict(tp=8, ep=8, weights_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")


@pytest.mark.parametrize("acc", [1.0, 1.9, 2.5, 2.82, 3.0, 4.0])
def test_emission_schedule_and_finish_step(acc: float) -> None:
    """After k steps every decode sequence has emitted E(k) = floor(k * accepted) tokens; a
    sequence with r tokens to go at step k finishes at the first step f with
    E(f) - E(k) >= r."""
    from siliconomics.serving.engine import Engine

    e = Engine.__new__(Engine)
    e.accept = acc
    rng = np.random.default_rng(1)
    for _ in range(300):
        k, r = int(rng.integers(0, 5000)), int(rng.integers(1, 3000))
        f = e._finish(k, r)
        assert e.emitted(f) - e.emitted(k) >= r
        assert f == k + 1 or e.emitted(f - 1) - e.emitted(k) < r
    assert e.emitted(1000) == int(np.floor(1000 * acc + 1e-9))


def test_speculative_step_table_matches_the_step_cost() -> None:
    from siliconomics.serving.steptime import step_time_model

    m, dev = resolve.model(R1), resolve.device("h200-sxm")
    plan = InferencePlan(tp=8, ep=8, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
    spec = Speculative(3, 2.82)
    stm = step_time_model(m, dev, plan, max_tokens=8192, max_seqs=256, max_ctx=8192, spec=spec)
    assert stm.spec == spec and stm.verify_tokens == 4
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(40):
        b = int(rng.integers(1, 257))
        ctx = rng.integers(100, 6000, size=b).astype(float)
        worst = max(worst, abs(stm.decode_step(b, ctx.sum()) / stm.exact(list(ctx), [], b) - 1))
    assert worst < 0.01  # bilinear in (sequences, mean context) over the whole step
    # a mixed step: the drafts' step plus what the prompt adds to the verified tokens
    dec = stm.decode_step(32, 32 * 2000.0)
    both = stm.mixed_ranks(32, 32 * 2000.0, [(1024, 0)], 33)
    assert dec < both < dec + stm.prefill_step([1024])
    assert both == pytest.approx(stm.exact([2000.0] * 32, [(1024.0, 0.0)], 33), rel=0.01)


def test_offline_simulation_with_mtp_matches_the_estimate() -> None:
    """All requests at t = 0, one length: the simulated throughput and TPOT are those of the
    speculative max-throughput estimate (as without drafts), and the engine takes
    1/accepted of the decode steps."""
    from siliconomics import api

    m, dev = resolve.model(R1), resolve.device("h200-sxm")
    plan = InferencePlan(tp=8, ep=8, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
    kw = dict(input_len=1024, output_len=1024, requests=600, max_seqs=64, **H200_R1)
    steps = {}
    for spec in (None, Speculative(1, 1.9), Speculative(3, 2.82)):
        k = None if spec is None else spec.draft_tokens
        a = None if spec is None else spec.accepted
        r = api.simulate(R1, "h200-sxm", mtp=k, accepted=a, **kw).value  # type: ignore[arg-type]
        est = estimate_max_throughput(m, dev, plan, 1024, 1024, batch_limit=64, spec=spec)
        assert r.output_tokens_per_s == pytest.approx(float(est.output_tokens_per_s), rel=0.05)
        assert r.tpot.mean == pytest.approx(float(est.tpot_s), rel=0.05)
        assert r.n_requests == 600
        steps[a] = r.pools[0].steps
    assert steps[None] / steps[1.9] == pytest.approx(1.9, rel=0.02)
    assert steps[None] / steps[2.82] == pytest.approx(2.82, rel=0.02)


@pytest.mark.parametrize(
    "extra",
    [
        dict(tp=1, dp=8, adp_balance=(9, 3)),
        dict(scheduler="continuous"),
        dict(rate=2.0, prefill=("h200-sxm", 8, 1), decode=("h200-sxm", 8, 1)),
    ],
)
def test_every_engine_speculates_and_finishes_every_request(extra: dict) -> None:
    """Attention-DP balancing, prefill-first continuous batching and a disaggregated decode
    pool: every request completes with all its tokens, faster per token than without."""
    from siliconomics import api

    kw = dict(H200_R1, input_len="lognormal:1000,0.5", output_len="lognormal:800,0.6")
    kw |= dict(requests=200, rate=3.0) | extra
    plain = api.simulate(R1, "h200-sxm", **kw).value  # type: ignore[arg-type]
    spec = api.simulate(R1, "h200-sxm", mtp=2, accepted=2.4, **kw).value  # type: ignore[arg-type]
    assert spec.n_requests == plain.n_requests == 200
    assert np.array_equal(spec.log.output_tokens, plain.log.output_tokens)
    assert np.isfinite(spec.log.finish_s).all()
    assert spec.tpot.mean < 0.7 * plain.tpot.mean
    assert any("MTP module drafts 2" in a for a in spec.assumptions)


def test_preempted_speculative_sequences_resume_and_free_their_blocks() -> None:
    """A KV cache too small for the batch: sequences are preempted and re-prefilled with what
    they had emitted; at the end every block is free again."""
    from siliconomics.serving.cluster import build
    from siliconomics.serving.config import PoolConfig, ServingConfig
    from siliconomics.serving.engine import Ledger
    from siliconomics.serving.simulate import simulate
    from siliconomics.serving.workload import Arrival, Lengths, Workload

    m, dev = resolve.model(R1), resolve.device("h200-sxm")
    plan = InferencePlan(tp=8, ep=8, weight_dtype="fp8", act_dtype="fp8", kv_dtype="bf16")
    cfg = ServingConfig(
        model=m, pool=PoolConfig(device=dev, plan=plan, max_seqs=None, spec=Speculative(3, 2.7))
    )
    w = Workload(
        arrival=Arrival(kind="burst"),
        input=Lengths(params=(4000,)),
        output=Lengths(params=(4000,)),
        n_requests=300,
    )
    r = simulate(cfg, w, seed=0)
    assert r.preemptions > 0 and r.n_requests == 300 and np.isfinite(r.log.finish_s).all()
    pools, _ = build(cfg, 8000, Ledger([], [], []), None)
    assert pools[0].kv_tokens < 300 * 8000  # the cache cannot hold them all at once


def test_simulate_cli_with_mtp(capsys: pytest.CaptureFixture[str]) -> None:
    base = "simulate --model deepseek-r1 --chip h200-sxm --tp 8 --ep 8 --weights-dtype fp8"
    base += " --rate 2 --requests 40 --input 500 --output 300"
    err = _error(capsys, *base.split(), "--mtp", "2", "--accepted", "2", "--scheduler", "static")
    assert "chunked and continuous" in err
    err = _error(capsys, *base.split(), "--mtp", "2", "--accepted", "2", "--graph-sizes", "64")
    assert "CUDA-graph padding" in err
    assert "--mtp needs --accepted" in _error(capsys, *base.split(), "--mtp", "2")
    res = CliRunner().invoke(
        app, [*base.split(), "--mtp", "2", "--accepted", "2.4"], env={"COLUMNS": "200"}
    )
    assert res.exit_code == 0, res.output
    assert "MTP 2 @ 2.4" in res.output

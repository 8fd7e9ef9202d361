"""Serving workloads (arrivals, lengths, traces) and the tabulated step-time model."""

import io

import numpy as np
import pytest

from siliconomics.catalog.registry import get_chip, get_efficiency, get_model
from siliconomics.errors import SiliconomicsError, UnknownIdError
from siliconomics.inference.forward import forward_cost
from siliconomics.inference.graphs import padding_time
from siliconomics.ops.device import Device
from siliconomics.parallel.plan import InferencePlan
from siliconomics.serving import (
    Arrival,
    Lengths,
    Workload,
    named_workload,
    parse_arrival,
    parse_lengths,
    parse_trace_csv,
    trace_workload,
)
from siliconomics.serving.steptime import StepTimeModel


def gaps(kind: str, n: int = 40_000, **kw: object) -> np.ndarray:
    a = Arrival(kind=kind, rate=5.0, **kw).sample(n, np.random.default_rng(1))  # type: ignore[arg-type]
    return np.diff(a)


def test_arrival_processes_have_their_rate_and_burstiness():
    g = gaps("poisson")
    assert g.mean() == pytest.approx(0.2, rel=0.02)
    assert g.std() / g.mean() == pytest.approx(1.0, rel=0.03)  # exponential: CV 1
    g = gaps("gamma", cv=3.0)
    assert g.mean() == pytest.approx(0.2, rel=0.05)
    assert g.std() / g.mean() == pytest.approx(3.0, rel=0.1)
    assert np.all(gaps("constant", n=10) == pytest.approx(0.2))
    assert np.all(Arrival(kind="burst").sample(5, np.random.default_rng(0)) == 0)


def test_piecewise_rate_keeps_the_mean_and_follows_the_profile():
    # rate ratio 1:3 over two 10 s segments, mean 5/s
    a = Arrival(kind="piecewise", rate=5.0, profile=((1.0, 10.0), (3.0, 10.0)))
    t = a.sample(20_000, np.random.default_rng(2))
    assert len(t) / t[-1] == pytest.approx(5.0, rel=0.02)
    phase = (t % 20.0) < 10.0
    assert phase.sum() / (~phase).sum() == pytest.approx(1 / 3, rel=0.05)


def test_same_seed_other_rate_scales_arrivals_exactly():
    w = Workload(arrival=Arrival(rate=2.0), n_requests=50)
    a = w.sample(np.random.default_rng(7))
    b = w.with_rate(4.0).sample(np.random.default_rng(7))
    assert np.allclose(a.arrival_s, 2 * b.arrival_s)
    assert np.array_equal(a.input_tokens, b.input_tokens)


def test_length_distributions():
    rng = np.random.default_rng(3)
    x = parse_lengths("lognormal:1000,0.8").sample(100_000, rng)
    assert x.mean() == pytest.approx(1000, rel=0.02)
    assert np.median(x) == pytest.approx(1000 * np.exp(-0.32), rel=0.03)
    u = parse_lengths("uniform:100,200").sample(10_000, rng)
    assert u.min() >= 100 and u.max() <= 200
    assert set(parse_lengths("empirical:5,7").sample(100, rng).tolist()) == {5, 7}
    assert np.all(parse_lengths("512").sample(3, rng) == 512)
    assert parse_lengths("lognormal:100,1,150").sample(1000, rng).max() <= 150


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("zipf:3", "allowed"),
        ("uniform:5", "takes 2-2"),
        ("uniform:9,3", "LO <= HI"),
        ("lognormal:-1,1", "must be > 0"),
        ("abc", "expected a token count"),
    ],
)
def test_bad_lengths_are_clear_errors(text, match):
    with pytest.raises(SiliconomicsError, match=match):
        parse_lengths(text)


def test_bad_arrivals_are_clear_errors():
    with pytest.raises(SiliconomicsError, match="allowed"):
        parse_arrival("weibull", 1.0)
    with pytest.raises(SiliconomicsError, match="rate must be > 0"):
        Arrival(rate=0.0)
    with pytest.raises(SiliconomicsError, match="segment"):
        parse_arrival("piecewise:3", 1.0)


def test_trace_csv_replay_and_tiling():
    text = "arrived_at,num_prefill_tokens,num_decode_tokens\n0.5,10,2\n0.0,20,3\n1.0,30,4\n"
    tr = parse_trace_csv(io.StringIO(text))
    assert tr.input_tokens.tolist() == [20, 10, 30]  # sorted by arrival
    w = trace_workload(tr, n_requests=7)
    r = w.sample(np.random.default_rng(0))
    assert len(r) == 7 and np.all(np.diff(r.arrival_s) >= 0)
    assert r.input_tokens.tolist() == [20, 10, 30, 20, 10, 30, 20]
    fast = trace_workload(tr, rate=4.0).sample(np.random.default_rng(0))
    assert fast.arrival_s[-1] == pytest.approx(0.75)  # 3 requests in 1 s = 3/s; at 4/s: 0.75 s
    with pytest.raises(SiliconomicsError, match="needs columns"):
        parse_trace_csv(io.StringIO("a,b\n1,2\n"))
    with pytest.raises(SiliconomicsError, match="line 2"):
        parse_trace_csv(io.StringIO("input_tokens,output_tokens\nx,1\n"))


def test_named_workloads_follow_their_summary():
    w = named_workload("azure-conv", n_requests=20_000, rate=10.0)
    r = w.sample(np.random.default_rng(0))
    # Summary of 19,366 Azure conversation requests: mean input 1154.7, output 211.1.
    assert r.input_tokens.mean() == pytest.approx(1154.7, rel=0.05)
    assert r.output_tokens.mean() == pytest.approx(211.1, rel=0.05)
    assert len(r) / r.arrival_s[-1] == pytest.approx(10.0, rel=0.05)
    code = named_workload("azure-code", n_requests=10)
    assert code.arrival.kind == "gamma" and code.arrival.cv > 5  # the coding trace is bursty
    with pytest.raises(UnknownIdError, match="azure-conv"):
        named_workload("azure-chat")


def test_named_summary_matches_the_shared_trace(shared):
    path = shared / "data/traces/splitwise_conv.csv"
    with path.open() as fh:
        tr = parse_trace_csv(fh)
    w = named_workload("azure-conv")
    assert w.mean_input == pytest.approx(tr.input_tokens.mean(), rel=0.03)
    assert w.mean_output == pytest.approx(tr.output_tokens.mean(), rel=0.05)


@pytest.fixture(scope="module")
def stm():
    m, c = get_model("llama-3.1-70b"), get_chip("h100-sxm")
    return StepTimeModel(
        m,
        Device(chip=c, eff=get_efficiency(c.family)),
        InferencePlan(tp=4),
        max_tokens=8192,
        max_seqs=512,
        max_ctx=16384,
    )


def test_step_time_tables_match_exact_forward_cost(stm):
    # Documented in docs/SERVING.md: decode exact to rounding, prefill chunks < 0.1%.
    rng = np.random.default_rng(0)
    worst_dec = worst_pre = 0.0
    for _ in range(60):
        b = int(rng.integers(1, 513))
        ctx = rng.integers(1, 12_000, size=b).astype(float)
        got = stm.decode_step(b, ctx.sum())
        worst_dec = max(worst_dec, abs(got / stm.exact(list(ctx), [], b) - 1))
        s, c = int(rng.integers(1, 8192)), float(rng.integers(0, 8000))
        got = stm.dense(s) + stm.head(1) + stm.attn_prefill(s, c)
        worst_pre = max(worst_pre, abs(got / stm.exact([], [(s, c)], 1) - 1))
    assert worst_dec < 1e-9
    assert worst_pre < 1e-3


def test_step_time_equals_forward_cost_for_uniform_batches(stm):
    fc = forward_cost(stm.model, stm.dev, stm.plan, 64.0, 1.0, 3000.0)
    assert stm.decode_step(64, 64 * 3000.0) == pytest.approx(float(fc.time), rel=1e-9)
    fc = forward_cost(stm.model, stm.dev, stm.plan, 1.0, 2048.0, 0.0)
    assert stm.prefill_step([2048]) == pytest.approx(float(fc.time), rel=1e-3)
    ctx = 3000.0 + 64 * np.arange(5)
    assert np.allclose(stm.decode_steps(64, ctx), [stm.decode_step(64, c) for c in ctx])


def test_mixed_step_costs_more_than_either_part(stm):
    dec = stm.decode_step(32, 32 * 2000.0)
    pre = stm.prefill_step([1024])
    both = stm.exact([2000.0] * 32, [(1024.0, 0.0)], 33)
    assert max(dec, pre) < both < dec + pre  # one pass over the weights serves both


def test_graph_padding_matches_the_analytic_rule(stm):
    """Generation-only steps run the token-proportional ops at the captured size the batch is
    padded to, as inference/graphs.py prices it for the analytic estimate."""
    sizes = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
    m, d, p = stm.model, stm.dev, stm.plan
    padded = StepTimeModel(m, d, p, max_tokens=8192, max_seqs=512, max_ctx=16384, graph_sizes=sizes)
    for b, ctx in ((37, 1500.0), (64, 3000.0), (100, 800.0), (300, 2000.0)):
        extra = padded.decode_step(b, b * ctx) - stm.decode_step(b, b * ctx)
        want = float(padding_time(m, d, p, float(b), ctx, sizes))
        assert extra == pytest.approx(want, rel=1e-6, abs=1e-12)
        assert (extra > 0) == (b not in sizes and b < 128)
        ends = padded.decode_run_ends(b, b * ctx, 3)
        assert ends[0] == pytest.approx(padded.decode_step(b, b * ctx), rel=1e-12)
        steps = padded.decode_steps(b, np.asarray([b * ctx]))
        assert steps[0] == pytest.approx(padded.decode_step(b, b * ctx), rel=1e-12)
    assert padded.padded(37) == 64 and padded.padded(300) == 300 and stm.padded(37) == 37


def test_workload_validation():
    with pytest.raises(SiliconomicsError, match="requests must be a positive integer"):
        Workload(n_requests=0)
    assert Lengths(kind="uniform", params=(10, 30)).mean == 20


def test_spec_lengths_sample_through_the_one_sampler():
    from siliconomics.fleet.spec import Lengths as SpecLengths
    from siliconomics.fleet.spec import Slo as SpecSlo

    rng = np.random.default_rng(0)
    ln = SpecLengths(mean=1000, sigma=0.8, max=4000).to_lengths()
    x = ln.sample(200_000, rng)
    assert x.max() <= 4000 and x.min() >= 1
    assert abs(x.mean() / 1000 - 1) < 0.03  # clipping at 4000 trims the tail a little
    u = SpecLengths(mean=500, dist="uniform", min=100).to_lengths().sample(100_000, rng)
    assert u.min() >= 100 and u.max() <= 900 and abs(u.mean() - 500) < 3
    fixed = SpecLengths(mean=300.4, dist="fixed").to_lengths().sample(5, rng)
    assert fixed.tolist() == [300] * 5
    slo = SpecSlo(ttft="2s", tpot="50ms", percentile=90).to_slo()
    assert (slo.ttft_s, slo.tpot_s, slo.percentile) == (2.0, 0.05, 90)

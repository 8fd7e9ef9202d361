"""Serving simulator: queueing theory, invariants, schedulers, routers, disaggregation,
capacity search."""

import math

import numpy as np
import pytest

import siliconomics.serving.engine as engine_mod
import siliconomics.serving.fastcore as fastcore
from siliconomics.catalog.registry import get_model
from siliconomics.economics.serving_cost import price_simulation
from siliconomics.errors import DoesNotFitError, SiliconomicsError
from siliconomics.parallel.plan import InferencePlan
from siliconomics.resolve import default_pricing, device
from siliconomics.serving import (
    Arrival,
    Lengths,
    Slo,
    Workload,
    max_rate,
    min_replicas,
    simulate,
)
from siliconomics.serving.capacity import SATURATED
from siliconomics.serving.config import PoolConfig
from siliconomics.serving.spec import make_config

M8 = get_model("llama-3.1-8b")


def config(
    model, dev, *, tp=1, replicas=1, router="least-tokens", prefill=None, decode=None, **engine
):
    """One pool of ``replicas`` x tp on ``dev`` (engine limits in ``engine``)."""
    pool = PoolConfig(device=dev, plan=InferencePlan(tp=tp, replicas=replicas), **engine)
    return make_config(model, pool, prefill=prefill, decode=decode, router=router)


def wl(rate: float | None, n: int, inp: str = "512", out: str = "64") -> Workload:
    from siliconomics.serving.workload import parse_lengths

    arr = Arrival(kind="burst") if rate is None else Arrival(rate=rate)
    return Workload(arrival=arr, input=parse_lengths(inp), output=parse_lengths(out), n_requests=n)


def one_request_service(cfg, inp: int, out: int) -> float:
    return simulate(cfg, wl(None, 1, str(inp), str(out))).e2e.mean


def test_md1_mean_wait_matches_pollaczek_khinchine():
    # Batch size 1, fixed lengths: deterministic service S, Poisson arrivals = M/D/1.
    cfg = config(M8, device("h100-sxm"), max_seqs=1, scheduler="continuous")
    S = one_request_service(cfg, 512, 2)
    rho = 0.6
    r = simulate(cfg, wl(rho / S, 40_000, "512", "2"), seed=11)
    wq = r.log.queue_s
    assert np.allclose(r.log.finish_s - r.log.scheduled_s, S)  # deterministic service
    assert wq.mean() == pytest.approx(rho * S / (2 * (1 - rho)), rel=0.04)


def test_mg1_mean_wait_matches_pollaczek_khinchine():
    # Variable output lengths: M/G/1, W = lambda E[S^2] / (2 (1 - rho)) with the service
    # moments measured from the same run.
    cfg = config(M8, device("h100-sxm"), max_seqs=1, scheduler="chunked")
    S1 = one_request_service(cfg, 256, 20)
    lam = 0.5 / S1
    r = simulate(cfg, wl(lam, 30_000, "256", "uniform:2,38"), seed=5)
    s = r.log.finish_s - r.log.scheduled_s
    rho = lam * s.mean()
    expect = lam * (s**2).mean() / (2 * (1 - rho))
    assert r.log.queue_s.mean() == pytest.approx(expect, rel=0.05)


def test_every_request_finishes_and_tokens_add_up():
    cfg = config(M8, device("h100-sxm"), replicas=3, max_seqs=64)
    w = wl(40.0, 3000, "lognormal:800,0.7", "lognormal:150,0.6")
    r = simulate(cfg, w, seed=1)
    q = r.log
    assert r.n_requests == 3000 and np.all(np.isfinite(q.finish_s))
    assert np.all(q.arrival_s <= q.scheduled_s) and np.all(q.scheduled_s < q.first_token_s)
    assert np.all(q.first_token_s <= q.finish_s)
    assert set(q.replica.tolist()) == {0, 1, 2}
    processed = sum(e for e in [r.pools[0].steps]) > 0
    assert processed and r.output_tokens_per_s == pytest.approx(
        q.output_tokens.sum() / r.duration_s
    )
    again = simulate(cfg, w, seed=1)
    assert np.array_equal(again.log.finish_s, q.finish_s)  # deterministic
    other = simulate(cfg, w, seed=2)
    assert not np.array_equal(other.log.finish_s, q.finish_s)


@pytest.mark.parametrize(
    "kw",
    [
        {"scheduler": "continuous", "max_seqs": 32},
        {"scheduler": "chunked", "max_seqs": 512, "router": "least-tokens"},
        {"scheduler": "chunked", "router": "jsq", "decode": (device("h100-sxm"), 1, 2)},
        {"scheduler": "chunked", "max_seqs": 512, "heavy": True},  # KV runs out: preemptions
        # Offline bursts: requests wait while admission is blocked (sequence limit, KV blocks)
        {"scheduler": "chunked", "max_seqs": 48, "burst": True},
        # generation-only steps while requests wait are padded to a CUDA graph, run or not
        {"scheduler": "chunked", "max_seqs": 48, "burst": True, "graph_sizes": (1, 8, 64)},
        {"scheduler": "chunked", "burst": True, "heavy": True},
        {"scheduler": "continuous", "max_seqs": 48, "burst": True},
        {"scheduler": "continuous", "burst": True, "heavy": True},
    ],
)
def test_decode_runs_give_identical_results(monkeypatch, kw):
    monkeypatch.setattr(fastcore, "ENABLED", False)  # the Python loop's runs
    # Multi-step decode runs (cut short when work arrives) must reproduce step-by-step
    # simulation exactly, including routing on mid-run load, preemptions and requests
    # waiting while admission is blocked.
    heavy = kw.pop("heavy", False)
    burst = kw.pop("burst", False)
    cfg = config(M8, device("h100-sxm"), replicas=2, **kw)
    if burst:
        w = wl(None, 400, "uniform:2000,6000", "uniform:500,3000") if heavy else wl(None, 300)
    elif heavy:
        w = wl(20.0, 300, "4000", "uniform:1000,5000")
    else:
        w = wl(6.0, 500, "lognormal:1500,0.8", "lognormal:600,0.8")
    fast = simulate(cfg, w, seed=3)
    monkeypatch.setattr(engine_mod, "MIN_RUN", 10**9)  # one event per step
    slow = simulate(cfg, w, seed=3)
    assert np.allclose(fast.log.finish_s, slow.log.finish_s, rtol=1e-12, atol=0)
    assert np.array_equal(fast.log.replica, slow.log.replica)
    assert [p.steps for p in fast.pools] == [p.steps for p in slow.pools]
    assert fast.preemptions == slow.preemptions
    assert fast.preemptions > 0 if heavy else True


def test_preemption_when_the_kv_cache_runs_out():
    # 512 x 8k-token sequences need ~4.2M tokens of KV; one H100 holds ~0.48M.
    cfg = config(M8, device("h100-sxm"), max_seqs=512, scheduler="continuous")
    r = simulate(cfg, wl(None, 600, "4000", "4000"), seed=0)
    assert r.preemptions > 0 and np.all(np.isfinite(r.log.finish_s))
    assert 0.5 < r.pools[0].kv_utilisation <= 1.0
    roomy = simulate(cfg, wl(None, 600, "200", "200"), seed=0)
    assert roomy.preemptions == 0


def test_chunked_prefill_keeps_tpot_flat_and_prefill_first_favours_ttft():
    w = wl(12.0, 1500, "lognormal:3000,0.5", "200")
    chunked = simulate(config(M8, device("h100-sxm"), max_batched_tokens=512), w, seed=4)
    cont = simulate(config(M8, device("h100-sxm"), scheduler="continuous"), w, seed=4)
    assert chunked.tpot.p99 < cont.tpot.p99  # prompts never stall decoding
    assert cont.ttft.p50 < chunked.ttft.p50  # ... at the cost of slower prompts


def test_static_batching_pads_and_waits():
    w = wl(20.0, 400, "uniform:100,300", "uniform:10,200")
    static = simulate(config(M8, device("inf2"), tp=2, scheduler="static", max_seqs=8), w, seed=0)
    cont = simulate(config(M8, device("inf2"), tp=2, scheduler="continuous", max_seqs=8), w, seed=0)
    assert static.ttft.mean > cont.ttft.mean
    assert static.pools[0].scheduler == "static" and np.all(np.isfinite(static.log.finish_s))
    with pytest.raises(DoesNotFitError, match="static batch"):
        simulate(
            config(M8, device("h100-sxm"), scheduler="static", max_seqs=4096),
            wl(None, 5),
            seed=0,
        )


def test_routers_spread_load():
    w = wl(30.0, 900, "lognormal:500,0.8", "lognormal:100,0.8")
    for router in ("round-robin", "least-tokens", "jsq"):
        r = simulate(config(M8, device("h100-sxm"), replicas=3, router=router), w, seed=0)
        counts = np.bincount(r.log.replica, minlength=3)
        assert counts.min() > 200, (router, counts)
    rr = simulate(config(M8, device("h100-sxm"), replicas=3, router="round-robin"), w, seed=0)
    assert np.bincount(rr.log.replica).tolist() == [300, 300, 300]


def test_disaggregated_prefill_on_gpu_decode_on_asic():
    cfg = config(
        M8,
        device("h100-sxm"),
        prefill=(device("h100-sxm"), 1, 1),
        decode=(device("trn2"), 1, 2),
        max_seqs=64,
    )
    r = simulate(cfg, wl(8.0, 500, "lognormal:1500,0.5", "100"), seed=0)
    assert [p.role for p in r.pools] == ["prefill", "decode"]
    assert [p.chip for p in r.pools] == ["h100-sxm", "trn2"]
    per_token = 32 * 2 * 8 * 128 * 2  # layers x K,V x kv heads x head dim x bf16
    assert r.kv_transfer_bytes == pytest.approx(per_token * r.log.input_tokens.sum())
    assert set(r.log.replica.tolist()) <= {1, 2}  # requests finish in the decode pool
    assert math.isnan(r.cost_usd)  # the simulator measures seconds, tokens and joules
    r = price_simulation(r, default_pricing())
    assert r.cost_usd == pytest.approx(sum(p.usd for p in r.pools)) and r.cost_usd > 0
    with pytest.raises(SiliconomicsError, match="static"):
        simulate(
            config(M8, device("h100-sxm"), scheduler="static", decode=(device("h100-sxm"), 1, 1)),
            wl(1, 3),
        )


def test_cost_and_energy_scale_with_chips_and_time():
    r = simulate(config(M8, device("h100-sxm"), replicas=2), wl(5.0, 300), seed=0)
    r = price_simulation(r, default_pricing())
    p = r.pools[0]
    assert r.cost_usd == pytest.approx(p.usd_per_chip_hour * 2 * r.duration_s / 3600)
    assert r.energy_j == pytest.approx(p.watts_per_chip * 2 * r.duration_s)
    assert 0 < p.mfu < 1 and 0 < p.utilisation <= 1


def test_slo_goodput_and_capacity_search():
    cfg = config(M8, device("h100-sxm"), max_seqs=128)
    w = wl(1.0, 600, "lognormal:800,0.6", "lognormal:120,0.5")
    slo = Slo(ttft_s=0.5, tpot_s=0.025)
    cap = max_rate(cfg, w, slo, rel_tol=0.05, max_requests=3000)
    assert cap.result is not None and cap.result.slo_met
    assert 0 < cap.rate < 3 * cap.saturation_rps
    above = simulate(
        cfg, w.with_rate(cap.rate * 1.3).with_requests(cap.result.n_requests), slo=slo, warmup=0.1
    )
    assert not above.slo_met
    assert above.goodput_fraction < 1.0
    tight = max_rate(cfg, w, Slo(tpot_s=1e-4), max_requests=1000)
    assert tight.result is None and "too slow" in tight.note


def test_capacity_never_exceeds_saturation():
    """A large sequence limit buffers arrivals above the saturation rate long enough for a
    finite trial to pass with loose limits; the stable search stops at saturation."""
    cfg = config(M8, device("h100-sxm"), max_seqs=2048)
    w = wl(1.0, 400, "512", "128")
    loose = Slo(ttft_s=30.0, tpot_s=1.0)
    cap = max_rate(cfg, w, loose, max_requests=4000)
    assert cap.binding == SATURATED and cap.rate == cap.saturation_rps
    assert cap.result is not None and cap.result.slo_met
    brief = max_rate(cfg, w, loose, max_requests=4000, stable=False)
    assert brief.rate > 1.1 * cap.saturation_rps  # the backlog had not reached the limits yet
    tight = max_rate(cfg, w, Slo(tpot_s=0.02), max_requests=4000)
    assert tight.binding != SATURATED and tight.rate < tight.saturation_rps


def test_min_replicas_is_the_fewest_that_pass():
    cfg = config(M8, device("h100-sxm"), max_seqs=64)
    w = wl(1.0, 1200, "lognormal:800,0.6", "lognormal:120,0.5")
    slo = Slo(ttft_s=0.5, tpot_s=0.02)
    res = min_replicas(cfg, w, slo, rate=25.0)
    assert res.replicas >= 2 and res.result is not None and res.result.slo_met
    fewer = config(M8, device("h100-sxm"), max_seqs=64, replicas=res.replicas - 1)
    assert not simulate(fewer, w.with_rate(25.0), slo=slo, warmup=0.1).slo_met
    with pytest.raises(SiliconomicsError, match="at least one SLO"):
        min_replicas(cfg, w, Slo(), rate=1.0)


def test_exactly_n_requests_and_model_that_does_not_fit():
    r = simulate(config(M8, device("h100-sxm")), wl(100.0, 1234), seed=0)
    assert r.n_requests == 1234 == len(r.log.finish_s)
    with pytest.raises(DoesNotFitError, match="KV cache holds"):
        simulate(config(M8, device("l4")), wl(1.0, 2, "200000", "10"))
    with pytest.raises(DoesNotFitError):
        simulate(config(get_model("llama-3.1-70b"), device("h100-sxm")), wl(1.0, 2))


def test_event_sink_gets_chrome_trace_events():
    events: list[dict] = []
    simulate(config(M8, device("h100-sxm"), replicas=2), wl(4.0, 50), sink=events.append)
    assert events and {"name", "ph", "ts", "dur", "pid", "tid"} <= set(events[0])
    assert {e["tid"] for e in events} == {0, 1}


def test_lengths_mean_used_in_capacity():
    assert Lengths(kind="lognormal", params=(100, 0.5)).mean == 100

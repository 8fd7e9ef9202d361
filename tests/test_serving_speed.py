"""Serving-simulator speed structures give the same answers as the plain ones: the indexed
router, the streaming (flat-memory) run and its quantile sketch."""

from __future__ import annotations

import numpy as np
import pytest

import siliconomics.serving.fastcore as fastcore
import siliconomics.serving.router as router_mod
from siliconomics.catalog.registry import get_model
from siliconomics.parallel.plan import InferencePlan
from siliconomics.resolve import device
from siliconomics.serving import Arrival, Workload, simulate
from siliconomics.serving.config import PoolConfig
from siliconomics.serving.spec import make_config
from siliconomics.serving.steptime import RUN_CLOSED
from siliconomics.serving.workload import parse_lengths

M8 = get_model("llama-3.1-8b")


def cfg(replicas: int, router: str = "least-tokens", **engine):
    pool = PoolConfig(device=device("h100-sxm"), plan=InferencePlan(replicas=replicas), **engine)
    return make_config(M8, pool, router=router)


def wl(rate: float, n: int, inp: str = "lognormal:600,0.8", out: str = "lognormal:150,0.9"):
    return Workload(
        arrival=Arrival(rate=rate),
        input=parse_lengths(inp),
        output=parse_lengths(out),
        n_requests=n,
    )


@pytest.fixture
def python_loop(monkeypatch):
    """These tests check the Python event loop's structures: keep the compiled core off."""
    monkeypatch.setattr(fastcore, "ENABLED", False)


def _log(r):
    g = r.log
    return (g.first_token_s, g.finish_s, g.scheduled_s, g.replica, g.preemptions)


@pytest.mark.parametrize("flat", [0, router_mod.FLAT_MAX])  # the tree walk, the leaf filter
@pytest.mark.parametrize("router", ["least-tokens", "jsq"])
@pytest.mark.parametrize("scheduler", ["chunked", "continuous"])
def test_indexed_router_picks_what_a_scan_picks(monkeypatch, python_loop, router, scheduler, flat):
    monkeypatch.setattr(router_mod, "FLAT_MAX", flat)
    # 40 replicas: indexed by default; a huge SCAN_MAX forces the scan. Loads light enough
    # that some replicas idle (ties at zero) and heavy enough that runs are cut.
    c = cfg(40, router, scheduler=scheduler, max_seqs=8)
    w = wl(90.0, 1500)
    fast = simulate(c, w, seed=3)
    monkeypatch.setattr(router_mod, "SCAN_MAX", 10**9)
    monkeypatch.setattr(router_mod, "SCANNED_RUN_CLOSED", RUN_CLOSED)  # the same run sums
    slow = simulate(c, w, seed=3)
    for a, b in zip(_log(fast), _log(slow), strict=True):
        assert np.array_equal(a, b)
    assert len(set(fast.log.replica.tolist())) == 40


def test_load_index_bound_never_exceeds_the_load(python_loop):
    from siliconomics.serving.cluster import _Events

    seen = []
    kick = _Events.kick

    def checked(self, e, t):
        kick(self, e, t)
        if e.run_steps:  # the bound holds at any instant before the run's completion event
            end = e.run_t0 + e.run.end(e.run_steps)
            for x in np.linspace(t, end, 7)[:-1]:
                assert router_mod.tokens_bound(e) <= router_mod.tokens_at(e, float(x))
            seen.append(e.run_steps)

    mp = pytest.MonkeyPatch()
    mp.setattr(_Events, "kick", checked)
    try:
        simulate(cfg(20), wl(60.0, 600), seed=1)
    finally:
        mp.undo()
    assert max(seen) > 8  # multi-step runs were checked


def test_sketch_percentiles_within_the_stated_error():
    from siliconomics.serving.stream import REL_ERROR, LogSketch

    rng = np.random.default_rng(5)
    x = np.concatenate((rng.lognormal(-3, 1.5, 20_000), [0.0, 1e-12, 2.5e3]))
    sk = LogSketch()
    for part in np.array_split(x, 7):
        sk.add(part)
    assert sk.n == x.size and sk.top == x.max()
    assert sk.mean == pytest.approx(x.mean(), rel=1e-12)
    for q in (0, 1, 10, 50, 90, 99, 99.9, 100):
        exact = np.percentile(x, q)
        assert abs(sk.quantile(q) - exact) <= REL_ERROR * exact + 1e-9, q


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("scheduler", ["chunked", "continuous", "static"])
def test_streamed_run_matches_the_exact_run(monkeypatch, scheduler, compiled):
    if not compiled and scheduler != "chunked":
        pytest.skip("the Python loop runs these schedulers either way")
    monkeypatch.setattr(fastcore, "ENABLED", compiled)
    import siliconomics.serving.stream as stream_mod
    from siliconomics.serving import Slo
    from siliconomics.serving.stream import REL_ERROR

    monkeypatch.setattr(stream_mod, "FLUSH", 500)  # several chunks and flushes
    # few KV blocks (max_seqs 48, long contexts): preemptions and slot reuse under them
    c = cfg(3, scheduler=scheduler, max_seqs=16 if scheduler == "static" else None)
    reqs = wl(14.0, 3000).sample(np.random.default_rng(2))
    slo = Slo(ttft_s=0.2, tpot_s=0.012)
    a = simulate(c, reqs, slo=slo, warmup=0.1)
    b = simulate(c, reqs, slo=slo, warmup=0.1, stream=True)
    assert b.log.arrival_s.size == 0 and b.stream is not None
    for k in ("n_requests", "duration_s", "requests_per_s", "output_tokens_per_s",
              "goodput_fraction", "preemptions", "energy_j", "usd_per_million_output"):  # fmt: skip
        assert getattr(a, k) == pytest.approx(getattr(b, k), rel=1e-12, nan_ok=True), k
    assert [p.steps for p in a.pools] == [p.steps for p in b.pools]
    for m in ("ttft", "tpot", "e2e", "queue"):
        da, db = getattr(a, m), getattr(b, m)
        assert db.mean == pytest.approx(da.mean, rel=1e-12) and db.max == da.max
        for q in ("p50", "p90", "p99"):
            assert abs(getattr(db, q) - getattr(da, q)) <= REL_ERROR * getattr(da, q) + 1e-9
        assert b.percentile(m, 95) == pytest.approx(a.percentile(m, 95), rel=REL_ERROR)
    assert b.steady_output_tokens_per_s == pytest.approx(a.steady_output_tokens_per_s, rel=0.01)


def test_streamed_run_with_preemptions_and_disaggregation(monkeypatch):
    import siliconomics.serving.stream as stream_mod

    monkeypatch.setattr(stream_mod, "FLUSH", 300)
    # long requests overflow the decode pool's KV cache (preemptions) and keep arriving
    # after the first ones finish (slots reused)
    pool = PoolConfig(device=device("h100-sxm"), plan=InferencePlan(replicas=1), max_seqs=512)
    h100 = device("h100-sxm")
    c = make_config(M8, pool, prefill=(h100, 1, 1), decode=(h100, 1, 2))
    reqs = wl(20.0, 1500, "lognormal:4000,0.3", "lognormal:2500,0.3").sample(
        np.random.default_rng(4)
    )
    a = simulate(c, reqs)
    b = simulate(c, reqs, stream=True)
    assert reqs.arrival_s[-1] > a.log.finish_s.min()
    assert a.e2e.mean == pytest.approx(b.e2e.mean, rel=1e-12)
    assert a.preemptions == b.preemptions and a.kv_transfer_bytes == b.kv_transfer_bytes
    assert [p.steps for p in a.pools] == [p.steps for p in b.pools]
    assert a.preemptions > 0


def _peak(c, w, **kw) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        simulate(c, w, **kw)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_streamed_memory_does_not_grow_with_requests(monkeypatch):
    import siliconomics.serving.stream as stream_mod

    monkeypatch.setattr(stream_mod, "FLUSH", 2048)
    c = cfg(2)
    w = wl(30.0, 10_000, "uniform:20,200", "uniform:2,12")
    _peak(c, w.with_requests(500), stream=True)  # warm caches (step tables, imports)
    small = _peak(c, w, stream=True)
    big = _peak(c, w.with_requests(40_000), stream=True)
    assert big < small * 1.25 + 256 * 1024  # 4x the requests, no more memory
    # the exact run keeps per-request arrays: the same comparison shows their growth
    grow = _peak(c, w.with_requests(40_000)) - _peak(c, w)
    assert grow > 30_000 * 50  # > 50 bytes a request


def test_decode_run_ends_bit_identical_to_the_step_formula(monkeypatch):
    import random
    from bisect import bisect_right

    from siliconomics.serving.steptime import RUN_NUMPY, step_time_model

    stm = step_time_model(
        M8, device("h100-sxm"), InferencePlan(), max_tokens=8192, max_seqs=512, max_ctx=16384
    )

    def reference(batch: int, total: float, m: int) -> list[float]:
        base, r = stm._decode_row(batch)
        ys, yinv, last = stm._ys, stm._yinv, stm._ylast
        c = total / batch
        j = min(max(bisect_right(ys, c) - 1, 0), last)
        floor = stm.with_host(0.0, batch) if stm._host else 0.0
        acc, out = 0.0, []
        for _ in range(m):
            while j < last and c >= ys[j + 1]:
                j += 1
            step = base + r[j] + (r[j + 1] - r[j]) * (c - ys[j]) * yinv[j]
            acc += step if step > floor else floor
            out.append(acc)
            c += 1.0
        return out

    rnd = random.Random(7)
    for _ in range(3000):
        b, m = rnd.randint(1, 300), rnd.randint(1, RUN_NUMPY - 1)
        total = rnd.choice([0.0, float(b), 31.0 * b, rnd.uniform(0, 16000) * b])
        assert stm.decode_run_ends(b, total, m) == reference(b, total, m)
    # long runs (numpy), with the host floor binding for small batches and not for large
    for host in (stm._host, 2e-4):
        monkeypatch.setattr(stm, "_host", host)
        monkeypatch.setattr(stm, "_rows_np", {})
        for b in (1, 3, 40, 300):
            for total in (0.0, 17.0 * b, 5000.5 * b):
                m = RUN_NUMPY + 77
                assert stm.decode_run_ends(b, total, m) == reference(b, total, m), (host, b)


@pytest.mark.parametrize("host", [None, 2e-4])
def test_closed_form_decode_run_equals_the_step_sum(monkeypatch, host):
    import random
    from bisect import bisect_right

    from siliconomics.serving.steptime import DecodeRun, step_time_model

    stm = step_time_model(
        M8, device("h100-sxm"), InferencePlan(), max_tokens=8192, max_seqs=512, max_ctx=16384
    )
    if host is not None:  # a host floor that binds for small batches
        monkeypatch.setattr(stm, "_host", host)
        monkeypatch.setattr(stm, "_rows_np", {})
    rnd = random.Random(11)
    for _ in range(300):
        b, m = rnd.choice([1, 2, 7, 60, 300]), rnd.randint(RUN_CLOSED, 3000)
        total = rnd.choice([0.0, 5.0 * b, rnd.uniform(0, 12000) * b])
        ref = stm.decode_run_ends(b, total, m)
        run = stm.decode_run(b, total, m)
        assert isinstance(run, DecodeRun) and run.m == m
        assert run.total == pytest.approx(ref[-1], rel=1e-12)
        for j in (1, 2, m // 3, m // 2 + 1, m - 1, m):
            assert run.end(j) == pytest.approx(ref[j - 1], rel=1e-12, abs=1e-15)
        for _ in range(20):  # count inverts end exactly, and the list up to rounding
            dt = rnd.uniform(-0.001, ref[-1] * 1.01)
            c = run.count(dt)
            assert 0 <= c <= m
            assert c == m or run.end(c + 1) > dt
            assert c == 0 or run.end(c) <= dt
            assert abs(c - bisect_right(ref, dt)) <= 1
        assert run.count(ref[-1] * 2) == m and run.count(-1.0) == 0


@pytest.mark.parametrize(
    ("replicas", "rate", "n", "router"), [(3, 14.0, 1500, "jsq"), (48, 30.0, 2000, "least-tokens")]
)
def test_closed_form_runs_change_results_by_rounding_only(
    monkeypatch, python_loop, replicas, rate, n, router
):
    import siliconomics.serving.steptime as st

    c = cfg(replicas, router)
    reqs = wl(rate, n).sample(np.random.default_rng(8))
    made = []
    init = st.DecodeRun.__init__

    def counted(self, m):
        made.append(m)
        init(self, m)

    monkeypatch.setattr(st.DecodeRun, "__init__", counted)
    fast = simulate(c, reqs)
    assert len(made) > 20 and max(made) > 300  # long runs took the closed form
    monkeypatch.setattr(st, "EXACT_RUNS", True)
    exact = simulate(c, reqs)
    assert np.array_equal(fast.log.replica, exact.log.replica)
    assert [p.steps for p in fast.pools] == [p.steps for p in exact.pools]
    for a, b in zip(_log(fast), _log(exact), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9)
    for k in ("duration_s", "output_tokens_per_s", "energy_j", "usd_per_million_output"):
        assert getattr(fast, k) == pytest.approx(getattr(exact, k), rel=1e-9, nan_ok=True), k
    for m in ("ttft", "tpot", "e2e"):
        for q in ("p50", "p99", "mean", "max"):
            assert getattr(getattr(fast, m), q) == pytest.approx(
                getattr(getattr(exact, m), q), rel=1e-9
            ), (m, q)
    assert fast.pools[0].utilisation == pytest.approx(exact.pools[0].utilisation, rel=1e-9)


@pytest.mark.parametrize("ahead", [3, 32])
def test_indexed_router_with_long_decode_runs(monkeypatch, python_loop, ahead):
    # light load on many replicas: batch ~1, runs of hundreds of steps, so the index's
    # look-ahead bounds are set, lapse and are renewed; picks equal a scan's
    monkeypatch.setattr(router_mod.LeastTokens, "ahead", ahead)
    monkeypatch.setattr(router_mod, "FLAT_MAX", 0 if ahead == 3 else router_mod.FLAT_MAX)
    renewed = []
    renew = router_mod.LoadIndex._renew

    def counted(self, e, done):
        ok = renew(self, e, done)
        renewed.append(ok)
        return ok

    monkeypatch.setattr(router_mod.LoadIndex, "_renew", counted)
    c = cfg(48, "least-tokens")
    w = wl(30.0, 2500)
    fast = simulate(c, w, seed=5)
    assert sum(renewed) > 300 and not all(renewed)
    monkeypatch.setattr(router_mod, "SCAN_MAX", 10**9)
    monkeypatch.setattr(router_mod, "SCANNED_RUN_CLOSED", RUN_CLOSED)  # the same run sums
    slow = simulate(c, w, seed=5)
    for a, b in zip(_log(fast), _log(slow), strict=True):
        assert np.array_equal(a, b)

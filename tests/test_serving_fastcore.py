"""The compiled event core (serving/fastcore.py) simulates what the Python loop simulates:
the same decisions (routing, admission, preemption, step counts) and the same times up to
float rounding (the core steps decode one step at a time where the loop sums multi-step
runs). The reference is the loop with one event per step (``MIN_RUN`` out of reach): its
KV-occupancy integral is per step, as the core's (multi-step runs book a run's end occupancy
over the whole run, a slight overestimate)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest

import siliconomics.serving.engine as engine_mod
import siliconomics.serving.fastcore as fastcore
from siliconomics.catalog.registry import get_model
from siliconomics.parallel.plan import InferencePlan
from siliconomics.resolve import device
from siliconomics.serving import Arrival, Workload, simulate
from siliconomics.serving.config import PoolConfig
from siliconomics.serving.spec import make_config
from siliconomics.serving.steptime import step_time_model
from siliconomics.serving.workload import parse_lengths

pytestmark = pytest.mark.skipif(not fastcore.available(), reason="numba is not installed")
M8 = get_model("llama-3.1-8b")
RTOL = 1e-9
"""relative tolerance of every time (rounding: the loop sums runs, the core single steps)"""


def cfg(replicas: int, router: str = "least-tokens", **engine):
    pool = PoolConfig(device=device("h100-sxm"), plan=InferencePlan(replicas=replicas), **engine)
    return make_config(M8, pool, router=router)


def wl(rate: float | None, n: int, inp: str, out: str) -> Workload:
    arr = Arrival(kind="burst") if rate is None else Arrival(rate=rate)
    return Workload(arrival=arr, input=parse_lengths(inp), output=parse_lengths(out), n_requests=n)


def both(monkeypatch, c, w, **kw):
    monkeypatch.setattr(fastcore, "ENABLED", True)
    fast = simulate(c, w, seed=4, **kw)
    monkeypatch.setattr(fastcore, "ENABLED", False)
    monkeypatch.setattr(engine_mod, "MIN_RUN", 10**9)  # one event per step
    slow = simulate(c, w, seed=4, **kw)
    return fast, slow


def assert_same(fast, slow):
    f, s = fast.log, slow.log
    assert np.array_equal(f.replica, s.replica)
    assert np.array_equal(f.preemptions, s.preemptions)
    for a, b in ((f.first_token_s, s.first_token_s), (f.finish_s, s.finish_s),
                 (f.scheduled_s, s.scheduled_s)):  # fmt: skip
        np.testing.assert_allclose(a, b, rtol=RTOL)
    for pf, ps in zip(fast.pools, slow.pools, strict=True):
        assert pf.steps == ps.steps and pf.batch_hist == ps.batch_hist
        assert pf.preemptions == ps.preemptions
        assert pf.utilisation == pytest.approx(ps.utilisation, rel=RTOL)
        assert pf.mfu == pytest.approx(ps.mfu, rel=RTOL)
        assert pf.kv_utilisation == pytest.approx(ps.kv_utilisation, rel=RTOL)
    for m in ("ttft", "tpot", "e2e", "queue"):
        for q in ("mean", "p50", "p99", "max"):
            a, b = getattr(getattr(fast, m), q), getattr(getattr(slow, m), q)
            assert a == pytest.approx(b, rel=RTOL, abs=1e-12), (m, q)


@pytest.mark.parametrize("graphs", [(), (1.0, 8.0, 64.0, 512.0)])
def test_tables_equal_the_step_time_model(graphs):
    stm = step_time_model(
        M8, device("h100-sxm"), InferencePlan(), max_tokens=8192, max_seqs=4096, max_ctx=16384,
        graph_sizes=graphs,
    )  # fmt: skip
    tb = fastcore.tables(stm, 9000)
    rnd = random.Random(3)
    for _ in range(2000):
        b = rnd.randint(1, 4000)
        ctx = rnd.choice([b, 31 * b, rnd.randint(b, 16000 * b)])
        assert fastcore.kernels()._decode_step(tb, b, ctx) == stm.decode_step(b, ctx)
        s, c = rnd.randint(1, 8192), rnd.randint(0, 16000)
        assert fastcore.kernels()._attn_prefill(tb, s, c) == stm.attn_prefill(s, c)
        t = rnd.randint(1, 9000)
        assert tb[0][t] == stm.dense(t) and tb[1][t] == stm.head(t)
        assert tb[2][b] == stm.with_host(-np.inf, b)


@pytest.mark.parametrize(
    ("replicas", "router", "rate", "n", "engine"),
    [
        (1, "least-tokens", 8.0, 800, {}),
        (3, "round-robin", 14.0, 1500, {}),
        (4, "jsq", 20.0, 1500, {"max_seqs": 8}),  # the sequence limit binds
        (4, "jsq", 20.0, 1500, {"max_seqs": 8, "graph_sizes": (1, 4, 16)}),
        (20, "least-tokens", 60.0, 1500, {}),  # idle replicas: ties at zero load
        (3, "least-tokens", 14.0, 1500, {"max_batched_tokens": 512}),  # long prompts chunked
        (3, "least-tokens", 14.0, 1500, {"graph_sizes": (1, 2, 4, 8, 16)}),  # CUDA graphs
    ],
)
def test_compiled_core_equals_the_python_loop(monkeypatch, replicas, router, rate, n, engine):
    c = cfg(replicas, router, scheduler="chunked", **engine)
    fast, slow = both(monkeypatch, c, wl(rate, n, "lognormal:900,0.8", "lognormal:150,0.9"))
    assert_same(fast, slow)


@pytest.mark.parametrize("burst", [False, True])
def test_compiled_core_with_preemptions(monkeypatch, burst):
    # long requests overflow one replica's KV cache: preemptions (recomputation)
    c = cfg(2, scheduler="chunked", max_seqs=512)
    w = wl(None, 300, "uniform:2000,6000", "uniform:500,3000") if burst else None
    w = w or wl(20.0, 300, "4000", "uniform:1000,5000")
    fast, slow = both(monkeypatch, c, w)
    assert fast.preemptions > 0
    assert_same(fast, slow)


def test_compiled_core_streamed(monkeypatch):
    import siliconomics.serving.stream as stream_mod

    monkeypatch.setattr(stream_mod, "FLUSH", 400)
    monkeypatch.setattr(fastcore, "CHUNK", 700)  # several calls, slots reused across them
    c = cfg(3, scheduler="chunked", max_seqs=64)
    reqs = wl(14.0, 3000, "lognormal:900,0.8", "lognormal:150,0.9").sample(np.random.default_rng(2))
    fast, slow = both(monkeypatch, c, reqs, stream=True)
    for k in ("n_requests", "duration_s", "output_tokens_per_s", "preemptions", "energy_j"):
        assert getattr(fast, k) == pytest.approx(getattr(slow, k), rel=RTOL), k
    assert [p.steps for p in fast.pools] == [p.steps for p in slow.pools]
    for m in ("ttft", "tpot", "e2e", "queue"):
        for q in ("mean", "p50", "p90", "p99", "max"):
            a, b = getattr(getattr(fast, m), q), getattr(getattr(slow, m), q)
            assert a == pytest.approx(b, rel=RTOL, abs=1e-12), (m, q)


def test_other_runs_take_the_python_loop():
    from siliconomics.serving.schedulers.chunked import ChunkedEngine
    from siliconomics.serving.schedulers.continuous import ContinuousEngine

    chunked, other = object.__new__(ChunkedEngine), object.__new__(ContinuousEngine)
    chunked.stm = SimpleNamespace(dp=1, spec=None)
    assert fastcore.eligible([chunked], "jsq", 1, None)
    wide = object.__new__(ChunkedEngine)
    wide.stm = SimpleNamespace(dp=8, spec=None)  # attention DP: busiest-rank mixed steps
    assert not fastcore.eligible([wide], "jsq", 1, None)
    drafts = object.__new__(ChunkedEngine)
    drafts.stm = SimpleNamespace(dp=1, spec=object())  # speculative decoding: Python loop
    assert not fastcore.eligible([drafts], "jsq", 1, None)
    assert not fastcore.eligible([other], "least-tokens", 1, None)
    assert not fastcore.eligible([chunked], "least-tokens", 2, None)  # disaggregated
    assert not fastcore.eligible([chunked], "least-tokens", 1, print)  # a trace sink

"""Serving-simulator speed structures give the same answers as the plain ones: the indexed
router, the streaming (flat-memory) run and its quantile sketch."""

from __future__ import annotations

import numpy as np
import pytest

import siliconomics.serving.router as router_mod
from siliconomics.catalog.registry import get_model
from siliconomics.parallel.plan import InferencePlan
from siliconomics.resolve import device
from siliconomics.serving import Arrival, Workload, simulate
from siliconomics.serving.config import PoolConfig
from siliconomics.serving.spec import make_config
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


def _log(r):
    g = r.log
    return (g.first_token_s, g.finish_s, g.scheduled_s, g.replica, g.preemptions)


@pytest.mark.parametrize("router", ["least-tokens", "jsq"])
@pytest.mark.parametrize("scheduler", ["chunked", "continuous"])
def test_indexed_router_picks_what_a_scan_picks(monkeypatch, router, scheduler):
    # 40 replicas: indexed by default; a huge SCAN_MAX forces the scan. Loads light enough
    # that some replicas idle (ties at zero) and heavy enough that runs are cut.
    c = cfg(40, router, scheduler=scheduler, max_seqs=8)
    w = wl(90.0, 1500)
    fast = simulate(c, w, seed=3)
    monkeypatch.setattr(router_mod, "SCAN_MAX", 10**9)
    slow = simulate(c, w, seed=3)
    for a, b in zip(_log(fast), _log(slow), strict=True):
        assert np.array_equal(a, b)
    assert len(set(fast.log.replica.tolist())) == 40


def test_load_index_bound_never_exceeds_the_load():
    from siliconomics.serving.cluster import _Events

    seen = []
    kick = _Events.kick

    def checked(self, e, t):
        kick(self, e, t)
        if e.run_steps:  # the bound holds at any instant before the run's completion event
            end = e.run_t0 + e.run_ends[e.run_steps - 1]
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

"""The fleet program as solved: dropped pools, the flow form and its inequalities give the same
optimum as one variable per route; warm starts; the solve status and optimality gap."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from siliconomics.fleet.formulation import flows, to_routes
from siliconomics.fleet.milp import Problem, Route, Solution, hint_of, solve
from siliconomics.fleet.planner import prepare
from siliconomics.fleet.prune import dominated_pools, kept_routes
from siliconomics.fleet.solve import solve_at
from siliconomics.fleet.spec import parse_spec
from siliconomics.resolve import packaged

EXACT = 1e-9  # no early stop: both forms solved to their optimum

WORKLOADS = [
    {
        "name": "chat",
        "model": "llama-3.1-8b",
        "rate_rps": 12,
        "input": {"mean": 900, "sigma": 0.9, "max": 8000},
        "output": {"mean": 200, "sigma": 0.6, "max": 1000},
        "slo": {"ttft": "2s", "tpot": "50ms", "percentile": 99},
    },
    {
        "name": "code",
        "model": "llama-3.1-8b",
        "rate_rps": 3,
        "input": {"mean": 4000, "sigma": 0.5, "max": 16000},
        "output": {"mean": 150, "sigma": 0.5, "max": 800},
        "slo": {"ttft": "3s", "tpot": "60ms", "percentile": 90},
    },
]


@pytest.fixture(scope="module")
def small_inputs():
    s = parse_spec(
        {
            "chips": ["l40s", "h100-sxm", "inf2", "tpu-v5e"],
            "disaggregation": "auto",
            "buckets": 2,
            "workloads": WORKLOADS,
        }
    )
    return prepare(s, packaged())


@pytest.mark.parametrize("scale", [0.7, 1.0, 2.0])
def test_compact_program_has_the_reference_optimum(small_inputs, scale):
    b, fast = solve_at(small_inputs, scale, set(small_inputs.offers), gap=EXACT)
    ref = solve(b.problem, compact=False, gap=EXACT)
    gone = dominated_pools(b.problem)
    fl, pairings = flows(b.problem, kept_routes(b.problem, gone))
    assert gone and pairings and len(fl) < len(b.problem.routes)  # the case exercises both
    assert fast is not None and ref is not None
    assert fast.usd_per_hour == pytest.approx(ref.usd_per_hour, rel=1e-6)
    assert not fast.limit_hit and fast.status.startswith("optimal")


def test_compact_program_has_the_reference_optimum_under_limits(small_inputs):
    b, s = solve_at(small_inputs, 1.0, set(small_inputs.offers), gap=EXACT)
    assert s is not None
    used = {o.chip for o, n in zip(b.offers, s.nodes, strict=True) if n > 0}
    # a budget just above the optimum and an availability limit that removes a chosen chip
    limited = replace(
        b.problem, budget_usd_per_hour=s.usd_per_hour * 1.5, availability={next(iter(used)): 0}
    )
    fast = solve(limited, gap=EXACT)
    ref = solve(limited, compact=False, gap=EXACT)
    assert (fast is None) == (ref is None)
    if fast is not None and ref is not None:
        assert fast.usd_per_hour == pytest.approx(ref.usd_per_hour, rel=1e-6)
        assert fast.usd_per_hour >= s.usd_per_hour - 1e-9


def test_solution_serves_every_bucket_within_capacity(small_inputs):
    b, s = solve_at(small_inputs, 1.0, set(small_inputs.offers))
    assert s is not None
    p = b.problem
    served = np.zeros(len(p.rates))
    load = np.zeros(len(p.pool_offer))
    for x, r in zip(s.shares, p.routes, strict=True):
        served[r.bucket] += x
        for k, ld in zip(r.pools, r.loads, strict=True):
            load[k] += x * p.rates[r.bucket] * ld
    np.testing.assert_allclose(served, 1.0, atol=1e-6)
    assert np.all(load <= s.replicas + 1e-6)
    chips = np.zeros(len(p.offer_chip))
    for k, n in enumerate(s.replicas):
        chips[p.pool_offer[k]] += n * p.pool_chips[k]
    assert np.all(chips <= s.nodes * np.array(p.offer_node_chips) + 1e-9)


def _toy(**kw: object) -> Problem:
    """One bucket, one 8-chip node type; pool 0 (1 chip) is faster per chip than pool 1
    (2 chips), pool 2 (1 chip) is slower than pool 0 but draws less power."""
    routes = (
        Route(bucket=0, pools=(0,), loads=(0.5,), busy_w=(300.0,)),
        Route(bucket=0, pools=(1,), loads=(0.6,), busy_w=(600.0,)),
        Route(bucket=0, pools=(2,), loads=(0.8,), busy_w=(100.0,)),
    )
    base = {
        "rates": np.array([7.0]),
        "routes": routes,
        "pool_offer": (0, 0, 0),
        "pool_chips": (1, 2, 1),
        "offer_chip": ("x",),
        "offer_node_chips": (8,),
        "offer_usd_per_chip_hour": (2.0,),
        "offer_idle_w_per_chip": (50.0,),
        "availability": {},
    }
    base.update(kw)
    return Problem(**base)  # type: ignore[arg-type]


def test_dominated_pool_is_dropped_and_others_kept():
    p = _toy()
    # pool 1: 2 chips, 0.6 replica-s per request = 1.2 chip-s; two replicas of pool 0 carry it
    # on the same chips (0.5 <= 2 x 0.6) with less energy (150 <= 360 J): dropped
    assert dominated_pools(p) == {1}
    # a pool no route uses goes too
    p2 = _toy(pool_offer=(0, 0, 0, 0), pool_chips=(1, 2, 1, 4))
    assert 3 in dominated_pools(p2)
    s, ref = solve(p, gap=EXACT), solve(p, compact=False, gap=EXACT)
    assert s is not None and ref is not None
    assert s.usd_per_hour == pytest.approx(ref.usd_per_hour)


def test_power_cap_keeps_the_frugal_pool():
    p = _toy(power_cap_w=1200.0)
    assert 2 not in dominated_pools(p)  # slower but frugal: not dominated by pool 0
    s, ref = solve(p, gap=EXACT), solve(p, compact=False, gap=EXACT)
    assert (s is None) == (ref is None)
    if s is not None and ref is not None:
        assert s.usd_per_hour == pytest.approx(ref.usd_per_hour)
        assert s.power_w <= 1200.0 + 1e-6


def _pairs(kv: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)) -> Problem:
    """Two prefill pools (0, 1) x two decode pools (2, 3), one bucket."""
    routes = tuple(
        Route(
            bucket=0,
            pools=(kp, kd),
            loads=(0.2 + 0.1 * kp, 0.05 * kd),
            busy_w=(200.0, 300.0),
            kv_usd_per_request=kv[i],
        )
        for i, (kp, kd) in enumerate([(0, 2), (0, 3), (1, 2), (1, 3)])
    )
    return _toy(
        rates=np.array([20.0]),
        routes=routes,
        pool_offer=(0, 0, 0, 0),
        pool_chips=(1, 1, 1, 2),
        offer_idle_w_per_chip=(50.0,),
    )


def test_pair_routes_become_per_pool_flows():
    p = _pairs()
    fl, pairings = flows(p, list(range(len(p.routes))))
    assert len(pairings) == 1 and len(fl) == 4  # 2 + 2 flows for 2 x 2 routes
    x = np.array([0.25, 0.75, 0.5, 0.5])  # prefill 0, 1; decode 2, 3
    shares = to_routes(p, fl, pairings, x)
    assert shares.sum() == pytest.approx(1.0)
    assert np.count_nonzero(shares) <= 3  # |P| + |D| - 1
    # each pool's share is kept
    for k, want in zip((0, 1, 2, 3), x, strict=True):
        got = sum(v for v, r in zip(shares, p.routes, strict=True) if k in r.pools)
        assert got == pytest.approx(want)
    s, ref = solve(p, gap=EXACT), solve(p, compact=False, gap=EXACT)
    assert s is not None and ref is not None
    assert s.usd_per_hour == pytest.approx(ref.usd_per_hour)


def test_non_separable_pairs_keep_one_flow_per_route():
    p = _pairs(kv=(0.0, 0.001, 0.0, 0.0))  # KV cost differs by pair: not separable
    fl, pairings = flows(p, list(range(len(p.routes))))
    assert not pairings and len(fl) == 4 and all(f.route >= 0 for f in fl)
    s, ref = solve(p, gap=EXACT), solve(p, compact=False, gap=EXACT)
    assert s is not None and ref is not None
    assert s.usd_per_hour == pytest.approx(ref.usd_per_hour)


def test_warm_start_keeps_the_optimum(small_inputs):
    chips = set(small_inputs.offers)
    b, s = solve_at(small_inputs, 1.0, chips, gap=EXACT)
    assert s is not None
    hint = hint_of(b.problem, s)
    assert hint and all(v > 0 for v in hint.values())
    for scale in (0.7, 2.0):
        _, cold = solve_at(small_inputs, scale, chips, gap=EXACT)
        _, warm = solve_at(small_inputs, scale, chips, gap=EXACT, hint=hint)
        assert cold is not None and warm is not None
        assert warm.usd_per_hour == pytest.approx(cold.usd_per_hour, rel=1e-6)


def test_status_states_the_gap_and_the_limit():
    s = Solution(
        shares=np.zeros(0),
        replicas=np.zeros(0, dtype=np.int64),
        nodes=np.zeros(0, dtype=np.int64),
        usd_per_hour=100.0,
        power_w=0.0,
        bound_usd_per_hour=96.9,
        limit_hit=True,
    )
    assert s.gap == pytest.approx(0.031)
    assert s.status == "time limit reached, gap 3.1%"
    done = replace(s, bound_usd_per_hour=99.98, limit_hit=False)
    assert done.status == "optimal, gap 0.02%"

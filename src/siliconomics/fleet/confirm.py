"""Latency percentiles of the chosen fleet: the serving simulator where installed, else the
analytic (unloaded) predictions of the candidate search.

Analytic: p-th TTFT and TPOT are the worst over the routes a workload uses (each checked at its
bucket's SLO-percentile prompt); p50 values are request-weighted means at the mean prompts.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import replace
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from ..errors import SiliconomicsError
from ..ops.device import Device
from .build import Built, WorkloadInput
from .milp import Solution
from .result import Latency

F = NDArray[np.float64]


def analytic_latency(wk: WorkloadInput, b: Built, s: Solution, wi: int) -> Latency:
    w = wk.workload
    rows = [
        (float(x) * b.problem.rates[r.bucket], b.route_latency[i])
        for i, (x, r) in enumerate(zip(s.shares, b.problem.routes, strict=True))
        if x > 1e-9 and b.buckets[r.bucket][0] == wi
    ]
    wts = np.array([r[0] for r in rows])
    lat = np.array([r[1] for r in rows])  # (route, [ttft_p, ttft_mean, tpot])
    wts = wts / wts.sum()
    return Latency(
        workload=w.label,
        ttft_p50_s=float(wts @ lat[:, 1]),
        ttft_p_s=float(lat[:, 0].max()),
        tpot_p50_s=float(wts @ lat[:, 2]),
        tpot_p_s=float(lat[:, 2].max()),
        percentile=w.slo.percentile,
        source="analytic (unloaded)",
        slo_ttft_s=w.slo.ttft,
        slo_tpot_s=w.slo.tpot,
    )


SIM_REQUESTS = 1200
"""requests simulated per workload, split over its route groups by their request rates (so
the pooled latencies weight each group by its traffic)"""
MIN_GROUP_REQUESTS = 100


def _serving() -> ModuleType | None:
    try:
        mod = importlib.import_module("siliconomics.serving")
    except ImportError:
        return None
    return mod if hasattr(mod, "simulate") else None


def _groups(b: Built, s: Solution, wi: int) -> dict[tuple[int, ...], dict[int, float]]:
    """Route groups (the pools a request passes) -> {bucket: requests/s}."""
    out: dict[tuple[int, ...], dict[int, float]] = {}
    for x, r in zip(s.shares, b.problem.routes, strict=True):
        if x > 1e-9 and b.buckets[r.bucket][0] == wi:
            g = out.setdefault(r.pools, {})
            g[r.bucket] = g.get(r.bucket, 0.0) + float(x) * float(b.problem.rates[r.bucket])
    return out


def _group_replicas(b: Built, s: Solution, groups: dict) -> dict[tuple[int, ...], list[int]]:
    """Split each pool's replicas over the groups using it, in proportion to their load."""
    load: dict[tuple[tuple[int, ...], int], float] = {}
    for x, r in zip(s.shares, b.problem.routes, strict=True):
        if x > 1e-9 and r.pools in groups:
            for k, ld in zip(r.pools, r.loads, strict=True):
                key = (r.pools, k)
                load[key] = load.get(key, 0.0) + float(x) * b.problem.rates[r.bucket] * ld
    total: dict[int, float] = {}
    for (_, k), v in load.items():
        total[k] = total.get(k, 0.0) + v
    return {
        g: [
            max(
                1, round(int(s.replicas[k]) * load.get((g, k), 0.0) / max(total.get(k, 1.0), 1e-12))
            )
            for k in g
        ]
        for g in groups
    }


MAX_SIM_REPLICAS = 32
"""largest pool the confirmation simulates replica by replica; a bigger pool is simulated as a
slice of this many replicas carrying the same load per replica (its requests/s scaled by the
slice's share). A balanced router spreads load evenly, so per-replica queueing, and with it the
latency distribution, is that of the slice; across more replicas a load-aware router balances
slightly better, so the slice is a little pessimistic. This keeps a 10^7 requests/s plan as fast
as a 10 requests/s one (the sampled requests per replica stay the same)."""


SLICE_NOTE = (
    f"; pools over {MAX_SIM_REPLICAS} replicas simulated as a slice at the same per-replica load"
)


def slice_replicas(nreps: list[int]) -> tuple[list[int], float]:
    """Replica counts of the simulated slice and its share of the pool (1.0 = whole pool)."""
    biggest = max(nreps)
    if biggest <= MAX_SIM_REPLICAS:
        return list(nreps), 1.0
    scale = MAX_SIM_REPLICAS / biggest
    return [max(1, round(n * scale)) for n in nreps], scale


def weighted_percentile(x: F, w: F, q: float) -> float:
    """Percentile ``q`` of ``x`` with sample weights ``w`` (non-finite values dropped)."""
    ok = np.isfinite(x)
    x, w = x[ok], w[ok]
    if not x.size:
        return float("nan")
    order = np.argsort(x)
    cum = np.cumsum(w[order])
    i = int(np.searchsorted(cum, q / 100.0 * cum[-1]))
    return float(x[order][min(i, x.size - 1)])


def simulated_latency(
    serving: ModuleType,
    wk: WorkloadInput,
    b: Built,
    s: Solution,
    seed: int,
    wi: int,
    devices: Mapping[str, Device],
) -> Latency:
    """Simulate each route group (a pool, or a prefill pool feeding a decode pool) with its
    share of the workload's requests (drawn from the bucket's sampled lengths, Poisson
    arrivals) and pool the per-request latencies."""
    from ..serving.config import PoolConfig, ServingConfig
    from ..serving.workload import Requests, Workload

    rng = np.random.default_rng(seed)
    t = wk.traffic
    groups = _groups(b, s, wi)
    reps = _group_replicas(b, s, groups)
    total = sum(sum(r.values()) for r in groups.values())
    ttft: list[F] = []
    tpot: list[F] = []
    wts: list[F] = []
    sliced = False
    for g, rates in groups.items():
        rate = sum(rates.values())
        n = max(MIN_GROUP_REQUESTS, round(SIM_REQUESTS * rate / total))
        idx = []
        for gb, r in rates.items():
            bk = b.buckets[gb][1]
            members = np.flatnonzero((t.input_len >= bk.lo) & (t.input_len < bk.hi))
            idx.append(rng.choice(members, size=max(1, round(n * r / rate))))
        pick = rng.permutation(np.concatenate(idx))
        nreps, scale = slice_replicas(reps[g])
        sliced = sliced or scale < 1.0
        arrivals = np.cumsum(rng.exponential(1.0 / (rate * scale), size=len(pick)))
        req = Requests(
            arrival_s=arrivals - arrivals[0],
            input_tokens=t.input_len[pick].astype(np.int64),
            output_tokens=t.output_len[pick].astype(np.int64),
        )
        pools = []
        for k, nrep in zip(g, nreps, strict=True):
            c = b.pools[k][0]
            plan = replace(c.plan, replicas=nrep)
            pools.append(
                PoolConfig(
                    device=devices[c.chip],
                    plan=plan,
                    max_seqs=int(c.batch_limit),
                    spec=None if wk.workload.mtp is None else wk.workload.mtp.to_speculative(),
                )
            )
        cfg = ServingConfig(
            model=wk.model, pool=pools[0], decode_pool=pools[1] if len(pools) > 1 else None
        )
        res = serving.simulate(cfg, Workload(trace=req, n_requests=len(req)), seed=seed)
        log = res.log
        a, o = log.ttft_s[res.measured_from :], log.tpot_s[res.measured_from :]
        ttft.append(a)
        tpot.append(o)
        wts.append(np.full(len(a), rate / max(len(a), 1)))  # each group weighs its traffic
    a, o, wt = np.concatenate(ttft), np.concatenate(tpot), np.concatenate(wts)
    w = wk.workload
    q = w.slo.percentile
    return Latency(
        workload=w.label,
        ttft_p50_s=weighted_percentile(a, wt, 50),
        ttft_p_s=weighted_percentile(a, wt, q),
        tpot_p50_s=weighted_percentile(o, wt, 50),
        tpot_p_s=weighted_percentile(o, wt, q),
        percentile=q,
        source=f"simulation ({len(a)} requests{SLICE_NOTE if sliced else ''})",
        slo_ttft_s=w.slo.ttft,
        slo_tpot_s=w.slo.tpot,
    )


def workload_latency(
    wk: WorkloadInput, b: Built, s: Solution, seed: int, wi: int, devices: Mapping[str, Device]
) -> Latency:
    """Simulated where :mod:`siliconomics.serving` has ``simulate``, else analytic
    (``devices``: chip id -> the chip and its efficiency profile)."""
    serving = _serving()
    if serving is None:
        return analytic_latency(wk, b, s, wi)
    try:
        return simulated_latency(serving, wk, b, s, seed, wi, devices)
    except (ArithmeticError, SiliconomicsError) as e:  # say so, never hide it
        a = analytic_latency(wk, b, s, wi)
        return replace(a, source=f"analytic (simulator failed: {type(e).__name__}: {e})")

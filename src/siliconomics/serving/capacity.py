"""Capacity search: the highest request rate a deployment sustains within its SLO, and the
fewest replicas that serve a target rate.

``max_rate`` brackets the answer with an offline run (all requests at t=0: the deployment's
saturation throughput) and bisects on the arrival rate. Every trial samples the workload with
the same seed, and arrivals are drawn at unit rate and scaled by 1/rate, so trials differ only
in load (common random numbers): the SLO check is then monotone in practice and the bisection
converges without noise from re-sampling.

Stability. Above the saturation rate (the steady output rate of the offline run, divided by
the mean output length) requests arrive faster than the deployment completes them, so the
backlog grows without bound: first the running batch fills up to the sequence limit (TPOT
grows), then the queue (TTFT grows). A trial of finite length can end before either reaches
its limit, the more so the larger the engine's sequence limit (a replica that admits 6,000
sequences buffers tens of seconds of arrivals), whereas a measured Server run lasts long
enough for any backlog to show (MLPerf Inference: at least 600 s, 2,400 s for llama2-70b in
NVIDIA's v5.1 configs, ``loadgen_fields.min_duration`` in mlcommons/inference_results_v5.1
@965182b0 closed/NVIDIA/configs/B200-SXM-180GBx8/Server/*.py). So ``max_rate`` searches
only up to the saturation rate and answers it (binding ``saturation``) when every limit
holds there. ``min_replicas`` doubles the replica count until the
SLO holds at the target rate, then bisects between the last failing and first passing count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..errors import SiliconomicsError
from .cluster import kv_capacity_tokens
from .config import ServingConfig, Slo
from .metrics import SimResult
from .simulate import simulate
from .workload import Arrival, Lengths, Requests, Workload


@dataclass(frozen=True, kw_only=True)
class CapacityResult:
    """Outcome of a capacity search."""

    rate: float
    """requests/s (max_rate: highest passing rate; min_replicas: the target rate)"""
    replicas: int
    """replicas of the (front) pool"""
    result: SimResult | None
    """the simulation at the answer (None when no rate/replica count passes)"""
    trials: tuple[tuple[float, int, bool], ...]
    """(rate, replicas, SLO met) of every simulation run, in order"""
    saturation_rps: float
    """requests/s of the offline (all-at-once) run: an upper bound on any SLO"""
    binding: str
    """which limit binds at the answer, e.g. 'tpot p99'"""
    note: str = ""

    @property
    def output_tokens_per_s(self) -> float:
        """Output tokens/s at the answer's rate (the MLPerf Server throughput)."""
        if self.result is None:
            return 0.0
        return self.rate * float(self.result.log.output_tokens.mean())

    @property
    def total_tokens_per_s(self) -> float:
        """Input plus output tokens/s at the answer's rate."""
        if self.result is None:
            return 0.0
        log = self.result.log
        return self.rate * float(log.input_tokens.mean() + log.output_tokens.mean())


SATURATION_GENERATIONS = 16
"""requests of the saturation run, in multiples of the pool's concurrency. The steady rate of
an all-at-once run (``metrics.steady_rate``) starts in lock-step waves: every sequence joins
at t = 0 and the first generations finish together. Measured over four generations (the
pool's concurrency times four, used until 2026-11-30) it read 6-14% above the long-run rate
on the MLPerf Server configurations of Llama-2-70B and Mixtral-8x7B on 8 x H100/H200 and 1-3%
on Llama-3.1-8B and DeepSeek-R1 on 8 x B200 (32 generations as the reference); sixteen
generations are within 1% of it on all four (``tests/test_capacity.py``)."""

SATURATED = "saturation"
"""``binding`` when the answer is the saturation rate (every SLO limit still holds there)"""


def _check(slo: Slo) -> None:
    if slo.empty:
        raise SiliconomicsError("capacity search needs at least one SLO limit (ttft/tpot/e2e)")


def _trial(
    cfg: ServingConfig, w: Workload, slo: Slo, rate: float, seed: int, warmup: float
) -> SimResult:
    return simulate(cfg, w.with_rate(rate), seed=seed, slo=slo, warmup=warmup)


def _offline(w: Workload) -> Workload:
    """The same requests, all at t = 0."""
    if w.trace is not None:
        t = w.trace
        zero = Requests(
            arrival_s=t.arrival_s * 0.0, input_tokens=t.input_tokens, output_tokens=t.output_tokens
        )
        return replace(w, trace=zero)
    return replace(w, arrival=Arrival(kind="burst"))


def concurrency(config: ServingConfig, w: Workload) -> int:
    """Sequences the front pool can run at once (engine limit or KV cache at the mean
    context), summed over its engines."""
    pc = config.pool
    dev = pc.device
    ctx = max(round(w.mean_input + w.mean_output), 1)
    kv = kv_capacity_tokens(config.model, dev, pc, ctx) / pc.plan.pp
    fit = kv / max(w.mean_input + w.mean_output / 2, 1.0)
    per = min(pc.max_seqs, fit) if pc.max_seqs is not None else fit
    return max(int(per), 1) * pc.replicas * pc.plan.pp


def _unloaded_e2e(config: ServingConfig, w: Workload, seed: int) -> float:
    one = Workload(
        arrival=Arrival(kind="burst"),
        input=Lengths(params=(max(round(w.mean_input), 1),)),
        output=Lengths(params=(max(round(w.mean_output), 1),)),
        n_requests=1,
    )
    return simulate(config, one, seed=seed).e2e.mean


def max_rate(
    config: ServingConfig,
    workload: Workload,
    slo: Slo,
    *,
    seed: int = 0,
    rel_tol: float = 0.02,
    warmup: float = 0.1,
    horizon: float = 20.0,
    max_requests: int = 100_000,
    max_trials: int = 30,
    stable: bool = True,
) -> CapacityResult:
    """Highest arrival rate (requests/s) at which every SLO limit holds at its percentile.

    ``stable`` (default): the answer is at most the saturation rate (module docstring); False
    lets a trial's finite length decide alone (a backlog that has not yet grown into the
    limits passes).

    The workload's arrival process keeps its shape (Poisson, gamma, ...) at each rate. Each
    trial simulates at least ``workload.n_requests`` requests and enough to span ``horizon``
    unloaded request latencies (steady state, not the ramp-up), at most ``max_requests``; the
    first ``warmup`` fraction is left out of the percentiles. The saturation run offers
    :data:`SATURATION_GENERATIONS` times the pool's concurrency at once (at most
    ``max_requests``)."""
    _check(slo)
    w = workload if workload.arrival.kind != "burst" else replace(workload, arrival=Arrival())
    conc = concurrency(config, w)
    n_off = min(max(w.n_requests, SATURATION_GENERATIONS * conc), max_requests)
    off = simulate(config, _offline(w.with_requests(n_off)), seed=seed)
    sat = off.steady_output_tokens_per_s / float(off.log.output_tokens.mean())
    span = horizon * _unloaded_e2e(config, w, seed)
    trials: list[tuple[float, int, bool]] = []
    reps = config.pool.replicas

    def ok(rate: float) -> tuple[bool, SimResult]:
        n = min(max(w.n_requests, math.ceil(rate * span)), max_requests)
        r = _trial(config, w.with_requests(n), slo, rate, seed, warmup)
        trials.append((rate, reps, bool(r.slo_met)))
        return bool(r.slo_met), r

    best: SimResult | None = None
    if stable and math.isfinite(sat) and sat > 0:
        lo, hi = 0.0, sat
        passed, r = ok(hi)
        if passed:  # the SLO holds up to the throughput the deployment sustains
            return CapacityResult(
                rate=sat,
                replicas=reps,
                result=r,
                trials=tuple(trials),
                saturation_rps=sat,
                binding=SATURATED,
            )
    else:
        lo, hi = 0.0, 1.2 * sat
        passed, r = ok(hi)
        while passed and len(trials) < max_trials:  # a finite run can beat saturation briefly
            lo, best = hi, r
            hi *= 2
            passed, r = ok(hi)
    probe = 0.02 * sat
    if best is None:
        passed, r = ok(probe)
        if not passed:
            return CapacityResult(
                rate=0.0,
                replicas=reps,
                result=None,
                trials=tuple(trials),
                saturation_rps=sat,
                binding=r.binding(),
                note=f"SLO not met even at {probe:.3g} requests/s ({r.binding()} binds): "
                "the deployment is too slow for the targets at any load",
            )
        lo, best = probe, r
    while (hi - lo) > rel_tol * hi and len(trials) < max_trials:
        mid = (lo + hi) / 2
        passed, r = ok(mid)
        if passed:
            lo, best = mid, r
        else:
            hi = mid
    assert best is not None
    return CapacityResult(
        rate=lo,
        replicas=reps,
        result=best,
        trials=tuple(trials),
        saturation_rps=sat,
        binding=best.binding(),
    )


def _with_replicas(cfg: ServingConfig, n: int) -> ServingConfig:
    pool = replace(cfg.pool, plan=replace(cfg.pool.plan, replicas=n))
    return replace(cfg, pool=pool)


def min_replicas(
    config: ServingConfig,
    workload: Workload,
    slo: Slo,
    rate: float,
    *,
    seed: int = 0,
    warmup: float = 0.1,
    max_replicas: int = 4096,
) -> CapacityResult:
    """Fewest replicas of the (front) pool that serve ``rate`` requests/s within ``slo``.
    With disaggregation the decode pool is scaled in proportion."""
    _check(slo)
    if not rate > 0:
        raise SiliconomicsError(f"target rate must be > 0 requests/s, got {rate}")
    trials: list[tuple[float, int, bool]] = []
    base = config.pool.replicas
    dec = config.decode_pool.replicas if config.decode_pool is not None else 0

    def cfg_for(n: int) -> ServingConfig:
        c = _with_replicas(config, n)
        if c.decode_pool is not None:
            m = max(1, math.ceil(dec * n / base))
            c = replace(
                c, decode_pool=replace(c.decode_pool, plan=replace(c.decode_pool.plan, replicas=m))
            )
        return c

    def ok(n: int) -> tuple[bool, SimResult]:
        r = _trial(cfg_for(n), workload, slo, rate, seed, warmup)
        trials.append((rate, n, bool(r.slo_met)))
        return bool(r.slo_met), r

    n, last_bad = 1, 0
    passed, r = ok(n)
    while not passed:
        last_bad = n
        n *= 2
        if n > max_replicas:
            return CapacityResult(
                rate=rate,
                replicas=0,
                result=None,
                trials=tuple(trials),
                saturation_rps=math.nan,
                binding=r.binding(),
                note=f"not met with {max_replicas} replicas ({r.binding()} binds)",
            )
        passed, r = ok(n)
    best, hi = r, n
    lo = last_bad
    while hi - lo > 1:
        mid = (lo + hi) // 2
        passed, r = ok(mid)
        if passed:
            hi, best = mid, r
        else:
            lo = mid
    return CapacityResult(
        rate=rate,
        replicas=hi,
        result=best,
        trials=tuple(trials),
        saturation_rps=math.nan,
        binding=best.binding(),
    )

"""``simulate(config, workload)``: run one deployment on one workload and summarise it."""

from __future__ import annotations

import math

import numpy as np

from ..economics.cost import power_per_chip_w
from ..errors import SiliconomicsError
from ..inference.forward import forward_cost
from ..parallel.memory import active_params
from .cluster import Pool, Progress, build, run
from .config import ServingConfig, Slo
from .engine import Ledger, Sink
from .metrics import Dist, PoolStats, RequestLog, SimResult, slo_check, steady_rate
from .workload import Requests, Workload


def simulate(
    config: ServingConfig,
    workload: Workload | Requests,
    *,
    seed: int = 0,
    rng: np.random.Generator | None = None,
    slo: Slo | None = None,
    warmup: float = 0.0,
    sink: Sink | None = None,
    progress: Progress | None = None,
) -> SimResult:
    """Simulate ``workload`` (sampled with ``rng``, or ``default_rng(seed)``) on ``config``.

    ``slo`` sets goodput and ``slo_met``; ``warmup`` is the fraction of the first requests
    left out of the latency statistics; ``sink`` receives Chrome-trace events (dicts), one per
    engine step; ``progress(done, total)`` is called now and then."""
    if not 0 <= warmup < 1:
        raise SiliconomicsError(f"warmup must be a fraction in [0, 1), got {warmup}")
    reqs = (
        workload
        if isinstance(workload, Requests)
        else workload.sample(rng if rng is not None else np.random.default_rng(seed))
    )
    ledger = Ledger(reqs.arrival_s, reqs.input_tokens, reqs.output_tokens)
    pools, links = build(config, reqs, ledger, sink)
    run(pools, links, reqs, ledger, progress)
    log = RequestLog(
        arrival_s=reqs.arrival_s,
        input_tokens=reqs.input_tokens,
        output_tokens=reqs.output_tokens,
        first_token_s=np.asarray(ledger.first_token),
        finish_s=np.asarray(ledger.finish),
        scheduled_s=np.asarray(ledger.scheduled),
        preemptions=np.asarray(ledger.preemptions, dtype=np.int64),
        replica=np.asarray(ledger.engine, dtype=np.int64),
    )
    start = int(warmup * len(reqs))
    duration = float(np.max(log.finish_s) - reqs.arrival_s[0])
    stats = tuple(_pool_stats(config, p, log, duration) for p in pools)
    good, met = slo_check(log, slo, start)
    n = len(reqs)
    sl = slice(start, None)
    return SimResult(
        n_requests=n,
        duration_s=duration,
        ttft=Dist.of(log.ttft_s[sl]),
        tpot=Dist.of(log.tpot_s[sl]),
        e2e=Dist.of(log.e2e_s[sl]),
        queue=Dist.of(log.queue_s[sl]),
        requests_per_s=n / duration,
        output_tokens_per_s=float(reqs.output_tokens.sum()) / duration,
        input_tokens_per_s=float(reqs.input_tokens.sum()) / duration,
        steady_output_tokens_per_s=steady_rate(log),
        goodput_rps=good * n / duration,
        goodput_fraction=good,
        slo=slo,
        slo_met=met,
        preemptions=int(log.preemptions.sum()),
        pools=stats,
        energy_j=sum(s.energy_j for s in stats),
        cost_usd=sum(s.usd for s in stats),
        kv_transfer_bytes=links.bytes if links is not None else 0.0,
        log=log,
        measured_from=start,
        assumptions=_assumptions(config, pools),
    )


def _pool_stats(cfg: ServingConfig, pool: Pool, log: RequestLog, duration: float) -> PoolStats:
    pc, dev, engines = pool.cfg, pool.dev, pool.engines
    n_eng = len(engines)
    busy = sum(e.busy_s for e in engines) / (n_eng * duration) if duration > 0 else 0.0
    steps = sum(e.steps for e in engines)
    counts: dict[int, int] = {}
    for e in engines:
        for b, c in e.batch_hist.items():
            counts[b] = counts.get(b, 0) + c
    hist = sorted((b, c) for b, c in counts.items() if c)
    n_steps = sum(c for _, c in hist)
    mean_b = sum(b * c for b, c in hist) / n_steps if n_steps else 0.0
    kv = sum(e.kv_block_s for e in engines) / (n_eng * engines[0].blocks_total * duration)
    tokens = sum(e.tokens_done for e in engines)
    chips = pc.chips
    peak = dev.peak_flops(pc.plan.compute_dtype) * chips
    mfu = 2.0 * active_params(cfg.model) * tokens / (peak * duration) if duration > 0 else 0.0
    ctx = float(np.mean(log.input_tokens + log.output_tokens / 2))
    shares = forward_cost(cfg.model, dev, pc.plan, max(mean_b, 1.0), 1.0, ctx).bound_shares()
    total = sum(float(v) for v in shares.values())
    busy_activity = float(shares["compute"] + shares["memory"]) / total if total else 1.0
    watts, _ = power_per_chip_w(pc.chip, busy * busy_activity)
    mask = np.isin(log.replica, [e.index for e in engines])
    return PoolStats(
        role=pool.role,
        chip=dev.id,
        replicas=pc.replicas,
        chips=chips,
        scheduler=pc.scheduler,
        max_seqs=pool.max_seqs,
        kv_tokens_per_replica=pool.kv_tokens,
        utilisation=busy,
        mfu=mfu,
        kv_utilisation=kv,
        mean_batch=mean_b,
        batch_hist=tuple(hist),
        steps=steps,
        preemptions=int(log.preemptions[mask].sum()),
        watts_per_chip=float(watts),
        energy_j=float(watts) * chips * duration,
        usd=math.nan,  # dollars are attached above serving (economics.serving_cost)
        usd_per_chip_hour=math.nan,
    )


def _assumptions(cfg: ServingConfig, pools: list[Pool]) -> tuple[str, ...]:
    out = []
    for p in pools:
        out += p.dev.assumptions(
            p.cfg.plan.compute_dtype,
            p.dev.attention_dtype(p.cfg.plan.act_dtype, p.cfg.plan.kv_dtype),
        )
        if p.cfg.plan.pp > 1:
            out.append(
                f"{p.dev.id}: pp={p.cfg.plan.pp} runs as {p.cfg.plan.pp} virtual engines per "
                "replica (micro-batches in flight), each with 1/pp of the KV cache"
            )
    return tuple(dict.fromkeys(out))

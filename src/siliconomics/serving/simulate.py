"""``simulate(config, workload)``: run one deployment on one workload and summarise it."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator

import numpy as np

from ..economics.cost import power_per_chip_w
from ..errors import SiliconomicsError
from ..inference.forward import forward_cost
from ..parallel.memory import active_params
from . import stream as stream_mod
from .cluster import Chunk, Pool, Progress, build, run, run_stream
from .config import ServingConfig, Slo
from .engine import Ledger, Sink
from .metrics import Dist, PoolStats, RequestLog, SimResult, slo_check, steady_rate
from .stream import StreamStats
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
    stream: bool = False,
) -> SimResult:
    """Simulate ``workload`` (sampled with ``rng``, or ``default_rng(seed)``) on ``config``.

    ``slo`` sets goodput and ``slo_met``; ``warmup`` is the fraction of the first requests
    left out of the latency statistics; ``sink`` receives Chrome-trace events (dicts), one per
    engine step; ``progress(done, total)`` is called now and then.

    ``stream=True`` runs in memory that does not grow with the number of requests
    (:mod:`.stream`): a ``Workload`` is drawn in chunks (other draws than ``stream=False``
    for the same seed; the same simulation for the same ``Requests``), latency percentiles
    come from a sketch within 0.5% relative error, the steady output rate from 4,096 time
    bins, and ``log`` is empty."""
    if not 0 <= warmup < 1:
        raise SiliconomicsError(f"warmup must be a fraction in [0, 1), got {warmup}")
    if stream:
        return _simulate_stream(config, workload, seed, rng, slo, warmup, sink, progress)
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
    ctx = float(np.mean(log.input_tokens + log.output_tokens / 2))
    stats = tuple(_pool_stats(config, p, ctx, duration) for p in pools)
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


def _pool_stats(cfg: ServingConfig, pool: Pool, ctx: float, duration: float) -> PoolStats:
    """``ctx``: the mean context (input + output / 2 tokens) over all requests"""
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
    shares = forward_cost(cfg.model, dev, pc.plan, max(mean_b, 1.0), 1.0, ctx).bound_shares()
    total = sum(float(v) for v in shares.values())
    busy_activity = float(shares["compute"] + shares["memory"]) / total if total else 1.0
    watts, _ = power_per_chip_w(pc.chip, busy * busy_activity)
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
        preemptions=sum(e.preempted for e in engines),
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
        if p.cfg.spec is not None:
            out.append(
                f"{p.dev.id} ({p.role} pool): {p.cfg.spec.describe()}; every decode sequence "
                f"emits floor(k x {p.cfg.spec.accepted:g}) tokens after k steps (a "
                "deterministic schedule at the mean acceptance)"
            )
    return tuple(dict.fromkeys(out))


def _chunks(
    workload: Workload | Requests, rng: np.random.Generator
) -> tuple[int, Callable[[], Iterator[Chunk]]]:
    """(longest request, a function that yields the request chunks afresh): a sampled
    workload is drawn twice from the same generator state, once for its longest request
    (which sizes the KV cache checks and step-time tables), once to run."""
    if isinstance(workload, Requests):
        r = workload

        def given() -> Iterator[Chunk]:
            size = stream_mod.FLUSH
            for lo in range(0, len(r), size):
                hi = lo + size
                yield r.arrival_s[lo:hi], r.input_tokens[lo:hi], r.output_tokens[lo:hi]

        return int((r.input_tokens + r.output_tokens).max()), given
    state = copy.deepcopy(rng.bit_generator.state)

    def drawn() -> Iterator[Chunk]:
        rng.bit_generator.state = copy.deepcopy(state)
        for c in workload.chunks(rng, stream_mod.FLUSH):
            yield c.arrival_s, c.input_tokens, c.output_tokens

    longest = max(int((inp + out).max()) for _, inp, out in drawn())
    return longest, drawn


def _simulate_stream(
    config: ServingConfig,
    workload: Workload | Requests,
    seed: int,
    rng: np.random.Generator | None,
    slo: Slo | None,
    warmup: float,
    sink: Sink | None,
    progress: Progress | None,
) -> SimResult:
    n = len(workload) if isinstance(workload, Requests) else workload.n_requests
    longest, chunks = _chunks(workload, rng if rng is not None else np.random.default_rng(seed))
    start = int(warmup * n)
    st = StreamStats(start=start, slo=slo)
    ledger = Ledger.streaming(st)
    pools, links = build(config, longest, ledger, sink)
    run_stream(pools, links, chunks(), ledger, n, progress)
    st.flush()
    duration = st.last_finish - st.first_arrival
    stats = tuple(_pool_stats(config, p, st.ctx_sum / n, duration) for p in pools)
    good, met = st.slo_check()
    empty_f, empty_i = np.zeros(0), np.zeros(0, dtype=np.int64)
    log = RequestLog(
        arrival_s=empty_f,
        input_tokens=empty_i,
        output_tokens=empty_i,
        first_token_s=empty_f,
        finish_s=empty_f,
        scheduled_s=empty_f,
        preemptions=empty_i,
        replica=empty_i,
    )
    return SimResult(
        n_requests=n,
        duration_s=duration,
        ttft=st.dist("ttft"),
        tpot=st.dist("tpot"),
        e2e=st.dist("e2e"),
        queue=st.dist("queue"),
        requests_per_s=n / duration,
        output_tokens_per_s=st.output_tokens / duration,
        input_tokens_per_s=st.input_tokens / duration,
        steady_output_tokens_per_s=st.bins.steady_rate(),
        goodput_rps=good * n / duration,
        goodput_fraction=good,
        slo=slo,
        slo_met=met,
        preemptions=sum(p.preemptions for p in stats),
        pools=stats,
        energy_j=sum(s.energy_j for s in stats),
        cost_usd=sum(s.usd for s in stats),
        kv_transfer_bytes=links.bytes if links is not None else 0.0,
        log=log,
        measured_from=start,
        assumptions=_assumptions(config, pools),
        stream=st,
    )

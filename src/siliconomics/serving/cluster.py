"""The discrete-event loop: requests arrive, routers pick replicas, engines run steps.

Events are step completions (one per engine step) and KV arrivals (disaggregated pools) in a
heap, merged with the pre-sampled, sorted arrival times. Engines start a step when idle and
work is queued; admission happens at step boundaries, as in real engines. Ties resolve step
completions first, then by insertion order, so a run is fully determined by its inputs.

Memory per replica (per chip): usable HBM - weights - activations of a ``max_batched_tokens``
step = KV cache, in blocks of ``block_size`` tokens. A replica with ``pp`` pipeline stages runs
as ``pp`` virtual engines (vLLM's virtual engines / micro-batches in flight), each with 1/pp
of the KV cache and a step time equal to the full forward latency through all stages.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..catalog.schema import ModelSpec
from ..errors import DoesNotFitError, SiliconomicsError
from ..inference import speculative
from ..ops.device import Device
from ..parallel.memory import (
    activation_bytes_per_chip,
    kv_bytes_per_token_per_chip,
    state_bytes_per_seq_per_chip,
    weight_bytes_per_chip,
)
from ..units import fmt_si
from . import fastcore
from .config import PoolConfig, ServingConfig
from .disagg import KvLinks, default_link_bytes_per_s, kv_bytes_per_token, state_bytes_per_request
from .engine import Engine, Ledger, Sink
from .router import ROUTERS, Router
from .schedulers import SCHEDULERS
from .schedulers.adp import AdpBalancedEngine
from .schedulers.continuous import ContinuousEngine
from .schedulers.static import default_buckets
from .steptime import step_time_model
from .workload import Requests

Progress = Callable[[int, int], None]


@dataclass(kw_only=True)
class Pool:
    cfg: PoolConfig
    role: str
    dev: Device
    engines: list[Engine]
    router: Router
    kv_tokens: int
    """KV-cache capacity of one replica, tokens"""
    max_seqs: int


def _pow2(n: float) -> int:
    return 1 << max(math.ceil(math.log2(max(n, 2.0))), 1)


def kv_capacity_tokens(
    model: ModelSpec, dev: Device, pc: PoolConfig, max_ctx: int | None = None
) -> int:
    """KV-cache tokens one replica holds (with the MTP layer's weights and cache when the pool
    speculates), after the fixed-size states of :func:`state_slots` sequences."""
    return _kv_and_slots(model, dev, pc, max_ctx)[0]


def state_slots(model: ModelSpec, dev: Device, pc: PoolConfig, max_ctx: int | None = None) -> int:
    """Sequences whose linear-attention state (Gated DeltaNet layers) a replica reserves up
    front, as SGLang's state pool does: ``max_seqs``, or, with no sequence limit, as many as
    could each hold the longest request (``max_ctx`` tokens) beside their state. 0 for models
    without such layers."""
    return _kv_and_slots(model, dev, pc, max_ctx)[1]


def _kv_and_slots(
    model: ModelSpec, dev: Device, pc: PoolConfig, max_ctx: int | None
) -> tuple[int, int]:
    if pc.spec is not None:
        model = speculative.memory_model(model, pc.spec)
    w = weight_bytes_per_chip(model, pc.plan)
    free = (
        dev.usable_bytes(w)
        - w
        - float(activation_bytes_per_chip(model, pc.plan, pc.max_batched_tokens))
    )
    per_tok = kv_bytes_per_token_per_chip(model, pc.plan)
    state = state_bytes_per_seq_per_chip(model, pc.plan)
    slots = 0
    if state > 0:
        if pc.max_seqs is not None:
            slots = pc.max_seqs
        else:
            per_seq = state + per_tok * max(max_ctx or 1, 1)
            slots = max(int(max(free, 0.0) // per_seq), 1)
        free -= slots * state
    return max(int(free // per_tok), 0), slots


def build_pool(
    model: ModelSpec,
    pc: PoolConfig,
    *,
    role: str,
    pool_index: int,
    first_engine: int,
    ledger: Ledger,
    max_ctx: int,
    router: str,
    sink: Sink | None,
) -> Pool:
    if pc.scheduler not in SCHEDULERS:
        raise SiliconomicsError(f"scheduler '{pc.scheduler}': allowed: {', '.join(SCHEDULERS)}")
    if router not in ROUTERS:
        raise SiliconomicsError(f"router '{router}': allowed: {', '.join(ROUTERS)}")
    dev = pc.device
    pc.plan.validate(model, dev)
    kv_tokens, slots = _kv_and_slots(model, dev, pc, max_ctx)
    stepped = model  # the model the steps run (with its MTP module when speculating)
    if pc.spec is not None:  # memory holds the MTP layer's weights and KV cache too
        model = speculative.memory_model(model, pc.spec)
    weights = weight_bytes_per_chip(model, pc.plan)
    usable = dev.usable_bytes(weights)
    if weights > usable:
        # Say what overflowed: the weights alone, before any KV cache.
        short = weights - usable
        raise DoesNotFitError(
            f"{model.id} on {pc.plan.chips_per_replica} x {dev.id} ({role} pool): the weights "
            f"need {fmt_si(weights, 'B', binary=True)} per chip of "
            f"{fmt_si(usable, 'B', binary=True)} usable; short by "
            f"{fmt_si(short, 'B', binary=True)}",
            shortfall_bytes=short,
            suggestion="use more tensor or pipeline parallelism, or a narrower weight dtype",
        )
    pp = pc.plan.pp
    per_engine = kv_tokens // pp
    where = f"{pc.plan.chips_per_replica} x {dev.id} ({role} pool)"
    if per_engine < max_ctx:
        raise DoesNotFitError(
            f"{model.id} on {where}: the KV cache holds {per_engine} tokens per engine, "
            f"fewer than the longest request ({max_ctx} tokens)"
            + (
                f", after the linear-attention states of {slots} sequences "
                f"({fmt_si(slots * state_bytes_per_seq_per_chip(model, pc.plan), 'B', binary=True)}"
                " per chip)"
                if slots
                else ""
            ),
            shortfall_bytes=(max_ctx - per_engine) * kv_bytes_per_token_per_chip(model, pc.plan),
            suggestion="use more tensor parallelism, a narrower kv dtype or shorter requests"
            + (", or fewer sequences at once (max_seqs)" if slots else ""),
        )
    blocks = per_engine // pc.block_size
    buckets = pc.buckets
    if pc.scheduler == "static":
        buckets = tuple(sorted(pc.buckets)) or default_buckets(max_ctx)
        top = next((b for b in buckets if b >= max_ctx), max_ctx)
        fit = per_engine // top
        max_seqs = pc.max_seqs if pc.max_seqs is not None else max(fit, 1)
        if max_seqs * top > per_engine:
            raise DoesNotFitError(
                f"static batch {max_seqs} x {top}-token bucket needs "
                f"{fmt_si(max_seqs * top, 'tokens')} of KV cache; {where} holds {per_engine}",
                shortfall_bytes=(max_seqs * top - per_engine)
                * kv_bytes_per_token_per_chip(model, pc.plan),
                suggestion=f"largest batch that fits: {fit}",
            )
        stm_tokens = max_seqs * top
    else:
        max_seqs = pc.max_seqs if pc.max_seqs is not None else max(blocks, 1)  # memory decides
        if slots:  # no more running sequences than reserved linear-attention states
            max_seqs = min(max_seqs, slots)
        stm_tokens = max(pc.max_batched_tokens, max_ctx)
    stm = step_time_model(
        stepped,
        dev,
        pc.plan,
        max_tokens=_pow2(stm_tokens),
        max_seqs=_pow2(max_seqs),
        max_ctx=_pow2(max_ctx),
        graph_sizes=tuple(float(g) for g in pc.graph_sizes),
        spec=pc.spec,
    )
    cls = SCHEDULERS[pc.scheduler] if pc.adp_balance is None else AdpBalancedEngine
    engines = [
        cls(
            index=first_engine + i,
            pool=pool_index,
            stm=stm,
            ledger=ledger,
            kv_blocks=blocks,
            block_size=pc.block_size,
            max_seqs=max_seqs,
            max_tokens=pc.max_batched_tokens,
            buckets=buckets,
            sink=sink,
        )
        for i in range(pc.replicas * pp)
    ]
    for e in engines:
        if isinstance(e, ContinuousEngine):
            e.multi_step = pc.multi_step
        elif isinstance(e, AdpBalancedEngine) and pc.adp_balance is not None:
            e.dp = pc.plan.dp
            e.timeout_iters, e.batching_wait_iters = pc.adp_balance
    route = ROUTERS[router]()
    route.bind(engines)
    return Pool(
        cfg=pc,
        role=role,
        dev=dev,
        engines=engines,
        router=route,
        kv_tokens=kv_tokens,
        max_seqs=max_seqs,
    )


def build(
    cfg: ServingConfig, reqs: Requests | int, ledger: Ledger, sink: Sink | None
) -> tuple[list[Pool], KvLinks | None]:
    """Pools and KV links for ``cfg``, sized for the longest request of ``reqs`` (or for a
    context of ``reqs`` tokens)."""
    cfg.validate()
    longest = reqs if isinstance(reqs, int) else (reqs.input_tokens + reqs.output_tokens).max()
    max_ctx = int(longest)
    roles = ("serve",) if cfg.decode_pool is None else ("prefill", "decode")
    pools: list[Pool] = []
    for k, (pc, role) in enumerate(zip(cfg.pools, roles, strict=True)):
        first = sum(len(p.engines) for p in pools)
        pools.append(
            build_pool(
                cfg.model,
                pc,
                role=role,
                pool_index=k,
                first_engine=first,
                ledger=ledger,
                max_ctx=max_ctx,
                router=cfg.router,
                sink=sink,
            )
        )
    links = None
    if len(pools) == 2:
        bw = cfg.kv_link_bytes_per_s or default_link_bytes_per_s(cfg, pools[0].dev, pools[1].dev)
        per_tok = kv_bytes_per_token(cfg.model, cfg.pool.plan)
        state = state_bytes_per_request(cfg.model, cfg.pool.plan)
        links = KvLinks(len(pools[0].engines), per_tok, bw, cfg.kv_link_latency_s, state)
    return pools, links


STEP, KV = 0, 1


class _Events:
    """The time-ordered event queue of one run: engine steps and KV-cache arrivals."""

    def __init__(self, ledger: Ledger, links: KvLinks | None) -> None:
        self.heap: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.ledger = ledger
        self.links = links

    def push(self, t: float, kind: int, x: int, version: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, x, version))

    def kick(self, e: Engine, t: float) -> None:
        """Start ``e``'s next step at ``t`` (or mark it idle)."""
        dur = e.start_step(t)
        if dur is None:
            e.busy = False
        else:
            e.busy = True
            self.push(t + dur, STEP, e.index, e.version)
        if e.touch is not None:
            e.touch(e)

    def wake(self, e: Engine, t: float) -> None:
        """New work for ``e`` at ``t``: start a step if idle; cut a decode run short."""
        if not e.busy:
            self.kick(e, t)
            return
        if e.run_steps:
            end = e.truncate_run(t)
            if end is not None:
                e.version += 1
                self.push(end, STEP, e.index, e.version)
        if e.touch is not None:
            e.touch(e)

    def handoff(self, e: Engine) -> Callable[[int, float], None]:
        """What prefill engine ``e`` calls when a request's prompt is done: the KV cache
        crosses the link and the request arrives at the decode pool."""
        links = self.links
        assert links is not None

        def go(rid: int, t: float) -> None:
            self.push(links.transfer(e.index, self.ledger.inp[rid], t), KV, rid, 0)

        return go

    def pop(self, engines: list[Engine], back: Pool) -> None:
        """Handle the earliest event: a finished step, or a request reaching decode."""
        t, _, kind, x, ver = heapq.heappop(self.heap)
        if kind == STEP:
            e = engines[x]
            if ver != e.version:  # a run that was cut short: its new event is queued
                return
            e.finish_step(t)
            self.kick(e, t)
        else:
            e = back.router.pick(back.engines, x, t)
            e.enqueue_ready(x)
            self.wake(e, t)


def _events(pools: list[Pool], links: KvLinks | None, ledger: Ledger) -> _Events:
    ev = _Events(ledger, links)
    if links is not None:
        for e in pools[0].engines:
            e.handoff = ev.handoff(e)
    return ev


def run(
    pools: list[Pool],
    links: KvLinks | None,
    reqs: Requests,
    ledger: Ledger,
    progress: Progress | None = None,
) -> None:
    """Advance the simulation until every request has finished."""
    engines = [e for p in pools for e in p.engines]
    front, back = pools[0], pools[-1]
    if fastcore.eligible(engines, front.router.name, len(pools), engines[0].sink):
        fastcore.run(engines, front.router.name, ledger, progress)
        return
    ev = _events(pools, links, ledger)
    arrivals = ledger.arrival  # compact array: no Python float object per request
    n = len(arrivals)
    i = 0
    ticks = 0
    pick_front, heap = front.router.pick, ev.heap
    while True:
        ta = arrivals[i] if i < n else math.inf
        if heap and heap[0][0] <= ta:
            ev.pop(engines, back)
        elif i < n:
            e = pick_front(front.engines, i, ta)
            e.enqueue(i)
            i += 1
            ev.wake(e, ta)
        else:
            break
        ticks += 1
        if progress is not None and ticks % 8192 == 0:
            progress(ledger.done, n)
    if ledger.done != n:  # an internal invariant: every request must finish
        raise AssertionError(f"simulation ended with {n - ledger.done} unfinished requests")
    if progress is not None:
        progress(n, n)


Chunk = tuple[np.ndarray, np.ndarray, np.ndarray]


def run_stream(
    pools: list[Pool],
    links: KvLinks | None,
    chunks: Iterable[Chunk],
    ledger: Ledger,
    n: int,
    progress: Progress | None = None,
) -> None:
    """:func:`run` on a streaming ledger: arrivals come in chunks ``(arrival_s, input,
    output)`` and take a ledger slot each; events interleave with arrivals exactly as in
    :func:`run`, so the simulation is the same."""
    engines = [e for p in pools for e in p.engines]
    front, back = pools[0], pools[-1]
    if fastcore.eligible(engines, front.router.name, len(pools), engines[0].sink):
        fastcore.run_stream(engines, front.router.name, chunks, ledger, n, progress)
        return
    ev = _events(pools, links, ledger)
    pick_front, heap, admit = front.router.pick, ev.heap, ledger.admit
    seq = 0
    for arr, inp, out in chunks:
        for ta, a, b in zip(arr.tolist(), inp.tolist(), out.tolist(), strict=True):
            while heap and heap[0][0] <= ta:
                ev.pop(engines, back)
            rid = admit(seq, ta, a, b)
            e = pick_front(front.engines, rid, ta)
            e.enqueue(rid)
            seq += 1
            ev.wake(e, ta)
        if progress is not None:
            progress(ledger.done, n)
    while heap:
        ev.pop(engines, back)
    if ledger.done != seq:
        raise AssertionError(f"simulation ended with {seq - ledger.done} unfinished requests")
    if progress is not None:
        progress(seq, seq)

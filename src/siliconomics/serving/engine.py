"""One replica's engine: request bookkeeping, paged KV-cache blocks, the running decode set.

Schedulers (``serving/schedulers/``) subclass :class:`Engine` and decide what each step runs;
this base class keeps the state that makes a step O(1) in Python however large the batch:

* Per-request state lives in a shared :class:`Ledger` (lists indexed by request id).
* The decode set is kept in aggregate: ``n_dec`` sequences holding ``ctx_sum`` cached tokens.
  All decode sequences advance one token per step, so a sequence that joined at decode step
  ``k0`` with ``c0`` cached tokens has ``c0 + k - k0`` at step ``k``; it finishes at step
  ``k0 + remaining``, kept in a heap.
* Paged KV cache (vLLM's PagedAttention): a sequence holds ``ceil(tokens / block_size)``
  blocks and needs a new block when its cached count is a multiple of the block size. That
  happens at step ``k`` for the sequences whose residue ``(c0 - k0) mod block_size`` equals
  ``-k mod block_size``, so one array of residue counts gives the blocks a step needs.
* Preemption by recomputation (vLLM's default): when a decode step needs more blocks than are
  free, the most recently arrived running sequence is evicted, its blocks freed, and it goes
  back to the front of the queue to re-prefill its prompt plus the tokens it had generated.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from bisect import bisect_right
from typing import Any

import numpy as np

from .steptime import StepTimeModel

Sink = Callable[[dict[str, Any]], None]
MIN_RUN = 4  # fewer steps than this run one by one (numpy overhead beats the saving)


class Ledger:
    """Per-request state shared by all engines (lists indexed by request id)."""

    def __init__(self, arrival: list[float], inp: list[int], out: list[int]) -> None:
        n = len(arrival)
        self.arrival, self.inp, self.out = arrival, inp, out
        nan = math.nan
        self.first_token = [nan] * n
        self.finish = [nan] * n
        self.scheduled = [nan] * n  # first time any of its prompt was processed
        self.gen = [0] * n  # tokens generated so far (at the last time it left a decode set)
        self.preemptions = [0] * n
        self.engine = [-1] * n
        self.join_k = [0] * n
        self.join_c = [0] * n
        self.epoch = [0] * n  # invalidates stale heap entries after a preemption
        self.done = 0


class Engine:
    """Base engine: continuous-batching state; subclasses implement :meth:`start_step`."""

    def __init__(
        self,
        *,
        index: int,
        pool: int,
        stm: StepTimeModel,
        ledger: Ledger,
        kv_blocks: int,
        block_size: int,
        max_seqs: int,
        max_tokens: int,
        buckets: tuple[int, ...] = (),
        sink: Sink | None = None,
    ) -> None:
        self.index, self.pool, self.stm, self.L = index, pool, stm, ledger
        self.blocks_total = self.blocks_free = kv_blocks
        self.bs, self.max_seqs, self.max_tokens = block_size, max_seqs, max_tokens
        self.buckets = buckets
        self.sink = sink
        self.watermark = max(1, kv_blocks // 100)  # vLLM admits only above a 1% watermark
        self.waiting: deque[int] = deque()  # requests that need (re)prefill
        self.ready: deque[int] = deque()  # requests whose KV arrived (disaggregated decode)
        self.handoff: Callable[[int, float], None] | None = None  # set for prefill pools
        self.busy = False
        self.horizon = 0.0  # no multi-step decode run may end after this time
        self.run_steps = 0  # steps in the decode run now in flight (0: a single step)
        self.last_step_s = 0.0
        # decode set
        self.k = 0
        self.n_dec = 0
        self.ctx_sum = 0
        self.residue = [0] * block_size
        self.fin: list[tuple[int, int, int]] = []  # (finish step, rid, epoch)
        self.victims: list[tuple[int, int]] = []  # (-rid, epoch): newest first
        # load seen by routers
        self.load_tokens = 0
        self.n_assigned = 0
        # statistics
        self.busy_s = 0.0
        self.kv_block_s = 0.0
        self.steps = 0
        self.batch_sizes: list[int] = []
        self.tokens_done = 0

    # ---- arrivals ------------------------------------------------------------------
    def enqueue(self, rid: int) -> None:
        L = self.L
        L.engine[rid] = self.index
        self.waiting.append(rid)
        self.load_tokens += L.inp[rid] + L.out[rid]
        self.n_assigned += 1

    def enqueue_ready(self, rid: int) -> None:
        """A request whose prompt was prefilled elsewhere and whose KV has arrived."""
        L = self.L
        L.engine[rid] = self.index
        self.ready.append(rid)
        self.load_tokens += L.out[rid] - L.gen[rid]
        self.n_assigned += 1

    def start_step(self, t: float) -> float | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def finish_step(self, t: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- decode set ------------------------------------------------------------------
    def join_decode(self, rid: int, cached: int) -> None:
        L = self.L
        k = self.k
        L.join_k[rid] = k
        L.join_c[rid] = cached
        self.residue[(cached - k) % self.bs] += 1
        self.n_dec += 1
        self.ctx_sum += cached
        heapq.heappush(self.fin, (k + L.out[rid] - L.gen[rid], rid, L.epoch[rid]))
        heapq.heappush(self.victims, (-rid, L.epoch[rid]))

    def _leave_decode(self, rid: int) -> int:
        """Remove ``rid`` from the decode set; returns its cached tokens (blocks freed)."""
        L = self.L
        cached = L.join_c[rid] + self.k - L.join_k[rid]
        self.residue[(L.join_c[rid] - L.join_k[rid]) % self.bs] -= 1
        self.n_dec -= 1
        self.ctx_sum -= cached
        self.blocks_free += -(-cached // self.bs)
        L.epoch[rid] += 1
        return cached

    def reserve_decode_blocks(self) -> None:
        """Blocks for this decode step's new tokens; preempt the newest sequences if short."""
        need = self.residue[-self.k % self.bs]
        while need > self.blocks_free and self.n_dec:
            self._preempt_newest()
            need = self.residue[-self.k % self.bs]
        self.blocks_free -= need

    def _preempt_newest(self) -> None:
        L = self.L
        while True:
            neg, ep = heapq.heappop(self.victims)
            if L.epoch[-neg] == ep:
                break
        rid = -neg
        L.gen[rid] += self.k - L.join_k[rid]
        self._leave_decode(rid)
        L.preemptions[rid] += 1
        self.load_tokens += L.inp[rid] + L.gen[rid]  # the recomputation is new work
        self.waiting.appendleft(rid)

    def end_decode_step(self, t: float) -> None:
        """Account one completed decode step: contexts grow, finished sequences leave."""
        self.k += 1
        self.ctx_sum += self.n_dec
        self.load_tokens -= self.n_dec
        fin, L, k = self.fin, self.L, self.k
        while fin and fin[0][0] <= k:
            _, rid, ep = heapq.heappop(fin)
            if L.epoch[rid] != ep:
                continue
            L.gen[rid] = L.out[rid]
            self._leave_decode(rid)
            self.complete(rid, t)

    def decode_run(self, t: float) -> float | None:
        """Several pure-decode steps as one event, when nothing can change in between: the
        caller checked that no request waits; this stops before the next finish, before a
        step that would lack KV blocks, and at the last step ending by ``self.horizon`` (the
        next arrival, when routing could change this engine's work). Returns the total time,
        or None when fewer than ``MIN_RUN`` steps qualify (then a single step runs)."""
        fin, L = self.fin, self.L
        while fin and L.epoch[fin[0][1]] != fin[0][2]:
            heapq.heappop(fin)
        m = fin[0][0] - self.k if fin else 0
        # Cheap rejection first (most calls under heavy load): the last step's time is a
        # good guess of this one's. It only decides whether to try; results are identical.
        if m < MIN_RUN or self.horizon - t < MIN_RUN * self.last_step_s:
            return None
        # Steps only get longer as contexts grow, so the first step bounds how many fit.
        B = self.n_dec
        first = self.stm.decode_step(B, self.ctx_sum)
        if self.horizon - t < m * first:
            m = int((self.horizon - t) / first)
        if m < MIN_RUN:
            return None
        # Blocks: step k+j needs residue[-(k+j) mod bs]; the pattern repeats every bs steps.
        bs, k = self.bs, self.k
        per = [self.residue[-(k + j) % bs] for j in range(bs)]
        cum = [0]
        for v in per:
            cum.append(cum[-1] + v)
        if cum[-1]:
            q, rem = divmod(self.blocks_free, cum[-1])
            m = min(m, q * bs + bisect_right(cum, rem, hi=bs) - 1)
        if m < MIN_RUN:
            return None
        times = self.stm.decode_steps(B, self.ctx_sum + B * np.arange(m, dtype=np.float64))
        ends = np.cumsum(times)
        m = min(m, int(np.searchsorted(ends, self.horizon - t, side="right")))
        if m < MIN_RUN:
            return None
        q, r = divmod(m, bs)
        self.blocks_free -= q * cum[-1] + cum[r]
        dur = float(ends[m - 1])
        self.last_step_s = float(times[m - 1])
        self.run_steps = m
        self.busy_s += dur
        self.steps += m
        self.batch_sizes.extend([B] * m)
        self.tokens_done += B * m
        self.kv_block_s += (self.blocks_total - self.blocks_free) * dur  # blocks at the end
        if self.sink is not None:
            self.sink(_event("decode x{}".format(m), t, dur, self, B, B * m))
        return dur

    def end_decode_run(self, t: float) -> None:
        m, self.run_steps = self.run_steps, 0
        self.k += m - 1
        self.ctx_sum += self.n_dec * (m - 1)
        self.load_tokens -= self.n_dec * (m - 1)
        self.end_decode_step(t)

    def complete(self, rid: int, t: float) -> None:
        self.L.finish[rid] = t
        self.L.done += 1
        self.n_assigned -= 1

    def prefilled(self, rid: int, prompt: int, t: float) -> None:
        """``rid``'s prompt (``prompt`` tokens, blocks already held) is processed at ``t``:
        it samples a token, then finishes, hands off (prefill pool) or joins decode."""
        L = self.L
        L.gen[rid] += 1
        self.load_tokens -= 1
        if L.first_token[rid] != L.first_token[rid]:  # NaN: first time
            L.first_token[rid] = t
        if L.gen[rid] >= L.out[rid]:
            self.blocks_free += -(-prompt // self.bs)
            self.complete(rid, t)
        elif self.handoff is not None:
            self.blocks_free += -(-prompt // self.bs)
            self.n_assigned -= 1
            self.load_tokens -= L.out[rid] - L.gen[rid]
            self.handoff(rid, t)
        else:
            self.join_decode(rid, prompt)

    def admit_ready(self) -> None:
        """Move arrived-KV requests into the decode set while slots and blocks allow."""
        L = self.L
        while self.ready and self.n_dec + self.n_prefilling() < self.max_seqs:
            rid = self.ready[0]
            cached = L.inp[rid] + L.gen[rid] - 1
            need = -(-cached // self.bs)
            if need > self.blocks_free - self.watermark:
                break
            self.ready.popleft()
            self.blocks_free -= need
            self.join_decode(rid, cached)

    def n_prefilling(self) -> int:
        return 0

    def record(self, t: float, dur: float, batch: int, tokens: int, name: str) -> None:
        self.last_step_s = dur
        self.busy_s += dur
        self.steps += 1
        self.batch_sizes.append(batch)
        self.tokens_done += tokens
        self.kv_block_s += (self.blocks_total - self.blocks_free) * dur
        if self.sink is not None:
            self.sink(_event(name, t, dur, self, batch, tokens))


def _event(name: str, t: float, dur: float, e: Engine, batch: int, tokens: int) -> dict[str, Any]:
    """A Chrome trace-format complete event (chrome://tracing, Perfetto): one engine step."""
    return {
        "name": name,
        "ph": "X",
        "ts": t * 1e6,
        "dur": dur * 1e6,
        "pid": e.pool,
        "tid": e.index,
        "args": {"batch": batch, "tokens": tokens, "decode": e.n_dec},
    }

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
* Speculative decoding (a step-time model with ``spec``): each decode step emits ``accepted``
  tokens per sequence on average, as a deterministic schedule shared by the decode set: after
  ``k`` steps ``E(k) = floor(k * accepted)`` tokens, so step ``k`` emits ``E(k+1) - E(k)`` (the
  integer part of ``accepted`` or one more) for every sequence. Everything above holds with
  ``E(k)`` in place of ``k``: cached tokens ``c0 + E(k) - E(k0)``, block residues
  ``(c0 - E(k0)) mod block_size`` (a step needs a block for each of its positions that starts
  one), and a sequence finishes at the first step whose emissions cover its remaining tokens
  (the surplus of its last step is dropped, as an engine stops at the request's maximum).
  Decode steps run one at a time (no multi-step runs).
"""

from __future__ import annotations

import heapq
import math
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any

import numpy as np

from . import steptime
from .steptime import DecodeRun, ListRun, StepTimeModel
from .stream import StreamStats

Sink = Callable[[dict[str, Any]], None]
MIN_RUN = 2  # decode runs shorter than this are single steps
RUN_START = 32  # longest first list-summed run; doubles while runs end uncut, back after a cut


Values = Sequence[float] | Sequence[int] | np.ndarray


def _typed(code: str, values: Values) -> array:
    """``values`` as an ``array.array``; numpy arrays are copied as raw bytes, not element by
    element."""
    if isinstance(values, np.ndarray):
        out = array(code)
        out.frombytes(np.ascontiguousarray(values, dtype="f8" if code == "d" else "i8").tobytes())
        return out
    return array(code, values)


class Ledger:
    """Per-request state shared by all engines, indexed by request id (a slot).

    Compact typed arrays (``array.array``: 8 bytes a field, no Python object per value), so
    10^7 requests take about 1 GiB instead of the ~3 GiB that lists of boxed numbers need;
    indexing still returns plain Python numbers, so the engines' arithmetic is unchanged.

    A streaming ledger (:meth:`streaming`) holds only requests in flight: :meth:`admit` gives
    each arrival a free slot, and a finished request's times go to a :class:`.stream.
    StreamStats` before its slot is reused (``seq`` keeps each slot's arrival order; epochs
    are never reset, so stale heap entries of a reused slot stay stale)."""

    def __init__(
        self, arrival: Values, inp: Values, out: Values, *, stats: StreamStats | None = None
    ) -> None:
        n = len(arrival)
        self.arrival = _typed("d", arrival)
        self.inp = _typed("q", inp)
        self.out = _typed("q", out)
        nan = array("d", [math.nan])
        self.first_token = nan * n
        self.finish = nan * n
        self.scheduled = nan * n  # first time any of its prompt was processed
        zeros = array("q", [0])
        self.gen = zeros * n  # tokens generated so far (at the last time it left a decode set)
        self.join_k = zeros * n  # decode step at which it joined the decode set
        self.join_c = zeros * n  # cached tokens when it joined
        small = array("i", [0])  # 4-byte counters: preemptions, engine index, epoch
        self.preemptions = small * n
        self.engine = array("i", [-1]) * n
        self.epoch = small * n  # invalidates stale heap entries after a preemption
        self.seq: Sequence[int] | array = range(n)  # arrival order of each slot
        self.done = 0
        self.stats = stats
        self.free: list[int] = []

    @classmethod
    def streaming(cls, stats: StreamStats) -> Ledger:
        led = cls([], [], [], stats=stats)
        led.seq = array("q")
        return led

    def admit(self, seq: int, arrival: float, inp: int, out: int) -> int:
        """A slot for arriving request number ``seq`` (streaming ledgers)."""
        if self.free:
            r = self.free.pop()
            self.arrival[r], self.inp[r], self.out[r] = arrival, inp, out
            self.first_token[r] = self.scheduled[r] = self.finish[r] = math.nan
            self.gen[r] = self.preemptions[r] = 0
            self.engine[r] = -1
            self.seq[r] = seq  # type: ignore[index]
            return r
        r = len(self.arrival)
        self.arrival.append(arrival)
        self.inp.append(inp)
        self.out.append(out)
        for fa in (self.first_token, self.scheduled, self.finish):
            fa.append(math.nan)
        for ia in (self.gen, self.join_k, self.join_c, self.preemptions, self.epoch):
            ia.append(0)
        self.engine.append(-1)
        self.seq.append(seq)  # type: ignore[union-attr]
        return r

    def retire(self, r: int) -> None:
        """Request ``r`` is finished: record it and free its slot (streaming ledgers)."""
        assert self.stats is not None
        self.stats.add(
            self.seq[r],
            self.arrival[r],
            self.first_token[r],
            self.finish[r],
            self.scheduled[r],
            self.inp[r],
            self.out[r],
        )
        self.free.append(r)


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
        spec = stm.spec
        self.accept = 0.0 if spec is None else spec.accepted
        """mean tokens a decode step emits per sequence (0: exactly one, no speculation)"""
        self.verify = stm.verify_tokens  # tokens a decode sequence runs per step
        self.watermark = max(1, kv_blocks // 100)  # vLLM admits only above a 1% watermark
        self.waiting: deque[int] = deque()  # requests that need (re)prefill
        self.ready: deque[int] = deque()  # requests whose KV arrived (disaggregated decode)
        self.handoff: Callable[[int, float], None] | None = None  # set for prefill pools
        self.touch: Callable[[Engine], None] | None = None  # an indexed router's refresh
        self.busy = False
        self.run_steps = 0  # steps in the decode run now in flight (0: a single step)
        self.run_t0 = 0.0
        self.run: DecodeRun | ListRun = ListRun([0.0])  # the run's step times, from run_t0
        self.run_cum: list[int] = []  # blocks needed by the first j steps of one period
        self.run_cap = RUN_START
        # runs of at least this many steps are summed in closed form (a scanning router sets
        # it out of reach: it reads every replica's run at every pick, and a list's bisection
        # answers faster than the closed form's quadratic)
        self.run_closed = steptime.RUN_CLOSED
        self.version = 0  # bumps when a run is cut: its old completion event is stale
        # decode set
        self.k = 0
        self.n_dec = 0
        self.ctx_sum = 0
        self.residue = [0] * block_size
        # Finish steps (a heap of distinct steps) and, per step, [live count, [(rid, epoch)]]:
        # sequences finishing at the same step are one heap entry.
        self.fin: list[int] = []
        self.fin_at: dict[int, list[Any]] = {}
        self.victims: list[tuple[int, int, int]] = []  # (-seq, rid, epoch): newest first
        self.joined: list[tuple[int, int, int]] = []  # joins not yet pushed into ``victims``
        # load seen by routers
        self.load_tokens = 0
        self.n_assigned = 0
        # statistics
        self.busy_s = 0.0
        self.kv_block_s = 0.0
        self.steps = 0
        self.batch_hist: dict[int, int] = {}  # batch size -> steps (streamed, not a list)
        self.tokens_done = 0
        self.preempted = 0

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
    def emitted(self, k: int) -> int:
        """Tokens each decode sequence has emitted after ``k`` decode steps, counted from the
        engine's start (``E(k)``; ``k`` without speculation)."""
        return k if not self.accept else math.floor(k * self.accept + 1e-9)

    def _finish(self, k: int, remaining: int) -> int:
        """The decode step at whose end a sequence that has ``remaining`` tokens to emit at
        step ``k`` finishes: the first ``f > k`` with ``E(f) - E(k) >= remaining``."""
        if not self.accept:
            return k + remaining
        target = self.emitted(k) + remaining
        f = max(k + 1, math.ceil(target / self.accept) - 1)
        while self.emitted(f) < target:
            f += 1
        while f - 1 > k and self.emitted(f - 1) >= target:
            f -= 1
        return f

    def dec_tokens(self) -> int:
        """Tokens the next decode step emits over the decode set."""
        if not self.accept:
            return self.n_dec
        return self.n_dec * (self.emitted(self.k + 1) - self.emitted(self.k))

    def join_decode(self, rid: int, cached: int) -> None:
        L = self.L
        k = self.k
        L.join_k[rid] = k
        L.join_c[rid] = cached
        self.residue[(cached - self.emitted(k)) % self.bs] += 1
        self.n_dec += 1
        self.ctx_sum += cached
        ep = L.epoch[rid]
        f = self._finish(k, L.out[rid] - L.gen[rid])
        at = self.fin_at.get(f)
        if at is None:
            self.fin_at[f] = [1, [(rid, ep)]]
            heapq.heappush(self.fin, f)
        else:
            at[0] += 1
            at[1].append((rid, ep))
        self.joined.append((-L.seq[rid], rid, ep))
        if len(self.joined) > 2 * self.n_dec + 1024:
            self._prune_victims()

    def _prune_victims(self) -> None:
        """Drop the entries of sequences that left the decode set (finished or preempted):
        without it the victims keep one entry per request ever decoded (lazy deletion). Live
        entries keep their order, so the simulation is unchanged; amortised O(1)."""
        epoch = self.L.epoch
        self.joined = [v for v in self.joined if epoch[v[1]] == v[2]]
        self.victims = [v for v in self.victims if epoch[v[1]] == v[2]]
        heapq.heapify(self.victims)

    def _leave_decode(self, rid: int) -> int:
        """Remove ``rid`` from the decode set; returns its cached tokens (blocks freed)."""
        L = self.L
        if self.accept:
            e0 = self.emitted(L.join_k[rid])
            cached = L.join_c[rid] + self.emitted(self.k) - e0
            self.residue[(L.join_c[rid] - e0) % self.bs] -= 1
        else:
            cached = L.join_c[rid] + self.k - L.join_k[rid]
            self.residue[(L.join_c[rid] - L.join_k[rid]) % self.bs] -= 1
        self.n_dec -= 1
        self.ctx_sum -= cached
        self.blocks_free += -(-cached // self.bs)
        L.epoch[rid] += 1
        return cached

    def reserve_decode_blocks(self) -> None:
        """Blocks for this decode step's new tokens; preempt the newest sequences if short."""
        need = self._step_blocks()
        while need > self.blocks_free and self.n_dec:
            self._preempt_newest()
            need = self._step_blocks()
        self.blocks_free -= need

    def _step_blocks(self) -> int:
        """Blocks the next decode step needs: one per sequence and written position that
        starts a block (the residues at ``-(E(k) + i) mod block_size``)."""
        if not self.accept:
            return self.residue[-self.k % self.bs]
        e0 = self.emitted(self.k)
        res, bs = self.residue, self.bs
        return sum(res[-(e0 + i) % bs] for i in range(self.emitted(self.k + 1) - e0))

    def _preempt_newest(self) -> None:
        L, victims = self.L, self.victims
        for v in self.joined:  # joins are pushed only when a victim is needed
            heapq.heappush(victims, v)
        self.joined = []
        if len(victims) > 2 * self.n_dec + 1024:
            self._prune_victims()
            victims = self.victims
        while True:
            _, rid, ep = heapq.heappop(victims)
            if L.epoch[rid] == ep:
                break
        if self.accept:
            f = self._finish(L.join_k[rid], L.out[rid] - L.gen[rid])
            L.gen[rid] += self.emitted(self.k) - self.emitted(L.join_k[rid])
        else:
            L.gen[rid] += self.k - L.join_k[rid]
            f = self.k + L.out[rid] - L.gen[rid]
        self.fin_at[f][0] -= 1  # its finish entry is stale
        self._leave_decode(rid)
        L.preemptions[rid] += 1
        self.preempted += 1
        self.load_tokens += L.inp[rid] + L.gen[rid]  # the recomputation is new work
        self.waiting.appendleft(rid)

    def end_decode_step(self, t: float) -> None:
        """Account one completed decode step: contexts grow, finished sequences leave."""
        emit = self.dec_tokens()
        self.k += 1
        self.ctx_sum += emit
        self.load_tokens -= emit
        fin, L, k = self.fin, self.L, self.k
        while fin and fin[0] <= k:
            for rid, ep in self.fin_at.pop(heapq.heappop(fin))[1]:
                if L.epoch[rid] != ep:
                    continue
                if self.accept:  # the last step's surplus was never outstanding work
                    done = self.emitted(k) - self.emitted(L.join_k[rid])
                    self.load_tokens += done - (L.out[rid] - L.gen[rid])
                L.gen[rid] = L.out[rid]
                self._leave_decode(rid)
                self.complete(rid, t)

    def decode_run(self, t: float) -> float | None:
        """Several pure-decode steps as one event (the caller checked that no request
        waits). The run stops before the next finish and before a step that would lack KV
        blocks; a request routed here mid-run cuts it after the step in flight
        (:meth:`truncate_run`), and routers read the state at any instant from
        :meth:`load_at`, so results equal step-by-step simulation exactly. Returns the run's
        time, or None when fewer than ``MIN_RUN`` steps qualify (then one step runs)."""
        if self.accept:  # speculative steps emit unevenly: one step at a time
            return None
        fin, fin_at = self.fin, self.fin_at
        while fin and not fin_at[fin[0]][0]:  # every sequence due then was preempted
            del fin_at[heapq.heappop(fin)]
        m = fin[0] - self.k if fin else 0
        if m < MIN_RUN:
            return None
        # Blocks: step k+j needs residue[-(k+j) mod bs]; the pattern repeats every bs steps.
        res, s = self.residue, -self.k % self.bs
        cum = [0, *accumulate(res[s::-1] + res[:s:-1])]  # residues at -(k + j) mod bs
        bs = self.bs
        if cum[-1]:
            q, rem = divmod(self.blocks_free, cum[-1])
            m = min(m, q * bs + bisect_right(cum, rem, hi=bs) - 1)
        if m < MIN_RUN:
            return None
        # Long runs are summed in closed form (O(grid segments), not O(m)) and go to the next
        # finish: a cut one wastes nothing. Short ones sum step by step, and the times a cut
        # would throw away are not computed: at most ``run_cap`` steps (one more event when
        # the run ends uncut; the next run doubles it).
        if m > self.run_cap and (m < self.run_closed or steptime.EXACT_RUNS):
            m = self.run_cap
            self.run_cap *= 2
        run = self.stm.decode_run(self.n_dec, self.ctx_sum, m, self.run_closed)
        self.run_t0, self.run, self.run_cum, self.run_steps = t, run, cum, m
        self._run_account(m, +1, run.total)
        return run.total

    def _run_blocks(self, m: int) -> int:
        q, r = divmod(m, self.bs)
        return q * self.run_cum[-1] + self.run_cum[r]

    def _run_account(self, m: int, sign: int, dur: float) -> None:
        """Add (sign +1) or remove (-1) the statistics and blocks of a run's first m steps
        (``dur``: their time)."""
        B = self.n_dec
        self.blocks_free -= sign * self._run_blocks(m)
        self.busy_s += sign * dur
        self.steps += sign * m
        self.tokens_done += sign * B * m
        hist = self.batch_hist
        hist[B] = hist.get(B, 0) + sign * m
        # KV occupancy: blocks held at the end of the run, over the run (a slight overestimate)
        self.kv_block_s += sign * (self.blocks_total - self.blocks_free) * dur

    def load_at(self, t: float) -> int:
        """Outstanding tokens at ``t``, counting the steps of a run completed by then (inlined
        in :class:`.router.LeastTokens`: keep the two equal)."""
        if not self.run_steps:
            return self.load_tokens
        return self.load_tokens - self.n_dec * self.run.count(t - self.run_t0)

    def truncate_run(self, t: float) -> float | None:
        """New work arrived at ``t`` during a run: keep the steps completed by ``t`` and the
        one in flight. Returns the new end time, or None when the run ends with that step."""
        m = self.run_steps
        keep = self.run.count(t - self.run_t0) + 1
        if keep >= m:
            return None
        self.run_cap = RUN_START
        dur = self.run.end(keep)
        self._run_account(m, -1, self.run.end(m))
        self._run_account(keep, +1, dur)
        self.run_steps = keep
        return self.run_t0 + dur

    def end_decode_run(self, t: float) -> None:
        m, self.run_steps = self.run_steps, 0
        if self.sink is not None:
            B = self.n_dec
            self.sink(_event(f"decode x{m}", self.run_t0, t - self.run_t0, self, B, B * m))
        self.k += m - 1
        self.ctx_sum += self.n_dec * (m - 1)
        self.load_tokens -= self.n_dec * (m - 1)
        self.end_decode_step(t)

    def complete(self, rid: int, t: float) -> None:
        L = self.L
        L.finish[rid] = t
        L.done += 1
        self.n_assigned -= 1
        if L.stats is not None:
            L.retire(rid)

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
            idle = not self.n_dec and not self.n_prefilling()
            if need > self.blocks_free - (0 if idle else self.watermark):
                break
            self.ready.popleft()
            self.blocks_free -= need
            self.join_decode(rid, cached)

    def n_prefilling(self) -> int:
        return 0

    def record(self, t: float, dur: float, batch: int, tokens: int, name: str) -> None:
        self.busy_s += dur
        self.steps += 1
        hist = self.batch_hist
        hist[batch] = hist.get(batch, 0) + 1
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

"""A compiled event core (numba) for the common serving run: one pool of chunked-prefill
replicas (:class:`.schedulers.chunked.ChunkedEngine`) behind a round-robin, least-tokens or
join-shortest-queue router, without a trace sink.

It simulates the same engines as the Python loop of :mod:`.cluster`, step by step, over
compact numpy arrays (per request: one row of integers and one of floats; per replica: one
row each), so one engine step costs tens of nanoseconds instead of microseconds:

* Replicas interact only through the router, at arrival instants. Before each arrival every
  replica is advanced through its steps that end at or before it (step completions first at
  ties, as in :mod:`.cluster`), so the router reads each replica's exact state.
* A replica's decode set is a linked list of its requests plus the aggregates the Python
  engine keeps (sequence count, summed context, KV-block residues); a finish is found by a
  scan of the set when the step counter reaches the earliest finish step, and a preemption
  victim (the most recently arrived running sequence) by a scan as well.
* Decode steps are stepped one by one (no multi-step runs to cut), so a step ends at its
  start plus its duration, where the Python engine sums a run's steps from the run's start:
  times agree up to float rounding (relative ~1e-12); every decision (admission, preemption,
  routing) is the same unless an arrival falls within that rounding of a step's end. The
  KV-occupancy integral is exact per step (the Python run books a run's end occupancy over
  the whole run, a slight overestimate), so ``kv_utilisation`` is slightly lower.
* Step times are read from the step-time tables of :mod:`.steptime` as arrays, with the same
  operations in the same order as :meth:`.steptime.StepTimeModel.decode_step`,
  ``attn_prefill`` and ``with_host``; ``tests/test_serving_fastcore.py`` checks the tables
  and whole runs against the Python engines.

The Python loop stays the reference and runs everything else (other schedulers,
disaggregated pools, trace sinks), or everything when numba is missing or :data:`ENABLED` is
False.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .engine import Engine, Ledger
from .steptime import StepTimeModel

# No reference counting (_nrt=False): the core never allocates, and counting each array
# of the state tuple at every call (atomic operations) was most of a step's cost.
_OPTS: dict[str, Any] = {"cache": True, "nogil": True, "_nrt": False}
try:  # pragma: no cover - exercised where numba is installed (a dependency)
    import numba

    _njit: Callable[..., Any] | None = numba.njit(**_OPTS)
except ImportError:  # pragma: no cover
    _njit = None

ENABLED = True
"""False: every run takes the Python loop (the reference)"""

I8 = NDArray[np.int64]
F8 = NDArray[np.float64]

# per-replica integer columns
(K, NDEC, CTX, BFREE, BTOTAL, LOAD, NASSIGN, BUSY, NCH, WHEAD, WTAIL, PHEAD, PTAIL, PCOUNT,
 DHEAD, DTAIL, NEXTFIN, STEPS, TOKENS, PREEMPTED) = range(20)  # fmt: skip
NE = 20
TEND, BUSYS, KVS = range(3)  # per-replica float columns
NEF = 3
# per-request integer columns
(INP, OUT, GEN, JK, JC, SEQ, PRE, ENG, WNEXT, PNEXT, PDONE, PPROMPT, TAKE, DNEXT, DPREV,
 FIN) = range(16)  # fmt: skip
NR = 16
ARR, FIRST, FINISH, SCHED = range(4)  # per-request float columns
NRF = 4
# configuration and counters
C_BS, C_MAXSEQS, C_MAXTOK, C_WM, C_ROUTER, C_STREAM, C_NENG = range(7)
G_FREE, G_DONE, G_RR, G_NOUT, G_NEXT = range(5)
ROUTER_CODES = {"round-robin": 0, "least-tokens": 1, "jsq": 2}
NOFIN = 1 << 62


def _jit(f: Callable[..., Any]) -> Callable[..., Any]:
    return f if _njit is None else _njit(f)


def _inline(f: Callable[..., Any]) -> Callable[..., Any]:
    """Small functions of every step: inlined into their callers (numba IR inlining), so a
    step does not copy the state tuple into each call."""
    if _njit is None:
        return f
    return numba.njit(**_OPTS, inline="always")(f)


# ---- step times (the tables of StepTimeModel, same operations in the same order) ----------


@_inline
def _bisect(a: F8, x: float) -> int:
    lo, hi = 0, a.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if x < a[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@_inline
def _decode_step(tb: Any, b: int, ctx: int) -> float:
    """:meth:`.steptime.StepTimeModel.decode_step`."""
    dense, head, floor, xs, ys, yinv, tab = tb[0], tb[1], tb[2], tb[3], tb[4], tb[5], tb[6]
    base = dense[b] + head[b]
    i = min(max(_bisect(xs, b) - 1, 0), xs.shape[0] - 2)
    tx = (b - xs[i]) / (xs[i + 1] - xs[i])
    c = ctx / b
    j = min(max(_bisect(ys, c) - 1, 0), ys.shape[0] - 2)
    rj = tab[i, j] + (tab[i + 1, j] - tab[i, j]) * tx
    rj1 = tab[i, j + 1] + (tab[i + 1, j + 1] - tab[i, j + 1]) * tx
    t = base + rj + (rj1 - rj) * (c - ys[j]) * yinv[j]
    f = floor[b]
    return f if f > t else t


@_jit
def _attn_prefill(tb: Any, x: float, y: float) -> float:
    """:class:`.steptime.Grid2` ``__call__`` on the prefill-attention grid."""
    xs, ys, tab = tb[7], tb[8], tb[9]
    i = min(max(_bisect(xs, x) - 1, 0), xs.shape[0] - 2)
    j = min(max(_bisect(ys, y) - 1, 0), ys.shape[0] - 2)
    tx = (x - xs[i]) / (xs[i + 1] - xs[i])
    ty = (y - ys[j]) / (ys[j + 1] - ys[j])
    a = tab[i, j] + (tab[i, j + 1] - tab[i, j]) * ty
    b = tab[i + 1, j] + (tab[i + 1, j + 1] - tab[i + 1, j]) * ty
    return a + (b - a) * tx


# ---- the decode set -------------------------------------------------------------------------


@_jit
def _join(S: Any, e: int, r: int, cached: int) -> None:
    E, R, RES, bs = S[0], S[3], S[2], S[6][C_BS]
    k = E[e, K]
    R[r, JK] = k
    R[r, JC] = cached
    RES[e, (cached - k) % bs] += 1
    E[e, NDEC] += 1
    E[e, CTX] += cached
    f = k + R[r, OUT] - R[r, GEN]
    R[r, FIN] = f
    if f < E[e, NEXTFIN]:
        E[e, NEXTFIN] = f
    tail = E[e, DTAIL]  # append: members stay in join order
    R[r, DPREV] = tail
    R[r, DNEXT] = -1
    if tail == -1:
        E[e, DHEAD] = r
    else:
        R[tail, DNEXT] = r
    E[e, DTAIL] = r


@_jit
def _leave(S: Any, e: int, r: int) -> None:
    E, R, RES, bs = S[0], S[3], S[2], S[6][C_BS]
    cached = R[r, JC] + E[e, K] - R[r, JK]
    RES[e, (R[r, JC] - R[r, JK]) % bs] -= 1
    E[e, NDEC] -= 1
    E[e, CTX] -= cached
    E[e, BFREE] += -(-cached // bs)
    p, n = R[r, DPREV], R[r, DNEXT]
    if p == -1:
        E[e, DHEAD] = n
    else:
        R[p, DNEXT] = n
    if n == -1:
        E[e, DTAIL] = p
    else:
        R[n, DPREV] = p
    if E[e, NDEC] == 0:
        E[e, NEXTFIN] = NOFIN


@_jit
def _preempt_newest(S: Any, e: int) -> None:
    """Evict the running sequence that arrived last; it re-prefills from the queue front."""
    E, R = S[0], S[3]
    r, v, best = E[e, DHEAD], -1, -1
    while r != -1:
        if R[r, SEQ] > best:
            v, best = r, R[r, SEQ]
        r = R[r, DNEXT]
    R[v, GEN] += E[e, K] - R[v, JK]
    _leave(S, e, v)
    R[v, PRE] += 1
    E[e, PREEMPTED] += 1
    E[e, LOAD] += R[v, INP] + R[v, GEN]
    R[v, WNEXT] = E[e, WHEAD]  # back to the front of the queue
    E[e, WHEAD] = v
    if E[e, WTAIL] == -1:
        E[e, WTAIL] = v


@_inline
def _reserve(S: Any, e: int) -> None:
    E, RES, bs = S[0], S[2], S[6][C_BS]
    need = RES[e, (-E[e, K]) % bs]
    while need > E[e, BFREE] and E[e, NDEC]:
        _preempt_newest(S, e)
        need = RES[e, (-E[e, K]) % bs]
    E[e, BFREE] -= need


@_jit
def _complete(S: Any, e: int, r: int, t: float) -> None:
    E, RF, R, cfg, G = S[0], S[4], S[3], S[6], S[7]
    RF[r, FINISH] = t
    G[G_DONE] += 1
    E[e, NASSIGN] -= 1
    if cfg[C_STREAM]:
        OUTI, OUTF, FREE = S[9], S[10], S[8]
        o = G[G_NOUT]
        G[G_NOUT] = o + 1
        OUTI[o, 0], OUTI[o, 1], OUTI[o, 2] = R[r, SEQ], R[r, INP], R[r, OUT]
        OUTF[o, 0], OUTF[o, 1], OUTF[o, 2], OUTF[o, 3] = RF[r, ARR], RF[r, FIRST], t, RF[r, SCHED]
        FREE[G[G_FREE]] = r
        G[G_FREE] += 1


@_jit
def _end_decode_step(S: Any, e: int, t: float) -> None:
    """One step done: contexts grow; the sequences due at this step finish (join order)."""
    E, R = S[0], S[3]
    E[e, K] += 1
    k = E[e, K]
    E[e, CTX] += E[e, NDEC]
    E[e, LOAD] -= E[e, NDEC]
    if E[e, NEXTFIN] > k:
        return
    r, low = E[e, DHEAD], NOFIN
    while r != -1:
        nxt = R[r, DNEXT]
        if R[r, FIN] <= k:
            R[r, GEN] = R[r, OUT]
            _leave(S, e, r)
            _complete(S, e, r, t)
        elif R[r, FIN] < low:
            low = R[r, FIN]
        r = nxt
    E[e, NEXTFIN] = low


# ---- scheduling (ChunkedEngine) -------------------------------------------------------------


@_inline
def _blocked(S: Any, e: int) -> bool:
    """:meth:`.schedulers.chunked.ChunkedEngine.admission_blocked`."""
    E, R, cfg = S[0], S[3], S[6]
    r = E[e, WHEAD]
    if r == -1:
        return True
    if E[e, NDEC] >= cfg[C_MAXSEQS] or E[e, NDEC] >= cfg[C_MAXTOK]:
        return True
    p = R[r, INP] + R[r, GEN]
    return -(-p // cfg[C_BS]) > E[e, BFREE] - cfg[C_WM]


@_jit
def _admit(S: Any, e: int, t: float, budget: int) -> None:
    E, R, RF, cfg = S[0], S[3], S[4], S[6]
    bs = cfg[C_BS]
    while budget > 0 and E[e, WHEAD] != -1 and E[e, NDEC] + E[e, PCOUNT] < cfg[C_MAXSEQS]:
        r = E[e, WHEAD]
        p = R[r, INP] + R[r, GEN]
        need = -(-p // bs)
        idle = E[e, PCOUNT] == 0 and E[e, NDEC] == 0
        if need > E[e, BFREE] - (0 if idle else cfg[C_WM]):
            break
        E[e, WHEAD] = R[r, WNEXT]
        if E[e, WHEAD] == -1:
            E[e, WTAIL] = -1
        E[e, BFREE] -= need
        R[r, PDONE], R[r, PPROMPT], R[r, PNEXT] = 0, p, -1
        if E[e, PTAIL] == -1:
            E[e, PHEAD] = r
        else:
            R[E[e, PTAIL], PNEXT] = r
        E[e, PTAIL] = r
        E[e, PCOUNT] += 1
        take = min(p, budget)
        R[r, TAKE] = take
        E[e, NCH] += 1
        budget -= take
        if RF[r, SCHED] != RF[r, SCHED]:
            RF[r, SCHED] = t


@_inline
def _record(S: Any, e: int, dur: float, batch: int, tokens: int) -> None:
    E, EF = S[0], S[1]
    EF[e, BUSYS] += dur
    E[e, STEPS] += 1
    S[5][batch] += 1
    E[e, TOKENS] += tokens
    EF[e, KVS] += (E[e, BTOTAL] - E[e, BFREE]) * dur


@_jit
def _mixed(S: Any, e: int) -> float:
    """Duration of a step of the decode set plus the first ``NCH`` prompt chunks."""
    E, R, tb = S[0], S[3], S[11]
    nd = E[e, NDEC]
    pre, sampled, attn = 0, nd, 0.0
    if nd > 0:
        attn = _decode_step(tb, nd, E[e, CTX]) - (tb[0][nd] + tb[1][nd])
    r = E[e, PHEAD]
    for _ in range(E[e, NCH]):
        take = R[r, TAKE]
        pre += take
        if R[r, PDONE] + take == R[r, PPROMPT]:
            sampled += 1
        attn += _attn_prefill(tb, take, R[r, PDONE])
        r = R[r, PNEXT]
    tokens = nd + pre
    dur = tb[0][tokens] + tb[1][sampled] + attn
    f = tb[2][nd + E[e, NCH]]
    if f > dur:
        dur = f
    E[e, LOAD] -= pre
    _record(S, e, dur, nd + E[e, NCH], tokens)
    return dur


@_jit
def _start_step(S: Any, e: int, t: float) -> float:
    """:meth:`.schedulers.chunked.ChunkedEngine.start_step`, one step; -1.0: idle."""
    E, R, cfg = S[0], S[3], S[6]
    E[e, NCH] = 0
    reserved = False
    if E[e, NDEC] and E[e, PCOUNT] == 0 and _blocked(S, e):
        _reserve(S, e)
        reserved = True
        nd = E[e, NDEC]
        if nd and E[e, WHEAD] == -1:
            dur = _decode_step(S[11], nd, E[e, CTX])
            _record(S, e, dur, nd, nd)
            return dur
    if E[e, NDEC] and not reserved:
        _reserve(S, e)
    budget = cfg[C_MAXTOK] - E[e, NDEC]
    r = E[e, PHEAD]
    while r != -1 and budget > 0:
        take = min(R[r, PPROMPT] - R[r, PDONE], budget)
        R[r, TAKE] = take
        E[e, NCH] += 1
        budget -= take
        r = R[r, PNEXT]
    if r == -1:  # every prompt in progress got a chunk: new ones may start
        _admit(S, e, t, budget)
    if E[e, NCH] == 0 and E[e, NDEC] == 0:
        return -1.0
    return _mixed(S, e)


@_jit
def _prefilled(S: Any, e: int, r: int, t: float) -> None:
    E, R, RF, bs = S[0], S[3], S[4], S[6][C_BS]
    prompt = R[r, PPROMPT]
    R[r, GEN] += 1
    E[e, LOAD] -= 1
    if RF[r, FIRST] != RF[r, FIRST]:
        RF[r, FIRST] = t
    if R[r, GEN] >= R[r, OUT]:
        E[e, BFREE] += -(-prompt // bs)
        _complete(S, e, r, t)
    else:
        _join(S, e, r, prompt)


@_jit
def _finish_step(S: Any, e: int, t: float) -> None:
    E, R = S[0], S[3]
    _end_decode_step(S, e, t)
    r = E[e, PHEAD]
    for _ in range(E[e, NCH]):
        nxt = R[r, PNEXT]
        R[r, PDONE] += R[r, TAKE]
        if R[r, PDONE] == R[r, PPROMPT]:  # completions are a prefix of the queue
            E[e, PHEAD] = nxt
            if nxt == -1:
                E[e, PTAIL] = -1
            E[e, PCOUNT] -= 1
            _prefilled(S, e, r, t)
        r = nxt
    E[e, NCH] = 0


@_inline
def _kick(S: Any, e: int, t: float) -> None:
    E, EF = S[0], S[1]
    dur = _start_step(S, e, t)
    if dur < 0.0:
        E[e, BUSY] = 0
    else:
        E[e, BUSY] = 1
        EF[e, TEND] = t + dur


@_jit
def _advance(S: Any, e: int, ta: float) -> None:
    """Complete ``e``'s steps that end at or before ``ta`` (starting each next one).

    The common case inline: a step without prompt chunks ends with no sequence due, nothing
    waits and the next step's KV blocks are free, so the next step is a pure decode step
    (:meth:`_start_step`'s first branch, without its calls)."""
    E, EF, RES, bs, tb = S[0], S[1], S[2], S[6][C_BS], S[11]
    while E[e, BUSY] and EF[e, TEND] <= ta:
        t = EF[e, TEND]
        nd, k1 = E[e, NDEC], E[e, K] + 1
        if nd and not E[e, NCH] and E[e, WHEAD] == -1 and E[e, NEXTFIN] > k1:
            need = RES[e, (-k1) % bs]
            if not E[e, PCOUNT] and need <= E[e, BFREE]:
                E[e, K] = k1
                E[e, CTX] += nd
                E[e, LOAD] -= nd
                E[e, BFREE] -= need
                dur = _decode_step(tb, nd, E[e, CTX])
                _record(S, e, dur, nd, nd)
                EF[e, TEND] = t + dur
                continue
        _finish_step(S, e, t)
        _kick(S, e, t)


@_jit
def _pick(S: Any) -> int:
    E, cfg, G = S[0], S[6], S[7]
    n, kind = cfg[C_NENG], cfg[C_ROUTER]
    if kind == 0:
        e = G[G_RR] % n
        G[G_RR] += 1
        return e
    col = LOAD if kind == 1 else NASSIGN
    best, low = 0, E[0, col]
    for e in range(1, n):
        if E[e, col] < low:  # strict: ties go to the lowest index
            best, low = e, E[e, col]
    return best


@_jit
def _admit_request(S: Any, ta: float, inp: int, out: int, seq: int) -> int:
    R, RF, G, FREE = S[3], S[4], S[7], S[8]
    if G[G_FREE] > 0:
        G[G_FREE] -= 1
        r = FREE[G[G_FREE]]
    else:
        r = G[G_NEXT]
        G[G_NEXT] += 1
    R[r, :] = -1
    R[r, INP], R[r, OUT], R[r, GEN], R[r, SEQ], R[r, PRE] = inp, out, 0, seq, 0
    RF[r, ARR] = ta
    RF[r, FIRST] = RF[r, FINISH] = RF[r, SCHED] = np.nan
    return r


@_jit
def _run_chunk(S: Any, arr: F8, inp: I8, out: I8, seq0: int) -> None:
    """Route and simulate arrivals ``arr`` (sorted); ``seq0``: the first one's number."""
    E, R, n = S[0], S[3], S[6][C_NENG]
    for i in range(arr.shape[0]):
        ta = arr[i]
        for e in range(n):
            _advance(S, e, ta)
        r = _admit_request(S, ta, inp[i], out[i], seq0 + i)
        e = _pick(S)
        R[r, ENG] = e
        tail = E[e, WTAIL]
        if tail == -1:
            E[e, WHEAD] = r
        else:
            R[tail, WNEXT] = r
        E[e, WTAIL] = r
        E[e, LOAD] += inp[i] + out[i]
        E[e, NASSIGN] += 1
        if not E[e, BUSY]:
            _kick(S, e, ta)


@_jit
def _drain(S: Any) -> None:
    for e in range(S[6][C_NENG]):
        _advance(S, e, np.inf)


# ---- Python side -----------------------------------------------------------------------------

_TABLES: weakref.WeakKeyDictionary[StepTimeModel, dict[int, tuple[Any, ...]]] = (
    weakref.WeakKeyDictionary()
)


def tables(stm: StepTimeModel, size: int) -> tuple[Any, ...]:
    """The step-time tables as arrays, indexed by token, sequence or batch count up to
    ``size`` (the floor array is -inf where no host floor applies); memoised."""
    memo = _TABLES.setdefault(stm, {})
    hit = next((v for s, v in memo.items() if s >= size), None)
    if hit is not None:
        return hit
    dense = np.array([0.0, *(stm.dense(t) for t in range(1, size + 1))])
    head = np.array([stm.head(n) for n in range(size + 1)])
    floor = np.array([stm.with_host(-math.inf, s) for s in range(size + 1)])
    g = stm.attn_decode_grid
    ys = np.asarray(g.ys)
    yinv = np.asarray([1.0 / (b - a) for a, b in zip(g.ys, g.ys[1:], strict=False)])
    p = stm.attn_prefill
    out = (
        dense,
        head,
        floor,
        np.asarray(g.xs),
        ys,
        yinv,
        np.asarray(g.table),
        np.asarray(p.xs),
        np.asarray(p.ys),
        np.asarray(p.table),
    )
    memo[size] = out
    return out


def eligible(engines: list[Engine], router: str, n_pools: int, sink: object) -> bool:
    from .schedulers.chunked import ChunkedEngine

    return (
        ENABLED
        and _njit is not None
        and n_pools == 1
        and sink is None
        and router in ROUTER_CODES
        and all(type(e) is ChunkedEngine for e in engines)
    )


class Core:
    """State of one compiled run over ``engines`` (one pool)."""

    def __init__(self, engines: list[Engine], router: str, stream: bool, cap: int) -> None:
        e0 = engines[0]
        self.engines = engines
        n = len(engines)
        # sequences in flight on one replica (each holds a KV block): batch sizes stay below
        bound = e0.max_seqs if e0.max_seqs <= 1 << 20 else e0.blocks_total
        size = max(e0.max_tokens, bound) + 2
        self.E = np.zeros((n, NE), dtype=np.int64)
        self.E[:, [WHEAD, WTAIL, PHEAD, PTAIL, DHEAD, DTAIL]] = -1
        self.E[:, NEXTFIN] = NOFIN
        self.E[:, BFREE] = self.E[:, BTOTAL] = e0.blocks_total
        self.EF = np.zeros((n, NEF))
        self.RES = np.zeros((n, e0.bs), dtype=np.int64)
        self.R = np.zeros((cap, NR), dtype=np.int64)
        self.RF = np.zeros((cap, NRF))
        self.hist = np.zeros(size + 1, dtype=np.int64)
        self.cfg = np.array(
            [e0.bs, e0.max_seqs, e0.max_tokens, e0.watermark, ROUTER_CODES[router],
             int(stream), n],
            dtype=np.int64,
        )  # fmt: skip
        self.G = np.zeros(5, dtype=np.int64)
        self.FREE = np.zeros(cap, dtype=np.int64)
        self.tb = tables(e0.stm, size)
        self.outi = np.zeros((0, 3), dtype=np.int64)
        self.outf = np.zeros((0, 4))

    def state(self) -> tuple[Any, ...]:
        return (self.E, self.EF, self.RES, self.R, self.RF, self.hist, self.cfg, self.G,
                self.FREE, self.outi, self.outf, self.tb)  # fmt: skip

    def reserve(self, arrivals: int) -> None:
        """Room for ``arrivals`` more requests (streaming: in-flight slots and the records
        of requests that may finish meanwhile)."""
        in_flight = int(self.G[G_NEXT] - self.G[G_FREE])
        need = in_flight + arrivals
        if need > self.R.shape[0]:
            cap = max(need, 2 * self.R.shape[0])
            grow = cap - self.R.shape[0]
            self.R = np.concatenate((self.R, np.zeros((grow, NR), dtype=np.int64)))
            self.RF = np.concatenate((self.RF, np.zeros((grow, NRF))))
            self.FREE = np.concatenate((self.FREE, np.zeros(grow, dtype=np.int64)))
        if self.cfg[C_STREAM] and self.outi.shape[0] < need:
            self.outi = np.zeros((need, 3), dtype=np.int64)
            self.outf = np.zeros((need, 4))
        self.G[G_NOUT] = 0

    def chunk(self, arr: F8, inp: I8, out: I8, seq0: int) -> None:
        self.reserve(len(arr))
        _run_chunk(
            self.state(),
            np.ascontiguousarray(arr, dtype=np.float64),
            np.ascontiguousarray(inp, dtype=np.int64),
            np.ascontiguousarray(out, dtype=np.int64),
            seq0,
        )

    def drain(self) -> None:
        self.reserve(0)
        _drain(self.state())

    def finished(self) -> tuple[I8, F8]:
        """Streaming: (seq, input, output) and (arrival, first token, finish, scheduled) of
        the requests finished by the last call."""
        n = int(self.G[G_NOUT])
        return self.outi[:n], self.outf[:n]

    def write_back(self) -> None:
        """Per-replica statistics into the engines (the batch histogram, pooled, into the
        first engine's)."""
        for i, e in enumerate(self.engines):
            e.busy_s = float(self.EF[i, BUSYS])
            e.kv_block_s = float(self.EF[i, KVS])
            e.steps = int(self.E[i, STEPS])
            e.tokens_done = int(self.E[i, TOKENS])
            e.preempted = int(self.E[i, PREEMPTED])
            e.batch_hist = {}
        nz = np.nonzero(self.hist)[0]
        self.engines[0].batch_hist = dict(zip(nz.tolist(), self.hist[nz].tolist(), strict=True))


Progress = Callable[[int, int], None]
CHUNK = 1 << 16


def run(
    engines: list[Engine],
    router: str,
    ledger: Ledger,
    progress: Progress | None = None,
) -> None:
    """:func:`.cluster.run` for an eligible pool; fills ``ledger``."""
    arr = np.frombuffer(ledger.arrival, dtype=np.float64)
    inp = np.frombuffer(ledger.inp, dtype=np.int64)
    out = np.frombuffer(ledger.out, dtype=np.int64)
    n = len(arr)
    core = Core(engines, router, stream=False, cap=max(n, 1))
    for lo in range(0, n, CHUNK):
        core.chunk(arr[lo : lo + CHUNK], inp[lo : lo + CHUNK], out[lo : lo + CHUNK], lo)
        if progress is not None:
            progress(int(core.G[G_DONE]), n)
    core.drain()
    R, RF = core.R[:n], core.RF[:n]
    ledger.first_token = _arr("d", RF[:, FIRST])
    ledger.finish = _arr("d", RF[:, FINISH])
    ledger.scheduled = _arr("d", RF[:, SCHED])
    ledger.gen = _arr("q", R[:, GEN])
    ledger.preemptions = _arr("i", R[:, PRE].astype(np.int32))
    ledger.engine = _arr("i", (R[:, ENG] + engines[0].index).astype(np.int32))
    ledger.done = int(core.G[G_DONE])
    core.write_back()
    if ledger.done != n:
        raise AssertionError(f"simulation ended with {n - ledger.done} unfinished requests")
    if progress is not None:
        progress(n, n)


def run_stream(
    engines: list[Engine],
    router: str,
    chunks: Iterable[tuple[F8, I8, I8]],
    ledger: Ledger,
    n: int,
    progress: Progress | None = None,
) -> None:
    """:func:`.cluster.run_stream` for an eligible pool: finished requests go to the
    ledger's :class:`.stream.StreamStats`."""
    stats = ledger.stats
    assert stats is not None
    core = Core(engines, router, stream=True, cap=CHUNK)
    seq = 0
    for arr, inp, out in chunks:
        core.chunk(arr, inp, out, seq)
        seq += len(arr)
        stats.extend(*core.finished())
        if progress is not None:
            progress(int(core.G[G_DONE]), n)
    core.drain()
    stats.extend(*core.finished())
    ledger.done = int(core.G[G_DONE])
    core.write_back()
    if ledger.done != seq:
        raise AssertionError(f"simulation ended with {seq - ledger.done} unfinished requests")
    if progress is not None:
        progress(seq, seq)


def _arr(code: str, values: np.ndarray) -> Any:
    from array import array

    a = array(code)
    a.frombytes(np.ascontiguousarray(values).tobytes())
    return a

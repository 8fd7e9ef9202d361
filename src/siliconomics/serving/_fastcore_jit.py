"""The compiled kernels of :mod:`.fastcore` (numba), imported on first use so that
importing siliconomics does not load numba and LLVM."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from .fastcore import (
    ARR,
    BFREE,
    BTOTAL,
    BUSY,
    BUSYS,
    C_BS,
    C_MAXSEQS,
    C_MAXTOK,
    C_NENG,
    C_ROUTER,
    C_STREAM,
    C_WM,
    CTX,
    DHEAD,
    DNEXT,
    DPREV,
    DTAIL,
    ENG,
    F8,
    FIN,
    FINISH,
    FIRST,
    G_DONE,
    G_FREE,
    G_NEXT,
    G_NOUT,
    G_RR,
    GEN,
    I8,
    INP,
    JC,
    JK,
    KVS,
    LOAD,
    NASSIGN,
    NCH,
    NDEC,
    NEXTFIN,
    NOFIN,
    OUT,
    PCOUNT,
    PDONE,
    PHEAD,
    PNEXT,
    PPROMPT,
    PRE,
    PREEMPTED,
    PTAIL,
    SCHED,
    SEQ,
    STEPS,
    TAKE,
    TEND,
    TOKENS,
    WHEAD,
    WNEXT,
    WTAIL,
    K,
)

# No reference counting (_nrt=False): the core never allocates, and counting each array
# of the state tuple at every call (atomic operations) was most of a step's cost.
_OPTS: dict[str, Any] = {"cache": True, "nogil": True, "_nrt": False}


def _jit(f: Callable[..., Any]) -> Callable[..., Any]:
    return numba.njit(**_OPTS)(f)


def _inline(f: Callable[..., Any]) -> Callable[..., Any]:
    """Small functions of every step: inlined into their callers (numba IR inlining), so a
    step does not copy the state tuple into each call."""
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
    floor, xs, ys, yinv, tab = tb[2], tb[3], tb[4], tb[5], tb[6]
    base = tb[10][b]  # dense + head of the graph-padded batch
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
        attn = _decode_step(tb, nd, E[e, CTX]) - tb[10][nd]
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
    nd = E[e, NDEC]
    if E[e, NCH] == 0:
        if nd == 0:
            return -1.0
        dur = _decode_step(S[11], nd, E[e, CTX])  # generation only: requests wait, blocked
        _record(S, e, dur, nd, nd)
        return dur
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

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

import importlib.util
import math
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .engine import Engine, Ledger
from .steptime import StepTimeModel

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


def available() -> bool:
    """numba is installed (a dependency; without it every run takes the Python loop)."""
    return importlib.util.find_spec("numba") is not None


def kernels() -> Any:
    """The compiled kernels (:mod:`._fastcore_jit`), imported (and numba loaded) on first
    use."""
    from . import _fastcore_jit

    return _fastcore_jit


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
    # generation-only steps run the graph-padded batch (StepTimeModel.padded) in the dense
    # ops and the LM head: base[b] = dense(pad(b)) + head(pad(b)), as in _decode_row
    pads = np.array([stm.padded(b) for b in range(size + 1)], dtype=np.int64)
    top = max(size, int(pads.max()))
    dense = stm.dense_table(top)
    head = np.array([stm.head(n) for n in range(top + 1)])
    base = dense[pads] + head[pads]
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
        base,
    )
    memo[size] = out
    return out


def eligible(engines: list[Engine], router: str, n_pools: int, sink: object) -> bool:
    from .schedulers.chunked import ChunkedEngine

    return (
        ENABLED
        and available()
        and n_pools == 1
        and sink is None
        and router in ROUTER_CODES
        and all(type(e) is ChunkedEngine and e.stm.dp == 1 and e.stm.spec is None for e in engines)
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
        kernels()._run_chunk(
            self.state(),
            np.ascontiguousarray(arr, dtype=np.float64),
            np.ascontiguousarray(inp, dtype=np.int64),
            np.ascontiguousarray(out, dtype=np.int64),
            seq0,
        )

    def drain(self) -> None:
        self.reserve(0)
        kernels()._drain(self.state())

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

"""Step time of one replica for any batch composition, tabulated from the core model.

A scheduler step processes ``Bd`` decode sequences holding ``C`` cached tokens in total, plus
prefill chunks ``(s_i new tokens after c_i cached)``. Its time is assembled from parts of
:func:`..inference.forward.forward_cost`, each tabulated once per replica configuration:

* ``dense(T)``: every op except attention and the LM head (QKV/O projections, MLP or MoE,
  norms, TP all-reduces, embeddings, step overhead, pipeline transfers) for ``T = Bd + sum
  s_i`` tokens in one step. These ops see only the token count, so ``forward_cost(1, T, 0)``
  is exact; tabulated at every integer T up to 8192, then on a 2%-spaced grid.
* ``head(n)``: the LM head for ``n`` sampled positions (decode sequences plus prefills that
  finish their prompt in this step); exact per integer.
* ``attn_decode(Bd, C)``: decode attention (one kernel over the batch) from
  ``forward_cost(Bd, 1, C/Bd)``: exact for full attention because its FLOPs and bytes are
  linear in the summed context; windowed layers use the mean context (an approximation).
* ``attn_prefill(s, c)``: one prefill chunk's attention from ``forward_cost(1, s, c)``.

The two attention tables are 2-D grids (integers up to 32, then 10% steps) read with bilinear
interpolation. Decode attention is affine in Bd and C within one roofline regime, so it is
interpolated exactly except near the compute/memory kink; prefill attention is quadratic in
``s``, so it carries a small error. ``tests/test_serving_steptime.py`` measures the error
against exact ``forward_cost`` calls (documented in docs/SERVING.md). One evaluation costs a
few microseconds of Python instead of ~ms for a ``forward_cost`` call.

Mixed steps (decode + prefill chunks, as in chunked prefill or TensorRT-LLM in-flight batching)
are costed as one pass of the dense ops over all tokens plus separate attention kernels, which
is how those engines execute them.

CUDA-graph padding (``graph_sizes``, per attention rank; empty: none): a generation-only step of
``b`` sequences replays the graph captured for ``pad(b) = min{s >= b/dp} * dp`` sequences, so
its token-proportional ops (dense + LM head) run ``pad(b)`` tokens while attention sees the
real ``b`` (:mod:`..inference.graphs`, the same rule as the analytic estimate); mixed steps
with a prefill chunk run eagerly, unpadded.

Speculative decoding (:class:`SpecStepTimeModel`, a pool's ``spec``): a decode step of ``Bd``
sequences is the speculative step of :func:`..inference.speculative.step_cost` (verification of
``K + 1`` tokens per sequence and ``K`` drafts by the MTP module), tabulated on the same
(sequences, mean context) grid as decode attention; a mixed step adds to it the marginal cost of
its prompt chunks over a pass of ``Bd (K + 1)`` verified tokens (dense ops, LM head, chunk
attention, the busiest attention-DP rank). The engine emits ``accepted`` tokens per sequence and
step on average (:class:`..serving.engine.Engine`).

Host work per running sequence (the profile's ``host_per_seq_s``: scheduling, sampling and
response handling in the serving loop) overlaps the device under an overlap scheduler, so a step
lasts at least ``step_overhead_s + host_per_seq_s * sequences / dp`` (:meth:`with_host`), as in
:class:`..inference.forward.ForwardCost`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
from numpy.typing import NDArray

from ..catalog.schema import ModelSpec
from ..errors import SiliconomicsError
from ..inference.adp import EXPERT_SIDE
from ..inference.forward import ForwardCost, forward_cost
from ..inference.graphs import padded_batch
from ..inference.speculative import Speculative, step_cost
from ..ops.device import Device
from ..parallel.plan import InferencePlan

F = NDArray[np.float64]
EXACT_TOKENS = 8192
RUN_NUMPY = 128  # decode runs of at least this many steps are costed in numpy (same bits)
EXACT_RUNS = False
"""True: decode runs sum their step times one by one (:class:`ListRun`, the reference);
False: runs of at least :data:`RUN_CLOSED` steps are summed in closed form per grid segment
(:class:`DecodeRun`, equal up to float rounding)"""
RUN_CLOSED = 64
"""shorter runs keep the list (cheap to sum, and a bisection answers a router's query
faster than a quadratic)"""


class ListRun:
    """A decode run's cumulative step end times as a list (summed step by step)."""

    __slots__ = ("count", "ends", "total")

    def __init__(self, ends: list[float]) -> None:
        self.ends = ends
        self.total = ends[-1]
        # count(dt): steps completed ``dt`` after the run's start (the largest j with
        # end(j) <= dt); a C bisection, no Python frame (routers call it at every pick)
        self.count: Callable[[float], int] = partial(bisect_right, ends)

    def end(self, j: int) -> float:
        """Time from the run's start to the end of its first ``j`` (>= 1) steps."""
        return self.ends[j - 1]


class DecodeRun:
    """A decode run's step times in closed form: within one segment of the context grid a
    step's time is affine in its index (``a + k * n``; the host floor, where it binds, makes
    a constant segment), so the first ``n`` steps of a segment sum to ``n * a + k * n(n-1)/2``
    and :meth:`count` inverts that with a quadratic. O(segments) to build, O(log segments)
    per query, whatever the run's length; equal to :class:`ListRun` up to float rounding."""

    __slots__ = ("a", "cum", "k", "m", "starts", "total")

    def __init__(self, m: int) -> None:
        self.m = m
        self.starts: list[int] = []
        self.cum: list[float] = [0.0]  # cum[s]: time to the start of segment s; cum[-1]: total
        self.a: list[float] = []
        self.k: list[float] = []
        self.total = 0.0

    def add(self, start: int, n: int, a: float, k: float) -> None:
        if n <= 0:
            return
        self.starts.append(start)
        self.a.append(a)
        self.k.append(k)
        self.total = self.cum[-1] + n * a + k * (n * (n - 1) * 0.5)
        self.cum.append(self.total)

    def end(self, j: int) -> float:
        s = bisect_right(self.starts, j - 1) - 1
        n = j - self.starts[s]
        return self.cum[s] + n * self.a[s] + self.k[s] * (n * (n - 1) * 0.5)

    def count(self, dt: float) -> int:
        cum = self.cum
        if dt >= self.total:
            return self.m
        s = bisect_right(cum, dt) - 1
        if s < 0:
            return 0
        starts = self.starts
        i0 = starts[s]
        top = (starts[s + 1] if s + 1 < len(starts) else self.m) - i0
        a, k, rem = self.a[s], self.k[s], dt - cum[s]
        h = 0.5 * k
        b = a - h  # the first n steps of the segment take b * n + h * n^2
        disc = b * b + 4.0 * h * rem
        den = b + math.sqrt(disc) if disc >= 0.0 else 0.0
        n = min(int(2.0 * rem / den), top) if den > 0.0 else top
        c0 = cum[s]
        # float rounding: settle on the largest n whose end, as end() computes it, is <= dt
        while n < top and c0 + (n + 1) * a + k * ((n + 1) * n * 0.5) <= dt:
            n += 1
        while n > 0 and c0 + n * a + k * (n * (n - 1) * 0.5) > dt:
            n -= 1
        return i0 + n


def _axis(hi: float, *, start: float = 1.0, exact: int = 32, ratio: float = 1.1) -> list[float]:
    """Integers ``start..exact``, then geometric steps up to ``hi`` (inclusive)."""
    pts = [float(v) for v in range(int(start), exact + 1) if v <= hi]
    v = float(exact)
    while v < hi:
        v = min(np.ceil(v * ratio), hi)
        pts.append(float(v))
    return pts or [float(start)]


def _by_class(fc: ForwardCost, keep: str) -> F:
    """Summed time of the attention ops, or of every other op except the LM head (plus the
    per-step overhead and pipeline transfers)."""
    total: F = np.zeros(())
    if keep != "attention":
        total = total + fc.step_overhead_s + fc.pipeline_s
    for op in fc.ops:
        if (op.op_class == "attention") == (keep == "attention") and op.name != "lm_head":
            total = total + op.time
    return total


def _head(fc: ForwardCost) -> F:
    return next(op.time for op in fc.ops if op.name == "lm_head")


@dataclass(frozen=True, kw_only=True)
class Grid2:
    """Values on a rectilinear grid, read with bilinear interpolation (linear extrapolation
    past the last node)."""

    xs: list[float]
    ys: list[float]
    table: list[list[float]]

    def __call__(self, x: float, y: float) -> float:
        xs, ys = self.xs, self.ys
        i = min(max(bisect_right(xs, x) - 1, 0), len(xs) - 2)
        j = min(max(bisect_right(ys, y) - 1, 0), len(ys) - 2)
        tx = (x - xs[i]) / (xs[i + 1] - xs[i])
        ty = (y - ys[j]) / (ys[j + 1] - ys[j])
        r0, r1 = self.table[i], self.table[i + 1]
        a = r0[j] + (r0[j + 1] - r0[j]) * ty
        b = r1[j] + (r1[j + 1] - r1[j]) * ty
        return a + (b - a) * tx

    def row_at(self, x: float) -> F:
        """Values along ``ys`` interpolated at ``x`` (bilinear is separable: reading this row
        with linear interpolation in ``y`` equals the 2-D lookup)."""
        xs = self.xs
        i = min(max(bisect_right(xs, x) - 1, 0), len(xs) - 2)
        tx = (x - xs[i]) / (xs[i + 1] - xs[i])
        r0, r1 = np.asarray(self.table[i]), np.asarray(self.table[i + 1])
        return np.asarray(r0 + (r1 - r0) * tx, dtype=np.float64)


def _grid(xs: list[float], ys: list[float], fn: object) -> Grid2:
    if len(xs) < 2:
        xs = [xs[0], xs[0] + 1.0]
    if len(ys) < 2:
        ys = [ys[0], ys[0] + 1.0]
    X, Y = np.meshgrid(np.asarray(xs), np.asarray(ys), indexing="ij")
    vals = np.broadcast_to(fn(X, Y), X.shape)  # type: ignore[operator]
    return Grid2(xs=xs, ys=ys, table=np.asarray(vals, dtype=np.float64).tolist())


def _all_ops(fc: ForwardCost) -> F:
    """Every op of a step plus its overhead and pipeline transfers (the sum of
    :func:`_by_class` over both classes and the LM head)."""
    total: F = np.asarray(fc.step_overhead_s + fc.pipeline_s, dtype=np.float64)
    for op in fc.ops:
        total = total + op.time
    return total


class StepTimeModel:
    """Step time of one replica (seconds) for any batch composition, from tables."""

    spec: Speculative | None = None
    """speculative decoding (:class:`SpecStepTimeModel`); None: one token per step"""
    verify_tokens = 1
    """tokens a decode sequence runs through the model per step (``K + 1`` when speculating)"""

    def __init__(
        self,
        model: ModelSpec,
        dev: Device,
        plan: InferencePlan,
        *,
        max_tokens: int,
        max_seqs: int,
        max_ctx: int,
        graph_sizes: tuple[float, ...] = (),
    ) -> None:
        self.model, self.dev, self.plan = model, dev, plan
        self.graph_sizes = graph_sizes
        self._host = (dev.eff.host_per_seq_s or 0.0) / plan.dp
        self.max_tokens, self.max_seqs, self.max_ctx = max_tokens, max_seqs, max_ctx
        top = max(max_tokens, self.padded(max_seqs), 2)
        exact = np.arange(1, min(top, EXACT_TOKENS) + 1, dtype=np.float64)
        tail = np.asarray(_axis(top, start=EXACT_TOKENS, exact=EXACT_TOKENS, ratio=1.02)[1:])
        self._t_axis = np.concatenate((exact, tail)).tolist()
        fc = forward_cost(model, dev, plan, 1.0, np.asarray(self._t_axis), 0.0, logits_tokens=0)
        dense = np.broadcast_to(_by_class(fc, "dense"), (len(self._t_axis),))
        self._dense = [0.0, *dense.tolist()]  # index T (exact part)
        self.dp = plan.dp
        if plan.dp > 1:  # the routed-expert share, which pools the tokens of all dp ranks
            pooled = sum((op.time for op in fc.ops if op.name in EXPERT_SIDE), np.zeros(()))
            self._expert = [0.0, *np.broadcast_to(pooled, (len(self._t_axis),)).tolist()]
        self._n_exact = len(exact)
        n = np.arange(0, min(top, EXACT_TOKENS) + 1, dtype=np.float64)
        h = _head(forward_cost(model, dev, plan, 1.0, 1.0, 0.0, logits_tokens=n))
        self._head = np.where(n > 0, np.broadcast_to(h, n.shape), 0.0).tolist()
        ctx = [0.0, *_axis(max(max_ctx, 2))]
        b_axis = _axis(max(max_seqs, 2))
        self.attn_decode_grid = _grid(
            b_axis,
            ctx,
            lambda B, c: _by_class(forward_cost(model, dev, plan, B, 1.0, c), "attention"),
        )
        self._rows: dict[int, tuple[float, list[float]]] = {}
        self._rows_np: dict[int, tuple[F, F]] = {}
        self._ys_np: F | None = None
        self._yinv_np: F | None = None
        self._ys = self.attn_decode_grid.ys
        self._ylast = len(self._ys) - 2
        self._yinv = [1.0 / (b - a) for a, b in zip(self._ys, self._ys[1:], strict=False)]
        s_axis = _axis(max(max_tokens, max_ctx, 2))
        self.attn_prefill = _grid(
            s_axis,
            ctx,
            lambda s, c: _by_class(forward_cost(model, dev, plan, 1.0, s, c), "attention"),
        )
        if plan.dp > 1:  # one whole prompt chunk on one dp rank (B/dp = 1)
            dpf = float(plan.dp)
            self.attn_prefill_rank = _grid(
                s_axis,
                ctx,
                lambda s, c: _by_class(forward_cost(model, dev, plan, dpf, s, c), "attention"),
            )

    def with_host(self, t: float, seqs: int) -> float:
        """Step time ``t`` floored by the host work of ``seqs`` running sequences."""
        if not self._host:
            return t
        return max(t, self.dev.eff.step_overhead_s + self._host * seqs)

    def dense(self, tokens: int) -> float:
        """Non-attention ops (with step overhead) for ``tokens`` tokens in one step."""
        return self._table(self._dense, tokens)

    def _table(self, d: list[float], tokens: float) -> float:
        if tokens <= self._n_exact and tokens == int(tokens):
            return d[int(tokens)]
        ax = self._t_axis
        if tokens >= ax[-1]:  # past the table: extend the last segment linearly
            slope = (d[-1] - d[-2]) / (ax[-1] - ax[-2])
            return d[-1] + slope * (tokens - ax[-1])
        return float(np.interp(tokens, ax, d[1:]))

    def dense_table(self, n: int) -> F:
        """:meth:`dense` at every token count 0..n, as an array (the same values; one
        vectorised interpolation instead of ``n`` calls)."""
        ex = min(n, self._n_exact)
        out = np.empty(n + 1)
        out[: ex + 1] = self._dense[: ex + 1]
        if n > ex:
            ax, d = self._t_axis, self._dense
            tail = np.arange(ex + 1, n + 1, dtype=np.float64)
            slope = (d[-1] - d[-2]) / (ax[-1] - ax[-2])
            past = d[-1] + slope * (tail - ax[-1])
            out[ex + 1 :] = np.where(tail >= ax[-1], past, np.interp(tail, ax, d[1:]))
        return out

    def mixed_ranks(
        self,
        n_dec: int,
        ctx_sum: float,
        chunks: list[tuple[int, int]],
        sampled: int,
        memo: dict[tuple[int, int], float] | None = None,
    ) -> float:
        """A step of ``n_dec`` decodes and prompt ``chunks`` ``(new tokens, cached tokens)``,
        before the host floor (``memo``: a cache of one-rank chunk attention times by chunk).

        With one attention rank: one pass of the dense ops over all tokens plus each kernel's
        attention. Under attention data parallelism (``dp`` > 1):
        the ranks run each step together (the MoE all-to-all synchronises them), so the step
        lasts as long as its busiest rank (TensorRT-LLM tech blog 10, :mod:`..inference.adp`).
        The decode sequences are spread evenly (the executor balances them by count); the prompt
        chunks go to the ranks largest first, each to the rank with the fewest prompt tokens so
        far, and run whole on that rank. Each rank's own ops (projections, norms, dense and
        shared FFN, router, all-to-all) and its prompts' attention take what they take on that
        rank; the routed-expert GEMMs pool the tokens of all ranks."""
        dp = self.dp
        pre = 0
        attn_dec = self.attn_decode(n_dec, ctx_sum)
        if dp == 1:
            attn = attn_dec
            for take, done in chunks:
                pre += take
                a = memo.get((take, done)) if memo is not None else None
                if a is None:
                    a = self.attn_prefill(take, done)
                    if memo is not None:
                        memo[(take, done)] = a
                attn += a
            return self.dense(n_dec + pre) + self.head(sampled) + attn
        pre = sum(take for take, _ in chunks)
        loads = [0] * dp
        attn_r = [0.0] * dp
        for take, done in sorted(chunks, key=lambda ch: -ch[0]):
            r = loads.index(min(loads))
            loads[r] += take
            attn_r[r] += self.attn_prefill_rank(take, done)
        per_dec = n_dec / dp
        local = max(
            self._table(self._dense, dp * (per_dec + load))
            - self._table(self._expert, dp * (per_dec + load))
            + a
            for load, a in zip(loads, attn_r, strict=True)
        )
        expert = self._table(self._expert, n_dec + pre)
        return local + expert + attn_dec + self.head(sampled)

    def head(self, n: int) -> float:
        """LM head for ``n`` sampled positions."""
        if n < len(self._head):
            return float(self._head[n])
        return float(self._head[-1]) * n / (len(self._head) - 1)

    def padded(self, batch: int) -> int:
        """Sequences a generation-only step of ``batch`` runs as (CUDA-graph padding)."""
        if not self.graph_sizes or batch <= 0:
            return batch
        dp = self.plan.dp
        return int(padded_batch(max(batch / dp, 1.0), self.graph_sizes)) * dp

    def _decode_row(self, batch: int) -> tuple[float, list[float]]:
        """(dense + head time, decode attention along the context axis) for ``batch``
        sequences, cached: a step then costs one bisection and one linear interpolation.
        The dense ops and the head run the graph-padded batch (:meth:`padded`)."""
        row = self._rows.get(batch)
        if row is None:
            pad = self.padded(batch)
            base = self.dense(pad) + self.head(pad)
            row = self._rows[batch] = (base, self.attn_decode_grid.row_at(batch).tolist())
        return row

    def attn_decode(self, batch: int, total_ctx: float) -> float:
        if batch <= 0:
            return 0.0
        return self.decode_step(batch, total_ctx) - self._decode_row(batch)[0]

    def decode_step(self, batch: int, total_ctx: float) -> float:
        """A pure decode step of ``batch`` sequences with ``total_ctx`` cached tokens."""
        base, r = self._decode_row(batch)
        ys = self._ys
        c = total_ctx / batch
        j = bisect_right(ys, c) - 1
        if j < 0:
            j = 0
        elif j > self._ylast:
            j = self._ylast
        t = base + r[j] + (r[j + 1] - r[j]) * (c - ys[j]) * self._yinv[j]
        return self.with_host(t, batch) if self._host else t

    def decode_run_ends(self, batch: int, total_ctx: float, m: int) -> list[float]:
        """Cumulative end times of ``m`` consecutive decode steps of ``batch`` sequences
        starting at ``total_ctx`` cached tokens (each step adds one token per sequence, so
        the mean context grows by exactly 1: the grid index is walked, not searched)."""
        base, r = self._decode_row(batch)
        ys, yinv, last = self._ys, self._yinv, self._ylast
        c = total_ctx / batch
        if m >= RUN_NUMPY:
            return self._run_ends_np(batch, base, c, m)
        j = min(max(bisect_right(ys, c) - 1, 0), last)
        acc = 0.0
        out: list[float] = []
        app = out.append
        floor = self.with_host(0.0, batch) if self._host else 0.0
        # per grid segment: base + r[j] and r[j+1] - r[j] hoisted (the same operations in the
        # same order as base + r[j] + (r[j+1] - r[j]) * (c - ys[j]) * yinv[j], so the same bits)
        a0, k, y0, yi = base + r[j], r[j + 1] - r[j], ys[j], yinv[j]
        y1 = ys[j + 1] if j < last else math.inf
        for _ in range(m):
            if c >= y1:
                while j < last and c >= ys[j + 1]:
                    j += 1
                a0, k, y0, yi = base + r[j], r[j + 1] - r[j], ys[j], yinv[j]
                y1 = ys[j + 1] if j < last else math.inf
            step = a0 + k * (c - y0) * yi
            acc += step if step > floor else floor
            app(acc)
            c += 1.0
        return out

    def decode_run(
        self, batch: int, total_ctx: float, m: int, closed: int = RUN_CLOSED
    ) -> DecodeRun | ListRun:
        """The ``m`` steps of :meth:`decode_run_ends` as a run object: in closed form
        (:class:`DecodeRun`), or summed one by one (runs shorter than ``closed``, or
        :data:`EXACT_RUNS`)."""
        if EXACT_RUNS or m < closed:
            return ListRun(self.decode_run_ends(batch, total_ctx, m))
        base, r = self._decode_row(batch)
        ys, yinv, last = self._ys, self._yinv, self._ylast
        floor = self.with_host(0.0, batch) if self._host else -math.inf
        c = total_ctx / batch
        j = min(max(bisect_right(ys, c) - 1, 0), last)
        run = DecodeRun(m)
        i = 0
        while i < m:
            # this segment: steps i.. while the mean context c + i stays below ys[j + 1]
            stop = m if j >= last else min(m, max(i + 1, math.ceil(ys[j + 1] - c)))
            k = (r[j + 1] - r[j]) * yinv[j]
            a = base + r[j] + k * (c + i - ys[j])
            self._floored(run, i, stop - i, a, k, floor)
            i, j = stop, j + 1
        return run

    @staticmethod
    def _floored(run: DecodeRun, i: int, n: int, a: float, k: float, floor: float) -> None:
        """Steps ``a + k * x`` for x in [0, n) at indices i.., each at least ``floor``."""
        if k == 0.0 or floor == -math.inf:
            run.add(i, n, max(a, floor), k if a > floor else 0.0)
            return
        x = (floor - a) / k  # where the step crosses the floor
        if k > 0.0:  # floor first (x <= cross), then affine
            p = min(max(math.floor(x) + 1, 0), n)
            run.add(i, p, floor, 0.0)
            run.add(i + p, n - p, a + k * p, k)
        else:  # affine while above the floor, then the floor
            q = min(max(math.ceil(x), 0), n)
            run.add(i, q, a, k)
            run.add(i + q, n - q, floor, 0.0)

    def _run_ends_np(self, batch: int, base: float, c: float, m: int) -> list[float]:
        """:meth:`decode_run_ends` in numpy, bit for bit: the contexts are the same repeated
        additions of 1.0 (a sequential cumsum), the same grid segments, the same operation
        order per step and a sequential cumsum of the step times."""
        arrs = self._rows_np.get(batch)
        if arrs is None:
            if self._ys_np is None:
                self._ys_np = np.asarray(self._ys)
                self._yinv_np = np.asarray(self._yinv)
            r = np.asarray(self._decode_row(batch)[1])
            arrs = self._rows_np[batch] = (r, np.diff(r))
        r, dr = arrs
        ys, yinv = self._ys_np, self._yinv_np
        assert ys is not None and yinv is not None
        cs = np.ones(m)
        cs[0] = c
        cs = np.cumsum(cs)
        j = np.clip(np.searchsorted(ys, cs, side="right") - 1, 0, self._ylast)
        step = base + r[j] + dr[j] * (cs - ys[j]) * yinv[j]
        if self._host:  # the host floor, as in the Python loop
            floor = self.with_host(0.0, batch)
            step = np.where(step > floor, step, floor)
        out: list[float] = np.cumsum(step).tolist()
        return out

    def decode_steps(self, batch: int, total_ctx: F) -> F:
        """Pure decode steps of ``batch`` sequences at each of the summed contexts
        ``total_ctx`` (vectorised; equal to :meth:`decode_step` element by element)."""
        g = self.attn_decode_grid
        row = g.row_at(batch)
        ys = np.asarray(g.ys)
        c = np.asarray(total_ctx, dtype=np.float64) / batch
        j = np.clip(np.searchsorted(ys, c, side="right") - 1, 0, len(ys) - 2)
        ty = (c - ys[j]) / (ys[j + 1] - ys[j])
        attn = row[j] + (row[j + 1] - row[j]) * ty
        t = self._decode_row(batch)[0] + attn
        if self._host:
            t = np.maximum(t, self.with_host(0.0, batch))
        return np.asarray(t, dtype=np.float64)

    def prefill_step(self, prompts: list[int]) -> float:
        """A step that prefills whole prompts (no cached context) and samples each; under
        attention data parallelism the busiest rank sets it (:meth:`mixed_ranks`)."""
        if self.dp > 1:
            t = self.mixed_ranks(0, 0.0, [(s, 0) for s in prompts], len(prompts))
            return self.with_host(t, len(prompts))
        t = self.dense(sum(prompts)) + self.head(len(prompts))
        return self.with_host(t + sum(self.attn_prefill(s, 0.0) for s in prompts), len(prompts))

    def exact(
        self, decode_ctx: list[float], chunks: list[tuple[float, float]], sampled: int
    ) -> float:
        """The same composition from direct ``forward_cost`` calls (reference for tests):
        decode sequences with the given contexts, prefill chunks ``(s, c)``."""
        m, d, p = self.model, self.dev, self.plan
        tokens = len(decode_ctx) + sum(s for s, _ in chunks)
        fc = forward_cost(m, d, p, 1.0, float(tokens), 0.0, logits_tokens=sampled)
        t = float(_by_class(fc, "dense") + _head(fc))
        if decode_ctx:
            b = float(len(decode_ctx))
            attn = forward_cost(m, d, p, b, 1.0, float(np.mean(decode_ctx)))
            t += float(_by_class(attn, "attention"))
        for s, c in chunks:
            t += float(_by_class(forward_cost(m, d, p, 1.0, s, c), "attention"))
        return self.with_host(t, len(decode_ctx) + len(chunks))


class SpecStepTimeModel(StepTimeModel):
    """:class:`StepTimeModel` of a replica that speculates with the model's MTP module: decode
    steps are speculative steps (no CUDA-graph padding, as in the estimate) and every decode
    sequence runs ``K + 1`` tokens through the dense ops of a mixed step."""

    def __init__(
        self,
        model: ModelSpec,
        dev: Device,
        plan: InferencePlan,
        *,
        max_tokens: int,
        max_seqs: int,
        max_ctx: int,
        spec: Speculative,
    ) -> None:
        verify = spec.draft_tokens + 1
        # dense-op tables must reach a mixed step's verified decode tokens plus its prompts
        super().__init__(
            model,
            dev,
            plan,
            max_tokens=max_tokens + max_seqs * verify,
            max_seqs=max_seqs,
            max_ctx=max_ctx,
        )
        self.max_tokens = max_tokens
        self.spec = spec
        self.verify_tokens = verify
        ctx = [0.0, *_axis(max(max_ctx, 2))]
        b_axis = _axis(max(max_seqs, 2))
        self.spec_grid = _grid(
            b_axis, ctx, lambda B, c: _all_ops(step_cost(model, dev, plan, B, c, spec))
        )

    def decode_step(self, batch: int, total_ctx: float) -> float:
        """One speculative decode step of ``batch`` sequences holding ``total_ctx`` tokens."""
        t = self.spec_grid(batch, total_ctx / batch)
        return self.with_host(t, batch) if self._host else t

    def decode_steps(self, batch: int, total_ctx: F) -> F:
        c = np.asarray(total_ctx, dtype=np.float64)
        return np.array([self.decode_step(batch, float(x)) for x in c.reshape(-1)]).reshape(c.shape)

    def attn_decode(self, batch: int, total_ctx: float) -> float:
        """Zero: the decode attention is inside the tabulated speculative step, and the
        marginal cost of a mixed step's chunks (:meth:`mixed_ranks`) needs none."""
        return 0.0

    def decode_run(
        self, batch: int, total_ctx: float, m: int, closed: int = RUN_CLOSED
    ) -> DecodeRun | ListRun:  # pragma: no cover - the engine runs single steps
        raise NotImplementedError("speculative decoding runs single decode steps")

    def mixed_ranks(
        self,
        n_dec: int,
        ctx_sum: float,
        chunks: list[tuple[int, int]],
        sampled: int,
        memo: dict[tuple[int, int], float] | None = None,
    ) -> float:
        """The speculative decode step plus what the prompt chunks add to a pass of
        ``n_dec (K + 1)`` verified tokens (:meth:`StepTimeModel.mixed_ranks` with and without
        them: dense ops, LM head, chunk attention, the busiest rank; the decode attention
        cancels)."""
        if not n_dec:
            return super().mixed_ranks(0, 0.0, chunks, sampled, memo)
        tokens = n_dec * self.verify_tokens
        ctx = tokens * (ctx_sum / n_dec)
        with_chunks = super().mixed_ranks(tokens, ctx, chunks, tokens + sampled - n_dec, memo)
        alone = super().mixed_ranks(tokens, ctx, [], tokens, memo)
        return self.spec_grid(n_dec, ctx_sum / n_dec) + with_chunks - alone

    def exact(
        self, decode_ctx: list[float], chunks: list[tuple[float, float]], sampled: int
    ) -> float:
        """Direct ``step_cost``/``forward_cost`` calls for the same composition (tests)."""
        if not decode_ctx:
            return super().exact(decode_ctx, chunks, sampled)
        m, d, p, spec = self.model, self.dev, self.plan, self.spec
        assert spec is not None
        b = float(len(decode_ctx))
        t = float(_all_ops(step_cost(m, d, p, b, float(np.mean(decode_ctx)), spec)))
        if chunks:
            v = b * self.verify_tokens
            pre = sum(s for s, _ in chunks)
            samp = sampled - len(decode_ctx)
            both = forward_cost(m, d, p, 1.0, v + pre, 0.0, logits_tokens=v + samp)
            alone = forward_cost(m, d, p, 1.0, v, 0.0, logits_tokens=v)
            t += float(_by_class(both, "dense") + _head(both) - _by_class(alone, "dense"))
            t -= float(_head(alone))
            for s, c in chunks:
                t += float(_by_class(forward_cost(m, d, p, 1.0, s, c), "attention"))
        return self.with_host(t, len(decode_ctx) + len(chunks))


_CACHE: dict[tuple[object, ...], tuple[object, ...]] = {}


def step_time_model(
    model: ModelSpec,
    dev: Device,
    plan: InferencePlan,
    *,
    max_tokens: int,
    max_seqs: int,
    max_ctx: int,
    graph_sizes: tuple[float, ...] = (),
    spec: Speculative | None = None,
) -> StepTimeModel:
    """Memoised :class:`StepTimeModel` (capacity searches reuse one configuration many
    times; :class:`SpecStepTimeModel` with ``spec``). Keyed by object identity; the cache
    keeps the objects alive so ids stay unique."""
    plan = replace(plan, replicas=1)  # the step time of one replica ignores the pool size
    key: tuple[object, ...] = (
        *(id(model), id(dev.chip), id(dev.eff), plan),
        *(max_tokens, max_seqs, max_ctx, graph_sizes),
    )
    if spec is not None:
        key = (*key, spec)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit[0]  # type: ignore[return-value]
    if spec is None:
        stm = StepTimeModel(
            model,
            dev,
            plan,
            max_tokens=max_tokens,
            max_seqs=max_seqs,
            max_ctx=max_ctx,
            graph_sizes=graph_sizes,
        )
    else:
        if graph_sizes:
            raise SiliconomicsError("speculative decoding with CUDA-graph padding is not modelled")
        stm = SpecStepTimeModel(
            model, dev, plan, max_tokens=max_tokens, max_seqs=max_seqs, max_ctx=max_ctx, spec=spec
        )
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[key] = (stm, model, dev.chip, dev.eff)
    return stm

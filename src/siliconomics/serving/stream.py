"""Streaming statistics for runs too long to keep per-request arrays (flat memory).

A streamed run (``simulate(..., stream=True)``) keeps per-request state only while a request
is in flight: its ledger slot is reused once it finishes. Each finished request's latencies
go into a small buffer that is flushed, 64k values at a time, into:

* :class:`LogSketch`: a log-bucketed histogram (DDSketch's mapping, Masson et al., VLDB 2019).
  Bucket ``i`` holds values in ``(g^(i-1), g^i]`` with ``g = (1 + a) / (1 - a)`` and reports
  ``2 g^i / (g + 1)``, within relative error ``a`` of any value in the bucket. A percentile is
  read like ``numpy.percentile`` (linear between the two order statistics around the rank),
  each order statistic within ``a``, so the percentile is within relative error ``a``
  (:data:`REL_ERROR`, 0.5%) of the exact one. Count, sum (mean) and max are exact; values
  under :data:`TINY` seconds count as zero (absolute error under 1 ns).
* :class:`TimeBins`: counts and token-generation ramps over simulated time in 4,096 equal
  bins (the width doubles as the run grows), for the steady-state output rate: the 10th/90th
  percentiles of finish times within one bin, the tokens in that window within one bin at
  each edge.

Memory is O(in-flight requests + buckets), whatever the request count
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from .config import Slo
from .metrics import Dist

F = NDArray[np.float64]
REL_ERROR = 0.005
"""relative error of a streamed percentile"""
TINY = 1e-9
"""seconds: smaller values count as zero"""
FLUSH = 1 << 16
_GAMMA = (1 + REL_ERROR) / (1 - REL_ERROR)
_LOG_GAMMA = math.log(_GAMMA)
_LO = math.floor(math.log(TINY) / _LOG_GAMMA)  # bucket index of the smallest value kept
_HI = math.ceil(math.log(1e9) / _LOG_GAMMA)  # 1e9 s: larger values go to the top bucket


@dataclass(kw_only=True)
class LogSketch:
    """Quantile sketch of non-negative values with relative error :data:`REL_ERROR`."""

    counts: NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(_HI - _LO + 2, dtype=np.int64)
    )
    """bucket 0: values under TINY; bucket k: index _LO + k - 1"""
    n: int = 0
    total: float = 0.0
    top: float = -math.inf

    def add(self, x: F) -> None:
        x = x[np.isfinite(x)]
        if not x.size:
            return
        self.n += int(x.size)
        self.total += float(x.sum())
        self.top = max(self.top, float(x.max()))
        k = np.zeros(x.size, dtype=np.int64)
        pos = x >= TINY
        idx = np.ceil(np.log(x[pos]) / _LOG_GAMMA).astype(np.int64)
        k[pos] = np.clip(idx, _LO, _HI) - _LO + 1
        self.counts += np.bincount(k, minlength=self.counts.size)

    def _value(self, k: int) -> float:
        if k == 0:
            return 0.0
        return 2.0 * _GAMMA ** (k - 1 + _LO) / (_GAMMA + 1.0)

    def quantile(self, q: float) -> float:
        """The ``q``-th percentile (0..100), as ``numpy.percentile`` reads it, within
        :data:`REL_ERROR`."""
        if not self.n:
            return math.nan
        h = (self.n - 1) * q / 100.0
        lo, hi = math.floor(h), math.ceil(h)
        cum = np.cumsum(self.counts)
        a, b = (
            min(self._value(int(np.searchsorted(cum, r, side="right"))), self.top) for r in (lo, hi)
        )
        return a + (b - a) * (h - lo)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan


@dataclass(kw_only=True)
class TimeBins:
    """Finish counts and generated tokens over simulated time, in :attr:`nbins` equal bins."""

    nbins: int = 4096
    width: float = 1e-3
    finishes: F = field(default_factory=lambda: np.zeros(4096))
    firsts: F = field(default_factory=lambda: np.zeros(4096))
    slope: F = field(default_factory=lambda: np.zeros(4096))
    """sum of token rates d starting (+) or stopping (-) in each bin"""
    moment: F = field(default_factory=lambda: np.zeros(4096))
    """sum of d * (time of the start or stop) in each bin"""

    def _fit(self, t_max: float) -> None:
        while t_max >= self.nbins * self.width:
            for a in (self.finishes, self.firsts, self.slope, self.moment):
                a[: self.nbins // 2] = a[0::2] + a[1::2]
                a[self.nbins // 2 :] = 0.0
            self.width *= 2.0

    def _bin(self, t: F) -> NDArray[np.int64]:
        return np.clip((t / self.width).astype(np.int64), 0, self.nbins - 1)

    def add(self, first: F, finish: F, out: F) -> None:
        self._fit(float(finish.max()))
        n = self.nbins
        self.finishes += np.bincount(self._bin(finish), minlength=n)
        span = finish - first
        ramp = span > 0
        # a request whose tokens all come at one instant counts them there
        w_first = np.where(ramp, 1.0, out)
        self.firsts += np.bincount(self._bin(first), weights=w_first, minlength=n)
        d = (out[ramp] - 1.0) / span[ramp]
        s, f = first[ramp], finish[ramp]
        self.slope += np.bincount(self._bin(s), weights=d, minlength=n)
        self.slope -= np.bincount(self._bin(f), weights=d, minlength=n)
        self.moment += np.bincount(self._bin(s), weights=d * s, minlength=n)
        self.moment -= np.bincount(self._bin(f), weights=d * f, minlength=n)

    def _edges(self) -> F:
        return np.arange(self.nbins + 1, dtype=np.float64) * self.width

    def finish_quantile(self, q: float) -> float:
        """Finish time at percentile ``q`` (within one bin), linear inside the bin."""
        cum = np.concatenate(([0.0], np.cumsum(self.finishes)))
        return float(np.interp(q / 100.0 * cum[-1], cum, self._edges()))

    def tokens_before(self, t: float) -> float:
        """Output tokens generated before ``t`` (exact at bin edges, linear between)."""
        e = self._edges()
        ramp = e * np.concatenate(([0.0], np.cumsum(self.slope))) - np.concatenate(
            ([0.0], np.cumsum(self.moment))
        )
        firsts = np.concatenate(([0.0], np.cumsum(self.firsts)))
        return float(np.interp(t, e, ramp + firsts))

    def steady_rate(self) -> float:
        lo, hi = self.finish_quantile(10), self.finish_quantile(90)
        if not hi > lo:
            return math.nan
        return (self.tokens_before(hi) - self.tokens_before(lo)) / (hi - lo)


METRICS = ("ttft", "tpot", "e2e", "queue")


class StreamStats:
    """Everything a streamed run reports, accumulated as requests finish."""

    def __init__(self, *, start: int, slo: Slo | None) -> None:
        self.start, self.slo = start, slo
        self.sketch = {m: LogSketch() for m in METRICS}
        self.bins = TimeBins()
        self.buf = {k: array("d") for k in ("arrival", "first", "finish", "sched", "out", "seq")}
        self.n = 0
        self.ok = 0  # measured requests meeting every SLO limit
        self.measured = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.ctx_sum = 0.0  # sum of input + output / 2 (mean context, for power)
        self.first_arrival = math.inf
        self.last_finish = -math.inf

    def add(self, seq: int, arrival: float, first: float, finish: float, sched: float,
            inp: int, out: int) -> None:  # fmt: skip
        b = self.buf
        b["arrival"].append(arrival)
        b["first"].append(first)
        b["finish"].append(finish)
        b["sched"].append(sched)
        b["out"].append(out)
        b["seq"].append(seq)
        self.input_tokens += inp
        self.output_tokens += out
        self.ctx_sum += inp + out / 2
        if len(b["seq"]) >= FLUSH:
            self.flush()

    def extend(self, ints: NDArray[np.int64], floats: F) -> None:
        """:meth:`add` for many requests: ``ints`` rows (seq, input, output), ``floats`` rows
        (arrival, first token, finish, scheduled)."""
        b = self.buf
        for lo in range(0, len(ints), FLUSH):
            i, f = ints[lo : lo + FLUSH], floats[lo : lo + FLUSH]
            for key, col in (("arrival", f[:, 0]), ("first", f[:, 1]), ("finish", f[:, 2]),
                             ("sched", f[:, 3]), ("out", i[:, 2]), ("seq", i[:, 0])):  # fmt: skip
                b[key].frombytes(np.ascontiguousarray(col, dtype=np.float64).tobytes())
            self.input_tokens += int(i[:, 1].sum())
            self.output_tokens += int(i[:, 2].sum())
            self.ctx_sum += float((i[:, 1] + i[:, 2] / 2).sum())
            if len(b["seq"]) >= FLUSH:
                self.flush()

    def flush(self) -> None:
        b = {k: np.array(v, dtype=np.float64) for k, v in self.buf.items()}  # copies
        if not b["seq"].size:
            return
        self.n += int(b["seq"].size)
        self.first_arrival = min(self.first_arrival, float(b["arrival"].min()))
        self.last_finish = max(self.last_finish, float(b["finish"].max()))
        self.bins.add(b["first"], b["finish"], b["out"])
        m = b["seq"] >= self.start
        arr, first, fin, out = b["arrival"][m], b["first"][m], b["finish"][m], b["out"][m]
        with np.errstate(invalid="ignore", divide="ignore"):
            tpot = np.where(out > 1, (fin - first) / np.maximum(out - 1, 1), np.nan)
        vals = {
            "ttft": first - arr,
            "tpot": tpot,
            "e2e": fin - arr,
            "queue": b["sched"][m] - arr,
        }
        for k, v in vals.items():
            self.sketch[k].add(v)
        self.measured += int(m.sum())
        slo = self.slo
        if slo is not None and not slo.empty:
            ok = np.ones(arr.size, dtype=bool)
            for lim, x in (
                (slo.ttft_s, vals["ttft"]),
                (slo.tpot_s, tpot),
                (slo.e2e_s, vals["e2e"]),
            ):
                if lim is not None:
                    ok &= ~(x > lim)
            self.ok += int(ok.sum())
        for buf in self.buf.values():
            del buf[:]

    def dist(self, metric: str) -> Dist:
        sk = self.sketch[metric]
        if not sk.n:
            return Dist(mean=math.nan, p50=math.nan, p90=math.nan, p99=math.nan, max=math.nan)
        q = sk.quantile
        return Dist(mean=sk.mean, p50=q(50), p90=q(90), p99=q(99), max=sk.top)

    def slo_check(self) -> tuple[float, bool | None]:
        """As :func:`.metrics.slo_check`, the percentiles from the sketches."""
        slo = self.slo
        if slo is None or slo.empty:
            return 1.0, None
        met = True
        for m, lim in (("ttft", slo.ttft_s), ("tpot", slo.tpot_s), ("e2e", slo.e2e_s)):
            if (
                lim is not None
                and self.sketch[m].n
                and self.sketch[m].quantile(slo.percentile) > lim
            ):
                met = False
        return (self.ok / self.measured if self.measured else math.nan), met

"""What a simulation run reports: latency percentiles, throughput, goodput, utilisation,
KV-cache use, preemptions, batch sizes, energy and cost.

Definitions (per request): TTFT = first token - arrival; TPOT = (finish - first token) /
(output tokens - 1), requests with one output token have none (MLPerf's definition); e2e =
finish - arrival; queueing delay = first prompt token scheduled - arrival. Goodput counts
requests meeting every per-request limit of the SLO. Throughputs are over the run (first
arrival to last finish); ``steady_output_tokens_per_s`` counts only requests finishing between
the 10th and 90th percentile of finish times, which excludes the ramp-up and the drain of an
offline (all-at-once) run.

Energy per pool: chips x power x duration, power from :func:`..economics.cost.power_per_chip_w`
at activity = busy fraction x the share of a decode step's time in compute- or memory-bound ops
(at the run's mean batch and context). Cost: catalog (or overridden) $/chip-hour x chips x
duration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from .config import Slo

if TYPE_CHECKING:
    from .stream import StreamStats

F = NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class Dist:
    """Summary of a per-request latency (seconds)."""

    mean: float
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, x: F) -> Dist:
        x = x[np.isfinite(x)]
        if x.size == 0:
            return cls(mean=math.nan, p50=math.nan, p90=math.nan, p99=math.nan, max=math.nan)
        p50, p90, p99 = np.percentile(x, [50, 90, 99])
        return cls(
            mean=float(x.mean()), p50=float(p50), p90=float(p90), p99=float(p99), max=float(x.max())
        )


@dataclass(frozen=True, kw_only=True)
class RequestLog:
    """Per-request times (seconds from the first arrival), arrays indexed by request id."""

    arrival_s: F
    input_tokens: NDArray[np.int64]
    output_tokens: NDArray[np.int64]
    first_token_s: F
    finish_s: F
    scheduled_s: F
    preemptions: NDArray[np.int64]
    replica: NDArray[np.int64]

    @property
    def ttft_s(self) -> F:
        return self.first_token_s - self.arrival_s

    @property
    def tpot_s(self) -> F:
        n = self.output_tokens - 1
        return np.where(n > 0, (self.finish_s - self.first_token_s) / np.maximum(n, 1), np.nan)

    @property
    def e2e_s(self) -> F:
        return self.finish_s - self.arrival_s

    @property
    def queue_s(self) -> F:
        return self.scheduled_s - self.arrival_s


@dataclass(frozen=True, kw_only=True)
class PoolStats:
    """One pool of replicas over the run."""

    role: str
    """'serve' (co-located), 'prefill' or 'decode'"""
    chip: str
    replicas: int
    chips: int
    scheduler: str
    max_seqs: int
    kv_tokens_per_replica: int
    utilisation: float
    """fraction of the run the replicas were running a step"""
    mfu: float
    """model FLOPs (2 x active params per processed token) / peak of the compute format"""
    kv_utilisation: float
    """time-averaged fraction of KV blocks in use"""
    mean_batch: float
    """mean sequences per step (decode + prefill)"""
    batch_hist: tuple[tuple[int, int], ...]
    """(batch size, steps) for each batch size seen"""
    steps: int
    preemptions: int
    watts_per_chip: float
    energy_j: float
    usd: float = math.nan
    """USD of the run on this pool: NaN from the simulator; attached by
    :func:`siliconomics.economics.serving_cost.price_simulation`"""
    usd_per_chip_hour: float = math.nan


@dataclass(frozen=True, kw_only=True)
class SimResult:
    """Everything one simulation run measured."""

    n_requests: int
    duration_s: float
    ttft: Dist
    tpot: Dist
    e2e: Dist
    queue: Dist
    requests_per_s: float
    output_tokens_per_s: float
    input_tokens_per_s: float
    steady_output_tokens_per_s: float
    goodput_rps: float
    """requests per second meeting every SLO limit (= requests_per_s without an SLO)"""
    goodput_fraction: float
    slo: Slo | None
    slo_met: bool | None
    """each SLO limit holds at its percentile (None without an SLO)"""
    preemptions: int
    pools: tuple[PoolStats, ...]
    energy_j: float
    cost_usd: float
    """NaN from the simulator; attached by economics.serving_cost.price_simulation"""
    kv_transfer_bytes: float
    log: RequestLog
    """per-request times and lengths"""
    measured_from: int = 0
    """latency statistics cover requests from this index on (warm-up excluded)"""
    assumptions: tuple[str, ...] = ()
    stream: StreamStats | None = None
    """a streamed run's statistics (``simulate(..., stream=True)``; ``log`` is then empty)"""

    @property
    def requests(self) -> RequestLog:
        """Alias of ``log``."""
        return self.log

    @property
    def chips(self) -> int:
        return sum(p.chips for p in self.pools)

    @property
    def output_tokens(self) -> int:
        """Output tokens over all requests (every request, warm-up included)"""
        if self.stream is not None:
            return self.stream.output_tokens
        return int(self.log.output_tokens.sum())

    @property
    def usd_per_million_output(self) -> float:
        tok = float(self.output_tokens)
        return self.cost_usd / tok * 1e6 if tok else math.nan

    @property
    def joules_per_output_token(self) -> float:
        tok = float(self.output_tokens)
        return self.energy_j / tok if tok else math.nan

    def percentile(self, metric: str, q: float) -> float:
        """``metric`` in ttft, tpot, e2e, queue at percentile ``q`` over the measured ones
        (a streamed run: from its sketch, within 0.5%)."""
        if self.stream is not None:
            return self.stream.sketch[metric].quantile(q)
        x = getattr(self.log, f"{metric}_s")[self.measured_from :]
        x = x[np.isfinite(x)]
        return float(np.percentile(x, q)) if x.size else math.nan

    def binding(self) -> str:
        """Which SLO limit is closest to (or furthest past) its target, e.g. 'tpot p99'."""
        if self.slo is None or self.slo.empty:
            return "-"
        q = self.slo.percentile
        ratios = {
            m: self.percentile(m, q) / lim
            for m, lim in (
                ("ttft", self.slo.ttft_s),
                ("tpot", self.slo.tpot_s),
                ("e2e", self.slo.e2e_s),
            )
            if lim is not None
        }
        worst = max(ratios, key=lambda m: ratios[m])
        return f"{worst} p{q:g}"


def slo_check(log: RequestLog, slo: Slo | None, start: int) -> tuple[float, bool | None]:
    """(fraction of requests meeting every limit, whether each limit holds at its
    percentile), over requests from ``start`` on."""
    if slo is None or slo.empty:
        return 1.0, None
    ok = np.ones(len(log.arrival_s) - start, dtype=bool)
    met = True
    for lim, x in ((slo.ttft_s, log.ttft_s), (slo.tpot_s, log.tpot_s), (slo.e2e_s, log.e2e_s)):
        if lim is None:
            continue
        xs = x[start:]
        ok &= ~(xs > lim)  # NaN (no TPOT for one-token answers) passes
        finite = xs[np.isfinite(xs)]
        if finite.size and np.percentile(finite, slo.percentile) > lim:
            met = False
    return float(ok.mean()) if ok.size else math.nan, met


def steady_rate(log: RequestLog) -> float:
    """Output tokens/s generated between the 10th and 90th percentile of finish times (the
    steady state of an offline run).

    Counts the tokens generated inside that window: a request's first token at its
    ``first_token_s``, the other ``n - 1`` spread evenly until ``finish_s``. (Counting every
    token of the requests that *finish* in the window overstates the rate whenever requests
    finish in waves: 100 requests in one batch finish within microseconds of each other.)"""
    f, s = log.finish_s, log.first_token_s
    lo, hi = np.percentile(f, [10, 90])
    if not hi > lo:
        return math.nan
    n = log.output_tokens.astype(np.float64)
    first_in = ((s > lo) & (s <= hi)).astype(np.float64)
    span = f - s
    overlap = np.clip(np.minimum(f, hi) - np.maximum(s, lo), 0.0, None)
    frac = np.where(span > 0, overlap / np.where(span > 0, span, 1.0), first_in)
    return float((first_in + (n - 1.0) * frac).sum() / (hi - lo))

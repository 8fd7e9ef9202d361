"""Workloads: when requests arrive and how long their prompts and answers are.

:class:`Lengths` is the one token-length distribution of the project and
:meth:`Lengths.sample` its one sampler: the simulator, the planner (whose spec's ``input``/
``output`` tables convert to it, :meth:`siliconomics.fleet.spec.Lengths.to_lengths`) and the
validation rows all draw through it. Traces are read by :func:`.traces.parse_trace_csv`.

Everything samples from a passed-in ``numpy.random.Generator``, so a seed fixes a run. Arrival
processes are drawn at unit rate and scaled by ``1/rate``: the same seed at another rate gives
the same requests, proportionally closer together (common random numbers, which makes the
capacity search's bisection monotone instead of noisy).

Text forms (CLI): arrivals ``poisson``, ``gamma:CV``, ``constant``, ``burst`` (all at t=0, an
offline run), ``piecewise:R1@D1,R2@D2,...`` (relative rate R for D seconds, repeating);
lengths ``fixed:N``, ``uniform:LO,HI``, ``lognormal:MEAN,SIGMA[,MAX]``, ``empirical:V1,V2,...``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from ..errors import SiliconomicsError

F = NDArray[np.float64]
I64 = NDArray[np.int64]

ARRIVALS = ("poisson", "gamma", "constant", "burst", "piecewise")
LENGTHS = ("fixed", "uniform", "lognormal", "empirical")
MAX_LOG_SIGMA = 3.0
"""largest lognormal SIGMA accepted: at 3 the median is 1/90 of the mean already"""


@dataclass(frozen=True, kw_only=True)
class Requests:
    """A sampled (or replayed) request stream, sorted by arrival time."""

    arrival_s: F
    input_tokens: I64
    output_tokens: I64

    def __len__(self) -> int:
        return len(self.arrival_s)


@dataclass(frozen=True, kw_only=True)
class Arrival:
    """Arrival process with mean ``rate`` requests/s."""

    kind: str = "poisson"
    rate: float = 1.0
    cv: float = 1.0
    """gamma: coefficient of variation of the gaps (1 = Poisson, > 1 bursty)"""
    profile: tuple[tuple[float, float], ...] = ()
    """piecewise: (relative rate, duration s) segments, repeated; scaled to mean ``rate``"""

    def __post_init__(self) -> None:
        if self.kind not in ARRIVALS:
            raise SiliconomicsError(f"arrival '{self.kind}': allowed: {', '.join(ARRIVALS)}")
        if self.kind != "burst" and not (self.rate > 0 and math.isfinite(self.rate)):
            raise SiliconomicsError(f"arrival rate must be > 0 requests/s, got {self.rate}")
        if self.kind == "gamma" and not self.cv > 0:
            raise SiliconomicsError(f"gamma arrival cv must be > 0, got {self.cv}")
        if self.kind == "piecewise" and (
            not self.profile or any(r < 0 or d <= 0 for r, d in self.profile)
        ):
            raise SiliconomicsError("piecewise arrival needs segments RATE@SECONDS, rate >= 0")

    def with_rate(self, rate: float) -> Arrival:
        return replace(self, rate=rate)

    def sample(self, n: int, rng: np.random.Generator) -> F:
        if self.kind == "burst":
            return np.zeros(n)
        gaps = self._gaps(n, rng)
        unit = np.cumsum(gaps) - gaps[0]  # the first request arrives at t = 0
        return self._scale(unit)

    def _gaps(self, n: int, rng: np.random.Generator) -> F:
        if self.kind == "constant":
            return np.ones(n)
        if self.kind == "gamma":
            k = 1.0 / self.cv**2  # shape; mean gap k * theta = 1
            return rng.gamma(k, 1.0 / k, size=n)
        return rng.exponential(1.0, size=n)

    def _scale(self, unit: F) -> F:
        if self.kind == "piecewise":
            return _time_rescale(unit / self.rate, self.profile)
        return unit / self.rate

    def sample_chunk(self, n: int, rng: np.random.Generator, start: float) -> tuple[F, float]:
        """The next ``n`` arrivals of a stream whose unit-rate clock stands at ``start``
        (``nan`` for the first chunk: the first request arrives at t = 0); returns the
        arrival times and the clock after them."""
        if self.kind == "burst":
            return np.zeros(n), 0.0
        gaps = self._gaps(n, rng)
        unit = np.cumsum(gaps) + ((-gaps[0]) if math.isnan(start) else start)
        return self._scale(unit), float(unit[-1])


def _time_rescale(t_mean: F, profile: tuple[tuple[float, float], ...]) -> F:
    """Map arrival times of a rate-1-scaled process onto a piecewise-constant intensity with
    the same mean (inverse of the cumulative intensity, Cinlar's time-rescaling)."""
    rel = np.array([r for r, _ in profile], dtype=np.float64)
    dur = np.array([d for _, d in profile], dtype=np.float64)
    period = dur.sum()
    rel = rel / (rel @ dur / period)  # mean relative rate 1
    cum = np.concatenate(([0.0], np.cumsum(rel * dur)))  # cumulative intensity over a period
    cycles = np.floor(t_mean / period)
    frac = t_mean - cycles * period  # intensity mass inside the current cycle
    # side="right" steps over zero-rate segments (no intensity mass there)
    seg = np.clip(np.searchsorted(cum, frac, side="right") - 1, 0, len(dur) - 1)
    starts = np.concatenate(([0.0], np.cumsum(dur)))[:-1]
    within = (frac - cum[seg]) / np.where(rel[seg] > 0, rel[seg], 1.0)
    return np.asarray(cycles * period + starts[seg] + within, dtype=np.float64)


@dataclass(frozen=True, kw_only=True)
class Lengths:
    """Token-count distribution (always >= 1 token)."""

    kind: str = "fixed"
    params: tuple[float, ...] = (128.0,)
    """fixed: (n,); uniform: (lo, hi); lognormal: (mean, sigma[, max]); empirical: values"""
    min: float = 1.0
    """smallest length drawn (tokens); draws below it are raised to it"""
    rounding: str = "floor"
    """how a continuous draw becomes a token count: ``floor`` (uniform LO..HI gives every
    integer in [LO, HI] equally often; CLI and validation workloads) or ``nearest`` (unbiased:
    the sample mean is the distribution's mean; plan specs, whose lengths are means)"""

    def __post_init__(self) -> None:
        need = {"fixed": (1, 1), "uniform": (2, 2), "lognormal": (2, 3), "empirical": (1, 10**7)}
        if self.kind not in LENGTHS:
            raise SiliconomicsError(f"length distribution '{self.kind}': allowed: {LENGTHS}")
        lo, hi = need[self.kind]
        if not lo <= len(self.params) <= hi:
            raise SiliconomicsError(f"'{self.kind}' takes {lo}-{hi} parameters: {self.params}")
        if any(not (p > 0 and math.isfinite(p)) for p in self.params):
            raise SiliconomicsError(f"'{self.kind}' parameters must be > 0: {self.params}")
        if self.kind == "uniform" and self.params[1] < self.params[0]:
            raise SiliconomicsError(f"uniform:LO,HI needs LO <= HI, got {self.params}")
        if self.kind == "lognormal" and self.params[1] > MAX_LOG_SIGMA:
            # SIGMA is the spread of ln(length); a large one puts almost every sample at 1
            # token while the mean hides in a vanishing tail (lognormal:1000,50 -> median 0)
            sd = self.params[0] * math.sqrt(math.expm1(MAX_LOG_SIGMA**2))
            raise SiliconomicsError(
                f"lognormal:MEAN,SIGMA: SIGMA is the standard deviation of ln(length), at most "
                f"{MAX_LOG_SIGMA:g} (typical 0.3-1.5), got {self.params[1]:g}; for a spread of "
                f"S tokens use SIGMA = sqrt(ln(1 + (S/MEAN)^2)) (SIGMA {MAX_LOG_SIGMA:g} is "
                f"S = {sd:,.0f} at this mean)"
            )
        if not self.min >= 1:
            raise SiliconomicsError(f"smallest length must be >= 1 token, got {self.min}")
        if self.rounding not in ("floor", "nearest"):
            raise SiliconomicsError(f"rounding '{self.rounding}': allowed: floor, nearest")

    @property
    def mean(self) -> float:
        p = self.params
        if self.kind == "fixed":
            return p[0]
        if self.kind == "uniform":
            return (p[0] + p[1]) / 2
        if self.kind == "empirical":
            return float(np.mean(p))
        return p[0]  # lognormal: the mean parameter (before clipping)

    @property
    def max(self) -> float:
        p = self.params
        if self.kind == "lognormal":
            return p[2] if len(p) > 2 else float(np.exp(_mu(p) + 4.0 * p[1]))
        return max(p)

    def sample(self, n: int, rng: np.random.Generator) -> I64:
        """``n`` token counts drawn with ``rng`` (the project's one length sampler)."""
        p = self.params
        nearest = self.rounding == "nearest"
        if self.kind == "fixed":
            x = np.full(n, p[0])
        elif self.kind == "uniform":
            x = rng.uniform(p[0], p[1] if nearest else p[1] + 1.0, size=n)
        elif self.kind == "empirical":
            x = rng.choice(np.asarray(p), size=n)
        else:
            x = rng.lognormal(_mu(p), p[1], size=n)
            if len(p) > 2:
                x = np.minimum(x, p[2])
        return np.maximum(np.round(x) if nearest else np.floor(x), self.min).astype(np.int64)


def _mu(p: tuple[float, ...]) -> float:
    """Lognormal location for a given mean and sigma: mean = exp(mu + sigma^2 / 2)."""
    return math.log(p[0]) - p[1] ** 2 / 2


@dataclass(frozen=True, kw_only=True)
class JointLengths:
    """Joint (input, output) histogram with integer bin edges (named traces)."""

    in_edges: tuple[int, ...]
    out_edges: tuple[int, ...]
    counts: tuple[tuple[int, ...], ...]
    """counts[i][j]: requests with input in bin i and output in bin j"""

    def sample(self, n: int, rng: np.random.Generator) -> tuple[I64, I64]:
        c = np.asarray(self.counts, dtype=np.float64)
        cell = rng.choice(c.size, size=n, p=(c / c.sum()).ravel())
        i, j = np.divmod(cell, c.shape[1])
        ie, oe = np.asarray(self.in_edges), np.asarray(self.out_edges)
        inp = rng.integers(ie[i], np.maximum(ie[i + 1], ie[i] + 1))
        out = rng.integers(oe[j], np.maximum(oe[j + 1], oe[j] + 1))
        return inp.astype(np.int64), out.astype(np.int64)

    def means(self) -> tuple[float, float]:
        c = np.asarray(self.counts, dtype=np.float64)
        ie, oe = np.asarray(self.in_edges, float), np.asarray(self.out_edges, float)
        mi, mo = (ie[:-1] + ie[1:] - 1) / 2, (oe[:-1] + oe[1:] - 1) / 2
        return float(c.sum(1) @ mi / c.sum()), float(c.sum(0) @ mo / c.sum())


@dataclass(frozen=True, kw_only=True)
class Workload:
    """``n_requests`` requests: arrivals from ``arrival``, lengths from ``input``/``output``
    (or ``joint``), or a replayed ``trace`` (tiled end to end when more requests are asked
    for than it holds; time-scaled by ``with_rate``)."""

    arrival: Arrival = Arrival()
    input: Lengths = Lengths(params=(1024.0,))
    output: Lengths = Lengths(params=(256.0,))
    n_requests: int = 1000
    joint: JointLengths | None = None
    trace: Requests | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.n_requests, int) or self.n_requests < 1:
            raise SiliconomicsError(f"requests must be a positive integer, got {self.n_requests}")

    @property
    def mean_input(self) -> float:
        if self.trace is not None:
            return float(np.mean(self.trace.input_tokens))
        return self.joint.means()[0] if self.joint else self.input.mean

    @property
    def mean_output(self) -> float:
        if self.trace is not None:
            return float(np.mean(self.trace.output_tokens))
        return self.joint.means()[1] if self.joint else self.output.mean

    @property
    def max_context(self) -> float:
        if self.trace is not None:
            return float(np.max(self.trace.input_tokens + self.trace.output_tokens))
        if self.joint is not None:
            return float(self.joint.in_edges[-1] + self.joint.out_edges[-1])
        return self.input.max + self.output.max

    def with_rate(self, rate: float) -> Workload:
        if self.trace is not None:
            t = self.trace
            span = float(t.arrival_s[-1] - t.arrival_s[0]) or 1.0
            scale = (len(t) / span) / rate
            new = Requests(
                arrival_s=(t.arrival_s - t.arrival_s[0]) * scale,
                input_tokens=t.input_tokens,
                output_tokens=t.output_tokens,
            )
            return replace(self, trace=new, arrival=self.arrival.with_rate(rate))
        return replace(self, arrival=self.arrival.with_rate(rate))

    def with_requests(self, n: int) -> Workload:
        return replace(self, n_requests=n)

    def chunks(self, rng: np.random.Generator, size: int = 1 << 16) -> Iterator[Requests]:
        """The workload in chunks of ``size`` requests, drawn one chunk at a time (memory
        O(size) whatever ``n_requests``): the same distributions as :meth:`sample`, but not
        the same draws for a given seed (the draws interleave chunk by chunk)."""
        n = self.n_requests
        clock = math.nan
        for lo in range(0, n, size):
            k = min(size, n - lo)
            if self.trace is not None:
                yield _tile(self.trace, n, lo, lo + k)
                continue
            arr, clock = self.arrival.sample_chunk(k, rng, clock)
            if self.joint is not None:
                inp, out = self.joint.sample(k, rng)
            else:
                inp, out = self.input.sample(k, rng), self.output.sample(k, rng)
            yield Requests(arrival_s=arr, input_tokens=inp, output_tokens=out)

    def sample(self, rng: np.random.Generator) -> Requests:
        n = self.n_requests
        if self.trace is not None:
            return _tile(self.trace, n)
        arr = self.arrival.sample(n, rng)
        if self.joint is not None:
            inp, out = self.joint.sample(n, rng)
        else:
            inp, out = self.input.sample(n, rng), self.output.sample(n, rng)
        return Requests(arrival_s=arr, input_tokens=inp, output_tokens=out)


def _tile(t: Requests, n: int, lo: int = 0, hi: int | None = None) -> Requests:
    """Requests ``lo..hi`` of the trace tiled end to end to ``n`` requests"""
    span = float(t.arrival_s[-1] - t.arrival_s[0])
    gap = span / max(len(t) - 1, 1)
    k = np.arange(lo, n if hi is None else hi)
    offs = (k // len(t)) * (span + gap)
    idx = k % len(t)
    return Requests(
        arrival_s=t.arrival_s[idx] - t.arrival_s[0] + offs,
        input_tokens=t.input_tokens[idx],
        output_tokens=t.output_tokens[idx],
    )


def _numbers(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise SiliconomicsError(f"{what}: cannot read numbers from '{text}'") from None


def parse_lengths(text: str, *, what: str = "length") -> Lengths:
    """``"512"``, ``"fixed:512"``, ``"uniform:100,2000"``, ``"lognormal:1000,0.8"``, ..."""
    kind, sep, rest = text.strip().partition(":")
    if not sep:
        try:
            return Lengths(kind="fixed", params=(float(kind),))
        except ValueError:
            pass
        raise SiliconomicsError(
            f"{what} '{text}': expected a token count or KIND:PARAMS with KIND one of "
            f"{', '.join(LENGTHS)} (e.g. lognormal:1000,0.8)"
        )
    return Lengths(kind=kind, params=_numbers(rest, what))


def parse_arrival(text: str, rate: float) -> Arrival:
    """``"poisson"``, ``"gamma:2"``, ``"constant"``, ``"burst"``, ``"piecewise:1@60,3@60"``."""
    kind, _, rest = text.strip().partition(":")
    if kind == "gamma":
        cv = _numbers(rest, "--arrival gamma:CV")
        if len(cv) != 1:
            raise SiliconomicsError("--arrival gamma:CV takes one number (gap CV)")
        return Arrival(kind="gamma", rate=rate, cv=cv[0])
    if kind == "piecewise":
        segs = []
        for item in rest.split(","):
            r, sep, d = item.partition("@")
            nums = _numbers(f"{r},{d}", "--arrival piecewise:RATE@SECONDS,...")
            if not sep or len(nums) != 2:
                raise SiliconomicsError(f"--arrival piecewise: bad segment '{item}'")
            segs.append((nums[0], nums[1]))
        return Arrival(kind="piecewise", rate=rate, profile=tuple(segs))
    return Arrival(kind=kind, rate=rate)

"""Request lengths of a workload and their buckets.

Lengths come from a trace (every request) or are drawn from the spec's distributions with a
seeded generator (``N_SAMPLES`` requests). Requests are bucketed by prompt length, as in
Mélange (Griggs et al. 2024, "Mélange: Cost efficient LLM serving by exploiting GPU
heterogeneity"): each bucket can go to a different chip type. Each bucket keeps its share of
requests, mean lengths (for throughput) and the SLO-percentile lengths (for latency).
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..errors import SiliconomicsError
from .spec import Lengths, Workload

F = NDArray[np.float64]
N_SAMPLES = 20_000


@dataclass(frozen=True, kw_only=True)
class Bucket:
    """Requests of one workload whose prompt length falls in [lo, hi)."""

    workload: str
    index: int
    lo: float
    hi: float
    share: float
    """fraction of the workload's requests"""
    rate_rps: float
    mean_input: float
    mean_output: float
    p_input: float
    """prompt length at the SLO percentile within the bucket"""
    p_output: float

    @property
    def label(self) -> str:
        hi = "inf" if not np.isfinite(self.hi) else f"{self.hi:.0f}"
        return f"{self.workload}[{self.lo:.0f}-{hi})"


@dataclass(frozen=True, kw_only=True)
class Traffic:
    """Sampled lengths and the request rate of one workload."""

    input_len: F
    output_len: F
    rate_rps: float
    arrivals: F | None = None
    """arrival times (s) from a trace, if it has them"""


def _draw(d: Lengths, n: int, rng: np.random.Generator) -> F:
    if d.dist == "fixed":
        x = np.full(n, d.mean)
    elif d.dist == "uniform":
        hi = d.max if d.max is not None else 2 * d.mean - d.min
        x = rng.uniform(d.min, max(hi, d.min), n)
    else:
        mu = np.log(d.mean) - d.sigma**2 / 2.0  # so that E[x] = mean before clipping
        x = rng.lognormal(mu, d.sigma, n)
    return np.clip(np.round(x), d.min, d.max if d.max is not None else np.inf)


def read_trace(path: str) -> tuple[F, F, F | None]:
    """(prompt, answer, arrival) columns of a request trace CSV."""
    p = Path(path)
    if not p.is_file():
        raise SiliconomicsError(f"trace '{path}' does not exist")
    with p.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SiliconomicsError(f"trace '{p.name}' has no rows")
    cols = rows[0].keys()
    names = [("num_prefill_tokens", "num_decode_tokens"), ("input_len", "output_len")]
    pair = next((n for n in names if n[0] in cols and n[1] in cols), None)
    if pair is None:
        raise SiliconomicsError(
            f"trace '{p.name}': needs columns num_prefill_tokens and num_decode_tokens "
            f"(or input_len and output_len); found {', '.join(cols)}"
        )
    i = np.array([float(r[pair[0]]) for r in rows])
    o = np.array([float(r[pair[1]]) for r in rows])
    t = np.array([float(r["arrived_at"]) for r in rows]) if "arrived_at" in cols else None
    return np.maximum(i, 1.0), np.maximum(o, 1.0), t


def traffic(w: Workload, seed: int) -> Traffic:
    """Lengths and rate of a workload (trace rate unless ``rate_rps`` overrides it)."""
    if w.trace is not None:
        i, o, t = read_trace(w.trace)
        rate = w.rate_rps
        if rate is None:
            if t is None or len(t) < 2 or t[-1] <= t[0]:
                raise SiliconomicsError(
                    f"workload '{w.label}': the trace has no arrival times; give rate_rps"
                )
            rate = (len(t) - 1) / float(t[-1] - t[0])
        return Traffic(input_len=i, output_len=o, rate_rps=rate, arrivals=t)
    assert w.input is not None and w.output is not None and w.rate_rps is not None
    rng = np.random.default_rng(seed)
    return Traffic(
        input_len=_draw(w.input, N_SAMPLES, rng),
        output_len=_draw(w.output, N_SAMPLES, rng),
        rate_rps=w.rate_rps,
    )


def make_buckets(w: Workload, t: Traffic, n_buckets: int) -> list[Bucket]:
    """Bucket requests by prompt length at the spec's edges or at equal-count quantiles."""
    if w.bucket_edges is not None:
        inner = sorted(w.bucket_edges)
    else:
        qs = np.linspace(0, 1, n_buckets + 1)[1:-1]
        inner = sorted(set(np.quantile(t.input_len, qs).round().tolist()))
    edges = [0.0, *inner, np.inf]
    pct = w.slo.percentile / 100.0
    out: list[Bucket] = []
    for lo, hi in itertools.pairwise(edges):
        m = (t.input_len >= lo) & (t.input_len < hi)
        if not m.any():
            continue
        i, o = t.input_len[m], t.output_len[m]
        share = float(m.mean())
        out.append(
            Bucket(
                workload=w.label,
                index=len(out),
                lo=float(lo),
                hi=float(hi),
                share=share,
                rate_rps=share * t.rate_rps,
                mean_input=float(i.mean()),
                mean_output=float(o.mean()),
                p_input=float(np.quantile(i, pct)),
                p_output=float(np.quantile(o, pct)),
            )
        )
    return out

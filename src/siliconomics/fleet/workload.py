"""Request lengths of a workload and their buckets.

Lengths come from a trace (every request; the edge reads it with the project's one trace
reader) or are drawn from the spec's distributions with a seeded generator (``N_SAMPLES``
requests) by the project's one sampler (:meth:`siliconomics.serving.Lengths.sample`). Requests are bucketed by prompt length, as in
Mélange (Griggs et al. 2024, "Mélange: Cost efficient LLM serving by exploiting GPU
heterogeneity"): each bucket can go to a different chip type. Each bucket keeps its share of
requests, mean lengths (for throughput) and the SLO-percentile lengths (for latency).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..errors import SiliconomicsError
from ..serving.workload import Requests
from .spec import Workload

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


def traffic(w: Workload, seed: int, trace: Requests | None = None) -> Traffic:
    """Lengths and rate of a workload: its ``trace`` (read by the edge with
    :func:`siliconomics.serving.traces.parse_trace_csv`; its own rate unless ``rate_rps``
    overrides it), or ``N_SAMPLES`` draws of its length distributions."""
    if w.trace is not None:
        if trace is None:
            raise SiliconomicsError(f"workload '{w.label}': trace '{w.trace}' was not read")
        rate = w.rate_rps
        t = trace.arrival_s
        if rate is None:
            if len(t) < 2 or t[-1] <= t[0]:
                raise SiliconomicsError(
                    f"workload '{w.label}': the trace has no arrival times; give rate_rps"
                )
            rate = (len(t) - 1) / float(t[-1] - t[0])
        return Traffic(
            input_len=trace.input_tokens.astype(np.float64),
            output_len=trace.output_tokens.astype(np.float64),
            rate_rps=rate,
            arrivals=t,
        )
    assert w.input is not None and w.output is not None and w.rate_rps is not None
    rng = np.random.default_rng(seed)
    return Traffic(
        input_len=w.input.to_lengths().sample(N_SAMPLES, rng).astype(np.float64),
        output_len=w.output.to_lengths().sample(N_SAMPLES, rng).astype(np.float64),
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

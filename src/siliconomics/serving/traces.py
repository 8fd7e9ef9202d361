"""Request traces: replay from CSV text, and named workloads packaged as summaries.

CSV (header required): ``arrived_at`` (or ``arrival_s``/``arrival_time``), seconds;
``num_prefill_tokens`` (or ``input_tokens``); ``num_decode_tokens`` (or ``output_tokens``).
Files without an arrival column (e.g. length statistics) replay as lengths with arrivals
drawn from the workload's arrival process. The caller opens the file; this module reads a text
stream (the core does no file IO).

Named workloads (``azure-conv``, ``azure-code``, ``arxiv-summarization``) are summaries of the
public Azure LLM inference traces (Splitwise, ISCA'24; November 2023, conversation and coding
services) and of an arXiv summarisation length set, as redistributed by microsoft/vidur (MIT
licence, ``data/LICENSE-vidur-data.txt``). Each summary (``data/<name>.json``, written by
``scripts/summarize_traces.py``) holds a joint histogram of (input, output) tokens on
log-spaced integer bins, the mean arrival rate and the coefficient of variation of the gaps:
a named workload samples lengths from the histogram and arrivals from a gamma process with
that CV (at the trace's rate unless a rate is given). Replay the real trace file for exact
arrival times.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from functools import cache
from importlib import resources

import numpy as np

from ..errors import SiliconomicsError, UnknownIdError
from .workload import Arrival, JointLengths, Lengths, Requests, Workload

_ARRIVAL = ("arrived_at", "arrival_s", "arrival_time", "timestamp")
_INPUT = ("num_prefill_tokens", "input_tokens", "prompt_tokens", "input_len")
_OUTPUT = ("num_decode_tokens", "output_tokens", "completion_tokens", "output_len")

NAMED = ("azure-conv", "azure-code", "arxiv-summarization")


def _col(header: list[str], names: tuple[str, ...]) -> int | None:
    low = [h.strip().lower() for h in header]
    for n in names:
        if n in low:
            return low.index(n)
    return None


def parse_trace_csv(lines: Iterable[str], *, where: str = "trace") -> Requests:
    """Read a request trace from CSV text; rows are sorted by arrival time."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if not header:
        raise SiliconomicsError(f"{where}: empty file")
    ia, ii, io = _col(header, _ARRIVAL), _col(header, _INPUT), _col(header, _OUTPUT)
    if ii is None or io is None:
        raise SiliconomicsError(
            f"{where}: needs columns for input tokens ({' or '.join(_INPUT)}) and output "
            f"tokens ({' or '.join(_OUTPUT)}); found {', '.join(header)}"
        )
    arr, inp, out = [], [], []
    for n, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            arr.append(float(row[ia]) if ia is not None else 0.0)
            inp.append(int(float(row[ii])))
            out.append(int(float(row[io])))
        except (ValueError, IndexError):
            raise SiliconomicsError(f"{where} line {n}: not numbers: {row}") from None
    if not arr:
        raise SiliconomicsError(f"{where}: no requests")
    a, i, o = np.asarray(arr), np.asarray(inp, np.int64), np.asarray(out, np.int64)
    if np.any(i < 1) or np.any(o < 1):
        raise SiliconomicsError(f"{where}: token counts must be >= 1")
    order = np.argsort(a, kind="stable")
    return Requests(arrival_s=a[order] - a[order][0], input_tokens=i[order], output_tokens=o[order])


def trace_workload(
    trace: Requests, *, n_requests: int | None = None, rate: float | None = None, name: str = ""
) -> Workload:
    """Replay ``trace``; a trace without arrival times gets Poisson arrivals at ``rate``."""
    n = n_requests or len(trace)
    if np.all(trace.arrival_s == 0):
        # Lengths only: Poisson at ``rate``, or an offline run (all at once) without one.
        arrival = Arrival(kind="burst") if rate is None else Arrival(kind="poisson", rate=rate)
        return Workload(
            arrival=arrival,
            input=_empirical(trace.input_tokens),
            output=_empirical(trace.output_tokens),
            n_requests=n,
            name=name,
        )
    w = Workload(trace=trace, n_requests=n, name=name)
    return w.with_rate(rate) if rate is not None else w


def _empirical(x: np.ndarray) -> Lengths:
    return Lengths(kind="empirical", params=tuple(float(v) for v in x))


@cache
def _summary(name: str) -> dict[str, object]:
    if name not in NAMED:
        raise UnknownIdError("trace", name, NAMED, listing=f"named traces: {', '.join(NAMED)}")
    path = resources.files("siliconomics.serving") / "data" / f"{name}.json"
    data: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return data


def named_workload(name: str, *, n_requests: int = 1000, rate: float | None = None) -> Workload:
    """A packaged trace summary as a workload (lengths from its joint histogram, gamma
    arrivals with its gap CV at its mean rate, or at ``rate``)."""
    s = _summary(name)
    joint = JointLengths(
        in_edges=tuple(s["input_edges"]),  # type: ignore[arg-type]
        out_edges=tuple(s["output_edges"]),  # type: ignore[arg-type]
        counts=tuple(tuple(r) for r in s["counts"]),  # type: ignore[attr-defined]
    )
    trace_rate = s.get("rate_per_s")
    cv = float(s.get("gap_cv") or 1.0)  # type: ignore[arg-type]
    r = rate if rate is not None else trace_rate
    arrival = Arrival(kind="burst") if r is None else Arrival(kind="gamma", rate=float(r), cv=cv)  # type: ignore[arg-type]
    return Workload(arrival=arrival, joint=joint, n_requests=n_requests, name=name)


def summary_provenance(name: str) -> str:
    return str(_summary(name).get("source", ""))

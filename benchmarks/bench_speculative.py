"""Serving simulator with speculative decoding: simulated requests per wall-clock second with
and without MTP drafts, measured in one run.

    .venv/bin/python benchmarks/bench_speculative.py [--requests 20000] [--repeats 3]

DeepSeek-R1 on one 8 x H200 replica (TP8/EP8, FP8 weights, activations and KV cache), Poisson
arrivals at 3 requests/s, prompts lognormal around 1,000 tokens and answers around 1,000,
chunked prefill. Without drafts the run takes the compiled event core (when numba is installed);
with ``--mtp 3 --accepted 2.82`` it takes the Python loop one decode step at a time
(docs/SERVING.md, "Speculative decoding"). A 200-request warm-up builds the step-time tables
before timing; each figure is min/median/max over ``--repeats``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from siliconomics import api

KW = dict(
    tp=8,
    ep=8,
    weights_dtype="fp8",
    act_dtype="fp8",
    kv_dtype="fp8",
    input_len="lognormal:1000,0.5",
    output_len="lognormal:1000,0.6",
    rate=3.0,
)


def run(
    n: int, repeats: int, mtp: int | None, accepted: float | None
) -> tuple[list[float], object]:
    api.simulate("deepseek-r1", "h200-sxm", requests=200, mtp=mtp, accepted=accepted, **KW)
    times, res = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = api.simulate("deepseek-r1", "h200-sxm", requests=n, mtp=mtp, accepted=accepted, **KW)
        times.append(time.perf_counter() - t0)
    return times, res.value  # type: ignore[union-attr]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    rows = {}
    for name, mtp, acc in (("no drafts", None, None), ("MTP 3 @ 2.82", 3, 2.82)):
        times, r = run(a.requests, a.repeats, mtp, acc)
        rows[name] = min(times)
        rates = sorted(a.requests / t for t in times)
        print(
            f"{name:>13}: {rates[-1]:>9,.0f} / {statistics.median(rates):,.0f} / {rates[0]:,.0f} "
            f"simulated requests per second (best / median / worst); {r.pools[0].steps:,} steps, "
            f"TPOT mean {r.tpot.mean * 1e3:.1f} ms, {r.output_tokens_per_s:,.0f} output tok/s"
        )
    ratio = rows["MTP 3 @ 2.82"] / rows["no drafts"]
    print(f"speculative run takes {ratio:.1f}x the wall time of the plain run (best against best)")


if __name__ == "__main__":
    main()

"""Serving simulator speed: simulated requests per wall-clock second, vs vidur.

    .venv/bin/python benchmarks/bench_serving.py [--requests 100000] [--replicas 16]

Scenario: Llama-3.1-8B (bf16) on 16 x H100 SXM (TP1), 100,000 requests with Poisson arrivals
at 80 requests/s, prompt/answer lengths drawn jointly from the Azure LLM conversation trace
(Splitwise; the packaged summary ``azure-conv``), chunked prefill, least-outstanding-tokens
routing. The time is the best of ``--repeats`` runs of ``simulate`` in one process (one core),
after a warm-up run that builds the step-time tables.

vidur (microsoft/vidur, MLSys 2024) runs in its own venv ``.bench-venv-vidur`` (git-ignored;
``python3 -m venv .bench-venv-vidur && .bench-venv-vidur/bin/pip install vidur==0.0.26``). Its
current PyPI release downloads its GPU profiling data (compute, attention and network timings)
from Hugging Face datasets at start-up; where that is impossible (no network, no local copy)
this script says so and prints no vidur number or ratio.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from siliconomics.catalog.registry import get_model
from siliconomics.serving import Arrival, Workload, named_workload, simulate
from siliconomics.serving.spec import make_config

ROOT = Path(__file__).resolve().parents[1]
VIDUR_PY = ROOT / ".bench-venv-vidur/bin/python"


def ours(n: int, replicas: int, rate: float, repeats: int) -> tuple[float, str]:
    cfg = make_config(get_model("llama-3.1-8b"), "h100-sxm", replicas=replicas)
    # Lengths of the Azure conversation trace; Poisson arrivals (the same in vidur).
    joint = named_workload("azure-conv").joint
    w = Workload(arrival=Arrival(kind="poisson", rate=rate), joint=joint, n_requests=n)
    simulate(cfg, w.with_requests(2000), seed=0)  # warm-up: step-time tables, imports
    best = np.inf
    res = None
    for k in range(repeats):
        t0 = time.perf_counter()
        res = simulate(cfg, w, seed=k)
        best = min(best, time.perf_counter() - t0)
    assert res is not None and res.n_requests == n
    p = res.pools[0]
    summary = (
        f"TTFT p50/p99 {res.ttft.p50 * 1e3:.0f}/{res.ttft.p99 * 1e3:.0f} ms, TPOT p50/p99 "
        f"{res.tpot.p50 * 1e3:.1f}/{res.tpot.p99 * 1e3:.1f} ms, {res.output_tokens_per_s:,.0f} "
        f"output tok/s, busy {p.utilisation:.0%}, mean batch {p.mean_batch:.1f}, "
        f"{p.steps:,} engine steps"
    )
    return best, summary


VIDUR_SCRIPT = """
import sys, time
sys.argv = ["vidur"] + sys.argv[1:]
from vidur.config import SimulationConfig
from vidur.simulator import Simulator
cfg = SimulationConfig.create_from_cli_args()
sim = Simulator(cfg)
t0 = time.perf_counter()
sim.run()
print("VIDUR_RUN_S", time.perf_counter() - t0)
"""


def vidur(n: int, replicas: int, rate: float, trace: Path) -> tuple[float | None, str]:
    if not VIDUR_PY.exists():
        return None, (
            "not installed: python3 -m venv .bench-venv-vidur && "
            ".bench-venv-vidur/bin/pip install vidur==0.0.26"
        )
    args = [
        "--replica_config_model_name", "meta-llama/Llama-3-8B",
        "--replica_config_device", "h100",
        "--cluster_config_num_replicas", str(replicas),
        "--replica_config_tensor_parallel_size", "1",
        "--request_generator_config_type", "synthetic",
        "--synthetic_request_generator_config_num_requests", str(n),
        "--interval_generator_config_type", "poisson",
        "--poisson_request_interval_generator_config_qps", str(rate),
        "--length_generator_config_type", "trace",
        "--trace_request_length_generator_config_trace_file", str(trace),
        "--global_scheduler_config_type", "lor",
        "--replica_scheduler_config_type", "sarathi",
        "--sarathi_scheduler_config_chunk_size", "8192",
        "--no-metrics_config_write_metrics",
    ]  # fmt: skip
    try:
        r = subprocess.run(
            [str(VIDUR_PY), "-c", VIDUR_SCRIPT, *args],
            capture_output=True,
            text=True,
            timeout=3600,
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
        )
    except subprocess.TimeoutExpired:
        return None, "timed out after 1 h"
    for line in r.stdout.splitlines():
        if line.startswith("VIDUR_RUN_S"):
            secs = float(line.split()[1])
            return secs, "simulation loop only (profiling and model fits excluded)"
    tail = (r.stderr or r.stdout).strip().splitlines()
    reason = next(
        (x for x in reversed(tail) if "Error" in x or "error" in x), tail[-1] if tail else "?"
    )
    return None, reason.strip()[:300]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--replicas", type=int, default=16)
    ap.add_argument("--rate", type=float, default=80.0, help="requests/s, whole cluster")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--no-vidur", action="store_true")
    args = ap.parse_args()
    n = args.requests
    print(
        f"scenario: {n:,} requests, {args.replicas} x H100 (TP1) Llama-3.1-8B, Poisson "
        f"{args.rate:g} req/s, Azure conversation lengths, chunked prefill"
    )
    t, summary = ours(n, args.replicas, args.rate, args.repeats)
    print(f"siliconomics: {t:.2f} s = {n / t:,.0f} simulated requests/s (best of {args.repeats})")
    print(f"  {summary}")
    print(f"  goal: {n:,} requests in < 10 s on one core: {'met' if t < 10 else 'NOT met'}")
    if args.no_vidur:
        return
    trace = args.shared / "data/traces/splitwise_conv.csv"
    tv, note = vidur(n, args.replicas, args.rate, trace)
    if tv is None:
        print(f"vidur: COULD NOT RUN ({note}); no ratio")
        return
    print(f"vidur 0.0.26: {tv:.2f} s = {n / tv:,.0f} simulated requests/s ({note})")
    print(f"ratio (same run): siliconomics is {tv / t:.1f}x faster than vidur (goal >= 20x)")


if __name__ == "__main__":
    sys.exit(main())

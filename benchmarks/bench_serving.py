"""Serving simulator speed: simulated requests per wall-clock second, vs vidur.

    .venv/bin/python benchmarks/bench_serving.py [--requests 100000] [--replicas 16]

Scenario: Llama-3.1-8B (bf16) on 16 x H100 SXM (TP1), 100,000 requests with Poisson arrivals
at 80 requests/s, prompt/answer lengths drawn jointly from the Azure LLM conversation trace
(Splitwise; the packaged summary ``azure-conv``), chunked prefill, least-outstanding-tokens
routing. The time is the best of ``--repeats`` runs of ``simulate`` in one process (one core),
after a warm-up run that builds the step-time tables.

vidur (microsoft/vidur, MLSys 2024) runs in its own venv ``.bench-venv-vidur`` (git-ignored;
``python3 -m venv .bench-venv-vidur && .bench-venv-vidur/bin/pip install vidur==0.0.26``) through
``_vidur_driver.py``. Its PyPI release fetches its GPU profiling tables from Hugging Face at
start-up; here, offline (``HF_HUB_OFFLINE=1``), ``_vidur_data.py`` writes them into vidur's cache
as local snapshots: vidur's own measured H100 MLP and NCCL tables from ``shared/data/measured-ops``
and a synthetic attention table from siliconomics' roofline attention op (it changes vidur's
predicted latencies, not its simulation speed). vidur runs Llama-2-7B (the ~7B model with
measured H100 data), Sarathi chunked prefill (8192-token chunks), round-robin routing (vidur's
``lor`` sends every request to replica 0 while queues are empty, overloads it, and 0.0.26 then
fails an assertion after the first preemption), Poisson arrivals at the same rate, lengths
resampled from the same trace, metrics writing off. Its start-up (predictor training, request
generation) and its simulation loop are timed separately; the ratio compares simulated
requests per second of the simulation alone. vidur simulates ``--vidur-requests`` (default
20,000; 100,000 take about 8 min at about the same rate per request).
Trained predictors are kept in ``--vidur-cache`` (inside the git-ignored venv); ``--vidur-cold``
times a fresh training. If vidur cannot run, the script says why and prints no ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import _vidur_data
from _vidur_data import VidurInputs
from siliconomics import resolve
from siliconomics.catalog.registry import get_model
from siliconomics.parallel.plan import InferencePlan
from siliconomics.serving import Arrival, Workload, named_workload, simulate
from siliconomics.serving.config import PoolConfig
from siliconomics.serving.spec import make_config

ROOT = Path(__file__).resolve().parents[1]
VIDUR_PY = ROOT / ".bench-venv-vidur/bin/python"


def ours(n: int, replicas: int, rate: float, repeats: int) -> tuple[float, str]:
    cfg = make_config(
        get_model("llama-3.1-8b"),
        PoolConfig(device=resolve.device("h100-sxm"), plan=InferencePlan(replicas=replicas)),
    )
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


VIDUR_DRIVER = ROOT / "benchmarks/_vidur_driver.py"
_OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "WANDB_MODE": "disabled",
}
MAX_TOKENS = 16384  # request length cap and vidur's prediction range (trace max: 14,089)
CHUNK = 8192  # tokens per step (our max_batched_tokens, Sarathi's chunk_size)
MAX_BATCH = 128  # vidur's batch_size_cap and prediction_max_batch_size defaults


def vidur_args(n: int, replicas: int, rate: float, inp: VidurInputs, out: Path) -> list[str]:
    rf = "--random_forrest_execution_time_predictor_config_"
    return [
        "--seed", "0",
        "--log_level", "warning",
        "--replica_config_model_name", _vidur_data.MODEL,
        "--replica_config_device", "h100",
        "--replica_config_network_device", _vidur_data.NETWORK,
        "--replica_config_tensor_parallel_size", "1",
        "--replica_config_num_pipeline_stages", "1",
        "--cluster_config_num_replicas", str(replicas),
        "--request_generator_config_type", "synthetic",
        "--synthetic_request_generator_config_num_requests", str(n),
        "--synthetic_request_generator_config_max_tokens", str(MAX_TOKENS),
        "--interval_generator_config_type", "poisson",
        "--poisson_request_interval_generator_config_qps", str(rate),
        "--length_generator_config_type", "trace",
        "--trace_request_length_generator_config_trace_file", str(inp.lengths_csv),
        "--trace_request_length_generator_config_max_tokens", str(MAX_TOKENS),
        "--global_scheduler_config_type", "round_robin",
        "--replica_scheduler_config_type", "sarathi",
        "--sarathi_scheduler_config_chunk_size", str(CHUNK),
        "--sarathi_scheduler_config_batch_size_cap", str(MAX_BATCH),
        "--execution_time_predictor_config_type", "random_forrest",
        rf + "cache_dir", str(inp.cache_dir),
        rf + "model_profiling_dataset", inp.compute_dataset,
        rf + "network_profiling_dataset", inp.network_dataset,
        rf + "prediction_max_tokens_per_request", str(MAX_TOKENS),
        rf + "prediction_max_prefill_chunk_size", str(CHUNK),
        rf + "prediction_max_batch_size", str(MAX_BATCH),
        "--no-metrics_config_write_metrics",
        "--no-metrics_config_enable_chrome_trace",
        "--metrics_config_output_dir", str(out),
    ]  # fmt: skip


def vidur(
    n: int, replicas: int, rate: float, shared: Path, cache: Path, timeout: float
) -> tuple[dict[str, float] | None, str]:
    """Run vidur in its own venv on locally built profiling data; (result, note)."""
    if not VIDUR_PY.exists():
        return None, (
            "not installed: python3 -m venv .bench-venv-vidur && "
            ".bench-venv-vidur/bin/pip install vidur==0.0.26"
        )
    if not (shared / "data/measured-ops").is_dir():
        return None, f"no measured profiling data under {shared}/data/measured-ops"
    with tempfile.TemporaryDirectory(prefix="bench-vidur-") as tmp:
        work = Path(tmp)
        inp = _vidur_data.build(
            work, cache, shared, n=n, max_ctx=MAX_TOKENS, max_chunk=CHUNK, max_batch=MAX_BATCH
        )
        before = set(cache.glob("predictors/*/*.pkl"))
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "HF_HOME": str(work / "hf"), **_OFFLINE}
        cmd = [str(VIDUR_PY), str(VIDUR_DRIVER), *vidur_args(n, replicas, rate, inp, work)]
        try:
            r = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, cwd=work, env=env
            )
        except subprocess.TimeoutExpired:
            return None, f"timed out after {timeout:.0f} s"
        trained = len(set(cache.glob("predictors/*/*.pkl")) - before)
    for line in r.stdout.splitlines():
        if line.startswith("VIDUR_RESULT "):
            res: dict[str, float] = json.loads(line.split(" ", 1)[1])
            res["trained_models"] = trained
            return res, f"synthetic attention table of {inp.attention_rows} points"
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
    ap.add_argument(
        "--vidur-requests", type=int, default=20_000, help="requests simulated by vidur"
    )
    ap.add_argument("--vidur-timeout", type=float, default=3600.0, help="seconds")
    ap.add_argument(
        "--vidur-cache",
        type=Path,
        default=ROOT / ".bench-venv-vidur/siliconomics-cache",
        help="vidur's cache_dir (git-ignored); trained predictors are reused from here",
    )
    ap.add_argument(
        "--vidur-cold", action="store_true", help="fresh cache: time vidur's predictor training"
    )
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
    nv = min(args.vidur_requests, n)
    with tempfile.TemporaryDirectory(prefix="bench-vidur-cache-") as cold:
        cache = Path(cold) if args.vidur_cold else args.vidur_cache
        res, note = vidur(nv, args.replicas, args.rate, args.shared, cache, args.vidur_timeout)
    if res is None:
        print(f"vidur: COULD NOT RUN ({note}); no ratio")
        return
    report_vidur(res, note, n, n / t)


def report_vidur(res: dict[str, float], note: str, n: int, ours_rps: float) -> None:
    nv, run, pred = int(res["requests"]), res["run_s"], res["predictor_s"]
    print(
        f"vidur {res['version']}: {nv:,} requests, Llama-2-7B (the model with measured H100 "
        f"MLP data) on {_vidur_data.NETWORK} profiles, Sarathi chunk {CHUNK}, round-robin "
        "routing"
    )
    how = (
        f"predictor training {pred:.1f} s ({int(res['trained_models'])} random-forest grid "
        "searches, all cores)"
        if res["trained_models"]
        else f"predictor {pred:.1f} s (trained models loaded from the cache; --vidur-cold "
        "times the training)"
    )
    print(f"  start-up {res['startup_s']:.1f} s: {how}, then request generation")
    print(
        f"  simulation {run:.2f} s = {nv / run:,.0f} simulated requests/s "
        f"({int(res['completed']):,} completed, {res['sim_time_s']:,.0f} simulated s)"
    )
    print(
        f"  predicted TTFT p50 {res['ttft_p50_s'] * 1e3:.0f} ms, TPOT p50 "
        f"{res['tpot_p50_s'] * 1e3:.1f} ms ({note}: vidur's attention timings are synthesised "
        "from siliconomics' roofline attention op; they change vidur's predicted latencies, "
        "not its simulation speed)"
    )
    if nv < n:
        print(f"  vidur ran {nv:,} of the {n:,} requests: per-request rates are compared")
    print(
        f"ratio (same run, simulated requests/s): siliconomics {ours_rps:,.0f} vs vidur "
        f"{nv / run:,.0f} = {ours_rps / (nv / run):.1f}x (goal >= 20x)"
    )


if __name__ == "__main__":
    sys.exit(main())

"""Time to plan a two-model, ten-chip-type fleet on one core (goal: under 5 s).

Workloads: Llama-3.1-8B chat (40 req/s, ~1,000-token prompts) and Llama-3.1-70B RAG (5 req/s,
~6,000-token prompts), three prompt-length buckets each, prefill/decode split allowed, on the
ten cheapest-to-reach catalog chips with on-demand prices. Stages timed separately: evaluating
every layout (estimates), solve + simulator confirmation, runner-ups (re-solves restricted to
each vendor and chip type) and the cost-latency frontier; every figure as min / median / max
over ``--repeats`` whole runs, each MILP solve with its status and optimality gap. Then the four
example plans of docs/PLANNING.md (goal: under 1 s each).

    .venv/bin/python benchmarks/bench_plan.py [--repeats 3] [--cores all] [--no-examples]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

CHIPS = [
    "l4",
    "l40s",
    "a100-sxm-80gb",
    "h100-sxm",
    "h200-sxm",
    "inf2",
    "trn1",
    "trn2",
    "tpu-v5e",
    "tpu-v6e",
]
SPEC = {
    "name": "bench: two models, ten chip types",
    "chips": CHIPS,
    "disaggregation": "auto",
    "workloads": [
        {
            "name": "chat-8b",
            "model": "llama-3.1-8b",
            "rate_rps": 40,
            "input": {"mean": 1000, "sigma": 1.0, "max": 16000},
            "output": {"mean": 250, "sigma": 0.7, "max": 2000},
            "slo": {"ttft": "2s", "tpot": "50ms", "percentile": 99},
        },
        {
            "name": "rag-70b",
            "model": "llama-3.1-70b",
            "rate_rps": 5,
            "input": {"mean": 6000, "sigma": 0.5, "max": 32000},
            "output": {"mean": 300, "sigma": 0.5, "max": 1500},
            "slo": {"ttft": "6s", "tpot": "60ms", "percentile": 90},
        },
    ],
}


EXAMPLES = [
    ("examples/chat-mixed-fleet.yaml", False),
    ("examples/disaggregated.yaml", False),
    ("examples/training-budget.yaml", False),
    ("examples/chat-mixed-fleet.yaml", True),
]
"""the four `plan` commands of docs/PLANNING.md (the last with --robust)"""


def _spread(xs: list[float]) -> str:
    return f"{min(xs):6.2f} / {statistics.median(xs):6.2f} / {max(xs):6.2f} s"


def _record_solves(log: list[tuple[str, int, str, float]], stage: list[str]) -> None:
    """Wrap the planner's MILP solve to log (stage, routes, status, seconds) per call."""
    from siliconomics.fleet import solve as solve_mod

    inner = solve_mod.solve

    def solve(p, **kw):  # type: ignore[no-untyped-def]
        s = inner(p, **kw)
        status = "infeasible" if s is None else s.status
        log.append((stage[0], len(p.routes), status, 0.0 if s is None else s.solve_s))
        return s

    solve_mod.solve = solve  # type: ignore[assignment]


def _fleet_run(spec, stage: list[str]) -> tuple[dict[str, float], tuple]:  # type: ignore[no-untyped-def]
    from siliconomics import resolve
    from siliconomics.fleet.alternatives import alternatives, frontier
    from siliconomics.fleet.planner import confirmed, prepare

    t: dict[str, float] = {}
    c0, t0 = time.process_time(), time.perf_counter()
    stage[0] = "evaluate"
    inp = prepare(spec, resolve.packaged())
    t["evaluate layouts"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    stage[0] = "main"
    inp2, scale, b, s, lat, _ = confirmed(inp)
    t["solve + simulate"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    stage[0] = "runner-up"
    alts = alternatives(inp2, s.usd_per_hour, True, scale, main=(b, s))
    t["runner-ups"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    stage[0] = "frontier"
    front = frontier(inp2, main=(scale, b, s))
    t["frontier"] = time.perf_counter() - t3
    t["total"] = time.perf_counter() - t0
    t["total (CPU)"] = time.process_time() - c0
    return t, (inp, b, s, lat, alts, front)


def _examples(repeats: int) -> dict[str, tuple[list[float], list[float]]]:
    """Wall and CPU seconds of each example plan, per run."""
    from siliconomics import api

    root = Path(__file__).resolve().parents[1]
    out: dict[str, tuple[list[float], list[float]]] = {}
    for path, robust in EXAMPLES:
        label = path + (" --robust" if robust else "")
        api.plan(root / path, robust=robust)  # warm-up: catalog and price book caches
        wall, cpu = out.setdefault(label, ([], []))
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            api.plan(root / path, robust=robust)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cores", default="1", help="'1' (pin to one core) or 'all'")
    ap.add_argument("--no-examples", action="store_true", help="skip the docs' example plans")
    args = ap.parse_args()
    if args.cores == "1" and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = "1"

    from siliconomics.fleet.spec import parse_spec

    spec = parse_spec(SPEC)
    log: list[tuple[str, int, str, float]] = []
    stage = [""]
    _record_solves(log, stage)
    runs: list[dict[str, float]] = []
    result = None
    for _ in range(args.repeats):
        log.clear()
        t, result = _fleet_run(spec, stage)
        runs.append(t)
    assert result is not None
    inp, b, s, lat, alts, front = result
    n_configs = sum(g.cap_rps.size for g in inp.grids.values()) + sum(
        g.cap_rps.size for g in inp.decode_grids.values()
    )
    print(f"siliconomics plan benchmark ({args.cores} core(s), {args.repeats} runs)")
    print(f"  workloads 2, chip types {len(CHIPS)}, (layout x bucket x batch) points {n_configs}")
    print(
        f"  MILP: {len(b.problem.routes)} routes, {len(b.pools)} pools, {len(b.offers)} node types"
    )
    print(f"  {'stage':<18} {'min / median / max':>28}")
    for k in runs[0]:
        print(f"  {k:<18} {_spread([r[k] for r in runs])}")
    print(
        f"  fleet ${s.usd_per_hour:,.2f}/h ({s.status}); runner-ups {len(alts)}; "
        f"frontier points {len(front)}"
    )
    for la in lat:
        print(
            f"  {la.workload}: TTFT p{la.percentile:g} {la.ttft_p_s:.3f} s, "
            f"TPOT p{la.percentile:g} {la.tpot_p_s * 1e3:.1f} ms ({la.source})"
        )
    print(
        f"  MILP solves of the last run ({len(log)}; runner-ups the chosen fleet meets and the "
        "frontier point at its scale reuse it):"
    )
    for st, nroutes, status, sec in log:
        print(f"    {st:<10} {nroutes:5d} routes  {sec * 1e3:7.0f} ms  {status}")
    limit = sum(1 for *_, status, _ in log if status.startswith("time limit"))
    print(f"  solves at their time limit: {limit}")
    med = statistics.median(r["total"] for r in runs)
    print(f"plan_seconds={med:.2f} (median) goal<5 {'PASS' if med < 5.0 else 'FAIL'}")
    if args.no_examples:
        return
    ex = _examples(args.repeats)
    print("example plans (in-process api.plan after a warm-up call; min / median / max wall, CPU):")
    for label, (xs, cs) in ex.items():
        print(f"  {label:<42} {_spread(xs)}   CPU {_spread(cs)}")
    worst = max(statistics.median(xs) for xs, _ in ex.values())
    print(f"example_seconds_max={worst:.2f} (median) goal<1 {'PASS' if worst < 1.0 else 'FAIL'}")


if __name__ == "__main__":
    main()

"""Training plans evaluated per second: siliconomics vs llm-analysis, timed in the same run.

Run: ``.venv/bin/python benchmarks/bench_training.py`` (``make bench``); ``--repeats N`` sets
the passes of every timed figure (default 5), ``--large N`` the size of the large grid.

The same plans (model, tp, pp, dp, micro-batch, ZeRO stage, recomputation; 1F1B, no context
parallelism — what both tools express) on H100 SXM in bf16 are evaluated by:

* siliconomics, vectorised: ``evaluate_grid`` on each model's plans at once (the grid built
  beforehand as numpy arrays, as the plan search builds it), and the time-only path the search
  uses (``step_times_only``: step time, no breakdown or memory). These run the compiled grid
  path (``training/gridcore.py``, numba), whose kernels are loaded before timing
  (``gridcore.load()``; the time it takes is printed: once per process, a compile of about
  20 s on the first run in a fresh install); the same calls with it switched off (the numpy
  path, what a process that has not loaded the kernels runs for grids under
  ``gridcore.AUTO_PLANS`` plans) are printed too;
* siliconomics, one plan per call: ``TrainPlan(...)`` + ``estimate_training`` per plan in a
  Python loop (the path a user or a script calling the API per configuration takes);
* llm-analysis 0.2.2: ``LLMAnalysis(...).training(...)`` per plan, in its own virtual
  environment (``.bench-venv``) through ``benchmarks/_peer_train_driver.py``. Install it with
  ``python3 -m venv .bench-venv && .bench-venv/bin/pip install --no-deps llm-analysis==0.2.2
  fire`` (its pinned transformers/huggingface-hub are only needed for HF model lookups, which
  the driver does not use). If it cannot run, that is reported; no number is made up.

Every figure is printed as min/median/max over the passes; ratios against the peer take the
best pass of each side (and the median ratio is shown too). Also printed: a large grid (1M
plans by default) through both vectorised paths, and the full ``search_plans`` space.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from siliconomics import resolve
from siliconomics.catalog.registry import get_model
from siliconomics.training import TrainPlan, estimate_training, gridcore
from siliconomics.training.estimate import evaluate_grid, step_times_only, train_device
from siliconomics.training.plan import RECOMPUTE, PlanGrid, grid_of, plan_validity
from siliconomics.training.search import search_grid, search_plans

REPO = Path(__file__).resolve().parents[1]
PLAN_FIELDS = ("dp", "tp", "pp", "micro_batch", "zero", "recompute")
BENCH_PY = REPO / ".bench-venv" / "bin" / "python"
DRIVER = Path(__file__).resolve().parent / "_peer_train_driver.py"
CHIP = "h100-sxm"
JOBS = (("llama-3.1-70b", 64, 256, 4096), ("llama-2-7b", 32, 512, 4096))  # model, chips, gb, S


def plans_for(model_id: str, n: int, gb: int, seq: int) -> list[TrainPlan]:
    """Every 1F1B plan without cp/vpp that is valid for (model, n chips, batch)."""
    model, dev = get_model(model_id), train_device(resolve.device(CHIP))
    out = []
    for tp in (1, 2, 4, 8):
        for pp in (1, 2, 4, 8, 16):
            if n % (tp * pp):
                continue
            for mb in (1, 2, 4, 8):
                for zero in (0, 1, 2, 3):
                    for rc in RECOMPUTE:
                        out.append(
                            TrainPlan(
                                dp=n // (tp * pp),
                                tp=tp,
                                pp=pp,
                                micro_batch=mb,
                                zero=zero,
                                recompute=rc,  # type: ignore[arg-type]
                            )
                        )
    ok, _ = plan_validity(model, dev, grid_of(out), seq, gb)
    return [p for p, k in zip(out, ok, strict=True) if k]


REPEATS = 5  # passes for each side, ours and the peer's (best taken, spread printed)


def timings(fn: Any, repeats: int = REPEATS, *, warm: bool = True) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each of ``repeats`` passes (after one warm-up pass when
    ``warm``). CPU time (this process) is printed too: on a shared machine the wall time of
    a pass includes time spent waiting for a core."""
    if warm:
        fn()
    out = []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        out.append((time.perf_counter() - t0, time.process_time() - c0))
    return out


def spread(times: list[float]) -> str:
    return f"{min(times) * 1e3:.2f}/{float(np.median(times)) * 1e3:.2f}/{max(times) * 1e3:.2f} ms"


def rate_line(
    label: str, n: int, runs: list[tuple[float, float]], peer: list[Any] | None, n_peer: int
) -> str:
    """One figure: best and median rate, min/median/max wall and CPU time over the passes,
    and the ratios to the peer's rate (best pass of each side; medians)."""
    wall, cpu = [r[0] for r in runs], [r[1] for r in runs]
    best, med = n / min(wall), n / float(np.median(wall))
    out = (
        f"  {label:<44s} {best:>11,.0f} plans/s best, {med:>11,.0f} median; wall min/median/"
        f"max {spread(wall)}; CPU {spread(cpu)} ({n / min(cpu):,.0f} plans per CPU-s); "
        f"{len(runs)} passes"
    )
    if peer:
        pw, pc = [p[0] for p in peer], [p[1] for p in peer]
        pb, pm, pcb = n_peer / min(pw), n_peer / float(np.median(pw)), n_peer / min(pc)
        out += (
            f"\n  {'':<44s} = {best / pb:,.1f}x llm-analysis (best/best), {med / pm:,.1f}x "
            f"(median/median), {n / min(cpu) / pcb:,.1f}x per CPU-s"
        )
    return out


def run_peer(
    jobs: list[tuple[str, int, int, int, list[TrainPlan]]], repeats: int = REPEATS
) -> dict[str, Any] | str:
    if not BENCH_PY.exists():
        return f"{BENCH_PY} missing: create it as benchmarks/bench_estimate.py describes"
    chip = resolve.device(CHIP).chip
    dev = train_device(resolve.device(CHIP))
    spec: dict[str, Any] = {
        "chip": {
            "flops_tflops": dev.peak_flops("bf16") / 1e12,
            "mem_gib": dev.hbm_bytes / 2**30,
            "mem_bw_gbs": dev.hbm_bytes_per_s / 1e9,
            "icn_gbs": dev.scale_up_bytes_per_s_dir / 1e9,
            "net_gbs": dev.scale_out_bytes_per_s_dir / 1e9,
        },
        "models": {},
        "configs": [],
        "repeats": repeats,
    }
    _ = chip
    for mid, _n, gb, seq, plans in jobs:
        m = get_model(mid)
        spec["models"][mid] = {
            "n_layers": m.n_layers,
            "d_model": m.d_model,
            "n_heads": m.n_heads,
            "n_kv_heads": m.n_kv_heads,
            "d_ff": m.d_ff,
            "vocab_size": m.vocab_size,
            "max_position": m.max_position,
            "gated": m.gated,
        }
        spec["configs"] += [
            {
                "model": mid,
                "tp": p.tp,
                "pp": p.pp,
                "dp": p.dp,
                "mb": p.micro_batch,
                "gb": gb,
                "seq": seq,
                "zero": p.zero,
                "recompute": p.recompute,
            }
            for p in plans
        ]
    with tempfile.TemporaryDirectory() as d:
        fin, fout = Path(d) / "in.json", Path(d) / "out.json"
        fin.write_text(json.dumps(spec))
        r = subprocess.run([BENCH_PY, DRIVER, fin, fout], capture_output=True, text=True)
        if r.returncode != 0 or not fout.exists():
            return f"llm-analysis driver failed: {r.stderr.strip().splitlines()[-1:]}"
        return dict(json.loads(fout.read_text()))


def large_grid(plans: list[TrainPlan], size: int) -> PlanGrid:
    """``plans`` repeated to ``size`` plans (a grid as large as a wide sweep's)."""
    g = grid_of(plans)
    idx = np.resize(np.arange(g.size), size)
    return g.take(idx)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=REPEATS, help="passes per figure")
    ap.add_argument("--large", type=int, default=1_000_000, help="plans in the large grid")
    args = ap.parse_args()
    reps = max(args.repeats, 1)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, python {platform.python_version()}"
    )
    jobs = []
    for mid, n, gb, seq in JOBS:
        jobs.append((mid, n, gb, seq, plans_for(mid, n, gb, seq)))
    n_plans = sum(len(j[4]) for j in jobs)
    device = resolve.device(CHIP)
    dev = train_device(device)
    grids = [(get_model(mid), grid_of(plans), seq, gb) for mid, _n, gb, seq, plans in jobs]

    def vectorised() -> None:
        for m, g, seq, gb in grids:
            evaluate_grid(m, dev, g, seq_len=seq, global_batch_seqs=gb)

    def time_only() -> None:
        for m, g, seq, gb in grids:
            step_times_only(m, dev, g, seq_len=seq, global_batch_seqs=gb)

    def numpy_path(fn: Any) -> Any:
        def run() -> None:
            gridcore.ENABLED = False
            try:
                fn()
            finally:
                gridcore.ENABLED = None

        return run

    try:
        loaded = f"compiled grid path: kernels loaded in {gridcore.load():.2f} s before timing"
    except ImportError as e:
        loaded = f"compiled grid path: not available ({e}); the numpy path runs"

    configs = [
        (get_model(mid), gb, seq, {f: getattr(p, f) for f in PLAN_FIELDS})
        for mid, _n, gb, seq, plans in jobs
        for p in plans
    ]

    def looped() -> None:
        for m, gb, seq, kw in configs:
            estimate_training(
                m,
                device,
                TrainPlan(**kw),
                seq_len=seq,
                global_batch_seqs=gb,
                check_memory=False,
            )

    vec_runs, only_runs = timings(vectorised, reps), timings(time_only, reps)
    vec_np, only_np = timings(numpy_path(vectorised), reps), timings(numpy_path(time_only), reps)
    loop_runs = timings(looped, reps)
    peer = run_peer(jobs, reps)
    peer_runs = (
        None
        if isinstance(peer, str)
        else list(zip(peer["seconds_all"], peer["cpu_seconds_all"], strict=True))
    )
    n_peer = n_plans if isinstance(peer, str) else int(peer["configs"])
    print(
        f"\n{n_plans} plans (1F1B, no cp/vpp) for "
        f"{', '.join(f'{j[0]} on {j[1]} x {CHIP}' for j in jobs)}; {reps} passes each side"
    )
    print(
        rate_line("siliconomics evaluate_grid (vectorised)", n_plans, vec_runs, peer_runs, n_peer)
    )
    print(
        rate_line("siliconomics step_times_only (time only)", n_plans, only_runs, peer_runs, n_peer)
    )
    print(f"  ({loaded}; the same two with it off, the numpy path:)")
    print(rate_line("  evaluate_grid, numpy path", n_plans, vec_np, peer_runs, n_peer))
    print(rate_line("  step_times_only, numpy path", n_plans, only_np, peer_runs, n_peer))
    print(
        rate_line(
            "siliconomics estimate_training (one per call)", n_plans, loop_runs, peer_runs, n_peer
        )
    )
    if isinstance(peer, str):
        print(f"  llm-analysis: not run ({peer})")
    else:
        print(
            rate_line(
                f"llm-analysis {peer['version']} training() (one per call)",
                n_peer,
                peer_runs or [],
                None,
                0,
            )
            + f"  ({peer['errors']} plans raised)"
        )
        _side_by_side(jobs, peer, device)
    # a large grid: blocks of plans through both vectorised paths
    m0, _g0, seq0, gb0 = grids[0]
    big = large_grid(jobs[0][4], args.large)
    big_runs = timings(
        lambda: evaluate_grid(m0, dev, big, seq_len=seq0, global_batch_seqs=gb0), max(reps // 2, 1)
    )
    big_only = timings(
        lambda: step_times_only(m0, dev, big, seq_len=seq0, global_batch_seqs=gb0),
        max(reps // 2, 1),
    )
    big_np = timings(
        numpy_path(lambda: evaluate_grid(m0, dev, big, seq_len=seq0, global_batch_seqs=gb0)),
        max(reps // 2, 1),
    )
    print(f"\nlarge grid: {big.size:,} plans of {jobs[0][0]} (the plans above, repeated)")
    print(
        rate_line("siliconomics evaluate_grid (vectorised)", big.size, big_runs, peer_runs, n_peer)
    )
    print(
        rate_line("siliconomics step_times_only (time only)", big.size, big_only, peer_runs, n_peer)
    )
    print(rate_line("  evaluate_grid, numpy path", big.size, big_np, peer_runs, n_peer))
    # the whole search space of one search_plans call
    for mid, n, gb, seq in JOBS:
        m = get_model(mid)
        res, generated = search_grid(m, device, n, seq_len=seq, global_batch_seqs=gb)
        runs = timings(
            lambda m=m, n=n, gb=gb, seq=seq: search_plans(
                m, device, n, seq_len=seq, global_batch_seqs=gb
            ),
            reps,
        )
        print(
            f"\nsearch_plans for {mid} on {n} x {CHIP}: {generated} candidates, {res.grid.size} "
            f"valid, {int(np.sum(res.memory.fits))} fit; whole search (validity, memory, time of "
            f"the plans that fit, top 5 in full): wall min/median/max "
            f"{spread([r[0] for r in runs])}, CPU {spread([r[1] for r in runs])}"
        )


def _side_by_side(jobs: list[Any], peer: dict[str, Any], device: Any) -> None:
    """A few step times side by side (different models of the step; shown, not scored)."""
    print("\n  step time, s (siliconomics vs llm-analysis; different models, shown not scored)")
    k = 0
    for mid, _n, gb, seq, plans in jobs:
        m = get_model(mid)
        for p in plans[:: max(len(plans) // 3, 1)][:3]:
            res = peer["results"][k + plans.index(p)]
            ours = estimate_training(
                m, device, p, seq_len=seq, global_batch_seqs=gb, check_memory=False
            )
            theirs = res.get("step_time_s", float("nan"))
            print(f"    {mid:14s} {p.short_label():34s} {ours.step_time_s:9.3f} {theirs:9.3f}")
        k += len(plans)


if __name__ == "__main__":
    main()

"""Training plans evaluated per second: siliconomics (vectorised search) vs llm-analysis.

Run: ``.venv/bin/python benchmarks/bench_training.py`` (``make bench``).

The same plans (model, tp, pp, dp, micro-batch, ZeRO stage, recomputation; 1F1B, no context
parallelism — what both tools express) on H100 SXM in bf16 are evaluated by:

* siliconomics: ``evaluate_grid`` on all plans at once (numpy arrays; best of several repeats
  after a warm-up), and ``estimate_training`` once per plan in a Python loop;
* llm-analysis 0.2.2: ``LLMAnalysis.training`` once per plan, in its own virtual environment
  (``.bench-venv``, see benchmarks/bench_estimate.py for how it is created) through
  ``benchmarks/_peer_train_driver.py``. If it cannot run, that is reported; no number is made up.

Also printed: the full search space siliconomics evaluates per ``search_plans`` call (all valid
layouts incl. cp, vpp and ep) and its speed, and a few step times side by side.
"""

from __future__ import annotations

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
from siliconomics.training import TrainPlan, estimate_training
from siliconomics.training.estimate import evaluate_grid, train_device
from siliconomics.training.plan import RECOMPUTE, grid_of, plan_validity
from siliconomics.training.search import search_grid

REPO = Path(__file__).resolve().parents[1]
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


def timings(fn: Any, repeats: int = REPEATS, *, warm: bool = True) -> list[float]:
    """Seconds of each of ``repeats`` passes (after one warm-up pass when ``warm``)."""
    if warm:
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def spread(times: list[float]) -> str:
    return (
        f"best of {len(times)}; min/median/max {min(times) * 1e3:.1f}/"
        f"{float(np.median(times)) * 1e3:.1f}/{max(times) * 1e3:.1f} ms"
    )


def run_peer(jobs: list[tuple[str, int, int, int, list[TrainPlan]]]) -> dict[str, Any] | str:
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
        "repeats": REPEATS,
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


def main() -> None:
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, python {platform.python_version()}"
    )
    jobs = []
    for mid, n, gb, seq in JOBS:
        jobs.append((mid, n, gb, seq, plans_for(mid, n, gb, seq)))
    n_plans = sum(len(j[4]) for j in jobs)
    dev = train_device(resolve.device(CHIP))

    def vectorised() -> None:
        for mid, _n, gb, seq, plans in jobs:
            evaluate_grid(get_model(mid), dev, grid_of(plans), seq_len=seq, global_batch_seqs=gb)

    def looped() -> None:
        for mid, _n, gb, seq, plans in jobs:
            m = get_model(mid)
            for p in plans:
                estimate_training(
                    m,
                    resolve.device(CHIP),
                    p,
                    seq_len=seq,
                    global_batch_seqs=gb,
                    check_memory=False,
                )

    # the scalar loop takes seconds a pass: 3 passes, no separate warm-up
    vec_runs, loop_runs = timings(vectorised), timings(looped, 3, warm=False)
    t_vec, t_loop = min(vec_runs), min(loop_runs)
    print(
        f"\n{n_plans} plans (1F1B, no cp/vpp) for {', '.join(f'{j[0]} on {j[1]} x {CHIP}' for j in jobs)}"
    )
    print(
        f"  siliconomics evaluate_grid (vectorised): {t_vec * 1e3:8.1f} ms  {n_plans / t_vec:12,.0f} plans/s  ({spread(vec_runs)})"
    )
    print(
        f"  siliconomics estimate_training (loop):   {t_loop * 1e3:8.1f} ms  {n_plans / t_loop:12,.0f} plans/s  ({spread(loop_runs)})"
    )
    peer = run_peer(jobs)
    if isinstance(peer, str):
        print(f"  llm-analysis: not run ({peer})")
    else:
        rate = peer["configs"] / peer["seconds"]
        print(
            f"  llm-analysis {peer['version']} training() (loop):  {peer['seconds'] * 1e3:8.1f} ms  "
            f"{rate:12,.0f} plans/s  ({peer['errors']} plans raised; "
            f"{spread(peer.get('seconds_all', [peer['seconds']]))})"
        )
        print(
            f"  ratio vectorised / llm-analysis = {n_plans / t_vec / rate:,.0f}x; "
            f"loop / llm-analysis = {n_plans / t_loop / rate:,.1f}x (measured in this run)"
        )
        # a few step times side by side
        print("\n  step time, s (siliconomics vs llm-analysis; different models, shown not scored)")
        k = 0
        for mid, _n, gb, seq, plans in jobs:
            m = get_model(mid)
            for p in plans[:: max(len(plans) // 3, 1)][:3]:
                res = peer["results"][k + plans.index(p)]
                ours = estimate_training(
                    m,
                    resolve.device(CHIP),
                    p,
                    seq_len=seq,
                    global_batch_seqs=gb,
                    check_memory=False,
                )
                theirs = res.get("step_time_s", float("nan"))
                print(f"    {mid:14s} {p.short_label():34s} {ours.step_time_s:9.3f} {theirs:9.3f}")
            k += len(plans)
    # the whole search space of one search_plans call
    for mid, n, gb, seq in JOBS:
        m = get_model(mid)
        t0 = time.perf_counter()
        res, generated = search_grid(m, resolve.device(CHIP), n, seq_len=seq, global_batch_seqs=gb)
        dt = time.perf_counter() - t0
        print(
            f"\nsearch_plans space for {mid} on {n} x {CHIP}: {generated} candidates, "
            f"{res.grid.size} valid, evaluated in {dt * 1e3:.1f} ms "
            f"({res.grid.size / dt:,.0f} plans/s incl. validity filtering); "
            f"{int(np.sum(res.memory.fits))} fit"
        )


if __name__ == "__main__":
    main()

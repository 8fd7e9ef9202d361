"""Configurations evaluated per second: siliconomics (vectorised) vs genz-llm and llm-analysis.

Run: ``.venv/bin/python benchmarks/bench_estimate.py`` (``make bench``). See benchmarks/README.md.

One grid of static-batch configurations (model, tp, batch, input, output) on H100 SXM in bf16 is
evaluated by every tool in this one run:

* siliconomics: ``estimate_static`` with numpy arrays, one call per (model, tp) plan, on the
  whole grid (best of several repeats after a warm-up); also a per-config Python loop of the
  same function with scalars, and the vectorised call on only the peers' subset.
* llm-analysis: ``LLMAnalysis.inference`` once per config, on every config that fits.
* genz-llm (GenZ): ``prefill_moddeling`` + ``decode_moddeling`` per config (slow: a fixed-seed
  random subset of the fitting configs).

The peers run in their own virtual environment (``.bench-venv``, created here when missing)
through ``benchmarks/_peer_driver.py``; the two environments never mix. A peer that cannot run
is reported as such, with the reason; no number is ever made up for it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from siliconomics import resolve
from siliconomics.catalog.registry import get_model
from siliconomics.catalog.schema import ChipSpec, ModelSpec
from siliconomics.inference.estimate import estimate_static
from siliconomics.ops.device import Device
from siliconomics.parallel.plan import InferencePlan

REPO = Path(__file__).resolve().parents[1]
BENCH_VENV = REPO / ".bench-venv"
BENCH_PY = BENCH_VENV / "bin" / "python"
DRIVER = Path(__file__).resolve().parent / "_peer_driver.py"
PEER_PINS = {"genz": "genz-llm==0.0.16", "llm-analysis": "llm-analysis==0.2.2"}
INSTALL_CMD = f"python3 -m venv {BENCH_VENV} && {BENCH_PY} -m pip install " + " ".join(
    PEER_PINS.values()
)

CHIP = "h100-sxm"
MODELS = ("llama-3.1-70b", "llama-2-7b")
TPS = (1, 2, 4, 8)
BATCH = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
INPUT = (128, 256, 512, 1024, 2048, 4096, 8192)
OUTPUT = (128, 256, 512, 1024, 2048)
# Shown side by side (always in the peers' subset): (model, tp, batch, input, output)
SHOWCASE = (
    ("llama-3.1-70b", 4, 1, 1024, 256),
    ("llama-3.1-70b", 8, 64, 2048, 512),
    ("llama-2-7b", 1, 16, 512, 128),
)
OUR_METRIC = (
    "estimate_static(B, I, O) arrays: TTFT (prefill), TPOT (mean decode step over the "
    "generation, 4 contexts), e2e, throughput, memory fit, per config"
)


@dataclass
class PlanGrid:
    model: ModelSpec
    tp: int
    plan: InferencePlan
    B: np.ndarray
    I: np.ndarray
    O: np.ndarray


def build_grid(chip: Device) -> list[PlanGrid]:
    """Every (B, I, O) within the model's context, for every tp whose weights fit at all."""
    grids = []
    for mid in MODELS:
        model = get_model(mid)
        B, I, O = (a.ravel().astype(np.float64) for a in np.meshgrid(BATCH, INPUT, OUTPUT))
        if model.max_position:
            keep = np.less_equal(I + O, model.max_position)
            B, I, O = B[keep], I[keep], O[keep]
        for tp in TPS:
            if tp > model.n_heads:
                continue
            plan = InferencePlan(tp=tp)
            smallest = estimate_static(model, chip, plan, 1, 128, 128, check_memory=False)
            if not bool(np.all(smallest.memory.fits)):
                continue  # the weights alone do not fit at this tp
            grids.append(PlanGrid(model, tp, plan, B, I, O))
    return grids


def run_ours(chip: Device, grids: list[PlanGrid]) -> list[Any]:
    return [
        estimate_static(g.model, chip, g.plan, g.B, g.I, g.O, check_memory=False) for g in grids
    ]


SPREAD: dict[str, list[float]] = {}  # every timed pass, by label (printed as min/median/max)


def best_of(fn: Any, repeats: int, label: str = "") -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    if label:
        SPREAD[label] = times
    return min(times)


def spread(times: list[float]) -> str:
    """min/median/max of the passes, seconds."""
    return f"min/median/max {min(times):.4g}/{float(np.median(times)):.4g}/{max(times):.4g} s"


# ----------------------------------------------------------------------------- peers


def bench_venv_status(install: bool) -> str | None:
    """None when the bench venv has both peers; otherwise why not (after trying to install)."""
    check = "import importlib.metadata as m; [m.version(d) for d in ('genz-llm', 'llm-analysis')]"

    def ok() -> bool:
        return BENCH_PY.exists() and subprocess.run([BENCH_PY, "-c", check]).returncode == 0

    if ok():
        return None
    if not install:
        return f"{BENCH_VENV} is missing or incomplete; create it with:\n    {INSTALL_CMD}"
    print(f"creating {BENCH_VENV} (one time, a few minutes): {INSTALL_CMD}", flush=True)
    steps = [
        ["python3", "-m", "venv", str(BENCH_VENV)],
        [str(BENCH_PY), "-m", "pip", "install", "-q", *PEER_PINS.values()],
    ]
    for cmd in steps:
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            return f"`{' '.join(cmd)}` failed: {' | '.join(tail)}\n    by hand: {INSTALL_CMD}"
    return None if ok() else f"peers still not importable after install; by hand: {INSTALL_CMD}"


def peer_inputs(chip: ChipSpec) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """The chip's and models' numbers handed to the peers, so all tools see the same inputs."""
    ic = chip.interconnect.scale_up_bytes_per_s
    chip_d = {
        "flops_tflops": chip.peak_flops("bf16") / 1e12,
        "mem_gib": chip.memory.capacity_bytes.value / 2**30,
        "mem_bw_gbs": chip.memory.bytes_per_s.value / 1e9,
        # per direction (the catalog holds the bidirectional aggregate), as both peers'
        # own H100 presets use
        "icn_gbs": (ic.value / 2 if ic else 0.0) / 1e9,
    }
    models = {}
    for mid in MODELS:
        m = get_model(mid)
        models[mid] = {
            "n_layers": m.n_layers,
            "d_model": m.d_model,
            "n_heads": m.n_heads,
            "n_kv_heads": m.n_kv_heads,
            "head_dim": m.head_dim,
            "d_ff": m.d_ff,
            "vocab_size": m.vocab_size,
            "max_position": m.max_position,
            "gated": m.activation in ("swiglu", "geglu"),
        }
    return chip_d, models


def run_peer(
    tool: str, chip_d: dict, models: dict, configs: list[dict], repeats: int
) -> dict[str, Any]:
    """Run the driver in the bench venv (best of ``repeats`` passes, as for ours); returns its
    JSON or {"failed": reason}."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.json"), Path(tmp, "out.json")
        spec = {"tool": tool, "chip": chip_d, "models": models, "configs": configs}
        src.write_text(json.dumps({**spec, "repeats": repeats}))
        try:
            r = subprocess.run(
                [str(BENCH_PY), str(DRIVER), str(src), str(dst)],
                capture_output=True,
                text=True,
                timeout=600,
                cwd=tmp,
            )
        except subprocess.TimeoutExpired:
            return {"failed": "timed out after 600 s"}
        if r.returncode or not dst.exists():
            tail = " | ".join(r.stderr.strip().splitlines()[-3:])
            return {"failed": f"driver exited {r.returncode}: {tail}"}
        out: dict[str, Any] = json.loads(dst.read_text())
        return out


# ----------------------------------------------------------------------------- report


def fmt_rate(n: int, s: float) -> str:
    return f"{n / s:>12,.1f} configs/s  ({1e6 * s / n:>10,.1f} us/config, {n} configs)"


def report_rates(
    repeats: int,
    t_grid: float,
    n_total: int,
    n_grids: int,
    t_subvec: float,
    t_scalar: float,
    subset: list[dict[str, Any]],
    by_plan: dict[tuple[str, int], list[dict]],
    peers: dict[str, dict[str, Any]],
) -> None:
    ours_s = t_grid / n_total
    print(
        "\n=== configurations per second (time.perf_counter; ours best of",
        repeats,
        "after warm-up) ===",
    )
    print(f"siliconomics vectorised, full grid   : {fmt_rate(n_total, t_grid)}  [{n_grids} calls]")
    print(
        f"siliconomics vectorised, peer subset : {fmt_rate(len(subset), t_subvec)}  [{len(by_plan)} calls]"
    )
    print(f"siliconomics scalar loop, peer subset: {fmt_rate(len(subset), t_scalar)}")
    for label, times in SPREAD.items():
        print(f"  {label}: {len(times)} passes, {spread(times)}")
    print(
        f"  vectorisation gain on the full grid vs the scalar loop: {(t_scalar / len(subset)) / ours_s:,.0f}x"
    )
    ratios: dict[str, float] = {}
    for tool, name in (("genz", "genz-llm (GenZ)"), ("llm-analysis", "llm-analysis")):
        p = peers[tool]
        if "failed" in p:
            print(f"{name:<37}: COULD NOT RUN: {p['failed']}")
            continue
        ok = p["configs"] - p["errors"]
        print(
            f"{name + ' ' + p['version']:<37}: {fmt_rate(p['configs'], p['seconds'])}  [import {p['import_s']:.1f} s, {p['errors']} configs rejected by the tool]"
        )
        runs = p.get("seconds_all", [p["seconds"]])
        print(f"  {name}: best of {len(runs)} passes, {spread(runs)}")
        ratios[tool] = (p["seconds"] / p["configs"]) / ours_s
        print(
            f"  per-config speed ratio siliconomics (full grid) / {name}: {ratios[tool]:,.0f}x; scalar loop / {name}: {(p['seconds'] / p['configs']) / (t_scalar / len(subset)):,.2f}x ({ok} answered)"
        )
    if "genz" in ratios:
        verdict = "MET" if ratios["genz"] >= 1000 else "NOT MET"
        print(f"goal (>= 1000x genz-llm per configuration): {verdict} ({ratios['genz']:,.0f}x)")
    else:
        print("goal (>= 1000x genz-llm per configuration): NOT MEASURED (genz-llm could not run)")


def report_metrics(peers: dict[str, dict[str, Any]]) -> None:
    print("\n=== what each tool computed per configuration ===")
    print(f"siliconomics : {OUR_METRIC}")
    for tool in ("genz", "llm-analysis"):
        p = peers[tool]
        print(f"{tool:<13}: {p.get('metric', 'not run')}")
    print(
        "  all tools: same architecture numbers and H100 SXM peaks (bf16 FLOP/s, HBM bytes, NVLink);"
        " peers at their default efficiencies (1.0)"
    )


def report_sanity(
    peers: dict[str, dict[str, Any]], ours_pred: dict[tuple, tuple[float, float]]
) -> None:
    print(
        "\n=== sanity: predictions side by side (not ground truth; metrics differ as listed above) ==="
    )
    head = f"{'model':<14}{'tp':>3}{'B':>5}{'I':>6}{'O':>6} | {'TTFT ms: ours':>14}{'genz':>9}{'llm-an':>9} | {'TPOT ms: ours':>14}{'genz':>9}{'llm-an':>9}"
    print(head)
    peer_res: dict[str, dict[tuple, dict]] = {}
    for tool, p in peers.items():
        if "failed" not in p:
            peer_res[tool] = {
                tuple(c.values()): r for c, r in zip(p["cfgs"], p["results"], strict=True)
            }

    def cell(tool: str, key: tuple, what: str) -> str:
        r = peer_res.get(tool, {}).get(key)
        if r is None:
            return f"{'n/a':>9}"
        if "error" in r:
            return f"{'error':>9}"
        return f"{1e3 * r[what]:>9.2f}"

    for s in SHOWCASE:
        ttft, tpot = ours_pred[s]
        print(
            f"{s[0]:<14}{s[1]:>3}{s[2]:>5}{s[3]:>6}{s[4]:>6} | {1e3 * ttft:>14.2f}{cell('genz', s, 'ttft_s')}{cell('llm-analysis', s, 'ttft_s')}"
            f" | {1e3 * tpot:>14.2f}{cell('genz', s, 'tpot_s')}{cell('llm-analysis', s, 'tpot_s')}"
        )
    for tool, res in peer_res.items():
        both = [(ours_pred[k], r) for k, r in res.items() if "error" not in r]
        if both:
            tt = np.median([r["ttft_s"] / o[0] for o, r in both])
            tp = np.median([r["tpot_s"] / o[1] for o, r in both])
            print(
                f"median {tool}/ours over its {len(both)} answered configs: TTFT {tt:.2f}, TPOT {tp:.2f}"
            )
        errs = [r["error"] for r in res.values() if "error" in r]
        if errs:
            print(f"{tool} rejected {len(errs)} configs, e.g. {errs[0]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genz-configs", type=int, default=100, help="random subset size for GenZ")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=10, help="repeats of our timings (best taken)")
    ap.add_argument(
        "--peer-repeats", type=int, default=5, help="passes of llm-analysis (best taken)"
    )
    ap.add_argument("--genz-repeats", type=int, default=2, help="passes of genz-llm (best taken)")
    ap.add_argument("--no-install", action="store_true", help="never create .bench-venv")
    ap.add_argument("--no-peers", action="store_true", help="time siliconomics only")
    args = ap.parse_args()

    chip = resolve.device(CHIP)
    grids = build_grid(chip)
    n_total = sum(g.B.size for g in grids)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(f"chip {CHIP}, bf16 weights/activations/KV, static batch; plans (model tp):")
    for g in grids:
        print(f"  {g.model.id:<14} tp={g.tp}: {g.B.size} configs")
    print(f"grid: batch {BATCH}, input {INPUT}, output {OUTPUT} (input+output <= model context)")

    # --- ours, whole grid, vectorised
    t_grid = best_of(lambda: run_ours(chip, grids), args.repeats, "vectorised, full grid")
    ests = run_ours(chip, grids)
    fits = [np.asarray(e.memory.fits) for e in ests]
    n_fit = int(sum(f.sum() for f in fits))
    print(f"\n{n_total} configurations, {n_fit} fit in memory (by siliconomics' memory model)")

    # fitting configs, in a flat list with our predictions
    fit_cfgs: list[dict[str, Any]] = []
    ours_pred: dict[tuple, tuple[float, float]] = {}
    for g, e, f in zip(grids, ests, fits, strict=True):
        for k in np.flatnonzero(f):
            key = (g.model.id, g.tp, int(g.B[k]), int(g.I[k]), int(g.O[k]))
            fit_cfgs.append(
                dict(zip(("model", "tp", "batch", "input", "output"), key, strict=True))
            )
            ours_pred[key] = (float(e.ttft_s[k]), float(e.tpot_s[k]))
    for s in SHOWCASE:
        assert s in ours_pred, f"showcase config {s} is not in the fitting grid"

    rng = np.random.default_rng(args.seed)
    show = [
        dict(zip(("model", "tp", "batch", "input", "output"), s, strict=True)) for s in SHOWCASE
    ]
    pick = rng.choice(len(fit_cfgs), size=min(args.genz_configs, len(fit_cfgs)), replace=False)
    subset = show + [
        fit_cfgs[i] for i in sorted(pick) if tuple(fit_cfgs[i].values()) not in SHOWCASE
    ]

    # --- ours on the subset: scalar per-config loop, and vectorised per plan
    models = {m: get_model(m) for m in MODELS}

    def scalar_loop() -> None:
        for c in subset:
            estimate_static(
                models[c["model"]],
                chip,
                InferencePlan(tp=c["tp"]),
                c["batch"],
                c["input"],
                c["output"],
            )

    by_plan: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for c in subset:
        by_plan[(c["model"], c["tp"])].append(c)

    def subset_vector() -> None:
        for (mid, tp), cs in by_plan.items():
            arr = {
                k: np.array([c[k] for c in cs], dtype=np.float64)
                for k in ("batch", "input", "output")
            }
            estimate_static(
                models[mid], chip, InferencePlan(tp=tp), arr["batch"], arr["input"], arr["output"]
            )

    t_scalar = best_of(scalar_loop, max(1, args.repeats // 2), "scalar loop, peer subset")
    t_subvec = best_of(subset_vector, args.repeats, "vectorised, peer subset")

    # --- peers
    peers: dict[str, dict[str, Any]] = {}
    if args.no_peers:
        why = "skipped (--no-peers)"
    else:
        why = bench_venv_status(install=not args.no_install)
    chip_d, model_d = peer_inputs(chip.chip)
    for tool, cfgs in (("llm-analysis", fit_cfgs), ("genz", subset)):
        if why is not None:
            peers[tool] = {"failed": why}
            continue
        print(f"running {tool} on {len(cfgs)} configs ...", flush=True)
        reps = args.peer_repeats if tool == "llm-analysis" else args.genz_repeats
        peers[tool] = run_peer(tool, chip_d, model_d, cfgs, reps)
        peers[tool]["cfgs"] = cfgs

    # --- report
    report_rates(
        args.repeats, t_grid, n_total, len(grids), t_subvec, t_scalar, subset, by_plan, peers
    )
    report_metrics(peers)
    report_sanity(peers, ours_pred)


if __name__ == "__main__":
    main()

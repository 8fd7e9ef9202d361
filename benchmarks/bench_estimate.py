"""Configurations evaluated per second: siliconomics (vectorised) vs genz-llm and llm-analysis.

Run: ``.venv/bin/python benchmarks/bench_estimate.py`` (``make bench``). See benchmarks/README.md.

One grid of static-batch configurations (model, tp, batch, input, output) on H100 SXM in bf16 is
evaluated by every tool in this one run:

* siliconomics, fast path (``inference/fast.py``): ``static_times_many`` on the whole grid
  (all 7 layouts in one call), the same on the grid repeated to 1M configurations, and
  ``static_point`` once per configuration on the configurations llm-analysis runs;
* siliconomics, ``estimate_static`` (full result with the per-op breakdown): one call per
  (model, tp) plan on the grid, and one call per configuration on the GenZ subset;
  every figure is timed over several passes after a warm-up and printed best/median/worst.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from siliconomics import resolve
from siliconomics.catalog.registry import get_model
from siliconomics.catalog.schema import ChipSpec, ModelSpec
from siliconomics.inference.estimate import estimate_static
from siliconomics.inference.fast import Layout, static_point, static_times_many
from siliconomics.ops.device import Device
from siliconomics.parallel.plan import InferencePlan

REPO = Path(__file__).resolve().parents[1]
BENCH_VENV = REPO / ".bench-venv"
BENCH_PY = BENCH_VENV / "bin" / "python"
DRIVER = Path(__file__).resolve().parent / "_peer_driver.py"
PEER_INSTALL = {
    # llm-analysis pins transformers and huggingface-hub, which it imports only to fetch model
    # configs from the Hub (not used here); resolving them made pip backtrack for many minutes.
    # It needs fire at import time.
    "llm-analysis": [["--no-deps", "llm-analysis==0.2.2"], ["fire>=0.5,<0.6"]],
    "genz": [["genz-llm==0.0.16"]],
}
PEER_MODULES = {"llm-analysis": "llm_analysis.analysis", "genz": "GenZ"}

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
    "TTFT (prefill), TPOT (mean decode step over the generation, 4 contexts), e2e, "
    "throughput, memory fit, per config: static_times / static_point (fast path, times only) "
    "and estimate_static (the same figures with the per-op breakdown)"
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


@dataclass
class Timing:
    """Every timed pass of one of our paths (best, median and worst are printed)."""

    label: str
    configs: int
    times: list[float]
    calls: str = ""

    @property
    def best_per_config(self) -> float:
        return min(self.times) / self.configs


def timed(fn: Any, repeats: int, label: str, configs: int, calls: str = "") -> Timing:
    fn()  # warm-up (kernels built, caches warm), not timed
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return Timing(label, configs, times, calls)


def spread(times: list[float]) -> str:
    """min/median/max of the passes, seconds."""
    return f"min/median/max {min(times):.4g}/{float(np.median(times)):.4g}/{max(times):.4g} s"


# ----------------------------------------------------------------------------- peers


def _importable(tool: str) -> bool:
    code = f"import {PEER_MODULES[tool]}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    return BENCH_PY.exists() and subprocess.run([BENCH_PY, "-c", code], **quiet).returncode == 0


def bench_venv_status(install: bool) -> dict[str, str | None]:
    """Per peer: None when it imports in the bench venv, else why not (after trying to
    install it, each peer on its own so that one failing does not stop the other)."""
    out: dict[str, str | None] = {}
    for tool, steps in PEER_INSTALL.items():
        by_hand = " && ".join(f"{BENCH_PY} -m pip install {' '.join(a)}" for a in steps)
        if _importable(tool):
            out[tool] = None
            continue
        if not install:
            out[tool] = f"not installed in {BENCH_VENV}; install with:\n    {by_hand}"
            continue
        print(f"installing {tool} into {BENCH_VENV} (one time): {by_hand}", flush=True)
        out[tool] = _install(steps, by_hand)
        if out[tool] is None and not _importable(tool):
            out[tool] = f"installed but `import {PEER_MODULES[tool]}` fails; by hand: {by_hand}"
    return out


def _install(steps: list[list[str]], by_hand: str) -> str | None:
    cmds = [] if BENCH_PY.exists() else [["python3", "-m", "venv", str(BENCH_VENV)]]
    cmds += [[str(BENCH_PY), "-m", "pip", "install", "-q", *a] for a in steps]
    for cmd in cmds:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(cmd)}` timed out after 1200 s; by hand: {by_hand}"
        if r.returncode:
            tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            return f"`{' '.join(cmd)}` failed: {' | '.join(tail)}\n    by hand: {by_hand}"
    return None


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


def rate_line(t: Timing) -> str:
    """configs/s and us/config of the best, median and worst pass."""
    best, med, worst = min(t.times), float(np.median(t.times)), max(t.times)
    rates = "/".join(f"{t.configs / x:,.0f}" for x in (best, med, worst))
    us = "/".join(f"{1e6 * x / t.configs:,.2f}" for x in (best, med, worst))
    return f"{rates} configs/s, {us} us/config (best/median/worst of {len(t.times)})"


def peer_timing(p: dict[str, Any], label: str) -> Timing:
    return Timing(label, p["configs"], p.get("seconds_all", [p["seconds"]]))


def report_rates(ours: list[Timing], peers: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Every figure with its spread and its ratio to each peer that ran (best of N both
    sides: peer best seconds per configuration / ours); returns the ratios to llm-analysis."""
    print("\n=== configurations per second (time.perf_counter; best/median/worst of N passes) ===")
    refs: dict[str, Timing] = {}
    for tool, name in (("llm-analysis", "llm-analysis"), ("genz", "genz-llm (GenZ)")):
        p = peers[tool]
        if "failed" in p:
            print(f"{name}: COULD NOT RUN: {p['failed']}")
            continue
        refs[name] = peer_timing(p, f"{name} {p['version']}")
        print(
            f"{refs[name].label}: {rate_line(refs[name])} [{p['configs']} configs, one call "
            f"each; import {p['import_s']:.1f} s; {p['errors']} rejected by the tool]"
        )
    ratios: dict[str, float] = {}
    for t in ours:
        print(f"siliconomics {t.label}: {rate_line(t)} [{t.configs:,} configs{t.calls}]")
        parts = [
            f"{ref.best_per_config / t.best_per_config:,.2f}x {name}" for name, ref in refs.items()
        ]
        if parts:
            print(f"    speed ratio (best of N both sides): {'; '.join(parts)}")
        if "llm-analysis" in refs:
            ratios[t.label] = refs["llm-analysis"].best_per_config / t.best_per_config
    return ratios


def report_goals(ours: dict[str, Timing], ratios: dict[str, float]) -> None:
    """Issue 17's targets, on the best and on the median pass."""
    print("\n=== goals (issue 17) ===")
    for key in ("fast path, full grid", "fast path, 1M configurations"):
        t = ours[key]
        best, med = t.configs / min(t.times), t.configs / float(np.median(t.times))
        verdict = "MET" if best >= 1e6 else "NOT MET"
        print(f">= 1,000,000 configs/s, {key}: {verdict} (best {best:,.0f}/s, median {med:,.0f}/s)")
    key = "fast path, one configuration per call"
    if key in ratios:
        verdict = "MET" if ratios[key] >= 5 else "NOT MET"
        print(f">= 5x llm-analysis, one configuration per call: {verdict} ({ratios[key]:.2f}x)")
    else:
        print(">= 5x llm-analysis, one configuration per call: NOT MEASURED (peer did not run)")


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


def fitting_configs(
    grids: list[PlanGrid], ests: list[Any]
) -> tuple[list[dict[str, Any]], dict[tuple, tuple[float, float]]]:
    """The configurations that fit in memory, as dicts, with our (TTFT, TPOT) for each."""
    fit_cfgs: list[dict[str, Any]] = []
    ours_pred: dict[tuple, tuple[float, float]] = {}
    for g, e in zip(grids, ests, strict=True):
        for k in np.flatnonzero(np.asarray(e.memory.fits)):
            key = (g.model.id, g.tp, int(g.B[k]), int(g.I[k]), int(g.O[k]))
            fit_cfgs.append(dict(zip(CFG_KEYS, key, strict=True)))
            ours_pred[key] = (float(e.ttft_s[k]), float(e.tpot_s[k]))
    for s in SHOWCASE:
        assert s in ours_pred, f"showcase config {s} is not in the fitting grid"
    return fit_cfgs, ours_pred


CFG_KEYS = ("model", "tp", "batch", "input", "output")


def time_ours(
    chip: Device,
    grids: list[PlanGrid],
    fit_cfgs: list[dict[str, Any]],
    subset: list[dict[str, Any]],
    args: argparse.Namespace,
) -> list[Timing]:
    """Every path of ours: the fast path (whole grid in one call, 1M configurations, one
    configuration per call on the peer's configurations) and estimate_static (per-plan calls
    on the grid, one call per configuration on the GenZ subset)."""
    n_total = sum(g.B.size for g in grids)
    layouts = [Layout(g.model, chip, g.plan, g.B, g.I, g.O) for g in grids]
    reps = -(-args.million // n_total)
    big = [Layout(*lay[:3], *(np.tile(x, reps) for x in lay[3:])) for lay in layouts]
    models = {m: get_model(m) for m in MODELS}
    plans = {tp: InferencePlan(tp=tp) for tp in TPS}
    cfgs = [
        (models[c["model"]], plans[c["tp"]], c["batch"], c["input"], c["output"]) for c in fit_cfgs
    ]

    def points() -> None:
        for m, p, b, i, o in cfgs:
            static_point(m, chip, p, b, i, o)

    def scalar_loop() -> None:
        for c in subset:
            estimate_static(
                models[c["model"]], chip, plans[c["tp"]], c["batch"], c["input"], c["output"]
            )

    r = args.repeats
    one = f"; {len(grids)} layouts in one call"
    return [
        timed(lambda: static_times_many(layouts), r, "fast path, full grid", n_total, one),
        timed(
            lambda: static_times_many(big),
            max(2, r // 3),
            "fast path, 1M configurations",
            reps * n_total,
            f"; the grid x {reps}{one}",
        ),
        timed(points, r, "fast path, one configuration per call", len(cfgs), "; static_point"),
        timed(
            lambda: run_ours(chip, grids),
            r,
            "estimate_static, full grid",
            n_total,
            f"; {len(grids)} calls, full result with per-op breakdown",
        ),
        timed(
            scalar_loop,
            max(1, r // 2),
            "estimate_static, one configuration per call",
            len(subset),
            "; GenZ's subset",
        ),
    ]


def run_peers(
    args: argparse.Namespace,
    chip: Device,
    fit_cfgs: list[dict[str, Any]],
    subset: list[dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    peers: dict[str, dict[str, Any]] = {}
    chip_d, model_d = peer_inputs(chip.chip)
    status = {t: "skipped (--no-peers)" for t in PEER_INSTALL} if args.no_peers else None
    if status is None:
        status = bench_venv_status(install=not args.no_install)
    for tool, cfgs in (("llm-analysis", fit_cfgs), ("genz", subset)):
        if status.get(tool) is not None:
            peers[tool] = {"failed": status[tool]}
            continue
        print(f"running {tool} on {len(cfgs)} configs ...", flush=True)
        reps = args.peer_repeats if tool == "llm-analysis" else args.genz_repeats
        peers[tool] = run_peer(tool, chip_d, model_d, cfgs, reps)
        peers[tool]["cfgs"] = cfgs
    return peers


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genz-configs", type=int, default=100, help="random subset size for GenZ")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=10, help="passes of our timings")
    ap.add_argument("--million", type=int, default=1_000_000, help="configurations of the big run")
    ap.add_argument("--peer-repeats", type=int, default=5, help="passes of llm-analysis")
    ap.add_argument("--genz-repeats", type=int, default=2, help="passes of genz-llm")
    ap.add_argument("--no-install", action="store_true", help="never create .bench-venv")
    ap.add_argument("--no-peers", action="store_true", help="time siliconomics only")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    chip = resolve.device(CHIP)
    grids = build_grid(chip)
    n_total = sum(g.B.size for g in grids)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}, Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(f"chip {CHIP}, bf16 weights/activations/KV, static batch; plans (model tp):")
    for g in grids:
        print(f"  {g.model.id:<14} tp={g.tp}: {g.B.size} configs")
    print(f"grid: batch {BATCH}, input {INPUT}, output {OUTPUT} (input+output <= model context)")

    ests = run_ours(chip, grids)
    fit_cfgs, ours_pred = fitting_configs(grids, ests)
    print(f"\n{n_total} configurations, {len(fit_cfgs)} fit in memory (siliconomics' model)")
    rng = np.random.default_rng(args.seed)
    show = [dict(zip(CFG_KEYS, s, strict=True)) for s in SHOWCASE]
    pick = rng.choice(len(fit_cfgs), size=min(args.genz_configs, len(fit_cfgs)), replace=False)
    subset = show + [
        fit_cfgs[i] for i in sorted(pick) if tuple(fit_cfgs[i].values()) not in SHOWCASE
    ]

    peers = run_peers(args, chip, fit_cfgs, subset)
    ours = time_ours(chip, grids, fit_cfgs, subset, args)
    ratios = report_rates(ours, peers)
    report_goals({t.label: t for t in ours}, ratios)
    report_metrics(peers)
    report_sanity(peers, ours_pred)


if __name__ == "__main__":
    main()

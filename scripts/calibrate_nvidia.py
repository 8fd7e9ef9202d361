"""Fit the NVIDIA Ampere and Hopper efficiency profiles to vidur's measured op timings.

Usage (from the repository root)::

    .venv/bin/python scripts/calibrate_nvidia.py            # print the fit
    .venv/bin/python scripts/calibrate_nvidia.py --write    # and update the profile TOMLs

The data live in ``../shared/data/measured-ops`` (``--shared`` to point elsewhere). The fit
itself is :func:`siliconomics.calibrate.ops_fit.calibrate_nvidia`; this script only renders
and writes.
"""

from __future__ import annotations

import argparse
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w
from rich.console import Console
from rich.table import Table

from siliconomics.calibrate.ops_fit import FITTED_FACTORS, NvidiaFit, calibrate_nvidia
from siliconomics.catalog.registry import get_chip
from siliconomics.catalog.schema import EfficiencyProfile

REPO = Path(__file__).resolve().parents[1]
EFF_DIR = REPO / "src" / "siliconomics" / "catalog" / "data" / "efficiency"
VIDUR = "vidur @7d47513"  # shared/data/README.md: commit the files were taken from
FITTED = FITTED_FACTORS
UNFITTED = ("attention_efficiency", "step_overhead_s", "memory_reserve_fraction")
NO_DATA = "inferred default (no op-level data)"


@dataclass(frozen=True)
class Target:
    gpu: str  # folder under measured-ops/compute
    network: str  # folder under measured-ops/network
    chip_id: str


TARGETS = (
    Target("a100", "a100_dgx", "a100-sxm-80gb"),
    Target("h100", "h100_dgx", "h100-sxm"),
)


def _sig(x: float, digits: int = 3) -> float:
    """Round to significant digits (well inside the 1% the tests allow)."""
    return float(f"{x:.{digits}g}")


def _rel(path: Path, shared: Path) -> str:
    return f"shared/{path.relative_to(shared).as_posix()}"


def provenance(fit: NvidiaFit, shared: Path) -> dict[str, str]:
    compute = _rel(Path(fit.compute_dir), shared)
    network = _rel(Path(fit.network_csv), shared)
    hold = fit.stat("gemm_holdout", "all")
    seen = fit.stat("gemm_in_sample", "all")
    small = fit.stat("gemm_in_sample", "m<64")
    big = fit.stat("gemm_in_sample", "m>=1024")
    ar = fit.stat("all_reduce", ">=1MiB")
    gemm_src = (
        f"fitted on {compute} ({VIDUR}, PyTorch eager fp16 cuBLAS kernel times, "
        f"{fit.gemm_rows} GEMM rows with m<64 or m>=1024, hold-out {'+'.join(fit.holdout_models)} "
        f"median |err| {hold.median_abs_pct:.1f}% on {hold.rows} rows; all rows of the fitted "
        f"models {seen.median_abs_pct:.1f}%"
    )
    coll_src = (
        f"fitted on {network} ({VIDUR}, NCCL eager, 2/4/8 GPUs in one node, "
        f"{fit.all_reduce_rows} rows, median |err| {ar.median_abs_pct:.1f}% at >=1 MiB; "
        "one latency per collective on NVSwitch, flat in group size as measured)"
    )
    out = {
        "gemm_efficiency": f"{gemm_src}; m>=1024 {big.median_abs_pct:.1f}%)",
        "memory_efficiency": (
            f"{gemm_src}; weight-streaming GEMMs m<64 {small.median_abs_pct:.1f}%; "
            "not the element-wise ops, whose bandwidth is kernel-specific)"
        ),
        "kernel_overhead_s": (
            f"{gemm_src}; device-side kernel floor, host launch gaps not included)"
        ),
        "collective_latency_s": coll_src,
        "collective_efficiency": coll_src,
    }
    out.update({k: NO_DATA for k in UNFITTED})
    return out


def write_profile(fit: NvidiaFit, shared: Path) -> Path:
    family = get_chip(fit.chip_id).family
    path = EFF_DIR / f"{family}.toml"
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    old_prov = raw.pop("provenance", {})
    for name in FITTED:
        raw[name] = _sig(getattr(fit, name))
    new_prov = provenance(fit, shared)
    # Keep the provenance of every factor this fit does not write (fitted later by
    # scripts/calibrate_families.py, inherited, or taken from a source).
    for k, v in old_prov.items():
        if k not in FITTED and (k not in new_prov or str(v).startswith("fitted on")):
            new_prov[k] = v
    raw["provenance"] = new_prov
    EfficiencyProfile.model_validate(raw)  # refuse to write a file the catalog cannot load
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return path


def render(console: Console, fits: list[NvidiaFit]) -> None:
    t = Table(title="Fitted efficiency factors")
    t.add_column("factor")
    for f in fits:
        t.add_column(f.chip_id, justify="right")
    for name in FITTED:
        scale, unit = (1e6, " us") if name.endswith("_s") else (1.0, "")
        t.add_row(name, *(f"{getattr(f, name) * scale:.3f}{unit}" for f in fits))
    t.add_row("GEMM rows fitted", *(str(f.gemm_rows) for f in fits))
    t.add_row("all-reduce rows", *(str(f.all_reduce_rows) for f in fits))
    console.print(t)
    groups = (
        ("gemm_in_sample", "GEMM, fitted models (m<64 and m>=1024 fitted; ridge band scored)"),
        ("gemm_holdout", "GEMM, hold-out model"),
        ("all_reduce", "all-reduce (single node)"),
        ("memory_ops", "element-wise ops (diagnostic, not fitted)"),
    )
    for group, title in groups:
        t = Table(title=title)
        t.add_column("subset", no_wrap=True)
        for f in fits:
            t.add_column(f"{f.chip_id}\n  rows  med|err|%  p90%  bias%")
        for i, e0 in enumerate(getattr(fits[0], group)):
            cells = [e0.label]
            for f in fits:
                e = getattr(f, group)[i]
                cells.append(
                    f"{e.rows:6d}  {e.median_abs_pct:8.1f}  {e.p90_abs_pct:5.1f}  "
                    f"{e.median_signed_pct:+5.1f}"
                )
            t.add_row(*cells)
        console.print(t)
    t = Table(title="Element-wise ops: achieved fraction of peak HBM bandwidth, T >= 1024")
    t.add_column("op")
    for f in fits:
        t.add_column(f.chip_id, justify="right")
    for i, (op, _) in enumerate(fits[0].memory_op_bw_fraction):
        t.add_row(op, *(f"{f.memory_op_bw_fraction[i][1]:.2f}" for f in fits))
    console.print(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--shared",
        type=Path,
        default=REPO.parent / "shared",
        help="the shared/ folder holding data/measured-ops",
    )
    ap.add_argument("--write", action="store_true", help="update the profile TOML files")
    args = ap.parse_args()
    shared = args.shared.resolve()
    ops = shared / "data" / "measured-ops"
    fits = [
        calibrate_nvidia(
            ops / "compute" / t.gpu, ops / "network" / t.network / "all_reduce.csv", t.chip_id
        )
        for t in TARGETS
    ]
    console = Console(width=120)
    render(console, fits)
    if args.write:
        for f in fits:
            console.print(f"wrote {write_profile(f, shared).relative_to(REPO)}")


if __name__ == "__main__":
    main()

"""Median |error| of inference predictions per (source, family, dense/MoE, regime, dtype) on a
deterministic subset of the measured corpus plus the shared measured file.

Every usable inference row of the shared file is predicted; of each corpus file, rows are
grouped by (model, chip) and every ``k``-th row of each group is kept (the first one always),
so every cell is represented and the subset is the same on every run. Offline, static-batch and
latency rows are predicted analytically (as ``siliconomics validate`` does); ``server`` rows
need the serving simulator (slow) and are left out unless ``--server`` is given.

    python scripts/infer_errors.py                      # k = 8, default files
    python scripts/infer_errors.py -k 4 --rows 20       # denser subset, 20 worst rows
    python scripts/infer_errors.py --by family,model_class
    python scripts/infer_errors.py --only-server --files mlperf-inference-v5.1 --no-shared
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from siliconomics import resolve
from siliconomics.calibrate.samples import Sample
from siliconomics.catalog.catalog import Catalog
from siliconomics.errors import SiliconomicsError
from siliconomics.validate.banded import default_profile_set
from siliconomics.validate.cv import make_samples, predict

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "src" / "siliconomics" / "measured" / "corpus"
SHARED = ROOT.parent / "shared" / "validation" / "measured.csv"
FILES = (
    "trtllm",
    "mlperf-inference-v4.1",
    "mlperf-inference-v5.1",
    "rocm",
    "neuron",
    "gaudi",
    "jetstream",
    "inferencex",
)
KEYS = ("source", "family", "model_class", "regime", "dtype")


def subset(samples: list[Sample], k: int) -> list[Sample]:
    """Every k-th row of each (model, chip) cell, in file order."""
    cells: dict[tuple[str, str], list[Sample]] = {}
    for s in samples:
        cells.setdefault((s.row.model, s.row.chip), []).append(s)
    keep = {id(s) for cell in cells.values() for s in cell[::k]}
    return [s for s in samples if id(s) in keep]


def load_samples(paths: list[Path]) -> tuple[list[Sample], Catalog]:
    """Usable rows of ``paths`` as samples, and the catalog they resolve through."""
    rows, trains, cat, _ = resolve.measured_files(paths)
    return make_samples(rows, trains, cat)[0], cat


def key_of(s: Sample, source: str, keys: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for k in keys:
        out.append(source if k == "source" else str(getattr(s, k)))
    return tuple(out)


def collect(a: argparse.Namespace) -> list[tuple[str, Sample, Catalog]]:
    """(source, sample, catalog) of every row to predict, as the options select."""
    todo: list[tuple[str, Sample, Catalog]] = []
    if not a.no_shared:
        got, cat = load_samples([SHARED])
        todo += [("shared", s, cat) for s in got if s.row.kind == "inference"]
    for name in [f for f in a.files.split(",") if f]:
        got, cat = load_samples([CORPUS / f"{name}.csv"])
        got = [s for s in got if s.row.kind == "inference"]
        todo += [(name, s, cat) for s in subset(got, a.k)]
    if a.only_server:
        todo = [t for t in todo if t[1].row.scenario == "server"]
    return todo


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-k", type=int, default=8, help="keep every k-th corpus row per cell")
    ap.add_argument("--files", default=",".join(FILES), help="corpus files (comma-separated)")
    ap.add_argument("--no-shared", action="store_true", help="leave out the shared file")
    ap.add_argument("--server", action="store_true", help="also simulate server rows (slow)")
    ap.add_argument(
        "--only-server", action="store_true", help="only server rows (implies --server, k=1)"
    )
    ap.add_argument("--by", default=",".join(KEYS), help=f"group keys among {KEYS}")
    ap.add_argument("--rows", type=int, default=0, help="print the N worst rows")
    a = ap.parse_args()
    keys = tuple(x for x in a.by.split(",") if x)
    if a.only_server:
        a.server, a.k = True, 1
    if any(x not in KEYS for x in keys):
        print(f"--by: allowed keys {', '.join(KEYS)}", file=sys.stderr)
        return 2
    todo = collect(a)
    errs: list[tuple[tuple[str, ...], float, str, Sample]] = []
    skipped: dict[str, int] = {}
    t0 = time.time()
    for src, s, cat in todo:
        if s.row.scenario == "server" and not a.server:
            skipped["server rows (use --server)"] = skipped.get("server rows (use --server)", 0) + 1
            continue
        try:
            p = predict(s, default_profile_set(cat.profiles), cat)
        except SiliconomicsError as e:
            r = str(e).split(":")[0][:60]
            skipped[r] = skipped.get(r, 0) + 1
            continue
        pct = 100.0 * (p - s.row.value) / s.row.value
        errs.append((key_of(s, src, keys), pct, src, s))
    groups: dict[tuple[str, ...], list[float]] = {}
    for key, pct, _, _ in errs:
        groups.setdefault(key, []).append(pct)
    print(f"{len(errs)} rows predicted in {time.time() - t0:.0f} s (k={a.k})")
    print(" | ".join(f"{k:<14}" for k in keys) + " |   n | med|err| | med err")
    for key in sorted(groups):
        v = groups[key]
        med_abs = statistics.median(abs(x) for x in v)
        print(
            " | ".join(f"{k:<14}" for k in key)
            + f" | {len(v):3d} | {med_abs:7.1f}% | {statistics.median(v):+6.1f}%"
        )
    allv = [abs(x[1]) for x in errs]
    by_src: dict[str, list[float]] = {}
    for _, pct, src, _ in errs:
        by_src.setdefault(src, []).append(abs(pct))
    print(
        "per source: "
        + ", ".join(f"{k} {statistics.median(v):.1f}% ({len(v)})" for k, v in by_src.items())
    )
    if allv:
        print(f"ALL median |err| {statistics.median(allv):.1f}% over {len(allv)} rows")
    for r, n in sorted(skipped.items()):
        print(f"skipped {n}: {r}")
    if a.rows:
        print("worst rows:")
        for _, pct, src, s in sorted(errs, key=lambda x: -abs(x[1]))[: a.rows]:
            print(
                f"  {pct:+7.1f}%  {src:<22} {s.row.id}  ({s.row.chip}, {s.row.model}, {s.row.scenario})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

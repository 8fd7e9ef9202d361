"""Median |error| of the training predictions per (source, chip family, dense/MoE, dtype).

Predicts every usable training row of the corpus training files and of the shared measured
file (in-sample: the packaged profiles), then prints one line per group and, with ``--rows``,
every row. Usage::

    .venv/bin/python scripts/train_groups.py [--shared ../shared/validation/measured.csv]
        [--rows] [--csv OUT.csv]
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from siliconomics import resolve
from siliconomics.validate.train_rows import validate_training_rows

CORPUS = Path(__file__).resolve().parent.parent / "src/siliconomics/measured/corpus"
FILES = ("nemo", "maxtext", "gaudi", "mlperf-training-v4.0", "mlperf-training-v4.1",
         "mlperf-training-v5.0", "neuron")  # fmt: skip


def _dtype(act: str) -> str:
    a = (act or "bf16").lower()
    return "bf16" if a in ("bf16", "fp16", "") else a


def _results(path: Path, models_csv: Path, source: str) -> list[dict[str, object]]:
    _, train, cat = resolve.measured(path, models_csv)
    rep = validate_training_rows(train, cat)
    out: list[dict[str, object]] = []
    for r in rep.results:
        model = cat.models[r.row.model]
        method = next(t.train_method for t in train if t.row.id == r.row.id)
        kind = "moe" if model.moe is not None else "dense"
        if method == "lora":
            kind += "-lora"
        out.append(
            {
                "source": source,
                "id": r.row.id,
                "family": r.family,
                "class": kind,
                "dtype": _dtype(r.row.act_dtype or ""),
                "signed_pct": r.signed_pct,
                "abs_pct": r.abs_pct,
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared/validation/measured.csv"))
    ap.add_argument("--rows", action="store_true", help="print every row too")
    ap.add_argument("--csv", type=Path, help="write the per-row results here")
    ap.add_argument("--only", help="only the corpus file with this name (e.g. nemo)")
    a = ap.parse_args()
    mc = CORPUS / "models.csv"
    res: list[dict[str, object]] = []
    for f in FILES:
        if a.only and f != a.only:
            continue
        res += _results(CORPUS / f"{f}.csv", mc, f)
    if a.shared.exists() and not a.only:
        res += _results(a.shared, mc, "shared")
    groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for r in res:
        key = (str(r["source"]), str(r["family"]), str(r["class"]), str(r["dtype"]))
        groups.setdefault(key, []).append(r)
    print(f"{'source':22} {'family':10} {'class':10} {'dtype':7} {'n':>3} {'med|e|%':>8} "
          f"{'med e%':>8}")  # fmt: skip
    for key in sorted(groups):
        g = groups[key]
        ab = statistics.median(float(str(x["abs_pct"])) for x in g)
        sg = statistics.median(float(str(x["signed_pct"])) for x in g)
        print(f"{key[0]:22} {key[1]:10} {key[2]:10} {key[3]:7} {len(g):3d} {ab:8.1f} {sg:8.1f}")
    fam: dict[tuple[str, ...], list[float]] = {}
    for r in res:
        k = (str(r["family"]), str(r["class"]), str(r["dtype"]))
        fam.setdefault(k, []).append(float(str(r["abs_pct"])))
    print("\nby (family, class, dtype) over all sources:")
    for k in sorted(fam):
        v = fam[k]
        flag = "  <-- >30%" if len(v) >= 5 and statistics.median(v) > 30 else ""
        print(f"  {k[0]:10} {k[1]:10} {k[2]:7} {len(v):3d} {statistics.median(v):6.1f}{flag}")
    allv = [float(str(r["abs_pct"])) for r in res]
    print(f"\nall training rows: n={len(allv)} median |error| {statistics.median(allv):.1f}%")
    if a.rows:
        for r in sorted(res, key=lambda x: (str(x["source"]), str(x["id"]))):
            print(f"{r['source']:22} {r['id']:60} {float(str(r['signed_pct'])):+8.1f}")
    if a.csv:
        with a.csv.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(res[0]))
            w.writeheader()
            w.writerows(res)


if __name__ == "__main__":
    main()

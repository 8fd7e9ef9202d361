"""Largest relative change between two golden prediction files (or a git revision's file and
the current predictions): the statement a regenerated golden file cites.

    python scripts/golden_diff.py OLD.json NEW.json
    python scripts/golden_diff.py --rev HEAD ../shared/validation/measured.csv

Every value of ``tests/data/golden_predictions.json`` is ``repr(predicted)`` optionally
followed by `` sim=repr(simulated)``; both numbers are compared. Exit code 1 when a row
appears in only one file or the largest relative change exceeds ``--max`` (default 1e-9).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

GOLDEN = "tests/data/golden_predictions.json"


def numbers(v: str) -> list[float]:
    return [float(x.removeprefix("sim=")) for x in v.split()]


def rel(a: float, b: float) -> float:
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", help="old golden JSON file, or a measured CSV with --rev")
    ap.add_argument("new", nargs="?", help="new golden JSON file")
    ap.add_argument(
        "--rev",
        help="compare the golden file at this git revision with the "
        "current predictions of the measured CSV given as OLD",
    )
    ap.add_argument("--max", type=float, default=1e-9)
    a = ap.parse_args()
    if a.rev:
        root = Path(__file__).resolve().parents[1]
        text = subprocess.run(
            ["git", "show", f"{a.rev}:{GOLDEN}"],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
        ).stdout
        old = json.loads(text)
        sys.path.insert(0, str(root / "scripts"))
        from golden_predictions import predictions

        new = predictions(Path(a.old))
    else:
        old = json.loads(Path(a.old).read_text(encoding="utf-8"))
        new = json.loads(Path(a.new).read_text(encoding="utf-8"))
    only = sorted(set(old) ^ set(new))
    worst, where, changed = 0.0, "", 0
    for k in sorted(set(old) & set(new)):
        x, y = numbers(old[k]), numbers(new[k])
        if len(x) != len(y):
            only.append(k)
            continue
        r = max((rel(p, q) for p, q in zip(x, y, strict=True)), default=0.0)
        changed += r > 0
        if r > worst:
            worst, where = r, k
    print(f"{len(old)} rows, {changed} changed, max relative change {worst:.3g} ({where or '-'})")
    for k in only:
        print(f"in one file only (or a different number of values): {k}")
    return 1 if only or worst > a.max else 0


if __name__ == "__main__":
    sys.exit(main())

"""The 16 DeepSeek-R1 MLPerf v5.1 rows (Server by the capacity search, Offline by the static
estimate) with absorbed-MLA decode attention at the packaged kernel rate
(``mla_decode_efficiency`` of the 16-bit peak) and, for comparison, at the fused-attention
rate in the cache format (FP8 at ``attention_efficiency``, the model before 2026-11-30) and
at other kernel rates (docs/SERVING.md, "MLA attention rate"). Uses the packaged profiles,
not cross-validated ones: a sensitivity check.

    python scripts/mla_whatif.py [--eff 0.3,0.5] [--requests 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from siliconomics import resolve
from siliconomics.catalog.catalog import Catalog
from siliconomics.measured.rows import MeasuredRow
from siliconomics.validate.run import run_row
from siliconomics.validate.serve_rows import run_server_row

CORPUS = Path(__file__).resolve().parents[1] / "src/siliconomics/measured/corpus"
FAMILY = "nvidia-blackwell"


def predict(r: MeasuredRow, cat: Catalog, requests: int) -> float:
    m = cat.model(r.model)
    if r.scenario == "server":
        return run_server_row(r, m, cat, n_requests=requests).predicted
    return run_row(r, m, cat).predicted


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--eff", default="", help="other mla_decode_efficiency values to try")
    ap.add_argument("--requests", type=int, default=2000, help="requests per Server trial")
    a = ap.parse_args()
    rows, _, cat, _ = resolve.measured_files([CORPUS / "mlperf-inference-v5.1.csv"])
    rows = [r for r in rows if "deepseek-r1" in r.id and r.scenario in ("server", "offline")]
    prof = cat.profile(FAMILY)
    cases: list[tuple[str, Catalog]] = [
        (f"kernel {prof.mla_decode_efficiency}", cat),
        (
            "fp8-attn",
            cat.with_profiles({FAMILY: prof.model_copy(update={"mla_decode_efficiency": None})}),
        ),
    ]
    for e in (float(x) for x in a.eff.split(",") if x):
        upd = {"mla_decode_efficiency": e}
        cases.append((f"kernel {e:g}", cat.with_profiles({FAMILY: prof.model_copy(update=upd)})))
    errs: dict[tuple[str, str], list[float]] = {}
    print(f"{'row':<58} {'case':>12} {'error':>8}")
    for name, c in cases:
        for r in rows:
            e = predict(r, c, a.requests) / r.value - 1.0
            errs.setdefault((name, r.scenario), []).append(e)
            print(f"{r.id[9:67]:<58} {name:>12} {100 * e:>+7.1f}%", flush=True)
    print()
    for (name, scen), v in errs.items():
        print(f"{name:>12} {scen:<8} median {100 * statistics.median(v):+.1f}% ({len(v)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

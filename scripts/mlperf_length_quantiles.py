"""Print the 100 quantile midpoints of an MLPerf dataset's per-sample input and output lengths.

The tables in ``siliconomics/validate/mlperf_server.py`` (``INPUT_QUANTILES``,
``OUTPUT_QUANTILES``) come from this script run on the per-sample token counts that
openshift-psap/performance-dashboard summarises from the MLCommons dataset files
(``mlperf-data/summaries/<benchmark>.csv``, columns ``input_length,output_length``):

    python scripts/mlperf_length_quantiles.py deepseek-r1.csv --cap-output 20000

Quantile midpoints are taken at (i + 0.5)/100, i = 0..99, as sample values (inverted CDF, no
interpolation).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def midpoints(values: np.ndarray) -> list[int]:
    q = (np.arange(100) + 0.5) / 100.0
    return [int(v) for v in np.quantile(values, q, method="inverted_cdf")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=Path, help="a psap summaries file (input_length,output_length)")
    ap.add_argument("--cap-output", type=float, default=None, help="cap output lengths (tokens)")
    a = ap.parse_args()
    try:
        with a.csv.open(encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        inp = np.array([float(r["input_length"]) for r in rows])
        out = np.array([float(r["output_length"]) for r in rows])
    except (OSError, UnicodeDecodeError) as e:
        raise SystemExit(f"error: cannot read {a.csv}: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise SystemExit(
            f"error: {a.csv}: needs numeric columns input_length,output_length ({e})"
        ) from None
    if len(rows) == 0 or not (np.all(np.isfinite(inp)) and np.all(np.isfinite(out))):
        raise SystemExit(f"error: {a.csv}: no rows, or a length that is not a finite number")
    if a.cap_output is not None and not (a.cap_output >= 1 and np.isfinite(a.cap_output)):
        raise SystemExit(f"error: --cap-output must be a finite number >= 1, got {a.cap_output}")
    if a.cap_output is not None:
        out = np.minimum(out, a.cap_output)
    print(f"{a.csv.name}: {len(rows)} samples")
    print(
        f"input: mean {inp.mean():.2f}, median {np.median(inp):g}, range {inp.min():g}-{inp.max():g}"
    )
    print("input quantiles:", midpoints(inp))
    print(f"output: mean {out.mean():.2f}, range {out.min():g}-{out.max():g}")
    print("output quantiles:", midpoints(out))


if __name__ == "__main__":
    main()

"""Simulate one measured Server row at given arrival rates: TTFT, TPOT and running batch.

The capacity search (``siliconomics validate``) answers one number per row; this shows what
the simulator predicts at the rate a submitter actually ran (the ``req/s`` of the run's
``mlperf_log_summary.txt``), to compare with the measured TTFT and TPOT (docs/SERVING.md,
"Where the missing decode time is not").

    python scripts/server_at_rate.py NVIDIA-B200-SXM-180GBx8_TRT-deepseek-r1-Server 3.78,4.96
    python scripts/server_at_rate.py ID RATES --requests 26328 --file mlperf-inference-v5.1
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from siliconomics import resolve
from siliconomics.errors import SiliconomicsError
from siliconomics.serving.config import Slo
from siliconomics.serving.simulate import simulate
from siliconomics.validate.serve_rows import server_setup

CORPUS = Path(__file__).resolve().parents[1] / "src/siliconomics/measured/corpus"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("row", help="row id, or a unique part of it")
    ap.add_argument("rates", help="arrival rates, req/s for the whole row (comma-separated)")
    ap.add_argument("--file", default="mlperf-inference-v5.1", help="corpus file (no .csv)")
    ap.add_argument("--requests", type=int, default=26328, help="requests per simulation")
    a = ap.parse_args()
    try:
        rates = [float(x) for x in a.rates.split(",") if x]
        rows, _, cat, _ = resolve.measured_files([CORPUS / f"{a.file}.csv"])
        hits = [r for r in rows if a.row in r.id and r.scenario == "server"]
        if len(hits) != 1:
            raise SiliconomicsError(f"row: '{a.row}' matches {len(hits)} server rows, need one")
        row = hits[0]
        cfg, w = server_setup(row, cat.model(row.model), cat, n_requests=a.requests)
    except (SiliconomicsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    slo = Slo(ttft_s=row.slo_ttft_s, tpot_s=row.slo_tpot_s, percentile=99.0)
    print(f"{row.id}: measured {row.value:,.0f} {row.metric}")
    for rate in rates:
        r = simulate(cfg, replace(w, arrival=replace(w.arrival, rate=rate)), slo=slo, warmup=0.1)
        batch = r.pools[0].mean_batch / max(cfg.pool.plan.dp, 1)
        print(
            f"rate {rate:g}: {r.output_tokens_per_s:,.0f} tok/s, TTFT mean/p99 "
            f"{r.ttft.mean:.2f}/{r.ttft.p99:.2f} s, TPOT mean/p99 {r.tpot.mean * 1e3:.1f}/"
            f"{r.tpot.p99 * 1e3:.1f} ms, mean batch {batch:.0f} per attention rank"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

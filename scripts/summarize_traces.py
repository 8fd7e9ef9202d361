"""Write the packaged trace summaries used by named serving workloads.

    .venv/bin/python scripts/summarize_traces.py ../shared/data/traces

For each trace: a joint histogram of (input, output) tokens on 24 x 24 log-spaced integer
bins, the mean arrival rate and the coefficient of variation of the inter-arrival gaps.
Source data: microsoft/vidur @7d47513 (MIT licence; see serving/data/LICENSE-vidur-data.txt).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "src/siliconomics/serving/data"
FILES = {
    "azure-conv": (
        "splitwise_conv.csv",
        "Azure LLM inference trace, conversation service, November 2023 (Splitwise, "
        "Patel et al., ISCA 2024), as splitwise_conv.csv in microsoft/vidur @7d47513 (MIT)",
    ),
    "azure-code": (
        "splitwise_code.csv",
        "Azure LLM inference trace, coding service, November 2023 (Splitwise, Patel et al., "
        "ISCA 2024), as splitwise_code.csv in microsoft/vidur @7d47513 (MIT)",
    ),
    "arxiv-summarization": (
        "arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv",
        "arXiv summarisation prompt/output token counts (Llama-2 tokenizer), "
        "arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv in microsoft/vidur "
        "@7d47513 (MIT); no arrival times",
    ),
}
BINS = 24


def edges(x: np.ndarray) -> list[int]:
    e = np.unique(np.round(np.geomspace(x.min(), x.max() + 1, BINS + 1)).astype(int))
    e[-1] = max(e[-1], int(x.max()) + 1)
    return [int(v) for v in e]


def summarize(path: Path, source: str) -> dict[str, object]:
    with path.open() as fh:
        header = fh.readline().strip().split(",")
    d = np.loadtxt(path, delimiter=",", skiprows=1)
    inp = d[:, header.index("num_prefill_tokens")]
    out = d[:, header.index("num_decode_tokens")]
    ie, oe = edges(inp), edges(out)
    counts, _, _ = np.histogram2d(inp, out, bins=[ie, oe])
    s: dict[str, object] = {
        "source": source,
        "requests": len(d),
        "mean_input": round(float(inp.mean()), 2),
        "mean_output": round(float(out.mean()), 2),
        "input_edges": ie,
        "output_edges": oe,
        "counts": counts.astype(int).tolist(),
    }
    if "arrived_at" in header:
        t = np.sort(d[:, header.index("arrived_at")])
        gaps = np.diff(t)
        s["rate_per_s"] = round(len(t) / float(t[-1] - t[0]), 4)
        s["gap_cv"] = round(float(gaps.std() / gaps.mean()), 4)
    return s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("traces", type=Path)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (fname, source) in FILES.items():
        s = summarize(args.traces / fname, source)
        (OUT / f"{name}.json").write_text(json.dumps(s, separators=(",", ":")) + "\n")
        print(f"{name}: {s['requests']} requests, mean in/out {s['mean_input']}/{s['mean_output']}")
    lic = args.traces.parent / "LICENSE-vidur-data.txt"
    if lic.exists():
        shutil.copyfile(lic, OUT / "LICENSE-vidur-data.txt")


if __name__ == "__main__":
    main()

"""JetStream-PyTorch serving benchmarks on TPU (``benchmarks/summary.md``).

Reads ``<owner>+<repo>/<commit>/benchmarks/summary.md``: one table per model (``## Model``
heading) with date, device (``TPU v5e-8``), dtype, decode batch size, KV-cache length, maximum
input/output length and throughput. The runs are JetStream ``benchmark_serving.py`` over 2,000
ShareGPT prompts sent at once (offline), as described in the shared file's README.
"""

from __future__ import annotations

import re

from . import Importer, Row, SourceTree, register
from ._tables import dedupe, fmt, md_tables, notes, num, slug

MODELS = {"llama 3 - 8b": "llama-3-8b", "llama 2 - 7b": "llama-2-7b",
          "llama 2 - 13b": "llama-2-13b", "gemma - 7b": "gemma-7b", "gemma - 2b": "gemma-2b"}  # fmt: skip


def _row(rec: dict[str, str], model_name: str, cite: str, data_parallel: bool) -> Row | None:
    m = re.search(r"v5e-(\d+)", rec.get("Device", ""))
    tput = num(rec.get("throughput (token/s)", ""))
    if m is None or tput is None:
        return None
    n = int(m.group(1))
    model = MODELS.get(model_name.lower(), slug(model_name).lower())
    dtype = rec.get("dtype", "")
    int8 = dtype == "int8"
    cache = int(num(rec.get("cache length", "")) or 0)
    max_in = int(num(rec.get("max input length", "")) or 0)
    max_out = int(num(rec.get("max output length", "")) or 0)
    rolling = cache < max_in + max_out
    rep, tp = (n, 1) if data_parallel else (1, n)
    bs = num(rec.get("batch size", "")) or 0.0
    norm = [
        "JetStream benchmark_serving.py defaults to --request-rate inf: all 2,000 ShareGPT "
        "requests at t=0 (offline); batch = server decode slots; length_dist sharegpt-jetstream.",
        "int8 = --quantize_weights and --quantize_kv_cache (int8 weights and KV cache, bf16 "
        "activations)." if int8 else "bf16 weights, activations and KV cache.",
        f"--shard_on_batch (data parallel): {n} replicas, batch per replica = {fmt(bs)}/{n}."
        if data_parallel
        else f"tp={n} assumed for 'model-parallel across {n} chips' (tensor sharding).",
    ]  # fmt: skip
    return {
        "id": f"JETSTREAM-V5E{n}-{slug(model)}-{dtype.upper()}-bs{rec.get('batch size', '')}-C{cache}-{rec.get('Date', '')}",
        "kind": "inference",
        "scenario": "offline",
        "usable": "false" if rolling else "true",
        "model": model,
        "chip": "tpu-v5e",
        "n_chips": str(n),
        "replicas": str(rep),
        "tp": str(tp),
        "pp": "1",
        "ep": "1",
        "cp": "1",
        "dp": "1",
        "weight_dtype": "int8" if int8 else "bf16",
        "act_dtype": "bf16",
        "kv_dtype": "int8" if int8 else "bf16",
        "batch": fmt(bs / rep) if bs else "",
        "length_dist": "sharegpt-jetstream",
        "metric": "output_tokens_per_s",
        "value": fmt(tput),
        "inferred_fields": "" if data_parallel else "tp",
        "software": f"JetStream-PyTorch ({rec.get('Date', '')})",
        "source": cite,
        "notes": notes(
            f"TPU {rec.get('Device', '')}, {dtype}, batch {rec.get('batch size', '')}, KV-cache length "
            f"{cache}, max input {max_in}, max output {max_out}: {rec.get('throughput (token/s)', '')} "
            "tokens/s. '-chat'/'-it' weights; throughput as computed by JetStream (generated tokens/s).",
            normalized=norm,
            unusable="KV cache shorter than max input + max output: the run used rolling-window "
            "attention, which a standard decoder simulation does not model."
            if rolling
            else "",
        ),
    }


def read(tree: SourceTree) -> list[Row]:
    rows: list[Row] = []
    for path in tree.list("**/summary.md"):
        repo, _, rest = path.partition("/")
        commit, _, rel = rest.partition("/")
        cite = f"github {repo.replace('+', '/')} @{commit}: {rel}"
        text = tree.read(path)
        lines = text.splitlines()
        for line_no, table in md_tables(text):
            heading = next((ln for ln in reversed(lines[:line_no]) if ln.startswith("## ")), "")
            name = heading.lstrip("#").strip()
            end = next(
                (i for i in range(line_no + 1, len(lines)) if lines[i].startswith("#")), len(lines)
            )
            after = "\n".join(lines[line_no:end])  # this model's section only
            dp = "shard_on_batch" in after and "data parallel" in after
            head = table[0]
            for cells in table[1:]:
                rec = dict(zip(head, cells, strict=False))
                r = _row(rec, name, cite, dp)
                if r:
                    rows.append(r)
    return dedupe(rows)


IMPORTER = register(
    Importer(
        name="jetstream-perf",
        description="JetStream-PyTorch benchmarks/summary.md (TPU v5e serving throughput), laid out "
        "as <owner>+<repo>/<commit>/benchmarks/summary.md",
        read=read,
    )
)

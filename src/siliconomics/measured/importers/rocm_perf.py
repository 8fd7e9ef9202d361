"""AMD ROCm vLLM dev-docker performance tables (ROCm/vllm ``docs/dev-docker/README.md``).

Reads snapshots laid out as ``ROCm+vllm/<date>-<commit>/docs/dev-docker/README.md`` (the date
orders the releases). Each README names its image (``- vLLM x.y.z``, ``- ROCm x.y``) and has:

* "Throughput Measurements": ``benchmark_throughput.py`` with fixed input/output lengths,
  ``Num Prompts`` requests all queued and ``Max Num Seqs`` concurrent sequences (offline);
* "Latency Measurements": ``benchmark_latency.py``: one batch of ``Batch Size`` sequences
  processed together, mean end-to-end time of the batch (static batch).

A measurement repeated unchanged in a later README (same configuration and value) is kept once,
with the earliest release that published it.
"""

from __future__ import annotations

import re

from . import Importer, Row, SourceTree, register
from ._tables import dedupe, fmt, md_tables, notes, num, slug

MODELS = {"llama 3.1 70b": "llama-3.1-70b", "llama 3.1 405b": "llama-3.1-405b",
          "llama 3.1 8b": "llama-3.1-8b"}  # fmt: skip
PREC = {"fp8": "fp8", "fp16": "fp16", "bf16": "bf16"}


def _version(text: str, name: str) -> str:
    m = re.search(rf"^-\s*{name}\S*\s+([0-9][0-9.a-z]*)", text, re.M)
    return m.group(1) if m else ""


def _section(text: str, title: str) -> str:
    i = text.find(title)
    if i < 0:
        return ""
    j = text.find("\n### ", i + len(title))
    return text[i : j if j > 0 else len(text)]


def _records(table: list[list[str]]) -> list[dict[str, str]]:
    head = table[0]
    out, carry = [], [""] * len(head)
    for cells in table[1:]:
        cells = cells + [""] * (len(head) - len(cells))
        for k in range(3):  # model, precision, TP are left blank on continuation rows
            if cells[k]:
                carry[k] = cells[k]
            else:
                cells[k] = carry[k]
        out.append(dict(zip(head, cells, strict=False)))
    return out


def _common(rec: dict[str, str], text: str, cite: str, kv_cmd: bool) -> Row:
    name = rec["Model"].split("(")[0].strip()
    model = MODELS.get(name.lower(), slug(name).lower())
    tp = int(num(rec.get("TP Size", "")) or 0)
    prec = PREC.get(rec.get("Precision", "").lower(), "")
    return {
        "kind": "inference",
        "usable": "true" if tp and prec else "false",
        "model": model,
        "chip": "mi300x",
        "n_chips": str(tp),
        "replicas": "1",
        "tp": str(tp),
        "pp": "1",
        "ep": "1",
        "cp": "1",
        "dp": "1",
        "weight_dtype": prec,
        "act_dtype": prec,
        "kv_dtype": "fp8" if kv_cmd and prec == "fp8" else "fp16",
        "input_len": rec.get("Input", ""),
        "output_len": rec.get("Output", ""),
        "length_dist": "fixed",
        "inferred_fields": "kv_dtype",
        "software": f"vLLM {_version(text, 'vLLM')} ROCm (rocm/vllm-dev image, ROCm {_version(text, 'ROCm')})",
        "source": cite,
    }


def _kv_note(kv_cmd: bool) -> str:
    return "kv_dtype from this README's example command: " + (
        "--kv-cache-dtype fp8." if kv_cmd else "no --kv-cache-dtype, so the KV cache is float16."
    )


def _throughput(rec: dict[str, str], text: str, cite: str, ver: str) -> Row | None:
    v = num(rec.get("Throughput (tokens/s)", ""))
    if v is None:
        return None
    kv_cmd = "--kv-cache-dtype fp8" in _section(text, "### Throughput Benchmark")
    row = _common(rec, text, cite, kv_cmd)
    seqs = rec.get("Max Num Seqs", "")
    return {
        **row,
        "id": f"ROCM-VLLM{ver}-MI300X-{slug(row['model'])}-TP{row['tp']}-THR-{row['input_len']}-{row['output_len']}",
        "scenario": "offline",
        "batch": seqs,
        "metric": "output_tokens_per_s",
        "value": fmt(v),
        "notes": notes(
            f"{rec['Model']}, TP {row['tp']}, in {row['input_len']}/out {row['output_len']}, "
            f"{rec.get('Num Prompts', '')} prompts, max_num_seqs {seqs}: {rec['Throughput (tokens/s)']} "
            "tokens/s. 8x MI300X server.",
            normalized=[
                "benchmark_throughput.py with random fixed-length prompts, all queued = offline; "
                "batch = max_num_seqs.",
                "'Throughput (tokens/s)' read as output tokens/s: read as total tokens/s it would "
                "imply fewer output tokens/s at 2048/2048 than the same README's batch-128 latency "
                "run, which a run allowing far more concurrent sequences cannot be.",
                _kv_note(kv_cmd),
            ],
        ),
    }


def _latency(rec: dict[str, str], head: str, text: str, cite: str, ver: str) -> Row | None:
    col = next((k for k in rec if "Latency" in k), "")
    v = num(rec.get(col, ""))
    if v is None:
        return None
    scale = 1e-3 if "(ms)" in col else 1.0
    kv_cmd = "--kv-cache-dtype fp8" in _section(text, "### Latency Benchmark")
    row = _common(rec, text, cite, kv_cmd)
    bs = rec.get("Batch Size", "")
    return {
        **row,
        "id": f"ROCM-VLLM{ver}-MI300X-{slug(row['model'])}-TP{row['tp']}-LAT-bs{bs}-{row['input_len']}-{row['output_len']}",
        "scenario": "latency" if bs == "1" else "static_batch",
        "batch": bs,
        "metric": "e2e_latency_s",
        "percentile": "mean",
        "value": fmt(v * scale),
        "notes": notes(
            f"{rec['Model']}, TP {row['tp']}, batch {bs}, in {row['input_len']}/out "
            f"{row['output_len']}: {rec[col]} ({col}). 8x MI300X server.",
            normalized=[
                "benchmark_latency.py: one batch of batch_size sequences prefilled and decoded "
                "together; value = mean end-to-end time of the batch over the timed iterations.",
                _kv_note(kv_cmd),
            ],
            conversion=f"value = {rec[col]} ms / 1000." if scale != 1.0 else "",
        ),
    }


def read(tree: SourceTree) -> list[Row]:
    rows: list[Row] = []
    seen: set[tuple[str, ...]] = set()
    for path in tree.list("**/README.md"):
        repo, _, rest = path.partition("/")
        snap, _, rel = rest.partition("/")
        commit = snap.rsplit("-", 1)[-1]
        cite = f"github {repo.replace('+', '/')} @{commit}: {rel}"
        text = tree.read(path)
        ver = _version(text, "vLLM")
        for _, table in md_tables(text):
            head = " | ".join(table[0])
            if "Model" not in head or "TP Size" not in head:
                continue
            for rec in _records(table):
                r = (
                    _throughput(rec, text, cite, ver)
                    if "Throughput" in head
                    else _latency(rec, head, text, cite, ver)
                )
                if r is None:
                    continue
                key = (
                    r["model"],
                    r["tp"],
                    r["metric"],
                    r["batch"],
                    r["input_len"],
                    r["output_len"],
                    r["value"],
                )
                if key in seen:
                    continue
                seen.add(key)
                rows.append(r)
    return dedupe(rows)


IMPORTER = register(
    Importer(
        name="rocm-perf",
        description="AMD ROCm/vllm docs/dev-docker/README.md throughput and latency tables (MI300X), "
        "snapshots laid out as ROCm+vllm/<date>-<commit>/docs/dev-docker/README.md",
        read=read,
    )
)

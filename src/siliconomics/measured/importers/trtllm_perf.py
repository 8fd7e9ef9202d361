"""TensorRT-LLM performance overview pages (``docs/source/performance/perf-overview.md``).

Reads saved copies (``*.md``) that start with ``key: value`` lines (``repo``, ``commit``,
``path``, ``version``) followed by the page's throughput tables, in either layout:

* v0.10-v0.17: one wide table, columns per GPU, a 'Precision' row, rows per model / tensor
  parallel size / "ISL, OSL" (the model and TP cells are left blank on continuation rows);
* v0.19-v1.0: one table per model (``#### Model`` heading), rows "ISL/OSL", columns
  "GPU TPn (PREC)".

Every value is ``trtllm-bench throughput`` max-throughput output tokens/s of one TP group
(offline scenario: all requests queued, in-flight batching, fixed ISL/OSL). Only pages under
``docs/source/performance/`` are read; the newer page kept apart for independent testing
(see the kept-apart list in corpus/README.md) is not.
"""

from __future__ import annotations

import re

from . import Importer, Row, SourceTree, register
from ._tables import dedupe, fmt, md_tables, notes, num, slug

GPUS = {
    "h200": "h200-sxm",
    "h100": "h100-sxm",
    "gh200": "gh200",
    "l40s": "l40s",
    "a100": "a100-sxm-80gb",
    "b200": "b200",
    "gb200": "gb200",
}
MODELS = {
    "llama v3.1 8b": "llama-3.1-8b",
    "llama v3.1 70b": "llama-3.1-70b",
    "llama v3.1 405b": "llama-3.1-405b",
    "llama 3.1 8b": "llama-3.1-8b",
    "llama 3.1 405b": "llama-3.1-405b",
    "llama 3.3 70b": "llama-3.3-70b",
    "llama 4 scout": "llama-4-scout",
    "llama 4 maverick": "llama-4-maverick",
    "qwen3-235b-a22b": "qwen3-235b-a22b",
    "qwen3-30b-a3b": "qwen3-30b-a3b",
    "mistral 7b": "mistral-7b-v0.1",
    "mixtral 8x7b": "mixtral-8x7b",
    "mixtral 8x22b": "mixtral-8x22b",
    "llama v2 7b": "llama-2-7b",
    "llama v2 70b": "llama-2-70b",
    "llama v3 8b": "llama-3-8b",
    "llama v3 70b": "llama-3-70b",
    "gpt-j 6b": "gpt-j-6b",
}
MOE = {"llama-4-scout", "llama-4-maverick", "qwen3-235b-a22b", "qwen3-30b-a3b", "mixtral-8x7b",
       "mixtral-8x22b"}  # fmt: skip
PREC = {"fp8": "fp8", "fp4": "fp4", "fp16": "fp16", "bf16": "bf16", "mixed": "fp16"}


def _meta(text: str) -> dict[str, str]:
    meta: dict[str, str] = {}
    for ln in text.splitlines():
        m = re.match(r"^([a-z]+):\s*(.*)$", ln)
        if not m:
            break
        meta[m.group(1)] = m.group(2).strip()
    return meta


def _chip(name: str) -> str:
    if "pcie" in name.lower():
        return "a100-pcie-80gb" if name.lower().startswith("a100") else ""
    key = name.strip().split()[0].lower().split("-")[0] if name.strip() else ""
    return GPUS.get(key, "")


def _lengths(cell: str) -> tuple[int, int] | None:
    nums = re.findall(r"\d+", cell.replace(",", ", "))
    if len(nums) != 2 or not re.fullmatch(r"\s*\d+\s*[,/]\s*\d+\s*", cell):
        return None
    return int(nums[0]), int(nums[1])


def _wide(table: list[list[str]]) -> list[tuple[str, str, int, str, tuple[int, int], float]]:
    """(model name, gpu column, tp, precision, (isl, osl), value) of a v0.1x wide table.

    The GPU names are in the row (header or first body row) that has a 'GPU' cell, one per
    value column from the fourth on; an empty name continues the one to its left (a GPU with
    two precision columns). The 'Precision' row gives each column's precision.
    """
    gpu_row = next((r for r in table if "GPU" in r[:3]), None)
    prec_row = next((r for r in table if "Precision" in r[:3]), [])
    if gpu_row is None:
        return []
    names, last = [], ""
    for c in gpu_row[3:]:
        last = c or last
        names.append(last)
    out = []
    model, tp = "", 0
    for r in table:
        if len(r) < 4:
            continue
        if r[0] and r[0] not in ("Model", "Throughput (tokens / sec)"):
            model = r[0]
        if num(r[1]) is not None:
            tp = int(num(r[1]) or 0)
        lens = _lengths(r[2])
        if lens is None:
            continue
        for j, cell in enumerate(r[3:]):
            v = num(cell)
            if v is not None and j < len(names):
                prec = prec_row[3 + j] if 3 + j < len(prec_row) else ""
                out.append((model, names[j], tp, prec, lens, v))
    return out


def _per_model(
    table: list[list[str]], heading: str
) -> list[tuple[str, str, int, str, tuple[int, int], float]]:
    """Rows of a v0.19+ per-model table: columns 'GPU TPn (PREC)'."""
    head = table[0]
    if not head or "ISL/OSL" not in head[0]:
        return []
    model = heading.lstrip("#").strip()
    cols = []
    for h in head[1:]:
        m = re.match(r"(\S+)\s+TP(\d+)\s*\((\w+)\)", h)
        cols.append((m.group(1), int(m.group(2)), m.group(3)) if m else None)
    out = []
    for r in table[1:]:
        lens = _lengths(r[0])
        if lens is None:
            continue
        for j, c in enumerate(cols, start=1):
            v = num(r[j]) if j < len(r) else None
            if c is not None and v is not None:
                out.append((model, c[0], c[1], c[2], lens, v))
    return out


def _row(
    item: tuple[str, str, int, str, tuple[int, int], float], meta: dict[str, str], path: str
) -> Row | None:
    name, gpu, tp, prec_raw, (isl, osl), value = item
    chip = _chip(gpu)
    prec = PREC.get(prec_raw.lower(), "")
    model = MODELS.get(name.lower().strip(), slug(name).lower())
    if not chip or not prec or tp < 1:
        return None
    ver = meta.get("version", "").split()[0]
    newer = ver.startswith("1") or "pytorch" in meta.get("version", "").lower()
    moe_adp = newer and model in MOE and tp > 1
    kv = "fp16" if prec == "fp16" else "fp8"
    mixed = prec_raw.lower() == "mixed"
    inferred = [f for f, on in (("kv_dtype", newer), ("model", model == "mistral-7b-v0.1"),
                                ("tp;dp;ep", moe_adp),
                                ("weight_dtype;act_dtype;kv_dtype", mixed)) if on]  # fmt: skip
    norm = [
        "trtllm-bench max-throughput run (all requests queued, in-flight batching) = offline "
        "scenario; batch empty (the scheduler and KV-cache capacity decide it). Fixed ISL/OSL "
        "(token-norm-dist with stdev 0). Value = generated tokens/s of the whole TP group.",
    ]
    if newer:
        norm.append(
            "kv_dtype fp8 assumed: the NVIDIA ModelOpt FP8/NVFP4 checkpoints carry "
            "kv_cache_quant_algo FP8."
        )
    else:
        norm.append("KV cache FP8 with FP8 quantization (stated on the page); FP16 engines FP16.")
    if moe_adp:
        norm.append(
            f"MoE: the page runs MoE models with enable_attention_dp: true over the TP{tp} "
            f"group, so attention is data-parallel over {tp} GPUs (tp=1, dp={tp}); the EP size "
            f"is not in the table, ep={tp} assumed. LAYOUT AMBIGUOUS: the page's MoE "
            "llm_options.yml nests enable_attention_dp under cuda_graph_config, whose pydantic "
            "model (CudaGraphConfig, a StrictBaseModel: extra fields forbidden, "
            "tensorrt_llm/llmapi/llm_args.py) rejects that key, so the printed file is not the "
            "one that ran; whether attention DP was on is not recoverable from the source "
            f"(tp={tp}, dp=1 is the other reading)."
        )
    if model == "mistral-7b-v0.1":
        norm.append("'Mistral 7B' version not stated; mistral-7b-v0.1 assumed.")
    if mixed:
        norm.append(
            "Precision column 'Mixed' (an unquantized 16-bit engine): fp16 weights, activations "
            "and KV cache assumed."
        )
    if prec == "fp4":
        norm.append("FP4 = NVFP4 weights and activations (ModelOpt FP4 checkpoints).")
    layout = (
        {"tp": "1", "dp": str(tp), "ep": str(tp)}
        if moe_adp
        else {"tp": str(tp), "dp": "1", "ep": "1"}
    )
    stack = "PyTorch backend, trtllm-bench" if newer else "TensorRT engine, trtllm-bench"
    if chip == "gh200" and not newer:
        stack = "TensorRT engine, gptManagerBenchmark IFB"
    return {
        "id": f"TRTLLM-{slug(ver)}-{slug(chip)}-{slug(model)}-TP{tp}-{'MIXED' if mixed else prec.upper()}-{isl}-{osl}",
        "kind": "inference",
        "scenario": "offline",
        "usable": "true",
        "model": model,
        "chip": chip,
        "n_chips": str(tp),
        "replicas": "1",
        "pp": "1",
        "cp": "1",
        **layout,
        "weight_dtype": prec,
        "act_dtype": prec,
        "kv_dtype": kv,
        "input_len": str(isl),
        "output_len": str(osl),
        "length_dist": "fixed",
        "metric": "output_tokens_per_s",
        "value": fmt(value),
        "inferred_fields": ";".join(inferred),
        "software": f"TensorRT-LLM {ver} ({stack})",
        "source": f"github {meta.get('repo', '')} @{meta.get('commit', '')[:12]}: "
        f"{meta.get('path', '')} (saved table {path})",
        "notes": notes(
            f"{name} on {gpu}, TP{tp}, {prec_raw}, ISL/OSL {isl}/{osl}: {fmt(value)} tokens/s "
            "(page: max-throughput, requests at an infinite rate).",
            normalized=norm,
        ),
    }


def read(tree: SourceTree) -> list[Row]:
    rows: list[Row] = []
    for path in tree.list("**/*.md"):
        text = tree.read(path)
        meta = _meta(text)
        lines = text.splitlines()
        for line_no, table in md_tables(text):
            heading = next((ln for ln in reversed(lines[:line_no]) if ln.startswith("#")), "")
            for item in _wide(table) + _per_model(table, heading):
                r = _row(item, meta, path)
                if r:
                    rows.append(r)
    return dedupe(rows)


IMPORTER = register(
    Importer(
        name="trtllm-perf",
        description="TensorRT-LLM docs/source/performance/perf-overview.md throughput tables "
        "(saved copies with repo/commit/path/version header lines); v0.1x wide and v1.0 layouts",
        read=read,
    )
)

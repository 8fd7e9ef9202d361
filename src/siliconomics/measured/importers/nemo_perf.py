"""NVIDIA NeMo / Megatron-Bridge performance summaries (markdown pre-training and fine-tuning tables).

Reads copies of ``docs/source/performance/performance_summary.md`` (NVIDIA/NeMo) and
``docs/performance-summary.md`` (NVIDIA-NeMo/Megatron-Bridge) laid out as
``<owner>+<repo>/<commit>/<path>``. Each table row gives #GPUs, GBS, MBS, sequence length, the
parallel layout (FSDP, TP, PP, CP, VP, EP, GA where present) and Tokens/sec/GPU.

A cell "A (B)" gives a second measurement (another precision granularity or layout): it becomes
a second row (id suffix ``-ALT``) built from the parenthesised values, other cells unchanged.
Sections for 26.x containers are kept apart for independent testing and are never imported.
"""

from __future__ import annotations

import re

from . import Importer, Row, SourceTree, register
from ._tables import dedupe, fmt, md_tables, notes, num, slug

MODELS = {
    "llama3-8b": "llama-3-8b",
    "llama3-70b": "llama-3-70b",
    "llama3.1-405b": "llama-3.1-405b",
    "llama3-405b": "llama-3.1-405b",
    "llama2-7b": "llama-2-7b",
    "llama2-13b": "llama-2-13b",
    "llama2-70b": "llama-2-70b",
    "gpt3-175b": "gpt-3-175b",
    "gpt3-5b": "nemo-gpt3-5b",
    "gpt3-20b": "nemo-gpt3-20b",
    "nemotron-8b": "nemotron-8b",
    "nemotron-15b": "nemotron-4-15b",
    "nemotron-22b": "nemotron-22b",
    "nemotron-340b": "nemotron-4-340b",
    "deepseekv3": "deepseek-v3",
    "gpt-oss-120b": "gpt-oss-120b",
    "qwen3-30b-a3b": "qwen3-30b-a3b",
    "qwen3-235b-a22b": "qwen3-235b-a22b",
    "mixtral-8x7b": "mixtral-8x7b",
    "mixtral-8x22b": "mixtral-8x22b",
}
SYSTEMS = {"DGX-H100": "h100-sxm", "DGX-B200": "b200", "DGX-GB200": "gb200", "DGX-GB300": "gb300"}
PRECISIONS = {
    "fp8 (page text)": "fp8",
    "bf16": "bf16",
    "fp8": "fp8",
    "fp8-cs": "fp8",
    "fp8-mx": "fp8",
    "mxfp8": "fp8",
}
_PAREN = re.compile(r"^(.*?)\s*\((.*)\)\s*$")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def _split(cell: str) -> tuple[str, str | None]:
    """'A (B)' -> ('A', 'B'); 'A' -> ('A', None)."""
    m = _PAREN.match(cell.strip())
    if not m or not m.group(1):
        return cell.strip(), None
    return m.group(1).strip(), m.group(2).strip()


def _model(name: str) -> tuple[str, str]:
    """Catalog-style model id and the qualifier the page gave in parentheses."""
    base, qual = _split(name)
    key = re.sub(r"[\s_]+", "-", base.strip().lower())
    return MODELS.get(key, key), qual or ""


def _context(text: str, line_no: int) -> tuple[str, str, bool]:
    """(container, system, fine-tuning?) in force at a table: nearest statements above it."""
    container = system = ""
    finetune = False
    for ln in text.splitlines()[:line_no]:
        m = re.search(r"(\d\d\.\d\d)\s+NeMo Container|Container:\s*\[?NeMo\s*(\d\d\.\d\d)", ln)
        if m:
            container = m.group(1) or m.group(2)
        m = re.search(r"System:\s*(DGX-[A-Z0-9]+)", ln)
        if m:
            system = m.group(1)
        if ln.startswith("#"):
            finetune = "fine" in ln.lower() and "tun" in ln.lower()
    return container, system, finetune


def _rows_of_table(text: str, line_no: int, table: list[list[str]], cite: str) -> list[Row]:
    container, system, finetune = _context(text, line_no)
    stated_fp8 = "at FP8 precision" in "\n".join(text.splitlines()[:line_no][-12:])
    if not container or container.startswith("26"):
        return []  # 26.x containers are kept apart for independent testing
    head = [h.lower() for h in table[0]]
    if "model" not in head or not any("tokens / sec / gpu" in h for h in head):
        return []
    out: list[Row] = []
    for cells in table[1:]:
        rec = {h: _LINK.sub(r"\1", c) for h, c in zip(head, cells, strict=False)}
        tps_cell = next((c for k, c in rec.items() if "tokens / sec / gpu" in k), "")
        has_alt = _split(tps_cell)[1] is not None
        for alt in (False, True) if has_alt else (False,):
            vals = {
                k: (_split(c)[1] or _split(c)[0]) if alt else _split(c)[0] for k, c in rec.items()
            }
            sysname = vals.get("system", system)
            if stated_fp8 and not vals.get("precision"):
                vals["precision"] = "FP8 (page text)"
            row = _row(vals, rec, sysname, container, finetune, alt, cite)
            if row:
                out.append(row)
    return out


def _int(vals: dict[str, str], key: str) -> int | None:
    v = num(vals.get(key, ""))
    return int(v) if v is not None else None


def _row(
    vals: dict[str, str],
    raw: dict[str, str],
    sysname: str,
    container: str,
    finetune: bool,
    alt: bool,
    cite: str,
) -> Row | None:
    chip = SYSTEMS.get(sysname)
    n = _int(vals, "#-gpus")
    tps = num(vals.get("tokens / sec / gpu", ""))
    if chip is None or n is None or tps is None:
        return None
    model, qual = _model(raw["model"])
    tp, pp, cp = (_int(vals, k) or 1 for k in ("tp", "pp", "cp"))
    ep = _int(vals, "ep") or 1
    dp, rem = divmod(n, tp * pp * cp)
    seq = _int(vals, "sequence length") or _int(vals, "packed sequence length")
    prec_raw = vals.get("precision", "")
    prec = PRECISIONS.get(prec_raw.lower(), "fp8" if not prec_raw else "")
    task = vals.get("task", "")
    method = "lora" if task.lower() == "lora" else "full"
    fsdp_cell = vals.get("fsdp", "")
    fsdp = {"1": str(dp), "0": "false"}.get(fsdp_cell, "")
    inferred = [] if prec_raw else ["weight_dtype", "act_dtype"]
    tflops = vals.get("model tflop / sec / gpu", "")
    kind = f"fine-tuning ({task})" if finetune else "pre-training"
    orig = (
        f"{sysname} {kind}, NeMo {container} container. Model TFLOP/s/GPU = {tflops or 'not given'} "
        f"(NeMo's formula). GA {vals.get('ga', 'not given')}."
        + (f" Page qualifier: '{qual}'." if qual else "")
        + (" Alternative measurement given in parentheses on the page." if alt else "")
    )
    norm = [f"dp = {n}/(tp*pp*cp) = {dp} (derived)."]
    if prec_raw:
        norm.append(f"Precision '{prec_raw}': {prec} GEMMs with bf16/fp32 master weights.")
    else:
        norm.append(
            "Precision not in the table; fp8 assumed from the page text (FP8 pre-training with "
            "per-tensor current scaling; the parenthesised numbers use finer-grained FP8 "
            "scaling: MXFP8 32x32 blocks on Blackwell, 128x128/1x128 blocks on H100)."
        )
    if fsdp_cell:
        norm.append(
            "'FSDP' 1 = parameters sharded over all dp ranks (fsdp=dp), 0 = DDP (fsdp=false)."
        )
    if finetune:
        norm.append("SQuAD-v1.1 packed to the sequence length (fixed-length packed sequences).")
    unusable = (
        "" if rem == 0 and prec else f"#GPUs {n} not divisible by tp*pp*cp or precision unknown"
    )
    ga, mbs, gbs = _int(vals, "ga"), _int(vals, "mbs"), _int(vals, "gbs")
    if not unusable and ga and mbs and gbs and mbs * dp * ga != gbs:
        unusable = (
            f"as published, MBS {mbs} x DP {dp} x GA {ga} = {mbs * dp * ga} differs from GBS "
            f"{gbs}: the micro-batch schedule is not determined"
        )
    sid = f"NEMO-{container.replace('.', '')}-{slug(sysname.replace('DGX-', ''))}-{slug(model)}-{n}"
    sid += f"-{slug(prec_raw.replace(' (page text)', '')) or 'FP8'}" + (
        "-LORA" if method == "lora" else "-SFT" if finetune else ""
    )
    return {
        "id": sid + ("-ALT" if alt else ""),
        "kind": "training",
        "scenario": "training_step",
        "usable": "false" if unusable else "true",
        "model": model,
        "chip": chip,
        "n_chips": str(n),
        "replicas": "1",
        "tp": str(tp),
        "pp": str(pp),
        "ep": str(ep),
        "cp": str(cp),
        "dp": str(dp),
        "fsdp": fsdp,
        "virtual_pp": str(_int(vals, "vp") or "") if _int(vals, "vp") else "",
        "micro_batch": vals.get("mbs", ""),
        "global_batch_seqs": vals.get("gbs", ""),
        "train_method": method,
        "weight_dtype": prec,
        "act_dtype": prec,
        "seq_len": str(seq or ""),
        "length_dist": "fixed",
        "metric": "train_tokens_per_s",
        "value": fmt(tps * n),
        "inferred_fields": ";".join(inferred),
        "software": f"NeMo {container}"
        + (" (Megatron-Bridge)" if "Megatron-Bridge" in cite else ""),
        "source": cite,
        "notes": notes(
            orig,
            normalized=norm,
            unusable=unusable,
            conversion=f"value = {fmt(tps)} tokens/s per GPU x {n} GPUs (whole system). "
            f"(raw metric 'tokens_per_s_per_gpu', raw value {fmt(tps)}.)",
        ),
    }


def read(tree: SourceTree) -> list[Row]:
    rows: list[Row] = []
    for path in tree.list("**/*.md"):
        repo, _, rest = path.partition("/")
        commit, _, rel = rest.partition("/")
        cite = f"github {repo.replace('+', '/')} @{commit}: {rel}"
        text = tree.read(path)
        for line_no, table in md_tables(text):
            rows.extend(_rows_of_table(text, line_no, table, cite))
    return dedupe(rows)


IMPORTER = register(
    Importer(
        name="nemo-perf",
        description="NeMo / Megatron-Bridge performance summaries (markdown), laid out as "
        "<owner>+<repo>/<commit>/<path>; containers up to 25.11 (26.x sections are skipped)",
        read=read,
    )
)

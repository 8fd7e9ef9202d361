"""Intel Gaudi model-performance pages (intel.com / developer.habana.ai), saved as text.

Reads ``*.md`` extracts of the pages (one file per page version). Each file starts with
``key: value`` lines (``url``, ``retrieved``, ``chip``, ``software``, ``system``) followed by the
page's tables as extracted (pipe tables whose continuation rows omit the model name).

Inference "LLM for Throughput" tables: static batch of ``Batch Size`` sequences with fixed
input/output lengths on ``# HPU`` cards; the page gives no parallel layout, so multi-card rows
assume tensor parallelism over all cards (``tp`` in ``inferred_fields``, as in the shared file).
"Low Latency" tables give an undefined "Latency (ms)" at batch 1 and are kept as unusable rows.
Training tables with a ``TP,PP,DP`` column are usable; those without a layout are not.
"""

from __future__ import annotations

import re

from . import Importer, Row, SourceTree, register
from ._tables import dedupe, fmt, md_tables, notes, num, slug

MODELS = {
    "llama 2 7b": "llama-2-7b",
    "llama 2 13b": "llama-2-13b",
    "llama 2 70b": "llama-2-70b",
    "llama v2 7b": "llama-2-7b",
    "llama v2 13b": "llama-2-13b",
    "llama v2 70b": "llama-2-70b",
    "llama 3.1 8b": "llama-3.1-8b",
    "llama 3.1 -8b": "llama-3.1-8b",
    "llama 3.1 70b": "llama-3.1-70b",
    "llama v3.1 8b": "llama-3.1-8b",
    "llama v3.1 70b": "llama-3.1-70b",
    "mistral 7b": "mistral-7b-v0.1",
}
DTYPES = {"fp8": "fp8", "bf16": "bf16"}


def _meta(text: str) -> dict[str, str]:
    meta: dict[str, str] = {}
    for ln in text.splitlines():
        m = re.match(r"^([a-z]+):\s*(.*)$", ln)
        if not m:
            break
        meta[m.group(1)] = m.group(2).strip()
    return meta


def _records(table: list[list[str]]) -> list[dict[str, str]]:
    """Rows as header -> cell, filling the model name omitted on continuation rows."""
    head = [h for h in table[0] if h]
    out, model = [], ""
    for cells in table[1:]:
        cells = [c for c in cells]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        if num(cells[0]) is not None:
            cells = [model, *cells]
        model = cells[0]
        out.append(dict(zip(head, cells, strict=False)))
    return out


def _model(name: str) -> str:
    key = re.sub(r"\*+$", "", name.strip()).lower()
    return MODELS.get(key, slug(key).lower())


def _inference(rec: dict[str, str], meta: dict[str, str], path: str) -> Row | None:
    hpus, tput = num(rec.get("# HPU", "")), num(rec.get("Throughput (tokens/sec)", ""))
    if hpus is None or tput is None:
        return None
    n = int(hpus)
    prec = DTYPES.get(rec.get("Precision", "").lower(), "")
    isl, osl, bs = (
        rec.get(k, "").replace(",", "") for k in ("Input Length", "Output Length", "Batch Size")
    )
    sw = meta.get("software", "")
    model = _model(rec["Model"])
    chip = meta.get("chip", "")
    norm = [
        "Static batch of the stated size, fixed lengths; metric read as generated tokens/s of "
        "the whole system (the page does not define 'Throughput'; 2048-in/128-out rows are far "
        "lower than 128-in rows). kv_dtype not stated.",
    ]
    if model == "mistral-7b-v0.1":
        norm.append(
            "'Mistral 7b' version not stated; mistral-7b-v0.1 assumed (same layer shapes as v0.2/v0.3)."
        )
    if n > 1:
        norm.append(
            f"tp={n} assumed: the page gives only '# HPU'; tensor parallelism over all HPUs is the "
            "multi-card mode of Intel's optimum-habana / vLLM-Gaudi generation examples."
        )
    return {
        "id": f"GAUDI-{slug(chip)}-INF-{slug(model)}-{n}-{isl}-{osl}-SW{slug(sw.split(',')[0].split()[-1])}",
        "kind": "inference",
        "scenario": "static_batch",
        "usable": "true" if prec else "false",
        "model": model,
        "chip": chip,
        "n_chips": str(n),
        "replicas": "1",
        "tp": str(n),
        "pp": "1",
        "ep": "1",
        "cp": "1",
        "dp": "1",
        "weight_dtype": prec,
        "act_dtype": prec,
        "batch": bs,
        "input_len": isl,
        "output_len": osl,
        "length_dist": "fixed",
        "metric": "output_tokens_per_s",
        "value": fmt(tput),
        "inferred_fields": ";".join(
            f for f, on in (("model", model == "mistral-7b-v0.1"), ("tp", n > 1)) if on
        ),
        "software": f"{sw} (serving framework not stated per row: optimum-habana or vLLM-Gaudi)",
        "source": f"{meta.get('url', path)} (retrieved {meta.get('retrieved', '').split(' ')[0]}; "
        f"saved extract {path})",
        "notes": notes(
            f"{meta.get('system', chip)}. 'LLM for Throughput' table, {rec['Model']}, {n} HPU, "
            f"{rec.get('Precision', '')}, in {isl}/out {osl}, batch {bs}.",
            normalized=norm,
        ),
    }


def _latency(rec: dict[str, str], meta: dict[str, str], path: str) -> Row | None:
    hpus, lat = num(rec.get("# HPU", "")), num(rec.get("Latency (ms)", ""))
    if hpus is None or lat is None:
        return None
    n = int(hpus)
    isl = rec.get("Input Length", "").replace(",", "")
    model = _model(rec["Model"])
    chip = meta.get("chip", "")
    sw = meta.get("software", "")
    prec = DTYPES.get(rec.get("Precision", "").lower(), "")
    return {
        "id": f"GAUDI-{slug(chip)}-LAT-{slug(model)}-{n}-{isl}-SW{slug(sw.split(',')[0].split()[-1])}",
        "kind": "inference",
        "scenario": "latency",
        "usable": "false",
        "model": model,
        "chip": chip,
        "n_chips": str(n),
        "replicas": "1",
        "tp": str(n),
        "pp": "1",
        "ep": "1",
        "cp": "1",
        "dp": "1",
        "weight_dtype": prec,
        "act_dtype": prec,
        "batch": rec.get("Batch Size", ""),
        "input_len": isl,
        "length_dist": "fixed",
        "metric": "ttft_s",
        "value": fmt(lat / 1000),
        "inferred_fields": "tp" if n > 1 else "",
        "software": f"{sw} (serving framework not stated)",
        "source": f"{meta.get('url', path)} (retrieved {meta.get('retrieved', '').split(' ')[0]}; "
        f"saved extract {path})",
        "notes": notes(
            f"{meta.get('system', chip)}. 'LLM for Low Latency' table: Latency {rec['Latency (ms)']} ms "
            f"at batch 1, input {isl}; no output length.",
            unusable="'Latency (ms)' is not defined by the page (its growth with input length "
            "suggests time to first token, but per-token latency is not excluded).",
            normalized=["metric read as ttft_s (assumption, see UNUSABLE)."],
            conversion=f"value = {rec['Latency (ms)']} ms / 1000.",
        ),
    }


def _training(rec: dict[str, str], meta: dict[str, str], path: str) -> Row | None:
    hpus = num(rec.get("# HPU", rec.get("#HPU", "")))
    tcell = rec.get("Throughput (tokens/sec)", rec.get("Throughput", ""))
    tput = num(tcell.replace("tokens/sec", ""))
    if hpus is None or tput is None:
        return None
    n = int(hpus)
    model = _model(rec["Model"])
    chip = meta.get("chip", "")
    sw = meta.get("software", "")
    prec = DTYPES.get(rec.get("Precision", "").lower(), "")
    seq = rec.get("Sequence Length", "").replace(",", "")
    gbs = rec.get("Batch Size", "").replace(",", "")
    lay = [int(x) for x in re.findall(r"\d+", rec.get("TP,PP,DP", ""))]
    tp, pp, dp = lay if len(lay) == 3 else (0, 0, 0)
    fw = rec.get("Framework Version", "")
    ok = bool(lay) and tp * pp * dp == n and bool(prec)
    row: Row = {
        "id": f"GAUDI-{slug(chip)}-TRAIN-{slug(model)}-{n}-SW{slug(sw.split(',')[0].split()[-1])}",
        "kind": "training",
        "scenario": "training_step",
        "usable": "true" if ok else "false",
        "model": model,
        "chip": chip,
        "n_chips": str(n),
        "replicas": "1",
        "global_batch_seqs": gbs,
        "train_method": "full",
        "weight_dtype": prec,
        "act_dtype": prec,
        "seq_len": seq,
        "length_dist": "fixed",
        "metric": "train_tokens_per_s",
        "value": fmt(tput),
        "software": f"{sw}" + (f", {fw}" if fw else " (training framework not stated)"),
        "source": f"{meta.get('url', path)} (retrieved {meta.get('retrieved', '').split(' ')[0]}; "
        f"saved extract {path})",
    }
    if lay:
        row.update(tp=str(tp), pp=str(pp), dp=str(dp), ep="1", cp="1")
    row["notes"] = notes(
        f"{meta.get('system', chip)}. LLM training throughput table, {rec['Model']}, {n} HPU, "
        f"{rec.get('Precision', '')}, seq {seq}, batch {gbs}: {tcell} (whole system).",
        normalized=["global batch = 'Batch Size' column (sequences)."]
        + (["TP,PP,DP from the page (Megatron-DeepSpeed)."] if lay else []),
        unusable=""
        if ok
        else "parallel layout (TP/PP/DP/ZeRO) and framework not stated on "
        "this version of the page; the result depends strongly on them.",
    )
    return row


def read(tree: SourceTree) -> list[Row]:
    rows: list[Row] = []
    for path in tree.list("**/*.md"):
        text = tree.read(path)
        meta = _meta(text)
        for _, table in md_tables(text):
            head = " ".join(table[0])
            fn = (
                _inference if "Output Length" in head
                else _latency if "Latency (ms)" in head
                else _training if "Sequence Length" in head
                else None
            )  # fmt: skip
            if fn is None:
                continue
            for rec in _records(table):
                r = fn(rec, meta, path)
                if r:
                    rows.append(r)
    return dedupe(rows)


IMPORTER = register(
    Importer(
        name="gaudi-perf",
        description="Intel Gaudi model-performance pages saved as text extracts (*.md with "
        "url/retrieved/chip/software header lines)",
        read=read,
    )
)

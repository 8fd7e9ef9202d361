"""AWS Neuron performance tables (aws-neuron/aws-neuron-sdk benchmark CSVs).

Reads snapshots of the CSVs behind the "Inf2 / Trn1 Inference Performance" and "Trn1 Training
Performance" pages, laid out as ``<commit>/<path in the repository>`` (one folder per commit,
so several Neuron SDK releases can be imported together), e.g.
``78169c6c/general/benchmarks/inf2/throughput_data_decoder.csv`` and
``752349fd/general/benchmarks/trn1/training_data_decoder.csv``.

Normalization (SCHEMA.md "Cores vs chips"): TP degrees count NeuronCores, 2 per Inferentia2 or
Trainium chip; training "Nodes" are trn1.32xlarge instances of 16 chips. The SDK 2.16/2.17 decoder
tables' "Throughput (tokens/second)" counts input *and* output tokens over the end-to-end latency
(its "Latency per Token" is the inverse): at batch 1 a Llama-2-13B row of 3,968 input and 128
output tokens lists 2,590 tokens/s, which as output tokens would be 0.4 ms per decoded token,
below the time to read the weights once, while (3,968 + 128) / 2,590 = 1.58 s end to end agrees
with the 1,024/1,024 and 128/3,968 rows of the same table (about 10 ms per decoded token in all
three). Those rows are imported as ``e2e_latency_s`` = batch x (input + output) / throughput.
The SDK 2.18 tables name their column "Output Token Throughput" and are taken as stated. Identical measurements
repeated in several snapshots (or in both the 'Batch' and 'Real Time' files) appear once.
"""

from __future__ import annotations

from . import Importer, Row, SourceTree, register
from ._tables import csv_rows, dedupe, fmt, notes, num, slug

CHIPS = {"inf2.48xlarge": ("inf2", 12), "trn1.32xlarge": ("trn1", 16)}
CORES_PER_CHIP = 2
MODELS = {
    "llama-2-7b": "llama-2-7b",
    "llama-2-13b": "llama-2-13b",
    "llama-2-70b": "llama-2-70b",
    "llama-3-8b": "llama-3-8b",
    "llama-3-70b": "llama-3-70b",
    "mistral-7b-instruct-v0.2": "mistral-7b-v0.2",
    "codellama-13b-hf": "codellama-13b",
    "llama2-7b": "llama-2-7b",
    "llama2-13b": "llama-2-13b",
    "llama2-70b": "llama-2-70b",
    "llama-3.1-8b": "llama-3.1-8b",
    "llama-3.1-70b": "llama-3.1-70b",
    "gpt3-23b": "nemo-gpt3-23b",
    "gpt3-46b": "nemo-gpt3-46b",
    "gpt3-175b": "gpt-3-175b",
}
WEIGHTS = {"int8": "int8", "bf16": "bf16", "fp16": "fp16"}


def _commit_path(path: str) -> tuple[str, str]:
    commit, _, rest = path.partition("/")
    return commit, rest


def _inference(tree: SourceTree, path: str, seen: set[tuple[str, ...]]) -> list[Row]:
    commit, rel = _commit_path(path)
    out: list[Row] = []
    for r in csv_rows(tree.read(path)):
        model = MODELS.get(r["Model"].lower())
        inst = CHIPS.get(r["Inst. Type"].lower())
        if model is None or inst is None:
            continue
        base = _inf_base(r, model, inst, tree.label, commit, rel)
        for metric, col, pct, p99col, scale in _INF_METRICS:
            v = num(r.get(col, ""))
            if v is None:
                continue
            if col == TOTAL_THROUGHPUT:  # total tokens / end-to-end latency (module docstring)
                v = _e2e_of_total_throughput(base, v)
            key = (base["chip"], model, base["software"], base["tp"], base["replicas"],
                   base["batch"], base["input_len"], base["output_len"], base["weight_dtype"],
                   metric, fmt(v))  # fmt: skip
            if key in seen:
                continue
            seen.add(key)
            out.append(_inf_row(base, r, metric, pct, v, scale, p99col, col))
    return out


TOTAL_THROUGHPUT = "Throughput (tokens/second)"
"""the SDK 2.16/2.17 tables' column: input + output tokens per second of end-to-end latency"""

_INF_METRICS = (
    ("output_tokens_per_s", "Output Token Throughput (tokens/sec)", "", "", 1.0),
    ("e2e_latency_s", TOTAL_THROUGHPUT, "", "", 1.0),
    ("ttft_s", "TTFT Latency P50 (ms)", "p50", "TTFT Latency P99 (ms)", 1e-3),
    ("tpot_s", "TPOT Latency P50 (ms)", "p50", "TPOT Latency P99 (ms)", 1e-3),
)


def _e2e_of_total_throughput(base: Row, total_tps: float) -> float:
    """End-to-end seconds of a batch whose input + output tokens ran at ``total_tps``."""
    tokens = int(base["batch"]) * (int(base["input_len"]) + int(base["output_len"]))
    return tokens / total_tps


def _inf_base(
    r: dict[str, str], model: str, inst: tuple[str, int], label: str, commit: str, rel: str
) -> Row:
    chip, _per_instance = inst
    tp_cores = int(num(r["TP Degree"]) or 0)
    dp = int(num(r.get("DP Degree", "") or "1") or 1)
    tp = max(tp_cores // CORES_PER_CHIP, 1)
    batch = int(num(r["Batch Size"]) or 0)
    ws = r.get("Weight Storage Data Type", "").lower()
    inferred = ["kv_dtype"] + ([] if ws else ["weight_dtype"])
    return {
        "kind": "inference",
        "scenario": "latency" if batch == 1 else "static_batch",
        "usable": "true",
        "model": model,
        "chip": chip,
        "n_chips": str(tp * dp),
        "replicas": str(dp),
        "tp": str(tp),
        "pp": "1",
        "ep": "1",
        "cp": "1",
        "dp": "1",
        "weight_dtype": WEIGHTS.get(ws, "bf16"),
        "act_dtype": "bf16",
        "kv_dtype": "bf16",
        "batch": str(batch),
        "input_len": r["Input Length"],
        "output_len": r["Output Length"],
        "length_dist": "fixed",
        "inferred_fields": ";".join(inferred),
        "software": f"{r['Framework']} (Neuron SDK {r['Neuron Version']})",
        "source": f"github {label} @{commit}: {rel} (row: {r['Model']}, {r['Inst. Type']}, "
        f"TP {r['TP Degree']}, bs {batch}, in {r['Input Length']}/out {r['Output Length']})",
    }


def _inf_row(
    base: Row, r: dict[str, str], metric: str, pct: str, v: float, scale: float, p99: str, col: str
) -> Row:
    tp_cores = r["TP Degree"]
    short = {"output_tokens_per_s": "TPS", "e2e_latency_s": "E2E", "ttft_s": "TTFT",
             "tpot_s": "TPOT"}[metric]  # fmt: skip
    rid = (
        f"NEURON-{base['chip'].upper()}-{slug(base['model'])}-SDK{r['Neuron Version']}-"
        f"TP{tp_cores}-bs{base['batch']}-{base['input_len']}-{base['output_len']}-"
        f"{base['weight_dtype'].upper()}-{short}"
    )
    orig = (
        f"{r['Inst. Type']}; '{r.get('Application Type', '')}' table; static batch of "
        f"{base['batch']}; max sequence length {r.get('Sequence Length', '')}; model dtype "
        f"{r.get('Model Data Type', '')}, autocast {r.get('Compilation Autocast Data Type', '')}, "
        f"weight storage {r.get('Weight Storage Data Type', '') or 'not stated'}."
    )
    if p99 and r.get(p99):
        orig += f" P99={r[p99]} ms."
    if "Latency per Token P50 (ms)" in r:
        orig += (
            f" Page also lists latency per token P50/P99 {r['Latency per Token P50 (ms)']}/"
            f"{r.get('Latency per Token P99 (ms)', '')} ms (not imported: 1/throughput, the "
            "end-to-end latency per input + output token)."
        )
    norm = [
        f"tp={base['tp']} chips (source TP {tp_cores} counts NeuronCores; 2 per chip).",
        "kv_dtype bf16 assumed (KV cache in the bf16 autocast dtype; not stated).",
        "Static batch, fixed lengths; TTFT is the context encoding of the whole batch, "
        "TPOT is per output token per sequence.",
    ]
    if "weight_dtype" in base["inferred_fields"]:
        norm.append(
            "weight_dtype bf16 assumed (matmuls autocast to BF16; no weight-storage column)."
        )
    p99v = num(r.get(p99, "")) if p99 else None
    bad = p99v is not None and p99v < v
    conv = ""
    if scale != 1.0:
        conv = f"value = {r[col]} ms / 1000. (raw column '{col}', raw value {r[col]}.)"
    if col == TOTAL_THROUGHPUT:
        conv = (
            f"value = batch x (input + output) / throughput = {base['batch']} x "
            f"({base['input_len']} + {base['output_len']}) / {r[col]} s: the column counts input "
            "and output tokens over the end-to-end latency (its 'latency per token' is the "
            "inverse; only this reading makes the rows of one table agree: Llama-2-13B at "
            "3968 in / 128 out would otherwise decode at 0.4 ms per token, below its weight-read "
            f"time). (raw column '{col}', raw value {r[col]}.)"
        )
    return {
        **base,
        "id": rid,
        "metric": metric,
        "percentile": pct,
        "value": fmt(v * scale),
        "usable": "false" if bad else "true",
        "notes": notes(
            orig,
            normalized=norm,
            conversion=conv,
            unusable=f"P50 {v} ms > P99 {p99v} ms: internally inconsistent row" if bad else "",
        ),
    }


def _training(tree: SourceTree, path: str, seen: set[tuple[str, ...]]) -> list[Row]:
    commit, rel = _commit_path(path)
    out: list[Row] = []
    for r in csv_rows(tree.read(path)):
        name = r["Model"].lower().replace(" pre-training", "").strip()
        model = MODELS.get(name)
        if model is None:
            continue
        gbs = r.get("Globalbatch") or r.get("Global Minibatch", "")
        key = (model, r["Nodes"], r["Sequence Length"], gbs, r["Neuron Version"],
               r["Performance [seq/sec]"], r["Training Data-Type"])  # fmt: skip
        if key in seen:
            continue
        seen.add(key)
        out.append(_train_row(r, model, gbs, tree.label, commit, rel))
    return out


def _topology(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in text.replace(",", " ").split():
        k, _, v = part.partition("=")
        if v.isdigit():
            out[k.upper()] = int(v)
        elif part.upper().startswith("ZERO-"):
            out["ZERO"] = int(part[5:])
    return out


def _train_row(r: dict[str, str], model: str, gbs: str, label: str, commit: str, rel: str) -> Row:
    topo = _topology(r["Topology"])
    nodes = int(num(r["Nodes"]) or 0)
    n_chips = nodes * 16
    tp_cores, pp, dp = topo.get("TP", 1), topo.get("PP", 1), topo.get("DP", 1)
    tp = max(tp_cores // CORES_PER_CHIP, 1)
    seq = int(num(r["Sequence Length"]) or 0)
    sps = num(r["Performance [seq/sec]"]) or 0.0
    nemo = "nemo" in r.get("Neuron Tutorial/Example", "").lower()
    stack = "NeuronX NeMo Megatron" if nemo else "NeuronX Distributed"
    ver = r["Neuron Version"]
    bad = tp_cores * pp * dp != nodes * 32
    unusable = (
        f"stated topology TP={tp_cores} x PP={pp} x DP={dp} = {tp_cores * pp * dp} NeuronCores "
        f"but {nodes} nodes have {nodes * 32}; the layout is inconsistent as published"
        if bad
        else ""
    )
    dtype = r["Training Data-Type"]
    norm = [
        f"n_chips = {nodes} trn1.32xlarge nodes x 16 chips; tp = TP {tp_cores} NeuronCores / 2 "
        "= chips; PP and DP count TP groups and are unchanged.",
        f"Precision '{dtype}': BF16 matmuls ({'stochastic rounding' if 'SR' in dtype else 'FP32 optimizer state'}).",
    ]
    if "ZERO" in topo:
        norm.append(f"ZeRO-{topo['ZERO']}: optimizer state sharded, parameters replicated.")
    return {
        "id": f"NEURON-TRN1-TRAIN-{slug(model)}-N{nodes}-SDK{ver}-{'NEMO' if nemo else 'NXD'}",
        "kind": "training",
        "scenario": "training_step",
        "usable": "false" if bad else "true",
        "model": model,
        "chip": "trn1",
        "n_chips": str(n_chips),
        "replicas": "1",
        "tp": str(tp),
        "pp": str(pp),
        "ep": "1",
        "cp": "1",
        "dp": str(dp),
        "fsdp": "false" if "ZERO" in topo else "",
        "zero_stage": str(topo["ZERO"]) if "ZERO" in topo else "",
        "micro_batch": r["Microbatch"],
        "global_batch_seqs": gbs,
        "train_method": "full",
        "weight_dtype": "bf16",
        "act_dtype": "bf16",
        "seq_len": str(seq),
        "length_dist": "fixed",
        "metric": "train_tokens_per_s",
        "value": fmt(sps * seq),
        "software": f"{stack} (Neuron SDK {ver})",
        "source": f"github {label} @{commit}: {rel} (row: {r['Model']}, {nodes} nodes, {r['Topology']})",
        "notes": notes(
            f"{r['Instance-Type']}, {r['Strong/Weak Scaling']}, optimizer {r.get('Optimizer', '')}. "
            f"Tutorial: {r.get('Neuron Tutorial/Example', '').split('<')[0].strip(' `')}.",
            normalized=norm,
            unusable=unusable,
            conversion=f"value = {r['Performance [seq/sec]']} sequences/s x {seq} tokens "
            f"(whole cluster). (raw metric 'Performance [seq/sec]', raw value {r['Performance [seq/sec]']}.)",
        ),
    }


def read(tree: SourceTree) -> list[Row]:
    rows: list[Row] = []
    seen: set[tuple[str, ...]] = set()
    for path in tree.list("**/*_data_decoder.csv"):
        if path.endswith("training_data_decoder.csv"):
            rows.extend(_training(tree, path, seen))
        elif "/inf2/" in path or "/trn1/" in path:
            rows.extend(_inference(tree, path, seen))
    return _unique(rows)


def _unique(rows: list[Row]) -> list[Row]:
    return dedupe(sorted(rows, key=lambda r: r["id"]))


IMPORTER = register(
    Importer(
        name="neuron-perf",
        description="AWS Neuron benchmark CSVs (inf2/trn1 decoder inference, trn1 training) from "
        "aws-neuron/aws-neuron-sdk, one folder per commit: <commit>/general/benchmarks/...",
        read=read,
    )
)

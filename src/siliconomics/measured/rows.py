"""Reading measured results in the schema of shared/validation/SCHEMA.md.

Rows become typed :class:`MeasuredRow` values; a ``models.csv`` beside the file (same schema as
the shared one) supplies architectures for model ids the catalog lacks, so users can validate
their own measurements of their own models the same way.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from pathlib import Path

from ..catalog.parse import validate_as
from ..catalog.schema import ModelSpec
from ..errors import SiliconomicsError

REQUIRED = ("id", "kind", "scenario", "usable", "model", "chip", "metric", "value")


@dataclass(frozen=True, kw_only=True)
class MeasuredRow:
    """One measured number and the configuration it was measured on."""

    id: str
    kind: str
    scenario: str
    usable: bool
    model: str
    chip: str
    n_chips: int | None
    replicas: int | None
    tp: int | None
    pp: int | None
    ep: int | None
    dp: int | None
    weight_dtype: str
    act_dtype: str
    kv_dtype: str
    batch: int | None
    input_len: float | None
    output_len: float | None
    length_dist: str
    metric: str
    percentile: str
    value: float
    slo_ttft_s: float | None
    slo_tpot_s: float | None
    inferred_fields: tuple[str, ...]
    source: str
    software: str = ""
    """free text naming the software stack and version ("TensorRT-LLM 0.17", "vLLM 0.6.3")"""
    notes: str = ""
    cp: int | None = None
    slo_e2e_s: float | None = None


@dataclass(frozen=True)
class DatasetLengths:
    """Mean prompt and output lengths of a named benchmark data set (``length_dist``), each
    with where it comes from; ``None`` where no source gives it."""

    input_mean: float | None
    output_mean: float | None
    source: str


DATASET_LENGTHS: dict[str, DatasetLengths] = {
    "openorca-mlperf": DatasetLengths(
        222.33,
        294.45,
        "shared/validation/SCHEMA.md: input mean from openshift-psap/performance-dashboard "
        "mlperf-data/summaries/llama2-70b-99.csv @7cd1065d, output mean = MLCommons reference "
        "tokens_per_sample (mlcommons/inference language/llama2-70b/README.md)",
    ),
    "mixtral-mlperf": DatasetLengths(
        427.39,
        144.84,
        "shared/validation/SCHEMA.md: psap mixtral-8x7b.csv @67033bae, MLCommons reference",
    ),
    "llama3.1-405b-mlperf": DatasetLengths(
        9428.64,
        684.68,
        "shared/validation/SCHEMA.md: psap @67033bae, MLCommons reference",
    ),
    "deepseek-r1-mlperf": DatasetLengths(
        803.79,
        3886.23,
        "shared/validation/SCHEMA.md: psap @7cd1065d, MLCommons reference",
    ),
    "cnndm-mlperf-llama3.1-8b": DatasetLengths(
        870.73,
        128.0,
        "input: shared/validation/SCHEMA.md (psap @7cd1065d); output: every sample generates "
        "exactly 128 tokens, the benchmark's max_output_len with stop tokens off "
        "(use_stop_tokens false; mlcommons/inference_results_v5.1@965182b0 "
        "closed/NVIDIA/code/llama3.1-8b/tensorrt/generation_config.json; the v5.1 runs' own "
        "tokens/sample are 128.0-129.0)",
    ),
}
"""What fills an empty ``input_len``/``output_len`` of a row on a named benchmark data set
(SCHEMA.md leaves a mean empty where the file's source did not state it)."""


def with_dataset_lengths(row: MeasuredRow) -> MeasuredRow:
    """``row`` with an empty mean prompt or output length filled from :data:`DATASET_LENGTHS`
    (named in ``inferred_fields`` and the notes); unchanged where nothing is missing or the
    data set has no published mean."""
    d = DATASET_LENGTHS.get(row.length_dist)
    if d is None or row.kind != "inference":
        return row
    upd: dict[str, float] = {}
    if row.input_len is None and d.input_mean is not None:
        upd["input_len"] = d.input_mean
    if row.output_len is None and d.output_mean is not None:
        upd["output_len"] = d.output_mean
    if not upd:
        return row
    said = ", ".join(f"{k} = {v:g}" for k, v in upd.items())
    note = f"FILLED: {said} (length_dist {row.length_dist}: {d.source})"
    return replace(
        row,
        input_len=upd.get("input_len", row.input_len),
        output_len=upd.get("output_len", row.output_len),
        inferred_fields=row.inferred_fields + tuple(upd),
        notes=f"{row.notes} | {note}" if row.notes else note,
    )


def _num(row: dict[str, str], key: str, where: str) -> float | None:
    v = (row.get(key) or "").strip()
    if v == "":
        return None
    try:
        x = float(v)
    except ValueError:
        raise SiliconomicsError(f"{where}: column '{key}' must be a number, got '{v}'") from None
    if not math.isfinite(x):
        raise SiliconomicsError(f"{where}: column '{key}' must be a finite number, got '{v}'")
    return x


def _int(row: dict[str, str], key: str, where: str) -> int | None:
    v = _num(row, key, where)
    return None if v is None else int(v)


def read_measured(path: Path) -> list[MeasuredRow]:
    """Parse a measured-results CSV; a missing column or malformed number is a clear error."""
    if not path.exists():
        raise SiliconomicsError(f"measured file not found: {path}")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in cols]
        if missing:
            raise SiliconomicsError(
                f"{path.name}: missing column(s) {', '.join(missing)} (see SCHEMA.md)"
            )
        rows = []
        for i, r in enumerate(reader, start=2):
            where = f"{path.name} line {i} (id {r.get('id', '?')})"
            value = _num(r, "value", where)
            if value is None:
                raise SiliconomicsError(f"{where}: column 'value' is empty")
            rows.append(
                with_dataset_lengths(
                    MeasuredRow(
                        id=r["id"],
                        kind=r["kind"].strip(),
                        scenario=r["scenario"].strip(),
                        usable=r["usable"].strip().lower() == "true",
                        model=r["model"].strip(),
                        chip=r["chip"].strip(),
                        n_chips=_int(r, "n_chips", where),
                        replicas=_int(r, "replicas", where),
                        tp=_int(r, "tp", where),
                        pp=_int(r, "pp", where),
                        ep=_int(r, "ep", where),
                        dp=_int(r, "dp", where),
                        weight_dtype=(r.get("weight_dtype") or "").strip(),
                        act_dtype=(r.get("act_dtype") or "").strip(),
                        kv_dtype=(r.get("kv_dtype") or "").strip(),
                        batch=_int(r, "batch", where),
                        input_len=_num(r, "input_len", where),
                        output_len=_num(r, "output_len", where),
                        length_dist=(r.get("length_dist") or "").strip(),
                        metric=r["metric"].strip(),
                        percentile=(r.get("percentile") or "").strip(),
                        value=value,
                        slo_ttft_s=_num(r, "slo_ttft_s", where),
                        slo_tpot_s=_num(r, "slo_tpot_s", where),
                        inferred_fields=tuple(
                            f for f in (r.get("inferred_fields") or "").split(";") if f
                        ),
                        source=(r.get("source") or "").strip(),
                        software=(r.get("software") or "").strip(),
                        notes=(r.get("notes") or "").strip(),
                        cp=_int(r, "cp", where),
                        slo_e2e_s=_num(r, "slo_e2e_s", where),
                    )
                )
            )
    return rows


_BOOL = {"true": True, "false": False}


def read_models_csv(path: Path) -> dict[str, ModelSpec]:
    """Architectures from a ``models.csv`` in the shared schema (columns of SCHEMA.md)."""
    out: dict[str, ModelSpec] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for i, r in enumerate(csv.DictReader(fh), start=2):
            where = f"{path.name} line {i} (id {r.get('id', '?')})"

            def n(key: str, r: dict[str, str] = r, where: str = where) -> int | None:
                return _int(r, key, where)

            raw: dict[str, object] = {
                "id": r["id"],
                "family": r.get("family") or r["id"],
                "n_layers": n("n_layers"),
                "d_model": n("d_model"),
                "n_heads": n("n_heads"),
                "n_kv_heads": n("n_kv_heads"),
                "head_dim": n("head_dim"),
                "d_ff": n("d_ff"),
                "vocab_size": n("vocab_size"),
                "max_position": n("max_position"),
                "tied_embeddings": _BOOL.get((r.get("tied_embeddings") or "").lower(), False),
                "norm": r.get("norm") or "rmsnorm",
                "activation": r.get("activation") or "swiglu",
                "attention": r.get("attention") or "gqa",
                "position": r.get("position") or "rope",
                "parallel_attn_mlp": _BOOL.get((r.get("parallel_attn_mlp") or "").lower(), False),
                "source": r.get("source") or str(path),
                "notes": r.get("notes") or "",
            }
            if n("n_experts"):
                raw["moe"] = {
                    "n_experts": n("n_experts"),
                    "experts_per_token": n("experts_per_token"),
                    "moe_d_ff": n("moe_d_ff"),
                    "n_shared_experts": n("n_shared_experts") or 0,
                    "n_dense_layers": n("n_dense_layers") or 0,
                }
            if raw["attention"] == "mla":
                raw["mla"] = {
                    "q_lora_rank": n("q_lora_rank"),
                    "kv_lora_rank": n("kv_lora_rank"),
                    "qk_rope_head_dim": n("qk_rope_head_dim"),
                    "v_head_dim": n("v_head_dim"),
                }
            out[r["id"]] = validate_as(ModelSpec, raw, where=where)
    return out

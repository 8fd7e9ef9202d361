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
    problem: str = ""
    """why the row could not be read as written (a malformed number, an empty value; the
    field is then None and ``value`` NaN): such a row is reported as not run, with this reason,
    and never predicted or fitted; empty for a well-formed row"""


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


class _Fields:
    """One CSV row's fields, read without stopping at the first malformed number: each
    problem is kept (naming the line, the column and what it held) and the field is None."""

    def __init__(self, row: dict[str, str], where: str) -> None:
        self.row, self.where = row, where
        self.problems: list[str] = []

    def text(self, key: str) -> str:
        return (self.row.get(key) or "").strip()

    def num(self, key: str) -> float | None:
        try:
            return _num(self.row, key, self.where)
        except SiliconomicsError as e:
            self.problems.append(str(e))
            return None

    def int(self, key: str) -> int | None:
        v = self.num(key)
        return None if v is None else int(v)


def read_measured(path: Path) -> list[MeasuredRow]:
    """Parse a measured-results CSV. A missing file or column is a clear error; a row with a
    malformed number or an empty value is kept with its ``problem`` (the other rows still
    run; the row is reported as not run, with the reason)."""
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
            f = _Fields(r, f"{path.name} line {i} (id {r.get('id') or '?'})")
            value = f.num("value")
            if value is None and not f.problems:
                f.problems.append(f"{f.where}: column 'value' is empty")
            rows.append(
                with_dataset_lengths(
                    MeasuredRow(
                        id=f.text("id"),
                        kind=f.text("kind"),
                        scenario=f.text("scenario"),
                        usable=f.text("usable").lower() == "true",
                        model=f.text("model"),
                        chip=f.text("chip"),
                        n_chips=f.int("n_chips"),
                        replicas=f.int("replicas"),
                        tp=f.int("tp"),
                        pp=f.int("pp"),
                        ep=f.int("ep"),
                        dp=f.int("dp"),
                        weight_dtype=f.text("weight_dtype"),
                        act_dtype=f.text("act_dtype"),
                        kv_dtype=f.text("kv_dtype"),
                        batch=f.int("batch"),
                        input_len=f.num("input_len"),
                        output_len=f.num("output_len"),
                        length_dist=f.text("length_dist"),
                        metric=f.text("metric"),
                        percentile=f.text("percentile"),
                        value=math.nan if value is None else value,
                        slo_ttft_s=f.num("slo_ttft_s"),
                        slo_tpot_s=f.num("slo_tpot_s"),
                        inferred_fields=tuple(x for x in f.text("inferred_fields").split(";") if x),
                        source=f.text("source"),
                        software=f.text("software"),
                        notes=f.text("notes"),
                        cp=f.int("cp"),
                        slo_e2e_s=f.num("slo_e2e_s"),
                        problem="; ".join(f.problems),
                    )
                )
            )
    return rows


_BOOL = {"true": True, "false": False}


def read_models_csv(path: Path, problems: dict[str, str] | None = None) -> dict[str, ModelSpec]:
    """Architectures from a ``models.csv`` in the shared schema (columns of SCHEMA.md). A
    malformed row is a clear error, or, given ``problems``, recorded there (model id -> the
    reason) and left out, so the other models still load."""
    out: dict[str, ModelSpec] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for i, r in enumerate(csv.DictReader(fh), start=2):
            where = f"{path.name} line {i} (id {r.get('id', '?')})"
            if problems is not None:
                try:
                    out.update(_model_row(r, where, path))
                except SiliconomicsError as e:
                    problems[(r.get("id") or "").strip()] = str(e)
                continue
            out.update(_model_row(r, where, path))
    return out


def _model_row(r: dict[str, str], where: str, path: Path) -> dict[str, ModelSpec]:
    """One ``models.csv`` row as ``{id: ModelSpec}``."""

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
    return {r["id"]: validate_as(ModelSpec, raw, where=where)}

"""Reading measured results in the schema of shared/validation/SCHEMA.md.

Rows become typed :class:`MeasuredRow` values; a ``models.csv`` beside the file (same schema as
the shared one) supplies architectures for model ids the catalog lacks, so users can validate
their own measurements of their own models the same way.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
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

"""Plain-dict views of results for ``--json`` (the same numbers the tables show)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..catalog.schema import ChipSpec, ModelSpec, Sourced
from ..economics.cost import chip_tdp
from ..economics.pricing import chip_price
from ..parallel.memory import active_params, total_params
from ..resolve import default_pricing
from ..search.assess import Assessment
from ..search.compare import Comparison
from ..validate.banded import RowBand
from ..validate.rows import ValidationReport


def _f(x: Any) -> Any:
    """numpy scalar/array -> float or list; NaN/inf -> None (valid JSON)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        v = float(a)
        return v if math.isfinite(v) else None
    return [_f(v) for v in a]


def chip_dict(c: ChipSpec) -> dict[str, Any]:
    price = chip_price(c, default_pricing())
    tdp = chip_tdp(c)
    out: dict[str, Any] = c.model_dump(mode="json")
    out["usd_per_chip_hour"] = price.usd_per_chip_hour if price else None
    out["price_system"] = price.system if price else None
    out["tdp_w_used"] = tdp.tdp_w if tdp else None
    out["tdp_basis"] = tdp.basis if tdp else None
    return out


def model_dict(m: ModelSpec) -> dict[str, Any]:
    out: dict[str, Any] = m.model_dump(mode="json")
    out["total_params"] = total_params(m)
    out["active_params"] = active_params(m)
    return out


def assessment_dict(a: Assessment) -> dict[str, Any]:
    e = a.estimate
    p = e.plan
    ops = []
    for phase, fc in (("prefill", e.prefill), ("decode", e.decode)):
        total = fc.time
        for op in fc.ops:
            ops.append(
                {
                    "phase": phase,
                    "op": op.name,
                    "class": op.op_class,
                    "flops": _f(op.flops),
                    "bytes": _f(op.bytes),
                    "comm_bytes": _f(op.comm_bytes),
                    "t_compute_s": _f(op.t_compute),
                    "t_memory_s": _f(op.t_memory),
                    "t_comm_s": _f(op.t_comm),
                    "t_overhead_s": _f(op.t_overhead),
                    "time_s": _f(op.time),
                    "share": _f(op.time / total),
                }
            )
    return {
        "model": e.model.id,
        "chip": e.device.id,
        "scenario": e.scenario,
        "plan": {
            "tp": p.tp,
            "pp": p.pp,
            "ep": p.ep,
            "dp": p.dp,
            "replicas": p.replicas,
            "weight_dtype": p.weight_dtype,
            "act_dtype": p.act_dtype,
            "kv_dtype": p.kv_dtype,
            "chips": p.chips,
        },
        "batch": _f(e.batch),
        "input_len": _f(e.input_len),
        "output_len": _f(e.output_len),
        "ttft_s": _f(e.ttft_s),
        "tpot_s": _f(e.tpot_s),
        "e2e_s": _f(e.e2e_s),
        "output_tokens_per_s": _f(e.output_tokens_per_s),
        "output_tokens_per_s_per_chip": _f(e.output_tokens_per_s_per_chip),
        "prefill_bound": np.asarray(e.prefill_bound).tolist(),
        "decode_bound": np.asarray(e.decode_bound).tolist(),
        "memory_bytes_per_chip": {
            "weights": e.memory.weights,
            "kv_cache": _f(e.memory.kv_cache),
            "activations": _f(e.memory.activations),
            "reserve": e.memory.reserve,
            "capacity": e.memory.capacity,
        },
        "usd_per_chip_hour": a.price.usd_per_chip_hour if a.price else None,
        "price_source": a.price.__dict__ if a.price else None,
        "usd_per_hour": _f(a.usd_per_hour),
        "usd_per_million_output_tokens": _f(a.usd_per_million_output),
        "usd_per_million_input_tokens_split": _f(a.usd_per_million_input_split),
        "usd_per_million_output_tokens_split": _f(a.usd_per_million_output_split),
        "watts_per_chip": _f(a.watts_per_chip),
        "joules_per_output_token": _f(a.joules_per_output_token),
        "power_basis": a.power.basis if a.power else "unknown: no TDP and no estimate",
        "assumptions": list(e.assumptions),
        "efficiency_profile": e.device.eff.model_dump(mode="json"),
        "ops": ops,
    }


def comparison_dict(c: Comparison) -> dict[str, Any]:
    rows = []
    for ch in c.choices:
        if ch.feasible:
            assert ch.assessment is not None
            p = ch.assessment.estimate.plan
            rows.append(
                {
                    "chip": ch.chip.id,
                    "vendor": ch.chip.vendor,
                    "feasible": True,
                    "tp": p.tp,
                    "pp": p.pp,
                    "ep": p.ep,
                    "dp": p.dp,
                    "chips_per_replica": p.chips,
                    **{
                        k: _f(ch.value(k))
                        for k in (
                            "batch",
                            "ttft_s",
                            "tpot_s",
                            "tokens_per_s",
                            "tokens_per_s_per_chip",
                            "usd_per_m_output",
                            "usd_per_m_input",
                            "usd_per_m_output_split",
                            "j_per_token",
                            "usd_per_hour",
                            "watts_per_chip",
                        )
                    },
                    "bound": ch.bound,
                    "price_system": ch.assessment.price.system if ch.assessment.price else None,
                    "price_basis": ch.assessment.price.basis if ch.assessment.price else None,
                    "price_mode": ch.assessment.price.mode if ch.assessment.price else None,
                    "price_source": ch.assessment.price.source if ch.assessment.price else None,
                    "power_estimated": bool(ch.assessment.power and ch.assessment.power.estimated),
                }
            )
        else:
            rows.append(
                {
                    "chip": ch.chip.id,
                    "vendor": ch.chip.vendor,
                    "feasible": False,
                    "reason": ch.reason,
                }
            )
    return {
        "model": c.model.id,
        "input_len": c.input_len,
        "output_len": c.output_len,
        "ttft_target_s": c.ttft_s,
        "tpot_target_s": c.tpot_s,
        "speculative": None
        if c.spec is None
        else {
            "draft_tokens": c.spec.draft_tokens,
            "accepted": c.spec.accepted,
            "note": c.spec.describe(),
        },
        "chips": rows,
    }


def row_band_dict(b: RowBand | None) -> dict[str, Any]:
    """``low``/``high`` beside a predicted value, the band's level and why, and the stack."""
    if b is None:
        return {"low": None, "high": None}
    return {
        "low": b.low,
        "high": b.high,
        "band_level": b.level,
        "band_basis": b.basis,
        "band_reason": b.reason,
        "stack": b.stack,
        "stack_basis": b.stack_basis,
        "stack_note": b.stack_note,
    }


def validation_dict(r: ValidationReport) -> dict[str, Any]:
    return {
        "results": [
            {
                "id": x.row.id,
                "chip": x.row.chip,
                "family": x.family,
                "model": x.row.model,
                "scenario": x.row.scenario,
                "metric": x.row.metric,
                "measured": x.row.value,
                "predicted": x.predicted,
                "signed_pct_error": x.signed_pct,
                "bound": x.bound,
                "assumptions": list(x.assumptions),
                "simulated": x.simulated,
                **row_band_dict(x.band),
            }
            for x in r.results
        ],
        "skipped": [{"id": s.row.id, "reason": s.reason} for s in r.skipped],
        "training_rows_not_run": r.not_inference,
        "by_family": [s.__dict__ for s in r.by_family],
        "by_metric": [s.__dict__ for s in r.by_metric],
        "by_chip": [s.__dict__ for s in r.by_chip],
        "median_abs_pct_error": r.median_abs_pct,
        "rows": len(r.results),
        "training": validation_dict(r.training) if r.training is not None else None,
    }


def sourced(v: Sourced | None) -> str:
    return "" if v is None else f"{v.conf}: {v.src}"

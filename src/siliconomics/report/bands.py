"""The error band of an answer, attached to its dict (the ``--json`` output and
``Result.to_dict()`` of the Python API; docs/CALIBRATION.md, docs/VALIDATION.md).

Every predicted speed, time, cost and energy of the answer gets ``<name>_low``/``<name>_high``
from the band of its (family, stack, regime, model class) cell
(:func:`siliconomics.calibrate.bands.band_for` on the run's band table), and the dict a
``band`` entry saying which cell and why."""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from ..calibrate.bands import Band, BandQuery, band_for
from ..calibrate.samples import model_class
from ..catalog.schema import ModelSpec
from ..catalog.stacks import Calibration, ResolvedProfile
from ..search.compare import Comparison

#: Names of predicted values: speeds (band as is) and inverse-speed quantities (times, cost
#: and energy per token: band inverted).
SPEED_KEYS = (
    "output_tokens_per_s",
    "output_tokens_per_s_per_chip",
    "tokens_per_s",
    "tokens_per_s_per_chip",
    "mfu",
    "hfu",
    "model_flops_per_s_per_chip",
    "goodput_rps",
    "throughput_rps",
    "input_tokens_per_s",
    "steady_output_tokens_per_s",
    "requests_per_s",
    "goodput_requests_per_s",
    "rate_requests_per_s",
    "saturation_requests_per_s",
    "tokens_per_s_per_mw_provisioned",
)
INVERSE_KEYS = (
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "step_time_s",
    "time_to_train_s",
    "days",
    "usd_per_million_output_tokens",
    "usd_per_million_input_tokens_split",
    "usd_per_million_output_tokens_split",
    "usd_per_m_output",
    "usd_per_m_input",
    "usd_per_m_output_split",
    "joules_per_output_token",
    "j_per_token",
    "usd_total",
    "duration_s",
    "j_per_output_token_facility",
    "chip_hours",
    "cost_usd",
    "energy_j",
    "energy_kwh",
    "usd_per_million_tokens",
    "usd_per_m_tokens",
)


@dataclass(frozen=True, kw_only=True)
class AnswerBand:
    """The band of one answer and the resolved (family, stack) profile it belongs to."""

    band: Band
    profile: ResolvedProfile

    def attach(self, d: MutableMapping[str, Any]) -> None:
        """``<key>_low``/``<key>_high`` beside every predicted value of ``d`` and the ``band``
        entry (:func:`add_bands`)."""
        add_bands(d, self.band, self.profile)

    def line(self, what: Mapping[str, tuple[float, str, bool]] | None = None) -> str:
        """One line for the terminal (:func:`band_line`)."""
        return band_line(self.band, self.profile, what or {})


def band(
    c: Calibration, family: str, model: ModelSpec | None, regime: str, kind: str = "inference"
) -> tuple[Band, ResolvedProfile]:
    """The band of a prediction for a chip of ``family`` running ``model`` in ``regime``
    (``max-throughput``, ``latency-target`` or ``training``)."""
    rp = c.resolved[family]
    q = BandQuery(
        kind=kind,
        family=family,
        stack=rp.stack,
        regime=regime,
        model_class=model_class(model),
        stack_measured=rp.basis != "inherited",
    )
    return band_for(c.residuals, q, level=c.level), rp


def answer_band(
    c: Calibration, family: str, model: ModelSpec | None, regime: str, kind: str = "inference"
) -> AnswerBand:
    b, rp = band(c, family, model, regime, kind)
    return AnswerBand(band=b, profile=rp)


def add_bands(d: MutableMapping[str, Any], b: Band, rp: ResolvedProfile) -> None:
    """``<key>_low``/``<key>_high`` beside every predicted value of ``d`` (recursing into
    nested dicts and lists of dicts), and the band's level, basis and reason."""
    _walk(d, b)
    d["band"] = band_meta(b, rp)


def band_meta(b: Band, rp: ResolvedProfile) -> dict[str, Any]:
    return {
        "level": b.level,
        "basis": b.basis,
        "reason": b.reason,
        "n_rows": b.n,
        "stack": rp.stack,
        "stack_basis": rp.basis,
        "stack_note": rp.note,
    }


def _walk(d: MutableMapping[str, Any], b: Band) -> None:
    for k in list(d):
        v = d[k]
        if isinstance(v, dict) and k in SPEED_KEYS + INVERSE_KEYS:
            inverse = k in INVERSE_KEYS
            for kk, vv in list(v.items()):
                if isinstance(vv, int | float) and not isinstance(vv, bool):
                    lo, hi = b.time(float(vv)) if inverse else b.speed(float(vv))
                    v[f"{kk}_low"], v[f"{kk}_high"] = lo, hi
        elif isinstance(v, dict):
            _walk(v, b)
        elif isinstance(v, list):
            for item in v:
                if isinstance(item, dict):
                    _walk(item, b)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            if k in SPEED_KEYS:
                d[f"{k}_low"], d[f"{k}_high"] = b.speed(float(v))
            elif k in INVERSE_KEYS:
                d[f"{k}_low"], d[f"{k}_high"] = b.time(float(v))


def band_line(b: Band, rp: ResolvedProfile, what: Mapping[str, tuple[float, str, bool]]) -> str:
    """One line for tables: each value's interval, then why."""
    parts = []
    for name, (v, unit, inverse) in what.items():
        lo, hi = b.time(v) if inverse else b.speed(v)
        parts.append(f"{name} {lo:.3g}-{hi:.3g}{unit}")
    vals = (
        f"{', '.join(parts)} "
        if parts
        else f"x{math.exp(b.lo):.2f}-x{math.exp(b.hi):.2f} on speeds "
    )
    return (
        f"{b.level:.0%} band: {vals}[stack {rp.stack} ({rp.basis}); band from "
        f"{b.basis}: {b.reason}]" + (f" {rp.note}" if rp.note else "")
    )


def distinguishable(cmp: Comparison, calib: Calibration, regime: str) -> dict[str, bool | None]:
    """Chip -> whether its $/M-output band lies wholly above the cheapest chip's (None: the
    cheapest itself or unpriced)."""
    cost: dict[str, tuple[float, float, float]] = {}
    for ch in cmp.choices:
        if not ch.feasible:
            continue
        v = float(ch.value("usd_per_m_output"))
        if math.isfinite(v):
            b, _ = band(calib, ch.chip.family, cmp.model, regime)
            cost[ch.chip.id] = (*b.time(v), v)
    if not cost:
        return {}
    best = min(cost, key=lambda c: cost[c][2])
    return {c: (None if c == best else lo > cost[best][1]) for c, (lo, _, _) in cost.items()}

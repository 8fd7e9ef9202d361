"""``--stack``, ``--profile`` and ``--level`` for every command, and the error band of an
answer (docs/CALIBRATION.md, docs/VALIDATION.md).

The edge resolves the software stack and the calibration once: each chip family's profile for
the requested stack (or its default) is installed as the profile the core uses for that family
(:func:`siliconomics.catalog.registry.override_efficiency`), and every predicted speed, cost and
energy of the answer gets ``<name>_low``/``<name>_high`` from the band of its (family, stack,
regime, model class) cell."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from ..calibrate.bands import DEFAULT_LEVEL, Band, BandQuery, band_for
from ..calibrate.samples import model_class
from ..catalog.registry import efficiency_profiles, override_efficiency
from ..catalog.schema import ModelSpec
from ..catalog.stacks import (
    ProfileSet,
    ResolvedProfile,
    Workload,
    check_stack,
    load_profile_dir,
    packaged_residuals,
    packaged_stack_profiles,
    read_band_file,
    stacks,
)
from ..catalog.stacks import Residual as _Residual
from ..catalog.stacks import resolve_profile as _resolve

StackOpt = Annotated[
    str | None,
    typer.Option(
        help="software stack (trtllm, vllm, sglang, nxdi, vllm-neuron, optimum-habana, "
        "vllm-gaudi, jetstream, vllm-tpu, maxtext, nemo, megatron, ...; see docs/CALIBRATION.md); "
        "default: each chip's best published stack"
    ),
]
ProfileOpt = Annotated[
    Path | None,
    typer.Option(help="calibration directory written by 'siliconomics calibrate'"),
]
LevelOpt = Annotated[
    float, typer.Option(min=0.5, max=0.99, help="level of the error bands (default 0.8)")
]

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
class Calib:
    """What a command resolved: profiles per family for the stack, and the band table."""

    profiles: ProfileSet
    residuals: tuple[_Residual, ...]
    stack: str | None
    level: float
    resolved: dict[str, ResolvedProfile]


def setup(
    stack: str | None,
    profile: Path | None,
    level: float = DEFAULT_LEVEL,
    workload: Workload = "inference",
    families: Iterable[str] | None = None,
) -> Calib:
    """Resolve ``--stack``/``--profile`` for ``families`` (default: all) and install the
    profiles. With ``--stack``, a family the stack does not run on keeps its default stack."""
    packaged = efficiency_profiles()
    if profile is not None:
        ps = load_profile_dir(profile, packaged)
        bands = profile / "bands.toml"
        resid = merge_residuals(
            read_band_file(bands) if bands.exists() else (), packaged_residuals()
        )
    else:
        ps = ProfileSet(families=packaged, stacks=packaged_stack_profiles())
        resid = packaged_residuals()
    table = stacks()
    fams = list(families) if families is not None else list(ps.families)
    if stack is not None and stack not in table:
        check_stack(stack, fams[0] if fams else "", workload, table)  # raises, naming ids
    resolved: dict[str, ResolvedProfile] = {}
    for fam in fams:
        runs = stack is not None and fam in table[stack].families
        st = check_stack(stack if runs else None, fam, workload, table)
        resolved[fam] = _resolve(ps, fam, st, workload)
    if stack is not None and fams and not any(r.stack == stack for r in resolved.values()):
        check_stack(stack, fams[0], workload, table)  # raises: runs on none of them
    override_efficiency({f: r.profile for f, r in resolved.items()})
    return Calib(profiles=ps, residuals=resid, stack=stack, level=level, resolved=resolved)


def merge_residuals(
    user: tuple[_Residual, ...], packaged: tuple[_Residual, ...]
) -> tuple[_Residual, ...]:
    """A user's residuals, plus the packaged ones of (kind, family) cells the user's rows do
    not cover (their bands stay what the packaged calibration measured)."""
    mine = {(r.kind, r.family) for r in user}
    return user + tuple(r for r in packaged if (r.kind, r.family) not in mine)


def band(
    c: Calib, family: str, model: ModelSpec | None, regime: str, kind: str = "inference"
) -> tuple[Band, ResolvedProfile]:
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

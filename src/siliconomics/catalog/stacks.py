"""Software stacks as a dimension of the efficiency profiles.

The same chip reaches different fractions of its roofline under different software (Trainium2
under NxD Inference vs vLLM-on-Neuron, Gaudi under optimum-habana vs vLLM-gaudi). A profile is
therefore kept per (chip family, stack): the family's packaged profile describes its *default*
stack (the best published one, ``catalog/data/stacks.toml``); a stack with enough measurements
of its own gets a :class:`StackProfile` of factor overrides; any other stack inherits the
family default's factors and says so (its error band is widened, see
:mod:`siliconomics.calibrate.bands`), never silently.

This module holds the typed schema, the packaged stack table, the inference of a stack from
a measured row's free-text ``software`` column, and the resolution of (family, stack) to a
profile. A user's calibration directory (``--profile DIR``) is read at the edge
(:func:`siliconomics.resolve.profile_dir`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field

from ..errors import SiliconomicsError
from .bandtable import Residual, from_toml_dict, loads_band_toml
from .registry import parse_toml
from .schema import EfficiencyProfile, _Frozen

Workload = Literal["inference", "training"]
OTHER = "other"
"""stack id of a row whose software text matches no known stack of its family"""


class StackSpec(_Frozen):
    """One software stack (an entry of ``catalog/data/stacks.toml``)."""

    id: str = Field(description="short id used by --stack and in profiles")
    name: str = Field(description="human-readable name")
    patterns: list[str] = Field(
        description="case-insensitive regular expressions matched against a row's software text"
    )
    families: list[str] = Field(description="chip families this stack runs on")
    workloads: list[Workload] = Field(description="inference and/or training")
    default_inference: list[str] = Field(
        default_factory=list, description="families whose default inference stack this is"
    )
    default_training: list[str] = Field(
        default_factory=list, description="families whose default training stack this is"
    )
    memory_fraction: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="share of device memory the engine fills by default with weights and KV "
        "cache (vLLM's gpu_memory_utilization, SGLang-JAX's mem_fraction_static); the rest is "
        "the runtime reserve. None: the family profile's memory_reserve_fraction",
    )
    memory_basis: Literal["device", "free"] = Field(
        default="device",
        description="what memory_fraction is a share of: the device's memory ('device': vLLM, "
        "SGLang) or what the weights leave free ('free': TensorRT-LLM's free_gpu_memory_fraction)",
    )
    memory_source: str = Field(
        default="", description="where memory_fraction comes from (file and version)"
    )
    notes: str = ""


class StackProfile(_Frozen):
    """Factor overrides of one (family, stack), fitted on that stack's own measured rows."""

    family: str = Field(description="chip family")
    stack: str = Field(description="stack id")
    factors: dict[str, float] = Field(description="profile field -> fitted value")
    n_rows: int = Field(ge=0, description="measured rows the factors were fitted on")
    provenance: dict[str, str] = Field(description="factor -> how it was obtained")


@dataclass(frozen=True, kw_only=True)
class ProfileSet:
    """Every efficiency profile a prediction may use: per family (default stack) and per
    (family, stack) overrides. ``origin`` says where they came from (packaged / a directory)."""

    families: Mapping[str, EfficiencyProfile]
    stacks: Mapping[tuple[str, str], StackProfile] = field(default_factory=dict)
    origin: str = "packaged calibration"


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """What a run resolved once at the edge: the profiles of its software stack per family
    (``resolved``), every profile it may use (``profiles``) and the band table its answers'
    error bands come from, at ``level``."""

    profiles: ProfileSet
    residuals: tuple[Residual, ...]
    stack: str | None
    level: float
    resolved: Mapping[str, ResolvedProfile]

    def efficiency(self) -> dict[str, EfficiencyProfile]:
        """The profile each resolved family runs with (for :meth:`Catalog.with_profiles`)."""
        return {f: r.profile for f, r in self.resolved.items()}


@dataclass(frozen=True, kw_only=True)
class ResolvedProfile:
    """The profile used for one (family, stack) and why."""

    profile: EfficiencyProfile
    family: str
    stack: str
    basis: Literal["default", "fitted", "inherited"]
    note: str


@cache
def stacks() -> dict[str, StackSpec]:
    """The packaged stack table by id (file order kept: it is the matching order)."""
    path = Path(str(resources.files("siliconomics.catalog") / "data" / "stacks.toml"))
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    out: dict[str, StackSpec] = {}
    for i, item in enumerate(raw.get("stack", [])):
        s = StackSpec.model_validate(item)
        if s.id in out:
            raise SiliconomicsError(f"stacks.toml entry {i}: duplicate id '{s.id}'")
        out[s.id] = s
    return out


def infer_stack(
    software: str,
    family: str,
    table: Mapping[str, StackSpec],
    workload: Workload | None = None,
) -> str:
    """The stack id named by a free-text software string on a chip family: the first stack
    (table order) running on ``family`` (for ``workload``, if given) with a matching pattern;
    ``""`` when the text is empty; :data:`OTHER` when it names nothing known."""
    text = software.strip()
    if not text:
        return ""
    for s in table.values():
        if family not in s.families or (workload is not None and workload not in s.workloads):
            continue
        if any(re.search(p, text, re.IGNORECASE) for p in s.patterns):
            return s.id
    return OTHER


def default_stack(family: str, workload: Workload, table: Mapping[str, StackSpec]) -> str:
    """The family's default (best published) stack for a workload; :data:`OTHER` if none."""
    for s in table.values():
        fams = s.default_inference if workload == "inference" else s.default_training
        if family in fams:
            return s.id
    return OTHER


def row_stack(
    software: str, family: str, workload: Workload, table: Mapping[str, StackSpec]
) -> tuple[str, str]:
    """A measured row's stack and a note when it was assumed (empty software text)."""
    s = infer_stack(software, family, table, workload)
    if s:
        return s, ""
    d = default_stack(family, workload, table)
    return d, f"software not stated -> the {family} default stack '{d}'"


def check_stack(
    stack: str | None, family: str, workload: Workload, table: Mapping[str, StackSpec]
) -> str:
    """``--stack`` resolved for a family: None -> its default; an unknown id or a stack that
    does not run on the family is a user error naming what is allowed."""
    if stack is None:
        return default_stack(family, workload, table)
    if stack not in table:
        raise SiliconomicsError(f"--stack '{stack}' is not a known stack; allowed: {_ids(table)}")
    if family not in table[stack].families:
        ok = [s.id for s in table.values() if family in s.families]
        raise SiliconomicsError(
            f"--stack '{stack}' does not run on {family}; allowed: {', '.join(ok) or 'none'}"
        )
    return stack


def _ids(table: Mapping[str, StackSpec]) -> str:
    return ", ".join(table)


def resolve_profile(
    profiles: ProfileSet, family: str, stack: str, workload: Workload = "inference"
) -> ResolvedProfile:
    """The profile of (family, stack): the family default, the stack's fitted overrides on top
    of it, or (no measurement of that stack) the default's factors, stated as inherited."""
    if family not in profiles.families:
        raise SiliconomicsError(f"no efficiency profile for chip family '{family}'")
    base = profiles.families[family]
    table = stacks()
    dflt = default_stack(family, workload, table)
    base = with_stack_memory(base, table.get(stack))
    if stack == dflt:
        return ResolvedProfile(profile=base, family=family, stack=stack, basis="default", note="")
    sp = profiles.stacks.get((family, stack))
    if sp is not None:
        return ResolvedProfile(
            profile=base.model_copy(
                update={**sp.factors, "stack": stack, "chip_factors": _chips_minus(base, sp)}
            ),
            family=family,
            stack=stack,
            basis="fitted",
            note=f"{stack} on {family}: {', '.join(sp.factors)} fitted on {sp.n_rows} rows of "
            f"that stack; other factors from the {dflt} default",
        )
    return ResolvedProfile(
        profile=base,
        family=family,
        stack=stack,
        basis="inherited",
        note=f"no measurement of {family} with {stack}: factors of the family default "
        f"'{dflt}', band widened",
    )


def with_stack_memory(prof: EfficiencyProfile, spec: StackSpec | None) -> EfficiencyProfile:
    """``prof`` with the runtime reserve its stack leaves by default (1 - the stack's
    ``memory_fraction``), or unchanged when the stack states none."""
    if spec is None or spec.memory_fraction is None:
        return prof
    return prof.model_copy(
        update={
            "memory_reserve_fraction": 1.0 - spec.memory_fraction,
            "memory_reserve_of_free": spec.memory_basis == "free",
        }
    )


def _chips_minus(base: EfficiencyProfile, sp: StackProfile) -> dict[str, dict[str, float]]:
    """The family's chip-level factors without those the stack fitted itself (a stack's own
    measurement wins over a chip factor fitted on the default stack)."""
    out = {
        c: {k: v for k, v in f.items() if k not in sp.factors} for c, f in base.chip_factors.items()
    }
    return {c: f for c, f in out.items() if f}


def packaged_stack_profiles() -> dict[tuple[str, str], StackProfile]:
    """The packaged per-stack overrides (``catalog/data/efficiency/stacks/``)."""
    d = Path(str(resources.files("siliconomics.catalog") / "data" / "efficiency" / "stacks"))
    out: dict[tuple[str, str], StackProfile] = {}
    for p in sorted(d.glob("*.toml")) if d.is_dir() else []:
        sp = parse_toml(p, StackProfile)
        out[(sp.family, sp.stack)] = sp
    return out


@cache
def packaged_residuals() -> tuple[Residual, ...]:
    """The packaged band table (cross-validated residuals of the packaged calibration); empty
    if none was generated yet (bands then come from the all-rows fallback: none)."""
    path = Path(str(resources.files("siliconomics.catalog") / "data" / "bands.toml"))
    if not path.exists():
        return ()
    return from_toml_dict(loads_band_toml(path.read_text(encoding="utf-8")))

"""Each validated row's software stack, the profile that stack resolves to, and the error band
of its prediction (:mod:`siliconomics.calibrate.bands`, from the packaged cross-validated
residuals or a user's calibration)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..calibrate.bands import DEFAULT_LEVEL, BandQuery, Residual, band_for
from ..calibrate.samples import model_class, regime
from ..catalog.schema import EfficiencyProfile, ModelSpec
from ..catalog.stacks import (
    ProfileSet,
    ResolvedProfile,
    Workload,
    packaged_stack_profiles,
    resolve_profile,
    row_stack,
    stacks,
)
from ..measured.rows import MeasuredRow


@dataclass(frozen=True, kw_only=True)
class RowBand:
    """The stack a row ran and the band of its prediction."""

    stack: str
    stack_basis: str
    """default / fitted / inherited (see :class:`~siliconomics.catalog.stacks.ResolvedProfile`)"""
    stack_note: str
    low: float
    high: float
    level: float
    basis: str
    reason: str


def default_profile_set(profiles: Mapping[str, EfficiencyProfile]) -> ProfileSet:
    """``profiles`` (a catalog's, by family) with the packaged per-stack overrides."""
    return ProfileSet(families=profiles, stacks=packaged_stack_profiles())


def row_profile(row: MeasuredRow, family: str, ps: ProfileSet) -> tuple[ResolvedProfile, str]:
    """The resolved (family, stack) profile of a row and a note if its stack was assumed."""
    wl: Workload = "training" if row.kind == "training" else "inference"
    stack, note = row_stack(row.software, family, wl, stacks())
    return resolve_profile(ps, family, stack, wl), note


def row_band(
    row: MeasuredRow,
    model: ModelSpec,
    rp: ResolvedProfile,
    stack_note: str,
    predicted: float,
    residuals: Sequence[Residual],
    level: float = DEFAULT_LEVEL,
) -> RowBand:
    q = BandQuery(
        kind=row.kind,
        family=rp.family,
        stack=rp.stack,
        regime=regime(row),
        model_class=model_class(model),
        stack_measured=rp.basis != "inherited",
    )
    b = band_for(residuals, q, level=level)
    lo, hi = b.of(predicted, row.metric)
    notes = [n for n in (stack_note, rp.note) if n]
    return RowBand(
        stack=rp.stack,
        stack_basis=rp.basis,
        stack_note="; ".join(notes),
        low=lo,
        high=hi,
        level=level,
        basis=b.basis,
        reason=b.reason,
    )

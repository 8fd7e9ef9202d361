"""A resolved catalog: every chip, model, efficiency profile, system and price a run may name.

The edges (CLI, Python API, scripts) build one :class:`Catalog` (the packaged data files, plus
any chip or model files the user gave) and hand it down. Core code that must turn an id into
an object, because its input names things by id (a measured row, a plan spec), resolves it
through the catalog it was given, never through the registry, so a user's hypothetical chip
and a calibration's trial profile travel the same way as packaged data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import UnknownIdError
from .schema import ChipSpec, EfficiencyProfile, ModelSpec, PriceBookFile, SystemSpec


@dataclass(frozen=True, kw_only=True)
class Catalog:
    """Chips, models, efficiency profiles (by family) and systems, by exact id."""

    chips: Mapping[str, ChipSpec] = field(default_factory=dict)
    models: Mapping[str, ModelSpec] = field(default_factory=dict)
    profiles: Mapping[str, EfficiencyProfile] = field(default_factory=dict)
    """efficiency profiles by family id (a chip's ``family`` names one)"""
    systems: Mapping[str, SystemSpec] = field(default_factory=dict)
    price_books: tuple[PriceBookFile, ...] = ()
    """dated price books (one per provider): the prices a run may use"""
    owned_defaults: Mapping[str, Any] = field(default_factory=dict)
    """the owned-TCO defaults (``economics/owned_defaults.toml``, parsed): what owning costs"""

    def chip(self, chip_id: str) -> ChipSpec:
        """The chip ``chip_id``; an unknown id raises, listing close ids."""
        if chip_id not in self.chips:
            raise UnknownIdError("chip", chip_id, self.chips)
        return self.chips[chip_id]

    def model(self, model_id: str) -> ModelSpec:
        """The model ``model_id``; an unknown id raises, listing close ids."""
        if model_id not in self.models:
            raise UnknownIdError("model", model_id, self.models)
        return self.models[model_id]

    def profile(self, family: str) -> EfficiencyProfile:
        """The efficiency profile of ``family``; an unknown family raises."""
        if family not in self.profiles:
            raise UnknownIdError("efficiency profile", family, self.profiles)
        return self.profiles[family]

    def profile_of(self, chip: ChipSpec) -> EfficiencyProfile:
        """The efficiency profile of ``chip``'s family, with the factors calibration fitted on
        that chip's own rows (``chip_factors``) on top."""
        prof = self.profile(chip.family)
        own = prof.chip_factors.get(chip.id)
        return prof.model_copy(update=own) if own else prof

    def with_chips(self, extra: Mapping[str, ChipSpec]) -> Catalog:
        """This catalog plus (or with replaced) chips."""
        return replace(self, chips={**self.chips, **extra})

    def with_models(self, extra: Mapping[str, ModelSpec]) -> Catalog:
        """This catalog plus (or with replaced) models."""
        return replace(self, models={**self.models, **extra})

    def with_profiles(self, extra: Mapping[str, EfficiencyProfile]) -> Catalog:
        """This catalog with some families' profiles replaced (e.g. a calibration trial)."""
        return replace(self, profiles={**self.profiles, **extra})

"""Exact-id lookup of the packaged catalog (chips, systems, models, efficiency profiles).

Only the edges (CLI, Python API, report, scripts) look ids up here; they hand the objects, or a
:class:`~.catalog.Catalog` built by :func:`packaged`, down to the core (tests/test_architecture.py
enforces it).

Files are read once from the package (``catalog/data/<kind>/<id>.toml``) and validated against
the schemas in :mod:`.schema`. An unknown id raises :class:`UnknownIdError` listing close ids.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from ..errors import SiliconomicsError, UnknownIdError
from .catalog import Catalog
from .hf import load_hf_config
from .parse import parse_toml, validate_as
from .power import with_tdp_estimate
from .schema import (
    ChipSpec,
    EfficiencyProfile,
    ModelSpec,
    PriceBookFile,
    SearchRealismFile,
    SystemSpec,
)

T = TypeVar("T", bound=BaseModel)

__all__ = [
    "chips",
    "efficiency_profiles",
    "get_chip",
    "get_efficiency",
    "get_model",
    "get_system",
    "models",
    "packaged",
    "parse_toml",
    "systems",
    "systems_for_chip",
    "validate_as",
]


def _data_dir(kind: str) -> Path:
    return Path(str(resources.files("siliconomics.catalog") / "data" / kind))


@cache
def _load_all(kind: str, schema: type[T]) -> dict[str, T]:
    out: dict[str, T] = {}
    for path in sorted(_data_dir(kind).glob("*.toml")):
        item = parse_toml(path, schema)
        key = getattr(item, "id", None) or getattr(item, "family", None)
        assert isinstance(key, str)
        if key != path.stem:
            raise SiliconomicsError(f"{path.name}: id '{key}' does not match the file name")
        out[key] = item
    return out


@cache
def chips() -> dict[str, ChipSpec]:
    """All packaged chips by id (an unpublished TDP estimated from the others, :mod:`.power`)."""
    raw = _load_all("chips", ChipSpec)
    return {k: with_tdp_estimate(c, raw.values()) for k, c in raw.items()}


def systems() -> dict[str, SystemSpec]:
    """All packaged systems (instances, slices, servers) by id."""
    return _load_all("systems", SystemSpec)


@cache
def price_book_files() -> tuple[PriceBookFile, ...]:
    """The packaged dated price books (``catalog/data/prices/*.toml``), one per provider."""
    return tuple(parse_toml(p, PriceBookFile) for p in sorted(_data_dir("prices").glob("*.toml")))


@cache
def search_realism() -> SearchRealismFile:
    """The packaged search-realism table (``catalog/data/search_realism.toml``, written by
    ``scripts/search_realism.py --write``)."""
    path = Path(str(resources.files("siliconomics.catalog") / "data" / "search_realism.toml"))
    return parse_toml(path, SearchRealismFile)


@cache
def owned_defaults() -> dict[str, Any]:
    """The packaged owned-TCO defaults (``catalog/data/economics/owned_defaults.toml``), parsed
    (validated by :func:`siliconomics.economics.tco.load_owned_assumptions`)."""
    path = _data_dir("economics") / "owned_defaults.toml"
    return tomllib.loads(path.read_text(encoding="utf-8"))


def models() -> dict[str, ModelSpec]:
    """All packaged model presets by id."""
    return _load_all("models", ModelSpec)


def efficiency_profiles() -> dict[str, EfficiencyProfile]:
    """All efficiency profiles by family id."""
    return _load_all("efficiency", EfficiencyProfile)


def packaged() -> Catalog:
    """Every packaged chip, model, efficiency profile, system and price book as one
    :class:`Catalog` (the edges start from it and add the user's files)."""
    return Catalog(
        chips=chips(),
        models=models(),
        profiles={**efficiency_profiles(), **_EFF_OVERRIDES},  # --stack/--profile at the edge
        systems=systems(),
        price_books=price_book_files(),
        owned_defaults=owned_defaults(),
    )


def get_chip(chip_id: str) -> ChipSpec:
    table = chips()
    if chip_id not in table:
        raise UnknownIdError("chip", chip_id, table)
    return table[chip_id]


def get_system(system_id: str) -> SystemSpec:
    table = systems()
    if system_id not in table:
        raise UnknownIdError("system", system_id, table)
    return table[system_id]


def systems_for_chip(chip_id: str) -> list[SystemSpec]:
    return [s for s in systems().values() if s.chip == chip_id]


_EFF_OVERRIDES: dict[str, EfficiencyProfile] = {}


def override_efficiency(profiles: dict[str, EfficiencyProfile]) -> None:
    """Edges only (``--stack``/``--profile``): use these profiles for their families in this
    process instead of the packaged ones (an empty dict restores the packaged profiles)."""
    _EFF_OVERRIDES.clear()
    _EFF_OVERRIDES.update(profiles)


def get_efficiency(family: str) -> EfficiencyProfile:
    if family in _EFF_OVERRIDES:
        return _EFF_OVERRIDES[family]
    table = efficiency_profiles()
    if family not in table:
        raise UnknownIdError("efficiency profile", family, table)
    return table[family]


def get_model(model: str) -> ModelSpec:
    """A model preset by id, or a Hugging Face ``config.json`` (or a folder holding one)
    given by path."""
    table = models()
    if model in table:
        return table[model]
    p = Path(model)
    if p.suffix == ".json" or p.is_dir():
        return load_hf_config(p)
    raise UnknownIdError("model", model, table)

"""Validation of raw data (parsed TOML, JSON, CSV cells) against the catalog's schemas, with
errors that name the file and the field. Shared by the registry, the Hugging Face reader, the
measured-row readers and the plan spec, so that each schema is written once.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import SiliconomicsError

T = TypeVar("T", bound=BaseModel)


def parse_toml(path: Path, schema: type[T]) -> T:
    """Read one TOML data file into ``schema``; errors name the file and the field."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SiliconomicsError(f"{path.name}: not valid TOML: {e}") from None
    return validate_as(schema, raw, where=path.name)


def validate_as(schema: type[T], raw: object, *, where: str) -> T:
    try:
        return schema.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SiliconomicsError(
            f"{where}: field '{loc}': {first['msg']} ({e.error_count()} error(s))"
        ) from None

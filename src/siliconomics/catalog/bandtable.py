"""The band table: cross-validated residuals of a calibration, one per measured row.

Written by ``siliconomics calibrate`` as ``bands.toml`` (the packaged one is
``catalog/data/bands.toml``) and read by the edges; the band arithmetic on it is
:mod:`siliconomics.calibrate.bands`. A residual is ``r = log(measured / predicted)`` oriented as
a *speed* (time metrics inverted), with the keys of the cell it belongs to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Residual:
    """One row's cross-validated residual (speed orientation) and its cell keys."""

    id: str
    kind: str
    family: str
    stack: str
    regime: str
    model_class: str
    dtype: str
    group: str
    log_ratio: float


def from_toml_dict(raw: Mapping[str, object]) -> tuple[Residual, ...]:
    """The residuals of a parsed ``bands.toml``."""
    items = raw.get("residual", [])
    assert isinstance(items, list)
    return tuple(Residual(**{**r, "log_ratio": float(r["log_ratio"])}) for r in items)

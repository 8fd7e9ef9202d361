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
    scale: float = 1.0
    """the half-width scale of its kind's bands (the same on every residual of a kind), set by
    calibration so that held-out bands cover their level (``calibrate.bands.width_scale``)"""
    family_scale: float = 0.0
    """the half-width scale of its (kind, family) bands (the same on every residual of a
    family), from the held-out coverage of that family's rows, shrunk toward ``scale``
    (``calibrate.bands.family_scales``); 0: none (tables written before it existed), the kind's
    ``scale`` applies"""


def from_toml_dict(raw: Mapping[str, object]) -> tuple[Residual, ...]:
    """The residuals of a parsed ``bands.toml``."""
    items = raw.get("residual", [])
    assert isinstance(items, list)
    return tuple(
        Residual(
            **{
                **r,
                "log_ratio": float(r["log_ratio"]),
                "scale": float(r.get("scale", 1.0)),
                "family_scale": float(r.get("family_scale", 0.0)),
            }
        )
        for r in items
    )

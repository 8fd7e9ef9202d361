"""The band table: cross-validated residuals of a calibration, one per measured row.

Written by ``siliconomics calibrate`` as ``bands.toml`` (the packaged one is
``catalog/data/bands.toml``) and read by the edges; the band arithmetic on it is
:mod:`siliconomics.calibrate.bands`. A residual is ``r = log(measured / predicted)`` oriented as
a *speed* (time metrics inverted), with the keys of the cell it belongs to.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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


_KEY_VALUE = re.compile(
    r"([A-Za-z_][A-Za-z0-9_]*) = "
    r'(?:"([^"\\\x00-\x1f\x7f]*)"'  # a basic string without escapes or control characters
    r"|([-+]?(?:0|[1-9][0-9]*))"  # an integer
    r"|([-+]?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?))"  # a float
)


def loads_band_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads`` of a band table, fast for the layout ``calibrate`` writes (a ``[meta]``
    table, then ``[[residual]]`` tables of ``key = "plain string"`` or ``key = number`` lines):
    the packaged table has ~30,000 lines, which the pure-Python TOML parser takes over a
    second to read. Any other line (escapes, comments, other tables, repeated keys) hands the
    whole text to ``tomllib`` (tests/test_bandtable_fast.py checks both give the same)."""
    out: dict[str, Any] = {}
    items: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    match = _KEY_VALUE.fullmatch
    for line in text.splitlines():
        if not line:
            continue
        if line == "[[residual]]":
            cur = {}
            items.append(cur)
            continue
        if line == "[meta]" and cur is None and "meta" not in out:
            cur = out["meta"] = {}
            continue
        m = match(line)
        if m is None or cur is None or m[1] in cur:
            return tomllib.loads(text)
        k, st, it, fl = m.groups()
        cur[k] = st if st is not None else int(it) if it is not None else float(fl)
    if items:
        out["residual"] = items
    return out

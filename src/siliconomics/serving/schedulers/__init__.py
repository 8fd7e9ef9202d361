"""Replica schedulers. Adding one is a file here plus one line in ``SCHEDULERS``."""

from __future__ import annotations

from ..engine import Engine
from .chunked import ChunkedEngine
from .continuous import ContinuousEngine
from .static import StaticEngine

SCHEDULERS: dict[str, type[Engine]] = {
    "continuous": ContinuousEngine,
    "chunked": ChunkedEngine,
    "static": StaticEngine,
}

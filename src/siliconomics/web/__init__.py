"""The HTTP API and the web app (``siliconomics serve``; docs/WEB.md).

Needs the optional ``web`` extra (``pip install 'siliconomics[web]'``: FastAPI, uvicorn,
Jinja2, python-multipart)."""

from __future__ import annotations

from typing import Any

from .settings import Limits, Settings

__all__ = ["Limits", "Settings", "create_app"]


def create_app(settings: Settings | None = None) -> Any:
    """The FastAPI app (imported here lazily so the settings need no web dependency)."""
    from .app import create_app as make

    return make(settings)

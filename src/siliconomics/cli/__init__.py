"""Command-line interface: parse, call one library function, render. Nothing else.

One module per command group; each registers its commands on the shared typer ``app``.
"""

from __future__ import annotations

import sys

from ..errors import SiliconomicsError
from . import (  # noqa: F401  (importing registers the commands)
    calibrate_cmds,
    catalog_cmds,
    inference_cmds,
    measured_cmds,
    plan_cmds,
    simulate_cmds,
    tco_cmds,
    train_cmds,
    validate_cmds,
)
from .common import app, err

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2 (typer/click
    already report bad options that way)."""
    try:
        app()
    except SiliconomicsError as e:
        err.print(f"error: {e}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)

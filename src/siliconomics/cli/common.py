"""Shared pieces of the command-line interface: the typer app, consoles, option types."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from ..errors import SiliconomicsError
from ..units import DTYPES

app = typer.Typer(
    name="siliconomics",
    help="Speed, cost and energy of LLM serving on GPUs and AI ASICs, from first principles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout")]
DTYPE_HELP = f"one of {', '.join(DTYPES)}"


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def check_dtype(name: str, v: str) -> str:
    if v not in DTYPES:
        raise SiliconomicsError(f"--{name} '{v}' is not a dtype; allowed: {', '.join(DTYPES)}")
    return v

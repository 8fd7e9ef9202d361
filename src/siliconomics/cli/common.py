"""Shared pieces of the command-line interface: the typer app, consoles, option types."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
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
MtpOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="speculative decoding: tokens the model's MTP module drafts per step "
        "(DeepSeek-V3/R1/V3.x, GLM-4.5+, MiniMax-M2.5); needs --accepted",
    ),
]
AcceptedOpt = Annotated[
    float | None,
    typer.Option(
        help="with --mtp: mean tokens emitted per step, 1 to mtp+1 (the draft's measured "
        "acceptance, e.g. 1.92 / 2.58 / 2.82 for DeepSeek-R1 MTP 1 / 2 / 3 on "
        "TensorRT-LLM's 1k/2k benchmark, its tech blog 1)",
    ),
]


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def check_dtype(name: str, v: str) -> str:
    if v not in DTYPES:
        raise SiliconomicsError(f"--{name} '{v}' is not a dtype; allowed: {', '.join(DTYPES)}")
    return v


@contextlib.contextmanager
def library_output_silenced() -> Iterator[None]:
    """Keep what native libraries (the HiGHS solver) write to file descriptor 1 off stdout,
    so ``--json`` output is only JSON. Python-level writes are unaffected."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (embedded use): nothing to protect
        yield
        return
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 1)
            try:
                yield
            finally:
                sys.stdout.flush()
                os.dup2(saved, 1)
    finally:
        os.close(saved)

"""The input-validation layer of the edges (CLI now, the HTTP API later).

Each function checks one kind of input and raises :class:`SiliconomicsError` with a one-line
message naming the option and what is allowed: numbers finite and in range, durations with a
unit, files readable text of the right kind, output paths writable, conflicting options
rejected. The ``*_cb`` variants are typer callbacks for option declarations.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import typer

from ..catalog.schema import ModelSpec
from ..errors import SiliconomicsError
from ..units import parse_duration

MAX_TEXT_BYTES = 512 * 1024**2
"""input files larger than this are refused (a measured CSV or a spec is a few MB at most)"""


def finite(
    value: float | None, what: str, *, lo: float | None = None, hi: float | None = None
) -> float | None:
    """``value`` itself, after checking it is a finite number within ``[lo, hi]``."""
    if value is None:
        return None
    if not math.isfinite(value):
        raise SiliconomicsError(f"{what} must be a finite number, got {value}")
    if lo is not None and value < lo:
        raise SiliconomicsError(f"{what} must be >= {lo:g}, got {value:g}")
    if hi is not None and value > hi:
        raise SiliconomicsError(f"{what} must be <= {hi:g}, got {value:g}")
    return value


def finite_cb(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """typer callback: a float option must be finite (no nan/inf)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number, got {value}")
    return value


def share_cb(value: float | None) -> float | None:
    """typer callback: a share of something (``--memory-fraction``), finite and in [0.01, 1];
    nan and inf are named as such rather than as out of range."""
    if value is not None and not (math.isfinite(value) and 0.01 <= value <= 1.0):
        raise typer.BadParameter(f"allowed: a share in [0.01, 1], got {value:g}")
    return value


def duration(text: str | None, what: str) -> float | None:
    """A duration with its unit (``2s``, ``50ms``) in seconds; a bare number is refused."""
    return None if text is None else parse_duration(text, what=what)


def parse_buckets(text: str | None) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """``--buckets CTX,CTX,.../GEN,GEN,...``: the two lists of token counts, or a one-line
    error naming the option and the expected form."""
    if text is None:
        return None
    form = "CTX,CTX,.../GEN,GEN,... (e.g. 2048,4096,8192,12288/12800)"
    parts = text.split("/")
    if len(parts) != 2:
        raise SiliconomicsError(f"--buckets: expected {form}, got '{text}'")
    try:
        ctx, gen = (tuple(int(x) for x in p.split(",") if x.strip()) for p in parts)
    except ValueError:
        raise SiliconomicsError(
            f"--buckets: bucket lengths must be whole token counts, {form}; got '{text}'"
        ) from None
    return ctx, gen


def _text_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable UTF-8 text file, or None when it is."""
    if not path.exists():
        return "no such file"
    if path.is_dir():
        return "is a folder, expected a file"
    if not path.is_file():
        return "not a regular file"
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        return f"{size / 1024**2:.0f} MiB is more than the {MAX_TEXT_BYTES // 1024**2} MiB allowed"
    try:
        data = path.read_bytes()
    except OSError as e:
        return f"cannot read: {e.strerror}"
    if b"\x00" in data[:8192]:
        return "is a binary file, expected text"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"not UTF-8 text (byte {e.start}: {e.reason})"
    return None


def text_file(path: Path, what: str) -> str:
    """The text of a readable UTF-8 file; a folder, a missing or binary file is refused."""
    problem = _text_problem(path)
    if problem:
        raise SiliconomicsError(f"{what} '{path}': {problem}")
    return path.read_text(encoding="utf-8")


def text_file_cb(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Any:
    """typer callback: the path must be a readable UTF-8 text file."""
    problem = None if value is None else _text_problem(value)
    if problem:
        raise typer.BadParameter(f"'{value}': {problem}")
    return value


def text_files_cb(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """typer callback: every path of a repeated argument must be a readable UTF-8 file."""
    for v in value or ():
        text_file_cb(ctx, param, v)
    return value


def text_file_or_folder_cb(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """typer callback: an existing folder, or a readable UTF-8 text file."""
    if value is None or (isinstance(value, Path) and value.is_dir()):
        return value
    return text_file_cb(ctx, param, value)


def _write_problem(path: Path) -> str | None:
    if path.is_dir():
        return "is a folder, expected a file name"
    parent = path.parent
    if not parent.is_dir():
        return f"folder '{parent}' does not exist"
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return "not writable"
    return None


def writable_path(path: Path, what: str) -> Path:
    """An output path whose folder exists and is writable, and that is not a folder."""
    problem = _write_problem(path)
    if problem:
        raise SiliconomicsError(f"{what} '{path}': {problem}")
    return path


def writable_cb(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Any:
    """typer callback: an output file path that can be written."""
    problem = None if value is None else _write_problem(value)
    if problem:
        raise typer.BadParameter(f"'{value}': {problem}")
    return value


def exclusive(**given: object) -> None:
    """Refuse options that cannot be combined: each keyword is an option name (``--x``
    spelled x_y) whose value is set when not None/False."""
    named = [f"--{k.replace('_', '-')}" for k, v in given.items() if v not in (None, False)]
    if len(named) > 1:
        raise SiliconomicsError(f"{' and '.join(named)} cannot be used together; pick one")


def check_context(model: ModelSpec, input_len: int, output_len: int, *, allow: bool) -> None:
    """Refuse input + output beyond the model's trained context unless the user asks to go
    past it (``--beyond-context``): speed can be modelled there, answer quality cannot."""
    n = input_len + output_len
    if model.max_position is not None and n > model.max_position and not allow:
        raise SiliconomicsError(
            f"--input + --output = {n:,} tokens exceeds {model.id}'s context of "
            f"{model.max_position:,}; shorten them or pass --beyond-context"
        )

"""Command-line interface: parse, call one library function, render. Nothing else.

One module per command group; each registers its commands on the shared typer ``app``.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from ..errors import SiliconomicsError
from . import (  # noqa: F401  (importing registers the commands)
    calibrate_cmds,
    catalog_cmds,
    inference_cmds,
    measured_cmds,
    plan_cmds,
    port_cmds,
    prices_cmds,
    serve_cmds,
    simulate_cmds,
    sweep_cmds,
    tco_cmds,
    train_cmds,
    validate_cmds,
)
from .common import app, err

__all__ = ["app", "main"]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> None:
    """Entry point. Every failure is one line on stderr and exit code 2: user errors
    (:class:`SiliconomicsError`), the CLI framework's usage errors, unreadable files. A bug is
    one line and exit code 1 (``SILICONOMICS_DEBUG=1`` shows the traceback)."""
    try:
        rv = app(args=argv, standalone_mode=False)
    except SiliconomicsError as e:
        _fail(f"error: {e}")
    except KeyboardInterrupt:
        _fail("error: interrupted")
    except UnicodeDecodeError as e:
        _fail(f"error: a file is not UTF-8 text ({e.reason} at byte {e.start})")
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        _fail(f"error: {e.strerror or e}{where}")
    except Exception as e:
        if "NoArgsIsHelpError" in _mro_names(e):
            sys.stdout.write(e.format_message() + "\n")  # type: ignore[attr-defined]
            sys.exit(0)
        if _is_framework_error(e):
            hint = "; see --help" if _is_usage_error(e) else ""
            _fail(f"error: {_one_line(e.format_message()).rstrip('.')}{hint}")  # type: ignore[attr-defined]
        if type(e).__name__ == "Abort":
            _fail("error: interrupted")
        if os.environ.get("SILICONOMICS_DEBUG"):
            raise
        err.print(
            f"internal error: {type(e).__name__}: {_one_line(str(e))} "
            "(a bug; please report it; SILICONOMICS_DEBUG=1 shows the traceback)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


def _mro_names(e: BaseException) -> set[str]:
    return {c.__name__ for c in type(e).__mro__}


def _is_framework_error(e: BaseException) -> bool:
    """A usage or parameter error of the CLI framework (click, or typer's vendored click:
    matched by class name so both layouts work)."""
    return "ClickException" in _mro_names(e) and hasattr(e, "format_message")


def _is_usage_error(e: BaseException) -> bool:
    return "UsageError" in _mro_names(e)


def _fail(message: str) -> NoReturn:
    err.print(_one_line(message), highlight=False, markup=False, soft_wrap=True)
    sys.exit(2)

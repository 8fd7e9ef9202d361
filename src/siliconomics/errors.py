"""Project error types. Every user-facing error is a ``SiliconomicsError`` (a ``ValueError``)
whose message names the field and what is allowed; the CLI prints it on one line, exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SiliconomicsError(ValueError):
    """Bad user input or an impossible request (unknown id, negative length, does not fit)."""


class UnknownIdError(SiliconomicsError):
    """An exact-id lookup failed; the message lists the closest known ids."""

    def __init__(self, kind: str, given: str, known: Iterable[str], *, listing: str = "") -> None:
        known = sorted(known)
        close = difflib.get_close_matches(given, known, n=5, cutoff=0.4)
        hint = f"; did you mean: {', '.join(close)}" if close else ""
        listing = listing or f"run 'siliconomics {kind}s' to list all {len(known)}"
        super().__init__(f"unknown {kind} '{given}'{hint} ({listing})")
        self.kind = kind
        self.given = given


class DoesNotFitError(SiliconomicsError):
    """A model or batch does not fit the memory of the chosen chips."""

    def __init__(self, message: str, *, shortfall_bytes: float, suggestion: str = "") -> None:
        super().__init__(message + (f"; {suggestion}" if suggestion else ""))
        self.shortfall_bytes = shortfall_bytes

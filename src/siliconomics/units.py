"""SI units inside, human units at the edges.

Everything in the core is in FLOP/s, bytes, bytes/s, seconds, watts, hertz and USD.
This module parses strings such as ``"80 GiB"``, ``"3.35 TB/s"``, ``"989.4 TFLOP/s"``,
``"50ms"`` or ``"1T"`` (tokens) into SI floats, and formats SI floats for display.
"""

from __future__ import annotations

import math
import re
from typing import Final, Literal

from .errors import SiliconomicsError

Dimension = Literal["bytes", "bytes_per_s", "flops_per_s", "seconds", "watts", "hertz", "count"]

#: Storage width in bytes of each numeric format (int4/fp4 pack two values per byte).
DTYPE_BYTES: Final[dict[str, float]] = {
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
    "fp4": 0.5,
}
DTYPES: Final[tuple[str, ...]] = tuple(DTYPE_BYTES)

_DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}
_TIME = {
    "s": 1.0,
    "sec": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "ns": 1e-9,
    "min": 60.0,
    "h": 3600.0,
}

_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_RE = re.compile(rf"^\s*{_NUM}\s*([A-Za-zµ/]*)\s*$")


def dtype_bytes(dtype: str) -> float:
    """Bytes per element of ``dtype``; raises a clear error for an unknown format."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise SiliconomicsError(f"unknown dtype '{dtype}'; allowed: {', '.join(DTYPES)}") from None


def _prefix_scale(prefix: str) -> float | None:
    if prefix in _BINARY:
        return _BINARY[prefix]
    if prefix in _DECIMAL:
        return _DECIMAL[prefix]
    return None


def _split(text: str, what: str) -> tuple[float, str]:
    m = _RE.match(str(text))
    if not m:
        raise SiliconomicsError(f"{what}: cannot read '{text}' as a number with a unit")
    return float(m.group(1)), m.group(2)


def parse_quantity(text: str | float | int, dim: Dimension, *, what: str = "value") -> float:
    """Parse ``text`` as a quantity of dimension ``dim`` and return it in SI units.

    A bare number is taken to be in SI units already. Decimal prefixes (k, M, G, T, P)
    are powers of 1000 and binary prefixes (Ki, Mi, Gi, Ti) powers of 1024, so
    ``"80 GiB" -> 85_899_345_920`` and ``"3.35 TB/s" -> 3.35e12``.
    """
    if isinstance(text, bool):
        raise SiliconomicsError(f"{what}: expected a quantity, got a boolean")
    if isinstance(text, int | float):
        return float(text)
    value, unit = _split(text, what)
    if unit == "":
        return value
    scale: float | None = None
    if dim == "bytes":
        scale = _scaled(unit, ("B",))
    elif dim == "bytes_per_s":
        scale = _scaled(unit, ("B/s", "Bps"))
    elif dim == "flops_per_s":
        scale = _scaled(unit, ("FLOP/s", "FLOPS", "OP/s", "OPS", "F/s"))
    elif dim == "watts":
        scale = _scaled(unit, ("W",))
    elif dim == "hertz":
        scale = _scaled(unit, ("Hz",))
    elif dim == "seconds":
        scale = _TIME.get(unit)
    elif dim == "count":
        scale = _prefix_scale(unit) if unit not in ("B",) else 1e9
    if scale is None:
        raise SiliconomicsError(f"{what}: unit '{unit}' in '{text}' is not a unit of {dim}")
    return value * scale


def _scaled(unit: str, bases: tuple[str, ...]) -> float | None:
    for base in bases:
        if unit.endswith(base):
            s = _prefix_scale(unit[: -len(base)])
            if s is not None:
                return s
    return None


def parse_duration(text: str | float | int, *, what: str) -> float:
    """A positive, finite duration that states its unit (``2s``, ``50ms``, ``300us``), in
    seconds. A bare number is refused: ``50`` could be seconds or milliseconds, and a 1000x
    wrong latency target is worse than an error."""
    if isinstance(text, bool):
        raise SiliconomicsError(f"{what}: expected a duration such as '50ms', got a boolean")
    if isinstance(text, int | float) or _split(str(text), what)[1] == "":
        raise SiliconomicsError(
            f"{what}: '{text}' needs a unit, e.g. '{text}ms' or '{text}s' (allowed: "
            f"{', '.join(sorted(_TIME))})"
        )
    return parse_positive(text, "seconds", what=what)


def parse_positive(text: str | float | int, dim: Dimension, *, what: str) -> float:
    """As :func:`parse_quantity`, and the result must be finite and > 0."""
    v = parse_quantity(text, dim, what=what)
    if not math.isfinite(v) or v <= 0:
        raise SiliconomicsError(f"{what} must be a positive quantity, got '{text}'")
    return v


def fmt_si(value: float, unit: str, *, digits: int = 3, binary: bool = False) -> str:
    """Format an SI value with a prefix: ``fmt_si(3.35e12, 'B/s') -> '3.35 TB/s'``."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value == 0:
        return f"0 {unit}"
    base = 1024.0 if binary else 1000.0
    prefixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi"] if binary else ["", "k", "M", "G", "T", "P", "E"]
    i = 0
    v = abs(value)
    while v >= base and i < len(prefixes) - 1:
        v /= base
        i += 1
    sign = "-" if value < 0 else ""
    return f"{sign}{v:.{digits}g} {prefixes[i]}{unit}"


def fmt_time(seconds: float) -> str:
    """Human time: ``0.0123 -> '12.3 ms'``, ``5400 -> '1.50 h'``."""
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    s = abs(seconds)
    if s < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if s < 1:
        return f"{seconds * 1e3:.3g} ms"
    if s < 120:
        return f"{seconds:.3g} s"
    if s < 7200:
        return f"{seconds / 60:.3g} min"
    if s < 3 * 86400:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} days"


def fmt_count(n: float) -> str:
    """A large count the way people say it: 2e11 -> '200B', 1.5e12 -> '1.5T', 4096 -> '4,096'."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{n:,.0f}"

"""``--stack``, ``--profile`` and ``--level`` for every command, and the error band of an
answer (docs/CALIBRATION.md, docs/VALIDATION.md).

The stack and calibration are resolved once (:func:`siliconomics.resolve.calibration`); the
band of an answer is attached by :mod:`siliconomics.report.bands` (the Python API does it, and
the commands call the API)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer

from .. import resolve
from ..calibrate.bands import DEFAULT_LEVEL
from ..catalog.registry import override_efficiency
from ..catalog.stacks import Calibration, Workload
from ..report.bands import INVERSE_KEYS, SPEED_KEYS, add_bands, band, band_line, band_meta
from ..resolve import merge_residuals

__all__ = [
    "INVERSE_KEYS",
    "SPEED_KEYS",
    "Calib",
    "LevelOpt",
    "ProfileOpt",
    "StackOpt",
    "add_bands",
    "band",
    "band_line",
    "band_meta",
    "merge_residuals",
    "setup",
]

StackOpt = Annotated[
    str | None,
    typer.Option(
        help="software stack (trtllm, vllm, sglang, nxdi, vllm-neuron, optimum-habana, "
        "vllm-gaudi, jetstream, vllm-tpu, sglang-jax, maxtext, nemo, megatron, ...; see "
        "docs/CALIBRATION.md); default: each chip's best published stack"
    ),
]
ProfileOpt = Annotated[
    Path | None,
    typer.Option(help="calibration directory written by 'siliconomics calibrate'"),
]
LevelOpt = Annotated[
    float, typer.Option(min=0.5, max=0.99, help="level of the error bands (default 0.8)")
]

Calib = Calibration
"""What a command resolved (:class:`siliconomics.catalog.stacks.Calibration`)."""


def setup(
    stack: str | None,
    profile: Path | None,
    level: float = DEFAULT_LEVEL,
    workload: Workload = "inference",
    families: Iterable[str] | None = None,
) -> Calibration:
    """Resolve ``--stack``/``--profile`` for ``families`` (default: all) and install the
    profiles process-wide (for commands that resolve chips through the registry; the Python
    API passes them down in a catalog instead, :func:`siliconomics.api.estimate` etc.)."""
    calib = resolve.calibration(stack, profile, level, workload, families)
    override_efficiency(calib.efficiency())
    return calib

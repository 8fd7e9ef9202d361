"""Cost and energy of a deployment.

Prices are not here: :mod:`.pricing` prices a chip-hour in every mode from the price book.

Power model (documented assumption, not a measurement):
``P_chip = TDP * (idle + (1 - idle) * activity)`` where ``activity`` is the fraction of step
time in which the chip's matrix units or memory system are the binding resource (1.0 for a
compute- or memory-bound step, lower where launch overhead and communication dominate), and
``idle`` the chip's idle fraction of TDP (default 0.3). The host (CPUs, NICs, fans) adds
``host_w_per_chip``: by default 0.6 x TDP, from NVIDIA's DGX H100 datasheet (10.2 kW max system
power for 8 x 700 W GPUs: (10.2 - 5.6) / 5.6 = 0.82 at maximum; 0.6 assumes hosts below their
maximum). Facility overhead (PUE) belongs to owned-TCO and is not included here.

Where a chip's TDP is unpublished, the catalog estimated it from its bf16 peak at the median
FLOP/s-per-watt of catalog chips with a published TDP from the same year +-1
(:mod:`siliconomics.catalog.power`, when the catalog is built); it is flagged as estimated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..catalog.schema import ChipSpec

F = NDArray[np.float64]
HOST_POWER_FRACTION = 0.6


@dataclass(frozen=True, kw_only=True)
class ChipPower:
    tdp_w: float
    estimated: bool
    basis: str


def chip_tdp(chip: ChipSpec) -> ChipPower | None:
    """Published TDP, or the catalog's estimate from the bf16 peak (flagged); None if neither
    exists."""
    if chip.power.tdp_w is not None:
        return ChipPower(
            tdp_w=chip.power.tdp_w.value, estimated=False, basis=f"TDP ({chip.power.tdp_w.conf})"
        )
    est = chip.power.tdp_estimate
    if est is None:
        return None
    return ChipPower(tdp_w=est.tdp_w, estimated=True, basis=est.basis)


def power_per_chip_w(chip: ChipSpec, activity: F | float) -> tuple[F, ChipPower | None]:
    """Average electrical power per chip including its host share (W)."""
    tdp = chip_tdp(chip)
    if tdp is None:
        return np.asarray(np.nan), None
    idle = chip.power.idle_fraction
    act = np.clip(np.asarray(activity, dtype=np.float64), 0.0, 1.0)
    p = tdp.tdp_w * (idle + (1.0 - idle) * act) + HOST_POWER_FRACTION * tdp.tdp_w
    return p, tdp


def usd_per_million_tokens(usd_per_chip_hour: float, chips_: int, tokens_per_s: F) -> F:
    return usd_per_chip_hour * chips_ / (np.asarray(tokens_per_s) * 3600.0) * 1e6

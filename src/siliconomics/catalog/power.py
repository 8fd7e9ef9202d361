"""An unpublished TDP, estimated from the catalog's chips when the catalog is built.

Where a chip's TDP is unpublished, it is *estimated* from its bf16 peak at the median
FLOP/s-per-watt of catalog chips with a published TDP from the same year +-1, and flagged
(:attr:`~.schema.ChipPower.tdp_estimate`). The registry does it for the packaged chips and the
edge (:mod:`siliconomics.resolve`) for a user's chip file, so the power model
(:mod:`siliconomics.economics.cost`) never needs the whole catalog.
"""

from __future__ import annotations

from collections.abc import Iterable
from statistics import median

from .schema import ChipSpec, TdpEstimate


def estimate_tdp(chip: ChipSpec, peers: Iterable[ChipSpec]) -> TdpEstimate | None:
    """The TDP of ``chip`` from its bf16 peak and the median bf16 FLOP/s per watt of the
    ``peers`` with a published TDP from the same year +-1; None if that cannot be done."""
    peak = chip.peak_flops("bf16")
    if peak is None or chip.year is None:
        return None
    ratios = [
        c.peak_flops("bf16") / c.power.tdp_w.value  # type: ignore[operator]
        for c in peers
        if c.power.tdp_w is not None
        and c.peak_flops("bf16")
        and c.year
        and abs(c.year - chip.year) <= 1
    ]
    if not ratios:
        return None
    r = median(ratios)
    return TdpEstimate(
        tdp_w=peak / r,
        basis=f"estimate: bf16 peak / median {r / 1e12:.2f} TFLOP/s per W of "
        f"{len(ratios)} chips from {chip.year - 1}-{chip.year + 1}",
    )


def with_tdp_estimate(chip: ChipSpec, peers: Iterable[ChipSpec]) -> ChipSpec:
    """``chip`` with the estimate of its unpublished TDP (unchanged when its TDP is published
    or already estimated, or when no estimate can be made)."""
    if chip.power.tdp_w is not None or chip.power.tdp_estimate is not None:
        return chip
    est = estimate_tdp(chip, peers)
    if est is None:
        return chip
    return chip.model_copy(update={"power": chip.power.model_copy(update={"tdp_estimate": est})})

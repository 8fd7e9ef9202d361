"""One deployment assessed end to end: speed (from the estimate), cost and energy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..economics.cost import ChipPower, power_per_chip_w
from ..economics.pricing import ChipPrice, Pricing, chip_price
from ..inference.estimate import Estimate

F = NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class Assessment:
    """Cost and energy on top of an :class:`Estimate` (arrays broadcast as in the estimate)."""

    estimate: Estimate
    price: ChipPrice | None
    power: ChipPower | None
    watts_per_chip: F
    """average electrical power per chip incl. host share"""

    @property
    def usd_per_hour(self) -> F:
        if self.price is None:
            return np.asarray(np.nan)
        return np.asarray(self.price.usd_per_chip_hour * self.estimate.plan.chips)

    @property
    def usd_per_million_output(self) -> F:
        """All cost charged to output tokens (the blended price of a chat service)."""
        return self.usd_per_hour / (self.estimate.output_tokens_per_s * 3600.0) * 1e6

    @property
    def usd_per_million_input_split(self) -> F:
        """Cost of prefill time per million input tokens (time-share split)."""
        e = self.estimate
        input_tps = e.output_tokens_per_s * e.input_len / e.output_len
        return self.usd_per_hour * e.prefill_time_share / (input_tps * 3600.0) * 1e6

    @property
    def usd_per_million_output_split(self) -> F:
        """Cost of decode time per million output tokens (time-share split)."""
        e = self.estimate
        return (
            self.usd_per_hour * (1 - e.prefill_time_share) / (e.output_tokens_per_s * 3600.0) * 1e6
        )

    @property
    def joules_per_output_token(self) -> F:
        return self.watts_per_chip * self.estimate.plan.chips / self.estimate.output_tokens_per_s


def activity(est: Estimate) -> F:
    """Fraction of decode-step time bound by compute or memory (busy units), for power."""
    shares = est.decode.bound_shares()
    busy = shares["compute"] + shares["memory"]
    total = busy + shares["interconnect"] + shares["overhead"]
    return np.asarray(busy / total, dtype=np.float64)


def assess(est: Estimate, pricing: Pricing | None = None) -> Assessment:
    """Cost and energy of ``est``; ``pricing`` is the run's :class:`Pricing` (built at the
    edge, :func:`siliconomics.resolve.pricing`; None: unpriced)."""
    chip = est.device.chip
    watts, power = power_per_chip_w(chip, activity(est))
    price = (
        chip_price(chip, pricing, chips_needed=est.plan.chips_per_replica)
        if pricing is not None
        else None
    )
    return Assessment(estimate=est, price=price, power=power, watts_per_chip=watts)

"""Dollars on top of a serving simulation: the simulator measures seconds, tokens and joules;
this attaches USD per pool from the one pricing path (:func:`.pricing.price_chip_hour`).

A pool costs its chips x the run's duration x the USD per chip-hour of its chip, priced for a
replica of its size (chips per replica), in the run's mode and book.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from ..catalog.schema import ChipSpec
from ..serving.metrics import PoolStats, SimResult
from .pricebook import Pricing
from .pricing import price_chip_hour


def price_pool(
    pool: PoolStats, duration_s: float, pricing: Pricing, chips: Mapping[str, ChipSpec]
) -> PoolStats:
    chip = chips.get(pool.chip)
    per_replica = max(1, pool.chips // max(1, pool.replicas))
    p = price_chip_hour(pricing, chip, chips_needed=per_replica) if chip is not None else None
    usd_h = p.usd_per_chip_hour if p is not None else math.nan
    return replace(pool, usd_per_chip_hour=usd_h, usd=usd_h * pool.chips * duration_s / 3600.0)


def price_simulation(result: SimResult, pricing: Pricing) -> SimResult:
    """``result`` with USD per pool and for the run (NaN where a chip has no price)."""
    pools = tuple(price_pool(p, result.duration_s, pricing, pricing.chips) for p in result.pools)
    return replace(result, pools=pools, cost_usd=sum(p.usd for p in pools))

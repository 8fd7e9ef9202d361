"""Screening of layouts with the time-only fast path before the reference estimate runs.

:func:`screen_plans` evaluates every layout over the batch ladder with
:func:`..inference.fast.throughput_times` (TTFT, TPOT and throughput, without the per-op
breakdown; equal to :func:`..inference.estimate.estimate_max_throughput` within ~1e-15
relative, tests/test_fast.py) and keeps the layouts whose figures could still make them the
answer of :func:`.compare.best_on_chip` once the reference estimate is run:

* ``best``: layouts with a configuration that may meet the targets at a score (USD per million
  output tokens, or minus tokens/s per chip when unpriced) that may be the lowest; plus every
  layout the fast path cannot vouch for (it does not fit, raises, or gives a non-finite
  figure), which the reference then evaluates (or refuses) itself;
* ``closest``: ``best`` plus the layouts that may hold the smallest TPOT, the smallest TTFT or
  the smallest TTFT within the TPOT target (what the message of an infeasible chip names).

Every comparison is widened by a relative margin (:data:`MARGIN`, 1e-9: a thousand times the
fast path's largest measured difference), so a layout is only dropped when the reference
cannot make it win or tie; the caller then runs the reference on the kept layouts in their
original order and gets the same choice, bit for bit, as the reference on every layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from ..catalog.schema import ModelSpec
from ..economics.pricing import Pricing, chip_price
from ..errors import SiliconomicsError
from ..inference.estimate import max_batch
from ..inference.fast import ThroughputTimes, throughput_times
from ..ops.device import Device
from ..parallel.plan import InferencePlan

F = NDArray[np.float64]
MARGIN = 1e-9
"""relative widening of every screened comparison"""
PREFILL_CHUNK = 8192.0
"""prompt tokens per prefill step: ``estimate_max_throughput``'s default, which the search uses"""


class Targets(NamedTuple):
    """The request shape and the latency targets of a search (seconds; None: no target)."""

    input_len: float
    output_len: float
    ttft_s: float | None
    tpot_s: float | None


class Screen(NamedTuple):
    """Indices of the layouts the reference estimate must see (sorted)."""

    best: tuple[int, ...]
    closest: tuple[int, ...]


class _Bounds(NamedTuple):
    """A fitting layout's screened figures, each as (low, high) bounds on the reference's."""

    score: tuple[float, float]
    """best score among the configurations that may / surely meet the targets"""
    priced: bool
    tpot: tuple[float, float]
    ttft: tuple[float, float]
    ttft_in_tpot: tuple[float, float]
    """smallest TTFT where TPOT meets its target"""


def _lo(x: F) -> F:
    return np.asarray(x - MARGIN * np.abs(x))


def _hi(x: F) -> F:
    return np.asarray(x + MARGIN * np.abs(x))


def _meets(v: F, target: float | None, widen: float) -> NDArray[np.bool_]:
    if target is None:
        return np.ones(v.shape, dtype=bool)
    return np.asarray(v <= target * (1.0 + widen))


def _min_where(x: F, ok: NDArray[np.bool_]) -> float:
    return float(np.min(x[ok])) if ok.any() else np.inf


def _bounds(ft: ThroughputTimes, t: Targets, usd_per_hour: float, chips: float) -> _Bounds:
    """Low and high bounds of what the reference estimate of one layout gives."""
    ttft, tpot = ft.ttft_s, ft.tpot_s
    may = _meets(ttft, t.ttft_s, MARGIN) & _meets(tpot, t.tpot_s, MARGIN)
    sure = _meets(ttft, t.ttft_s, -MARGIN) & _meets(tpot, t.tpot_s, -MARGIN)
    cost = usd_per_hour / (ft.output_tokens_per_s * 3600.0) * 1e6
    priced = bool(np.all(np.isfinite(cost)))
    score = cost if priced else -(ft.output_tokens_per_s / chips)
    in_may = _meets(tpot, t.tpot_s, MARGIN) if t.tpot_s is not None else np.zeros_like(may)
    in_sure = _meets(tpot, t.tpot_s, -MARGIN) if t.tpot_s is not None else np.zeros_like(may)
    return _Bounds(
        score=(_min_where(_lo(score), may), _min_where(_hi(score), sure)),
        priced=priced,
        tpot=(float(np.min(_lo(tpot))), float(np.min(_hi(tpot)))),
        ttft=(float(np.min(_lo(ttft))), float(np.min(_hi(ttft)))),
        ttft_in_tpot=(_min_where(_lo(ttft), in_may), _min_where(_hi(ttft), in_sure)),
    )


def _screened(
    model: ModelSpec,
    dev: Device,
    plan: InferencePlan,
    t: Targets,
    pricing: Pricing | None,
    ladder: F,
    prices: dict[int, float],
) -> _Bounds | None:
    """The bounds of one layout, or None when the reference must look at it itself
    (``prices``: USD per chip-hour by chips per replica, filled as met). A layout that is
    refused, or where one sequence does not fit (the reference refuses it after its memory
    check alone), costs no step kernel."""
    try:
        plan.validate(model, dev)
        chunk = max(PREFILL_CHUNK * plan.dp, t.input_len)
        held = t.input_len + t.output_len / 2.0
        if np.any(max_batch(model, dev, plan, held, chunk) < 1):
            return None
        ft = throughput_times(model, dev, plan, t.input_len, t.output_len, batch_limit=ladder)
    except SiliconomicsError:
        return None
    figures = (ft.ttft_s, ft.tpot_s, ft.output_tokens_per_s)
    if not np.all(ft.fits) or not all(np.all(np.isfinite(x)) for x in figures):
        return None
    n = plan.chips_per_replica
    if n not in prices:
        price = chip_price(dev.chip, pricing, chips_needed=n) if pricing else None
        prices[n] = np.nan if price is None else price.usd_per_chip_hour
    usd_per_hour = prices[n] * plan.chips
    return _bounds(ft, t, usd_per_hour, float(plan.chips))


def _could_be_min(pairs: Sequence[tuple[float, float]]) -> set[int]:
    """Indices whose low bound does not exceed the smallest high bound (ties included)."""
    top = min((hi for _, hi in pairs), default=np.inf)
    if not np.isfinite(top):  # nothing surely attains a finite value: keep any finite one
        return {i for i, (lo, _) in enumerate(pairs) if np.isfinite(lo)}
    return {i for i, (lo, _) in enumerate(pairs) if lo <= top}


def screen_plans(
    model: ModelSpec,
    dev: Device,
    plans: Sequence[InferencePlan],
    t: Targets,
    pricing: Pricing | None,
    ladder: F,
) -> Screen:
    """The layouts of ``plans`` that the reference estimate must evaluate (module docstring)."""
    prices: dict[int, float] = {}
    bounds = [_screened(model, dev, p, t, pricing, ladder, prices) for p in plans]
    unsure = {i for i, b in enumerate(bounds) if b is None}
    ok = [(i, b) for i, b in enumerate(bounds) if b is not None]
    if len({b.priced for _, b in ok}) > 1:  # priced and unpriced layouts: no common score
        every = tuple(range(len(plans)))
        return Screen(best=every, closest=every)

    def pick(field: str) -> set[int]:
        got = _could_be_min([getattr(b, field) for _, b in ok])
        return {ok[k][0] for k in got}

    best = unsure | pick("score")
    closest = best | pick("tpot") | pick("ttft")
    if t.tpot_s is not None:
        closest |= pick("ttft_in_tpot")
    return Screen(best=tuple(sorted(best)), closest=tuple(sorted(closest)))

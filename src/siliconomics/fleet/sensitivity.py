"""Which inputs move the fleet's cost most: traffic, each chosen chip's price, the utilisation
headroom and the latency targets, one at a time, re-planning the fleet at each end
(:func:`siliconomics.economics.sensitivity.tornado`). A fleet that becomes infeasible at an end
reports NaN there. Ranges are illustrative spans, not confidence intervals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from ..economics.sensitivity import SensitivityBar, tornado
from .build import Inputs
from .milp import solve
from .solve import solve_at

RANGES = {
    "traffic": (0.7, 1.3),
    "max_utilisation": (0.6, 0.9),
    "slo_scale": (0.8, 1.25),
}
PRICE_RANGE = (0.7, 1.3)


def _cost(inp: Inputs, p: Mapping[str, float]) -> float:
    spec = inp.spec.model_copy(update={"max_utilisation": p["max_utilisation"]})
    b, _ = solve_at(replace(inp, spec=spec), p["slo_scale"], set(inp.offers))
    prices = tuple(
        usd * p.get(f"price:{chip}", 1.0)
        for usd, chip in zip(b.problem.offer_usd_per_chip_hour, b.problem.offer_chip, strict=True)
    )
    prob = replace(b.problem, rates=b.problem.rates * p["traffic"], offer_usd_per_chip_hour=prices)
    if not prob.routes:
        return float("nan")
    s = solve(prob)
    return s.usd_per_hour if s is not None else float("nan")


def fleet_tornado(inp: Inputs, chips: list[str]) -> list[SensitivityBar]:
    """Tornado of fleet USD per hour; ``chips``: the chosen fleet's chips (their prices vary)."""
    base = {"traffic": 1.0, "max_utilisation": inp.spec.max_utilisation, "slo_scale": 1.0}
    ranges: dict[str, tuple[float, float]] = dict(RANGES)
    labels = {
        "traffic": "traffic (x base)",
        "max_utilisation": "max utilisation",
        "slo_scale": "latency targets (x base)",
    }
    for c in chips[:4]:
        base[f"price:{c}"] = 1.0
        ranges[f"price:{c}"] = PRICE_RANGE
        labels[f"price:{c}"] = f"{c} price (x base)"
    bars = tornado(lambda p: _cost(inp, p), base, ranges, labels)
    return sorted(bars, key=lambda b: -np.nan_to_num(b.swing, nan=np.inf))

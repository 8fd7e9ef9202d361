"""One-at-a-time sensitivity (tornado): which inputs move a cost metric most.

:func:`tornado` is generic: it evaluates ``fn`` at the base inputs and with each input set to
the low and the high end of its range (the others held at base), and sorts the inputs by swing.
:func:`cost_tornado` applies it to USD per million output tokens (or USD per busy chip-hour when
no throughput is given) over electricity price, PUE, depreciation life, utilisation, price, cost
of capital and colocation rate. The default ranges are illustrative spans of published values
(see ``DEFAULT_RANGES``), not confidence intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..catalog.schema import ChipSpec
from ..errors import SiliconomicsError
from .pricing import PriceBook, chip_hour_cost, usd_per_busy_chip_hour
from .tco import OwnedAssumptions, with_values


@dataclass(frozen=True, kw_only=True)
class SensitivityBar:
    """The metric with one input at the low and at the high end of its range."""

    name: str
    label: str
    base_input: float
    low_input: float
    high_input: float
    base_output: float
    low_output: float
    high_output: float

    @property
    def swing(self) -> float:
        return abs(self.high_output - self.low_output)


def tornado(
    fn: Callable[[Mapping[str, float]], float],
    base: Mapping[str, float],
    ranges: Mapping[str, tuple[float, float]],
    labels: Mapping[str, str] | None = None,
) -> list[SensitivityBar]:
    """Bars for every input in ``ranges`` (each must be in ``base``), largest swing first."""
    missing = [k for k in ranges if k not in base]
    if missing:
        raise SiliconomicsError(f"sensitivity: no base value for {', '.join(missing)}")
    base_out = fn(base)
    bars = []
    for name, (lo, hi) in ranges.items():
        bars.append(
            SensitivityBar(
                name=name,
                label=(labels or {}).get(name, name),
                base_input=base[name],
                low_input=lo,
                high_input=hi,
                base_output=base_out,
                low_output=fn({**base, name: lo}),
                high_output=fn({**base, name: hi}),
            )
        )
    return sorted(bars, key=lambda b: -b.swing)


DEFAULT_RANGES: dict[str, tuple[str, float, float, str]] = {
    # name: (kind, low, high, basis); kind 'abs' = absolute values, 'rel' = x base
    "usd_per_kwh": ("abs", 0.05, 0.15, "US industrial state averages, roughly 5-15 c/kWh (EIA)"),
    "pue": ("abs", 1.1, 1.8, "new hyperscale halls ~1.1 to older sites ~1.8 (Uptime Institute)"),
    "depreciation_years": ("abs", 3.0, 6.0, "3 years (fast obsolescence) to 6 (MSFT/GOOG 10-K)"),
    "utilisation": ("abs", 0.3, 0.9, "a lightly to a heavily used fleet"),
    "price_scale": ("rel", 0.7, 1.3, "purchase or cloud price +-30% (discounts, street prices)"),
    "cost_of_capital": ("abs", 0.04, 0.15, "cheap debt to venture-funded equity"),
    "colocation_usd_per_kw_month": ("rel", 0.7, 1.3, "+-30% across markets (CBRE)"),
}
LABELS = {
    "usd_per_kwh": "electricity (USD/kWh)",
    "pue": "PUE",
    "depreciation_years": "depreciation life (years)",
    "utilisation": "utilisation",
    "price_scale": "price (x base)",
    "cost_of_capital": "cost of capital",
    "colocation_usd_per_kw_month": "colocation (USD/kW-month)",
}


@dataclass(frozen=True, kw_only=True)
class CostSensitivity:
    metric: str
    """'usd_per_m_output_tokens' or 'usd_per_busy_chip_hour'"""
    base: float
    bars: tuple[SensitivityBar, ...]


def cost_tornado(
    chip: ChipSpec,
    *,
    mode: str,
    utilisation: float,
    assumptions: OwnedAssumptions,
    tokens_per_s_per_chip: float | None = None,
    book: PriceBook,
    chips_needed: int = 1,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> CostSensitivity:
    """Tornado of USD per million output tokens (``tokens_per_s_per_chip`` busy throughput) or,
    without throughput, of USD per busy chip-hour, for one chip and pricing mode."""
    a, chip_id = assumptions, chip.id
    base = {
        "usd_per_kwh": a.usd_per_kwh,
        "pue": a.pue,
        "depreciation_years": a.depreciation_years,
        "utilisation": utilisation,
        "price_scale": 1.0,
        "cost_of_capital": a.cost_of_capital,
        "colocation_usd_per_kw_month": a.colocation_usd_per_kw_month,
    }
    if ranges is None:
        ranges = {
            k: (lo * base[k], hi * base[k]) if kind == "rel" else (lo, hi)
            for k, (kind, lo, hi, _) in DEFAULT_RANGES.items()
        }

    def fn(p: Mapping[str, float]) -> float:
        scalars = {k: v for k, v in p.items() if k not in ("utilisation", "price_scale")}
        a2 = with_values(a, **scalars)
        scale = p["price_scale"]
        price = a2.chip_prices_usd.get(chip_id)
        scaled_purchase = mode == "owned" and price is not None and chip_id not in a2.not_sold
        if scaled_purchase and price is not None:
            a2 = with_values(a2, chip_prices_usd={**a2.chip_prices_usd, chip_id: price * scale})
        cost = chip_hour_cost(
            chip,
            mode,
            book=book,
            assumptions=a2,
            utilisation=p["utilisation"],
            chips_needed=chips_needed,
        )
        busy = usd_per_busy_chip_hour(cost, p["utilisation"]) * (1.0 if scaled_purchase else scale)
        if tokens_per_s_per_chip is None:
            return busy
        return busy / (tokens_per_s_per_chip * 3600.0) * 1e6

    bars = tornado(fn, base, ranges, LABELS)
    metric = (
        "usd_per_busy_chip_hour" if tokens_per_s_per_chip is None else "usd_per_m_output_tokens"
    )
    return CostSensitivity(metric=metric, base=fn(base), bars=tuple(bars))

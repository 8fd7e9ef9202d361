"""What can be rented or bought per chip: nodes of a fixed size at a price per chip-hour.

Instance granularity comes from the systems catalog (8-GPU p5 nodes, 16-chip trn2 nodes, TPU
slices of 8, single-chip L4 instances): a fleet buys whole nodes. Prices follow the spec's
pricing mode: the system's own dated price in that mode where the catalog has one, otherwise
:func:`siliconomics.economics.pricing.chip_hour_cost` (reserved, spot and owned TCO) where that
module is installed; a chip with no price in the mode is left out, with the reason.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from ..catalog.registry import get_chip, systems_for_chip
from ..catalog.schema import SystemSpec
from ..errors import SiliconomicsError
from .spec import PlanSpec


@dataclass(frozen=True, kw_only=True)
class Offer:
    """One rentable node type of a chip."""

    chip: str
    system: str
    node_chips: int
    """chips per node: the fleet buys whole nodes"""
    scale_up_domain: int
    """chips in one fast domain on this node (tensor parallelism stays inside it)"""
    usd_per_chip_hour: float
    price_note: str


def _pricing_module() -> ModuleType | None:
    try:
        return importlib.import_module("siliconomics.economics.pricing")
    except ImportError:
        return None


def _mode_price(chip_id: str, sys: SystemSpec | None, spec: PlanSpec) -> tuple[float, str] | None:
    """USD per chip-hour of ``chip_id`` on ``sys`` (None: a node outside the catalog)."""
    for p in sys.prices if sys is not None else ():
        if p.mode == spec.pricing:
            return p.usd_per_hour / sys.chips, f"{sys.id} {p.mode} ({p.region}, {p.as_of[:40]})"  # type: ignore[union-attr]
    pricing = _pricing_module()
    if spec.pricing == "on-demand" or pricing is None:
        return None
    n = sys.chips if sys is not None else 1
    try:
        cb = pricing.chip_hour_cost(
            chip_id, spec.pricing, chips_needed=n, utilisation=spec.max_utilisation
        )
    except SiliconomicsError:
        return None
    note = f"{spec.pricing} ({cb.source or 'economics.pricing'})"
    return float(cb.total), note + (" (imputed from a cloud price)" if cb.imputed else "")


def offers_for_chip(chip_id: str, spec: PlanSpec) -> tuple[list[Offer], str]:
    """Offers of one chip and, where there is none, why."""
    chip = get_chip(chip_id)
    domain = chip.interconnect.scale_up_domain
    systems = systems_for_chip(chip_id)
    override = spec.prices.get(chip_id)
    out: list[Offer] = []
    for sys in systems:
        node_chips = spec.instance_chips.get(chip_id, sys.chips)
        node_domain = min(sys.scale_up_domain or domain, sys.chips, node_chips)
        price = (override, "spec price") if override else _mode_price(chip_id, sys, spec)
        if price is not None:
            out.append(
                Offer(
                    chip=chip_id,
                    system=sys.id,
                    node_chips=node_chips,
                    scale_up_domain=node_domain,
                    usd_per_chip_hour=price[0],
                    price_note=price[1],
                )
            )
    if out:
        return _dedupe(out), ""
    price = (override, "spec price") if override else _mode_price(chip_id, None, spec)
    if price is not None and not systems:
        n = spec.instance_chips.get(chip_id, min(domain, 8))
        how = "spec instance_chips" if chip_id in spec.instance_chips else "assumed"
        node = Offer(
            chip=chip_id,
            system=f"{chip_id}-x{n}",
            node_chips=n,
            scale_up_domain=min(domain, n),
            usd_per_chip_hour=price[0],
            price_note=f"{price[1]}; {n}-chip nodes ({how})",
        )
        return [node], ""
    if not systems:
        return [], "no catalog system sells it; give prices (and instance_chips) in the spec"
    return [], f"no {spec.pricing} price in the catalog; give prices in the spec"


def _dedupe(offers: list[Offer]) -> list[Offer]:
    """Keep, per node size, the cheapest offer (same chip, same node: only price differs)."""
    best: dict[tuple[int, int], Offer] = {}
    for o in offers:
        k = (o.node_chips, o.scale_up_domain)
        if k not in best or o.usd_per_chip_hour < best[k].usd_per_chip_hour:
            best[k] = o
    return sorted(best.values(), key=lambda o: (o.node_chips, o.usd_per_chip_hour))

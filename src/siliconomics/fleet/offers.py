"""What can be rented or bought per chip: nodes of a fixed size at a price per chip-hour.

Instance granularity comes from the price book's offerings (8-GPU p5 nodes, 16-chip trn2
nodes, TPU slices of 8, single-chip L4 instances) and, for topology, the systems catalog: a
fleet buys whole nodes. Prices follow the spec's pricing mode through the one pricing path
(:func:`siliconomics.economics.pricing.price_chip_hour`): listed offerings in that mode, the
owned TCO model, or, for a chip with no listed price, the stated ``estimated`` rule (flagged in
the note). A chip with no price on any basis is left out, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.catalog import Catalog
from ..economics.pricing import PriceBook, Pricing, catalog_book, price_chip_hour
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


def _pricing(spec: PlanSpec, book: PriceBook | None, catalog: Catalog) -> Pricing:
    return Pricing(
        book=book or catalog_book(catalog),
        mode=spec.pricing,
        chips=catalog.chips,
        utilisation=spec.max_utilisation,
    )


def offers_for_chip(
    chip_id: str, spec: PlanSpec, book: PriceBook | None, catalog: Catalog
) -> tuple[list[Offer], str]:
    """Offers of one chip of ``catalog`` and, where there is none, why; ``book``: the run's
    prices (None: the catalog's price books)."""
    chip = catalog.chip(chip_id)
    domain = chip.interconnect.scale_up_domain
    pricing = _pricing(spec, book, catalog)
    systems = catalog.systems
    override = spec.prices.get(chip_id)
    out: list[Offer] = []
    listed = pricing.book.for_chip(chip_id, spec.pricing) if spec.pricing != "owned" else []
    for o in listed:
        sys = systems.get(o.system)
        node_chips = spec.instance_chips.get(chip_id, o.chips)
        sys_domain = sys.scale_up_domain if sys is not None else None
        node_domain = min(sys_domain or domain, o.chips, node_chips)
        usd, note = (
            (override, "spec price")
            if override
            else (o.usd_per_chip_hour, f"{o.name} {o.mode} ({o.region}, {o.as_of})")
        )
        out.append(
            Offer(
                chip=chip_id,
                system=o.name,
                node_chips=node_chips,
                scale_up_domain=node_domain,
                usd_per_chip_hour=usd,
                price_note=note,
            )
        )
    if out:
        return _dedupe(out), ""
    nodes = [s for s in systems.values() if s.chip == chip_id]
    n = spec.instance_chips.get(chip_id) or (
        max(s.chips for s in nodes) if nodes else min(domain, 8)
    )
    how = (
        "spec instance_chips"
        if chip_id in spec.instance_chips
        else ("catalog system" if nodes else "assumed")
    )
    if override:
        usd, note = override, "spec price"
    else:
        p = price_chip_hour(pricing, chip, chips_needed=n)
        if p is None:
            return [], f"no {spec.pricing} price on any basis; give prices in the spec"
        usd, note = p.usd_per_chip_hour, f"{p.basis} {spec.pricing}: {p.source}"
        if p.basis == "owned":  # a fleet pays every wall-clock hour: undo the per-busy-hour
            usd *= spec.max_utilisation
    node = Offer(
        chip=chip_id,
        system=nodes[0].id if nodes else f"{chip_id}-x{n}",
        node_chips=n,
        scale_up_domain=min(domain, n),
        usd_per_chip_hour=usd,
        price_note=f"{note}; {n}-chip nodes ({how})",
    )
    return [node], ""


def _dedupe(offers: list[Offer]) -> list[Offer]:
    """Keep, per node size, the cheapest offer (same chip, same node: only price differs)."""
    best: dict[tuple[int, int], Offer] = {}
    for o in offers:
        k = (o.node_chips, o.scale_up_domain)
        if k not in best or o.usd_per_chip_hour < best[k].usd_per_chip_hour:
            best[k] = o
    return sorted(best.values(), key=lambda o: (o.node_chips, o.usd_per_chip_hour))

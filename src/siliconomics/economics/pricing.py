"""USD per chip-hour in every pricing mode, and the rent-vs-buy break-evens.

Cloud modes (on-demand, reserved-1y, reserved-3y, spot, capacity-block) come from the
:class:`.pricebook.PriceBook` (dated offerings, cheapest that holds ``chips_needed`` chips; the
largest when none does). ``owned`` is the TCO model of :mod:`.tco`. User prices files
(``--prices FILE``) add offerings or set a chip's USD per chip-hour directly.

Break-even utilisation: owning costs ``A + B u`` per wall-clock chip-hour (capital, facility,
idle power in A; busy power in B), i.e. ``A/u + B`` per busy hour; renting costs the price R per
rented hour when only busy hours are rented (perfect autoscaling). Owning is cheaper above
``u* = A / (R - B)``. For reserved modes this compares against renting only the hours used at
the reserved rate, a lower bound on the reservation's real cost, so ``u*`` is conservative for
owning.

Break-even purchase price: every capital and operations item of the TCO model is proportional
to the chip's price P, so the owned cost per busy hour is ``(a P + b) / u``. The price at which
owning costs the same as a target T per busy chip-hour is ``P* = (T u - b) / a``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..catalog.catalog import Catalog
from ..catalog.parse import validate_as
from ..catalog.schema import BookPrice, ChipSpec
from ..errors import SiliconomicsError, UnknownIdError
from .pricebook import (
    CLOUD_MODES,
    MODES,
    ChipPrice,
    Offering,
    PriceBook,
    Pricing,
    book_from_files,
    estimate_chip_hour,
    listed_chip_hour,
    offering_from,
)
from .tco import (
    CostBreakdown,
    OwnedAssumptions,
    load_owned_assumptions,
    owned_cost_per_chip_hour,
    with_values,
)

__all__ = ["CLOUD_MODES", "MODES", "ChipPrice", "PriceBook", "Pricing"]


def catalog_book(catalog: Catalog) -> PriceBook:
    """The price book of a catalog: its dated price books (and any prices inside its system
    files), with its owned-TCO defaults pricing the ``owned`` mode."""
    book = book_from_files(catalog.price_books, catalog.systems)
    if not catalog.owned_defaults:
        return book
    owned = load_owned_assumptions(catalog.owned_defaults, None, catalog.chips)
    return replace(book, owned=owned)


def parse_price_overrides_toml(
    raw: Mapping[str, Any], catalog: Catalog, *, origin: str = "--prices"
) -> PriceBook:
    """Parse a user prices file (TOML) into a book to merge on top of the packaged one; chip
    and system ids must be in ``catalog``::

    [[prices]]                       # an offering price (same fields as catalog/data/prices)
    system = "p5.48xlarge"           # a catalog system (offering, chip, chips from it) ...
    mode = "reserved-1y"
    usd_per_hour = 60.0
    region = "us-east-1"             # optional
    as_of = "2026-07-01"             # optional (default: today's file wins ties)

    [chip_hour.h100-sxm]             # or USD per chip-hour directly
    spot = 2.1
    """
    unknown = set(raw) - {"prices", "chip_hour", "provider", "as_of", "notes"}
    if unknown:
        raise SiliconomicsError(
            f"prices file: unknown key(s) {', '.join(sorted(unknown))}; allowed: prices, chip_hour"
        )
    provider = str(raw.get("provider", "user"))
    offers = [
        _user_offer(i, dict(e), provider, origin, catalog)
        for i, e in enumerate(raw.get("prices", []))
    ]
    chip_hour: dict[str, dict[str, float]] = {}
    for cid, modes in raw.get("chip_hour", {}).items():
        catalog.chip(cid)
        for mode, usd in modes.items():
            if mode not in MODES:
                raise SiliconomicsError(
                    f"prices file: chip_hour.{cid}.{mode}: mode must be one of {', '.join(MODES)}"
                )
            if not isinstance(usd, int | float) or not 0 < usd < math.inf:
                raise SiliconomicsError(
                    f"prices file: chip_hour.{cid}.{mode} must be a finite USD amount > 0"
                )
            chip_hour.setdefault(cid, {})[mode] = float(usd)
    return PriceBook(offerings=tuple(offers), chip_hour=chip_hour)


def _user_offer(
    i: int, e: dict[str, Any], provider: str, origin: str, catalog: Catalog
) -> Offering:
    sys_id = e.pop("system", "")
    if sys_id:
        if sys_id not in catalog.systems:
            raise UnknownIdError("system", sys_id, catalog.systems)
        s = catalog.systems[sys_id]
        e.setdefault("offering", sys_id)
        e.setdefault("chip", s.chip)
        e.setdefault("chips", s.chips)
        e["system"] = sys_id
    elif "chip" not in e:
        raise SiliconomicsError(f"prices file: prices[{i}] needs system = '<id>' or chip and chips")
    e.setdefault("offering", f"{e.get('chip')}-x{e.get('chips', 1)}")
    e.setdefault("region", "user")
    e.setdefault("as_of", "9999-12-31")  # a user's price wins over the packaged book
    e.setdefault("src", f"user prices file ({origin})")
    e.setdefault("conf", "inferred")
    p = validate_as(BookPrice, e, where=f"prices file prices[{i}]")
    catalog.chip(p.chip)
    return offering_from(p, provider, origin)


def available_modes(chip_id: str, book: PriceBook) -> list[str]:
    """Cloud modes with at least one current price for ``chip_id``."""
    return book.modes_for(chip_id)


def cloud_chip_hour_cost(
    chip_id: str, mode: str, *, book: PriceBook, chips_needed: int = 1
) -> CostBreakdown | None:
    """Cheapest current USD per chip-hour in a cloud ``mode``, or None when none is listed."""
    p = listed_chip_hour(book, chip_id, mode, chips_needed=chips_needed)
    if p is None:
        return None
    source = (
        "user prices file"
        if p.basis == "user"
        else f"{p.system}, {p.region}, as of {p.as_of}; {p.source}"
    )
    return CostBreakdown(
        chip=chip_id,
        mode=mode,
        items={f"{mode} price": p.usd_per_chip_hour},
        source=source,
        notes=(p.note,) if p.note else (),
    )


def chip_hour_cost(
    chip: ChipSpec,
    mode: str,
    *,
    book: PriceBook,
    assumptions: OwnedAssumptions | None = None,
    utilisation: float = 1.0,
    chips_needed: int = 1,
) -> CostBreakdown:
    """USD per chip-hour of ``chip`` in ``mode`` (``owned``: ``assumptions``, default the
    book's); raises naming the modes that exist."""
    chip_id = chip.id
    if mode not in MODES:
        raise SiliconomicsError(f"--mode '{mode}': allowed: {', '.join(MODES)}")
    if mode == "owned":
        return owned_cost_per_chip_hour(chip, owned_of(book, assumptions), utilisation=utilisation)
    cost = cloud_chip_hour_cost(chip_id, mode, book=book, chips_needed=chips_needed)
    if cost is None:
        modes = available_modes(chip_id, book)
        raise SiliconomicsError(
            f"no {mode} price for chip '{chip_id}' in the price book; modes with a price: "
            f"{', '.join(modes) or 'none'} (and owned); add one with --prices FILE or --price"
        )
    return cost


def usd_per_busy_chip_hour(cost: CostBreakdown, utilisation: float) -> float:
    """What one busy chip-hour costs: owned and reserved capacity is paid for idle hours too
    (total / utilisation); on-demand, spot and capacity blocks are rented only while busy."""
    if cost.mode in ("owned", "reserved-1y", "reserved-3y"):
        return cost.total / utilisation
    return cost.total


def owned_of(book: PriceBook, assumptions: OwnedAssumptions | None = None) -> OwnedAssumptions:
    """The owned-TCO assumptions of a run: ``assumptions``, else the book's."""
    a = assumptions if assumptions is not None else book.owned
    if not isinstance(a, OwnedAssumptions):
        raise SiliconomicsError(
            "owned cost: the price book has no owned-TCO assumptions (build it with "
            "siliconomics.resolve.price_book())"
        )
    return a


def breakeven_utilisation(
    chip: ChipSpec,
    rent_mode: str,
    assumptions: OwnedAssumptions,
    *,
    book: PriceBook,
    chips_needed: int = 1,
) -> float | None:
    """Utilisation above which owning is cheaper per busy hour than renting in ``rent_mode``;
    None when owning never wins (u* > 1) or a price is unknown."""
    if rent_mode not in CLOUD_MODES:
        raise SiliconomicsError(f"rent mode '{rent_mode}': allowed: {', '.join(CLOUD_MODES)}")
    a = assumptions
    rent = cloud_chip_hour_cost(chip.id, rent_mode, book=book, chips_needed=chips_needed)
    if rent is None:
        return None
    tiny = 1e-6
    try:
        full = owned_cost_per_chip_hour(chip, a, utilisation=1.0).total
        low = owned_cost_per_chip_hour(chip, a, utilisation=tiny).total
    except SiliconomicsError:
        return None
    slope = (full - low) / (1.0 - tiny)  # busy power per hour (B)
    fixed = low - slope * tiny  # A
    if rent.total <= slope:
        return None
    u = fixed / (rent.total - slope)
    return u if u <= 1.0 else None


def breakeven_purchase_price(
    chip: ChipSpec,
    target_usd_per_busy_chip_hour: float,
    assumptions: OwnedAssumptions,
    *,
    utilisation: float,
) -> float | None:
    """Chip purchase price (USD) at which owning ``chip`` costs ``target`` per busy
    chip-hour at ``utilisation``; None when even a free chip costs more (power, facility)."""
    a = assumptions

    def busy_cost(price: float) -> float:
        a2 = with_values(a, chip_prices_usd={**a.chip_prices_usd, chip.id: price})
        return owned_cost_per_chip_hour(chip, a2, utilisation=utilisation).total / utilisation

    b = busy_cost(1e-9)  # running cost of a (nearly) free chip
    slope = busy_cost(1.0 + 1e-9) - b  # USD per busy hour per USD of chip price
    if target_usd_per_busy_chip_hour <= b or slope <= 0:
        return None
    return (target_usd_per_busy_chip_hour - b) / slope


def chip_price(chip: ChipSpec, pricing: Pricing, *, chips_needed: int = 1) -> ChipPrice | None:
    """USD per chip-hour of ``chip`` under ``pricing`` (the run's :class:`Pricing`, built at
    the edge). A chip that is not in the catalog (a user's chip file) is priced by its id in
    the book, or estimated."""
    return price_chip_hour(pricing, chip, chips_needed=chips_needed)


def price_chip_hour(pricing: Pricing, chip: ChipSpec, *, chips_needed: int = 1) -> ChipPrice | None:
    """The one pricing path: USD per (busy) chip-hour of ``chip`` in ``pricing.mode``."""
    if pricing.mode == "owned":
        user = listed_chip_hour(pricing.book, chip.id, "owned")
        return user or _owned(pricing, chip, chips_needed)
    listed = listed_chip_hour(pricing.book, chip.id, pricing.mode, chips_needed=chips_needed)
    if listed is not None or not pricing.estimate:
        return listed
    return estimate_chip_hour(pricing.book, chip, pricing.mode, pricing.chips)


def _owned(pricing: Pricing, chip: ChipSpec, chips_needed: int) -> ChipPrice | None:
    try:
        c = chip_hour_cost(
            chip,
            "owned",
            book=pricing.book,
            assumptions=pricing.assumptions,  # type: ignore[arg-type]
            utilisation=pricing.utilisation,
            chips_needed=chips_needed,
        )
    except SiliconomicsError:
        return None
    return ChipPrice(
        usd_per_chip_hour=usd_per_busy_chip_hour(c, pricing.utilisation),
        system="owned TCO",
        region=f"per busy hour at {pricing.utilisation:.0%} utilisation",
        as_of="TCO defaults (docs/ECONOMICS.md)",
        source="owned TCO model",
        note="; ".join(c.notes),
        mode="owned",
        basis="owned",
    )

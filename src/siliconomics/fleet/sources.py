"""Where capacity can come from in a multi-period plan, each with its price from the run's book.

- ``owned``: chips bought for the owned site. Cost per wall-clock chip-hour ``A`` (capital,
  facility, idle power) plus ``B`` per busy chip-hour (busy power), both from the TCO model
  (:func:`siliconomics.economics.tco.owned_cost_per_chip_hour`, as in
  :func:`siliconomics.economics.pricing.breakeven_utilisation`), or the user's ``owned`` price
  per chip-hour in a prices file (all-in, ``B = 0``).
- ``reserved-1y`` / ``reserved-3y`` / ``capacity-block``: held every hour of a month (capacity
  blocks are booked by the day, so they cannot follow a daily swing), priced from the book.
- ``on-demand`` and ``spot``: per period. Spot carries its interruption risk: a reclaimed node
  is replaced by the stated fallback (the cheapest on-demand node of the chip) for
  ``fallback_hours``, and its capacity is missing for one load time.

Per chip and mode the cheapest offering per node size is kept (regions compete on price;
no per-region availability limit yet).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.schema import ChipSpec
from ..economics.cost import chip_tdp, power_per_chip_w
from ..economics.pricebook import PriceBook, listed_chip_hour
from ..economics.pricing import owned_of
from ..economics.tco import owned_cost_per_chip_hour
from ..errors import SiliconomicsError
from .profile import HOURS_PER_MONTH, Capacity

COMMITTED = ("owned", "reserved-1y", "reserved-3y")
"""held from the month they are taken to the end of the horizon (never given back)"""
MONTHLY = ("capacity-block",)
BURST = ("on-demand", "spot")


@dataclass(frozen=True, kw_only=True)
class Source:
    kind: str
    chip: str
    where: str
    """'owned site' or provider/region"""
    node_chips: int
    usd_per_chip_hour: float
    """per held chip-hour (owned: the fixed part A; spot: with its expected fallback cost)"""
    usd_per_busy_chip_hour: float = 0.0
    """owned: busy power B per chip-hour actually serving"""
    capacity_factor: float = 1.0
    """spot: 1 - (interruptions per hour x load time in hours)"""
    peak_w_per_chip: float = 0.0
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.chip} {self.kind} ({self.where})"

    @property
    def committed(self) -> bool:
        return self.kind in COMMITTED

    @property
    def monthly(self) -> bool:
        return self.kind in COMMITTED or self.kind in MONTHLY


def peak_w(chip: ChipSpec) -> float:
    """Power per chip at full activity incl. its host share (0 when the TDP is unknown)."""
    return float(power_per_chip_w(chip, 1.0)[0]) if chip_tdp(chip) is not None else 0.0


def _owned(chip: ChipSpec, book: PriceBook, node_chips: int) -> tuple[Source | None, str]:
    user = listed_chip_hour(book, chip.id, "owned")
    if user is not None:
        return Source(
            kind="owned",
            chip=chip.id,
            where="owned site",
            node_chips=node_chips,
            usd_per_chip_hour=user.usd_per_chip_hour,
            peak_w_per_chip=peak_w(chip),
            note="owned: user price per chip-hour (all-in)",
        ), ""
    try:
        tiny = 1e-6
        a = owned_of(book)  # the book's owned-TCO assumptions
        full = owned_cost_per_chip_hour(chip, a, utilisation=1.0)
        low = owned_cost_per_chip_hour(chip, a, utilisation=tiny).total
    except SiliconomicsError as e:
        return None, str(e)
    busy = (full.total - low) / (1.0 - tiny)
    return Source(
        kind="owned",
        chip=chip.id,
        where="owned site",
        node_chips=node_chips,
        usd_per_chip_hour=low - busy * tiny,
        usd_per_busy_chip_hour=busy,
        peak_w_per_chip=peak_w(chip),
        note=f"owned TCO model: {full.source}" if getattr(full, "source", "") else "owned TCO",
    ), ""


def _cloud(chip: ChipSpec, book: PriceBook, kind: str, regions: tuple[str, ...] | None) -> list:
    best: dict[int, Source] = {}
    for o in book.for_chip(chip.id, kind):
        if regions is not None and o.region not in regions:
            continue
        if o.chips not in best or o.usd_per_chip_hour < best[o.chips].usd_per_chip_hour:
            best[o.chips] = Source(
                kind=kind,
                chip=chip.id,
                where=f"{o.provider}/{o.region}",
                node_chips=o.chips,
                usd_per_chip_hour=o.usd_per_chip_hour,
                peak_w_per_chip=peak_w(chip),
                note=f"{o.name} {kind} ({o.provider} {o.region}, {o.as_of})",
            )
    user = book.chip_hour.get(chip.id, {}).get(kind)
    if user is not None:
        n = max(best) if best else 8
        best = {
            n: Source(
                kind=kind,
                chip=chip.id,
                where="user price",
                node_chips=n,
                usd_per_chip_hour=user,
                peak_w_per_chip=peak_w(chip),
                note=f"{kind}: user price per chip-hour",
            )
        }
    return list(best.values())


def _spot(s: Source, fallback: float, cap: Capacity, load_s: float) -> Source:
    lam = cap.spot.interruptions_per_month / HOURS_PER_MONTH  # per node-hour
    fb = min(1.0, lam * cap.spot.fallback_hours)
    usd = s.usd_per_chip_hour * (1.0 - fb) + fallback * fb
    return Source(
        kind="spot",
        chip=s.chip,
        where=s.where,
        node_chips=s.node_chips,
        usd_per_chip_hour=usd,
        capacity_factor=max(0.0, 1.0 - lam * load_s / 3600.0),
        peak_w_per_chip=s.peak_w_per_chip,
        note=f"{s.note}; {cap.spot.interruptions_per_month:g} interruptions per node-month, "
        f"fallback on-demand at ${fallback:.2f}/chip-h for {cap.spot.fallback_hours:g} h",
    )


def sources_for(
    chips: dict[str, ChipSpec],
    book: PriceBook,
    cap: Capacity,
    node_chips: dict[str, int],
    load_s: dict[str, float],
) -> tuple[list[Source], dict[str, str]]:
    """Every source the capacity section allows, and why chips or modes are left out."""
    out: list[Source] = []
    why: dict[str, str] = {}
    owned_ok = cap.owned if cap.owned is not None else tuple(chips)
    for cid, chip in chips.items():
        if "owned" in cap.committed and cid in owned_ok:
            s, reason = _owned(chip, book, node_chips[cid])
            if s is not None:
                out.append(s)
            elif cap.owned is not None:
                why[f"{cid} owned"] = reason
        for kind in (*(k for k in cap.committed if k != "owned"), "on-demand"):
            if kind == "on-demand" and kind not in cap.burst:
                continue
            found = _cloud(chip, book, kind, cap.regions)
            out.extend(found)
            if not found:
                why[f"{cid} {kind}"] = "no price in the book (add one with --prices)"
        if "spot" in cap.burst:
            od = _cloud(chip, book, "on-demand", cap.regions)
            spots = _cloud(chip, book, "spot", cap.regions)
            if spots and not od:
                why[f"{cid} spot"] = "no on-demand price for the fallback"
            elif od:
                fb = min(s.usd_per_chip_hour for s in od)
                out.extend(_spot(s, fb, cap, load_s.get(cid, 0.0)) for s in spots)
    return out, why

"""USD per chip-hour in every pricing mode, and the rent-vs-buy break-even utilisation.

Cloud modes (on-demand, reserved-1y, reserved-3y, spot) take the dated system prices of the
catalog (``catalog/data/systems/*.toml``), divided by the system's chips, from the cheapest
system that holds ``chips_needed`` chips (the largest when none does), like
:func:`.cost.chip_price`. User overrides (``tco --prices FILE``) add system prices or set a
chip's USD per chip-hour directly. ``owned`` is the TCO model of :mod:`.tco`.

Break-even utilisation: owning costs ``A + B u`` per wall-clock chip-hour (capital, facility,
idle power in A; busy power in B), i.e. ``A/u + B`` per busy hour; renting costs the price R per
rented hour when only busy hours are rented (perfect autoscaling). Owning is cheaper above
``u* = A / (R - B)``. For reserved modes this compares against renting only the hours used at
the reserved rate, a lower bound on the reservation's real cost, so ``u*`` is conservative for
owning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from ..catalog.registry import get_chip, get_system, systems_for_chip, validate_as
from ..catalog.schema import Price, SystemSpec
from ..errors import SiliconomicsError
from .tco import CostBreakdown, OwnedAssumptions, load_owned_assumptions, owned_cost_per_chip_hour

PricingMode = Literal["on-demand", "reserved-1y", "reserved-3y", "spot", "owned"]
MODES: tuple[str, ...] = get_args(PricingMode)
CLOUD_MODES: tuple[str, ...] = tuple(m for m in MODES if m != "owned")


@dataclass(frozen=True, kw_only=True)
class PriceOverrides:
    """User prices: extra dated prices per system, and direct USD per chip-hour per chip."""

    system_prices: Mapping[str, tuple[Price, ...]] = field(default_factory=dict)
    chip_hour: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


def parse_price_overrides_toml(raw: Mapping[str, Any]) -> PriceOverrides:
    """Parse an overrides TOML document::

    [[prices]]                       # a system price (same fields as catalog prices)
    system = "p5.48xlarge"
    mode = "reserved-1y"
    usd_per_hour = 60.0
    region = "us-east-1"             # optional
    as_of = "2025-07-01"             # optional

    [chip_hour.h100-sxm]             # or USD per chip-hour directly
    spot = 2.1
    """
    unknown = set(raw) - {"prices", "chip_hour"}
    if unknown:
        raise SiliconomicsError(
            f"prices file: unknown key(s) {', '.join(sorted(unknown))}; allowed: prices, chip_hour"
        )
    systems: dict[str, list[Price]] = {}
    for i, entry in enumerate(raw.get("prices", [])):
        e = dict(entry)
        sys_id = e.pop("system", None)
        if not isinstance(sys_id, str):
            raise SiliconomicsError(f"prices file: prices[{i}] needs system = '<system id>'")
        get_system(sys_id)
        e.setdefault("region", "user")
        e.setdefault("as_of", "user")
        e.setdefault("src", "user prices file")
        e.setdefault("conf", "inferred")
        systems.setdefault(sys_id, []).append(validate_as(Price, e, where=f"prices[{i}]"))
    chip_hour: dict[str, dict[str, float]] = {}
    for cid, modes in raw.get("chip_hour", {}).items():
        get_chip(cid)
        for mode, usd in modes.items():
            if mode not in CLOUD_MODES:
                raise SiliconomicsError(
                    f"prices file: chip_hour.{cid}.{mode}: mode must be one of "
                    f"{', '.join(CLOUD_MODES)}"
                )
            if not isinstance(usd, int | float) or usd <= 0:
                raise SiliconomicsError(f"prices file: chip_hour.{cid}.{mode} must be > 0 USD")
            chip_hour.setdefault(cid, {})[mode] = float(usd)
    return PriceOverrides(
        system_prices={k: tuple(v) for k, v in systems.items()}, chip_hour=chip_hour
    )


def _prices(sys: SystemSpec, ov: PriceOverrides | None) -> tuple[Price, ...]:
    extra = ov.system_prices.get(sys.id, ()) if ov else ()
    return (*extra, *sys.prices)  # user prices first: they win ties


def available_modes(chip_id: str, overrides: PriceOverrides | None = None) -> list[str]:
    """Cloud modes with at least one price for ``chip_id``."""
    found: set[str] = {p.mode for s in systems_for_chip(chip_id) for p in _prices(s, overrides)}
    if overrides and chip_id in overrides.chip_hour:
        found |= set(overrides.chip_hour[chip_id])
    return [m for m in CLOUD_MODES if m in found]


def cloud_chip_hour_cost(
    chip_id: str, mode: str, *, overrides: PriceOverrides | None = None, chips_needed: int = 1
) -> CostBreakdown | None:
    """Cheapest USD per chip-hour in a cloud ``mode``, or None when no price exists."""
    if overrides and mode in overrides.chip_hour.get(chip_id, {}):
        usd = overrides.chip_hour[chip_id][mode]
        return CostBreakdown(
            chip=chip_id, mode=mode, items={f"{mode} price": usd}, source="user prices file"
        )
    priced = [
        s for s in systems_for_chip(chip_id) if any(p.mode == mode for p in _prices(s, overrides))
    ]
    if not priced:
        return None
    fitting = [s for s in priced if s.chips >= chips_needed]
    pool = fitting or [max(priced, key=lambda s: s.chips)]
    best: tuple[float, SystemSpec, Price] | None = None
    for sys in pool:
        for p in _prices(sys, overrides):
            if p.mode == mode and (best is None or p.usd_per_hour / sys.chips < best[0]):
                best = (p.usd_per_hour / sys.chips, sys, p)
    assert best is not None
    usd, sys, p = best
    notes: tuple[str, ...] = (p.note,) if p.note else ()
    if not fitting:
        notes += (f"no system holds {chips_needed} chips; priced on {sys.id} ({sys.chips})",)
    return CostBreakdown(
        chip=chip_id,
        mode=mode,
        items={f"{mode} price": usd},
        source=f"{sys.id} ({sys.chips} chips), {p.region}, as of {p.as_of}; {p.src}",
        notes=notes,
    )


def chip_hour_cost(
    chip_id: str,
    mode: str,
    *,
    overrides: PriceOverrides | None = None,
    assumptions: OwnedAssumptions | None = None,
    utilisation: float = 1.0,
    chips_needed: int = 1,
) -> CostBreakdown:
    """USD per chip-hour of ``chip_id`` in ``mode``; raises naming the modes that exist."""
    get_chip(chip_id)
    if mode not in MODES:
        raise SiliconomicsError(f"--mode '{mode}': allowed: {', '.join(MODES)}")
    if mode == "owned":
        cloud = {
            m: c.total
            for m in CLOUD_MODES
            if (
                c := cloud_chip_hour_cost(
                    chip_id, m, overrides=overrides, chips_needed=chips_needed
                )
            )
        }
        return owned_cost_per_chip_hour(
            chip_id, assumptions, utilisation=utilisation, cloud_prices=cloud
        )
    cost = cloud_chip_hour_cost(chip_id, mode, overrides=overrides, chips_needed=chips_needed)
    if cost is None:
        modes = available_modes(chip_id, overrides)
        systems = ", ".join(s.id for s in systems_for_chip(chip_id)) or "none in the catalog"
        raise SiliconomicsError(
            f"no {mode} price for chip '{chip_id}' (systems: {systems}); modes with a price: "
            f"{', '.join(modes) or 'none'} (and owned); add one with --prices FILE"
        )
    return cost


def usd_per_busy_chip_hour(cost: CostBreakdown, utilisation: float) -> float:
    """What one busy chip-hour costs: owned and reserved capacity is paid for idle hours too
    (total / utilisation); on-demand and spot are rented only while busy."""
    if cost.mode in ("owned", "reserved-1y", "reserved-3y"):
        return cost.total / utilisation
    return cost.total


def breakeven_utilisation(
    chip_id: str,
    rent_mode: str,
    assumptions: OwnedAssumptions | None = None,
    *,
    overrides: PriceOverrides | None = None,
    chips_needed: int = 1,
) -> float | None:
    """Utilisation above which owning is cheaper per busy hour than renting in ``rent_mode``;
    None when owning never wins (u* > 1) or a price is unknown."""
    if rent_mode not in CLOUD_MODES:
        raise SiliconomicsError(f"rent mode '{rent_mode}': allowed: {', '.join(CLOUD_MODES)}")
    a = assumptions or load_owned_assumptions()
    rent = cloud_chip_hour_cost(chip_id, rent_mode, overrides=overrides, chips_needed=chips_needed)
    if rent is None:
        return None
    tiny = 1e-6

    def owned(u: float) -> float:
        return chip_hour_cost(
            chip_id,
            "owned",
            overrides=overrides,
            assumptions=a,
            utilisation=u,
            chips_needed=chips_needed,
        ).total

    try:
        full, low = owned(1.0), owned(tiny)
    except SiliconomicsError:
        return None
    slope = (full - low) / (1.0 - tiny)  # busy power per hour (B)
    fixed = low - slope * tiny  # A
    if rent.total <= slope:
        return None
    u = fixed / (rent.total - slope)
    return u if u <= 1.0 else None

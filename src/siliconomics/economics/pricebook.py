"""The price book and the one function that prices a chip-hour in any mode.

A :class:`PriceBook` holds every dated offering a run may use (provider, offering, region,
mode, USD per hour, date, source) plus the user's direct prices per chip-hour. It is built
once at the edge (packaged books in ``catalog/data/prices``, ``--prices FILE``, ``--price
CHIP=USD``, ``--region``) and handed down; nothing below looks a price up by name.

:func:`price_chip_hour` is the single pricing path. For a chip and a mode it returns a
:class:`ChipPrice` with its **basis**:

- ``user``: the user's ``--price CHIP=USD`` (or a ``chip_hour`` table in a prices file);
- ``listed``: the cheapest current listed offering holding ``chips_needed`` chips (the largest
  offering when none is big enough), in the book's region when one is set;
- ``owned``: the owned TCO model (:mod:`.tco`), per busy chip-hour at the stated utilisation;
- ``estimated``: a chip with no listed price in the mode is priced by the stated rule of
  :func:`estimate_chip_hour` (flagged, never silently ranked last).

A newer entry for the same provider, offering, region and mode supersedes an older one; the
older ones stay in the book as history.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from statistics import median
from typing import get_args

from ..catalog.schema import (
    BookPrice,
    ChipSpec,
    CloudMode,
    PriceBookFile,
    PricingMode,
    SystemSpec,
)
from ..errors import SiliconomicsError

CLOUD_MODES: tuple[str, ...] = get_args(CloudMode)
MODES: tuple[str, ...] = get_args(PricingMode)
"""Every pricing mode a command accepts (``--mode``): the cloud modes of the catalog schema,
then ``owned`` (the TCO model)."""


@dataclass(frozen=True, kw_only=True)
class Offering:
    """One dated price of one rentable unit (instance, slice, node) in one region and mode."""

    provider: str
    name: str
    chip: str
    chips: int
    system: str = ""
    """catalog system id (topology, host) when the offering is one"""
    region: str
    mode: str
    usd_per_hour: float
    as_of: str
    conf: str = "vendor"
    source: str = ""
    note: str = ""
    origin: str = "catalog"
    """'catalog' (packaged book), a file path, or 'user'"""

    @property
    def usd_per_chip_hour(self) -> float:
        return self.usd_per_hour / self.chips

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.provider, self.name, self.region, self.mode)


def parse_date(s: str) -> date | None:
    """``YYYY-MM-DD`` or ``YYYY-MM`` (first of the month); None when unparseable."""
    try:
        return date.fromisoformat(s if len(s) > 7 else f"{s}-01")
    except ValueError:
        return None


def age_days(as_of: str, today: date) -> int | None:
    d = parse_date(as_of)
    return None if d is None else (today - d).days


@dataclass(frozen=True, kw_only=True)
class PriceBook:
    """Every price a run may use. ``offerings`` includes superseded history; ``current()``
    is what pricing uses. ``region`` (when set) restricts listed prices to that region."""

    offerings: tuple[Offering, ...] = ()
    chip_hour: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """user prices: chip id -> mode -> USD per chip-hour (win over everything)"""
    region: str | None = None
    providers: tuple[str, ...] | None = None
    """restrict listed prices to these providers (None: all)"""
    owned: object | None = None
    """the owned-TCO assumptions (:class:`~.tco.OwnedAssumptions`: purchase prices,
    electricity, facility) that price the ``owned`` mode; None: owning is not priced"""

    def current(self) -> tuple[Offering, ...]:
        """Newest entry per (provider, offering, region, mode); ties: later in the book wins
        (user files are appended after the packaged books)."""
        return self._current

    @cached_property
    def _current(self) -> tuple[Offering, ...]:
        best: dict[tuple[str, str, str, str], Offering] = {}
        for o in self.offerings:
            old = best.get(o.key)
            if old is None or (parse_date(o.as_of) or date.min) >= (
                parse_date(old.as_of) or date.min
            ):
                best[o.key] = o
        return tuple(best.values())

    def history(self) -> tuple[Offering, ...]:
        cur = set(map(id, self.current()))
        return tuple(o for o in self.offerings if id(o) not in cur)

    def for_chip(self, chip_id: str, mode: str | None = None) -> list[Offering]:
        """Current offerings of a chip (in the book's region, if set), optionally one mode."""
        return [
            o
            for o in self.current()
            if o.chip == chip_id
            and (mode is None or o.mode == mode)
            and (self.region is None or o.region == self.region)
            and (self.providers is None or o.provider in self.providers)
        ]

    def modes_for(self, chip_id: str) -> list[str]:
        found = {o.mode for o in self.for_chip(chip_id)} | set(self.chip_hour.get(chip_id, {}))
        return [m for m in CLOUD_MODES if m in found]

    def regions(self) -> list[str]:
        return sorted({o.region for o in self.offerings})

    def merged(self, other: PriceBook) -> PriceBook:
        """This book with ``other``'s offerings appended and its user prices on top."""
        hours = {k: dict(v) for k, v in self.chip_hour.items()}
        for cid, modes in other.chip_hour.items():
            hours.setdefault(cid, {}).update(modes)
        return PriceBook(
            offerings=(*self.offerings, *other.offerings),
            chip_hour=hours,
            region=other.region or self.region,
            providers=other.providers or self.providers,
            owned=other.owned or self.owned,
        )

    def with_region(self, region: str | None) -> PriceBook:
        if region is not None and region not in self.regions():
            raise SiliconomicsError(
                f"--region '{region}': no price in the book is for it; regions: "
                f"{', '.join(self.regions())}"
            )
        return replace(self, region=region)

    def with_providers(self, providers: tuple[str, ...] | None) -> PriceBook:
        known = {o.provider for o in self.offerings}
        for p in providers or ():
            if p not in known:
                raise SiliconomicsError(
                    f"--provider '{p}': no price in the book; providers: {', '.join(sorted(known))}"
                )
        return replace(self, providers=providers or None)

    def with_chip_hour(self, prices: Mapping[str, float], mode: str = "on-demand") -> PriceBook:
        """The user's ``--price CHIP=USD`` applied to ``mode`` (and to every cloud mode where
        the user gave nothing else: a direct price is what the user pays)."""
        hours = {k: dict(v) for k, v in self.chip_hour.items()}
        for cid, usd in prices.items():
            hours.setdefault(cid, {})[mode] = usd
        return replace(self, chip_hour=hours)


def offering_from(p: BookPrice, provider: str, origin: str = "catalog") -> Offering:
    """One dated price of a book file (or a user's prices file) as an :class:`Offering`."""
    return Offering(
        provider=provider,
        name=p.offering,
        chip=p.chip,
        chips=p.chips,
        system=p.system,
        region=p.region,
        mode=p.mode,
        usd_per_hour=p.usd_per_hour,
        as_of=p.as_of,
        conf=p.conf,
        source=p.src,
        note=p.note,
        origin=origin,
    )


def book_from_files(
    files: Iterable[PriceBookFile], systems: Mapping[str, SystemSpec] | None = None
) -> PriceBook:
    """A book from parsed price-book files, plus any prices still written inside system
    files (a user's own system TOML may carry ``[[prices]]``)."""
    offers: list[Offering] = []
    for f in files:
        for p in f.prices:
            offers.append(offering_from(p, f.provider))
    for s in (systems or {}).values():
        for sp in s.prices:
            offers.append(
                Offering(
                    provider=s.provider,
                    name=s.id,
                    chip=s.chip,
                    chips=s.chips,
                    system=s.id,
                    region=sp.region,
                    mode=sp.mode,
                    usd_per_hour=sp.usd_per_hour,
                    as_of=sp.as_of,
                    conf=sp.conf,
                    source=sp.src,
                    note=sp.note,
                    origin="system file",
                )
            )
    return PriceBook(offerings=tuple(offers))


@dataclass(frozen=True, kw_only=True)
class ChipPrice:
    """USD per chip-hour, its mode, and the basis it rests on."""

    usd_per_chip_hour: float
    system: str
    region: str
    as_of: str
    source: str
    note: str = ""
    mode: str = "on-demand"
    basis: str = "listed"
    """'listed', 'user', 'estimated' or 'owned'"""


def listed_chip_hour(
    book: PriceBook, chip_id: str, mode: str, *, chips_needed: int = 1
) -> ChipPrice | None:
    """User price, else the cheapest current listed offering; None when the book has none."""
    if mode in book.chip_hour.get(chip_id, {}):
        return ChipPrice(
            usd_per_chip_hour=book.chip_hour[chip_id][mode],
            system="user price",
            region="-",
            as_of="-",
            source="--price / prices file",
            mode=mode,
            basis="user",
        )
    offers = book.for_chip(chip_id, mode)
    if not offers:
        return None
    fitting = [o for o in offers if o.chips >= chips_needed]
    pool = fitting or [max(offers, key=lambda o: o.chips)]
    o = min(pool, key=lambda o: o.usd_per_chip_hour)
    note = o.note
    if not fitting:
        note = f"no offering holds {chips_needed} chips; priced on {o.name} ({o.chips}). {note}"
    return ChipPrice(
        usd_per_chip_hour=o.usd_per_chip_hour,
        system=o.name,
        region=o.region,
        as_of=o.as_of,
        source=o.source,
        note=note.strip(),
        mode=mode,
        basis="listed",
    )


def _bw(c: ChipSpec) -> float | None:
    """Off-chip memory bandwidth; None for SRAM-only chips (Cerebras, Groq), whose on-chip
    bandwidth is 10-1000x any HBM chip's and says nothing about what renting one costs."""
    b = c.memory.bytes_per_s
    if b is None or c.memory.kind.upper().startswith("SRAM"):
        return None
    return b.value


def estimate_chip_hour(
    book: PriceBook, chip: ChipSpec, mode: str, chips: Mapping[str, ChipSpec]
) -> ChipPrice | None:
    """The stated rule for a chip without a listed price in ``mode``:

    take the listed chips of the same vendor (all listed chips when the vendor has none),
    compute each one's USD per chip-hour per TB/s of HBM bandwidth, and charge this chip its
    HBM bandwidth times the median of those ratios. HBM bandwidth is the metric because
    decode, which dominates serving cost, is bound by it, and rental prices of the listed
    chips track it more closely than peak FLOP/s (H100 -> H200 -> B200 rise with bandwidth).
    None when the chip has no published bandwidth or nothing is listed in the mode."""
    bw = _bw(chip)
    if bw is None:
        return None
    ratios: dict[str, list[tuple[str, float]]] = {}
    listed = replace(book, chip_hour={})  # one book (its current offerings worked out once)
    for cid in {o.chip for o in book.current() if o.mode == mode}:
        other = chips.get(cid)
        p = listed_chip_hour(listed, cid, mode)
        if other is None or p is None or cid == chip.id or not _bw(other):
            continue
        r = p.usd_per_chip_hour / (_bw(other) / 1e12)  # type: ignore[operator]
        ratios.setdefault(other.vendor, []).append((cid, r))
    pool = ratios.get(chip.vendor) or [x for v in ratios.values() for x in v]
    if not pool:
        return None
    r = median(x[1] for x in pool)
    peers = ", ".join(sorted(x[0] for x in pool))
    scope = f"{chip.vendor} chips" if chip.vendor in ratios else "all listed chips"
    return ChipPrice(
        usd_per_chip_hour=r * bw / 1e12,
        system="estimated",
        region="-",
        as_of="-",
        source=f"rule: HBM TB/s x median USD/(TB/s.h) of {scope} ({peers})",
        note=f"no listed {mode} price; {bw / 1e12:.2f} TB/s x {r:.3f} USD per TB/s-hour",
        mode=mode,
        basis="estimated",
    )


@dataclass(frozen=True, kw_only=True)
class Pricing:
    """How a run prices chips: the book, the mode, the catalog chips (for estimates) and,
    for ``owned``, the utilisation the owner achieves (an owner pays for idle hours too)."""

    book: PriceBook
    mode: str = "on-demand"
    chips: Mapping[str, ChipSpec] = field(default_factory=dict)
    estimate: bool = True
    """price unlisted chips by the stated rule (False: leave them unpriced)"""
    utilisation: float = 1.0
    assumptions: object | None = None
    """OwnedAssumptions for mode 'owned' (None: the book's, :attr:`PriceBook.owned`)"""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SiliconomicsError(f"--mode '{self.mode}': allowed: {', '.join(MODES)}")
        if not 0 < self.utilisation <= 1:
            raise SiliconomicsError(f"--utilisation {self.utilisation}: must be in (0, 1]")


def parse_chip_prices(
    items: list[str] | None, known: Iterable[str], option: str
) -> dict[str, float]:
    """``["h100-sxm=4.5", ...]`` -> ``{"h100-sxm": 4.5}``; errors name ``option``."""
    out: dict[str, float] = {}
    ids = set(known)
    for item in items or []:
        chip, sep, val = item.partition("=")
        try:
            usd = float(val.strip().removesuffix("/h").removeprefix("$").replace(",", ""))
        except ValueError:
            usd = -1.0
        if not sep or not (0 < usd < math.inf):
            raise SiliconomicsError(
                f"{option} '{item}': expected CHIP=USD with a finite positive USD, e.g. h100-sxm=3.5"
            )
        if chip.strip() not in ids:
            from ..errors import UnknownIdError

            raise UnknownIdError("chip", chip.strip(), sorted(ids))
        out[chip.strip()] = usd
    return out

"""Owned total cost of ownership per chip-hour, itemised.

Capital: capex per chip = chip price x server multiplier x (1 + network share). It is recovered
as an annuity over the depreciation life at the cost of capital r, less the present value of the
residual: ``annual = (capex - residual / (1+r)^n) * r(1+r)^n / ((1+r)^n - 1)``. The annuity is
shown as straight-line depreciation of chip, server and network, plus the remainder as "cost of
capital". Operations are a fraction of capex per year.

Power: average IT power per chip from the power model of :mod:`.cost` (chip + host share) at
activity ``utilisation x busy_activity``, times PUE and the electricity price. Facility: a
colocation rate per kW of *provisioned* IT power (chip TDP + host share, the peak), or an owned
hall's construction cost per kW amortised over its life at the same cost of capital.

All items are USD per wall-clock chip-hour; divide by utilisation for the cost of a busy hour.
Chips that are not sold (TPU, Trainium, Inferentia, Maia) have **no** owned cost unless the
user states a purchase price (``--chip-price trn2=USD``): the cloud price already holds the
provider's margin, power and facility, so it is not an owner's cost. What such a chip would
have to cost to be worth owning is the break-even purchase price
(:func:`siliconomics.economics.pricing.breakeven_purchase_price`). Defaults and their sources
live in ``catalog/data/economics/owned_defaults.toml``, read by the catalog
(:func:`siliconomics.catalog.registry.owned_defaults`) and handed down by the edge.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..catalog.parse import validate_as
from ..catalog.schema import ChipSpec
from ..errors import SiliconomicsError, UnknownIdError
from .cost import HOST_POWER_FRACTION, chip_tdp, power_per_chip_w

HOURS_PER_YEAR = 8760.0
HOURS_PER_MONTH = HOURS_PER_YEAR / 12.0


class OwnedAssumptions(BaseModel):
    """Inputs of the owned-TCO model. Defaults come from the packaged data file; every field
    can be overridden (``siliconomics.resolve.owned_assumptions({...})`` or ``tco --assumptions
    FILE``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    server_multiplier: float = Field(
        ge=1, description="server price / (chips x chip price): host CPUs, memory, board, chassis"
    )
    network_share: float = Field(
        ge=0, description="cluster network (switches, optics, cables) as a fraction of server capex"
    )
    depreciation_years: float = Field(gt=0, description="depreciation life of the hardware, years")
    cost_of_capital: float = Field(
        ge=0, lt=1, description="annual cost of capital (WACC), 0.08 = 8%"
    )
    residual_fraction: float = Field(
        ge=0, lt=1, description="resale value at end of life as a fraction of capex"
    )
    pue: float = Field(ge=1, description="power usage effectiveness: facility power / IT power")
    usd_per_kwh: float = Field(ge=0, description="electricity price, USD per kWh")
    busy_activity: float = Field(
        ge=0, le=1, description="activity of a busy chip in the power model (1 = fully bound)"
    )
    facility: Literal["colocation", "own"] = Field(
        description="'colocation' (rent per kW) or 'own' (build the hall)"
    )
    colocation_usd_per_kw_month: float = Field(
        ge=0, description="colocation rate, USD per kW of provisioned IT power per month"
    )
    own_facility_usd_per_kw: float = Field(
        ge=0, description="construction cost of an owned hall, USD per kW of critical IT load"
    )
    facility_life_years: float = Field(gt=0, description="amortisation life of an owned hall")
    operations_fraction_per_year: float = Field(
        ge=0, description="operations (staff, spares, support) per year as a fraction of capex"
    )
    chip_prices_usd: dict[str, float] = Field(
        default_factory=dict, description="purchase price per chip, USD, by chip id"
    )
    not_sold: tuple[str, ...] = Field(
        default=(),
        description="chip ids not sold to third parties (no owned cost without a user price)",
    )
    provenance: dict[str, str] = Field(
        default_factory=dict, description="field or 'chip_price:<id>' -> where the value came from"
    )


NUMERIC_FIELDS = tuple(
    n
    for n, f in OwnedAssumptions.model_fields.items()
    if f.annotation is float  # the scalar numeric inputs (what sensitivity can vary)
)


class _Default(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    value: float | str
    conf: str
    src: str
    as_of: str
    note: str = ""


class _ChipPrice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    usd: float = Field(gt=0)
    conf: str
    src: str
    as_of: str
    note: str = ""


class _NotSold(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    chips: tuple[str, ...]
    note: str = ""


class _DefaultsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    values: dict[str, _Default]
    chip_prices: dict[str, _ChipPrice] = Field(default_factory=dict)
    not_sold: _NotSold


def _describe(d: _Default | _ChipPrice) -> str:
    return f"{d.conf}, {d.as_of}: {d.note} [{d.src}]"


def load_owned_assumptions(
    defaults: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    known_chips: Collection[str] | None = None,
) -> OwnedAssumptions:
    """The ``defaults`` (the parsed ``owned_defaults.toml`` the edge read from the catalog),
    with ``overrides`` (plain values by field name, and an optional ``chip_prices`` table of
    USD per chip, chip ids among ``known_chips``) applied on top; overridden values are marked
    as user overrides in ``provenance``."""
    d = validate_as(_DefaultsFile, dict(defaults), where="owned_defaults.toml")
    data: dict[str, Any] = {k: v.value for k, v in d.values.items()}
    prov = {k: _describe(v) for k, v in d.values.items()}
    prices = {k: v.usd for k, v in d.chip_prices.items()}
    prov |= {f"chip_price:{k}": _describe(v) for k, v in d.chip_prices.items()}
    allowed = [n for n in OwnedAssumptions.model_fields if n not in ("provenance",)]
    for key, val in (overrides or {}).items():
        if key in ("chip_prices", "chip_prices_usd"):
            if not isinstance(val, Mapping):
                raise SiliconomicsError("assumptions: 'chip_prices' must be a table chip = USD")
            for cid, usd in val.items():
                if known_chips is not None and cid not in known_chips:
                    raise UnknownIdError("chip", cid, known_chips)
                prices[cid] = usd
                prov[f"chip_price:{cid}"] = "user override"
        elif key in allowed:
            data[key] = val
            prov[key] = "user override"
        else:
            raise SiliconomicsError(
                f"assumptions: unknown key '{key}'; allowed: {', '.join(allowed)}"
            )
    data |= {"chip_prices_usd": prices, "not_sold": d.not_sold.chips, "provenance": prov}
    return validate_as(OwnedAssumptions, data, where="owned assumptions")


def with_values(a: OwnedAssumptions, **values: Any) -> OwnedAssumptions:
    """A validated copy of ``a`` with some fields replaced (used by sensitivity sweeps)."""
    return validate_as(OwnedAssumptions, a.model_dump() | values, where="owned assumptions")


@dataclass(frozen=True, kw_only=True)
class CostBreakdown:
    """USD per chip-hour of one pricing mode, itemised (items sum to ``total``)."""

    chip: str
    mode: str
    items: Mapping[str, float]
    """item name -> USD per wall-clock chip-hour"""
    imputed: bool = False
    """owned cost of a chip that is not sold, taken from a cloud price"""
    source: str = ""
    """system, region and date of a cloud price; 'owned TCO model' otherwise"""
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        return float(sum(self.items.values()))


def capital_recovery_factor(rate: float, years: float) -> float:
    """Annual payment per USD borrowed over ``years`` at ``rate`` (1/years when rate is 0)."""
    if rate == 0:
        return 1.0 / years
    g = (1.0 + rate) ** years
    return rate * g / (g - 1.0)


def provisioned_w_per_chip(chip: ChipSpec) -> float:
    """Peak IT power per chip including its host share (W): what colocation charges for."""
    tdp = chip_tdp(chip)
    if tdp is None:
        raise SiliconomicsError(f"chip '{chip.id}': no TDP published and none can be estimated")
    return tdp.tdp_w * (1.0 + HOST_POWER_FRACTION)


def owned_cost_per_chip_hour(
    chip: ChipSpec,
    assumptions: OwnedAssumptions,
    *,
    utilisation: float,
) -> CostBreakdown:
    """Owned cost per wall-clock chip-hour of ``chip`` at ``utilisation`` (fraction of hours
    busy)."""
    a = assumptions
    if not 0 < utilisation <= 1:
        raise SiliconomicsError(f"utilisation {utilisation}: must be in (0, 1]")
    chip_id = chip.id
    price = a.chip_prices_usd.get(chip_id)
    if chip_id in a.not_sold and price is None:
        raise SiliconomicsError(
            f"owned cost of chip '{chip_id}' is unknown: it is not sold to third parties; give a "
            f"hypothetical purchase price with --chip-price {chip_id}=USD (tco --breakeven-price "
            "shows what it would have to cost to beat renting)"
        )
    if price is None:
        known = ", ".join(sorted(a.chip_prices_usd))
        raise SiliconomicsError(
            f"owned cost of chip '{chip_id}' is unknown: no public purchase price in the "
            f"defaults (known: {known}); give one with --assumptions FILE holding "
            f"[chip_prices] {chip_id} = USD, or use a cloud --mode"
        )
    items = _capital_items(price, a)
    items |= _running_items(chip, a, utilisation)
    watts, _ = power_per_chip_w(chip, utilisation * a.busy_activity)
    return CostBreakdown(
        chip=chip_id,
        mode="owned",
        items=items,
        source="owned TCO model",
        notes=(
            f"chip price USD {price:,.0f} ({a.provenance.get(f'chip_price:{chip_id}', '')})",
            f"average IT power {float(watts):.0f} W per chip at utilisation {utilisation:.0%}",
            f"facility: {a.facility}",
        ),
    )


def _capital_items(chip_price: float, a: OwnedAssumptions) -> dict[str, float]:
    server = chip_price * a.server_multiplier
    capex = server * (1.0 + a.network_share)
    keep = 1.0 - a.residual_fraction
    n, r = a.depreciation_years, a.cost_of_capital
    per_h = 1.0 / (n * HOURS_PER_YEAR)
    dep = {
        "chip depreciation": chip_price * keep * per_h,
        "server depreciation": (server - chip_price) * keep * per_h,
        "network depreciation": (capex - server) * keep * per_h,
    }
    annuity = (capex - capex * a.residual_fraction / (1.0 + r) ** n) * capital_recovery_factor(r, n)
    dep["cost of capital"] = annuity / HOURS_PER_YEAR - sum(dep.values())
    dep["operations"] = capex * a.operations_fraction_per_year / HOURS_PER_YEAR
    return dep


def _running_items(chip: ChipSpec, a: OwnedAssumptions, utilisation: float) -> dict[str, float]:
    watts, _ = power_per_chip_w(chip, utilisation * a.busy_activity)
    kw_peak = provisioned_w_per_chip(chip) / 1e3
    out = {"electricity": float(watts) / 1e3 * a.pue * a.usd_per_kwh}
    if a.facility == "colocation":
        out["colocation"] = kw_peak * a.colocation_usd_per_kw_month / HOURS_PER_MONTH
    else:
        crf = capital_recovery_factor(a.cost_of_capital, a.facility_life_years)
        out["facility"] = kw_peak * a.own_facility_usd_per_kw * crf / HOURS_PER_YEAR
    return out

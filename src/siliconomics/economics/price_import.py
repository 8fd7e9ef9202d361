"""Providers' public price lists -> a dated price book (``siliconomics prices update``).

Pure functions on already-read documents (the CLI reads the file):

- ``aws``: an EC2 price-list offer file (``offers/v1.0/aws/AmazonEC2/current/<region>/
  index.json``): ``products`` (sku -> attributes: instanceType, regionCode, operatingSystem,
  tenancy, preInstalledSw, capacitystatus) and ``terms`` (OnDemand / Reserved -> sku -> term ->
  priceDimensions -> pricePerUnit.USD per ``Hrs``). Linux, shared tenancy, no pre-installed
  software, capacitystatus Used; reserved: standard class, No Upfront, 1yr / 3yr.
- ``azure``: a response of the Azure retail prices API (``prices.azure.com/api/retail/prices``):
  ``Items`` with armSkuName, armRegionName, type (Consumption / Reservation), skuName (a
  'Spot' or 'Low Priority' suffix marks spot), unitPrice, reservationTerm, effectiveStartDate.
  A reservation's unitPrice is for the whole term and is spread over its hours.
- ``gcp``: a Cloud Billing Catalog ``services/<id>/skus`` response: ``skus`` with description,
  category.usageType (OnDemand, Preemptible/Spot, Commit1Yr, Commit3Yr), serviceRegions and
  pricingInfo[].pricingExpression.tieredRates[].unitPrice (units + nanos) per hour; TPU and GPU
  SKUs are per chip-hour.
- ``csv``: ``provider,offering,chip,chips,region,mode,usd_per_hour,as_of,src[,conf,note]``.

Instance types map to chips through the systems catalog (system id = instance type) and a
short table of known accelerator instance types below; anything else is skipped.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from ..catalog.schema import BookPrice, ChipSpec, PriceBookFile, SystemSpec
from ..errors import SiliconomicsError

FORMATS = ("aws", "azure", "gcp", "csv")
HOURS_PER_YEAR = 8760.0

KNOWN_INSTANCES: dict[str, tuple[str, int]] = {
    # AWS instance types outside the systems catalog
    "p5.4xlarge": ("h100-sxm", 1),
    "p6-b300.48xlarge": ("b300", 8),
    "trn2u.48xlarge": ("trn2", 16),
    # Azure VM sizes (armSkuName)
    "Standard_ND96isr_H100_v5": ("h100-sxm", 8),
    "Standard_ND96isr_H200_v5": ("h200-sxm", 8),
    "Standard_ND96isr_MI300X_v5": ("mi300x", 8),
    "Standard_ND96amsr_A100_v4": ("a100-sxm-80gb", 8),
}
"""instance type -> (chip id, chips); the systems catalog adds every system id"""

GCP_ACCELERATORS: tuple[tuple[str, str], ...] = (
    (r"tpu[- ]?v6e|trillium", "tpu-v6e"),
    (r"tpu[- ]?v5p", "tpu-v5p"),
    (r"tpu[- ]?v5e|tpu[- ]?v5 ?lite", "tpu-v5e"),
    (r"tpu[- ]?v4", "tpu-v4"),
    (r"tpu ?7x|tpu[- ]?v7|ironwood", "tpu-v7"),
    (r"h200", "h200-sxm"),
    (r"h100 80gb mega|h100 80gb", "h100-sxm"),
    (r"b200", "b200"),
)
"""regex on a GCP SKU description -> chip id (per chip-hour SKUs)"""


def detect_format(name: str, text: str) -> str:
    if name.lower().endswith(".csv"):
        return "csv"
    head = text[:4000]
    if '"offerCode"' in head or '"products"' in head:
        return "aws"
    if '"Items"' in head and "armSkuName" in text[:20000]:
        return "azure"
    if '"skus"' in head:
        return "gcp"
    raise SiliconomicsError(
        f"--from {name}: cannot tell the format; give --format {' | '.join(FORMATS)}"
    )


def _instances(systems: Mapping[str, SystemSpec]) -> dict[str, tuple[str, int]]:
    return KNOWN_INSTANCES | {k: (s.chip, s.chips) for k, s in systems.items()}


def parse(
    kind: str,
    doc: Any,
    *,
    systems: Mapping[str, SystemSpec],
    chips: Mapping[str, ChipSpec],
    as_of: str | None = None,
) -> PriceBookFile:
    """A dated price book from one provider document (``kind`` in :data:`FORMATS`)."""
    parsers: dict[str, Callable[[Any, Mapping[str, tuple[str, int]]], Rows]] = {
        "aws": _aws,
        "azure": _azure,
        "gcp": _gcp,
        "csv": _csv,
    }
    if kind not in parsers:
        raise SiliconomicsError(f"--format '{kind}': allowed: {', '.join(FORMATS)}")
    provider, found_date, rows = parsers[kind](doc, _instances(systems))
    day = as_of or found_date or date.today().isoformat()
    prices = []
    for r in rows:
        if r["chip"] not in chips:
            continue
        r.setdefault("as_of", day)
        r.setdefault("conf", "vendor")
        prices.append(BookPrice.model_validate(r))
    if not prices and kind != "csv":
        return PriceBookFile(provider=provider, as_of=day, prices=())
    newest = max((p.as_of for p in prices), default=day)
    return PriceBookFile(provider=provider, as_of=newest, prices=tuple(prices))


Rows = tuple[str, str | None, list[dict[str, Any]]]


def _aws(doc: Mapping[str, Any], inst: Mapping[str, tuple[str, int]]) -> Rows:
    pub = str(doc.get("publicationDate", ""))[:10] or None
    src = f"AWS price-list offer file {doc.get('offerCode', 'AmazonEC2')} {doc.get('version', '')}"
    keep: dict[str, tuple[str, str]] = {}
    for sku, prod in doc.get("products", {}).items():
        a = prod.get("attributes", {})
        it = a.get("instanceType", "")
        ok = (
            it in inst
            and a.get("operatingSystem", "Linux") == "Linux"
            and a.get("tenancy", "Shared") == "Shared"
            and a.get("preInstalledSw", "NA") == "NA"
            and a.get("capacitystatus", "Used") == "Used"
        )
        if ok:
            keep[sku] = (it, a.get("regionCode") or a.get("location", "unknown"))
    rows: list[dict[str, Any]] = []
    terms = doc.get("terms", {})
    for kind, mode_of in (("OnDemand", _aws_od), ("Reserved", _aws_ri)):
        for sku, offers in terms.get(kind, {}).items():
            if sku not in keep:
                continue
            for term in offers.values():
                mode = mode_of(term.get("termAttributes", {}))
                usd = _aws_hourly(term)
                if mode and usd:
                    it, region = keep[sku]
                    chip, n = inst[it]
                    rows.append(_row(it, chip, n, region, mode, usd, src, pub, system=it))
    return "aws", pub, rows


def _aws_od(attrs: Mapping[str, Any]) -> str | None:
    return "on-demand"


def _aws_ri(attrs: Mapping[str, Any]) -> str | None:
    if attrs.get("OfferingClass") != "standard" or attrs.get("PurchaseOption") != "No Upfront":
        return None
    return {"1yr": "reserved-1y", "3yr": "reserved-3y"}.get(attrs.get("LeaseContractLength", ""))


def _aws_hourly(term: Mapping[str, Any]) -> float | None:
    for dim in term.get("priceDimensions", {}).values():
        if dim.get("unit") == "Hrs":
            usd = float(dim.get("pricePerUnit", {}).get("USD", 0) or 0)
            return usd if usd > 0 else None
    return None


def _azure(doc: Mapping[str, Any], inst: Mapping[str, tuple[str, int]]) -> Rows:
    rows: list[dict[str, Any]] = []
    dates: list[str] = []
    for it in doc.get("Items", []):
        sku = it.get("armSkuName", "")
        if sku not in inst or it.get("currencyCode", "USD") != "USD":
            continue
        if "Windows" in it.get("productName", ""):
            continue
        name = it.get("skuName", "")
        kind = it.get("type", "")
        price = float(it.get("unitPrice") or it.get("retailPrice") or 0)
        if price <= 0:
            continue
        if kind == "Reservation":
            years = {"1 Year": 1, "3 Years": 3}.get(it.get("reservationTerm", ""))
            if years is None:
                continue
            mode, usd = f"reserved-{years}y", price / (HOURS_PER_YEAR * years)
        elif kind == "Consumption":
            spot = "Spot" in name or "Low Priority" in name
            if "Low Priority" in name:
                continue  # batch low-priority is not the spot VM price
            mode, usd = ("spot" if spot else "on-demand"), price
        else:
            continue
        day = str(it.get("effectiveStartDate", ""))[:10] or None
        if day:
            dates.append(day)
        chip, n = inst[sku]
        src = "Azure retail prices API (prices.azure.com/api/retail/prices)"
        rows.append(_row(sku, chip, n, it.get("armRegionName", "unknown"), mode, usd, src, day))
    return "azure", max(dates) if dates else None, rows


def _gcp(doc: Mapping[str, Any], inst: Mapping[str, tuple[str, int]]) -> Rows:
    modes = {
        "OnDemand": "on-demand",
        "Preemptible": "spot",
        "Spot": "spot",
        "Commit1Yr": "reserved-1y",
        "Commit3Yr": "reserved-3y",
    }
    rows: list[dict[str, Any]] = []
    dates: list[str] = []
    for sku in doc.get("skus", []):
        desc = sku.get("description", "")
        chip = _gcp_chip(desc)
        mode = modes.get(sku.get("category", {}).get("usageType", ""))
        if chip is None or mode is None:
            continue
        for info in sku.get("pricingInfo", [])[:1]:
            expr = info.get("pricingExpression", {})
            if expr.get("usageUnit") != "h":
                continue
            rates = expr.get("tieredRates", [])
            if not rates:
                continue
            up = rates[-1].get("unitPrice", {})
            usd = float(up.get("units", 0) or 0) + float(up.get("nanos", 0) or 0) / 1e9
            day = str(info.get("effectiveTime", ""))[:10] or None
            if day:
                dates.append(day)
            for region in sku.get("serviceRegions", ["global"]):
                name = f"{chip} chip ({desc})"
                src = f"Google Cloud Billing Catalog SKU {sku.get('skuId', '?')}"
                rows.append(_row(name, chip, 1, region, mode, usd, src, day))
    return "gcp", max(dates) if dates else None, rows


def _gcp_chip(desc: str) -> str | None:
    low = desc.lower()
    for pattern, chip in GCP_ACCELERATORS:
        if re.search(pattern, low):
            return chip
    return None


CSV_FIELDS = ("provider", "offering", "chip", "chips", "region", "mode", "usd_per_hour", "as_of")


def _csv(text: str, inst: Mapping[str, tuple[str, int]]) -> Rows:
    reader = csv.DictReader(io.StringIO(text))
    missing = [f for f in (*CSV_FIELDS, "src") if f not in (reader.fieldnames or [])]
    if missing:
        raise SiliconomicsError(f"CSV price list: missing column(s) {', '.join(missing)}")
    rows: list[dict[str, Any]] = []
    providers = set()
    for i, r in enumerate(reader, start=2):
        providers.add(r["provider"])
        try:
            row = _row(
                r["offering"],
                r["chip"],
                int(r["chips"]),
                r["region"],
                r["mode"],
                float(r["usd_per_hour"]),
                r["src"],
                r["as_of"],
                system=r["offering"] if r["offering"] in inst else "",
            )
        except ValueError as e:
            raise SiliconomicsError(f"CSV price list line {i}: {e}") from None
        row |= {k: r[k] for k in ("conf", "note") if r.get(k)}
        rows.append(row)
    provider = providers.pop() if len(providers) == 1 else "mixed"
    return provider, None, rows


def _row(
    offering: str,
    chip: str,
    n: int,
    region: str,
    mode: str,
    usd: float,
    src: str,
    day: str | None,
    *,
    system: str = "",
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "offering": offering,
        "system": system,
        "chip": chip,
        "chips": n,
        "region": region,
        "mode": mode,
        "usd_per_hour": round(usd, 6),
        "src": src,
    }
    if day:
        r["as_of"] = day
    return r


def to_toml(book: PriceBookFile) -> str:
    """A price book as TOML (the format of ``catalog/data/prices``)."""

    def q(v: Any) -> str:
        if isinstance(v, int | float):
            return repr(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        "# Written by 'siliconomics prices update'. Schema: catalog/schema.py PriceBookFile.",
        f"provider = {q(book.provider)}",
        f"as_of = {q(book.as_of)}",
        "",
    ]
    for p in book.prices:
        lines.append("[[prices]]")
        for k, v in p.model_dump().items():
            if v != "":
                lines.append(f"{k} = {q(v)}")
        lines.append("")
    return "\n".join(lines)

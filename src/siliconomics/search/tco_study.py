"""Rent or buy one chip: cost per chip-hour in every pricing mode, the break-even utilisation,
cost per million tokens of a model served at its best layout, energy, and a sensitivity tornado.

Throughput comes from :func:`.compare.best_on_chip` (the cheapest layout within the latency
targets; its ranking does not depend on the price level, so it is run at 1 USD per chip-hour and
costs are scaled afterwards). A busy chip-hour costs the mode's price divided by utilisation for
owned and reserved capacity, and the price itself for on-demand and spot (rented only while
busy). USD per million input/output tokens splits the busy cost by the prefill time share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..catalog.schema import ChipSpec, ModelSpec
from ..economics.pricing import (
    CLOUD_MODES,
    MODES,
    PriceBook,
    Pricing,
    breakeven_purchase_price,
    breakeven_utilisation,
    chip_hour_cost,
    owned_cost_per_chip_hour,
    owned_of,
    price_chip_hour,
    usd_per_busy_chip_hour,
)
from ..economics.sensitivity import CostSensitivity, cost_tornado
from ..economics.tco import CostBreakdown, OwnedAssumptions, with_values
from ..economics.tco import provisioned_w_per_chip as _provisioned_w
from ..errors import SiliconomicsError
from ..inference import speculative
from ..inference.speculative import Speculative
from ..ops.device import Device
from .assess import activity
from .compare import best_on_chip

REFERENCE_CHIPS = ("h100-sxm", "b200")
"""chips whose owned cost the break-even purchase price is compared with (the edge resolves
them into Devices for :func:`study_tco`)"""


@dataclass(frozen=True, kw_only=True)
class Throughput:
    """The best layout of the model on one chip (one replica), busy."""

    model: str
    input_len: float
    output_len: float
    tp: int
    pp: int
    ep: int
    chips_per_replica: int
    batch: float
    ttft_s: float
    tpot_s: float
    output_tokens_per_s_per_chip: float
    prefill_time_share: float
    watts_per_chip: float
    """average IT power (chip + host share) while busy"""
    j_per_output_token: float
    """IT energy per output token (no PUE)"""
    activity: float
    bound: str
    speculative: str = ""
    """how speculative decoding was priced (empty: none)"""


@dataclass(frozen=True, kw_only=True)
class ModeCost:
    """One pricing mode: its cost per chip-hour (None with a reason when unknown) and what a
    busy chip-hour and a million tokens cost."""

    mode: str
    cost: CostBreakdown | None
    reason: str = ""
    usd_per_busy_chip_hour: float | None = None
    usd_per_m_output: float | None = None
    """all cost charged to output tokens"""
    usd_per_m_input_split: float | None = None
    usd_per_m_output_split: float | None = None
    breakeven_utilisation: float | None = None
    """cloud modes: utilisation above which owning is cheaper"""


@dataclass(frozen=True, kw_only=True)
class BreakevenPrice:
    """What the chip would have to cost (USD, purchase) for owning it to cost the same per
    busy chip-hour as an alternative, at the study's utilisation."""

    against: str
    """'renting <chip> <mode>' or 'owning <ref chip>'"""
    target_usd_per_busy_chip_hour: float
    """the alternative's cost per busy hour of *this* chip (scaled by throughput for fleets)"""
    usd: float | None
    """break-even purchase price; None when even a free chip costs more to run"""
    basis: str
    """where the alternative's cost comes from"""


@dataclass(frozen=True, kw_only=True)
class TcoStudy:
    chip: ChipSpec
    mode: str
    utilisation: float
    assumptions: OwnedAssumptions
    modes: tuple[ModeCost, ...]
    throughput: Throughput | None
    sensitivity: CostSensitivity | None
    """None when the selected mode has no cost (a not-sold chip with only break-even prices)"""
    provisioned_w_per_chip: float
    breakeven_prices: tuple[BreakevenPrice, ...] = ()

    def selected(self) -> ModeCost:
        return next(m for m in self.modes if m.mode == self.mode)

    @property
    def tokens_per_s_per_mw(self) -> float | None:
        """Busy output tokens/s per MW of facility power provisioned (peak IT x PUE)."""
        if self.throughput is None:
            return None
        mw = self.provisioned_w_per_chip * self.assumptions.pue / 1e6
        return self.throughput.output_tokens_per_s_per_chip / mw

    @property
    def j_per_output_token_facility(self) -> float | None:
        t = self.throughput
        return None if t is None else t.j_per_output_token * self.assumptions.pue


def _throughput(
    model: ModelSpec,
    dev: Device,
    input_len: float,
    output_len: float,
    slo: tuple[float | None, float | None],
    dtypes: tuple[str, str, str],
    mtp: Speculative | None = None,
) -> Throughput:
    chip = dev.chip
    ch = best_on_chip(
        model,
        dev,
        input_len=input_len,
        output_len=output_len,
        ttft_s=slo[0],
        tpot_s=slo[1],
        weight_dtype=dtypes[0],
        act_dtype=dtypes[1],
        kv_dtype=dtypes[2],
        price_overrides=Pricing(book=PriceBook().with_chip_hour({chip.id: 1.0}), estimate=False),
        spec=mtp,
    )
    if ch.assessment is None:
        raise SiliconomicsError(f"{model.id} on {chip.id}: no feasible layout: {ch.reason}")
    e = ch.assessment.estimate
    act = np.broadcast_to(activity(e), e.batch.shape).reshape(-1)[ch.index]
    share = np.broadcast_to(e.prefill_time_share, e.batch.shape).reshape(-1)[ch.index]
    return Throughput(
        model=model.id,
        input_len=input_len,
        output_len=output_len,
        tp=e.plan.tp,
        pp=e.plan.pp,
        ep=e.plan.ep,
        chips_per_replica=e.plan.chips_per_replica,
        batch=ch.value("batch"),
        ttft_s=ch.value("ttft_s"),
        tpot_s=ch.value("tpot_s"),
        output_tokens_per_s_per_chip=ch.value("tokens_per_s_per_chip"),
        prefill_time_share=float(share),
        watts_per_chip=ch.value("watts_per_chip"),
        j_per_output_token=ch.value("j_per_token"),
        activity=float(act),
        bound=ch.bound,
        speculative="" if mtp is None else mtp.describe(),
    )


def _mode_cost(
    chip: ChipSpec,
    mode: str,
    tp: Throughput | None,
    *,
    a: OwnedAssumptions,
    u: float,
    book: PriceBook,
    chips: int,
) -> ModeCost:
    try:
        cost = chip_hour_cost(
            chip, mode, book=book, assumptions=a, utilisation=u, chips_needed=chips
        )
    except SiliconomicsError as e:
        return ModeCost(mode=mode, cost=None, reason=str(e))
    busy = usd_per_busy_chip_hour(cost, u)
    be = (
        breakeven_utilisation(chip, mode, a, book=book, chips_needed=chips)
        if mode in CLOUD_MODES
        else None
    )
    if tp is None:
        return ModeCost(mode=mode, cost=cost, usd_per_busy_chip_hour=busy, breakeven_utilisation=be)
    per_m = busy / (tp.output_tokens_per_s_per_chip * 3600.0) * 1e6
    input_tps = tp.output_tokens_per_s_per_chip * tp.input_len / tp.output_len
    return ModeCost(
        mode=mode,
        cost=cost,
        usd_per_busy_chip_hour=busy,
        usd_per_m_output=per_m,
        usd_per_m_input_split=busy * tp.prefill_time_share / (input_tps * 3600.0) * 1e6,
        usd_per_m_output_split=per_m * (1.0 - tp.prefill_time_share),
        breakeven_utilisation=be,
    )


def study_tco(
    device: Device,
    *,
    mode: str = "owned",
    utilisation: float = 0.6,
    model: ModelSpec | None = None,
    input_len: float = 1024,
    output_len: float = 256,
    ttft_s: float | None = None,
    tpot_s: float | None = None,
    weight_dtype: str = "bf16",
    act_dtype: str = "bf16",
    kv_dtype: str = "bf16",
    assumptions: OwnedAssumptions | None = None,
    book: PriceBook,
    breakeven_price: bool = False,
    references: Sequence[Device] = (),
    catalog_chips: Mapping[str, ChipSpec] | None = None,
    mtp: Speculative | None = None,
) -> TcoStudy:
    """Everything ``siliconomics tco`` shows, for one chip (``device``: the chip and its
    efficiency profile) and optionally one model (lengths in tokens, targets in seconds;
    ``mtp``: speculative decoding with the model's MTP module, on this chip and the references).
    ``book``: the run's prices (its owned-TCO assumptions unless ``assumptions`` is given);
    ``references``: chips whose owned cost sets a break-even purchase price;
    ``catalog_chips``: the chips an unlisted chip's price is estimated from."""
    chip = device.chip
    if mode not in MODES:
        raise SiliconomicsError(f"--mode '{mode}': allowed: {', '.join(MODES)}")
    if not 0 < utilisation <= 1:
        raise SiliconomicsError(f"--utilisation {utilisation}: must be in (0, 1]")
    a = owned_of(book, assumptions)
    tp = None
    if model is not None and mtp is not None:
        speculative.check(model, mtp)
    if model is not None:
        tp = _throughput(
            model,
            device,
            input_len,
            output_len,
            (ttft_s, tpot_s),
            (weight_dtype, act_dtype, kv_dtype),
            mtp,
        )
        if a.provenance.get("busy_activity") != "user override":
            a = with_values(
                a,
                busy_activity=min(1.0, tp.activity),
                provenance={**a.provenance, "busy_activity": f"from the {model.id} estimate"},
            )
    chips = tp.chips_per_replica if tp else 1
    modes = tuple(
        _mode_cost(chip, m, tp, a=a, u=utilisation, book=book, chips=chips)
        for m in ("owned", *CLOUD_MODES)
    )
    chosen = next(m for m in modes if m.mode == mode)
    if chosen.cost is None and not breakeven_price:
        raise SiliconomicsError(chosen.reason)
    be_prices: tuple[BreakevenPrice, ...] = ()
    if breakeven_price:
        spec = _Spec(
            model=model,
            input_len=input_len,
            output_len=output_len,
            slo=(ttft_s, tpot_s),
            dtypes=(weight_dtype, act_dtype, kv_dtype),
            mtp=mtp,
        )
        be_prices = breakeven_prices(
            chip,
            a,
            utilisation,
            book,
            tp,
            spec,
            tuple(references),
            chips,
            catalog_chips or {},
        )
    if chosen.cost is None:
        return TcoStudy(
            chip=chip,
            mode=mode,
            utilisation=utilisation,
            assumptions=a,
            modes=modes,
            throughput=tp,
            sensitivity=None,
            provisioned_w_per_chip=_provisioned_w(chip),
            breakeven_prices=be_prices,
        )
    sens = cost_tornado(
        chip,
        mode=mode,
        utilisation=utilisation,
        assumptions=a,
        tokens_per_s_per_chip=tp.output_tokens_per_s_per_chip if tp else None,
        book=book,
        chips_needed=chips,
    )
    return TcoStudy(
        chip=chip,
        mode=mode,
        utilisation=utilisation,
        assumptions=a,
        modes=modes,
        throughput=tp,
        sensitivity=sens,
        provisioned_w_per_chip=_provisioned_w(chip),
        breakeven_prices=be_prices,
    )


@dataclass(frozen=True, kw_only=True)
class _Spec:
    model: ModelSpec | None
    input_len: float
    output_len: float
    slo: tuple[float | None, float | None]
    dtypes: tuple[str, str, str]
    mtp: Speculative | None = None


def breakeven_prices(
    chip: ChipSpec,
    a: OwnedAssumptions,
    u: float,
    book: PriceBook,
    tp: Throughput | None,
    spec: _Spec,
    references: tuple[Device, ...],
    chips_needed: int,
    catalog_chips: Mapping[str, ChipSpec],
) -> tuple[BreakevenPrice, ...]:
    """Break-even purchase prices of ``chip`` against renting it (every cloud mode with a
    listed or estimated price) and against owning each reference chip for the same traffic
    (needs a model: the reference's owned cost per busy hour x this chip's tokens/s over the
    reference's)."""
    out: list[BreakevenPrice] = []
    for mode in CLOUD_MODES:
        p = price_chip_hour(
            Pricing(book=book, mode=mode, chips=catalog_chips), chip, chips_needed=chips_needed
        )
        if p is None:
            continue
        target = p.usd_per_chip_hour / u if mode.startswith("reserved") else p.usd_per_chip_hour
        where = p.source if p.basis == "estimated" else f"{p.system} {p.region} {p.as_of}"
        basis = f"{p.basis}: {where}"
        usd = breakeven_purchase_price(chip, target, a, utilisation=u)
        out.append(
            BreakevenPrice(
                against=f"renting {chip.id} {mode}",
                target_usd_per_busy_chip_hour=target,
                usd=usd,
                basis=basis,
            )
        )
    for ref_dev in references:
        ref = ref_dev.id
        if ref == chip.id:
            continue
        try:
            ref_busy = owned_cost_per_chip_hour(ref_dev.chip, a, utilisation=u).total / u
        except SiliconomicsError:
            continue
        if tp is None or spec.model is None:
            continue
        ref_tp = _throughput(
            spec.model, ref_dev, spec.input_len, spec.output_len, spec.slo, spec.dtypes, spec.mtp
        )
        ratio = tp.output_tokens_per_s_per_chip / ref_tp.output_tokens_per_s_per_chip
        target = ref_busy * ratio
        out.append(
            BreakevenPrice(
                against=f"owning {ref}",
                target_usd_per_busy_chip_hour=target,
                usd=breakeven_purchase_price(chip, target, a, utilisation=u),
                basis=f"{ref} owned {ref_busy:.2f} USD/busy h x throughput ratio {ratio:.2f} ({spec.model.id})",
            )
        )
    return tuple(out)

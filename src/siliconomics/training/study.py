"""What ``siliconomics train`` computes: one given plan or the best few searched plans, each
with the time, cost and energy to train a token budget."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..catalog.schema import ChipSpec, ModelSpec
from ..economics.pricing import ChipPrice, PriceBook, Pricing, price_chip_hour
from ..errors import SiliconomicsError
from ..ops.device import Device
from .estimate import TrainCost, TrainEstimate, estimate_training, time_and_cost_to_train
from .plan import TrainPlan, parse_plan
from .search import search_plans


@dataclass(frozen=True, kw_only=True)
class TrainingStudy:
    """Estimates (best first when searched) and their time/cost to train ``tokens``."""

    estimates: tuple[TrainEstimate, ...]
    costs: tuple[TrainCost, ...]
    price: ChipPrice | None
    tokens: float
    searched: bool


def resolve_plan(text: str, n_chips: int, base: TrainPlan) -> TrainPlan:
    """Parse ``--plan``; an unset dp fills the chips left by tp*pp*cp."""
    plan = parse_plan(text, base)
    keys = {item.partition("=")[0].strip() for item in text.split(",")}
    if "dp" not in keys:
        rest = plan.tp * plan.pp * plan.cp
        if n_chips % rest:
            raise SiliconomicsError(f"--plan: tp*pp*cp = {rest} does not divide --chips {n_chips}")
        plan = parse_plan(f"dp={n_chips // rest}", plan)
    if plan.chips != n_chips:
        raise SiliconomicsError(
            f"--plan uses dp*tp*pp*cp = {plan.chips} chips but --chips is {n_chips}"
        )
    return plan


def study_training(
    model: ModelSpec,
    device: Device,
    n_chips: int,
    tokens: float,
    *,
    seq_len: int,
    global_batch_seqs: int,
    plan_text: str | None = None,
    top: int = 5,
    dtype: str = "bf16",
    method: str = "full",
    optimizer: str = "adam",
    lora_rank: int = 16,
    price_overrides: dict[str, float] | None = None,
    pricing: str = "on-demand",
    utilisation: float = 1.0,
    price_book: PriceBook | None = None,
    catalog_chips: Mapping[str, ChipSpec] | None = None,
) -> TrainingStudy:
    """Estimate ``plan_text`` if given, else search the ``top`` fastest plans on ``device``
    (the chip and its efficiency profile); price each.

    ``pricing`` is a mode of :data:`economics.pricebook.MODES`; ``utilisation`` is the owned
    cluster's average busy fraction over its life (an owner pays for idle hours too).
    ``price_overrides`` (USD per chip-hour) win in the mode; ``price_book`` is the run's book
    (built at the edge, :func:`siliconomics.resolve.price_book`)."""
    if tokens <= 0:
        raise SiliconomicsError(f"--tokens must be positive, got {tokens:g}")
    base = TrainPlan(
        dtype=dtype,
        method=method,  # type: ignore[arg-type]
        optimizer=optimizer,
        lora_rank=lora_rank,
    )
    if plan_text:
        plan = resolve_plan(plan_text, n_chips, base)
        ests = [
            estimate_training(
                model, device, plan, seq_len=seq_len, global_batch_seqs=global_batch_seqs
            )
        ]
    else:
        ests = search_plans(
            model,
            device,
            n_chips,
            seq_len=seq_len,
            global_batch_seqs=global_batch_seqs,
            top=top,
            dtype=dtype,
            method=method,
            optimizer=optimizer,
            lora_rank=lora_rank,
        )
    price = _price(
        device.chip, n_chips, pricing, utilisation, price_overrides, price_book, catalog_chips
    )
    usd = price.usd_per_chip_hour if price else None
    return TrainingStudy(
        estimates=tuple(ests),
        costs=tuple(time_and_cost_to_train(e, tokens, usd) for e in ests),
        price=price,
        tokens=tokens,
        searched=not plan_text,
    )


def _price(
    chip: ChipSpec,
    n_chips: int,
    pricing: str,
    utilisation: float,
    overrides: dict[str, float] | None,
    book: PriceBook | None,
    catalog_chips: Mapping[str, ChipSpec] | None,
) -> ChipPrice | None:
    chip_id = chip.id
    if book is None:
        raise TypeError("study_training needs the run's price_book (siliconomics.resolve)")
    b = book.with_chip_hour(overrides or {}, pricing)
    p = Pricing(book=b, mode=pricing, chips=catalog_chips or {}, utilisation=utilisation)
    price = price_chip_hour(p, chip, chips_needed=n_chips)
    if price is None and pricing != "on-demand":
        raise SiliconomicsError(
            f"no {pricing} price for chip '{chip_id}' on any basis; modes with a price: "
            f"{', '.join(b.modes_for(chip_id)) or 'none'} (and owned); add one with --prices"
        )
    return price

"""Worked example: check AWS's claim that Trainium2 (Trn2) gives "30-40% better
price-performance" than GPU instances (P5e/P5en with H200, P5 with H100) for LLM serving.

Run:  python examples/claim_check.py            (current packaged price book)
      python examples/claim_check.py --old-book  (the superseded pre-June-2025 prices)

For Llama-3.1-70B and Llama-3.1-8B chat traffic (1024 prompt / 256 output tokens, TTFT <= 2 s,
TPOT <= 100 ms) it takes each chip's best layout within the targets (siliconomics compare),
prices a chip-hour with the one pricing path (listed / estimated / user basis shown), and
reports:

- price-performance = output tokens per dollar, and Trn2's advantage over each GPU offer
  (advantage = tokens-per-dollar ratio - 1; AWS claims +30% to +40%);
- the trn2.48xlarge hourly price at which the claim holds exactly (+30% and +40%): the
  public price list has no trn2.48xlarge price, so the verdict is stated as a price bound.

Error bands: the calibration work that attaches measured-error bands to each prediction is
not merged yet; the throughput ratios below carry no band (pending), so the verdict is read
against the bounds, not as a point result.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace

from siliconomics import resolve
from siliconomics.catalog.registry import chips, get_model
from siliconomics.economics.pricebook import PriceBook, Pricing
from siliconomics.resolve import default_book
from siliconomics.search.compare import best_on_chip

TRN2_CHIPS_PER_INSTANCE = 16
GPU_OFFERS = (
    ("P5en (H200)", "h200-sxm", "on-demand"),
    ("P5e (H200)", "h200-sxm", "capacity-block"),
    ("P5 (H100)", "h100-sxm", "on-demand"),
)
CHAT = {"input_len": 1024, "output_len": 256, "ttft_s": 2.0, "tpot_s": 0.100}
CLAIM = (0.30, 0.40)


@dataclass(frozen=True)
class Row:
    model: str
    offer: str
    chip: str
    mode: str
    tokens_per_s_per_chip: float
    usd_per_chip_hour: float
    basis: str
    usd_per_m_output: float


def measure(model_id: str, chip_id: str, pricing: Pricing) -> Row | None:
    ch = best_on_chip(
        get_model(model_id),
        resolve.device(chip_id),
        weight_dtype="bf16",
        act_dtype="bf16",
        kv_dtype="bf16",
        price_overrides=pricing,
        **CHAT,
    )
    if ch.assessment is None:
        raise SystemExit(f"{model_id} on {chip_id}: {ch.reason}")
    if ch.assessment.price is None:
        return None
    p = ch.assessment.price
    return Row(
        model=model_id,
        offer="",
        chip=chip_id,
        mode=pricing.mode,
        tokens_per_s_per_chip=ch.value("tokens_per_s_per_chip"),
        usd_per_chip_hour=p.usd_per_chip_hour,
        basis=p.basis,
        usd_per_m_output=ch.value("usd_per_m_output"),
    )


def old_book() -> PriceBook:
    """The book as it was before issue 12: the superseded (history) entries, plus the
    unverified trn2.48xlarge row that was dropped (85.964 USD/h, us-east-2)."""
    from siliconomics.economics.pricebook import Offering

    b = default_book()
    hist = tuple(o for o in b.history())
    trn2 = Offering(
        provider="aws",
        name="trn2.48xlarge",
        chip="trn2",
        chips=16,
        region="us-east-2",
        mode="on-demand",
        usd_per_hour=85.964,
        as_of="2025-05-31",
        conf="estimate",
        source="dropped unverified SkyPilot row (27f67dd4)",
    )
    return PriceBook(offerings=(*hist, trn2))


def check(book: PriceBook) -> list[str]:
    lines = [
        "| model | vs | GPU $/chip-h (basis) | GPU tok/s/chip | Trn2 tok/s/chip | "
        "Trn2 $/chip-h (basis) | Trn2 advantage | trn2.48xlarge $/h for +30% / +40% |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in ("llama-3.1-70b", "llama-3.1-8b"):
        trn2 = measure(model, "trn2", Pricing(book=book, mode="on-demand", chips=chips()))
        assert trn2 is not None
        for label, gpu_chip, mode in GPU_OFFERS:
            gpu = measure(model, gpu_chip, Pricing(book=book, mode=mode, chips=chips()))
            if gpu is None:
                lines.append(f"| {model} | {label} {mode} | no price in this book | | | | | |")
                continue
            tokens_per_usd = (trn2.tokens_per_s_per_chip / trn2.usd_per_chip_hour) / (
                gpu.tokens_per_s_per_chip / gpu.usd_per_chip_hour
            )
            # trn2 chip-hour price at which tokens per dollar are (1 + a) x the GPU's
            bounds = [
                gpu.usd_per_chip_hour
                * (trn2.tokens_per_s_per_chip / gpu.tokens_per_s_per_chip)
                / (1 + a)
                * TRN2_CHIPS_PER_INSTANCE
                for a in CLAIM
            ]
            lines.append(
                f"| {model} | {label} {mode} | {gpu.usd_per_chip_hour:.2f} ({gpu.basis}) | "
                f"{gpu.tokens_per_s_per_chip:,.0f} | {trn2.tokens_per_s_per_chip:,.0f} | "
                f"{trn2.usd_per_chip_hour:.2f} ({trn2.basis}) | {tokens_per_usd - 1:+.0%} | "
                f"{bounds[0]:.1f} / {bounds[1]:.1f} |"
            )
    return lines


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-book", action="store_true", help="superseded pre-June-2025 prices")
    ap.add_argument("--trn2-usd-per-hour", type=float, help="a trn2.48xlarge price to test")
    args = ap.parse_args(argv)
    # AWS's claim is about AWS instances: only AWS prices (neocloud GPUs are cheaper still)
    book = old_book() if args.old_book else default_book().with_providers(("aws",))
    if args.trn2_usd_per_hour:
        book = replace(book, chip_hour={"trn2": {"on-demand": args.trn2_usd_per_hour / 16}})
    print("\n".join(check(book)))


if __name__ == "__main__":
    main(sys.argv[1:])

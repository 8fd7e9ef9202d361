"""The screened search (fast path first, reference estimate on the survivors) chooses exactly
what the reference estimate on every layout chooses: same layout, same batch index, the same
figures bit for bit, and the same message when nothing meets the targets."""

from __future__ import annotations

import numpy as np
import pytest

from siliconomics import resolve
from siliconomics.search.compare import ChipChoice, best_on_chip, best_on_chip_reference
from siliconomics.search.screen import Targets, screen_plans

VALUES = (
    "batch",
    "ttft_s",
    "tpot_s",
    "tokens_per_s",
    "tokens_per_s_per_chip",
    "usd_per_m_output",
    "usd_per_m_input",
    "j_per_token",
    "watts_per_chip",
)

CASES = [
    # model, chip, input, output, ttft (s), tpot (s), dtype
    ("llama-3.1-70b", "h100-sxm", 1500, 300, None, 0.06, "bf16"),
    ("llama-3.1-70b", "l4", 1500, 300, None, 0.06, "bf16"),  # needs pipeline stages
    ("llama-3.1-8b", "tpu-v5e", 1024, 256, 1.0, 0.03, "bf16"),
    ("llama-3.1-8b", "h100-sxm", 512, 128, None, None, "bf16"),  # no target
    ("llama-3.1-8b", "h100-sxm", 512, 128, 1e-6, None, "bf16"),  # TTFT unreachable
    ("llama-3.1-8b", "a100-sxm-80gb", 8000, 500, None, 1e-4, "bf16"),  # TPOT unreachable
    ("llama-3.1-70b", "h100-sxm", 1024, 256, 0.05, 0.03, "bf16"),  # only both together fail
    ("mixtral-8x7b", "h100-sxm", 2048, 256, 2.0, 0.05, "bf16"),  # MoE, attention dp
    ("deepseek-v3", "h200-sxm", 1000, 200, None, 0.05, "fp8"),
    ("llama-3.1-405b", "l4", 1000, 200, None, 0.05, "bf16"),  # does not fit anywhere
]


def _same(a: ChipChoice, b: ChipChoice) -> None:
    assert a.chip.id == b.chip.id
    assert a.reason == b.reason
    assert a.feasible == b.feasible
    if not a.feasible:
        return
    assert a.index == b.index
    assert a.assessment is not None and b.assessment is not None
    assert a.assessment.estimate.plan == b.assessment.estimate.plan
    for name in VALUES:
        va, vb = a.value(name), b.value(name)
        assert va == vb or (np.isnan(va) and np.isnan(vb)), name
    assert a.bound == b.bound


@pytest.mark.parametrize("priced", [True, False])
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-{c[4]}-{c[5]}" for c in CASES])
def test_screened_choice_is_the_reference_choice(case, priced) -> None:  # type: ignore[no-untyped-def]
    model_id, chip, i, o, ttft, tpot, dtype = case
    model, dev = resolve.model(model_id), resolve.device(chip)
    kw = dict(
        input_len=i,
        output_len=o,
        ttft_s=ttft,
        tpot_s=tpot,
        weight_dtype=dtype,
        act_dtype="bf16",
        kv_dtype="bf16",
        price_overrides=resolve.pricing("on-demand") if priced else None,
    )
    _same(best_on_chip(model, dev, **kw), best_on_chip_reference(model, dev, **kw))  # type: ignore[arg-type]


def test_screen_drops_layouts() -> None:
    """The screen is not a no-op: on a chip with many layouts most are left out."""
    from siliconomics.search.compare import BATCH_LADDER, candidate_plans

    model, dev = resolve.model("llama-3.1-8b"), resolve.device("h100-sxm")
    plans = candidate_plans(model, dev, "bf16", "bf16", "bf16", dp_attention=True)
    t = Targets(1024.0, 256.0, 1.0, 0.05)
    scr = screen_plans(model, dev, plans, t, resolve.pricing("on-demand"), BATCH_LADDER)
    assert len(plans) >= 4
    assert 1 <= len(scr.best) < len(plans)
    assert set(scr.best) <= set(scr.closest)

"""Training model: plan validity, memory formulas (Korthikanti et al. 2022), step time, cost,
search and the `train` command."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from siliconomics.catalog.registry import get_model
from siliconomics.errors import DoesNotFitError, SiliconomicsError
from siliconomics.resolve import device
from siliconomics.training import (
    TrainPlan,
    estimate_training,
    parse_plan,
    search_plans,
    time_and_cost_to_train,
)
from siliconomics.training.estimate import train_device
from siliconomics.training.flops import framework_flops_per_seq, model_flops_per_token
from siliconomics.training.memory import (
    activation_bytes_per_token_layer,
    layer_input_bytes_per_token,
)
from siliconomics.training.plan import grid_of

GPT3 = get_model("gpt-3-175b")
L70 = get_model("llama-3.1-70b")
L8 = get_model("llama-3.1-8b")


# ---- Korthikanti et al. 2022, Table 2 (activation bytes per layer = s*b*h*(...)) ------------
@pytest.mark.parametrize(
    ("tp", "sp", "expected"),
    [
        (1, False, lambda h, a, s, t: h * (34 + 5 * a * s / h)),  # no parallelism
        (8, False, lambda h, a, s, t: h * (10 + 24 / t + 5 * a * s / (h * t))),  # TP
        (8, True, lambda h, a, s, t: h / t * (34 + 5 * a * s / h)),  # TP + SP
    ],
)
def test_activation_memory_reproduces_korthikanti_table2(tp, sp, expected):
    # GPT-3 175B (h 12288, a 96, s 2048), 16-bit activations, dropout, no flash attention:
    # exact per token (the paper's formulas divided by s*b).
    g = grid_of([TrainPlan(tp=tp, sp=sp)])
    got = activation_bytes_per_token_layer(GPT3, g, 2048, flash=False, dropout=True)[0]
    want = expected(12288, 96, 2048, tp)
    assert got == pytest.approx(want, rel=1e-9)


def test_selective_and_full_recompute_memory_match_korthikanti():
    g = grid_of([TrainPlan(tp=8, sp=True)])
    # selective (attention core recomputed) with SP: 34 s b h / t
    sel = activation_bytes_per_token_layer(GPT3, g, 2048, flash=False, dropout=True)[0]
    sel -= 5 * 96 * 2048 / 8  # the 5as/(ht) term the selective policy drops
    assert sel == pytest.approx(34 * 12288 / 8, rel=1e-9)
    # full: the layer input only, 2 s b h (/t with SP)
    assert layer_input_bytes_per_token(GPT3, g)[0] == pytest.approx(2 * 12288 / 8)


# ---- plan validity -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("plan", "needle"),
    [
        (TrainPlan(dp=2, tp=16), "scale-up domain of 8"),
        (TrainPlan(dp=1, tp=1, pp=96), "must not exceed the 80 layers + 2"),
        (TrainPlan(dp=8, tp=1, cp=3), "2*cp must divide seq_len"),
        (TrainPlan(dp=8, ep=2), "needs an MoE model"),
        (TrainPlan(dp=8, micro_batch=3), "dp*micro_batch must divide"),
        (TrainPlan(dp=2, tp=1, pp=4, vpp=2, micro_batch=16), "interleaved schedule"),
        (TrainPlan(dp=8, recompute="most"), "recompute 'most' is unknown"),  # type: ignore[arg-type]
        (TrainPlan(dp=8, zero=4), "zero must be 0, 1, 2 or 3"),
    ],
)
def test_invalid_plans_say_why(plan, needle):
    with pytest.raises(SiliconomicsError, match=re.escape(needle)):
        estimate_training(L70, device("h100-sxm"), plan, seq_len=4096, global_batch_seqs=64)


def test_parse_plan_and_fsdp_alias():
    p = parse_plan("tp=8,pp=4,vp=2,mb=2,recompute=full,fsdp=16")
    assert (p.tp, p.pp, p.vpp, p.micro_batch, p.recompute, p.zero, p.shard) == (
        8,
        4,
        2,
        2,
        "full",
        3,
        16,
    )
    with pytest.raises(SiliconomicsError, match="KEY=VALUE"):
        parse_plan("tq=8")


# ---- memory --------------------------------------------------------------------------------
def test_does_not_fit_names_the_overflow():
    with pytest.raises(DoesNotFitError, match=r"largest: optimizer state") as e:
        estimate_training(
            L70, device("h100-sxm"), TrainPlan(dp=8, zero=0), seq_len=2048, global_batch_seqs=8
        )
    assert e.value.shortfall_bytes > 0
    assert "try zero=1" in str(e.value)


def test_zero3_shards_weights_and_states():
    kw = {"seq_len": 4096, "global_batch_seqs": 64, "check_memory": False}
    z0 = estimate_training(L8, device("h100-sxm"), TrainPlan(dp=8, zero=0), **kw)
    z3 = estimate_training(L8, device("h100-sxm"), TrainPlan(dp=8, zero=3), **kw)
    for part in ("optimizer state", "gradients"):
        assert z3.memory[part] == pytest.approx(z0.memory[part] / 8)
    assert z3.memory["weights"] < z0.memory["weights"] / 2


def test_lora_trains_adapters_only_and_skips_weight_gradients():
    kw = {"seq_len": 4096, "global_batch_seqs": 8, "check_memory": False}
    full = estimate_training(L8, device("h100-sxm"), TrainPlan(dp=8), **kw)
    lora = estimate_training(L8, device("h100-sxm"), TrainPlan(dp=8, method="lora"), **kw)
    assert lora.memory["optimizer state"] < full.memory["optimizer state"] / 100
    # backward of the frozen base = dgrad only: ~half the GEMM backward work
    ratio = lora.breakdown["backward"] / full.breakdown["backward"]
    assert 0.45 < ratio < 0.65
    assert model_flops_per_token(L8, 4096, method="lora") == pytest.approx(
        model_flops_per_token(L8, 4096) * 2 / 3
    )


# ---- step time ------------------------------------------------------------------------------
def test_breakdown_sums_to_step_and_mfu_is_consistent():
    e = estimate_training(
        L70,
        device("h100-sxm"),
        TrainPlan(dp=2, tp=8, pp=4, vpp=2, micro_batch=1),
        seq_len=4096,
        global_batch_seqs=64,
    )
    assert sum(e.breakdown.values()) == pytest.approx(e.step_time_s)
    assert e.tokens_per_s == pytest.approx(64 * 4096 / e.step_time_s)
    peak = train_device(device("h100-sxm")).peak_flops("bf16")
    flops = model_flops_per_token(L70, 4096) * e.tokens_per_s
    assert e.mfu == pytest.approx(flops / (64 * peak))
    assert 0.2 < e.mfu < 0.8


def test_maxtext_flop_counter_matches_its_formula():
    # 6 * params * tokens + 12 * L * H * hd * S^2 per sequence (non-causal, MaxText 2023)
    m, S = get_model("llama-3.1-8b"), 2048
    from siliconomics.parallel.memory import total_params

    want = 6 * total_params(m) * S + 12 * m.n_layers * m.n_heads * m.head_dim * S * S
    assert framework_flops_per_seq(m, S, causal=False) == pytest.approx(want, rel=1e-12)


def test_time_cost_and_energy_to_train():
    e = estimate_training(
        L8, device("h100-sxm"), TrainPlan(dp=8, zero=2), seq_len=4096, global_batch_seqs=64
    )
    c = time_and_cost_to_train(e, 1e12, 4.0)
    assert c.time_s == pytest.approx(1e12 / e.tokens_per_s)
    assert c.cost_usd == pytest.approx(c.time_s / 3600 * 8 * 4.0)
    # H100: 700 W TDP, between idle and full activity, plus the 0.6 x TDP host share
    assert 0.9 * 700 < c.power_w_per_chip < 1.6 * 700
    assert c.energy_j == pytest.approx(c.power_w_per_chip * 8 * c.time_s)
    assert np.isnan(time_and_cost_to_train(e, 1e12, None).cost_usd)
    with pytest.raises(SiliconomicsError):
        time_and_cost_to_train(e, 0, 4.0)


# ---- search ---------------------------------------------------------------------------------
def test_search_returns_fitting_plans_best_first_with_reasons():
    res = search_plans(L70, device("h100-sxm"), 64, seq_len=4096, global_batch_seqs=256, top=4)
    assert len(res) == 4
    tps = [r.tokens_per_s for r in res]
    assert tps == sorted(tps, reverse=True)
    assert all(r.memory_total <= r.memory_capacity for r in res)
    assert all(r.plan.chips == 64 for r in res)
    assert res[0].why[0].startswith("fastest of")
    assert "vs the best" in res[1].why[0]
    assert all(r.plan.tp <= 8 for r in res)  # TP stays on NVLink


def test_search_when_nothing_fits():
    with pytest.raises(DoesNotFitError, match="does not fit on 8 x h100-sxm in any"):
        search_plans(
            get_model("llama-3.1-405b"), device("h100-sxm"), 8, seq_len=4096, global_batch_seqs=64
        )


# ---- CLI ------------------------------------------------------------------------------------
def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "siliconomics.cli", *args], capture_output=True, text=True
    )


def test_cli_train_json_and_errors():
    r = _cli(
        "train",
        "--model",
        "llama-3.1-8b",
        "--chip",
        "h100-sxm",
        "--chips",
        "16",
        "--tokens",
        "1T",
        "--plan",
        "tp=2,pp=1,zero=1,mb=1",
        "--global-batch",
        "64",
        "--price",
        "h100-sxm=3",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    p = d["plans"][0]
    assert p["plan"]["dp"] == 8 and p["chips"] == 16
    assert p["cost_usd"] == pytest.approx(p["chip_hours"] * 3)
    assert p["time_to_train_s"] == pytest.approx(1e12 / p["tokens_per_s"])
    bad = _cli(
        "train", "--model", "llama-3.1-8b", "--chip", "h100-sxm", "--chips", "16", "--plan", "tp=16"
    )
    assert bad.returncode == 2 and "scale-up domain" in bad.stderr


def test_train_pricing_modes(tmp_path):
    """--mode prices the run from economics.pricing: a reserved price from --prices, the
    owned TCO (dearer per busy hour at lower utilisation), and a clear error for a missing
    mode."""
    from siliconomics.catalog.registry import get_model
    from siliconomics.training.study import study_training

    book = tmp_path / "prices.toml"
    book.write_text("[chip_hour.h100-sxm]\nreserved-1y = 2.5\n")
    base = ["train", "--model", "llama-3.1-8b", "--chip", "h100-sxm", "--chips", "16"]
    base += ["--plan", "tp=2,zero=1,mb=1", "--global-batch", "64", "--json"]
    r = _cli(*base, "--mode", "reserved-1y", "--prices", str(book))
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)["plans"][0]
    assert p["cost_usd"] == pytest.approx(p["chip_hours"] * 2.5)

    model = get_model("llama-3.1-8b")
    from siliconomics.resolve import default_book

    kw = dict(
        seq_len=4096,
        global_batch_seqs=64,
        plan_text="tp=2,zero=1,mb=1",
        pricing="owned",
        price_book=default_book(),
    )
    hi = study_training(model, device("h100-sxm"), 16, 1e12, utilisation=0.9, **kw)  # type: ignore[arg-type]
    lo = study_training(model, device("h100-sxm"), 16, 1e12, utilisation=0.3, **kw)  # type: ignore[arg-type]
    assert hi.price is not None and lo.price is not None
    assert lo.price.usd_per_chip_hour > 2 * hi.price.usd_per_chip_hour

    bad = _cli(*base, "--mode", "reserved-3y")
    assert bad.returncode == 2 and "modes with a price" in bad.stderr

"""Activation offload to host memory (``recompute=offload``, training/memory.py): the Grace
superchips' NVLink-C2C lets NeMo keep activations in CPU memory instead of recomputing them
(Megatron-Bridge 25.11 performance configs: Llama-3-70B on GB200/GB300, ``cpu_offloading_num_
layers`` 20-40)."""

from dataclasses import replace

import numpy as np
import pytest

from siliconomics.catalog.registry import get_model
from siliconomics.errors import SiliconomicsError
from siliconomics.resolve import device
from siliconomics.training import TrainPlan, estimate_training, search_plans
from siliconomics.training.estimate import evaluate_grid, train_device
from siliconomics.training.plan import grid_of

L70 = get_model("llama-3-70b")
KW = {"seq_len": 8192, "global_batch_seqs": 256}


def _plan(rc: str) -> TrainPlan:
    return TrainPlan(dp=64, zero=3, micro_batch=2, recompute=rc, dtype="fp8-cs")  # type: ignore[arg-type]


def test_offload_fits_where_only_full_recompute_did_and_is_hidden_on_c2c():
    dev = device("gb200")
    with pytest.raises(SiliconomicsError, match="does not fit"):
        estimate_training(L70, dev, _plan("none"), **KW)
    full = estimate_training(L70, dev, _plan("full"), **KW)
    off = estimate_training(L70, dev, _plan("offload"), **KW)
    assert off.plan.recompute == "offload"
    # 3.7 GiB of activations per layer and micro-batch cross the 450 GB/s link in ~9 ms,
    # less than the layer's forward: nothing exposed, no recomputed forward
    assert off.breakdown["recompute"] == 0.0
    assert off.step_time_s < 0.8 * full.step_time_s
    # activations beyond two layers go to the 240 GB host share; the rest stays
    none = estimate_training(L70, dev, _plan("none"), **KW, check_memory=False)
    moved = none.memory["activations"] - off.memory["activations"]
    assert 0.0 < moved <= 240e9


def test_a_slow_host_link_exposes_the_transfers():
    base = device("gb200")
    slow = base.chip.model_copy(
        update={
            "memory": base.chip.memory.model_copy(
                update={
                    "host_link_bytes_per_s": base.chip.memory.host_link_bytes_per_s.model_copy(  # type: ignore[union-attr]
                        update={"value": 10e9}
                    )
                }
            )
        }
    )
    dev = replace(base, chip=slow)
    fast = estimate_training(L70, base, _plan("offload"), **KW)
    off = estimate_training(L70, dev, _plan("offload"), **KW)
    assert off.breakdown["recompute"] > 0.0
    assert off.step_time_s > fast.step_time_s


def test_offload_needs_a_host_link_in_the_chip_spec():
    with pytest.raises(SiliconomicsError, match="host memory and host link"):
        estimate_training(L70, device("b200"), _plan("offload"), **KW)


def test_grid_and_single_plan_agree():
    dev = device("gb300")
    plans = [_plan("offload"), replace(_plan("offload"), micro_batch=1), _plan("full")]
    r = evaluate_grid(L70, train_device(dev), grid_of(plans), **KW)
    for i, p in enumerate(plans):
        one = estimate_training(L70, dev, p, **KW, check_memory=False)
        assert float(r.step.total[i]) == pytest.approx(one.step_time_s, rel=1e-12)
        mem = float(np.ravel(r.memory.activations)[i])
        assert mem == pytest.approx(one.memory["activations"], rel=1e-12)


def test_the_search_offers_offload_on_grace_superchips_only():
    gb = search_plans(L70, device("gb200"), 64, **KW, dtype="fp8-cs", top=40)
    assert any(e.plan.recompute == "offload" for e in gb)
    b = search_plans(L70, device("b200"), 64, **KW, dtype="fp8-cs", top=40)
    assert all(e.plan.recompute != "offload" for e in b)


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("host_bytes", "-5 GB", "not a finite non-negative"),
        ("host_bytes", "nan GB", "cannot read"),
        ("host_link_bytes_per_s", "inf GB/s", "not a finite non-negative|cannot read"),
    ],
)
def test_host_fields_reject_negative_and_nonfinite_values(tmp_path, field, value, match):
    from pathlib import Path

    from siliconomics.resolve import load_chip_file

    src = Path(__file__).resolve().parents[1] / "src/siliconomics/catalog/data/chips/gb200.toml"
    lines = src.read_text().splitlines()
    out = [
        f'{field} = {{ value = "{value}", conf = "vendor", src = "S-CONTINUUM" }}'
        if ln.startswith(f"{field} = ")
        else ln
        for ln in lines
    ]
    path = tmp_path / "chip.toml"
    path.write_text("\n".join(out) + "\n")
    with pytest.raises(SiliconomicsError, match=match):
        load_chip_file(path)


def test_a_zero_host_link_refuses_offload():
    base = device("gb200")
    mem = base.chip.memory
    link = mem.host_link_bytes_per_s.model_copy(update={"value": 0.0})  # type: ignore[union-attr]
    chip = base.chip.model_copy(
        update={"memory": mem.model_copy(update={"host_link_bytes_per_s": link})}
    )
    with pytest.raises(SiliconomicsError, match="above zero"):
        estimate_training(L70, replace(base, chip=chip), _plan("offload"), **KW)

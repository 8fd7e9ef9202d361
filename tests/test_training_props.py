"""Property tests of the training model (hypothesis): physics that must hold for any plan."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siliconomics.catalog.registry import get_model
from siliconomics.errors import DoesNotFitError
from siliconomics.parallel.hierarchical import send_recv_time
from siliconomics.resolve import device
from siliconomics.training import TrainPlan, search_plans
from siliconomics.training.estimate import evaluate_grid, train_device
from siliconomics.training.memory import train_memory
from siliconomics.training.plan import grid_of

MODELS = ["llama-3.1-8b", "llama-2-7b", "mixtral-8x7b"]
CHIPS = ["h100-sxm", "tpu-v5p", "trn2", "mi300x", "b200"]


@settings(max_examples=12, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    chip=st.sampled_from(CHIPS),
    n=st.sampled_from([8, 16, 32, 64]),
)
def test_more_chips_never_lower_best_aggregate_throughput(model, chip, n):
    m = get_model(model)
    kw = {"seq_len": 4096, "global_batch_seqs": 512, "top": 1}
    try:
        a = search_plans(m, device(chip), n, **kw)[0].tokens_per_s
    except DoesNotFitError:
        # e.g. Mixtral-8x7B with Adam on 8 x 80 GB (16 bytes x 46.7B > 640 GB): vacuous here.
        return
    b = search_plans(m, device(chip), 2 * n, **kw)[0].tokens_per_s
    assert b >= a * (1 - 1e-9)


@settings(max_examples=40, deadline=None)
@given(
    dp=st.sampled_from([1, 2, 4, 8, 64]),
    tp=st.sampled_from([1, 2, 4, 8]),
    pp=st.sampled_from([1, 2, 4, 8, 16, 32]),
    mb=st.sampled_from([1, 2]),
    rc=st.sampled_from(["none", "selective", "full"]),
    lora=st.booleans(),
)
def test_per_chip_memory_never_rises_with_zero_stage(dp, tp, pp, mb, rc, lora):
    m = get_model("llama-3.1-70b")
    dev = train_device(device("h100-sxm"))
    plans = [
        TrainPlan(
            dp=dp,
            tp=tp,
            pp=pp,
            micro_batch=mb,
            recompute=rc,
            zero=z,
            method="lora" if lora else "full",
        )
        for z in (0, 1, 2, 3)
    ]
    total = train_memory(m, dev, grid_of(plans), seq_len=4096, global_batch=1024).total
    assert np.all(np.diff(total) <= 1e-6 * total[0])


@settings(max_examples=30, deadline=None)
@given(
    pp=st.sampled_from([2, 4, 8, 16]),
    vpp=st.sampled_from([1, 2, 5]),
    m=st.sampled_from([16, 32, 80]),
)
def test_bubble_fraction_is_narayanan(pp, vpp, m):
    # Narayanan et al. 2021 (SC'21) §2.2: 1F1B bubble = (pp-1)/(m+pp-1) of the pipeline time;
    # interleaved with v virtual stages: (pp-1)/(v*m + pp-1).
    model = get_model("llama-3.1-70b")  # 80 layers: pp*vpp divides 80 for these values
    dev = train_device(device("h100-sxm"))
    g = grid_of([TrainPlan(dp=1, tp=8, pp=pp, vpp=vpp, micro_batch=1)])
    res = evaluate_grid(model, dev, g, seq_len=2048, global_batch_seqs=m)
    s = res.step
    # the warm-up/cool-down stage hops (2 (pp-1) transfers of one micro-batch's activations)
    # come on top of Narayanan's compute bubble
    hop = send_recv_time(dev, 2048 * model.d_model * 2.0, np.array([8]))
    bubble = s.bubble - 2 * (pp - 1) * hop
    assert float(hop[0]) > 0
    pipe = s.microbatches * s.t_microbatch + bubble
    assert float(bubble[0] / pipe[0]) == pytest.approx((pp - 1) / (vpp * m + pp - 1), rel=1e-9)

"""Mixed steps under attention data parallelism: the busiest rank sets the step
(``StepTimeModel.mixed_ranks``), and the MLPerf prompt-length tables it needs."""

from __future__ import annotations

import numpy as np
import pytest

from siliconomics import resolve
from siliconomics.parallel.plan import InferencePlan
from siliconomics.serving import fastcore
from siliconomics.serving.steptime import step_time_model
from siliconomics.validate.mlperf_server import INPUT_QUANTILES
from siliconomics.validate.serve_rows import input_lengths
from tests.test_serve_rows import row


def _stm(dp: int):
    m, dev = resolve.model("deepseek-r1"), resolve.device("b200")
    plan = InferencePlan(
        tp=8 // dp, dp=dp, ep=8, weight_dtype="fp4", act_dtype="fp8", kv_dtype="fp8"
    )
    return step_time_model(m, dev, plan, max_tokens=8192, max_seqs=1024, max_ctx=8192)


def test_one_rank_prefilling_holds_the_others() -> None:
    stm = _stm(8)
    n_dec, ctx = 800, 800 * 3000.0
    spread = (
        stm.dense(n_dec + 1000)
        + stm.head(n_dec + 1)
        + stm.attn_decode(n_dec, ctx)
        + stm.attn_prefill(1000, 0)
    )
    busiest = stm.mixed_ranks(n_dec, ctx, [(1000, 0)], n_dec + 1)
    # the whole prompt runs on one rank while seven wait: slower than spreading it over 8
    assert busiest > 1.2 * spread


def test_a_second_prompt_on_another_rank_adds_only_pooled_expert_work() -> None:
    stm = _stm(8)
    n_dec, ctx = 800, 800 * 3000.0
    one = stm.mixed_ranks(n_dec, ctx, [(1000, 0)], n_dec + 1)
    two = stm.mixed_ranks(n_dec, ctx, [(1000, 0), (1000, 0)], n_dec + 2)
    expert = stm._table(stm._expert, n_dec + 2000) - stm._table(stm._expert, n_dec + 1000)
    assert two - one == pytest.approx(expert + stm.head(n_dec + 2) - stm.head(n_dec + 1))
    # prompts are placed largest first on the least-loaded rank: nine prompts put two on one
    nine = stm.mixed_ranks(n_dec, ctx, [(1000, 0)] * 9, n_dec + 9)
    assert nine > two


def test_prefill_first_steps_also_wait_for_the_busiest_rank() -> None:
    stm = _stm(8)
    one, eight = stm.prefill_step([2000]), stm.prefill_step([2000] * 8)
    # eight prompts on eight ranks take about as long as one (only pooled expert work grows),
    # far from eight times as long
    assert one < eight < 2.0 * one
    assert stm.prefill_step([2000]) == pytest.approx(stm.mixed_ranks(0, 0.0, [(2000, 0)], 1))


def test_one_attention_rank_is_the_plain_mixed_step() -> None:
    stm = _stm(1)
    n_dec, ctx = 64, 64 * 2000.0
    chunks = [(512, 0), (256, 1024)]
    plain = (
        stm.dense(n_dec + 768)
        + stm.head(n_dec + 2)
        + stm.attn_decode(n_dec, ctx)
        + stm.attn_prefill(512, 0)
        + stm.attn_prefill(256, 1024)
    )
    assert stm.mixed_ranks(n_dec, ctx, chunks, n_dec + 2) == pytest.approx(plain)


def test_fastcore_leaves_attention_dp_to_the_python_engine() -> None:
    from siliconomics.serving.schedulers.chunked import ChunkedEngine

    compiled = fastcore.ENABLED and fastcore.available()
    for dp, ok in ((1, compiled), (8, False)):
        e = ChunkedEngine.__new__(ChunkedEngine)
        e.stm = _stm(dp)
        assert fastcore.eligible([e], "least-tokens", 1, None) is ok


@pytest.mark.parametrize(
    ("name", "mean"),
    [
        ("deepseek-r1-mlperf", 803.79),
        ("openorca-mlperf", 222.33),
        ("mixtral-mlperf", 427.39),
        ("llama3.1-405b-mlperf", 9428.64),
    ],
)
def test_input_quantiles_reproduce_the_dataset_means(name: str, mean: float) -> None:
    q = np.asarray(INPUT_QUANTILES[name][0], dtype=float)
    assert len(q) == 100 and np.all(np.diff(q) >= 0)
    assert q.mean() == pytest.approx(mean, rel=0.005)


def test_input_lengths_follow_the_dataset_at_the_row_mean() -> None:
    lengths, note = input_lengths(row(input_len=800.0))
    assert lengths.kind == "empirical" and "prompt-length quantiles" in note
    x = lengths.sample(100_000, np.random.default_rng(0)).astype(float)
    assert x.mean() == pytest.approx(800.0, rel=0.01)
    assert x.max() > 1.7 * x.mean() and x.min() < 0.1 * x.mean()

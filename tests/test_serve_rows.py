"""Server rows: output-length shapes, published harness settings, multi-step scheduling."""

from dataclasses import replace

import numpy as np
import pytest

from siliconomics.catalog.registry import get_model, packaged
from siliconomics.measured.rows import MeasuredRow
from siliconomics.parallel.plan import InferencePlan
from siliconomics.resolve import device
from siliconomics.serving import Workload, simulate
from siliconomics.serving.config import PoolConfig
from siliconomics.serving.spec import make_config
from siliconomics.serving.workload import Lengths, Requests
from siliconomics.validate.mlperf_server import OUTPUT_QUANTILES, harness
from siliconomics.validate.serve_rows import _config, output_lengths, server_setup

V51 = "mlcommons/inference_results_v5.1@965182b0: closed/{s}/results/X/{b}/{sc}/performance"


def row(**kw: object) -> MeasuredRow:
    base: dict[str, object] = {
        "id": "MLPI-5.1-NVIDIA-B200-SXM-180GBx8_TRT-deepseek-r1-Server",
        "kind": "inference",
        "scenario": "server",
        "usable": True,
        "model": "deepseek-r1",
        "chip": "b200",
        "n_chips": 8,
        "replicas": 1,
        "tp": 1,
        "pp": 1,
        "ep": 8,
        "dp": 8,
        "weight_dtype": "fp4",
        "act_dtype": "fp4",
        "kv_dtype": "fp8",
        "batch": 4096,
        "input_len": 803.79,
        "output_len": 3886.23,
        "length_dist": "deepseek-r1-mlperf",
        "metric": "output_tokens_per_s",
        "percentile": "",
        "value": 18592.0,
        "slo_ttft_s": 2.0,
        "slo_tpot_s": 0.08,
        "inferred_fields": (),
        "source": V51.format(s="NVIDIA", b="deepseek-r1", sc="Server"),
        "software": "TensorRT 10.11, CUDA 12.9",
    }
    base.update(kw)
    return MeasuredRow(**base)  # type: ignore[arg-type]


def test_output_quantiles_reproduce_the_reference_means():
    # DeepSeek-R1's reference outputs capped at 20,000 tokens average 3,886.2 (MLCommons
    # tokens_per_sample); the others are the datasets' own means.
    means = {"deepseek-r1-mlperf": 3886.2, "mixtral-mlperf": 144.8, "openorca-mlperf": 218.9}
    for name, mean in means.items():
        q = np.asarray(OUTPUT_QUANTILES[name][0], dtype=float)
        assert len(q) == 100 and np.all(np.diff(q) >= 0)
        assert q.mean() == pytest.approx(mean, rel=0.005)


def test_output_lengths_keep_the_row_mean_and_the_dataset_shape():
    lengths, note = output_lengths(row(output_len=3000.0))
    assert lengths.kind == "empirical" and "performance-dashboard" in note
    x = lengths.sample(200_000, np.random.default_rng(0)).astype(float)
    assert x.mean() == pytest.approx(3000.0, rel=0.01)
    # length-biased context in flight: E[L^2] / (2 E[L]) is over twice E[L] / 2 here
    assert (x**2).mean() / (2 * x.mean()) > 2.0 * x.mean() / 2
    fixed, note = output_lengths(row(length_dist="fixed"))
    assert fixed.kind == "fixed" and fixed.params == (3886.23,) and "fixed" in note


def test_harness_settings_of_published_server_configs():
    ds = harness(row())
    assert ds is not None and ds.graph_sizes == (128, 256, 384, 512)
    assert ds.tokens_per_rank == 3456 and ds.scheduler == "chunked"
    cw = harness(row(chip="gb300", source=V51.format(s="CoreWeave", b="deepseek-r1", sc="Server")))
    assert cw is not None and cw.graph_sizes[0] == 32
    mix = dict(
        id="MLPI-5.1-Dell-XE9680_MI300X_192GBx8-mixtral-8x7b-Server",
        model="mixtral-8x7b",
        chip="mi300x",
        software="vLLM 0.6.5.dev964+mlperf50, Pytorch 2.7.0a0",
        source=V51.format(s="Dell", b="mixtral-8x7b", sc="Server"),
    )
    h = harness(row(**mix))
    assert h is not None and (h.scheduler, h.tokens_per_rank, h.multi_step) == (
        "continuous",
        32000,
        8,
    )
    # the Offline twin, another round's row and an unknown stack get no harness settings
    assert harness(row(**{**mix, "id": mix["id"].replace("Server", "Offline")})) is None
    assert harness(row(source="some vendor page")) is None
    assert harness(row(**{**mix, "software": "Mango LLMBoost"})) is None


def test_harness_settings_reach_the_serving_config():
    r = row()
    plan = InferencePlan(tp=1, ep=8, dp=8, weight_dtype="fp4", act_dtype="fp4", kv_dtype="fp8")
    dev = device("b200")
    model = get_model("deepseek-r1")
    cfg = _config(model, r, plan, dev, 1, engine=harness(r))
    assert cfg.pool.max_batched_tokens == 3456 * 8
    assert cfg.pool.graph_sizes == (128, 256, 384, 512)
    default = _config(model, r, plan, dev, 1)
    assert default.pool.max_batched_tokens == 8192 and default.pool.graph_sizes == ()


def test_server_setup_is_what_the_capacity_search_runs():
    r = row()
    cfg, w = server_setup(r, get_model("deepseek-r1"), packaged(), n_requests=300)
    assert cfg.pool.plan.dp == 8 and cfg.pool.plan.ep == 8
    assert cfg.pool.max_batched_tokens == 3456 * 8 and cfg.pool.adp_balance == (9, 3)
    assert w.n_requests == 300 and w.arrival.kind == "poisson"
    assert w.output.mean == pytest.approx(3886.23, rel=1e-6)


def _two_requests(multi_step: int) -> np.ndarray:
    """TTFT of a prompt that arrives while another request decodes (continuous scheduler)."""
    m = get_model("llama-3.1-8b")
    pool = PoolConfig(
        device=device("h100-sxm"),
        plan=InferencePlan(tp=1),
        scheduler="continuous",
        multi_step=multi_step,
    )
    cfg = make_config(m, pool)
    trace = Requests(
        arrival_s=np.array([0.0, 0.05]),
        input_tokens=np.array([512, 512]),
        output_tokens=np.array([400, 8]),
    )
    w = Workload(trace=trace, n_requests=2, output=Lengths(params=(400.0,)))
    return np.asarray(simulate(cfg, w, seed=0).log.ttft_s)


def test_multi_step_rounds_delay_admission_to_the_round_end():
    # The second prompt arrives 50 ms in, five decode steps into the first request's decode:
    # one step at a time it is admitted after the step in flight; with rounds of 4 or 8 steps
    # only when the decode counter reaches 8 (both), with rounds of 16 at 16.
    one, four, eight, sixteen = (_two_requests(n) for n in (1, 4, 8, 16))
    assert one[0] == four[0] == eight[0] == sixteen[0]  # the first finds the engine idle
    assert four[1] == pytest.approx(eight[1])
    assert one[1] < eight[1] < sixteen[1]


def test_multi_step_must_be_positive():
    from siliconomics.errors import SiliconomicsError

    pool = PoolConfig(device=device("h100-sxm"), plan=InferencePlan(tp=1), multi_step=0)
    with pytest.raises(SiliconomicsError, match="multi_step"):
        make_config(get_model("llama-3.1-8b"), replace(pool)).validate()


def _adp_ttft(adp: tuple[int, int] | None, late: int) -> np.ndarray:
    """TTFTs of ``late`` prompts arriving together while two sequences decode on an
    attention-DP-2 replica (chunked scheduler, optional attention-DP balancing)."""
    pool = PoolConfig(
        device=device("h100-sxm"),
        plan=InferencePlan(tp=1, dp=2),
        scheduler="chunked",
        adp_balance=adp,
    )
    cfg = make_config(get_model("llama-3.1-8b"), pool)
    n = 2 + late
    trace = Requests(
        arrival_s=np.array([0.0, 0.0] + [0.05] * late),
        input_tokens=np.full(n, 256),
        output_tokens=np.array([400, 400] + [8] * late),
    )
    w = Workload(trace=trace, n_requests=n, output=Lengths(params=(400.0,)))
    return np.asarray(simulate(cfg, w, seed=0).log.ttft_s)


def test_adp_balancing_holds_a_lone_prompt_until_the_timeout():
    free, held = _adp_ttft(None, 1), _adp_ttft((50, 0), 1)
    assert free[0] == pytest.approx(held[0])
    # one prompt for two ranks: not every rank has one, so it waits for the release every 50
    # iterations (the prompt arrives about 7 in); without balancing it starts at the next one
    assert held[2] > 10 * free[2]  # ~40 decode steps later
    # two prompts (one per rank) start at once when no batching wait is asked for ...
    assert _adp_ttft((50, 0), 2)[2:] == pytest.approx(_adp_ttft(None, 2)[2:])
    # ... and two iterations later with batching_wait_iters 2
    assert np.all(_adp_ttft((50, 2), 2)[2:] > _adp_ttft(None, 2)[2:])


def test_adp_balance_needs_the_chunked_scheduler():
    from siliconomics.errors import SiliconomicsError

    pool = PoolConfig(
        device=device("h100-sxm"),
        plan=InferencePlan(tp=1, dp=2),
        scheduler="continuous",
        adp_balance=(9, 3),
    )
    with pytest.raises(SiliconomicsError, match="adp_balance"):
        make_config(get_model("llama-3.1-8b"), pool).validate()


def test_a_server_row_with_only_an_end_to_end_limit_is_searched_against_it():
    """MLPerf GPT-J Server states its limit per query (p99 latency, SCHEMA.md ``slo_e2e_s``):
    such a row runs the capacity search on that limit alone, and a tighter limit gives a lower
    answer."""
    from siliconomics.validate.serve_rows import run_server_row

    cat = packaged()
    base = row(
        id="T-E2E", model="llama-3.1-8b", chip="h100-sxm", n_chips=1, tp=1, ep=1, dp=1,
        weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8", batch=256, input_len=800.0,
        output_len=120.0, length_dist="fixed", value=20000.0, slo_ttft_s=None,
        slo_tpot_s=None, slo_e2e_s=20.0, source="test", software="",
    )  # fmt: skip
    loose = run_server_row(base, cat.model("llama-3.1-8b"), cat, n_requests=300)
    tight = run_server_row(
        replace(base, slo_e2e_s=3.0), cat.model("llama-3.1-8b"), cat, n_requests=300
    )
    assert loose.predicted > 0 and tight.predicted > 0
    assert tight.predicted < loose.predicted
    with pytest.raises(Exception, match="slo_e2e_s"):
        run_server_row(replace(base, slo_e2e_s=None), cat.model("llama-3.1-8b"), cat)


def test_a_server_row_may_count_input_tokens_too():
    """``total_tokens_per_s`` (SCHEMA.md: input + output tokens per second) on a server row is
    the same capacity search, counting each request's prompt as well: with fixed lengths, the
    output answer times (input + output) / output."""
    from siliconomics.validate.serve_rows import run_server_row

    cat = packaged()
    base = row(
        id="T-TOT", model="llama-3.1-8b", chip="h100-sxm", n_chips=1, tp=1, ep=1, dp=1,
        weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8", batch=256, input_len=800.0,
        output_len=120.0, length_dist="fixed", value=20000.0, slo_ttft_s=2.0,
        slo_tpot_s=0.05, source="test", software="",
    )  # fmt: skip
    m = cat.model("llama-3.1-8b")
    out = run_server_row(base, m, cat, n_requests=300)
    tot = run_server_row(replace(base, metric="total_tokens_per_s"), m, cat, n_requests=300)
    assert tot.predicted == pytest.approx(out.predicted * 920.0 / 120.0, rel=1e-9)
    with pytest.raises(Exception, match="allowed: output_tokens_per_s, total_tokens_per_s"):
        run_server_row(replace(base, metric="ttft_s"), m, cat, n_requests=300)

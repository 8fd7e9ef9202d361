"""Calibration as a library: stacks, the fitting policy, hierarchical fits, bands."""

from __future__ import annotations

import math

import pytest

from siliconomics.calibrate import policy as P
from siliconomics.calibrate.bands import (
    FLOOR,
    WIDEN_STACK,
    BandQuery,
    Residual,
    band_for,
)
from siliconomics.calibrate.samples import source_group
from siliconomics.catalog.registry import efficiency_profiles
from siliconomics.catalog.stacks import (
    OTHER,
    ProfileSet,
    StackProfile,
    check_stack,
    default_stack,
    infer_stack,
    resolve_profile,
    stacks,
)
from siliconomics.errors import SiliconomicsError


@pytest.mark.parametrize(
    ("software", "family", "stack"),
    [
        ("TensorRT-LLM 0.17", "nvidia-hopper", "trtllm"),
        ("TensorRT 10.1.0, CUDA 12.7 (preview)", "nvidia-blackwell", "trtllm"),
        ("vLLM 0.6.3", "nvidia-hopper", "vllm"),
        ("vLLM 0.4.3+rocm614, PyTorch 2.3.0", "amd-cdna3", "vllm"),
        ("SGLang 0.4", "nvidia-hopper", "sglang"),
        ("NxD Inference", "aws-neuron-v3", "nxdi"),
        ("NxD Inference + vLLM (AWS Neuron fork)", "aws-neuron-v3", "nxdi"),
        ("vllm-neuron (vLLM V1 plugin)", "aws-neuron-v3", "vllm-neuron"),
        ("Transformers NeuronX, Neuron SDK 2.18.1", "aws-neuron-v2", "transformers-neuronx"),
        ("optimum-neuron 0.4.1, Neuron SDK 2.26", "aws-neuron-v2", "nxdi"),
        ("Optimum Neuron", "aws-neuron-v3", "nxdi"),
        ("optimum-neuron 0.10.0", "aws-neuron-v2", "nxdi"),
        ("optimum-neuron 0.1.2", "aws-neuron-v2", "transformers-neuronx"),
        ("optimum-neuron v0.0.28", "aws-neuron-v2", "transformers-neuronx"),
        ("llm-d 0.3 (vLLM)", "nvidia-hopper", "vllm"),
        ("llm-d", "nvidia-blackwell", "vllm"),
        ("optimum-habana", "intel-gaudi", "optimum-habana"),
        ("Intel Gaudi software 1.18.0", "intel-gaudi", "optimum-habana"),
        ("vLLM-gaudi 1.22", "intel-gaudi", "vllm-gaudi"),
        ("MaxText", "google-tpu", "maxtext"),
        ("JetStream", "google-tpu", "jetstream"),
        ("vLLM TPU (tpu-inference)", "google-tpu", "vllm-tpu"),
        ("SGLang-JAX (sgl-project/sglang-jax main @10f32e49)", "google-tpu", "sglang-jax"),
        ("NeMo 24.12", "nvidia-hopper", "nemo"),
        ("Megatron-LM core_r0.9", "nvidia-hopper", "megatron"),
        ("Megatron-Bridge 25.11", "nvidia-blackwell", "nemo"),
        ("some in-house engine", "nvidia-hopper", OTHER),
        ("", "nvidia-hopper", ""),
    ],
)
def test_stack_inferred_from_free_text(software, family, stack):
    assert infer_stack(software, family, stacks()) == stack


@pytest.mark.parametrize(
    ("software", "workload", "stack"),
    [
        ("NeuronX Distributed (Neuron SDK 2.21.0)", "inference", "nxdi"),
        ("NeuronX Distributed (Neuron SDK 2.21.0)", "training", "nxdt"),
        ("NeuronX NeMo Megatron (Neuron SDK 2.17.0)", "training", "nxdt"),
        ("Transformers Neuron (Neuron SDK 2.16.0)", "inference", "transformers-neuronx"),
        ("optimum-neuron 0.3.0 (Neuron SDK 2.24)", "training", "nxdt"),
        ("optimum-neuron 0.3.0 (Neuron SDK 2.24)", "inference", "nxdi"),
    ],
)
def test_stack_inference_knows_the_workload(software, workload, stack):
    assert infer_stack(software, "aws-neuron-v2", stacks(), workload) == stack


def test_every_family_has_default_stacks_and_they_run_there():
    t = stacks()
    for fam in efficiency_profiles():
        for wl in ("inference", "training"):
            d = default_stack(fam, wl, t)
            assert d != OTHER, (fam, wl)
            assert fam in t[d].families


def test_stack_option_errors_name_what_is_allowed():
    t = stacks()
    assert check_stack(None, "nvidia-hopper", "inference", t) == "trtllm"
    with pytest.raises(SiliconomicsError, match=r"allowed: .*trtllm"):
        check_stack("nope", "nvidia-hopper", "inference", t)
    with pytest.raises(SiliconomicsError, match="does not run on intel-gaudi"):
        check_stack("trtllm", "intel-gaudi", "inference", t)


def test_unmeasured_stack_inherits_the_default_and_says_so():
    fams = efficiency_profiles()
    ps = ProfileSet(families=fams)
    rp = resolve_profile(ps, "intel-gaudi", "vllm-gaudi")
    assert rp.basis == "inherited" and rp.profile == fams["intel-gaudi"]
    assert "no measurement of intel-gaudi with vllm-gaudi" in rp.note
    sp = StackProfile(
        family="intel-gaudi",
        stack="vllm-gaudi",
        factors={"memory_efficiency": 0.5},
        n_rows=4,
        provenance={"memory_efficiency": "test"},
    )
    ps2 = ProfileSet(families=fams, stacks={("intel-gaudi", "vllm-gaudi"): sp})
    rp2 = resolve_profile(ps2, "intel-gaudi", "vllm-gaudi")
    assert rp2.basis == "fitted" and rp2.profile.memory_efficiency == 0.5
    assert resolve_profile(ps2, "intel-gaudi", "optimum-habana").basis == "default"


def test_policy_three_rows_per_factor_and_bounds():
    plan = ("a", "b", "c")
    assert P.affordable(plan, 2) == ()
    assert P.affordable(plan, 3) == ("a",)
    assert P.affordable(plan, 8) == ("a", "b")
    assert P.affordable(plan, 30) == plan
    # a chip: rows of at least three sources, three rows per factor, its family's first factor
    assert P.chip_affordable(plan, 30, P.MIN_CHIP_SOURCES - 1) == ()
    assert P.chip_affordable(plan, 2, 5) == ()
    assert P.chip_affordable(plan, 30, 5) == plan[: P.CHIP_FACTORS]


def test_chip_fits_the_gemm_factors_its_rows_run():
    # TPU training fits both GEMM fractions at the family level; a chip whose rows are mostly
    # INT8 (v6e: five MLPerf GPT-3 INT8 rows, three BF16 MaxText rows) fits each format its
    # rows run (three rows each), not the 16-bit fraction alone
    plan = P.TRAIN_FIT_PLAN["google-tpu"]
    hi, lo = "train_gemm_efficiency", "train_lowp_gemm_efficiency"
    assert {hi, lo} <= set(plan)
    mixed = ["int8"] * 5 + ["bf16"] * 3
    assert P.chip_affordable(plan, 8, 5, mixed) == (hi, lo)
    assert P.chip_affordable(plan, 8, 5, ["int8"] * 6 + ["bf16"] * 2) == (lo,)
    assert P.chip_affordable(plan, 8, 5, ["bf16"] * 8) == (hi,)
    assert P.chip_affordable(plan, 5, 5, ["int8"] * 3 + ["bf16"] * 3)[:1] == (hi,)
    assert P.chip_affordable(plan, 8, 2, mixed) == ()
    # a plan with one GEMM factor of the pair keeps its first factor whatever the rows run
    hopper = P.TRAIN_FIT_PLAN["nvidia-hopper"]
    assert P.chip_affordable(hopper, 9, 5, ["bf16"] * 9) == hopper[: P.CHIP_FACTORS]


def test_collective_latency_is_read_per_ring_step_on_tori():
    assert P.latency_kind(["torus2d", "torus3d"]) == "per-step"
    assert P.latency_kind(["ring", "torus2d"]) == "per-step"
    assert P.latency_kind(["switch"]) == "per-collective"
    assert P.latency_kind(["torus2d", "switch"]) == "per-collective"
    assert P.latency_kind([]) == "per-collective"


def test_packaged_tpu_latency_comes_from_ring_fabrics_not_nvswitch():
    # google-tpu has no inference row on its default stack: its per-step collective latency is
    # the median of the fitted ring/torus families (Neuron), not NCCL's per-collective latency
    profs = efficiency_profiles()
    tpu, neuron = profs["google-tpu"], profs["aws-neuron-v2"]
    assert tpu.collective_latency_s == neuron.collective_latency_s
    assert tpu.collective_latency_s < profs["nvidia-hopper"].collective_latency_s
    assert "per-step fabrics" in tpu.provenance["collective_latency_s"]
    assert P.at_bound("collective_latency_s", 2e-6) == "lower"
    assert P.at_bound("train_comm_overlap", 1.0) == "upper"
    assert P.at_bound("gemm_efficiency", 0.5) is None
    for fam, params in {**P.FIT_PLAN, **P.TRAIN_FIT_PLAN}.items():
        assert fam in efficiency_profiles()
        assert all(p in P.BOUNDS and p in P.PRIORS for p in params)


def test_source_groups_are_documents_or_submissions():
    a = source_group(
        "github aws-neuron/aws-neuron-sdk @81ce03ae: about-neuron/benchmarks/inf2/x.csv "
        "(table row: Llama 3)"
    )
    b = source_group(
        "github aws-neuron/aws-neuron-sdk @81ce03ae: about-neuron/benchmarks/inf2/x.csv "
        "(table row: Llama 2)"
    )
    assert a == b
    m1 = source_group(
        "github mlcommons/inference_results_v4.1: closed/NVIDIA/results/H200-SXM-141GBx8_TRT/"
        "llama2-70b-99/Offline/performance/run_1/mlperf_log_summary.txt"
    )
    m2 = source_group(
        "github mlcommons/inference_results_v4.1: closed/NVIDIA/results/H200-SXM-141GBx8_TRT/"
        "mixtral-8x7b/Offline/performance/run_1/mlperf_log_summary.txt"
    )
    m3 = source_group(
        "github mlcommons/inference_results_v4.1: closed/NVIDIA/results/B200-SXM-180GBx1_TRT/"
        "llama2-70b-99/Server"
    )
    assert m1 == m2 != m3


def _res(i: int, family: str, stack: str, r: float, group: str | None = None) -> Residual:
    return Residual(
        id=f"r{i}",
        kind="inference",
        family=family,
        stack=stack,
        regime="max-throughput",
        model_class="dense",
        dtype="bf16",
        group=group or f"g{i}",
        log_ratio=r,
    )


def test_band_rules_fall_back_and_widen_with_reasons():
    rs = [_res(i, "nvidia-hopper", "trtllm", 0.1 * ((i % 5) - 2)) for i in range(20)]
    rs += [_res(100 + i, "intel-gaudi", "optimum-habana", 0.05 * (i - 1)) for i in range(3)]
    q = BandQuery(
        kind="inference",
        family="nvidia-hopper",
        stack="trtllm",
        regime="max-throughput",
        model_class="dense",
    )
    cell = band_for(rs, q)
    assert cell.n == 20 and cell.lo < 0 < cell.hi
    assert "cross-validated rows of its cell" in cell.reason
    # too few gaudi rows: the all-rows pool, widened, and saying why
    g = band_for(rs, BandQuery(**{**q.__dict__, "family": "intel-gaudi", "stack": "vllm-gaudi"}))
    assert g.basis == "all inference rows" and "no measurement of intel-gaudi" in g.reason
    # an unmeasured stack on a measured family: wider than the default stack's band
    un = band_for(rs, BandQuery(**{**q.__dict__, "stack_measured": False}))
    assert un.hi - un.lo == pytest.approx(WIDEN_STACK * (cell.hi - cell.lo))
    assert "no measurement of nvidia-hopper with trtllm" in un.reason
    # a floor on the width
    tight = [_res(i, "x", "y", 0.0) for i in range(30)]
    b = band_for(tight, BandQuery(**{**q.__dict__, "family": "x", "stack": "y"}))
    assert b.hi - b.lo >= 2 * FLOOR - 1e-12
    # orientation: a time is the inverse of a speed
    lo, hi = cell.of(2.0, "tpot_s")
    assert lo == pytest.approx(2.0 * math.exp(-cell.hi)) and hi == pytest.approx(
        2.0 * math.exp(-cell.lo)
    )


def test_a_stack_with_its_own_rows_fits_on_top_of_its_family(shared):
    # Three H100 rows relabelled as another stack: that stack gets its own factor (one per
    # three rows), shrunk toward the family's, and resolves as "fitted"; the family's own
    # default-stack rows are what the family profile is fitted on.
    from dataclasses import replace

    from siliconomics import resolve
    from siliconomics.calibrate.hierarchy import calibrate, fittable
    from siliconomics.validate.cv import make_samples

    rows, trains, cat, _ = resolve.measured_files([shared / "validation/measured.csv"])
    samples, _ = make_samples(rows, trains, cat)
    hop = [s for s in samples if s.family == "nvidia-hopper" and s.row.kind == "inference"]
    hop = [s for s in hop if fittable(s, cat.profiles["nvidia-hopper"], cat)]
    moved = [replace(s, stack="vllm") for s in hop[:3]]
    cal = calibrate([*moved, *hop[3:]], cat)
    sp = cal.stacks[("nvidia-hopper", "vllm")]
    assert sp.n_rows == 3 and list(sp.factors) == [P.STACK_FIT_PLAN["inference"][0]]
    lo, hi = P.BOUNDS[next(iter(sp.factors))]
    assert lo <= next(iter(sp.factors.values())) <= hi
    fam = [r for r in cal.records if r.family == "nvidia-hopper" and r.level == "family"]
    assert fam[0].workload == "inference" and fam[0].n_rows == len(hop) - 3
    ps = ProfileSet(families=cal.families, stacks=cal.stacks)
    assert resolve_profile(ps, "nvidia-hopper", "vllm").basis == "fitted"


def test_calibration_starts_from_the_op_level_factors():
    # End-to-end fits restart from the priors; op-level (measured-ops) values are kept.
    from siliconomics.calibrate.hierarchy import op_level_base

    packaged = efficiency_profiles()
    base = op_level_base(packaged)
    for fam in ("nvidia-ampere", "nvidia-hopper"):
        for k, text in packaged[fam].provenance.items():
            if text.startswith("fitted on shared/data/measured-ops"):
                assert getattr(base[fam], k) == getattr(packaged[fam], k), (fam, k)
    assert base["nvidia-hopper"].train_comm_overlap is None  # end-to-end: reset


def _sample(i: int, group: str, chip: str = "h100-sxm"):
    from siliconomics.calibrate.samples import Sample
    from siliconomics.catalog.registry import get_model
    from siliconomics.measured.rows import MeasuredRow

    row = MeasuredRow(
        id=f"r{i:03d}",
        kind="inference",
        scenario="offline",
        usable=True,
        model="llama-3.1-8b",
        chip=chip,
        n_chips=1,
        replicas=1,
        tp=1,
        pp=1,
        ep=1,
        dp=1,
        weight_dtype="fp8",
        act_dtype="fp8",
        kv_dtype="fp8",
        batch=None,
        input_len=float(128 * (1 + i % 7)),
        output_len=128.0,
        length_dist="fixed",
        metric="output_tokens_per_s",
        percentile="",
        value=1000.0,
        slo_ttft_s=None,
        slo_tpot_s=None,
        inferred_fields=(),
        source=group,
    )
    return Sample(
        row=row,
        model=get_model("llama-3.1-8b"),
        family="nvidia-hopper",
        stack="trtllm",
        stack_note="",
        group=group,
    )


def test_fit_cap_is_a_deterministic_spread_per_cell():
    from siliconomics.validate.cv import fit_subset

    rows = [_sample(i, "doc-a") for i in range(10)] + [_sample(20 + i, "doc-b") for i in range(2)]
    sub = fit_subset(rows, 3)
    assert fit_subset(list(reversed(rows)), 3) == [s for s in reversed(rows) if s in sub]
    a = sorted((s.row.input_len, s.row.id) for s in sub if s.group == "doc-a")
    assert len(a) == 3 and len([s for s in sub if s.group == "doc-b"]) == 2
    lens = sorted((s.row.input_len, s.row.id) for s in rows if s.group == "doc-a")
    assert a[0] == lens[0] and a[-1] == lens[-1]  # the extremes of the cell are kept
    assert fit_subset(rows, None) == rows


def test_folds_hold_out_whole_sources():
    from siliconomics.validate.cv import fold_of

    groups = [f"source {i}" for i in range(40)]
    assert all(fold_of(g, None) == g for g in groups)
    folds = {g: fold_of(g, 5) for g in groups}
    assert folds == {g: fold_of(g, 5) for g in groups}  # stable
    assert 3 <= len(set(folds.values())) <= 5


def test_width_scale_sets_coverage():
    from siliconomics.calibrate.bands import width_scale

    items = [(-0.1, 0.1, 0.01 * (i - 50)) for i in range(101)]
    s = width_scale(items, 0.8)
    covered = sum(abs(r) <= 0.1 * s + 1e-12 for _, _, r in items) / len(items)
    assert 0.79 <= covered <= 0.82
    # the scale travels with the residuals and widens every band of its kind
    rs = [_res(i, "nvidia-hopper", "trtllm", 0.1 * ((i % 5) - 2)) for i in range(20)]
    q = BandQuery(
        kind="inference",
        family="nvidia-hopper",
        stack="trtllm",
        regime="max-throughput",
        model_class="dense",
    )
    from dataclasses import replace

    b1 = band_for(rs, q)
    b2 = band_for([replace(r, scale=2.0) for r in rs], q)
    assert b2.hi - b2.lo == pytest.approx(2.0 * (b1.hi - b1.lo))
    assert "x2" in b2.reason


def test_measured_files_drop_rows_that_duplicate_a_loaded_shared_row(tmp_path, shared):
    # A corpus row named in vendor_overlap_with_shared.csv beside its file is dropped when the
    # shared row it duplicates is loaded too; a repeated id is dropped from the later file.
    import csv

    from siliconomics import resolve

    src = shared / "validation/measured.csv"
    with src.open(newline="", encoding="utf-8") as fh:
        rd = csv.DictReader(fh)
        fields = list(rd.fieldnames or [])
        rows = [r for r in rd if r["usable"] == "true"][:3]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    dup = {**rows[0], "id": "CORPUS-DUP"}
    again = dict(rows[1])
    keep = {**rows[2], "id": "CORPUS-NEW"}
    with (corpus / "c.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows([dup, again, keep])
    (corpus / resolve.OVERLAP_FILE).write_text(
        f"corpus_id,shared_id\nCORPUS-DUP,{rows[0]['id']}\n", encoding="utf-8"
    )
    got, _, _, dropped = resolve.measured_files([src, corpus / "c.csv"])
    ids = [r.id for r in got]
    assert "CORPUS-NEW" in ids and "CORPUS-DUP" not in ids
    assert ids.count(rows[1]["id"]) == 1
    assert sorted(dropped) == sorted(["CORPUS-DUP", rows[1]["id"]])
    alone, _, _, none = resolve.measured_files([corpus / "c.csv"])  # no shared file: kept
    assert "CORPUS-DUP" in [r.id for r in alone] and not none


def test_folds_run_in_any_order_or_process_give_the_same_report(shared):
    # The folds are independent (the memo of fits only saves time): a process pool's map
    # gives the report a sequential run gives.
    from siliconomics import resolve
    from siliconomics.validate.cv import cross_validate, make_samples

    rows, trains, cat, _ = resolve.measured_files([shared / "validation/measured.csv"])
    samples, _ = make_samples(rows, trains, cat)
    few = [s for s in samples if s.row.kind == "inference" and s.row.scenario != "server"][:9]

    def backwards(fn, jobs):
        return reversed([fn(j) for j in reversed(list(jobs))])

    a = cross_validate(few, cat, folds=3)
    b = cross_validate(few, cat, folds=3, mapper=backwards)
    assert a.to_json() == b.to_json()
    assert "grouped 3-fold" in a.method


def test_family_scales_are_set_per_family_and_checked_without_the_own_source():
    # Two families whose held-out rows need different widths: each gets its own scale (the
    # 80% quantile of its rows' needs, shrunk toward the kind's by K_SCALE pseudo-sources),
    # and a row's own scale is estimated without its source.
    from siliconomics.calibrate.bands import K_SCALE, Need, family_scales

    needs = [Need(kind="inference", family="a", group=f"a{i}", need=0.5) for i in range(10)]
    needs += [Need(kind="inference", family="b", group=f"b{i}", need=2.0) for i in range(10)]
    per_row, kinds, fams = family_scales(needs, 0.8)
    assert kinds["inference"] == pytest.approx(2.0)
    w = 10 / (10 + K_SCALE)
    assert fams[("inference", "a")] == pytest.approx(
        math.exp(w * math.log(0.5) + (1 - w) * math.log(2.0))
    )
    assert fams[("inference", "b")] == pytest.approx(2.0)
    assert fams[("inference", "a")] < 1.0 < fams[("inference", "b")]
    # a family of one source has no other source to set its scale: the kind's (without it)
    lone = [*needs, Need(kind="inference", family="c", group="c0", need=9.0)]
    per_row, _, fams = family_scales(lone, 0.8)
    assert per_row[-1] == pytest.approx(2.0)
    assert fams[("inference", "c")] > 2.0  # shipped: its own rows count


def test_band_uses_its_familys_scale_else_its_kinds():
    from dataclasses import replace

    rs = [_res(i, "nvidia-hopper", "trtllm", 0.1 * ((i % 5) - 2)) for i in range(20)]
    q = BandQuery(
        kind="inference",
        family="nvidia-hopper",
        stack="trtllm",
        regime="max-throughput",
        model_class="dense",
    )
    b1 = band_for(rs, q)
    b2 = band_for([replace(r, scale=2.0, family_scale=3.0) for r in rs], q)
    assert b2.hi - b2.lo == pytest.approx(3.0 * (b1.hi - b1.lo))
    assert "nvidia-hopper inference scale" in b2.reason
    # an unmeasured family: the kind's scale
    q2 = BandQuery(**{**q.__dict__, "family": "intel-gaudi", "stack": "optimum-habana"})
    b3 = band_for([replace(r, scale=2.0, family_scale=3.0) for r in rs], q2)
    b4 = band_for(rs, q2)
    assert b3.hi - b3.lo == pytest.approx(2.0 * (b4.hi - b4.lo))


def test_chip_level_fits_shrink_toward_the_family_and_apply_to_that_chip_only(shared):
    # A family with default-stack rows on two chips fits each chip's planned factors on its
    # own rows (one per three rows), shrunk toward the family's fitted values; the factors
    # land in the family profile's chip_factors and Catalog.profile_of applies them to that
    # chip only; a fitted stack's own factors win over them.
    from dataclasses import replace

    from siliconomics import resolve
    from siliconomics.calibrate.hierarchy import calibrate, fittable
    from siliconomics.validate.cv import make_samples

    rows, trains, cat, _ = resolve.measured_files([shared / "validation/measured.csv"])
    samples, _ = make_samples(rows, trains, cat)
    fam = "aws-neuron-v2"
    neu = [s for s in samples if s.family == fam and s.row.kind == "inference"]
    neu = [s for s in neu if fittable(s, cat.profiles[fam], cat)]
    # the shared file's Neuron rows come from few documents: spread them over three sources
    # per chip so that the chip level may fit (MIN_CHIP_SOURCES)
    neu = [replace(s, group=f"{s.row.chip}-{i % 3}") for i, s in enumerate(neu)]
    chips = {s.row.chip for s in neu}
    assert len(chips) >= P.MIN_CHIPS
    cal = calibrate(neu, cat)
    recs = [r for r in cal.records if r.level == "chip" and r.family == fam]
    assert {r.chip for r in recs} <= chips and recs
    plan = P.FIT_PLAN[fam]
    for r in recs:
        mine = [s for s in neu if s.row.chip == r.chip]
        n, n_src = len(mine), len({s.group for s in mine})
        assert r.params == P.chip_affordable(plan, n, n_src) and len(r.params) <= n // 3
        assert n_src >= P.MIN_CHIP_SOURCES and len(r.params) <= P.CHIP_FACTORS
        for p in r.params:
            assert P.BOUNDS[p][0] <= r.values[p] <= P.BOUNDS[p][1]
    prof = cal.families[fam]
    assert set(prof.chip_factors) == {r.chip for r in recs}
    fitted = cat.with_profiles(cal.families)
    r0 = recs[0]
    k = r0.params[0]
    own = fitted.profile_of(fitted.chip(r0.chip))
    assert getattr(own, k) == pytest.approx(r0.values[k])
    # another chip of the family without factors of its own keeps the family's value
    other = fitted.chip(r0.chip).model_copy(update={"id": "hypothetical-" + r0.chip})
    assert getattr(fitted.profile_of(other), k) == getattr(prof, k)
    # a stack that fitted the same factor: its value wins for that chip
    sp = StackProfile(family=fam, stack="nxdi", factors={k: 0.5}, n_rows=3, provenance={})
    rp = resolve_profile(ProfileSet(families=cal.families, stacks={(fam, "nxdi"): sp}), fam, "nxdi")
    assert k not in rp.profile.chip_factors.get(r0.chip, {})


def test_stack_plan_fits_the_gemm_factor_its_rows_run():
    """A non-default stack fits lowp_gemm_efficiency when most of its rows compute in a
    low-precision format (an FP8 stack never reads gemm_efficiency), else gemm_efficiency;
    training stacks keep their plan."""
    assert P.stack_plan("inference", ["fp8", "fp4", "bf16"]) == (
        "memory_efficiency",
        "lowp_gemm_efficiency",
    )
    assert P.stack_plan("inference", ["bf16", "fp8"]) == ("memory_efficiency", "gemm_efficiency")
    assert P.stack_plan("training", ["fp8"] * 4) == P.STACK_FIT_PLAN["training"]

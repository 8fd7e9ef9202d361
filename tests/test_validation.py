"""Validation against published measurements (shared/validation) and on user files."""

import csv
from pathlib import Path

import pytest

from siliconomics.api import validate
from siliconomics.errors import SiliconomicsError
from siliconomics.measured.rows import read_measured


def test_shared_file_meets_the_accuracy_targets(shared):
    # Issue target: median |error| <= 15% over usable inference rows, no family worse than
    # 30%. docs/VALIDATION.md records the measured figures (8.8% at the time of writing).
    r = validate(shared / "validation/measured.csv").value
    assert len(r.results) >= 40
    assert r.median_abs_pct <= 15.0
    # Per family only where there are >= 5 rows (issue 10's group criterion): families with
    # two or three rows fit no factor of their own (one factor per three rows) and are
    # predicted from their parent level; their honest error is the cross-validated one
    # (tests/test_cross_validation.py), not an in-sample ceiling.
    worst = {s.group: s.median_abs_pct for s in r.by_family if s.n >= 5}
    assert max(worst.values()) <= 30.0, worst
    # Rows that are not run say why.
    assert all(s.reason for s in r.skipped)


HEADER = [
    "id",
    "kind",
    "scenario",
    "usable",
    "model",
    "chip",
    "n_chips",
    "replicas",
    "tp",
    "pp",
    "ep",
    "cp",
    "dp",
    "weight_dtype",
    "act_dtype",
    "kv_dtype",
    "batch",
    "input_len",
    "output_len",
    "length_dist",
    "metric",
    "percentile",
    "value",
]


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=HEADER)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in HEADER})
    return path


def test_a_users_own_file_and_model(tmp_path):
    # A user's measurement of a catalog model, and of their own model defined in a
    # models.csv beside the file (same schema as shared/validation/models.csv).
    (tmp_path / "models.csv").write_text(
        "id,family,n_layers,d_model,n_heads,n_kv_heads,head_dim,d_ff,vocab_size,norm,"
        "activation,attention,source\n"
        "my-3b,mine,26,3072,24,8,128,8192,64000,rmsnorm,swiglu,gqa,our config\n"
    )
    base = {
        "kind": "inference",
        "scenario": "latency",
        "usable": "true",
        "chip": "h100-sxm",
        "n_chips": "1",
        "replicas": "1",
        "tp": "1",
        "pp": "1",
        "ep": "1",
        "dp": "1",
        "weight_dtype": "bf16",
        "act_dtype": "bf16",
        "kv_dtype": "bf16",
        "batch": "1",
        "input_len": "512",
        "output_len": "128",
        "length_dist": "fixed",
        "metric": "tpot_s",
        "percentile": "p50",
    }
    f = _write(
        tmp_path / "mine.csv",
        [
            {**base, "id": "a", "model": "llama-3.1-8b", "value": "0.0075"},
            {**base, "id": "b", "model": "my-3b", "value": "0.004"},
            {**base, "id": "c", "model": "my-3b", "scenario": "server", "value": "1"},
        ],
    )
    r = validate(f).value
    assert [x.row.id for x in r.results] == ["a", "b"]
    assert r.skipped[0].row.id == "c" and "serving simulator" in r.skipped[0].reason
    assert all(x.predicted > 0 for x in r.results)


def test_an_empty_mean_length_of_a_named_benchmark_set_is_filled_and_said(tmp_path):
    # SCHEMA.md leaves MLPerf llama3.1-8b's output mean empty (the reference gives characters),
    # but the benchmark generates exactly 128 tokens per sample (max_output_len, stop tokens
    # off): such a row is predicted, and says what filled it. A set with no published mean
    # (sharegpt-jetstream) is still refused with the reason.
    row = {
        "kind": "inference",
        "scenario": "offline",
        "usable": "true",
        "model": "llama-3.1-8b",
        "chip": "b200",
        "n_chips": "8",
        "replicas": "8",
        "tp": "1",
        "pp": "1",
        "weight_dtype": "fp4",
        "act_dtype": "fp4",
        "kv_dtype": "fp8",
        "batch": "6000",
        "input_len": "870.73",
        "metric": "output_tokens_per_s",
        "value": "136752",
    }
    f = _write(
        tmp_path / "m.csv",
        [
            {**row, "id": "cnndm", "length_dist": "cnndm-mlperf-llama3.1-8b"},
            {**row, "id": "sgpt", "length_dist": "sharegpt-jetstream", "input_len": ""},
        ],
    )
    rows = {r.id: r for r in read_measured(f)}
    assert rows["cnndm"].output_len == 128.0 and rows["cnndm"].input_len == 870.73
    assert rows["cnndm"].inferred_fields == ("output_len",)
    assert "FILLED: output_len = 128" in rows["cnndm"].notes
    assert rows["sgpt"].output_len is None and rows["sgpt"].input_len is None
    r = validate(f).value
    assert [x.row.id for x in r.results] == ["cnndm"] and r.results[0].predicted > 0
    assert [s.row.id for s in r.skipped] == ["sgpt"]
    assert "length unknown for length_dist 'sharegpt-jetstream'" in r.skipped[0].reason


def test_malformed_files_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,kind\nx,inference\n")
    with pytest.raises(SiliconomicsError, match="missing column"):
        read_measured(bad)
    with pytest.raises(SiliconomicsError, match="not found"):
        read_measured(tmp_path / "nope.csv")
    f = _write(
        tmp_path / "n.csv",
        [
            {
                "id": "z",
                "kind": "inference",
                "scenario": "latency",
                "usable": "true",
                "model": "llama-3.1-8b",
                "chip": "h100-sxm",
                "metric": "tpot_s",
                "value": "fast",
            }
        ],
    )
    (row,) = read_measured(f)
    assert "line 2 (id z): column 'value' must be a number, got 'fast'" in row.problem
    assert row.value != row.value  # NaN: never predicted or fitted


def _ok_row(i: str, **kw: str) -> dict[str, str]:
    r = {
        "id": i, "kind": "inference", "scenario": "offline", "usable": "true",
        "model": "llama-3.1-8b", "chip": "h100-sxm", "n_chips": "1", "tp": "1",
        "weight_dtype": "fp8", "act_dtype": "fp8", "kv_dtype": "fp8", "batch": "64",
        "input_len": "128", "output_len": "128", "metric": "output_tokens_per_s",
        "value": "10000",
    }  # fmt: skip
    return {**r, **kw}


def test_a_malformed_row_is_reported_and_the_others_still_run(tmp_path):
    """One bad number (or an empty value) does not stop a file: that row is reported as not
    run, naming the line, the column and what it held; the well-formed rows are predicted."""
    f = _write(
        tmp_path / "m.csv",
        [_ok_row("good"), _ok_row("nbatch", batch="n/a"), _ok_row("empty", value="")],
    )
    r = validate(f).value
    assert [x.row.id for x in r.results] == ["good"]
    why = {s.row.id: s.reason for s in r.skipped}
    assert "column 'batch' must be a number, got 'n/a'" in why["nbatch"]
    assert "line 4 (id empty): column 'value' is empty" in why["empty"]


def test_chip_and_model_ids_resolve_whatever_their_case(tmp_path):
    from siliconomics.resolve import canonical_id

    f = _write(tmp_path / "c.csv", [_ok_row("up", chip="H100-SXM", model="Llama-3.1-8B")])
    r = validate(f).value
    assert [x.row.id for x in r.results] == ["up"] and r.results[0].row.chip == "h100-sxm"
    assert canonical_id("H100_SXM", ["h100-sxm", "h100-pcie"]) == "h100-sxm"
    assert canonical_id("tpu-v7x", ["tpu-v7"]) == "tpu-v7x"  # not a spelling: refused later


def test_an_unreadable_models_csv_row_blocks_only_its_own_rows(tmp_path):
    f = _write(tmp_path / "m.csv", [_ok_row("known"), _ok_row("mine", model="my-model")])
    (tmp_path / "models.csv").write_text(
        "id,family,n_layers,d_model,n_heads,n_kv_heads,head_dim,d_ff,vocab_size\n"
        "my-model,x,thirty,4096,32,8,128,14336,128256\n"
    )
    r = validate(f).value
    assert [x.row.id for x in r.results] == ["known"]
    (s,) = r.skipped
    assert s.row.id == "mine" and "column 'n_layers' must be a number, got 'thirty'" in s.reason


def test_a_malformed_training_column_is_reported(tmp_path):
    from siliconomics.measured.training import read_training_rows

    p = tmp_path / "t.csv"
    p.write_text(
        "id,kind,scenario,usable,model,chip,metric,value,micro_batch\n"
        "t1,training,pretrain,true,llama-3.1-8b,h100-sxm,step_time_s,2.0,two\n"
    )
    (tr,) = read_training_rows(p)
    assert tr.micro_batch is None
    assert "line 2 (id t1): column 'micro_batch' must be a number, got 'two'" in tr.row.problem
    r = validate(p).value.training
    assert r is not None and not r.results
    assert "not read" in r.skipped[0].reason


def test_the_packaged_corpus_reads_without_problems():
    from siliconomics.cli.calibrate_cmds import corpus_files

    for p in corpus_files():
        bad = [r.id for r in read_measured(p) if r.problem]
        assert not bad, (p.name, bad[:5])


def test_trt_engine_rows_run_mistral_sliding_window_as_full_attention() -> None:
    """TensorRT-LLM's TensorRT-engine runtime (0.x) ran Mistral-7B-v0.1 with full attention
    (max_attention_window_size not set): such a row is predicted with the window dropped, which
    is slower at 20k-token prompts, and says so; another engine keeps the window."""
    from siliconomics import resolve
    from siliconomics.measured.rows import MeasuredRow
    from siliconomics.validate.run import engine_model, run_row

    cat = resolve.packaged()
    model = cat.model("mistral-7b-v0.1")
    assert model.sliding_window
    base = {
        "id": "T", "kind": "inference", "scenario": "offline", "usable": True,
        "model": "mistral-7b-v0.1", "chip": "h100-sxm", "n_chips": 1, "replicas": 1, "tp": 1,
        "pp": 1, "ep": 1, "dp": 1, "weight_dtype": "fp8", "act_dtype": "fp8", "kv_dtype": "fp8",
        "batch": None, "input_len": 20000, "output_len": 2000, "length_dist": "fixed",
        "metric": "output_tokens_per_s", "percentile": "", "value": 1268.0, "slo_ttft_s": None,
        "slo_tpot_s": None, "inferred_fields": (), "source": "test",
    }  # fmt: skip
    trt = MeasuredRow(**base, software="TensorRT-LLM 0.15.0 (TensorRT engine, trtllm-bench)")
    other = MeasuredRow(**base, software="vLLM 0.9.1")
    full, notes = engine_model(trt, model)
    assert full.sliding_window is None and notes and "full attention" in notes[0]
    assert engine_model(other, model) == (model, ())
    r_trt, r_win = run_row(trt, model, cat), run_row(trt, full, cat)
    assert r_trt.predicted == r_win.predicted  # the row's model is the full-attention one
    windowed = run_row(replace_model_row(trt), model, cat)
    assert windowed.predicted > 1.5 * r_trt.predicted
    assert any("full attention" in a for a in r_trt.assumptions)


def replace_model_row(row):  # a row of the same run on an engine that applies the window
    from dataclasses import replace

    return replace(row, software="TensorRT-LLM 1.3.0 (PyTorch, trtllm-bench)")


def test_a_measured_static_batch_that_the_memory_model_refuses_is_predicted_with_a_note() -> None:
    """Intel's Gaudi 2 page ran Llama-2-7B at batch 163 x (128 + 2048) tokens with an FP8 cache
    (86.6 GiB of KV and 6.5 GiB of weights on 96 GiB): it fit, so validation predicts it and
    says the memory model's margins (runtime reserve, whole-batch prefill activations) exceed
    what the run needed; ``estimate`` on the same layout still refuses, by how much."""
    from siliconomics import resolve
    from siliconomics.errors import DoesNotFitError
    from siliconomics.inference.estimate import estimate_static
    from siliconomics.measured.rows import MeasuredRow
    from siliconomics.ops.device import Device
    from siliconomics.parallel.plan import InferencePlan
    from siliconomics.validate.run import run_row

    cat = resolve.packaged()
    model = cat.model("llama-2-7b")
    row = MeasuredRow(
        id="T", kind="inference", scenario="static_batch", usable=True, model="llama-2-7b",
        chip="gaudi2", n_chips=1, replicas=1, tp=1, pp=1, ep=1, dp=1, weight_dtype="fp8",
        act_dtype="fp8", kv_dtype="fp8", batch=163, input_len=128, output_len=2048,
        length_dist="fixed", metric="output_tokens_per_s", percentile="", value=4791.0,
        slo_ttft_s=None, slo_tpot_s=None, inferred_fields=(), source="test", software="",
    )  # fmt: skip
    r = run_row(row, model, cat)
    assert r.predicted > 0
    assert any("the run fit" in a for a in r.assumptions)
    dev = Device(chip=cat.chip("gaudi2"), eff=cat.profiles["intel-gaudi"])
    plan = InferencePlan(weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
    with pytest.raises(DoesNotFitError, match="short by"):
        estimate_static(model, dev, plan, 163, 128, 2048)
    # a row that fits carries no such note
    small = run_row(replace_batch(row, 16), model, cat)
    assert not any("the run fit" in a for a in small.assumptions)


def replace_batch(row, batch):
    from dataclasses import replace

    return replace(row, batch=batch)


def test_row_table_numbers_keep_their_magnitude():
    """The validation table's short numbers: 14,101 is 14.1k, not 1.41k."""
    from siliconomics.report.tables import _short

    assert _short(14101.7) == "14.1k"
    assert _short(8034.85) == "8035"
    assert _short(2.5e6) == "2.5M"
    assert _short(4.0e14) == "400T"

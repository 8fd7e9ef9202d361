"""--stack, --profile, error bands and plan --robust on the commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from siliconomics.calibrate.bands import derate
from siliconomics.catalog.registry import get_efficiency
from siliconomics.cli import app

ROOT = Path(__file__).resolve().parents[1]
run = CliRunner().invoke


def _json(args: list[str]) -> dict:
    r = run(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_estimate_gives_low_high_beside_every_predicted_value():
    d = _json(["estimate", "--model", "llama-3.1-8b", "--chip", "h100-sxm", "--batch", "8"])
    for k in ("output_tokens_per_s", "ttft_s", "tpot_s", "usd_per_million_output_tokens"):
        assert d[f"{k}_low"] < d[k] < d[f"{k}_high"], k
    assert d["band"]["stack"] == "trtllm" and d["band"]["stack_basis"] == "default"
    assert d["band"]["level"] == 0.8


def test_unmeasured_stack_is_named_and_wider():
    # saxml has no measured row in the packaged calibration (vllm-gaudi and vllm-tpu now have
    # their own)
    base = ["estimate", "--model", "llama-3.1-8b", "--chip", "tpu-v6e", "--batch", "8"]
    dflt = _json(base)
    other = _json([*base, "--stack", "saxml"])
    assert other["band"]["stack"] == "saxml"
    assert other["band"]["stack_basis"] == "inherited"
    assert "no measurement of google-tpu with saxml" in other["band"]["stack_note"]
    w = other["output_tokens_per_s_high"] / other["output_tokens_per_s_low"]
    assert w > dflt["output_tokens_per_s_high"] / dflt["output_tokens_per_s_low"]
    # the same factors (inherited), never another stack's fitted numbers silently
    assert other["output_tokens_per_s"] == dflt["output_tokens_per_s"]


def test_bad_stack_is_a_one_line_error():
    r = run(app, ["estimate", "--model", "llama-3.1-8b", "--chip", "gaudi3", "--stack", "trtllm"])
    assert r.exit_code != 0
    assert "does not run on intel-gaudi" in str(r.exception) + r.output


def test_compare_marks_chips_not_distinguishable():
    d = _json(
        [
            "compare",
            "--model",
            "llama-3.1-8b",
            "--chip",
            "h100-sxm",
            "--chip",
            "h200-sxm",
            "--chip",
            "l4",
        ]
    )
    feas = [c for c in d["chips"] if c["feasible"]]
    assert feas and all("usd_per_m_output_low" in c and "band" in c for c in feas)
    marks = [c["distinguishable_from_cheapest"] for c in feas]
    assert marks.count(None) == 1  # the cheapest
    assert all(m in (True, False, None) for m in marks)


def test_train_json_has_bands():
    d = _json(
        [
            "train",
            "--model",
            "llama-3.1-8b",
            "--chip",
            "h100-sxm",
            "--chips",
            "64",
            "--plan",
            "tp=1,pp=1,zero=1,mb=1",
        ]
    )
    p = d["plans"][0]
    assert p["step_time_s_low"] < p["step_time_s"] < p["step_time_s_high"]
    assert p["tokens_per_s_low"] < p["tokens_per_s"] < p["tokens_per_s_high"]
    assert d["band"]["stack"] == "nemo"


def test_derate_scales_every_time_exactly():
    p = get_efficiency("nvidia-hopper")
    q = derate(p, 0.5)
    assert q.gemm_efficiency == p.gemm_efficiency * 0.5
    assert q.step_overhead_s == p.step_overhead_s / 0.5
    assert derate(p, 1.7) == derate(p, 1.0)


def test_calibrate_then_profile(tmp_path):
    src = ROOT / "examples/calibration/h100-h200-measured.csv"
    f = tmp_path / "mine.csv"
    shutil.copy(src, f)
    out = tmp_path / "cal"
    r = run(app, ["calibrate", str(f), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert (out / "nvidia-hopper.toml").exists() and (out / "bands.toml").exists()
    assert not (out / "intel-gaudi.toml").exists()  # unmeasured families keep the packaged
    assert "fitted on" in (out / "nvidia-hopper.toml").read_text()
    d = _json(["validate", str(f), "--profile", str(out)])
    assert all(x["low"] is not None for x in d["results"])
    d2 = _json(["estimate", "--model", "llama-3.1-8b", "--chip", "h100-sxm", "--profile", str(out)])
    assert d2["output_tokens_per_s_low"] < d2["output_tokens_per_s"]


def test_plan_robust_plans_on_the_pessimistic_end(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "chips: [h100-sxm, l4]\n"
        'disaggregation: "off"\n'
        "buckets: 1\n"
        "workloads:\n"
        "  - model: llama-3.1-8b\n"
        "    rate_rps: 10\n"
        "    input: {mean: 1000}\n"
        "    output: {mean: 200}\n"
        "    slo: {ttft: 2s, tpot: 50ms}\n"
    )
    base = _json(["plan", str(spec)])
    rob = _json(["plan", str(spec), "--robust"])
    assert rob["robust"]["enabled"] and not base["robust"]["enabled"]
    assert 0 < rob["robust"]["speed_factor_by_family"]["nvidia-hopper"] < 1
    assert rob["fleet"]["usd_per_hour"] >= base["fleet"]["usd_per_hour"]

"""Static-shape buckets (AWS Neuron): prompts run padded to their context bucket and each decode
step attends over its cache bucket (inference/buckets.py, docs/MODEL.md)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from siliconomics import api as si_api
from siliconomics import resolve
from siliconomics.cli import app
from siliconomics.errors import SiliconomicsError
from siliconomics.inference import buckets as bk
from siliconomics.inference.estimate import estimate_static
from siliconomics.inference.fast import static_point, static_times
from siliconomics.parallel.plan import InferencePlan
from siliconomics.validate.run import engine_shapes

AUTO = bk.Buckets(minimum=128)
run = CliRunner().invoke


def _no_buckets(dev):
    return dataclasses.replace(dev, eff=dev.eff.model_copy(update={"shape_bucket_min": None}))


@pytest.mark.parametrize(
    ("prompt", "seq_len", "want"),
    [(100, 300, 128), (1000, 1256, 1024), (1024, 2048, 1024), (10000, 11500, 11500)],
)
def test_automatic_prompt_bucket(prompt: float, seq_len: float, want: float) -> None:
    # powers of two from 128; the compiled maximum (prompt + output) is the last bucket
    got = bk.prompt_length(AUTO, np.asarray(float(prompt)), np.asarray(float(seq_len)))
    assert float(got) == want


def test_listed_buckets_and_beyond() -> None:
    b = bk.Buckets.explicit((2048, 4096, 10240, 12288), (12800,))
    got = bk.prompt_length(b, np.array([100.0, 8403.0, 12288.0, 20000.0]), np.array(0.0))
    assert got.tolist() == [2048.0, 10240.0, 12288.0, 20000.0]  # past the largest: unpadded
    assert float(bk.cache_length(b, np.asarray(9000.0), np.asarray(0.0))) == 12800.0


def test_decode_points_weigh_each_bucket_by_its_steps() -> None:
    lengths, w = bk.decode_points(AUTO, np.asarray(1000.0), np.asarray(5000.0), np.asarray(6001.0))
    assert w.sum() == pytest.approx(1.0)
    got = {float(L): float(x) for L, x in zip(lengths, w, strict=True) if x > 0}
    # contexts 1001..6000: 1024 holds 24 steps, 2048 1024, 4096 2048, the 6001 cap the rest
    assert got == pytest.approx(
        {1024.0: 24 / 5000, 2048.0: 1024 / 5000, 4096.0: 2048 / 5000, 6001.0: 1904 / 5000}
    )


def test_padded_prefill_costs_the_padded_prompt() -> None:
    m, dev = resolve.model("llama-3.1-8b"), resolve.device("trn2")
    plan = InferencePlan(tp=2)
    assert dev.eff.shape_bucket_min == 128
    padded = estimate_static(m, dev, plan, 4, 1000, 300)
    plain = _no_buckets(dev)
    assert float(padded.ttft_s) == pytest.approx(
        float(estimate_static(m, plain, plan, 4, 1024, 300).ttft_s), rel=1e-12
    )
    assert float(padded.tpot_s) > float(estimate_static(m, plain, plan, 4, 1000, 300).tpot_s)
    assert any("runs as 1024 tokens" in a for a in padded.assumptions)


def test_dynamic_shape_chips_are_unpadded() -> None:
    m, dev = resolve.model("llama-3.1-8b"), resolve.device("h100-sxm")
    assert dev.eff.shape_bucket_min is None
    est = estimate_static(m, dev, InferencePlan(), 1, 1000, 300)
    assert not any("static shapes" in a for a in est.assumptions)


def test_fast_paths_agree_with_estimate_static() -> None:
    m, dev, plan = resolve.model("llama-3.1-70b"), resolve.device("trn2"), InferencePlan(tp=16)
    B, I, O = (
        np.array([1.0, 4.0, 8.0]),
        np.array([300.0, 1000.0, 9000.0]),
        np.array([1.0, 200.0, 3000.0]),
    )
    ref = estimate_static(m, dev, plan, B, I, O)
    got = static_times(m, dev, plan, B, I, O)
    for f in ("ttft_s", "tpot_s", "e2e_s", "output_tokens_per_s"):
        np.testing.assert_allclose(getattr(got, f), getattr(ref, f), rtol=1e-12, atol=0.0)
    pt = static_point(m, dev, plan, 8.0, 9000.0, 3000.0)
    assert pt.tpot_s == pytest.approx(float(ref.tpot_s[2]), rel=1e-12)


def test_tutorial_rows_use_their_recipes_buckets() -> None:
    corpus = Path(str(resources.files("siliconomics.measured") / "corpus"))
    rows, _, _, _ = resolve.measured_files([corpus / "neuron-tutorials.csv"])
    shapes = engine_shapes(rows[0])
    assert shapes is not None
    assert shapes.context == (2048, 4096, 8192, 12288)
    assert shapes.generation == (2048, 4096, 8192, 12800)


def test_cli_buckets_option() -> None:
    base = ["estimate", "--model", "llama-3.3-70b", "--chip", "trn2", "--tp", "16"]
    lens = ["--input", "10000", "--output", "1500"]
    r = run(app, [*base, *lens, "--buckets", "2048,4096,8192,12288/12800", "--json"])
    assert r.exit_code == 0, r.output
    listed = json.loads(r.output)
    r = run(app, [*base, *lens, "--json"])
    auto = json.loads(r.output)
    # the listed 12,288 context bucket computes more prompt than the automatic 11,500 one
    assert listed["ttft_s"] > auto["ttft_s"]
    assert any("runs as 12288 tokens" in a for a in listed["assumptions"])


@pytest.mark.parametrize(
    ("chip", "value", "needle"),
    [
        ("trn2", "2048,4096", "expected CTX"),
        ("trn2", "a/b", "whole token counts"),
        ("trn2", "2048/", "give context and generation"),
        ("trn2", "0/12800", ">= 1 token"),
        ("h100-sxm", "2048/2048", "dynamic shapes"),
    ],
)
def test_cli_buckets_bad_input(chip: str, value: str, needle: str) -> None:
    args = ["estimate", "--model", "llama-3.1-8b", "--chip", chip, "--buckets", value]
    r = run(app, args)
    assert isinstance(r.exception, SiliconomicsError)  # the entry point prints it in one line
    assert needle in str(r.exception)


def test_buckets_need_static_mode() -> None:
    with pytest.raises(SiliconomicsError, match="--mode static only"):
        si_api.estimate("llama-3.1-8b", "trn2", mode="max-throughput", buckets=((2048,), (4096,)))


def test_cli_buckets_error_is_one_line() -> None:
    cmd = [sys.executable, "-m", "siliconomics.cli", "estimate", "--model", "llama-3.1-8b"]
    p = subprocess.run(
        [*cmd, "--chip", "trn2", "--buckets", "a/b"], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 2
    assert p.stderr.strip().startswith("error: --buckets:")
    assert len(p.stderr.strip().splitlines()) == 1

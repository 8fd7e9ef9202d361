"""CLI: every command runs, --json parses, bad input is one line on stderr with exit code 2."""

import json
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "siliconomics.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_chips_and_models_json():
    chips = json.loads(run("chips", "--json").stdout)
    assert {c["id"] for c in chips} >= {"h100-sxm", "trn2", "tpu-v6e", "mi300x", "gaudi3"}
    models = json.loads(run("models", "--json").stdout)
    ids = {m["id"] for m in models}
    assert {"llama-3.1-70b", "deepseek-v3", "mixtral-8x7b", "gpt-oss-120b"} <= ids


def test_show_chip_lists_sources():
    r = run("show", "h100-sxm")
    assert r.returncode == 0 and "989" in r.stdout and "vendor" in r.stdout


def test_estimate_json_has_breakdown_and_bound():
    r = run(
        "estimate",
        "--model",
        "llama-3.1-8b",
        "--chip",
        "h100-sxm",
        "--batch",
        "8",
        "--input",
        "512",
        "--output",
        "64",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["decode_bound"] in ("memory", "compute", "interconnect", "overhead")
    assert d["ttft_s"] > 0 and d["tpot_s"] > 0
    assert {o["op"] for o in d["ops"]} >= {"qkv_proj", "attention", "mlp_up", "lm_head"}


def test_compare_ranks_priced_chips_by_cost():
    r = run(
        "compare",
        "--model",
        "llama-3.1-8b",
        "--input",
        "512",
        "--output",
        "128",
        "--tpot",
        "50ms",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    rows = [c for c in json.loads(r.stdout)["chips"] if c["feasible"]]
    costs = [c["usd_per_m_output"] for c in rows if c["usd_per_m_output"] is not None]
    assert len(costs) >= 3 and costs == sorted(costs)
    assert all(c["tpot_s"] <= 0.05 + 1e-9 for c in rows)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("estimate", "--model", "llama-3.1-8b", "--chip", "h100"), "unknown chip 'h100'"),
        (("estimate", "--model", "llama-9", "--chip", "h100-sxm"), "unknown model 'llama-9'"),
        (("estimate", "--model", "llama-3.1-8b", "--chip", "h100-sxm", "--input", "-5"), "--input"),
        (
            (
                "estimate",
                "--model",
                "llama-3.1-8b",
                "--chip",
                "a100-sxm-80gb",
                "--act-dtype",
                "fp8",
                "--weights-dtype",
                "fp8",
            ),
            "no fp8 matrix support",
        ),
        (
            ("estimate", "--model", "llama-3.1-405b", "--chip", "h100-sxm", "--tp", "8"),
            "does not fit",
        ),
        (
            ("estimate", "--model", "llama-3.1-8b", "--chip", "h100-sxm", "--kv-dtype", "fp7"),
            "not a dtype",
        ),
        (("compare", "--model", "llama-3.1-8b", "--tpot", "fast"), "--tpot"),
        (("show", "nothing"), "unknown chip, model or profile"),
        (
            ("estimate", "--model", "llama-3.1-8b", "--chip", "h100-sxm", "--price", "h100-sxm=x"),
            "--price",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(args, needle):
    r = run(*args)
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr


def test_validate_last_line(shared):
    r = run("validate", str(shared / "validation/measured.csv"), "--quiet")
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("median_abs_pct_error=") and " rows=" in last

"""`siliconomics simulate`: runs, --json, exact request counts, traces, clear errors."""

import json
import sys
from types import SimpleNamespace

import pytest

from siliconomics.cli import main

BASE = ["--model", "llama-3.1-8b", "--chip", "h100-sxm"]


@pytest.fixture
def run(capsys, monkeypatch):
    """Run ``siliconomics simulate ARGS`` in this process (no interpreter start-up)."""
    monkeypatch.setenv("COLUMNS", "200")

    def go(*args: str) -> SimpleNamespace:
        monkeypatch.setattr(sys, "argv", ["siliconomics", "simulate", *args])
        code = 0
        try:
            main()
        except SystemExit as e:
            code = int(e.code or 0)
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    return go


def test_simulate_json_has_percentiles_cost_and_exact_count(run):
    r = run(
        *BASE,
        "--replicas",
        "2",
        "--rate",
        "8",
        "--requests",
        "321",
        "--ttft",
        "1s",
        "--tpot",
        "50ms",
        "--input",
        "lognormal:1000,0.8",
        "--output",
        "uniform:50,150",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["requests"] == 321
    assert d["ttft_s"]["p50"] <= d["ttft_s"]["p99"]
    assert d["slo_met"] in (True, False) and 0 <= d["goodput_fraction"] <= 1
    assert d["cost_usd"] > 0 and d["energy_j"] > 0 and d["pools"][0]["chips"] == 2


def test_simulate_table_and_trace_file(run, tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n0,100,10\n0.1,200,20\n")
    out = tmp_path / "events.json"
    r = run(*BASE, "--trace", str(trace), "--requests", "5", "--trace-out", str(out))
    assert r.returncode == 0, r.stderr
    assert "TTFT" in r.stdout and "Latency over 5 requests" in r.stdout
    events = json.loads(out.read_text())["traceEvents"]
    assert events and events[0]["ph"] == "X"


def test_named_trace_and_disaggregation(run):
    r = run(
        *BASE,
        "--trace",
        "azure-conv",
        "--rate",
        "4",
        "--requests",
        "200",
        "--prefill-chip",
        "h100-sxm",
        "--decode-chip",
        "trn2",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert [p["role"] for p in d["pools"]] == ["prefill", "decode"]
    assert d["kv_transfer_bytes"] > 0


def test_max_rate_and_min_replicas(run):
    r = run(
        *BASE,
        "--input",
        "500",
        "--output",
        "100",
        "--requests",
        "400",
        "--ttft",
        "500ms",
        "--tpot",
        "30ms",
        "--max-rate",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["rate_requests_per_s"] > 0 and d["result"]["slo_met"]
    r = run(
        *BASE,
        "--input",
        "500",
        "--output",
        "100",
        "--requests",
        "400",
        "--ttft",
        "500ms",
        "--tpot",
        "30ms",
        "--min-replicas-for",
        "20",
    )
    assert r.returncode == 0, r.stderr
    assert "fewest replicas" in r.stdout


def test_bad_input_is_one_line_exit_2(run):
    for args, msg in (
        (["--scheduler", "fifo"], "scheduler 'fifo'"),
        (["--router", "random"], "router 'random'"),
        (["--input", "zipf:2"], "allowed"),
        (["--trace", "nope"], "not a file and not a named trace"),
        (["--max-rate"], "at least one SLO"),
        (["--adp-balance", "9"], "TIMEOUT,WAIT"),
        (["--adp-balance", "0,3"], "TIMEOUT must be >= 1"),
        (["--adp-balance", "9,3", "--scheduler", "continuous"], "needs scheduler 'chunked'"),
        (["--graph-sizes", "1,x"], "--graph-sizes must be"),
        (["--graph-sizes", "0,4"], "--graph-sizes must be"),
        (["--graph-sizes", "99999999999999999999"], "from 1 to 1,048,576"),
        (["--multi-step", "0"], "--multi-step"),
    ):
        r = run(*BASE, "--requests", "3", *args)
        assert r.returncode == 2, (args, r.stdout)
        assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_engine_knobs_reach_the_pool(run):
    """--multi-step, --adp-balance and --graph-sizes land in the pool configuration and move
    the answer the way their mechanisms say (docs/SERVING.md)."""
    base = [*BASE, "--rate", "20", "--requests", "400", "--input", "1024", "--output", "64"]
    plain = json.loads(run(*base, "--scheduler", "continuous", "--json").stdout)
    multi = json.loads(
        run(*base, "--scheduler", "continuous", "--multi-step", "16", "--json").stdout
    )
    # prompts wait for the end of a 16-step decode round: first tokens come later
    assert multi["ttft_s"]["p50"] > plain["ttft_s"]["p50"]
    padded = json.loads(run(*base, "--graph-sizes", "256", "--json").stdout)
    free = json.loads(run(*base, "--json").stdout)
    # every decode step padded to 256 sequences costs more than the unpadded step
    assert padded["tpot_s"]["p50"] > free["tpot_s"]["p50"]
    adp = run(*base, "--dp", "2", "--adp-balance", "9,3", "--json")
    assert adp.returncode == 0, adp.stderr

"""Fleet planner: spec validation, the MILP's constraints, infeasibility reasons, training
plans and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from siliconomics import resolve
from siliconomics.catalog.registry import systems_for_chip
from siliconomics.errors import SiliconomicsError
from siliconomics.fleet.alternatives import frontier
from siliconomics.fleet.planner import _warnings, prepare
from siliconomics.fleet.result import Pool
from siliconomics.fleet.solve import _chips_of, solve_at
from siliconomics.fleet.spec import parse_spec
from siliconomics.fleet.training import plan_training
from siliconomics.fleet.workload import make_buckets, traffic
from siliconomics.resolve import load_spec, packaged

ROOT = Path(__file__).resolve().parents[1]
CHAT = {
    "model": "llama-3.1-8b",
    "rate_rps": 20,
    "input": {"mean": 800, "sigma": 0.9, "max": 8000},
    "output": {"mean": 200, "sigma": 0.6, "max": 1000},
    "slo": {"ttft": "2s", "tpot": "60ms", "percentile": 99},
}


def spec(**kw: object):
    raw = {"chips": ["l40s", "h100-sxm", "trn2", "tpu-v6e"], "workloads": [CHAT]}
    raw.update(kw)
    return parse_spec(raw)


@pytest.fixture(scope="module")
def chat_inputs():
    return prepare(spec(disaggregation="off"), packaged())


# --- spec --------------------------------------------------------------------------------


def test_unknown_field_names_it():
    with pytest.raises(SiliconomicsError, match=r"workloads\.0\.ratee"):
        parse_spec({"workloads": [{**CHAT, "ratee": 3}]})
    with pytest.raises(SiliconomicsError, match="'budget'"):
        parse_spec({"workloads": [CHAT], "budget": 3})


def test_bad_values_name_the_field():
    with pytest.raises(SiliconomicsError, match=r"slo\.tpot"):
        parse_spec({"workloads": [{**CHAT, "slo": {"tpot": "fast"}}]})
    with pytest.raises(SiliconomicsError, match="pricing"):
        parse_spec({"workloads": [CHAT], "pricing": "cheap"})
    with pytest.raises(SiliconomicsError, match="trace"):
        parse_spec({"workloads": [{"model": "llama-3.1-8b", "rate_rps": 1}]})


def test_unknown_chip_and_model_name_the_field():
    with pytest.raises(SiliconomicsError, match=r"'chips'.*unknown chip 'h100'.*h100-sxm"):
        prepare(spec(chips=["h100"]), packaged())
    with pytest.raises(SiliconomicsError, match=r"'availability'.*unknown chip"):
        prepare(spec(availability={"h100-sxxm": 8}), packaged())
    with pytest.raises(SiliconomicsError, match=r"workloads\.0\.model.*llama-3.1-8b"):
        prepare(spec(workloads=[{**CHAT, "model": "llama-3.1-8"}]), packaged())


def test_yaml_and_toml_specs_load_the_same(tmp_path):
    y = tmp_path / "s.yaml"
    y.write_text(
        "workloads:\n  - model: llama-3.1-8b\n    rate_rps: 2\n"
        "    input: {mean: 500}\n    output: {mean: 100}\n    slo: {tpot: 50ms}\n"
    )
    t = tmp_path / "s.toml"
    t.write_text(
        '[[workloads]]\nmodel = "llama-3.1-8b"\nrate_rps = 2\n'
        'input = {mean = 500}\noutput = {mean = 100}\nslo = {tpot = "50ms"}\n'
    )
    assert load_spec(y) == load_spec(t)
    assert load_spec(y).workloads[0].slo.tpot == pytest.approx(0.05)


def test_buckets_partition_the_requests():
    s = spec()
    t = traffic(s.workloads[0], seed=0)
    bs = make_buckets(s.workloads[0], t, 3)
    assert sum(b.share for b in bs) == pytest.approx(1.0)
    assert sum(b.rate_rps for b in bs) == pytest.approx(20.0)
    assert all(b.p_input >= b.mean_input * 0.9 for b in bs)
    assert [b.mean_input for b in bs] == sorted(b.mean_input for b in bs)


def test_trace_workload_takes_its_rate_from_arrivals(shared):
    tr = shared / "data/traces/splitwise_code.csv"
    s = parse_spec({"workloads": [{"model": "llama-3.1-8b", "trace": str(tr)}]})
    t = traffic(s.workloads[0], 0, resolve.traces(s)[str(tr)])
    assert len(t.input_len) > 8000
    assert 0.1 < t.rate_rps < 100


# --- the program ---------------------------------------------------------------------------


def test_fleet_buys_whole_nodes_and_serves_every_bucket(chat_inputs):
    b, s = solve_at(chat_inputs, 1.0, set(chat_inputs.offers))
    assert s is not None
    for chip, n in _chips_of(b, s).items():
        sizes = {o.node_chips for o in chat_inputs.offers[chip]}
        assert any(n % k == 0 for k in sizes), (chip, n, sizes)
    share = np.zeros(len(b.buckets))
    for x, r in zip(s.shares, b.problem.routes, strict=True):
        share[r.bucket] += x
    np.testing.assert_allclose(share, 1.0, atol=1e-6)
    # every pool has the replicas its assigned load needs at the utilisation limit
    load = np.zeros(len(b.pools))
    for x, r in zip(s.shares, b.problem.routes, strict=True):
        for k, ld in zip(r.pools, r.loads, strict=True):
            load[k] += x * b.problem.rates[r.bucket] * ld
    assert np.all(load <= s.replicas + 1e-6)


def test_node_sizes_come_from_the_systems_catalog(chat_inputs):
    for chip, offers in chat_inputs.offers.items():
        catalog = {sys.chips for sys in systems_for_chip(chip)}
        assert {o.node_chips for o in offers} <= catalog
    assert {o.node_chips for o in chat_inputs.offers["trn2"]} == {16}


def test_more_traffic_never_costs_less(chat_inputs):
    b, s = solve_at(chat_inputs, 1.0, set(chat_inputs.offers))
    b2 = replace(b.problem, rates=b.problem.rates * 3)
    from siliconomics.fleet.milp import solve

    s3 = solve(b2)
    assert s is not None and s3 is not None
    assert s3.usd_per_hour >= s.usd_per_hour
    assert s3.usd_per_hour <= 3 * s.usd_per_hour + 200  # whole nodes: at most ~linear


def test_frontier_trades_cost_for_latency(chat_inputs):
    pts = frontier(chat_inputs)
    assert len(pts) >= 2
    costs = [p.usd_per_hour for p in pts]
    tpots = [p.tpot_s for p in pts]
    assert costs == sorted(costs)
    assert tpots == sorted(tpots, reverse=True)


# --- infeasible specs say why --------------------------------------------------------------


def test_impossible_slo_names_the_workload_and_closest_chip():
    s = spec(workloads=[{**CHAT, "slo": {"tpot": "1ms"}}], disaggregation="off")
    inp = prepare(s, packaged())
    from siliconomics.fleet.solve import explain_infeasible

    b, sol = solve_at(inp, 1.0, set(inp.offers))
    assert sol is None
    msg = explain_infeasible(inp, b)
    assert "workloads.0.slo" in msg and "tpot 1 ms" in msg and "best TPOT" in msg


@pytest.mark.parametrize(
    ("limit", "words"),
    [
        ({"budget_usd_per_hour": 1.0}, "budget_usd_per_hour 1 is below"),
        ({"power_cap_kw": 0.2}, "power_cap_kw 0.2 is below"),
        ({"availability": {"l40s": 1, "h100-sxm": 8, "trn2": 16, "tpu-v6e": 8}}, "availability"),
    ],
)
def test_binding_limit_is_named(limit, words):
    from siliconomics.fleet.solve import explain_infeasible

    s = spec(disaggregation="off", **{**limit})
    if "availability" in limit:  # traffic no allowed set of chips can carry
        s = spec(disaggregation="off", workloads=[{**CHAT, "rate_rps": 3000}], **limit)
    inp = prepare(s, packaged())
    b, sol = solve_at(inp, 1.0, set(inp.offers))
    assert sol is None
    assert words in explain_infeasible(inp, b)


def test_cross_vendor_split_warns():
    def pool(role: str, chip: str, vendor: str) -> Pool:
        return Pool(
            workload="w",
            chip=chip,
            vendor=vendor,
            system="x",
            role=role,
            tp=1,
            pp=1,
            batch_limit=1,
            replicas=1,
            chips=1,
            usd_per_chip_hour=1,
            utilisation=0.5,
            buckets={},
            watts=1,
        )

    w = _warnings([pool("prefill", "trn2", "AWS"), pool("decode", "h100-sxm", "NVIDIA")], ())
    assert len(w) == 1 and "AWS" in w[0] and "NVIDIA" in w[0]
    assert (
        _warnings([pool("prefill", "h100-sxm", "NVIDIA"), pool("decode", "h200-sxm", "NVIDIA")], ())
        == []
    )


# --- training ----------------------------------------------------------------------------


def fake_search(model, chip, n, *, seq_len, global_batch_seqs, top):
    """A stand-in layout search: a fixed per-chip speed with 90% scaling efficiency per
    doubling (the planner's logic is under test here, not the training model)."""
    per_chip = {"h100-sxm": 3000.0, "trn2": 2500.0, "a100-sxm-80gb": 1200.0}[chip.id]
    eff = 0.9 ** np.log2(max(n / 8, 1))
    tps = per_chip * n * eff
    return [
        SimpleNamespace(
            tokens_per_s=tps,
            step_time_s=seq_len * global_batch_seqs / tps,
            mfu=0.4 * eff,
            plan=SimpleNamespace(dp=n, tp=1, pp=1),
        )
    ]


def train_spec(days: float):
    return parse_spec(
        {
            "chips": ["h100-sxm", "trn2", "a100-sxm-80gb"],
            "training": {"model": "llama-3.1-8b", "tokens": 1e11, "deadline_days": days},
        }
    )


def test_training_picks_cheapest_cluster_within_deadline():
    r = plan_training(train_spec(14), packaged(), search=fake_search)
    assert r.best.days <= 14
    assert r.best.usd_total == min(o.usd_total for o in r.per_chip)
    # a longer deadline lets a smaller (better-scaling) cluster do it: never more expensive
    r2 = plan_training(train_spec(60), packaged(), search=fake_search)
    assert r2.best.usd_total <= r.best.usd_total
    assert r2.best.chips <= r.best.chips


def test_training_deadline_too_short_says_so():
    with pytest.raises(SiliconomicsError, match=r"training\.deadline_days.*fastest"):
        plan_training(train_spec(0.01), packaged(), search=fake_search)


# --- CLI ---------------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "siliconomics.cli", "plan", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_cli_plan_json_and_html(tmp_path):
    html = tmp_path / "r.html"
    r = cli("examples/disaggregated.yaml", "--json", "--html", str(html))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    f = d["fleet"]
    assert f["usd_per_hour"] > 0 and f["chips"] and f["pools"]
    assert d["takeaway"].startswith("Cheapest fleet")
    assert f["latency"][0]["source"].startswith("simulation")
    assert f["latency"][0]["meets_slo"]
    page = html.read_text()
    assert "Cost vs latency" in page and "Sensitivity" in page and d["takeaway"][:40] in page


def test_cli_bad_spec_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("workloads:\n  - model: llama-3.1-8b\n    rate: 3\n")
    r = cli(str(bad))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "workloads.0" in r.stderr


def test_every_spec_field_is_documented():
    from siliconomics.fleet.spec import PlanSpec, TrainingJob, Workload

    doc = (ROOT / "docs/PLANNING.md").read_text()
    for schema in (PlanSpec, Workload, TrainingJob):
        for name in schema.model_fields:
            assert f"`{name}`" in doc, f"{schema.__name__}.{name} missing from docs/PLANNING.md"


def test_training_example_with_the_training_model():
    r = plan_training(load_spec(ROOT / "examples/training-budget.yaml"), packaged())
    assert r.best.days <= r.deadline_days
    assert [o.usd_total for o in r.per_chip] == sorted(o.usd_total for o in r.per_chip)
    # the cost is hours x chips x price, and the hours follow from the searched speed
    b = r.best
    assert b.usd_total == pytest.approx(b.usd_per_hour * r.tokens / b.tokens_per_s / 3600)

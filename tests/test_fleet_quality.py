"""The planner reproduces two published fleet results qualitatively (direction and size).

1. Mélange (Griggs et al. 2024, arXiv:2404.14527): for mixed request lengths, a fleet that
   buckets requests by length and mixes GPU types is cheaper than the best single GPU type
   (the paper: up to 51% on its mixed data set, 9-77% across settings; Llama-2-7B on L4, A10G,
   A100, H100 single-GPU instances, TPOT target 120 ms). Here: Llama-2-7B on L4, A100 and
   H100 as single-GPU instances priced from RunPod's on-demand list (L4 0.78, A100 SXM 2.45,
   H100 SXM 4.76 USD/h, March 2026, https://deploybase.ai/articles/runpod-gpu-pricing), the
   same 120 ms TPOT target. Stated size: the mixed fleet is at least 5% cheaper (the model
   gives about 14% at 30 requests/s with the calibration of
   2026-11-29; the test tries 25, 30 and 35 requests/s, see its docstring). The saving comes from Mélange's "finer-grained
   scaling" finding (a cheap L4 absorbs the short-prompt remainder instead of one more H100);
   unlike the paper, the model never finds the L4 the cheapest per request for any bucket at
   these prices (H100 is ~2.5x cheaper per short request), so the size is below the paper's.
2. Splitwise (Patel et al. 2024, ISCA, arXiv:2311.18677): splitting prefill and decode onto
   separate machines beats co-located serving where the phases have different bottlenecks
   (long compute-bound prompts, short memory-bound answers: its coding trace): 1.4x the
   throughput at 20% lower cost, or 2.35x the throughput at the same cost and power. Here:
   Llama-3.1-70B on H100 nodes with code-trace-like lengths (2,048-token prompts, 28-token
   answers, the trace's means) under TTFT 2 s / TPOT 50 ms; at equal traffic the co-located
   fleet costs 1.3x-4x the split one (the model gives about 2x), i.e. the split serves
   1.3x-4x the traffic per dollar.
"""

from __future__ import annotations

import pytest

from siliconomics.fleet.planner import prepare
from siliconomics.fleet.solve import _chips_of, solve_at
from siliconomics.fleet.spec import parse_spec
from siliconomics.resolve import packaged

MELANGE = {
    "chips": ["l4", "a100-sxm-80gb", "h100-sxm"],
    "prices": {"l4": 0.78, "a100-sxm-80gb": 2.45, "h100-sxm": 4.76},
    "instance_chips": {"l4": 1, "a100-sxm-80gb": 1, "h100-sxm": 1},
    "disaggregation": "off",
    "buckets": 4,
    "workloads": [
        {
            "model": "llama-2-7b",
            "rate_rps": 30,
            "input": {"mean": 1500, "sigma": 1.3, "max": 3800},
            "output": {"mean": 200, "sigma": 0.8, "max": 1000},
            "slo": {"tpot": "120ms", "percentile": 99},
        }
    ],
}


def _melange_at(rate: float):
    spec = {**MELANGE, "workloads": [{**MELANGE["workloads"][0], "rate_rps": rate}]}
    inp = prepare(parse_spec(spec), packaged())
    b, mixed = solve_at(inp, 1.0, set(inp.offers))
    assert mixed is not None
    singles = {}
    for chip in inp.offers:
        _, s = solve_at(inp, 1.0, {chip})
        if s is not None:
            singles[chip] = s.usd_per_hour
    return b, mixed, min(singles.values()), singles


def test_melange_mixed_fleet_beats_best_single_gpu_type():
    """The finer-grained-scaling saving exists where the best single type's fleet has a
    remainder to round up; where its node count happens to fit the traffic exactly there is
    none. Which rates those are moves with the calibration, so three rates are tried: the mixed
    fleet is never dearer than the best single type, and at one of them at least 5% cheaper,
    with a minority slice of some bucket on the cheap GPU."""
    savings = []
    for rate in (25, 30, 35):
        b, mixed, best_single, singles = _melange_at(rate)
        assert mixed.usd_per_hour <= best_single * (1 + 1e-9), (rate, mixed.usd_per_hour, singles)
        if len(_chips_of(b, mixed)) < 2 or mixed.usd_per_hour > 0.95 * best_single:
            continue
        l4_shares = [
            float(x)
            for x, r in zip(mixed.shares, b.problem.routes, strict=True)
            if x > 1e-6 and b.pools[r.pools[0]][0].chip == "l4"
        ]
        if l4_shares and max(l4_shares) < 0.5:
            savings.append((rate, 1 - mixed.usd_per_hour / best_single))
    assert savings, "no rate where a mixed fleet is >= 5% cheaper with the L4 taking a slice"


SPLITWISE = {
    "chips": ["h100-sxm"],
    "workloads": [
        {
            "model": "llama-3.1-70b",
            "rate_rps": 20,
            "input": {"mean": 2048, "sigma": 0.8, "max": 7437},
            "output": {"mean": 28, "sigma": 0.8, "max": 250},
            "slo": {"ttft": "2s", "tpot": "50ms", "percentile": 99},
        }
    ],
}


@pytest.fixture(scope="module")
def split_inputs():
    return prepare(parse_spec({**SPLITWISE, "disaggregation": "auto"}), packaged())


def test_splitwise_phase_split_beats_colocated_at_equal_traffic(split_inputs):
    chips = set(split_inputs.offers)
    _, colo = solve_at(split_inputs, 1.0, chips, disagg=False)
    b, split = solve_at(split_inputs, 1.0, chips, colocated=False)
    assert colo is not None and split is not None
    ratio = colo.usd_per_hour / split.usd_per_hour
    assert 1.3 <= ratio <= 4.0, ratio
    roles = {b.pools[k][0].role for k, n in enumerate(split.replicas) if n > 0}
    assert roles == {"prefill", "decode"}


def test_splitwise_no_gain_when_phases_look_alike():
    """Control: short prompts and long answers (decode-bound throughout) leave little for a
    split to win; the split fleet is never much cheaper there."""
    wl = {
        **SPLITWISE["workloads"][0],
        "input": {"mean": 200, "sigma": 0.5},
        "output": {"mean": 800, "sigma": 0.5},
    }
    inp = prepare(parse_spec({**SPLITWISE, "workloads": [wl]}), packaged())
    chips = set(inp.offers)
    _, colo = solve_at(inp, 1.0, chips, disagg=False)
    _, split = solve_at(inp, 1.0, chips, colocated=False)
    assert colo is not None and split is not None
    assert colo.usd_per_hour / split.usd_per_hour < 1.3

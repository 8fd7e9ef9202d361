"""The fleet's co-located grid computes only the TTFT of the SLO-percentile prompts (not
their decode steps): every array equals, bit for bit, what one estimate over both rows gave
(``chip_grid_reference``, the grid's construction before this shortcut), refusals and their
reasons included."""

from __future__ import annotations

import numpy as np
import pytest

from siliconomics import resolve
from siliconomics.fleet.candidates import chip_grid, chip_grid_reference
from siliconomics.fleet.spec import parse_spec
from siliconomics.fleet.workload import make_buckets, traffic

WORKLOADS = [
    ("llama-3.1-8b", 800, 0.9, 8000, 200),
    ("llama-3.1-70b", 6000, 0.5, 32000, 300),  # long prompts: some layouts refuse row 1 only
    ("mixtral-8x7b", 2000, 1.0, 30000, 400),
    ("llama-3.1-70b", 30000, 0.8, 120000, 300),  # percentile prompts that do not fit: refusals
]


@pytest.mark.parametrize("chip", ["h100-sxm", "l4", "a100-sxm-80gb", "tpu-v5e", "trn2"])
@pytest.mark.parametrize("wl", WORKLOADS, ids=[w[0] for w in WORKLOADS])
def test_grid_equals_the_two_row_estimate(chip, wl) -> None:  # type: ignore[no-untyped-def]
    model_id, mean_in, sigma, max_in, mean_out = wl
    spec = parse_spec(
        {
            "workloads": [
                {
                    "model": model_id,
                    "rate_rps": 5,
                    "input": {"mean": mean_in, "sigma": sigma, "max": max_in},
                    "output": {"mean": mean_out, "sigma": 0.6, "max": 4 * mean_out},
                    "slo": {"ttft": "2s", "tpot": "60ms", "percentile": 99},
                }
            ]
        }
    )
    w = spec.workloads[0]
    buckets = make_buckets(w, traffic(w, spec.seed), spec.buckets)
    model, dev = resolve.model(model_id), resolve.device(chip)
    got, ref = chip_grid(model, dev, w, buckets), chip_grid_reference(model, dev, w, buckets)
    assert got.plans == ref.plans
    assert got.reason == ref.reason
    for name in ("cap_rps", "ttft_s", "ttft_mean_s", "tpot_s", "watts", "bound"):
        a, b = getattr(got, name), getattr(ref, name)
        assert a.shape == b.shape, name
        assert np.array_equal(a, b), name

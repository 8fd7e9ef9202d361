"""The fleet's co-located grid computes only the TTFT of the SLO-percentile prompts (not
their decode steps): every array equals, bit for bit, what one estimate over both rows gave
(the grid's construction before this shortcut), refusals and their reasons included."""

from __future__ import annotations

import numpy as np
import pytest

from siliconomics import resolve
from siliconomics.errors import SiliconomicsError
from siliconomics.fleet.candidates import ChipGrid, chip_grid
from siliconomics.fleet.spec import parse_spec
from siliconomics.fleet.workload import make_buckets, traffic
from siliconomics.inference.estimate import estimate_max_throughput
from siliconomics.search.assess import assess
from siliconomics.search.compare import BATCH_LADDER, candidate_plans


def _reference(model, dev, w, buckets) -> ChipGrid:  # type: ignore[no-untyped-def]
    """chip_grid as it was: one estimate_max_throughput call over both rows per layout."""
    I = np.array([[b.mean_input for b in buckets], [b.p_input for b in buckets]])[:, :, None]
    O = np.array([[b.mean_output for b in buckets]] * 2, dtype=np.float64)[:, :, None]
    full = (2, len(buckets), len(BATCH_LADDER))
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("cap", "ttft", "mean", "tpot", "w", "b")}
    plans, reason = [], ""
    for plan in candidate_plans(model, dev, w.weights_dtype, w.act_dtype, w.kv_dtype):
        try:
            est = estimate_max_throughput(model, dev, plan, I, O, batch_limit=BATCH_LADDER)
        except SiliconomicsError as e:
            reason = str(e)
            continue
        a = assess(est)
        out["cap"].append(np.broadcast_to(est.output_tokens_per_s, full)[0] / O[0])
        out["ttft"].append(np.broadcast_to(est.ttft_s, full)[1])
        out["mean"].append(np.broadcast_to(est.ttft_s, full)[0])
        out["tpot"].append(np.broadcast_to(est.tpot_s, full)[0])
        out["w"].append(np.broadcast_to(a.watts_per_chip, full)[0])
        out["b"].append(np.broadcast_to(est.decode_bound, full)[0])
        plans.append(plan)
    st = {k: np.stack(v) if v else np.zeros((0, *full[1:])) for k, v in out.items()}
    return ChipGrid(
        workload=w.label,
        chip=dev.chip.id,
        plans=tuple(plans),
        cap_rps=st["cap"],
        ttft_s=st["ttft"],
        ttft_mean_s=st["mean"],
        tpot_s=st["tpot"],
        watts=st["w"],
        bound=st["b"],
        reason="" if plans else reason or "no layout fits",
    )


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
    got, ref = chip_grid(model, dev, w, buckets), _reference(model, dev, w, buckets)
    assert got.plans == ref.plans
    assert got.reason == ref.reason
    for name in ("cap_rps", "ttft_s", "ttft_mean_s", "tpot_s", "watts", "bound"):
        a, b = getattr(got, name), getattr(ref, name)
        assert a.shape == b.shape, name
        assert np.array_equal(a, b), name

"""Fit the custom (one-/two-shot) all-reduce factors to a published latency table.

Two tables, one per family that has one:

* H100 (:data:`H100`): the benchmark in the description of sgl-project/sglang pull request
  2904 ("optimize custom allreduce kernel", 2025-01-15): TensorRT-LLM-derived custom
  all-reduce, bf16, TP 2/4/8 on one HGX H100 node, 512 B to 1 MiB, measured without CUDA
  graphs.
* MI300X (:data:`MI300X`): vLLM's custom all-reduce on MI300X (xGMI mesh), fp16, from the
  kernel benchmarks of the QuickReduce pull requests: TP 2 the "vllm cr" column of
  ROCm/aiter pull request 801 (2025-08-11), TP 4 the "baseline" column (the custom
  all-reduce QuickReduce is compared with) of vllm-project/vllm pull request 19744
  (2025-06-17); 2 KiB to 1 MiB. No TP 8 table is published.
* MI355X (:data:`MI355X`): vLLM's custom all-reduce at TP 8, the "before" column of
  vllm-project/vllm pull request 39080 (2026-04-06), 24 KiB to 1.5 MiB.

The fit chooses ``custom_allreduce_latency_s`` (per-call floor) and
``custom_allreduce_efficiency`` (fraction of the scale-up bandwidth) minimising the squared
log error of :func:`siliconomics.parallel.collectives.all_reduce` restricted to the custom
algorithms, with the algorithm chosen per size as the stack does. Pure: the data are
constants below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from ..ops.device import Device
from ..parallel.collectives import all_reduce

F = NDArray[np.float64]

CUSTOM = ("one_shot", "two_shot")
_KIB = 1024


@dataclass(frozen=True, kw_only=True)
class LatencyTable:
    """Published custom all-reduce latencies: group size -> (message bytes, microseconds)."""

    chip_id: str
    source: str
    latency_us: dict[int, tuple[tuple[float, float], ...]]


H100 = LatencyTable(
    chip_id="h100-sxm",
    source="https://github.com/sgl-project/sglang/pull/2904 (H100, custom all-reduce, TP "
    "2/4/8, 512 B - 1 MiB, no CUDA graph)",
    latency_us={
        n: tuple(zip((512, 4096, 32768, 262144, 524288, 1048576), v, strict=True))
        for n, v in {
            2: (3.7, 3.9, 4.5, 7.9, 12.5, 19.9),
            4: (4.8, 3.7, 4.8, 13.9, 20.2, 31.1),
            8: (5.9, 5.7, 7.8, 16.7, 22.1, 33.8),
        }.items()
    },
)
MI300X = LatencyTable(
    chip_id="mi300x",
    source="vLLM custom all-reduce on MI300X, fp16: TP 2 https://github.com/ROCm/aiter/pull/801 "
    "('vllm cr'), TP 4 https://github.com/vllm-project/vllm/pull/19744 ('baseline'); "
    "2 KiB - 1 MiB",
    latency_us={
        2: tuple(
            (k * _KIB, us)
            for k, us in (
                (4, 7.07), (8, 7.58), (16, 7.53), (32, 7.30), (64, 7.66), (128, 8.70),
                (256, 11.45), (512, 17.13), (1024, 28.15),
            )
        ),
        4: tuple(
            (k * _KIB, us)
            for k, us in ((2, 7.18), (16, 7.26), (32, 7.58), (256, 14.39), (512, 14.65),
                          (1024, 22.91))
        ),
    },
)  # fmt: skip
MI355X = LatencyTable(
    chip_id="mi355x",
    source="vLLM custom all-reduce on MI355X, bf16, TP 8: the 'vllm/us' column (vLLM before "
    "the change) of https://github.com/vllm-project/vllm/pull/39080 (2026-04-06), "
    "(tokens, 3072) buffers of 24 KiB - 1.5 MiB",
    latency_us={
        8: tuple(
            (t * 3072 * 2, us)
            for t, us in ((4, 6.3), (8, 6.7), (16, 7.6), (32, 10.0), (64, 13.1), (128, 16.0),
                          (256, 24.2))
        ),
    },
)  # fmt: skip
TABLES = {"nvidia-hopper": H100, "amd-cdna3": MI300X, "amd-cdna4": MI355X}
"""the table each family's custom all-reduce factors are fitted on"""
EFFICIENCY_FROM = {"amd-cdna3": "amd-cdna4"}
"""families whose bandwidth factor comes from another family's table. MI300X's tables stop at
TP 4, and on the xGMI mesh the fraction of link bandwidth the custom kernel reaches falls as
the group grows (MI300X: about 78% of one link at TP 2, 52% of three at TP 4; MI355X: 27% of
seven at TP 8), so a TP 2/4 fit extrapolated along the link count would put TP 8 on MI300X
faster than the measured TP 8 on MI355X, whose links are faster. TP 8, where MI300X serves
nearly every large model, takes the CDNA TP 8 measurement; the MI300X tables set the latency
floor from their small messages (:data:`LATENCY_ROWS_MAX_BYTES`)."""
LATENCY_ROWS_MAX_BYTES = 64 * _KIB


@dataclass(frozen=True, kw_only=True)
class CustomAllReduceFit:
    latency_s: float
    efficiency: float
    median_abs_pct: float
    rows: int


def _with(dev: Device, x: F) -> Device:
    eff = dev.eff.model_copy(
        update={"custom_allreduce_latency_s": x[0] * 1e-6, "custom_allreduce_efficiency": x[1]}
    )
    return Device(chip=dev.chip, eff=eff)


def measured(table: LatencyTable = H100) -> F:
    return np.concatenate([np.array([us for _, us in v]) * 1e-6 for v in table.latency_us.values()])


def predict(dev: Device, table: LatencyTable = H100) -> F:
    """Model latency for every (group size, message size) of the table, in table order."""
    return np.concatenate(
        [
            all_reduce(dev, np.array([b for b, _ in v]), n, algorithms=CUSTOM).time
            for n, v in table.latency_us.items()
        ]
    )


def _rows_up_to(table: LatencyTable, max_bytes: float) -> LatencyTable:
    rows = {n: tuple(r for r in v if r[0] <= max_bytes) for n, v in table.latency_us.items()}
    return replace(table, latency_us={n: v for n, v in rows.items() if v})


def fit_family(family: str, device: Callable[[str], Device]) -> CustomAllReduceFit:
    """The custom all-reduce factors of ``family`` from its table (:data:`TABLES`; ``device``
    maps a chip id to its device), the bandwidth factor taken from another family where
    :data:`EFFICIENCY_FROM` says so."""
    table = TABLES[family]
    dev = device(table.chip_id)
    donor = EFFICIENCY_FROM.get(family)
    if donor is None:
        return fit_custom_all_reduce(dev, table)
    e = fit_family(donor, device).efficiency
    return fit_custom_all_reduce(dev, _rows_up_to(table, LATENCY_ROWS_MAX_BYTES), efficiency=e)


def fit_custom_all_reduce(
    dev: Device, table: LatencyTable = H100, *, efficiency: float | None = None
) -> CustomAllReduceFit:
    """Fit the latency floor and the bandwidth factor to ``table`` (only the floor when
    ``efficiency`` is given), minimising the squared log error."""
    from scipy.optimize import least_squares

    meas = measured(table)

    def params(x: F) -> F:
        return x if efficiency is None else np.array([x[0], efficiency])

    x0, lo, hi = (
        ([3.0, 0.3], [0.1, 0.01], [50.0, 1.0]) if efficiency is None else ([3.0], [0.1], [50.0])
    )
    r = least_squares(
        lambda x: np.log(predict(_with(dev, params(x)), table)) - np.log(meas),
        np.array(x0),
        bounds=(lo, hi),
        method="trf",
    )
    x = params(r.x)
    err = np.abs(predict(_with(dev, x), table) / meas - 1.0)
    return CustomAllReduceFit(
        latency_s=float(x[0]) * 1e-6,
        efficiency=float(x[1]),
        median_abs_pct=float(np.median(err) * 100.0),
        rows=int(meas.size),
    )

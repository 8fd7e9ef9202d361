"""Fit the custom (one-/two-shot) all-reduce factors to a published latency table.

The table is the H100 benchmark in the description of sgl-project/sglang pull request 2904
("optimize custom allreduce kernel", 2025-01-15): TensorRT-LLM-derived custom all-reduce,
bf16, TP 2/4/8 on one HGX H100 node, 512 B to 1 MiB, measured without CUDA graphs. The fit
chooses ``custom_allreduce_latency_s`` (per-call floor) and ``custom_allreduce_efficiency``
(fraction of NVLink bandwidth) minimising the squared log error of
:func:`siliconomics.parallel.collectives.all_reduce` restricted to the custom algorithms, with
the algorithm chosen per size as the stack does. Pure: the data are constants below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..ops.device import Device
from ..parallel.collectives import all_reduce

F = NDArray[np.float64]

SOURCE = (
    "https://github.com/sgl-project/sglang/pull/2904 (H100, custom all-reduce, TP 2/4/8, "
    "512 B - 1 MiB, no CUDA graph)"
)
SIZES_BYTES: F = np.array([512, 4096, 32768, 262144, 524288, 1048576], dtype=np.float64)
LATENCY_US: dict[int, tuple[float, ...]] = {
    2: (3.7, 3.9, 4.5, 7.9, 12.5, 19.9),
    4: (4.8, 3.7, 4.8, 13.9, 20.2, 31.1),
    8: (5.9, 5.7, 7.8, 16.7, 22.1, 33.8),
}
CUSTOM = ("one_shot", "two_shot")


@dataclass(frozen=True, kw_only=True)
class CustomAllReduceFit:
    latency_s: float
    efficiency: float
    median_abs_pct: float
    rows: int


def measured() -> F:
    return np.concatenate([np.array(v) * 1e-6 for v in LATENCY_US.values()])


def predict(dev: Device) -> F:
    """Model latency for every (group size, message size) of the table, in table order."""
    return np.concatenate(
        [all_reduce(dev, SIZES_BYTES, n, algorithms=CUSTOM).time for n in LATENCY_US]
    )


def fit_custom_all_reduce(dev: Device) -> CustomAllReduceFit:
    from scipy.optimize import least_squares

    meas = measured()

    def with_x(x: F) -> Device:
        eff = dev.eff.model_copy(
            update={"custom_allreduce_latency_s": x[0] * 1e-6, "custom_allreduce_efficiency": x[1]}
        )
        return Device(chip=dev.chip, eff=eff)

    r = least_squares(
        lambda x: np.log(predict(with_x(x))) - np.log(meas),
        np.array([3.0, 0.3]),
        bounds=([0.1, 0.01], [50.0, 1.0]),
        method="trf",
    )
    err = np.abs(predict(with_x(r.x)) / meas - 1.0)
    return CustomAllReduceFit(
        latency_s=float(r.x[0]) * 1e-6,
        efficiency=float(r.x[1]),
        median_abs_pct=float(np.median(err) * 100.0),
        rows=int(meas.size),
    )

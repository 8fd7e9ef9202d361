"""Roofline cost of one operator: time = max(compute, memory) + fixed launch overhead.

Every function is vectorised: token counts and shapes may be numpy arrays that broadcast.
Bounds are integer codes (``BOUND_NAMES``) so arrays of results stay numeric.

GEMM efficiency models two real effects on top of the profile's ``gemm_efficiency``:

* GPUs (``arch = "tiles"``): the output is cut into ``tile_m x tile_n`` tiles, run in waves
  over the SMs; partial tiles and a partial last wave waste work (tile/wave quantisation).
  Small-M GEMMs use narrower tiles (down to the 16-row MMA granule) and split-K to fill SMs,
  as cuBLAS heuristics do.
* Systolic arrays (TPU MXU, Trainium TensorEngine, Gaudi MME): the contraction (K) and output
  column (N) dims are padded to the array's ``rows x cols``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .device import Device

F = NDArray[np.float64]

COMPUTE, MEMORY, COMM, OVERHEAD = 0, 1, 2, 3
BOUND_NAMES: Final = ("compute", "memory", "interconnect", "overhead")

MMA_MIN_M: Final = 16  # smallest tensor-core MMA row granule (mma.m16n8k16 / wgmma m64 by 4)


def _ceil_to(x: F, q: float) -> F:
    return np.ceil(x / q) * q


def gemm_utilisation(dev: Device, m: ArrayLike, n: ArrayLike, k: ArrayLike) -> F:
    """Fraction of the matrix engines doing useful work for an ``m x k @ k x n`` GEMM
    (before the profile's ``gemm_efficiency``). 1.0 for large, aligned shapes."""
    m = np.maximum(np.asarray(m, dtype=np.float64), 1.0)
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    k = np.maximum(np.asarray(k, dtype=np.float64), 1.0)
    mx = dev.chip.matrix
    if mx.arch == "systolic":
        return (k / _ceil_to(k, mx.rows)) * (n / _ceil_to(n, mx.cols))
    # GPU: tile rows shrink to fit small M (powers of two >= the MMA granule, <= tile_m).
    tm = np.clip(2.0 ** np.ceil(np.log2(np.maximum(m, MMA_MIN_M))), MMA_MIN_M, mx.tile_m)
    tn = float(mx.tile_n)
    tiles_m = np.ceil(m / tm)
    tiles_n = np.ceil(n / tn)
    tiles = tiles_m * tiles_n
    pad = (m * n) / (tiles_m * tm * tiles_n * tn)
    units = float(mx.units)
    # Split-K fills idle SMs when there are fewer tiles than SMs (bounded by K/256 slices).
    split = np.clip(np.floor(units / tiles), 1.0, np.maximum(np.floor(k / 256.0), 1.0))
    work = tiles * split
    waves = np.ceil(work / units)
    wave_eff = work / (waves * units)
    return pad * wave_eff


@dataclass(frozen=True, kw_only=True)
class OpCost:
    """Cost of one operator (or a sum of operators of one class), per chip.

    Fields are arrays broadcast over the configurations being evaluated."""

    name: str
    op_class: str
    flops: F
    bytes: F
    comm_bytes: F
    t_compute: F
    t_memory: F
    t_comm: F
    t_overhead: F
    launches: F = field(default_factory=lambda: np.ones(()))
    """kernel launches this op stands for (1 per op, times the repeats of :meth:`scaled`)"""

    @property
    def time(self) -> F:
        """Compute and memory overlap perfectly (roofline max); comm and overhead add."""
        return np.maximum(self.t_compute, self.t_memory) + self.t_comm + self.t_overhead

    @property
    def bound(self) -> NDArray[np.int64]:
        parts = np.stack(
            np.broadcast_arrays(self.t_compute, self.t_memory, self.t_comm, self.t_overhead)
        )
        return np.argmax(parts, axis=0)

    def scaled(self, factor: ArrayLike) -> OpCost:
        """The same op repeated ``factor`` times (e.g. per layer x layers)."""
        f = np.asarray(factor, dtype=np.float64)
        return OpCost(
            name=self.name,
            op_class=self.op_class,
            flops=self.flops * f,
            bytes=self.bytes * f,
            comm_bytes=self.comm_bytes * f,
            t_compute=self.t_compute * f,
            t_memory=self.t_memory * f,
            t_comm=self.t_comm * f,
            t_overhead=self.t_overhead * f,
            launches=self.launches * f,
        )


def _z(x: ArrayLike) -> F:
    return np.zeros_like(np.asarray(x, dtype=np.float64))


def gemm(
    dev: Device,
    name: str,
    m: ArrayLike,
    n: ArrayLike,
    k: ArrayLike,
    *,
    compute_dtype: str,
    a_bytes: float,
    w_bytes: float,
    out_bytes: float,
    weight_reads: ArrayLike = 1.0,
    util_m: ArrayLike | None = None,
    weight_stream: float = 1.0,
) -> OpCost:
    """``[m x k] @ [k x n]`` with activations of ``a_bytes``/element and weights of
    ``w_bytes``/element. ``weight_reads`` scales the weight traffic (MoE: experts touched);
    ``util_m`` is the row count of each independent GEMM when ``m`` is a grouped total;
    ``weight_stream`` is the fraction of the streaming bandwidth the kernel reaches on its
    weights (:meth:`.Device.weight_stream_factor`)."""
    m_ = np.asarray(m, dtype=np.float64)
    n_ = np.asarray(n, dtype=np.float64)
    k_ = np.asarray(k, dtype=np.float64)
    flops = 2.0 * m_ * n_ * k_
    util = gemm_utilisation(dev, m_ if util_m is None else util_m, n_, k_)
    peak = dev.peak_flops(compute_dtype) * dev.gemm_efficiency(compute_dtype)
    t_compute = np.where(flops > 0, flops / (peak * np.maximum(util, 1e-9)), 0.0)
    w_traffic = k_ * n_ * w_bytes * np.asarray(weight_reads)
    nbytes = m_ * k_ * a_bytes + w_traffic + m_ * n_ * out_bytes
    # Weights stream at ``weight_stream`` x the bandwidth (1: the same sum, bit for bit).
    t_memory = (m_ * k_ * a_bytes + w_traffic / weight_stream + m_ * n_ * out_bytes) / (
        dev.hbm_bytes_per_s * dev.eff.memory_efficiency
    )
    t_over = np.where(flops > 0, dev.eff.kernel_overhead_s, 0.0) + _z(flops)
    return OpCost(
        name=name,
        op_class="gemm",
        flops=flops + _z(t_memory),
        bytes=nbytes + _z(flops),
        comm_bytes=_z(flops + nbytes),
        t_compute=t_compute + _z(t_memory),
        t_memory=t_memory + _z(flops),
        t_comm=_z(flops + nbytes),
        t_overhead=t_over + _z(nbytes),
    )


def memory_op(dev: Device, name: str, nbytes: ArrayLike, flops: ArrayLike = 0.0) -> OpCost:
    """An element-wise / streaming op (norm, activation, residual add, embedding gather)."""
    b = np.asarray(nbytes, dtype=np.float64)
    f = np.asarray(flops, dtype=np.float64) + _z(b)
    b = b + _z(f)
    return OpCost(
        name=name,
        op_class="memory",
        flops=f,
        bytes=b,
        comm_bytes=_z(b),
        t_compute=f / dev.vector_flops,
        t_memory=b / (dev.hbm_bytes_per_s * dev.eff.memory_efficiency),
        t_comm=_z(b),
        t_overhead=np.where(b > 0, dev.eff.kernel_overhead_s, 0.0),
    )


def attention_op(
    dev: Device,
    name: str,
    flops: ArrayLike,
    nbytes: ArrayLike,
    *,
    compute_dtype: str,
    rate: ArrayLike | None = None,
    bandwidth: ArrayLike | None = None,
) -> OpCost:
    """Fused attention (flash-style prefill, paged decode): matrix FLOPs at the profile's
    ``attention_efficiency`` (or at ``rate`` FLOP/s where given: absorbed MLA decode, see
    :meth:`.Device.mla_decode_flops`) and K/V (cache) traffic at memory efficiency (or at
    ``bandwidth`` bytes/s where given: the Gated DeltaNet decode kernel)."""
    f = np.asarray(flops, dtype=np.float64)
    b = np.asarray(nbytes, dtype=np.float64) + _z(f)
    f = f + _z(b)
    peak = (
        dev.peak_flops(compute_dtype) * dev.eff.attention_efficiency
        if rate is None
        else np.asarray(rate, dtype=np.float64)
    )
    return OpCost(
        name=name,
        op_class="attention",
        flops=f,
        bytes=b,
        comm_bytes=_z(b),
        t_compute=f / peak,
        t_memory=b
        / (
            dev.hbm_bytes_per_s * dev.eff.memory_efficiency
            if bandwidth is None
            else np.asarray(bandwidth, dtype=np.float64)
        ),
        t_comm=_z(b),
        t_overhead=np.where(b > 0, dev.eff.kernel_overhead_s, 0.0),
    )


def comm_op(name: str, nbytes: ArrayLike, t_comm: ArrayLike) -> OpCost:
    b = np.asarray(nbytes, dtype=np.float64)
    t = np.asarray(t_comm, dtype=np.float64) + _z(b)
    b = b + _z(t)
    return OpCost(
        name=name,
        op_class="comm",
        flops=_z(b),
        bytes=_z(b),
        comm_bytes=b,
        t_compute=_z(b),
        t_memory=_z(b),
        t_comm=t,
        t_overhead=_z(b),
    )


def grouped_gemm_utilisation(
    dev: Device, rows: ArrayLike, n: ArrayLike, k: ArrayLike, groups: ArrayLike
) -> F:
    """Matrix-engine utilisation of a grouped GEMM: ``groups`` independent ``[m_g x k] @ [k x
    n]`` products with ``m_g = rows / groups`` rows each (MoE experts), run as one kernel.

    * GPUs: each group's rows are padded to its own tile height (tile rows shrink to the 16-row
      MMA granule for small groups), and all groups' tiles share the SMs in waves (CUTLASS /
      cuBLAS grouped GEMM, TensorRT-LLM and Megatron-Core MoE kernels; no split-K).
    * Systolic arrays: K and N padded to the array as for one GEMM; a weight-stationary array
      loads each expert's weight tile (``rows`` cycles, double-buffered) while streaming that
      expert's tokens, so a group of ``m_g`` tokens keeps it busy ``m_g / max(m_g, rows)``."""
    r = np.maximum(np.asarray(rows, dtype=np.float64), 1e-9)
    g = np.maximum(np.asarray(groups, dtype=np.float64), 1e-9)
    n_ = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    k_ = np.maximum(np.asarray(k, dtype=np.float64), 1.0)
    m_g = np.maximum(r / g, 1.0)
    mx = dev.chip.matrix
    if mx.arch == "systolic":
        fill = m_g / np.maximum(m_g, float(mx.rows))
        return (k_ / _ceil_to(k_, mx.rows)) * (n_ / _ceil_to(n_, mx.cols)) * fill
    tm = np.clip(2.0 ** np.ceil(np.log2(np.maximum(m_g, MMA_MIN_M))), MMA_MIN_M, mx.tile_m)
    tn = float(mx.tile_n)
    tiles = g * np.ceil(m_g / tm) * np.ceil(n_ / tn)
    pad = (g * m_g * n_) / (tiles * tm * tn)
    units = float(mx.units)
    waves = np.maximum(np.ceil(tiles / units), 1.0)
    return pad * np.minimum(tiles / (waves * units), 1.0)


def grouped_gemm(
    dev: Device,
    name: str,
    rows: ArrayLike,
    n: ArrayLike,
    k: ArrayLike,
    groups: ArrayLike,
    *,
    compute_dtype: str,
    a_bytes: float,
    w_bytes: float,
    out_bytes: float,
    weight_stream: float = 1.0,
    efficiency: float | None = None,
) -> OpCost:
    """A grouped GEMM (MoE experts): ``rows`` token rows in all, spread over ``groups`` weight
    matrices of ``k x n`` that are each read once (:func:`grouped_gemm_utilisation`), at
    ``weight_stream`` x the streaming bandwidth (:meth:`.Device.weight_stream_factor`).
    ``efficiency``: fraction of the peak reached (default the profile's GEMM efficiency;
    inference passes :meth:`.Device.grouped_gemm_peak_efficiency`)."""
    r = np.asarray(rows, dtype=np.float64)
    n_ = np.asarray(n, dtype=np.float64)
    k_ = np.asarray(k, dtype=np.float64)
    flops = 2.0 * r * n_ * k_
    util = grouped_gemm_utilisation(dev, r, n_, k_, groups)
    eff = dev.gemm_efficiency(compute_dtype) if efficiency is None else efficiency
    peak = dev.peak_flops(compute_dtype) * eff
    # The stack's grouped-kernel factor (exactly 1 by default) slows the compute term only: it is
    # fitted on large-batch MoE rows, where the grouped kernels are compute-bound. Where they are
    # memory-bound (decode at small batch) they stream the experts' weights like a dense GEMM
    # (docs/MODEL.md, "Grouped GEMM efficiency": NVFP4 grouped kernels at 64 decode tokens read
    # the experts at >= 6 TB/s on B200, where the factor on both terms priced 2.8 TB/s).
    ge = dev.grouped_efficiency
    t_compute = np.where(flops > 0, flops / (peak * np.maximum(util, 1e-9)), 0.0) / ge
    g = np.asarray(groups, dtype=np.float64)
    w_traffic = g * k_ * n_ * w_bytes
    nbytes = r * k_ * a_bytes + w_traffic + r * n_ * out_bytes
    t_memory = (r * k_ * a_bytes + w_traffic / weight_stream + r * n_ * out_bytes) / (
        dev.hbm_bytes_per_s * dev.eff.memory_efficiency
    )
    t_over = np.where(flops > 0, dev.eff.kernel_overhead_s, 0.0) + _z(flops)
    z = _z(flops + nbytes)
    return OpCost(
        name=name,
        op_class="gemm",
        flops=flops + z,
        bytes=nbytes + z,
        comm_bytes=z,
        t_compute=t_compute + z,
        t_memory=t_memory + z,
        t_comm=z,
        t_overhead=t_over + z,
    )

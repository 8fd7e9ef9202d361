"""Hand-worked checks of the roofline op costs and the collective model."""

import numpy as np
import pytest

from siliconomics.catalog.registry import get_chip, get_efficiency
from siliconomics.catalog.schema import EfficiencyProfile
from siliconomics.ops.device import Device
from siliconomics.ops.roofline import COMPUTE, MEMORY, gemm, gemm_utilisation, memory_op
from siliconomics.parallel.collectives import all_reduce_time


def ideal(family: str = "nvidia-hopper") -> EfficiencyProfile:
    """A profile with every efficiency at 1 and no overheads: pure roofline."""
    base = get_efficiency(family)
    return base.model_copy(
        update=dict(
            gemm_efficiency=1.0,
            memory_efficiency=1.0,
            attention_efficiency=1.0,
            kernel_overhead_s=0.0,
            step_overhead_s=0.0,
            collective_latency_s=0.0,
            collective_efficiency=1.0,
            memory_reserve_fraction=0.0,
        )
    )


@pytest.fixture
def h100() -> Device:
    return Device(chip=get_chip("h100-sxm"), eff=ideal())


def test_large_gemm_is_compute_bound_at_peak(h100):
    # 8192^3 bf16 GEMM: 2*8192^3 = 1.0995e12 FLOP at 989.4 TFLOP/s = 1.111 ms;
    # bytes 3 * 8192^2 * 2 = 402.7 MB at 3.35 TB/s = 0.120 ms -> compute-bound.
    # 8192 = 64 tiles of 128 per side: 4096 tiles over 132 SMs = 31.03 -> 32 waves,
    # wave efficiency 4096 / (32 * 132) = 0.9697.
    op = gemm(h100, "g", 8192, 8192, 8192, compute_dtype="bf16", a_bytes=2, w_bytes=2, out_bytes=2)
    assert float(op.flops) == 2 * 8192**3
    assert float(op.t_compute) == pytest.approx(2 * 8192**3 / 989.4e12 / (4096 / (32 * 132)))
    assert float(op.t_memory) == pytest.approx(3 * 8192**2 * 2 / 3.35e12)
    assert int(op.bound) == COMPUTE


def test_decode_gemv_is_memory_bound(h100):
    # batch-1 decode through an 8192x8192 bf16 weight: 134 MB of weights at 3.35 TB/s = 40 µs
    op = gemm(h100, "g", 1, 8192, 8192, compute_dtype="bf16", a_bytes=2, w_bytes=2, out_bytes=2)
    assert float(op.t_memory) == pytest.approx((8192 * 8192 * 2 + 2 * 8192 * 2) / 3.35e12)
    assert int(op.bound) == MEMORY


def test_wave_quantisation_penalises_one_extra_tile(h100):
    # 132 tiles fill one wave exactly; 133 tiles need a second, almost empty wave.
    full = gemm_utilisation(h100, 128 * 132, 128, 4096)
    spill = gemm_utilisation(h100, 128 * 133, 128, 4096)
    assert float(full) == pytest.approx(1.0)
    assert float(spill) == pytest.approx(133 / 264)


def test_systolic_padding():
    # TPU-style 128x128 array: K=100 and N=200 pad to 128 and 256.
    tpu = Device(chip=get_chip("tpu-v5e"), eff=ideal("google-tpu"))
    rows, cols = tpu.chip.matrix.rows, tpu.chip.matrix.cols
    u = gemm_utilisation(tpu, 4096, 200, 100)
    assert float(u) == pytest.approx(
        (100 / np.ceil(100 / rows) / rows) * (200 / (np.ceil(200 / cols) * cols))
    )


def test_memory_op_time(h100):
    op = memory_op(h100, "norm", 3.35e9)
    assert float(op.time) == pytest.approx(1e-3)


def test_fp8_unsupported_on_a100_is_a_clear_error():
    a100 = Device(chip=get_chip("a100-sxm-80gb"), eff=ideal("nvidia-ampere"))
    with pytest.raises(ValueError, match="no fp8 matrix support"):
        a100.peak_flops("fp8")


def test_ring_all_reduce_on_switch(h100):
    # Ring all-reduce of S bytes over n chips moves 2(n-1)/n * S per chip
    # (Patarasuk & Yuan 2009) at 450 GB/s per direction on NVLink 4.
    s = 1e9
    t = all_reduce_time(h100, s, 8, algorithms=("ring",))
    assert float(t) == pytest.approx(2 * 7 / 8 * s / 450e9 + 2 * 7 * 0.6e-6)  # + hop latency
    assert float(all_reduce_time(h100, s, 1)) == 0.0


def test_mesh_small_group_uses_a_fraction_of_links():
    # MI300X: 7 Infinity Fabric links; a 2-GPU group uses one of them.
    mi = Device(chip=get_chip("mi300x"), eff=ideal("amd-cdna3"))
    t2 = float(all_reduce_time(mi, 1e9, 2))
    t8 = float(all_reduce_time(mi, 1e9, 8))
    assert t2 > t8  # fewer links for the pair, despite less traffic


def test_fp4_weight_streaming_slows_only_memory_bound_fp4_gemms() -> None:
    from siliconomics.ops.roofline import grouped_gemm

    chip = get_chip("b200")
    # the stream factor alone: the calibrated grouped-kernel factor (which also divides the
    # grouped GEMM's memory term) neutral
    neutral = {"fp4_weight_stream_efficiency": None, "grouped_gemm_efficiency": None}
    base = get_efficiency(chip.family).model_copy(update=neutral)
    slow = base.model_copy(update={"fp4_weight_stream_efficiency": 0.5})
    d0, d1 = Device(chip=chip, eff=base), Device(chip=chip, eff=slow)
    assert d0.weight_stream_factor("fp4") == 1.0
    assert d1.weight_stream_factor("fp4") == 0.5 and d1.weight_stream_factor("fp8") == 1.0
    kw = {"compute_dtype": "fp4", "a_bytes": 0.5, "w_bytes": 0.5625, "out_bytes": 2.0}
    # decode-sized GEMM: the weight term takes twice as long, activations do not
    a = gemm(d0, "g", 16, 8192, 8192, **kw)
    b = gemm(d1, "g", 16, 8192, 8192, weight_stream=d1.weight_stream_factor("fp4"), **kw)
    bw = d0.hbm_bytes_per_s * base.memory_efficiency
    assert float(b.t_memory - a.t_memory) == pytest.approx(8192 * 8192 * 0.5625 / bw)
    assert float(b.bytes) == float(a.bytes)  # same traffic, slower stream
    # grouped (MoE experts): same rule per expert read
    ga = grouped_gemm(d0, "e", 256, 4096, 7168, 16, **kw)
    gb = grouped_gemm(d1, "e", 256, 4096, 7168, 16, weight_stream=0.5, **kw)
    assert float(gb.t_memory - ga.t_memory) == pytest.approx(16 * 4096 * 7168 * 0.5625 / bw)
    # a compute-bound prefill GEMM does not move
    big_a = gemm(d0, "p", 16384, 8192, 8192, **kw)
    big_b = gemm(d1, "p", 16384, 8192, 8192, weight_stream=0.5, **kw)
    assert float(big_a.time) == float(big_b.time)

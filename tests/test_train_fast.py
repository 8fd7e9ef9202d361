"""The fast training paths agree with the reference ones (issue 17).

* ``evaluate_grid`` (layout work once per distinct layout, a layer's GEMMs in one batched
  call, blocks of plans) against ``step_time`` / ``train_memory`` run on every plan of the grid
  directly, with the grid cut into several blocks;
* ``estimate_training`` (one plan on Python numbers) against ``evaluate_grid``;
* the time-only path against ``StepTime.total``;
* the lean kernels against :mod:`siliconomics.ops.roofline` and
  :mod:`siliconomics.parallel.hierarchical`, on numpy arrays and on Python numbers.

Dense and MoE models, tp/pp/dp/cp/ep/vpp, every recompute policy and ZeRO stage, FP8 recipes,
LoRA/QLoRA, GPUs and systolic chips. Tolerance 1e-12 relative (bit-identical here; the bound
leaves room for a libm that rounds log2/pow differently from numpy's).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from siliconomics import resolve
from siliconomics.catalog.registry import get_model
from siliconomics.ops import roofline
from siliconomics.parallel import hierarchical as coll
from siliconomics.training import estimate as est_mod
from siliconomics.training import kernels as K
from siliconomics.training.estimate import (
    estimate_training,
    evaluate_grid,
    result_at,
    step_times_only,
    train_device,
)
from siliconomics.training.memory import train_memory
from siliconomics.training.plan import plan_validity
from siliconomics.training.search import candidate_grid
from siliconomics.training.step import step_time

RTOL = 1e-12

# model, chip, chips, seq, global batch, dtype, method, other grid-wide fields
CASES = [
    ("llama-3.1-70b", "h100-sxm", 64, 4096, 256, "bf16", "full", {}),
    ("llama-2-7b", "h100-sxm", 32, 8192, 128, "fp8", "full", {"grad_dtype": "bf16"}),
    ("mixtral-8x7b", "h100-sxm", 64, 4096, 256, "bf16", "full", {}),
    (
        "mixtral-8x7b",
        "b200",
        32,
        8192,
        64,
        "mxfp8",
        "full",
        {"dispatcher": "deepep", "capacity_factor": 1.25},
    ),
    ("deepseek-v3", "h100-sxm", 256, 4096, 1024, "fp8-cs", "full", {}),
    ("qwen3-30b-a3b", "tpu-v5p", 64, 4096, 256, "bf16", "full", {"optimizer": "adafactor"}),
    ("gpt-j-6b", "tpu-v5e", 16, 2048, 64, "bf16", "full", {}),
    ("llama-3.1-8b", "a100-sxm-80gb", 8, 4096, 64, "bf16", "qlora", {}),
    ("llama-2-70b", "h100-sxm", 8, 8192, 8, "fp8-dpa", "lora", {}),
    # Gated DeltaNet hybrids (numpy path only: the compiled path covers softmax attention)
    ("qwen3-next-80b-a3b", "b200", 32, 4096, 128, "fp8", "full", {}),
    ("qwen3.6-27b", "h100-sxm", 16, 8192, 64, "bf16", "lora", {}),
    ("nemotron-h-56b", "h100-sxm", 32, 8192, 128, "fp8", "full", {}),
    ("nemotron-3-super-120b-a12b", "b200", 32, 8192, 128, "fp8", "full", {}),
]
IDS = [f"{c[0]}-{c[1]}-{c[5]}-{c[6]}" for c in CASES]


def _grid(case: tuple, limit: int = 600):  # type: ignore[type-arg]
    mid, chip, n, seq, gb, dtype, method, extra = case
    m = get_model(mid)
    dev = train_device(resolve.device(chip))
    g = candidate_grid(
        m, dev.chip.interconnect.scale_up_domain, n, dtype=dtype, method=method, seq_len=seq
    )
    ok, _ = plan_validity(m, dev, g, seq, gb)
    idx = np.flatnonzero(ok)
    idx = idx[np.linspace(0, idx.size - 1, min(limit, idx.size)).astype(int)]
    g = g.take(idx)
    i = np.arange(g.size)
    dp_cp = g.dp * g.cp
    zero = i % 4  # every ZeRO stage, and hybrid sharding on some ZeRO-3 plans
    shard = np.where((zero == 3) & (dp_cp % 2 == 0) & (i % 3 == 0), dp_cp // 2, dp_cp)
    g = dataclasses.replace(g, zero=zero.astype(np.int64), shard=shard.astype(np.int64), **extra)
    return m, dev, g, seq, gb


def _close(a: object, b: object) -> None:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    np.testing.assert_allclose(y, x, rtol=RTOL, atol=0.0)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_grid_path_equals_direct_evaluation(case: tuple, monkeypatch) -> None:  # type: ignore[type-arg]
    m, dev, g, seq, gb = _grid(case)
    assert g.size > 50 and len(set(g.recompute.tolist())) == 3
    ov = est_mod.default_overlap(dev)
    st = step_time(m, dev, g, seq_len=seq, global_batch=gb, overlap=ov)  # every plan, no dedup
    mem = train_memory(m, dev, g, seq_len=seq, global_batch=gb)
    monkeypatch.setattr(est_mod, "BLOCK", 97)  # several blocks, one partial
    res = evaluate_grid(m, dev, g, seq_len=seq, global_batch_seqs=gb)
    for (k, a), b in zip(st.parts().items(), res.step.parts().values(), strict=True):
        assert a.shape == b.shape == g.dp.shape, k
        _close(a, b)
    _close(st.total, res.step.total)
    _close(st.dp_comm_total, res.step.dp_comm_total)
    for a, b in zip(mem.parts().values(), res.memory.parts().values(), strict=True):
        _close(np.broadcast_to(a, g.dp.shape), np.broadcast_to(b, g.dp.shape))
    _close(step_times_only(m, dev, g, seq_len=seq, global_batch_seqs=gb), res.step.total)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_single_plan_path_equals_grid(case: tuple) -> None:  # type: ignore[type-arg]
    m, dev, g, seq, gb = _grid(case, limit=400)
    res = evaluate_grid(m, dev, g, seq_len=seq, global_batch_seqs=gb)
    for i in np.linspace(0, g.size - 1, 25).astype(int).tolist():
        a = result_at(res, i, m, dev, seq_len=seq, global_batch_seqs=gb)
        b = estimate_training(
            m, dev, g.plan(i), seq_len=seq, global_batch_seqs=gb, check_memory=False
        )
        assert b.plan == a.plan and b.microbatches == a.microbatches
        assert b.assumptions == a.assumptions and b.memory_capacity == a.memory_capacity
        assert list(b.breakdown) == list(a.breakdown) and list(b.memory) == list(a.memory)
        _close(
            [a.step_time_s, a.tokens_per_s, a.mfu, a.hfu, *a.breakdown.values()],
            [b.step_time_s, b.tokens_per_s, b.mfu, b.hfu, *b.breakdown.values()],
        )
        _close(list(a.memory.values()), list(b.memory.values()))


def test_grid_shapes_and_scalar_fields_survive() -> None:
    """A 2-D grid keeps its shape; the 1-element grid equals its plan's single path."""
    m, dev, g, seq, gb = _grid(CASES[0], limit=60)
    g2 = dataclasses.replace(
        g, **{f: np.reshape(getattr(g, f), (6, 10)) for f in ("dp", "tp", "pp", "cp", "ep")}
    )
    g2 = dataclasses.replace(
        g2,
        **{
            f: np.reshape(getattr(g, f), (6, 10))
            for f in ("etp", "vpp", "zero", "shard", "micro_batch", "recompute", "sp")
        },
    )
    r1 = evaluate_grid(m, dev, g, seq_len=seq, global_batch_seqs=gb)
    r2 = evaluate_grid(m, dev, g2, seq_len=seq, global_batch_seqs=gb)
    assert r2.step.total.shape == (6, 10) and r2.tokens_per_s.shape == (6, 10)
    _close(r1.step.total, np.ravel(r2.step.total))
    _close(r1.memory.total, np.ravel(r2.memory.total))


DEVICES = ["h100-sxm", "tpu-v5p", "trn2", "mi300x", "gaudi3", "l40s", "tpu-v5e"]


@pytest.mark.parametrize("chip", DEVICES)
def test_kernels_equal_roofline_and_collectives(chip: str) -> None:
    dev = train_device(resolve.device(chip))
    c = K.consts(dev)
    rng = np.random.default_rng(7)
    n = 400
    m = np.round(rng.uniform(0, 5e4, n)) * rng.integers(0, 2, n)  # some zero-size GEMMs
    nn = np.round(rng.uniform(1, 3e4, n))
    kk = np.round(rng.uniform(1, 3e4, n))
    um = np.round(rng.uniform(1, 600, n))
    for dtype in ("bf16", "fp8") if dev.chip.supports("fp8") else ("bf16",):
        peak = c.gemm_peak(dtype)
        for util_m in (None, um):
            ref = roofline.gemm(
                dev,
                "g",
                m,
                nn,
                kk,
                compute_dtype=dtype,
                a_bytes=1.0,
                w_bytes=1.0,
                out_bytes=4.0,
                util_m=util_m,
            ).time
            kw = {"peak": peak, "a_bytes": 1.0, "w_bytes": 1.0, "out_bytes": 4.0}
            _close(ref, K.gemm_time(c, K.NP, m, nn, kk, util_m=util_m, **kw))
            one = [
                K.gemm_time(
                    c, K.SC, m[i], nn[i], kk[i], util_m=None if util_m is None else um[i], **kw
                )
                for i in range(0, n, 7)
            ]
            _close(ref[::7], one)
    b, f = m * 3.0, nn * 5.0
    _close(roofline.memory_op(dev, "e", b, f).time, K.memory_time(c, K.NP, b, f))
    _close(
        roofline.memory_op(dev, "e", b, f).time[::9],
        [K.memory_time(c, K.SC, x, y) for x, y in zip(b[::9], f[::9], strict=True)],
    )
    adt = dev.attention_dtype("bf16", "bf16")
    ref = roofline.attention_op(dev, "a", f * 1e3, b, compute_dtype=adt).time
    _close(ref, K.attention_time(c, K.NP, f * 1e3, b, peak=c.attn_peak(adt)))
    # collectives: group sizes and strides inside and across the scale-up domain
    dom = dev.chip.interconnect.scale_up_domain
    sizes = np.array([1, 2, 3, 4, 8, 16, 64, 256, dom, 2 * dom], dtype=float)
    strides = np.array([1, 2, 4, 8, dom, 3 * dom], dtype=float)
    gn, gs = (a.ravel() for a in np.meshgrid(sizes, strides))
    nbytes = rng.uniform(0, 1e9, gn.size)
    for alg in ("auto", "hierarchical", "ring", "tree"):
        ref = coll.reduce_scatter_time(dev, nbytes, gn, gs, alg)
        _close(ref, K.reduce_scatter_time(c, K.NP, nbytes, gn, gs, alg))
        one = [
            K.reduce_scatter_time(c, K.SC, x, y, z, alg)
            for x, y, z in zip(nbytes, gn, gs, strict=True)
        ]
        _close(ref, one)
        _close(
            coll.all_reduce_time(dev, nbytes, gn, gs, alg),
            K.all_reduce_time(c, K.NP, nbytes, gn, gs, alg),
        )
    _close(coll.send_recv_time(dev, nbytes, gs), K.send_recv_time(c, K.NP, nbytes, gs))
    _close(
        coll.send_recv_time(dev, nbytes, gs)[::5],
        [K.send_recv_time(c, K.SC, x, y) for x, y in zip(nbytes[::5], gs[::5], strict=True)],
    )


@pytest.mark.parametrize("chip", ["h100-sxm", "b200", "tpu-v5p"])
def test_lean_precision_and_lora_equal_reference(chip: str) -> None:
    """The lean quantisation, dequantisation and adapter times equal the roofline ones."""
    from siliconomics.training.lora import (
        adapter_times,
        adapter_times_lean,
        dequant_time,
        dequant_time_lean,
    )
    from siliconomics.training.precision import RECIPES, quant_time, quant_time_lean

    dev = train_device(resolve.device(chip))
    c = K.consts(dev)
    rng = np.random.default_rng(3)
    m, n, k = (np.round(rng.uniform(1, 2e4, 50)) for _ in range(3))
    for r in RECIPES.values():
        if not r.lowp:
            continue
        for frozen in (False, True):
            for a, b in zip(
                quant_time(dev, r, m, n, k, frozen=frozen),
                quant_time_lean(c, K.NP, r, m, n, k, frozen=frozen),
                strict=True,
            ):
                _close(a, b)
            one = quant_time_lean(c, K.SC, r, m[0], n[0], k[0], frozen=frozen)
            _close([x[0] for x in quant_time(dev, r, m, n, k, frozen=frozen)], one)
    for method in ("full", "lora", "qlora"):
        _close(dequant_time(dev, method, k, n), dequant_time_lean(c, K.NP, method, k, n))
    for a, b in zip(
        adapter_times(dev, m, k, n, 16), adapter_times_lean(c, K.NP, m, k, n, 16), strict=True
    ):
        _close(a, b)


# ---- the compiled grid path (training/gridcore.py, numba) ---------------------------------------


def gridcore_supported(m: object) -> bool:
    return (
        m.moe is None  # type: ignore[attr-defined]
        and m.linear_attention is None  # type: ignore[attr-defined]
        and m.ffn_layers is None  # type: ignore[attr-defined]
    )


DENSE = [c for c in CASES if gridcore_supported(get_model(c[0]))]


def _all_outputs(res) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    shape = res.grid.dp.shape
    return [
        *res.step.parts().values(),
        res.step.total,
        res.step.dp_comm_total,
        res.step.microbatches,
        res.step.t_microbatch,
        *(np.broadcast_to(v, shape) for v in res.memory.parts().values()),
        res.tokens_per_s,
        res.mfu,
        res.hfu,
    ]


def _bitwise(a: object, b: object) -> None:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert x.shape == y.shape
    assert np.array_equal(x.view(np.int64), y.view(np.int64))  # every bit, signs of zero too


def _bench_grids() -> list[tuple]:  # type: ignore[type-arg]
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_training import CHIP, JOBS, plans_for
    from siliconomics.training.plan import grid_of

    dev = train_device(resolve.device(CHIP))
    return [
        (get_model(mid), dev, grid_of(plans_for(mid, n, gb, seq)), seq, gb)
        for mid, n, gb, seq in JOBS
    ]


def test_compiled_path_is_bit_identical_to_numpy_path(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every output of evaluate_grid and step_times_only, compiled against the numpy path
    (numba switched off), bit for bit: the dense test grids and the benchmark's grids."""
    from siliconomics.training import gridcore
    from siliconomics.training.step import Overlap

    cases = [(*_grid(c), None) for c in DENSE] + [(*b, None) for b in _bench_grids()]
    # the branches the defaults do not take: multi-token prediction on a dense model (last
    # pipeline rank), every overlap switch off and partial TP/PP overlap
    m, dev, g, seq, gb = _grid(CASES[0], limit=300)
    mtp = m.model_copy(update={"n_mtp_layers": 1})
    off = Overlap(tp=0.3, pp=0.5, dp=False, fsdp=False, cp=False)
    cases += [(mtp, dev, g, seq, gb, None), (m, dev, g, seq, gb, off)]
    m, dev, g, seq, gb = _grid(CASES[1], limit=300)  # cp > 1, vpp > 1, fp8
    cases.append((m, dev, g, seq, gb, off))
    monkeypatch.setattr(gridcore, "ENABLED", True)
    compiled = []
    for m, dev, g, seq, gb, ov in cases:
        assert gridcore.supported(m, "auto")
        kw = {"seq_len": seq, "global_batch_seqs": gb, "overlap": ov}
        compiled.append((evaluate_grid(m, dev, g, **kw), step_times_only(m, dev, g, **kw)))
    monkeypatch.setattr(gridcore, "ENABLED", False)
    for (m, dev, g, seq, gb, ov), (res, only) in zip(cases, compiled, strict=True):
        assert not gridcore.use(m, "auto", g.size)
        kw = {"seq_len": seq, "global_batch_seqs": gb, "overlap": ov}
        ref = evaluate_grid(m, dev, g, **kw)
        for a, b in zip(_all_outputs(ref), _all_outputs(res), strict=True):
            _bitwise(a, b)
        _bitwise(step_times_only(m, dev, g, **kw), only)
        _bitwise(ref.step.total, only)


def test_compiled_path_scope(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """When the compiled path runs (module docstring of training/gridcore.py): MoE models
    and the ring/tree collective algorithms never, small grids once the kernels are loaded;
    a grid whose layout fields exceed the 10-bit key still goes through (np.unique)."""
    from siliconomics.training import gridcore

    dense = get_model("llama-2-7b")
    assert not gridcore.use(get_model("mixtral-8x7b"), "auto", 10**7)
    assert not gridcore.use(dense, "ring", 10**7)
    monkeypatch.setattr(gridcore, "_LOADED", False)
    assert not gridcore.use(dense, "auto", 2000) and gridcore.use(dense, "auto", 10**6)
    assert gridcore.load() >= 0.0 and gridcore.use(dense, "auto", 2000)
    monkeypatch.setattr(gridcore, "ENABLED", False)
    assert not gridcore.use(dense, "auto", 10**7)
    monkeypatch.setattr(gridcore, "ENABLED", True)
    m, dev, g, seq, gb = _grid(CASES[0], limit=80)
    big = dataclasses.replace(g, micro_batch=g.micro_batch * 1024)
    res = evaluate_grid(m, dev, big, seq_len=seq, global_batch_seqs=gb * 1024)
    st = step_time(
        m, dev, big, seq_len=seq, global_batch=gb * 1024, overlap=est_mod.default_overlap(dev)
    )
    _close(st.total, res.step.total)


def test_layout_index_equals_layout_key() -> None:
    """The compiled layout hash finds the layouts of step.layout_key in the same order, also
    with many layouts (the table grows) and none beyond the 10-bit fields."""
    from siliconomics.training import _gridcore_jit as J
    from siliconomics.training.step import layout_key

    rng = np.random.default_rng(5)
    for n, hi in ((1, 4), (50, 3), (3000, 40), (5000, 1000)):
        f = {k: rng.integers(1, hi, n).astype(np.int64) for k in ("tp", "cp", "mb", "ep", "etp")}
        sp = rng.integers(0, 2, n).astype(np.int64)
        first, inv = J.layout_index(f["tp"], f["cp"], f["mb"], sp, f["ep"], f["etp"])
        g = dataclasses.replace(
            _grid(CASES[0], limit=60)[2].take(np.zeros(n, dtype=np.int64)),
            tp=f["tp"], cp=f["cp"], micro_batch=f["mb"], ep=f["ep"], etp=f["etp"], sp=sp.astype(bool),
        )  # fmt: skip
        ref_first, ref_inv = layout_key(g)
        assert np.array_equal(first, ref_first) and np.array_equal(inv, ref_inv)
    wide = np.array([1, 2048], dtype=np.int64)
    first, _ = J.layout_index(wide, wide, wide, wide * 0, wide, wide)
    assert first.size == 0  # the caller falls back to layout_key

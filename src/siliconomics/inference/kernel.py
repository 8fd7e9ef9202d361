"""Lean step-time kernel: the time of one forward step, as :func:`.forward.forward_cost`
computes it, with every plan-constant quantity worked out once per (model, device, plan).

``forward_cost`` builds some twenty :class:`..ops.roofline.OpCost` objects of ten arrays each
per call, so that a result can explain itself (per-op breakdown, bound). A search or a sweep
only needs the step time. :class:`StepKernel` keeps the same arithmetic (the same formulas,
in a different order of summation: results agree to ~1e-15 relative, tests/test_fast.py) but

* hoists everything the plan fixes (GEMM widths, tile counts along N, peaks, bandwidths,
  per-token coefficients of the streaming ops, the all-reduce candidates) out of the
  per-configuration arithmetic;
* sums the streaming (memory-bound, token-linear) ops as one coefficient per token count;
* splits the step into the ops that see only token counts and attention, the only op that sees
  the context: a decode step at several contexts evaluates the former once;
* never builds an array only to broadcast it.

The same code runs on numpy arrays (``NP``) and on Python floats (``PY``: one configuration per
call, ~10x cheaper than numpy scalars). ``forward_cost`` stays the reference and the source of
the per-op breakdown; what it computes here is summed, not itemised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..catalog.schema import ModelSpec
from ..ops.device import Device
from ..ops.linear_attention import linear_shape
from ..ops.quant import stored_weight_bytes
from ..parallel import hierarchical as coll
from ..parallel.collectives import AffineTime, all_reduce_candidates
from ..parallel.memory import (
    INDEXER_KEY_BYTES,
    INDEXER_SCALE_BYTES,
    activation_bytes_per_chip,
    kv_bytes_per_token_per_chip,
    kv_full_fraction,
    state_bytes_per_seq_per_chip,
    weight_bytes_per_chip,
)
from ..parallel.moe import INFERENCE_EXPERT_LOAD_CV, distinct_ranks
from ..parallel.plan import InferencePlan
from ..units import DTYPE_BYTES
from .forward import TOPK_LOGIT_READS, _heads_per_chip, _layer_counts, forward_cost

V = Any  # a float (PY) or a float64 array (NP): the kernel's code is the same for both
MMA_MIN_M = 16.0


def _tile_rows_np(m: V, tile_m: float) -> V:
    """Smallest power of two >= max(m, 16), capped at ``tile_m``: 2^ceil(log2(m)) read off
    the float's exponent (m = f 2^e with f in [0.5, 1): e, or e - 1 when f = 0.5)."""
    f, e = np.frexp(np.maximum(m, MMA_MIN_M))
    return np.minimum(np.ldexp(1.0, e - (f == 0.5)), tile_m)


def _tile_rows_py(m: float, tile_m: float) -> float:
    """Smallest power of two >= max(m, 16), capped at ``tile_m`` (= the numpy form)."""
    t = MMA_MIN_M
    while t < m and t < tile_m:
        t *= 2.0
    return min(t, tile_m)


NP = SimpleNamespace(
    maximum=np.maximum,
    minimum=np.minimum,
    ceil=np.ceil,
    floor=np.floor,
    where=np.where,
    sqrt=np.sqrt,
    log=np.log,
    tile_rows=_tile_rows_np,
)
"""numpy namespace: arrays of configurations."""

PY = SimpleNamespace(
    maximum=max,
    minimum=min,
    ceil=math.ceil,
    floor=math.floor,
    where=lambda c, a, b: a if c else b,
    sqrt=math.sqrt,
    log=math.log,
    tile_rows=_tile_rows_py,
)
"""Python-float namespace: one configuration."""


@dataclass(frozen=True, slots=True)
class _Gemm:
    """``[m x k] @ [k x n]`` with n, k fixed by the plan, repeated per step
    (:func:`..ops.roofline.gemm`); ``m > 0`` varies per configuration. Times are per step
    (the repeat count folded in)."""

    compute_s: float  # seconds per row at full utilisation: repeats x 2 n k / peak
    systolic_s: float  # the same at a systolic array's (m-independent) utilisation
    row_s: float  # memory seconds per row: repeats x (k a + n out) / bandwidth
    weight_s: float  # memory seconds of the weights
    over_s: float  # kernel overheads
    systolic: bool
    tile_m: float
    tile_n: float
    tiles_n: float
    n_pad: float  # n / (tiles_n tile_n)
    units: float
    split_max: float  # split-K bound max(floor(k / 256), 1)

    def time(self, xp: Any, m: V) -> V:
        if self.systolic:
            t_c = m * self.systolic_s
        else:
            t_c = m * self.compute_s / xp.maximum(_tile_util(xp, self, xp.maximum(m, 1.0)), 1e-9)
        return xp.maximum(t_c, m * self.row_s + self.weight_s) + self.over_s


def _tile_util(xp: Any, g: Any, m: V) -> V:
    """GPU tile and wave quantisation (:func:`..ops.roofline.gemm_utilisation`) of GEMMs
    ``g`` (one, or a stack whose constants are columns) with ``m`` rows."""
    tm = xp.tile_rows(m, g.tile_m)
    tiles_m = xp.ceil(m / tm)
    tiles = tiles_m * g.tiles_n
    pad = m / (tiles_m * tm) * g.n_pad
    split = xp.minimum(xp.maximum(xp.floor(g.units / tiles), 1.0), g.split_max)
    work = tiles * split
    return pad * (work / (xp.ceil(work / g.units) * g.units))


@dataclass(frozen=True, slots=True)
class _GemmStack:
    """The GEMMs of a step as one (GEMMs x configurations) evaluation (numpy only): the
    fields of :class:`_Gemm` as columns; per-configuration work shared by all GEMMs (tile
    rows along M) is done once, on one row, and broadcast.

    On GPUs the compute time is rewritten with the padding factors cancelled:
    ``m c / (pad wave_eff)`` with ``pad = m / (tiles_m tm) x n / (tiles_n tile_n)`` and
    ``wave_eff = work / (waves units)``, ``work = tiles_m tiles_n split``, is
    ``c units tile_n / n x tm waves / split`` for ``m >= 1`` (``tile_c`` holds the first
    factor; ``m < 1`` scales by ``m``). The ``1e-9`` floor on the utilisation of
    :func:`..ops.roofline.gemm` never binds when ``n_pad / (16 units) > 1e-9`` (the
    utilisation is at least 1/16 x n_pad x 1/units), checked when the stack is built."""

    compute_s: NDArray[np.float64]
    systolic_s: NDArray[np.float64]
    tile_c: NDArray[np.float64]
    row_s: NDArray[np.float64]
    weight_s: NDArray[np.float64]
    tiles_n: NDArray[np.float64]
    n_pad: NDArray[np.float64]
    split_max: NDArray[np.float64]
    over_s: float
    systolic: bool
    cancelled: bool  # the rewritten form applies (the utilisation floor cannot bind)
    tile_m: float
    units: float

    @classmethod
    def of(cls, gemms: list[_Gemm]) -> _GemmStack:
        def col(name: str) -> NDArray[np.float64]:
            return np.array([getattr(g, name) for g in gemms], dtype=np.float64)[:, None]

        names = ("compute_s", "systolic_s", "row_s", "weight_s", "tiles_n", "n_pad", "split_max")
        g0 = gemms[0]
        tile_c = [g.compute_s * g.units / (g.n_pad * g.tiles_n) for g in gemms]
        return cls(
            **{n: col(n) for n in names},
            tile_c=np.array(tile_c)[:, None],
            over_s=math.fsum(g.over_s for g in gemms),
            systolic=g0.systolic,
            cancelled=all(g.n_pad / (16.0 * g.units) > 1e-9 for g in gemms),
            tile_m=g0.tile_m,
            units=g0.units,
        )

    def time(self, m: NDArray[np.float64]) -> NDArray[np.float64]:
        """Summed time of the GEMMs, all with rows ``m`` (1-D)."""
        m = m[None, :]
        if self.systolic:
            t_c = m * self.systolic_s
        elif self.cancelled:
            m1 = np.maximum(m, 1.0)
            tm = _tile_rows_np(m1, self.tile_m)
            tiles_m = np.ceil(m1 / tm)
            split = np.floor(self.units / (tiles_m * self.tiles_n))
            np.clip(split, 1.0, self.split_max, out=split)
            waves = np.ceil(tiles_m * self.tiles_n * split / self.units)
            t_c = self.tile_c * tm * waves / split
            if np.any(m < 1.0):
                t_c *= np.minimum(m, 1.0)
        else:
            util = _tile_util(NP, self, np.maximum(m, 1.0))
            t_c = m * self.compute_s / np.maximum(util, 1e-9)
        return np.sum(np.maximum(t_c, m * self.row_s + self.weight_s), axis=0) + self.over_s


@dataclass(frozen=True, slots=True)
class _GemmShape:
    """Plan constants of one GEMM shape, before the repeat count is folded in."""

    flops_per_row: float
    peak: float
    row_s: float
    weight_s: float
    over_s: float
    systolic: bool
    systolic_util: float
    tile_m: float
    tile_n: float
    tiles_n: float
    n_pad: float
    units: float
    split_max: float


def _shape(
    dev: Device, n: float, k: float, *, dtype: str, a: float, w: float, out: float
) -> _GemmShape:
    mx = dev.chip.matrix
    n, k = float(n), float(k)
    n1, k1 = max(n, 1.0), max(k, 1.0)
    systolic = 1.0
    if mx.arch == "systolic":
        systolic = (k1 / (math.ceil(k1 / mx.rows) * mx.rows)) * (
            n1 / (math.ceil(n1 / mx.cols) * mx.cols)
        )
    tiles_n = float(math.ceil(n1 / mx.tile_n))
    bw = dev.hbm_bytes_per_s * dev.eff.memory_efficiency
    return _GemmShape(
        flops_per_row=2.0 * n * k,
        peak=dev.peak_flops(dtype) * dev.gemm_efficiency(dtype),
        row_s=(k * a + n * out) / bw,
        weight_s=k * n * w / (bw * dev.weight_stream_factor(dtype)),
        over_s=dev.eff.kernel_overhead_s,
        systolic=mx.arch == "systolic",
        systolic_util=systolic,
        tile_m=float(mx.tile_m),
        tile_n=float(mx.tile_n),
        tiles_n=tiles_n,
        n_pad=n1 / (tiles_n * mx.tile_n),
        units=float(mx.units),
        split_max=max(math.floor(k1 / 256.0), 1.0),
    )


def _gemm(
    dev: Device, n: float, k: float, times: float, *, dtype: str, a: float, w: float, out: float
) -> _Gemm:
    g = _shape(dev, n, k, dtype=dtype, a=a, w=w, out=out)
    f = float(times)
    compute = f * g.flops_per_row / g.peak
    return _Gemm(
        compute_s=compute,
        systolic_s=compute / max(g.systolic_util, 1e-9),
        row_s=f * g.row_s,
        weight_s=f * g.weight_s,
        over_s=f * g.over_s,
        systolic=g.systolic,
        tile_m=g.tile_m,
        tile_n=g.tile_n,
        tiles_n=g.tiles_n,
        n_pad=g.n_pad,
        units=g.units,
        split_max=g.split_max,
    )


@dataclass(frozen=True, slots=True)
class _Attention:
    """Attention of some layers (full or windowed; MLA absorbed/decompressed): FLOPs
    ``B s keys flop``, bytes ``B cache kv + T q``; seconds per step, layers folded in."""

    windowed: bool
    window: float
    mla: bool  # MLA: decode (absorbed) and prefill (decompressed) differ
    flop_s: float  # seconds per (sequence x new token x key), decode form
    flop_prefill_s: float  # same, s > 1 (differs for MLA only)
    kv_s: float  # seconds per cached token per sequence (memory)
    q_s: float  # seconds per new token (Q/O traffic)
    over_s: float

    def time(self, xp: Any, b: V, s: V, c: V, t: V) -> V:
        keys = c + (s + 1.0) / 2.0
        cache = c + s
        if self.windowed:
            keys = xp.minimum(keys, self.window)
            cache = xp.minimum(cache, self.window)
        flop = xp.where(s > 1, self.flop_prefill_s, self.flop_s) if self.mla else self.flop_s
        # per-sequence factors first: in a decode step they are shared by every context
        t_c = keys * (b * s * flop)
        t_m = cache * (b * self.kv_s) + t * self.q_s
        return xp.maximum(t_c, t_m) + self.over_s


def _attention(
    layers: float,
    window: float | None,
    *,
    flop: float,
    flop_prefill: float,
    kv: float,
    q: float,
    over: float,
) -> _Attention:
    return _Attention(
        windowed=window is not None,
        window=math.inf if window is None else float(window),
        mla=flop_prefill != flop,
        flop_s=layers * flop,
        flop_prefill_s=layers * flop_prefill,
        kv_s=layers * kv,
        q_s=layers * q,
        over_s=layers * over,
    )


@dataclass(frozen=True, slots=True)
class _Linear:
    """Linear-attention layers but their projections (forward._linear_attention_ops): the
    recurrence (decode: vector rate, prompt chunks: chunked form at the attention rate; the
    per-sequence cache read and written once a step); seconds per step, layers folded in. The
    convolution and gated norm (streaming, token-proportional) are memory ops in the reference
    and padded with the other token ops under CUDA graphs (:mod:`.graphs`): their coefficients
    ride here and :func:`build_step_kernel` adds them to the step's token ops."""

    decode_flop_s: float  # seconds per token, recurrent form
    prefill_flop_s: float  # seconds per token, chunked form (s > 1)
    seq_s: float  # seconds per sequence: cache read + write, chunked form's bandwidth
    tok_s: float  # seconds per token: activation traffic of the recurrence (same)
    chunk_s: float  # seconds per token: per-chunk states (s > 1)
    decode_bw: float  # recurrent (decode) kernel's bandwidth over the chunked form's
    stream_s: float  # seconds per token: convolution and gated norm (token ops, see above)
    stream_over_s: float  # their launches (likewise)
    over_s: float  # the recurrence's launch

    def time(self, xp: Any, b: V, s: V, c: V, t: V) -> V:
        prefill = s > 1
        t_c = t * xp.where(prefill, self.prefill_flop_s, self.decode_flop_s)
        t_m = b * self.seq_s + t * (self.tok_s + xp.where(prefill, self.chunk_s, 0.0))
        t_m = xp.where(prefill, t_m, t_m / self.decode_bw)
        return xp.maximum(t_c, t_m) + self.over_s


def _linear_parts(model: ModelSpec, dev: Device, plan: InferencePlan) -> list[Any]:
    """Projections (GEMMs) and the :class:`_Linear` of the linear-attention layers."""
    n = float(model.n_linear_layers)
    sh = linear_shape(model, plan.tp)
    a, r, w = _formats(plan)
    cd = plan.compute_dtype
    bw = dev.hbm_bytes_per_s * dev.eff.memory_efficiency
    peak = dev.peak_flops(dev.attention_dtype(plan.act_dtype, "bf16"))
    peak *= dev.eff.attention_efficiency
    vec = dev.vector_flops
    stream = max(sh.conv_flops_per_token() / vec, sh.conv_token_bytes(a) / bw) + max(
        sh.norm_flops_per_token() / vec, sh.norm_token_bytes(a) / bw
    )
    return [
        _gemm(dev, sh.in_width, model.d_model, n, dtype=cd, a=a, w=w, out=r),
        _Linear(
            decode_flop_s=n * sh.decode_flops_per_token() / vec,
            prefill_flop_s=n * sh.prefill_flops_per_token() / peak,
            seq_s=n * sh.step_state_bytes_per_seq() / bw,
            tok_s=n * sh.core_token_bytes(a) / bw,
            chunk_s=n * sh.prefill_state_bytes_per_token() / bw,
            decode_bw=dev.linear_decode_bytes_per_s(sh.kind) / bw,
            stream_s=n * stream,
            stream_over_s=n * 2.0 * dev.eff.kernel_overhead_s,
            over_s=n * dev.eff.kernel_overhead_s,
        ),
        _gemm(dev, model.d_model, sh.out_in, n, dtype=cd, a=a, w=w, out=r),
    ]


@dataclass(frozen=True, slots=True)
class _Dsa:
    """DeepSeek Sparse Attention of every layer (forward._dsa_ops): the indexer's scores and
    top-k over all cached keys, and the sparse MLA over ``min(keys, topk)`` of them; seconds
    per step, layers folded in."""

    topk: float
    idx_flop_s: float  # indexer: seconds per (query, key) of compute
    idx_pair_s: float  # ... of logit writes (memory)
    idx_kv_s: float  # ... per cached token per sequence (its key cache)
    idx_q_s: float  # ... per new token (queries, scales, head weights)
    topk_s: float  # top-k: seconds per (query, key) of logit reads
    flop_s: float  # sparse MLA, decode rate: seconds per (query, selected key)
    flop_prefill_s: float  # same at the prefill rate (s > 1)
    kv_s: float  # seconds per selected latent read per sequence
    q_s: float  # Q/O traffic per new token
    over_s: float  # the three kernels' launches

    def time(self, xp: Any, b: V, s: V, c: V, t: V) -> V:
        keys = c + (s + 1.0) / 2.0
        cache = c + s
        pairs = b * s * keys
        idx = xp.maximum(
            pairs * self.idx_flop_s,
            cache * (b * self.idx_kv_s) + t * self.idx_q_s + pairs * self.idx_pair_s,
        )
        sel = xp.minimum(keys, self.topk)
        flop = xp.where(s > 1, self.flop_prefill_s, self.flop_s)
        t_c = sel * (b * s * flop)
        t_m = xp.minimum(cache, s * self.topk) * (b * self.kv_s) + t * self.q_s
        return idx + pairs * self.topk_s + xp.maximum(t_c, t_m) + self.over_s


def _dsa_part(model: ModelSpec, dev: Device, plan: InferencePlan, hq: int, lat: int) -> _Dsa:
    """The :class:`_Dsa` of a model with a ``dsa`` table (forward._dsa_ops)."""
    assert model.dsa is not None and model.mla is not None
    x, mla = model.dsa, model.mla
    L = float(model.n_layers)
    bw = dev.hbm_bytes_per_s * dev.eff.memory_efficiency
    hI, dI = x.index_n_heads, x.index_head_dim
    idx_peak = dev.peak_flops(dev.indexer_dtype()) * dev.eff.attention_efficiency
    act, kv = plan.act_dtype, plan.kv_dtype
    per_key = 2.0 * hq * (2 * mla.kv_lora_rank + mla.qk_rope_head_dim)
    a = DTYPE_BYTES[plan.act_dtype]
    return _Dsa(
        topk=float(x.index_topk),
        idx_flop_s=L * 2.0 * hI * dI / idx_peak,
        idx_pair_s=L * 4.0 / bw,
        idx_kv_s=L * (dI * INDEXER_KEY_BYTES + INDEXER_SCALE_BYTES) / bw,
        idx_q_s=L * hI * (dI * INDEXER_KEY_BYTES + 8.0) / bw,  # query, its scale, head weight
        topk_s=L * 4.0 * TOPK_LOGIT_READS / bw,
        flop_s=L * per_key / dev.sparse_mla_flops(act, kv, prefill=False),
        flop_prefill_s=L * per_key / dev.sparse_mla_flops(act, kv, prefill=True),
        kv_s=L * lat * DTYPE_BYTES[plan.kv_dtype] / bw,
        q_s=L * 2.0 * hq * model.head_dim * a / bw,
        over_s=L * 3.0 * dev.eff.kernel_overhead_s,
    )


def _linear_mem_s(dev: Device, nbytes: float, flops: float) -> float:
    """Seconds per token of a streaming op of ``nbytes`` and ``flops`` per token
    (:func:`..ops.roofline.memory_op`; its launch overhead is counted apart)."""
    return max(flops / dev.vector_flops, nbytes / (dev.hbm_bytes_per_s * dev.eff.memory_efficiency))


@dataclass(frozen=True, slots=True)
class _AllReduce:
    """Tensor-parallel all-reduce of ``T D r`` bytes, ``times`` per step, and the overhead of
    the norm that follows (saved where a custom kernel fuses it)."""

    times: float
    bytes_per_token: float
    library: tuple[AffineTime, ...]
    custom: tuple[AffineTime, ...]
    fuses_norm: bool
    norm_over_s: float

    def time(self, xp: Any, t: V) -> V:
        b = t * self.bytes_per_token
        lib = _cheapest(xp, self.library, b)
        if not self.custom:
            return self.times * (lib + self.norm_over_s)
        cus = _cheapest(xp, self.custom, b)
        norm = self.norm_over_s
        if self.fuses_norm:  # a tie goes to the library (it comes first in ALGORITHMS)
            norm = xp.where(cus < lib, 0.0, norm)
        return self.times * (xp.minimum(lib, cus) + norm)


def _cheapest(xp: Any, cands: tuple[AffineTime, ...], b: V) -> V:
    best: V = math.inf
    for c in cands:
        unlimited = isinstance(c.limit, float) and c.limit == math.inf
        t = c(b) if unlimited else xp.where(b <= c.limit, c(b), math.inf)
        best = xp.minimum(best, t)
    return best


@dataclass(frozen=True, slots=True)
class _Grouped:
    """A grouped GEMM of ``rows`` token rows over ``hit`` expert matrices of ``k x n``
    (:func:`..ops.roofline.grouped_gemm`), repeated ``times``."""

    times: float
    flops_per_row: float
    peak: float
    row_s: float
    group_s: float  # memory time of one expert's weights
    over_s: float
    systolic: bool
    systolic_util: float  # K and N padding of a systolic array
    array_rows: float
    tile_m: float
    tile_n: float
    tiles_n: float
    n1: float
    units: float
    ge: float  # the stack's grouped-kernel factor (Device.grouped_efficiency)

    def time(self, xp: Any, rows: V, hit: V) -> V:
        g = xp.maximum(hit, 1e-9)
        m_g = xp.maximum(xp.maximum(rows, 1e-9) / g, 1.0)
        if self.systolic:
            util = self.systolic_util * (m_g / xp.maximum(m_g, self.array_rows))
        else:
            tm = xp.tile_rows(m_g, self.tile_m)
            tiles = g * xp.ceil(m_g / tm) * self.tiles_n
            pad = (g * m_g * self.n1) / (tiles * tm * self.tile_n)
            waves = xp.maximum(xp.ceil(tiles / self.units), 1.0)
            util = pad * xp.minimum(tiles / (waves * self.units), 1.0)
        t_c = rows * self.flops_per_row / (self.peak * xp.maximum(util, 1e-9))
        t_m = rows * self.row_s + hit * self.group_s
        return self.times * (xp.maximum(t_c / self.ge, t_m) + self.over_s)


def _grouped(
    dev: Device, n: float, k: float, times: float, *, dtype: str, a: float, w: float, out: float
) -> _Grouped:
    g = _shape(dev, n, k, dtype=dtype, a=a, w=w, out=out)
    return _Grouped(
        times=float(times),
        flops_per_row=g.flops_per_row,
        peak=dev.peak_flops(dtype) * dev.grouped_gemm_peak_efficiency(dtype),
        row_s=g.row_s,
        group_s=g.weight_s,
        over_s=g.over_s,
        systolic=g.systolic,
        systolic_util=g.systolic_util,
        array_rows=float(dev.chip.matrix.rows),
        tile_m=g.tile_m,
        tile_n=g.tile_n,
        tiles_n=g.tiles_n,
        n1=max(float(n), 1.0),
        units=g.units,
        ge=dev.grouped_efficiency,
    )


@dataclass(frozen=True, slots=True)
class _AllToAll:
    """Expert-parallel dispatch + combine of one MoE layer (:func:`..parallel.moe.
    dispatch_combine` priced by :func:`..parallel.hierarchical.all_to_all_time`), ``times``
    per step, for ``tok`` tokens routed by each rank."""

    times: float
    bytes_per_token: float  # distinct ranks x D
    imb_c: float  # 2 ln(ep) (1 - 1/ep) of the busiest-rank imbalance
    imb_skew: float  # 2 ln(ep) c² ep/E: expert popularity skew (parallel/moe.imbalance)
    k: float
    alpha: float
    local_c: float  # seconds per byte inside the domain (hops / bw), 0 when alone there
    remote_c: float  # seconds per byte to other domains
    dispatch_b: float
    combine_b: float

    def time(self, xp: Any, tok: V) -> V:
        skew = 1.0 + xp.sqrt(self.imb_c / xp.maximum(tok * self.k, 1e-9) + self.imb_skew)
        busiest = tok * self.bytes_per_token * skew
        t = 0.0
        for nb in (self.dispatch_b, self.combine_b):
            b = busiest * nb
            t = t + (self.alpha + xp.maximum(self.local_c * b, self.remote_c * b))
        return self.times * t


def _imb_skew(ep: int, n_experts: int) -> float:
    """Popularity-skew term of the busiest-rank imbalance (:func:`..parallel.moe.imbalance`
    with the inference load CV)."""
    return 2.0 * math.log(ep) * INFERENCE_EXPERT_LOAD_CV**2 * ep / n_experts


def _all_to_all(
    dev: Device, model: ModelSpec, ep: int, stride: int, times: float, a: float, r: float
) -> _AllToAll | None:
    if ep <= 1:
        return None
    assert model.moe is not None
    n_in_a, n_out_a = coll.split_group(dev, ep, stride)
    bw_in_a, st_in_a = coll._in_domain(dev, n_in_a)
    n_in, n_out, bw_in, st_in = (float(x) for x in (n_in_a, n_out_a, bw_in_a, st_in_a))
    topo = dev.chip.interconnect.topology
    hops = 1.0
    if topo == "ring":
        hops = max(n_in / 4.0, 1.0)
    elif topo in ("torus2d", "torus3d"):
        hops = max(math.sqrt(n_in) / 2.0, 1.0)
    out_bw = dev.scale_out_bytes_per_s_dir * dev.eff.collective_efficiency
    steps = max(st_in / 2.0, 1.0) + (1.0 if n_out > 1 else 0.0)
    k = model.moe.experts_per_token
    return _AllToAll(
        times=times,
        bytes_per_token=float(distinct_ranks(k, ep)) * model.expert_width,
        imb_c=2.0 * math.log(ep) * (1.0 - 1.0 / ep),
        imb_skew=_imb_skew(ep, model.moe.n_experts),
        k=float(k),
        alpha=steps * dev.eff.collective_latency_s,
        local_c=(n_in - 1) / ep * hops / bw_in if n_in > 1 else 0.0,
        remote_c=(ep - n_in) / ep / out_bw,
        dispatch_b=a,
        combine_b=r,
    )


@dataclass(frozen=True, slots=True)
class _Moe:
    """Routed experts of ``times`` MoE layers (:func:`..parallel.moe.expert_ops`), the
    expert-parallel all-to-all and the shared experts."""

    times: float
    local_all: bool  # a rank routes all the replica's tokens (dp = 1)
    local_div: float  # else replica tokens / local_div
    k_over_ep: float
    imb_c: float
    imb_skew: float
    n_local: float
    p_miss: float  # 1 - k/E
    router: _Gemm
    local_s: float  # router top-k, permute, unpermute: seconds per routed token
    row_s: float  # expert activation: seconds per token-expert row
    over_s: float  # launch overheads of those four streaming ops
    act_over_s: float  # the activation's alone
    up: _Grouped
    down: _Grouped
    dispatch: _AllToAll | None
    shared: tuple[_Gemm, ...]
    latent: tuple[_Gemm, ...]  # LatentMoE's D -> latent -> D projections of the routed tokens

    def _rows_hit(self, xp: Any, t_all: V) -> tuple[V, V]:
        """Token-expert rows on the busiest rank and experts hit (parallel/moe.expert_ops)."""
        mean_rows = t_all * self.k_over_ep
        rows = mean_rows * (1.0 + xp.sqrt(self.imb_c / xp.maximum(mean_rows, 1e-9) + self.imb_skew))
        return rows, self.n_local * (1.0 - self.p_miss**t_all)

    def expert_time(self, xp: Any, t_all: V) -> V:
        """The routed-expert GEMMs and their activation: the ops that see the pooled tokens of
        all attention-dp ranks (:data:`.adp.EXPERT_SIDE`)."""
        rows, hit = self._rows_hit(xp, t_all)
        total = self.up.time(xp, rows, hit) + self.down.time(xp, rows, hit)
        return total + (rows * self.row_s + self.act_over_s) * self.times

    def time(self, xp: Any, t: V, t_all: V) -> V:
        tl = t_all if self.local_all else t_all / self.local_div
        rows, hit = self._rows_hit(xp, t_all)
        total = self.router.time(xp, tl) + self.up.time(xp, rows, hit)
        total = total + self.down.time(xp, rows, hit)
        total = total + (tl * self.local_s + rows * self.row_s + self.over_s) * self.times
        if self.dispatch is not None:
            total = total + self.dispatch.time(xp, tl)
        for g in self.latent:
            total = total + g.time(xp, tl)
        for g in self.shared:
            total = total + g.time(xp, t)
        return total


@dataclass(frozen=True, slots=True)
class _Memory:
    """Whether a batch fits in memory (:func:`..parallel.memory.memory_breakdown`, same
    expressions so that the verdict is the reference's)."""

    weights: float
    reserve: float
    capacity: float
    kv_per_token: float
    state: float
    """fixed per-sequence cache (linear-attention states), bytes"""
    windowed: bool
    full_frac: float
    window: float
    act_per_token: float
    dp: float
    usable: float

    def per_seq(self, xp: Any, ctx: V) -> V:
        """KV bytes of one sequence of ``ctx`` tokens (memory.kv_bytes_per_seq_per_chip)."""
        if self.windowed:
            f = self.full_frac
            return self.kv_per_token * (f * ctx + (1 - f) * xp.minimum(ctx, self.window))
        if self.state:
            return self.kv_per_token * ctx + self.state
        return self.kv_per_token * ctx

    def act(self, tokens: V) -> V:
        """Activation bytes while prefilling ``tokens`` (memory.activation_bytes_per_chip)."""
        return (tokens if self.dp == 1.0 else tokens / self.dp) * self.act_per_token

    def free(self, xp: Any, batch: V, ctx: V, tokens: V) -> V:
        """Free bytes per chip with ``batch`` sequences of ``ctx`` tokens while prefilling
        ``tokens`` in one step (negative: does not fit)."""
        used = self.weights + batch * self.per_seq(xp, ctx) + self.act(tokens) + self.reserve
        return self.capacity - used

    def max_batch(self, xp: Any, ctx: V, tokens: V) -> V:
        """Most sequences of ``ctx`` tokens that fit (estimate.max_batch; may be 0)."""
        free = self.usable - self.weights - self.act(tokens)
        return xp.maximum(xp.floor(free / self.per_seq(xp, ctx)), 0.0)


def _memory(model: ModelSpec, dev: Device, plan: InferencePlan) -> _Memory:
    window, full_frac = math.inf, 1.0
    if model.sliding_window and model.mla is None:
        window = float(model.sliding_window)
        full_frac = kv_full_fraction(model, plan)
    weights = weight_bytes_per_chip(model, plan)
    return _Memory(
        weights=weights,
        reserve=dev.reserve_bytes(weights),
        capacity=dev.hbm_bytes,
        kv_per_token=kv_bytes_per_token_per_chip(model, plan),
        state=state_bytes_per_seq_per_chip(model, plan),
        windowed=window != math.inf,
        full_frac=full_frac,
        window=window,
        # (T/dp) x width x bytes, with bytes a power of two: exact either way round
        act_per_token=float(activation_bytes_per_chip(model, plan, float(plan.dp))),
        dp=float(plan.dp),
        usable=dev.usable_bytes(weights),
    )


@dataclass(frozen=True, kw_only=True)
class StepKernel:
    """Step time of one (model, device, plan) for arrays (``NP``) or floats (``PY``) of
    (batch, new tokens, past context); build it with :func:`step_kernel` (cached)."""

    model: ModelSpec
    dev: Device
    plan: InferencePlan
    dp_one: bool
    dp: float
    replicas: float
    gemms: tuple[_Gemm, ...]
    """GEMMs over the attention group's tokens T"""
    lm_head: _Gemm
    stack: _GemmStack
    """``gemms`` and ``lm_head``, for numpy evaluation when they share M"""
    stack_t: _GemmStack
    """``gemms`` alone"""
    attention: tuple[_Attention | _Dsa | _Linear, ...]
    token_s: float
    """streaming ops (norms, activations, embedding): seconds per token T"""
    fixed_s: float
    """their launch overheads"""
    all_reduce: _AllReduce | None
    moe: _Moe | None
    pipelined: bool
    pipe_alpha: float
    """pipeline sends per step: (pp - 1) x (latency + T x pipe_s)"""
    pipe_s: float
    pipe_hops: float
    step_overhead_s: float
    host_floor: bool
    host_floor_s: float
    """kernels x host launch time (eager stacks), else 0"""
    host_per_seq_s: float
    memory: _Memory

    def tokens_time(self, xp: Any, bd: V, t: V, t_all: V, lt: V) -> V:
        """Device time of every op but attention: they see only token counts (``bd``
        sequences and ``t`` tokens per attention group, ``t_all`` per replica, ``lt`` logits
        positions per replica)."""
        total = t * self.token_s + self.fixed_s
        head_m = lt if self.dp_one else lt / self.dp
        if xp is NP and np.ndim(t) == 1 and head_m is t:  # one M for all (decode steps)
            total = total + self.stack.time(t)
        elif xp is NP and np.ndim(t) == 1:
            total = total + self.stack_t.time(t) + self.lm_head.time(xp, head_m)
        else:
            for g in self.gemms:
                total = total + g.time(xp, t)
            total = total + self.lm_head.time(xp, head_m)
        if self.all_reduce is not None:
            total = total + self.all_reduce.time(xp, t)
        if self.moe is not None:
            total = total + self.moe.time(xp, t, t_all)
        return total

    def expert_time(self, xp: Any, t_all: V) -> V:
        """Device time of the routed-expert GEMMs and activation (0 for dense models)."""
        return 0.0 if self.moe is None else self.moe.expert_time(xp, t_all)

    def attention_time(self, xp: Any, bd: V, s: V, c: V, t: V) -> V:
        total: V = 0.0
        for a in self.attention:
            total = total + a.time(xp, bd, s, c, t)
        return total

    def finish(self, xp: Any, device: V, bd: V, t: V) -> V:
        """Step time from the ops' device time: host launch floor, per-sequence host work,
        pipeline transfers and the fixed step overhead (:attr:`.forward.ForwardCost.time`)."""
        return self.host_bound(xp, device, bd) + self.fixed_time(xp, t)

    def host_bound(self, xp: Any, device: V, bd: V) -> V:
        """Device time raised to the host's: eager launches, per-sequence host work."""
        if self.host_floor:
            device = xp.maximum(device, self.host_floor_s)
        if self.host_per_seq_s:
            device = xp.maximum(device, self.host_per_seq_s * bd)
        return device

    def fixed_time(self, xp: Any, t: V) -> V:
        """Step overhead and pipeline transfers (``t`` tokens per attention group)."""
        if self.pipelined:
            return self.step_overhead_s + self.pipe_hops * (self.pipe_alpha + t * self.pipe_s)
        return self.step_overhead_s

    def step_time(self, xp: Any, batch: V, s: V, c: V) -> V:
        """Time of one forward step (one logits position per sequence)."""
        bd = batch if self.dp_one else batch / self.dp
        t = bd * s
        t_all = t if self.dp_one else batch * s
        dev = self.tokens_time(xp, bd, t, t_all, batch) + self.attention_time(xp, bd, s, c, t)
        return self.finish(xp, dev, bd, t)


def _attention_parts(model: ModelSpec, dev: Device, plan: InferencePlan) -> list[Any]:
    """QKV/O projections and attention of every layer (forward._attention_ops)."""
    D, hd = model.d_model, model.head_dim
    hq, hkv = _heads_per_chip(model, plan.tp)
    a, r, w = _formats(plan)
    bw = dev.hbm_bytes_per_s * dev.eff.memory_efficiency
    peak = dev.peak_flops(dev.attention_dtype(plan.act_dtype, plan.kv_dtype))
    peak *= dev.eff.attention_efficiency
    kvb = DTYPE_BYTES[plan.kv_dtype]
    cd = plan.compute_dtype
    La = float(model.n_attention_layers)
    q = 2 * hq if model.attn_output_gate else hq  # the output gate doubles q_proj
    n_full, n_swa, _, _ = _layer_counts(model)
    ga = model.global_attention
    # (layers, window, head width, KV heads per chip, KV projections) per kind of layer
    kinds = [(n_full, None, hd, hkv, 2), (n_swa, model.sliding_window, hd, hkv, 2)]
    if ga is not None:  # forward._attention_ops: full layers of their own shape
        kinds[0] = (n_full, None, ga.head_dim, -(-ga.n_kv_heads // plan.tp), 1 if ga.k_eq_v else 2)
        parts: list[Any] = [
            _gemm(dev, (q + nkv * kh) * h, D, float(n), dtype=cd, a=a, w=w, out=r)
            for n, _, h, kh, nkv in kinds
            if n
        ]
    else:
        parts = [_gemm(dev, (q + 2 * hkv) * hd, D, La, dtype=cd, a=a, w=w, out=r)]
    for n_layers, window, h, kh, _ in kinds:
        if n_layers:
            fc = 4.0 * hq * h / peak
            parts.append(
                _attention(
                    float(n_layers),
                    window,
                    flop=fc,
                    flop_prefill=fc,
                    kv=2 * kh * h * kvb / bw,
                    q=2.0 * hq * h * a / bw,
                    over=dev.eff.kernel_overhead_s,
                )
            )
    if ga is not None:
        parts += [
            _gemm(dev, D, hq * h, float(n), dtype=cd, a=a, w=w, out=r)
            for n, _, h, _, _ in kinds
            if n
        ]
    else:
        parts.append(_gemm(dev, D, hq * hd, La, dtype=cd, a=a, w=w, out=r))
    if model.linear_attention is not None:
        parts += _linear_parts(model, dev, plan)
    return parts


def _mla_parts(model: ModelSpec, dev: Device, plan: InferencePlan) -> list[Any]:
    """Multi-head latent attention (forward._mla_ops)."""
    assert model.mla is not None
    mla = model.mla
    D, hd, L = model.d_model, model.head_dim, model.n_layers
    hq, _ = _heads_per_chip(model, plan.tp)
    a, r, w = _formats(plan)
    cd = plan.compute_dtype

    def g(n: float, k: float) -> _Gemm:
        return _gemm(dev, n, k, L, dtype=cd, a=a, w=w, out=r)

    nope = hd - mla.qk_rope_head_dim
    lat = mla.kv_lora_rank + mla.qk_rope_head_dim
    if mla.q_lora_rank:
        parts: list[Any] = [g(mla.q_lora_rank, D), g(hq * hd, mla.q_lora_rank)]
    else:
        parts = [g(hq * hd, D)]
    parts += [g(lat, D), g(hq * (nope + mla.v_head_dim), mla.kv_lora_rank)]
    if model.dsa is not None:
        x = model.dsa
        parts += [
            g(x.index_n_heads * x.index_head_dim, mla.q_lora_rank or D),
            g(x.index_head_dim + x.index_n_heads, D),
            _dsa_part(model, dev, plan, hq, lat),
            g(D, hq * mla.v_head_dim),
        ]
        return parts
    bw = dev.hbm_bytes_per_s * dev.eff.memory_efficiency
    peak = dev.peak_flops(dev.attention_dtype(plan.act_dtype, plan.kv_dtype))
    peak *= dev.eff.attention_efficiency
    decode = dev.mla_decode_flops(plan.act_dtype, plan.kv_dtype)
    parts.append(
        _attention(
            float(L),
            None,
            flop=2.0 * hq * (2 * mla.kv_lora_rank + mla.qk_rope_head_dim) / decode,
            flop_prefill=2.0 * hq * (hd + mla.v_head_dim) / peak,
            kv=lat * DTYPE_BYTES[plan.kv_dtype] / bw,
            q=2.0 * hq * hd * a / bw,
            over=dev.eff.kernel_overhead_s,
        )
    )
    parts.append(g(D, hq * mla.v_head_dim))
    return parts


def _formats(plan: InferencePlan) -> tuple[float, float, float]:
    """(activation bytes, residual-stream bytes, stored weight bytes): forward._Step."""
    a = DTYPE_BYTES[plan.act_dtype]
    return a, max(a, 2.0), stored_weight_bytes(plan.weight_dtype)


def _block_parts(
    model: ModelSpec, dev: Device, plan: InferencePlan
) -> tuple[float, float, _AllReduce | None]:
    """Norms + residual adds (seconds per token, overhead) and the tensor-parallel all-reduce
    (forward._block_ops)."""
    D, L = model.d_model, model.n_layers
    _, r, _ = _formats(plan)
    times = float(model.blocks_per_layer * L)
    per_tok = _linear_mem_s(dev, 3.0 * D * r, 8.0 * D) * times
    ko = dev.eff.kernel_overhead_s
    if plan.tp <= 1:
        return per_tok, ko * times, None
    cands = all_reduce_candidates(dev, plan.tp)
    custom = ("one_shot", "two_shot")
    ar = _AllReduce(
        times=times,
        bytes_per_token=D * r,
        library=tuple(c for c in cands if c.name not in custom),
        custom=tuple(c for c in cands if c.name in custom),
        fuses_norm=bool(dev.eff.fused_allreduce_norm),
        norm_over_s=ko,
    )
    return per_tok, 0.0, ar


def _dense_parts(model: ModelSpec, dev: Device, plan: InferencePlan, n_dense: int) -> list[Any]:
    """Dense FFN layers (forward._dense_ffn_ops): two GEMMs and the activation's seconds per
    token and overhead."""
    a, r, w = _formats(plan)
    mats_in = 2 if model.gated else 1
    f = -(-model.d_ff // plan.tp)
    cd = plan.compute_dtype
    up = _gemm(dev, mats_in * f, model.d_model, n_dense, dtype=cd, a=a, w=w, out=r)
    down = _gemm(dev, model.d_model, f, n_dense, dtype=cd, a=a, w=w, out=r)
    act = _linear_mem_s(dev, f * (r * mats_in + a), 4.0 * f) * n_dense
    return [up, down, act, dev.eff.kernel_overhead_s * n_dense]


def _moe_part(model: ModelSpec, dev: Device, plan: InferencePlan, n_moe: int) -> _Moe:
    """Routed and shared experts (forward._moe_ops, parallel/moe.expert_ops)."""
    assert model.moe is not None
    moe = model.moe
    a, r, w = _formats(plan)
    E, k, D, W = moe.n_experts, moe.experts_per_token, model.d_model, model.expert_width
    cd = plan.compute_dtype
    mats_in = 2 if model.gated else 1
    fe = float(math.ceil(moe.moe_d_ff / plan.etp))
    ep = max(plan.ep, 1)
    rd = dev.attention_dtype("bf16", "fp16")  # the router runs in 16 bits (fp32 scores)
    # moe._quant_flops: quantising a value to a sub-16-bit format costs ~3 vector FLOPs
    quant = 3.0 if a < 2.0 else 0.0
    local = (
        _linear_mem_s(dev, 8.0 * E, 10.0 * E)  # router top-k
        + _linear_mem_s(dev, W * (r + k * a), quant * k * W)  # expand (permute)
        + _linear_mem_s(dev, W * (1.0 + k) * r, 2.0 * k * W)  # unpermute
    )
    latent: tuple[_Gemm, ...] = ()
    if moe.latent_dim is not None:
        latent = (
            _gemm(dev, W, D, n_moe, dtype=cd, a=a, w=w, out=r),
            _gemm(dev, D, W, n_moe, dtype=cd, a=a, w=w, out=r),
        )
    fs = -(-moe.n_shared_experts * moe.moe_d_ff // plan.tp)
    shared: tuple[_Gemm, ...] = ()
    if moe.n_shared_experts:
        shared = (
            _gemm(dev, mats_in * fs, D, n_moe, dtype=cd, a=a, w=w, out=r),
            _gemm(dev, D, fs, n_moe, dtype=cd, a=a, w=w, out=r),
        )
    disp = None
    if plan.dp > 1:
        disp = _all_to_all(dev, model, plan.ep, plan.etp, float(n_moe), a, r)
    return _Moe(
        times=float(n_moe),
        local_all=plan.dp == 1,
        local_div=float(plan.dp * plan.tp),
        k_over_ep=k / ep,
        imb_c=2.0 * math.log(ep) * (1.0 - 1.0 / ep),
        imb_skew=_imb_skew(ep, E),
        n_local=E / ep,
        p_miss=1.0 - k / E,
        router=_gemm(dev, E, D, n_moe, dtype=rd, a=2.0, w=2.0, out=4.0),
        local_s=local,
        row_s=_linear_mem_s(dev, fe * (mats_in * r + a), 4.0 * fe + quant * fe),
        over_s=4.0 * dev.eff.kernel_overhead_s,
        act_over_s=dev.eff.kernel_overhead_s,
        up=_grouped(dev, mats_in * fe, W, n_moe, dtype=cd, a=a, w=w, out=r),
        down=_grouped(dev, W, fe, n_moe, dtype=cd, a=a, w=w, out=r),
        dispatch=disp,
        shared=shared,
        latent=latent,
    )


def _edge_parts(model: ModelSpec, dev: Device, plan: InferencePlan) -> tuple[float, _Gemm]:
    """Embedding + final norm (seconds per token) and the LM head (forward._edge_ops)."""
    _, r, w = _formats(plan)
    D = model.d_model
    emb_b = max(w, 2.0)
    per_tok = _linear_mem_s(dev, D * (r + emb_b), 0.0) + _linear_mem_s(dev, 2.0 * D * r, 0.0)
    head = _gemm(
        dev,
        -(-model.vocab_size // plan.tp),
        D,
        1,
        dtype=dev.attention_dtype("bf16", "fp16"),
        a=r,
        w=emb_b,
        out=4.0,
    )
    return per_tok, head


def build_step_kernel(model: ModelSpec, dev: Device, plan: InferencePlan) -> StepKernel:
    """Work out every plan-constant quantity of a forward step once (validates the plan)."""
    plan.validate(model, dev)
    n_dense, n_moe = _layer_counts(model)[2:]
    parts = (
        _attention_parts(model, dev, plan) if model.mla is None else _mla_parts(model, dev, plan)
    )
    gemms = [p for p in parts if isinstance(p, _Gemm)]
    token_s, fixed_s, ar = _block_parts(model, dev, plan)
    for p in parts:
        if isinstance(p, _Linear):  # its convolution and gated norm are token ops
            token_s, fixed_s = token_s + p.stream_s, fixed_s + p.stream_over_s
    if n_dense:
        up, down, act_s, act_over = _dense_parts(model, dev, plan, n_dense)
        gemms += [up, down]
        token_s, fixed_s = token_s + act_s, fixed_s + act_over
    edge_s, head = _edge_parts(model, dev, plan)
    token_s, fixed_s = token_s + edge_s, fixed_s + 2.0 * dev.eff.kernel_overhead_s
    moe = _moe_part(model, dev, plan, n_moe) if n_moe and model.moe is not None else None
    hops, alpha, per_tok = 0.0, 0.0, 0.0
    if plan.pp > 1:
        _, r, _ = _formats(plan)
        if plan.chips_per_replica > dev.chip.interconnect.scale_up_domain:
            bw = dev.scale_out_bytes_per_s_dir
        else:
            ic = dev.chip.interconnect
            links = float(ic.links or 1) if ic.topology == "mesh" else 1.0
            bw = dev.scale_up_bytes_per_s_dir / links
        hops, alpha = float(plan.pp - 1), dev.eff.collective_latency_s
        per_tok = model.d_model * r / (bw * dev.eff.collective_efficiency)
    floor = 0.0
    if dev.eff.host_launch_s:  # the launch count is plan-constant: take the reference's
        kernels = float(forward_cost(model, dev, plan, 1.0, 1.0, 0.0).kernels)
        floor = kernels * dev.eff.host_launch_s
    return StepKernel(
        model=model,
        dev=dev,
        plan=plan,
        dp_one=plan.dp == 1,
        dp=float(plan.dp),
        replicas=float(plan.replicas),
        gemms=tuple(gemms),
        lm_head=head,
        stack=_GemmStack.of([*gemms, head]),
        stack_t=_GemmStack.of(gemms),
        attention=tuple(p for p in parts if isinstance(p, (_Attention, _Dsa, _Linear))),
        token_s=token_s,
        fixed_s=fixed_s,
        all_reduce=ar,
        moe=moe,
        pipelined=plan.pp > 1,
        pipe_alpha=alpha,
        pipe_s=per_tok,
        pipe_hops=hops,
        step_overhead_s=dev.eff.step_overhead_s,
        host_floor=floor > 0.0,
        host_floor_s=floor,
        host_per_seq_s=dev.eff.host_per_seq_s or 0.0,
        memory=_memory(model, dev, plan),
    )


_CACHE: dict[tuple[int, int, InferencePlan], StepKernel] = {}
_CACHE_MAX = 512


def step_kernel(model: ModelSpec, dev: Device, plan: InferencePlan) -> StepKernel:
    """The kernel of (model, dev, plan), built once and kept (objects are frozen, so a kernel
    found for the same objects is still right)."""
    key = (id(model), id(dev), plan)
    k = _CACHE.get(key)
    if k is not None and k.model is model and k.dev is dev:
        return k
    k = build_step_kernel(model, dev, plan)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = k
    return k

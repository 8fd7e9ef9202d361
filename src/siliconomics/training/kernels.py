"""Lean time-only kernels for training plan evaluation, on numpy arrays or on Python floats.

The physics is that of :mod:`..ops.roofline` (GEMM with tile/wave or systolic padding,
memory-bound and fused-attention ops) and :mod:`..parallel.hierarchical` (collectives on the
scale-up domain and the network): the same formulas, in the same floating-point order, so
results are bit-identical (``tests/test_train_kernels.py`` checks every kernel against its
reference on grids). What differs is the bookkeeping:

* only the time is computed (no :class:`..ops.roofline.OpCost` with its FLOP, byte and
  zero-filled arrays built only to broadcast);
* everything that depends on the device alone (peaks x efficiencies, bandwidths, latencies,
  the in-domain collective table) is computed once per device (:func:`consts`), not per op;
* every kernel takes a backend ``xp``: :data:`NP` (numpy, for grids of plans) or :data:`SC`
  (Python floats, for one plan: ~50 ns an operation instead of ~1 µs for a numpy call).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ops.device import Device
from ..parallel.collectives import _links_used
from ..parallel.hierarchical import ALGORITHMS, _check

MMA_MIN_M = 16.0


class _Scalar:
    """The numpy functions the kernels use, on Python numbers (same IEEE results)."""

    @staticmethod
    def where(c: Any, a: Any, b: Any) -> Any:
        return a if c else b

    @staticmethod
    def maximum(a: Any, b: Any) -> Any:
        return a if a >= b else b

    @staticmethod
    def minimum(a: Any, b: Any) -> Any:
        return a if a <= b else b

    @staticmethod
    def clip(x: Any, lo: Any, hi: Any) -> Any:
        x = x if x >= lo else lo
        return x if x <= hi else hi

    @staticmethod
    def ceil(x: Any) -> float:
        return float(math.ceil(x))

    @staticmethod
    def floor(x: Any) -> float:
        return float(math.floor(x))

    @staticmethod
    def log2(x: Any) -> float:
        return math.log2(x)

    @staticmethod
    def f(x: Any) -> float:
        return float(x)


def _np_clip(x: Any, lo: Any, hi: Any) -> Any:
    """np.clip without its Python wrapper (same result for numbers: min(max(x, lo), hi))."""
    return np.minimum(np.maximum(x, lo), hi)


class _Numpy:
    where = staticmethod(np.where)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    clip = staticmethod(_np_clip)
    ceil = staticmethod(np.ceil)
    floor = staticmethod(np.floor)
    log2 = staticmethod(np.log2)

    @staticmethod
    def f(x: Any) -> Any:
        if type(x) is np.ndarray and x.dtype == np.float64:
            return x
        return np.asarray(x, dtype=np.float64)


#: numpy backend (arrays of plans) and scalar backend (one plan)
NP: Any = _Numpy()
SC: Any = _Scalar()


def _value(q: Any) -> float:
    """A sourced quantity's value, 0 when unknown (both host fields must be known to offload)."""
    return float(q.value) if q is not None else 0.0


@dataclass(frozen=True, kw_only=True)
class Consts:
    """Everything the kernels need from a device, computed once."""

    dev: Device
    mem_bw: float
    """HBM bytes/s x memory efficiency"""
    kov: float
    """kernel launch overhead, s"""
    vector_flops: float
    systolic: bool
    rows: float
    cols: float
    tile_m: float
    tile_n: float
    units: float
    attn_eff: float
    dom: float
    alpha: float
    out_bw: float
    sr_bw_up: float
    """point-to-point bandwidth inside the scale-up domain"""
    in_bw: tuple[float, ...]
    """in-domain collective bandwidth by member count (index = members; inf for <= 1)"""
    in_steps: tuple[float, ...]
    in_bw_np: Any
    in_steps_np: Any
    hbm_bytes: float
    reserve_bytes: float
    """HBM capacity x the profile's memory_reserve_fraction"""
    host_bytes: float
    """host memory per chip for activation offload (0: unknown, no offload)"""
    host_bw: float
    """chip-to-host bytes/s per direction (0: unknown)"""
    peaks: dict[str, float]
    """(dtype -> peak x GEMM efficiency), filled on first use"""

    def gemm_peak(self, dtype: str) -> float:
        v = self.peaks.get(dtype)
        if v is None:
            v = self.dev.peak_flops(dtype) * self.dev.gemm_efficiency(dtype)
            if dtype == "fp4" and self.dev.eff.train_fp4_gemm_ratio is not None:
                # block-scaled 4-bit kernels reach a smaller share of their peak than 8-bit
                # ones (the profile's sourced ratio; docs/TRAINING.md, "NVFP4")
                v *= self.dev.eff.train_fp4_gemm_ratio
            self.peaks[dtype] = v
        return v

    def attn_peak(self, dtype: str) -> float:
        key = "attn:" + dtype
        v = self.peaks.get(key)
        if v is None:
            v = self.dev.peak_flops(dtype) * self.attn_eff
            self.peaks[key] = v
        return v


_CONSTS: dict[tuple[int, int], tuple[Any, Any, Consts]] = {}


def consts(dev: Device) -> Consts:
    """The device constants of ``dev`` (cached per chip and efficiency-profile object)."""
    key = (id(dev.chip), id(dev.eff))
    hit = _CONSTS.get(key)
    if hit is not None and hit[0] is dev.chip and hit[1] is dev.eff:
        return hit[2]
    ic, mx, eff = dev.chip.interconnect, dev.chip.matrix, dev.eff
    dom = int(ic.scale_up_domain)
    bw, st = [math.inf, math.inf], [0.0, 0.0]
    for k in range(2, dom + 1):
        b, s = _links_used(dev, k)
        bw.append(float(b))
        st.append(float(s))
    links = float(ic.links or 1) if ic.topology in ("mesh", "torus2d", "torus3d") else 1.0
    c = Consts(
        dev=dev,
        mem_bw=dev.hbm_bytes_per_s * eff.memory_efficiency,
        kov=eff.kernel_overhead_s,
        vector_flops=dev.vector_flops,
        systolic=mx.arch == "systolic",
        rows=float(mx.rows or 0),
        cols=float(mx.cols or 0),
        tile_m=float(mx.tile_m or 0),
        tile_n=float(mx.tile_n or 0),
        units=float(mx.units or 0),
        attn_eff=eff.attention_efficiency,
        dom=float(dom),
        alpha=eff.collective_latency_s,
        out_bw=dev.scale_out_bytes_per_s_dir * eff.collective_efficiency,
        sr_bw_up=dev.scale_up_bytes_per_s_dir / links * eff.collective_efficiency,
        in_bw=tuple(bw),
        in_steps=tuple(st),
        in_bw_np=np.array(bw),
        in_steps_np=np.array(st),
        hbm_bytes=dev.hbm_bytes,
        reserve_bytes=dev.hbm_bytes * eff.memory_reserve_fraction,
        host_bytes=_value(dev.chip.memory.host_bytes),
        host_bw=_value(dev.chip.memory.host_link_bytes_per_s),
        peaks={},
    )
    if len(_CONSTS) > 64:
        _CONSTS.clear()
    _CONSTS[key] = (dev.chip, dev.eff, c)
    return c


# ---- roofline (ops.roofline) ------------------------------------------------------------------


def gemm_util(c: Consts, xp: Any, m: Any, n: Any, k: Any) -> Any:
    """:func:`..ops.roofline.gemm_utilisation` (float inputs)."""
    m = xp.maximum(m, 1.0)
    n = xp.maximum(n, 1.0)
    k = xp.maximum(k, 1.0)
    if c.systolic:
        return (k / (xp.ceil(k / c.rows) * c.rows)) * (n / (xp.ceil(n / c.cols) * c.cols))
    tm = xp.clip(2.0 ** xp.ceil(xp.log2(xp.maximum(m, MMA_MIN_M))), MMA_MIN_M, c.tile_m)
    tn = c.tile_n
    tiles_m = xp.ceil(m / tm)
    tiles_n = xp.ceil(n / tn)
    tiles = tiles_m * tiles_n
    pad = (m * n) / (tiles_m * tm * tiles_n * tn)
    units = c.units
    split = xp.clip(xp.floor(units / tiles), 1.0, xp.maximum(xp.floor(k / 256.0), 1.0))
    work = tiles * split
    waves = xp.ceil(work / units)
    return pad * (work / (waves * units))


def gemm_time(
    c: Consts,
    xp: Any,
    m: Any,
    n: Any,
    k: Any,
    *,
    peak: Any,
    a_bytes: Any,
    w_bytes: Any,
    out_bytes: Any,
    util_m: Any = None,
) -> Any:
    """Time of :func:`..ops.roofline.gemm` (``peak`` = peak x GEMM efficiency of the format)."""
    if xp is SC:
        return _gemm_time_sc(c, m, n, k, peak, a_bytes, w_bytes, out_bytes, util_m)
    m, n, k = xp.f(m), xp.f(n), xp.f(k)
    flops = 2.0 * m * n * k
    util = gemm_util(c, xp, m if util_m is None else xp.f(util_m), n, k)
    t_compute = xp.where(flops > 0, flops / (peak * xp.maximum(util, 1e-9)), 0.0)
    nbytes = m * k * a_bytes + k * n * w_bytes * 1.0 + m * n * out_bytes
    t_memory = nbytes / c.mem_bw
    return xp.maximum(t_compute, t_memory) + xp.where(flops > 0, c.kov, 0.0)


def _gemm_time_sc(
    c: Consts, m: Any, n: Any, k: Any, peak: float, a: float, w: float, ob: float, um: Any
) -> float:
    """:func:`gemm_time` on Python floats, inlined (the single-plan path's hot spot)."""
    m, n, k = float(m), float(n), float(k)
    flops = 2.0 * m * n * k
    mu = m if um is None else float(um)
    mu = mu if mu >= 1.0 else 1.0
    n1 = n if n >= 1.0 else 1.0
    k1 = k if k >= 1.0 else 1.0
    if c.systolic:
        kp = float(math.ceil(k1 / c.rows)) * c.rows
        util = (k1 / kp) * (n1 / (float(math.ceil(n1 / c.cols)) * c.cols))
    else:
        tm = 2.0 ** float(math.ceil(math.log2(mu if mu >= MMA_MIN_M else MMA_MIN_M)))
        tm = tm if tm >= MMA_MIN_M else MMA_MIN_M
        tm = tm if tm <= c.tile_m else c.tile_m
        tiles_m = float(math.ceil(mu / tm))
        tiles_n = float(math.ceil(n1 / c.tile_n))
        tiles = tiles_m * tiles_n
        pad = (mu * n1) / (tiles_m * tm * tiles_n * c.tile_n)
        split = float(math.floor(c.units / tiles))
        hi = float(math.floor(k1 / 256.0))
        hi = hi if hi >= 1.0 else 1.0
        split = split if split >= 1.0 else 1.0
        split = split if split <= hi else hi
        work = tiles * split
        util = pad * (work / (float(math.ceil(work / c.units)) * c.units))
    t_compute = flops / (peak * (util if util >= 1e-9 else 1e-9)) if flops > 0 else 0.0
    t_memory = (m * k * a + k * n * w * 1.0 + m * n * ob) / c.mem_bw
    return (t_compute if t_compute >= t_memory else t_memory) + (c.kov if flops > 0 else 0.0)


def memory_time(c: Consts, xp: Any, nbytes: Any, flops: Any = 0.0) -> Any:
    """Time of :func:`..ops.roofline.memory_op`."""
    b = xp.f(nbytes)
    t = xp.maximum(xp.f(flops) / c.vector_flops, b / c.mem_bw)
    return t + xp.where(b > 0, c.kov, 0.0)


def attention_time(c: Consts, xp: Any, flops: Any, nbytes: Any, *, peak: float) -> Any:
    """Time of :func:`..ops.roofline.attention_op` (``peak`` = :meth:`Consts.attn_peak`)."""
    b = xp.f(nbytes)
    t = xp.maximum(xp.f(flops) / peak, b / c.mem_bw)
    return t + xp.where(b > 0, c.kov, 0.0)


# ---- collectives (parallel.hierarchical) ------------------------------------------------------


def _in_domain(c: Consts, xp: Any, n_in: Any) -> tuple[Any, Any]:
    """(bandwidth, latency steps) of the topology's algorithm for groups of ``n_in`` members
    (:func:`..parallel.hierarchical._in_domain`), from the per-device table."""
    top = len(c.in_bw) - 1
    if xp is SC:
        i = int(n_in)
        if i > top:
            b, s = _links_used(c.dev, i)
            return float(b), float(s)
        return c.in_bw[i], c.in_steps[i]
    idx = np.asarray(n_in).astype(np.int64)
    if idx.size and int(idx.max()) > top:  # beyond the domain (ring/tree over whole groups)
        sizes, inv = np.unique(idx, return_inverse=True)
        pairs = [_in_domain(c, SC, int(k)) for k in sizes]
        bw = np.array([p[0] for p in pairs])[inv].reshape(idx.shape)
        st = np.array([p[1] for p in pairs])[inv].reshape(idx.shape)
        return bw, st
    return c.in_bw_np[idx], c.in_steps_np[idx]


@dataclass(frozen=True, slots=True)
class Group:
    """A collective group's geometry (members, domains spanned, in-domain bandwidth and
    latency terms), computed once for several buffers over the same group."""

    xp: Any
    algorithm: str
    big: Any
    """n > 1 (a real group)"""
    a: Any
    """latency term: ring/tree steps x alpha, or in-domain steps/2 x alpha"""
    c: Any
    """(members - 1) / members (ring/tree) or (n_in - 1) / n_in"""
    bw: Any
    in_: Any = None
    """n_in > 1"""
    n_in: Any = None
    out: Any = None
    """n_out > 1"""
    p: Any = None
    """(n_out - 1) x alpha"""
    q: Any = None
    """(n_out - 1) / n_out"""
    out_bw: float = 0.0


def group(c: Consts, xp: Any, n: Any, stride: Any = 1, algorithm: str = "auto") -> Group:
    """The :class:`Group` of :func:`reduce_scatter_time` for ``n`` chips ``stride`` apart."""
    if algorithm not in ALGORITHMS:
        _check(algorithm)
    if xp is SC and algorithm in ("auto", "hierarchical"):
        return _group_sc(c, n, stride, algorithm)
    n_ = xp.maximum(xp.f(n), 1.0)
    s = xp.maximum(xp.f(stride), 1.0)
    n_in = xp.clip(xp.floor(c.dom / s), 1.0, n_)
    n_out = xp.ceil(n_ / n_in)
    alpha = c.alpha
    if algorithm in ("ring", "tree"):
        bw = xp.where(n_out > 1, c.out_bw, _in_domain(c, xp, n_)[0])
        steps = (n_ - 1) if algorithm == "ring" else xp.log2(n_)
        return Group(
            xp=xp, algorithm=algorithm, big=n_ > 1, a=steps * alpha, c=(n_ - 1) / n_, bw=bw
        )
    bw_in, st_in = _in_domain(c, xp, n_in)
    return Group(
        xp=xp,
        algorithm=algorithm,
        big=n_ > 1,
        a=st_in / 2.0 * alpha,
        c=(n_in - 1) / n_in,
        bw=bw_in,
        in_=n_in > 1,
        n_in=n_in,
        out=n_out > 1,
        p=(n_out - 1) * alpha,
        q=(n_out - 1) / n_out,
        out_bw=c.out_bw,
    )


def _group_sc(c: Consts, n: Any, stride: Any, algorithm: str) -> Group:
    """:func:`group` on Python numbers (auto / hierarchical), inlined."""
    n_ = float(n)
    n_ = n_ if n_ >= 1.0 else 1.0
    s = float(stride)
    s = s if s >= 1.0 else 1.0
    n_in = float(math.floor(c.dom / s))
    n_in = n_in if n_in >= 1.0 else 1.0
    n_in = n_in if n_in <= n_ else n_
    n_out = float(math.ceil(n_ / n_in))
    bw_in, st_in = _in_domain(c, SC, n_in)
    return Group(
        xp=SC,
        algorithm=algorithm,
        big=n_ > 1,
        a=st_in / 2.0 * c.alpha,
        c=(n_in - 1) / n_in,
        bw=bw_in,
        in_=n_in > 1,
        n_in=n_in,
        out=n_out > 1,
        p=(n_out - 1) * c.alpha,
        q=(n_out - 1) / n_out,
        out_bw=c.out_bw,
    )


def group_time(gr: Group, nbytes: Any) -> Any:
    """Reduce-scatter (= all-gather) of a ``nbytes`` buffer over the group ``gr``: the
    formula of :func:`..parallel.hierarchical.reduce_scatter_time`, term for term."""
    xp = gr.xp
    b = xp.f(nbytes)
    if xp is SC and gr.in_ is not None:  # one plan, auto / hierarchical
        if not gr.big:
            return 0.0 + 0.0 * b
        t_in = gr.a + gr.c * b / gr.bw if gr.in_ else 0.0
        t_out = gr.p + gr.q * (b / gr.n_in) / gr.out_bw if gr.out else 0.0
        return (t_in + t_out) + 0.0 * b
    if gr.algorithm in ("ring", "tree"):
        t = gr.a + gr.c * b / gr.bw
    else:
        t_in = xp.where(gr.in_, gr.a + gr.c * b / gr.bw, 0.0)
        t_out = xp.where(gr.out, gr.p + gr.q * (b / gr.n_in) / gr.out_bw, 0.0)
        t = t_in + t_out
    return xp.where(gr.big, t, 0.0) + 0.0 * b


def reduce_scatter_time(
    c: Consts, xp: Any, nbytes: Any, n: Any, stride: Any = 1, algorithm: str = "auto"
) -> Any:
    """:func:`..parallel.hierarchical.reduce_scatter_time` (= all-gather)."""
    return group_time(group(c, xp, n, stride, algorithm), nbytes)


def all_reduce_time(
    c: Consts, xp: Any, nbytes: Any, n: Any, stride: Any = 1, algorithm: str = "auto"
) -> Any:
    return 2.0 * reduce_scatter_time(c, xp, nbytes, n, stride, algorithm)


def send_recv_time(c: Consts, xp: Any, nbytes: Any, stride: Any) -> Any:
    """:func:`..parallel.hierarchical.send_recv_time`."""
    bw = xp.where(xp.f(stride) < c.dom, c.sr_bw_up, c.out_bw)
    return c.alpha + xp.f(nbytes) / bw

"""The compiled loops of :mod:`.gridcore` (numba), imported on first use so that importing
siliconomics does not load numba and LLVM.

:func:`plan_kernel` is :func:`.step._plan_times`, :func:`.step.step_time`,
:func:`.memory.train_memory` (dense models) and ``estimate._grid_result`` for one plan at a
time, written out term for term in the numpy code's floating-point order (``np.where`` as a
branch, ``np.maximum``/``np.minimum`` with numpy's NaN rule); IEEE arithmetic throughout (no
fast-math, no contraction), so the results are those of the numpy path bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from . import gridcore as _gc
from .gridcore import (
    C_ALPHA,
    C_CAST,
    C_CAST_ON,
    C_DMODEL,
    C_DOM,
    C_FULL,
    C_FWDL,
    C_GRADB,
    C_HD,
    C_KOV,
    C_LORA,
    C_MEM_BW,
    C_MFLOPS,
    C_MTP,
    C_OPT_M,
    C_OPT_T,
    C_OUT_BW,
    C_OV_CP,
    C_OV_DP,
    C_OV_FSDP,
    C_OV_PP,
    C_OV_TP,
    C_OVERHEAD,
    C_PAR,
    C_PEAK,
    C_SR_BW,
    C_TOKENS,
    C_VFLOPS,
    C_WB,
    G_COLS,
    G_KOV,
    G_MEM_BW,
    G_ROWS,
    G_SYSTOLIC,
    G_TILE_M,
    G_TILE_N,
    G_UNITS,
    NC,
    NO,
    NV,
    O_ACTS,
    O_GRADS,
    O_HFU,
    O_MFU,
    O_OPT,
    O_TOTAL,
    O_TPS,
    O_WEIGHTS,
    V_ACT,
    V_AR,
    V_ATTN,
    V_BWD,
    V_CP,
    V_CPL,
    V_EBWD,
    V_EDGE,
    V_EFWD,
    V_ELEM,
    V_FWD,
    V_GWS,
    V_HKV,
    V_KEEP,
    V_LOGITS,
    V_MLA,
    V_PER,
    V_SEL,
    V_T,
    V_TP,
)
from .kernels import MMA_MIN_M

_OPTS: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy"}


def _jit(f: Callable[..., Any]) -> Callable[..., Any]:
    return numba.njit(**_OPTS)(f)


def _inline(f: Callable[..., Any]) -> Callable[..., Any]:
    return numba.njit(**_OPTS, inline="always")(f)


@_inline
def _mx(a: float, b: float) -> float:
    """np.maximum on two floats (NaN wins)."""
    return a if (a >= b or a != a) else b


@_inline
def _mn(a: float, b: float) -> float:
    """np.minimum on two floats (NaN wins)."""
    return a if (a <= b or a != a) else b


@_inline
def _hash(key: int, mask: int) -> int:
    x = key ^ (key >> 21) ^ (key >> 42)  # fold the six fields into the low bits
    x = x * 0x9E3779B1
    return (x ^ (x >> 29)) & mask


@_inline
def _grow(a: Any) -> Any:
    b = np.empty(2 * a.shape[0], np.int64)
    b[: a.shape[0]] = a
    return b


@_inline
def _rehash(keys: Any, nu: int, size: int) -> tuple[Any, Any]:
    slot_key = np.full(size, -1, np.int64)
    slot_id = np.empty(size, np.int64)
    for j in range(nu):
        h = _hash(keys[j], size - 1)
        while slot_key[h] != -1:
            h = (h + 1) & (size - 1)
        slot_key[h], slot_id[h] = keys[j], j
    return slot_key, slot_id


@_jit
def layout_index(tp: Any, cp: Any, mb: Any, sp: Any, ep: Any, etp: Any) -> tuple[Any, Any]:
    """:func:`.step.layout_key` (the same layouts in the same order: ascending key, first
    occurrence of each), by a hash over the plans instead of a sort. Fields outside
    [0, 1024) (no 10-bit key): empty arrays, and the caller uses layout_key."""
    n = tp.shape[0]
    for i in range(n):
        for v in (tp[i], cp[i], mb[i], ep[i], etp[i]):
            if v < 0 or v >= 1024:
                return np.empty(0, np.int64), np.empty(0, np.int64)
        if sp[i] < 0 or sp[i] > 1:
            return np.empty(0, np.int64), np.empty(0, np.int64)
    size = 64  # open addressing, at most half full (doubled as layouts come)
    slot_key = np.full(size, -1, np.int64)
    slot_id = np.empty(size, np.int64)
    keys = np.empty(16, np.int64)
    firsts = np.empty(16, np.int64)
    inv = np.empty(n, np.int64)
    nu = 0
    for i in range(n):
        key = (((((tp[i] << 10) | cp[i]) << 10 | mb[i]) << 1 | sp[i]) << 10 | ep[i]) << 10 | etp[i]
        h = _hash(key, size - 1)
        while True:
            k = slot_key[h]
            if k == key:
                inv[i] = slot_id[h]
                break
            if k == -1:
                if nu == keys.shape[0]:
                    keys, firsts = _grow(keys), _grow(firsts)
                slot_key[h], slot_id[h] = key, nu
                keys[nu], firsts[nu], inv[i] = key, i, nu
                nu += 1
                if 2 * nu > size:
                    size *= 2
                    slot_key, slot_id = _rehash(keys, nu, size)
                break
            h = (h + 1) & (size - 1)
    order = np.argsort(keys[:nu])
    rank = np.empty(nu, np.int64)
    first = np.empty(nu, np.int64)
    for r in range(nu):
        rank[order[r]] = r
        first[r] = firsts[order[r]]
    for i in range(n):
        inv[i] = rank[inv[i]]
    return first, inv


@_inline
def _group(n: float, stride: float, dom: float, alpha: float, in_bw: Any, in_st: Any) -> Any:
    """:func:`.kernels.group` (auto / hierarchical): (big, in, a, c, bw, n_in, out, p, q)."""
    n_ = _mx(n, 1.0)
    s = _mx(stride, 1.0)
    n_in = _mn(_mx(np.floor(dom / s), 1.0), n_)
    n_out = np.ceil(n_ / n_in)
    j = int(n_in)
    return (
        n_ > 1,
        n_in > 1,
        in_st[j] / 2.0 * alpha,
        (n_in - 1) / n_in,
        in_bw[j],
        n_in,
        n_out > 1,
        (n_out - 1) * alpha,
        (n_out - 1) / n_out,
    )


@_inline
def _group_time(gr: Any, b: float, out_bw: float) -> float:
    """:func:`.kernels.group_time` of a :func:`_group`."""
    big, in_, a, c, bw, n_in, out, p, q = gr
    t_in = a + c * b / bw if in_ else 0.0
    t_out = p + q * (b / n_in) / out_bw if out else 0.0
    t = t_in + t_out
    return (t if big else 0.0) + 0.0 * b


@_inline
def _memory_time(nbytes: float, flops: float, vflops: float, mem_bw: float, kov: float) -> float:
    """:func:`.kernels.memory_time`."""
    t = _mx(flops / vflops, nbytes / mem_bw)
    return t + (kov if nbytes > 0 else 0.0)


@_inline
def _stage_layers(L: int, pp: int, vpp: int) -> float:
    """:func:`.plan.stage_layers` of one plan."""
    stages = max(pp * vpp, 1)
    if L % stages == 0 or (L + 2) % stages == 0:
        return float(L)
    return np.ceil(L / stages) * float(vpp) * float(pp)


@_inline
def _memory(
    C: Any, lv: Any, L: int, Lq: float, pp: float, tp: int, vpp: int, zero: int, shard: int,
    rcp: int, dp: int, mb: int, gb: int, out: Any, i: int
) -> None:  # fmt: skip
    """:func:`.memory.train_memory` of one plan of a dense model (per-layout activation
    terms from the layout matrix)."""
    per, edges = lv[V_PER], lv[V_EDGE]
    full = C[C_FULL] != 0.0
    edge_chip = edges / 2.0 if pp > 1 else edges
    params_ = per * Lq / pp + edge_chip
    shard_f = _mx(float(shard), 1.0)
    trainable = params_ if full else C[C_LORA] / float(tp) * Lq / pp
    weights = per * Lq / pp * C[C_WB] + edge_chip * 2.0
    weights = weights + (0.0 if full else trainable * 2.0)
    if zero >= 3 and full:
        gathered = _mn(2.0 * per * 2.0, weights * (1.0 - 1.0 / shard_f))
        weights = weights / shard_f + gathered
    grads = trainable * C[C_GRADB]
    if zero >= 2:
        grads = grads / shard_f
    opt = trainable * C[C_OPT_M]
    if zero >= 1:
        opt = opt / shard_f
    act_layer = lv[V_ACT]
    stored = lv[V_KEEP] if rcp == 2 else (lv[V_SEL] if rcp == 1 else act_layer)
    live_extra = (act_layer if rcp == 2 else 0.0) + lv[V_GWS]
    m = max(gb // max(dp * mb, 1), 1)
    inflight = pp * (1.0 + (pp - 1) / (pp * float(vpp))) if vpp > 1 else _mn(pp, float(m))
    logits = lv[V_LOGITS]
    if pp > 1:
        first = stored * (Lq / pp) * inflight + live_extra
        last = stored * (Lq / pp) + _mx(live_extra, logits)
        acts = _mx(first, last)
    else:
        acts = stored * Lq + _mx(live_extra, logits)
    out[O_WEIGHTS, i] = weights
    out[O_GRADS, i] = grads
    out[O_OPT, i] = opt
    out[O_ACTS, i] = acts


@_inline
def _layout_comm(LV: Any, C: Any, in_bw: Any, in_st: Any) -> None:
    """The TP all-reduce and the exposed ring attention of each layout (rows of ``LV``), as
    :func:`.step.layout_times` computes them (auto / hierarchical collectives)."""
    dom, alpha, out_bw = C[C_DOM], C[C_ALPHA], C[C_OUT_BW]
    for u in range(LV.shape[0]):
        lu = LV[u]
        T, tp, cp = lu[V_T], lu[V_TP], lu[V_CP]
        gr = _group(tp, 1.0, dom, alpha, in_bw, in_st)
        lu[V_AR] = 2.0 * _group_time(gr, T * C[C_DMODEL] * 2.0, out_bw)
        kv = T * 2.0 * lu[V_HKV] * C[C_HD] * 2.0
        bw = C[C_SR_BW] if tp < dom else out_bw
        ring = (cp - 1.0) * (alpha + kv / bw) if cp > 1 else 0.0
        hide = lu[V_ATTN] if C[C_OV_CP] != 0.0 else 0.0
        lu[V_CPL] = _mx(ring - hide, 0.0) + _mx(2.0 * ring - 2.5 * hide, 0.0)


@_jit
def plan_kernel(
    tp_: Any, cp_: Any, mb_: Any, dp_: Any, pp_: Any, vpp_: Any, zero_: Any, shard_: Any,
    rc_: Any, inv: Any, LV: Any, C: Any, in_bw: Any, in_st: Any, L: int, seq: int, gb: int,
    out: Any
) -> None:  # fmt: skip
    """Every plan's step components, total, memory and utilisation into the rows of ``out``
    (:data:`.gridcore.STEP_FIELDS`, ``O_*``); with one row, the total only."""
    full_out = out.shape[0] > 1
    mtp = C[C_MTP]
    full = C[C_FULL] != 0.0
    dom, alpha, out_bw = C[C_DOM], C[C_ALPHA], C[C_OUT_BW]
    mem_bw, vflops, kov = C[C_MEM_BW], C[C_VFLOPS], C[C_KOV]
    gbytes = C[C_GRADB]
    _layout_comm(LV, C, in_bw, in_st)
    last_pp, last_vpp, Lq = -1, -1, 0.0
    for i in range(tp_.shape[0]):
        lv = LV[inv[i]]
        tp, cp, mb, dp, pp_i = tp_[i], cp_[i], mb_[i], dp_[i], pp_[i]
        vpp, zero, shard_i, rcp = vpp_[i], zero_[i], shard_[i], rc_[i]
        lf, lb = lv[V_FWD], lv[V_BWD]
        pp = float(pp_i)
        T = lv[V_T]  # mb * seq / cp, as the layout has it
        if pp_i != last_pp or vpp != last_vpp:  # grids come sorted by pp more often than not
            Lq = _stage_layers(L, pp_i, vpp)
            last_pp, last_vpp = pp_i, vpp
        fwd = (Lq * lf + lv[V_EFWD] * (1.0 + mtp) + mtp * lf) / pp
        bwd = (Lq * lb + lv[V_EBWD] * (1.0 + mtp) + mtp * lb) / pp
        if mtp != 0.0:  # .plan.last_rank_layers
            stages = pp_i * vpp
            cc = np.ceil(L / stages)
            n_last = (vpp - 1) * cc + _mx(L - (stages - 1) * cc, 0.0)
            fwd = _mx(fwd, (n_last + mtp) * lf + (1.0 + mtp) * lv[V_EFWD])
            bwd = _mx(bwd, (n_last + mtp) * lb + (1.0 + mtp) * lv[V_EBWD])
        rc = Lq * lf / pp if rcp == 2 else 0.0
        rc = rc + (Lq * (lv[V_ELEM] + lv[V_MLA]) / pp if rcp == 1 else 0.0)
        passes = 2.0 + (1.0 if rcp == 2 else 0.0)
        busy = fwd + bwd + rc
        t_tp_raw = C[C_PAR] * lv[V_AR] * passes * Lq / pp
        t_tp = _mx(t_tp_raw * (1.0 - C[C_OV_TP]), t_tp_raw - busy)
        t_cp = lv[V_CPL] * Lq / pp
        t_ep = 0.0
        stride = float(tp * cp * dp)
        hop = alpha + T * C[C_DMODEL] * 2.0 / (C[C_SR_BW] if stride < dom else out_bw)
        p2p = 2.0 * float(vpp) * hop
        plain = _mx(p2p * (1.0 - C[C_OV_PP]), p2p - (fwd + bwd))
        t_pp = _mx(p2p - (fwd + bwd), 0.0) if vpp > 1 else plain
        t_pp = t_pp * (1.0 if pp > 1 else 0.0)
        per = lv[V_PER]
        params_stage = (per * L + lv[V_EDGE]) / pp
        trainable = params_stage if full else C[C_LORA] / float(tp) * L / pp
        nrep = float(dp * cp)
        shard = max(shard_i, 1)
        fsdp_on = zero == 3 and full
        g_bytes = trainable * gbytes
        # step._dp_collectives, only the collectives the plan's ZeRO stage uses (np.where's
        # other branch is never read)
        if fsdp_on:  # FSDP gathers and reduce-scatters; hybrid all-reduce across replicas
            g1 = _group(float(shard), float(tp), dom, alpha, in_bw, in_st)
            ag = _group_time(g1, params_stage * 2.0, out_bw)
            rs = _group_time(g1, params_stage * gbytes, out_bw)
            g3 = _group(nrep / shard, float(tp * shard), dom, alpha, in_bw, in_st)
            red = 2.0 * _group_time(g3, g_bytes / shard, out_bw)
            gat = 0.0
            fsdp_raw = 2.0 * ag + rs
        else:  # ZeRO-0 all-reduce; ZeRO-1/2 reduce-scatter + all-gather
            g2 = _group(nrep, float(tp), dom, alpha, in_bw, in_st)
            rs_dp = _group_time(g2, g_bytes, out_bw)
            red = 2.0 * rs_dp if zero == 0 else rs_dp
            gat = 0.0 if zero == 0 else _group_time(g2, trainable * 2.0, out_bw)
            fsdp_raw = 0.0
        t_fsdp = _mx(fsdp_raw - busy, 0.0) if C[C_OV_FSDP] != 0.0 else fsdp_raw
        t_mb = fwd + bwd + rc + t_tp + t_cp + t_ep + t_pp + t_fsdp
        m = gb / float(dp * mb)
        bubble = (pp - 1.0) / float(vpp) * t_mb + 2.0 * (pp - 1.0) * hop
        local = trainable / shard if zero >= 1 else trainable
        dp_total = red + gat
        hidden = _mx(red - bwd, 0.0) + _mx(gat - fwd, 0.0)
        dp_exposed = hidden if C[C_OV_DP] != 0.0 else dp_total
        opt_bytes = local * C[C_OPT_T]
        t_opt = _memory_time(opt_bytes, 10.0 * local, vflops, mem_bw, kov)
        if C[C_CAST_ON] != 0.0:
            cast = per * L / pp * C[C_CAST]
            t_opt = t_opt + (_memory_time(cast, 0.0, vflops, mem_bw, kov) if cast > 0 else 0.0)
        ov_s = C[C_OVERHEAD]
        # StepTime.total's order (= step.total_time)
        total = m * fwd + m * bwd + m * rc + m * t_tp + m * t_cp
        total = total + m * t_ep + m * t_pp + m * t_fsdp + bubble + dp_exposed
        total = total + t_opt + ov_s
        if not full_out:
            out[0, i] = total
            continue
        out[0, i] = m * fwd
        out[1, i] = m * bwd
        out[2, i] = m * rc
        out[3, i] = m * t_tp
        out[4, i] = m * t_cp
        out[5, i] = m * t_ep + 0.0
        out[6, i] = m * t_pp
        out[7, i] = m * t_fsdp
        out[8, i] = bubble
        out[9, i] = dp_exposed
        out[10, i] = t_opt + 0.0
        out[11, i] = 0.0 + ov_s
        out[12, i] = dp_total
        out[13, i] = m + 0.0
        out[14, i] = t_mb
        out[O_TOTAL, i] = total
        _memory(C, lv, L, Lq, pp, tp, vpp, zero, shard_i, rcp, dp, mb, gb, out, i)
        peak = C[C_PEAK] * float(dp * tp * pp_i * cp)
        hflops = C[C_MFLOPS] + (C[C_FWDL] if rcp == 2 else 0.0)
        out[O_TPS, i] = C[C_TOKENS] / total
        out[O_MFU, i] = C[C_MFLOPS] / (total * peak)
        out[O_HFU, i] = hflops / (total * peak)


# ---- a layer's deferred GEMMs priced and its sums added up (step._Layer.settle) ----------------


@_inline
def _gemm_time(
    m: float, n: float, k: float, um: float, peak: float, a: float, ob: float, G: Any
) -> float:
    """:func:`.kernels.gemm_time` with :func:`.kernels.gemm_util` on one GEMM (``G``: the
    device's GEMM constants, :func:`.gridcore.gemm_consts`)."""
    flops = 2.0 * m * n * k
    mu = _mx(um, 1.0)
    n1 = _mx(n, 1.0)
    k1 = _mx(k, 1.0)
    if G[G_SYSTOLIC] != 0.0:
        rows, cols = G[G_ROWS], G[G_COLS]
        util = (k1 / (np.ceil(k1 / rows) * rows)) * (n1 / (np.ceil(n1 / cols) * cols))
    else:
        tile_n, units = G[G_TILE_N], G[G_UNITS]
        tm = _mn(_mx(2.0 ** np.ceil(np.log2(_mx(mu, MMA_MIN_M))), MMA_MIN_M), G[G_TILE_M])
        tiles_m = np.ceil(mu / tm)
        tiles_n = np.ceil(n1 / tile_n)
        tiles = tiles_m * tiles_n
        pad = (mu * n1) / (tiles_m * tm * tiles_n * tile_n)
        split = _mn(_mx(np.floor(units / tiles), 1.0), _mx(np.floor(k1 / 256.0), 1.0))
        work = tiles * split
        waves = np.ceil(work / units)
        util = pad * (work / (waves * units))
    t_compute = flops / (peak * _mx(util, 1e-9)) if flops > 0 else 0.0
    nbytes = m * k * a + k * n * a * 1.0 + m * n * ob
    t_memory = nbytes / G[G_MEM_BW]
    return _mx(t_compute, t_memory) + (G[G_KOV] if flops > 0 else 0.0)


@_inline
def _operand(code: int, arrs: Any, nums: Any, j: int) -> float:
    return arrs[code, j] if code >= 0 else nums[-1 - code]


@_jit
def settle_kernel(
    src: Any, rates: Any, arrs: Any, nums: Any, G: Any, term: Any, w: Any, ends: Any, out: Any
) -> None:
    """Price each deferred op (row ``i`` of ``src``: the operand codes of a GEMM's m, n, k
    and util_m, or of a rate op's flops and bytes, :func:`.gridcore._code`; of ``rates``: a
    GEMM's peak, input and output bytes and 0, or a rate op's rate, 0, 0 and 1) on every
    plan, then add up each sum ``s`` (terms ``ends[s-1]:ends[s]``, from 0.0, in order) into
    ``out[s]``: a term ``(1, i)`` is ``w[t, 1] x (w[t, 0] x op i)``, ``(0, code)`` the operand
    of that code."""
    ng, n = src.shape[0], out.shape[1]
    sh = np.empty((4, ng, n))  # the operands gathered first: the pricing loop then vectorises
    for i in range(ng):
        for k in range(4):
            c = src[i, k]
            for j in range(n):
                sh[k, i, j] = _operand(c, arrs, nums, j)
    times = np.empty((ng, n))
    mem_bw, kov = G[G_MEM_BW], G[G_KOV]
    for i in range(ng):
        pk, a, ob = rates[i, 0], rates[i, 1], rates[i, 2]
        if rates[i, 3] != 0.0:  # kernels.attention_time (= memory_time at the vector rate)
            for j in range(n):
                b = sh[1, i, j]
                t = _mx(sh[0, i, j] / pk, b / mem_bw)
                times[i, j] = t + (kov if b > 0 else 0.0)
            continue
        for j in range(n):
            times[i, j] = _gemm_time(
                sh[0, i, j], sh[1, i, j], sh[2, i, j], sh[3, i, j], pk, a, ob, G
            )
    start = 0
    for s in range(ends.shape[0]):
        for j in range(n):
            acc = 0.0
            for t in range(start, ends[s]):
                if term[t, 0]:
                    acc = acc + w[t, 1] * (w[t, 0] * times[term[t, 1], j])
                else:
                    acc = acc + _operand(term[t, 1], arrs, nums, j)
            out[s, j] = acc
        start = ends[s]


# numba caches each kernel keyed on this file only: constants imported from .gridcore and
# .kernels are frozen into the cached machine code. A kernel that returns them tells whether
# the cache was compiled with today's values; if not, every kernel is compiled again.
_CONSTANTS = tuple(
    float(v)
    for k, v in sorted({**vars(_gc), "MMA_MIN_M": MMA_MIN_M}.items())
    if k.isupper() and type(v) in (int, float)
)


@_jit
def _stamp() -> Any:
    return _CONSTANTS


def _check_cache() -> None:
    if _stamp() != _CONSTANTS:  # stale: load every cached kernel, then compile each afresh
        warm()
        for k in (layout_index, plan_kernel, settle_kernel, _stamp):
            k.recompile()  # type: ignore[attr-defined]


def warm() -> None:
    """Call every kernel once on a one-plan dummy of the types the grid path passes, so that
    numba loads (or compiles) their machine code now."""
    one = np.ones(1, np.int64)
    layout_index(one, one, one, one * 0, one, one)
    C = np.zeros(NC)
    C[C_DOM] = 1.0
    LV = np.zeros((1, NV))
    table = np.array([np.inf, np.inf])
    out = np.empty((NO, 1))
    plan_kernel(one, one, one, one, one, one, one * 0, one, one * 0, one * 0, LV, C, table,
                np.zeros(2), 1, 1, 1, out)  # fmt: skip
    settle_kernel(np.full((1, 4), -1, np.int64), np.ones((1, 4)), np.empty((0, 1)), np.ones(1),
                  np.ones(8), np.array([[1, 0]], np.int64), np.ones((1, 2)), one, np.empty((1, 1)))  # fmt: skip


_check_cache()

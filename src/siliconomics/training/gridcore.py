"""Compiled grid path of the vectorised training evaluation (issue 17).

:func:`.estimate.evaluate_grid` on a benchmark-sized grid (a few thousand plans) spends most
of its time in the fixed cost of many small numpy operations, not in arithmetic. For dense
models this module evaluates a grid with two compiled kernels (:mod:`._gridcore_jit`,
numba):

* the layouts (:func:`.step.layout_key`: plans equal in tp, cp, micro-batch, sp, ep, etp)
  are found by a hash over the plans;
* what depends on the layout only is still built by the numpy code of :mod:`.step` and
  :mod:`.memory` on the distinct layouts (:func:`.step.layout_layers`, the parameters per
  chip, the memory's activation terms), its deferred GEMMs priced and its sums added up by
  :func:`settle` in one compiled call, and stacked in one matrix (a row per layout);
* everything per plan (TP all-reduce and ring attention per layout, pipeline,
  data-parallel collectives, optimizer, step components, memory, utilisation) is one
  compiled loop: the formulas of :func:`.step.layout_times`, :func:`.step._plan_times`,
  :func:`.step.step_time`, :func:`.memory.train_memory` and ``estimate._grid_result`` term
  for term in the same floating-point order, so the results equal the numpy path bit for
  bit (``tests/test_train_fast.py`` compares every output on the test and benchmark grids).
  A change to that arithmetic must be made in both places: those tests fail otherwise.

Plan- and call-independent constants (model, device, format, overlap) are gathered once per
call into one vector (:func:`_constants`); nothing computed is kept between calls.

When it runs (:func:`use`): dense models with the auto/hierarchical collectives (MoE models,
whose expert-data-parallel sync is not compiled, and ring/tree take the numpy path), once the
kernels are loaded in the process (:func:`load`, or any earlier compiled call), or for grids
of :data:`AUTO_PLANS` plans or more. Loading imports numba and its cached machine code (about
0.5-1 s; the first run in a fresh install compiles the kernels, about 20 s of CPU), which a
one-off search of a few thousand plans (a few ms in numpy) would not earn back. ``ENABLED``
forces it on or off.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..catalog.schema import ModelSpec
from ..ops.device import Device
from .kernels import NP, Consts, consts
from .lora import base_weight_bytes
from .memory import (
    GRAD_BYTES,
    WEIGHT_BYTES,
    TrainMemory,
    _mlp_grad_bytes_per_token,
    activation_bytes_per_token_layer,
    chip_params,
    layer_input_bytes_per_token,
    lora_params_per_layer,
    mla_up_proj_freed_bytes_per_token,
)
from .plan import _INT_FIELDS, OPTIMIZER_BYTES, PlanGrid
from .precision import recipe, weight_cast_bytes
from .step import _SUMS, Overlap, StepTime, _Gemm, _Sum, layout_key, layout_layers

F = NDArray[np.float64]

# ---- the constants vector (indices) ---------------------------------------------------------
(
    C_MTP,
    C_PAR,
    C_DMODEL,
    C_OV_TP,
    C_OV_PP,
    C_OV_FSDP,
    C_OV_DP,
    C_FULL,
    C_LORA,
    C_GRADB,
    C_OPT_T,
    C_OPT_M,
    C_CAST_ON,
    C_CAST,
    C_WB,
    C_ALPHA,
    C_DOM,
    C_SR_BW,
    C_OUT_BW,
    C_MEM_BW,
    C_VFLOPS,
    C_KOV,
    C_OVERHEAD,
    C_PEAK,
    C_MFLOPS,
    C_FWDL,
    C_TOKENS,
    C_HD,
    C_OV_CP,
) = range(29)
NC = 29

# ---- per-layout values (columns of the layout matrix) ---------------------------------------
(
    V_FWD,
    V_BWD,
    V_ELEM,
    V_MLA,
    V_EFWD,
    V_EBWD,
    V_AR,
    V_CPL,
    V_PER,
    V_EDGE,
    V_T,
    V_TP,
    V_CP,
    V_HKV,
    V_ATTN,
    V_ACT,
    V_KEEP,
    V_SEL,
    V_GWS,
    V_LOGITS,
) = range(20)
NV = 20

# ---- output rows ----------------------------------------------------------------------------
STEP_FIELDS = (
    "forward",
    "backward",
    "recompute",
    "tp_comm",
    "cp_comm",
    "ep_comm",
    "pp_comm",
    "fsdp_comm",
    "bubble",
    "dp_comm",
    "optimizer",
    "overhead",
    "dp_comm_total",
    "microbatches",
    "t_microbatch",
)
O_TOTAL = len(STEP_FIELDS)
O_WEIGHTS, O_GRADS, O_OPT, O_ACTS, O_TPS, O_MFU, O_HFU = range(O_TOTAL + 1, O_TOTAL + 8)
NO = O_TOTAL + 8


# ---- the device's GEMM constants (:func:`gemm_consts`) ----------------------------------------
G_SYSTOLIC, G_ROWS, G_COLS, G_TILE_M, G_TILE_N, G_UNITS, G_MEM_BW, G_KOV = range(8)


def gemm_consts(c: Consts) -> F:
    """What :func:`.kernels.gemm_time` reads from the device constants, as a vector."""
    return np.array(
        [float(c.systolic), c.rows, c.cols, c.tile_m, c.tile_n, c.units, c.mem_bw, c.kov]
    )


def _code(x: Any, n: int, arrays: list[Any], numbers: list[float]) -> int:
    """An operand of the settle kernel as a code (``>= 0``: row of the stacked (plans,)
    arrays; ``< 0``: ``-1 - i`` of the numbers); -1 << 40 for an operand the kernel does not
    take."""
    tx = type(x)
    if tx is np.ndarray:
        if x.shape != (n,):
            return _BAD
        arrays.append(x)
        return len(arrays) - 1
    if tx is float or tx is int:
        numbers.append(x)
        return -len(numbers)
    return _BAD


_BAD = -1 << 40


def settle(ly: Any, others: tuple[Any, ...]) -> bool:
    """:meth:`.step._Layer.settle` through one compiled call (:func:`._gridcore_jit.
    settle_kernel`): the deferred ops priced (GEMMs; memory-bound and attention ops) and
    every pending sum of ``ly`` and ``others`` added up in its terms' order. False (nothing
    changed) when an operand or a term is of a kind the kernel does not take; the numpy
    settle then runs."""
    n = int(np.size(ly.T))
    arrays: list[Any] = []
    numbers: list[float] = []
    gemms = ly._gemms
    src: list[int] = []  # per op: m, n, k, util_m of a GEMM, or flops, bytes (_code inlined)
    rates: list[Any] = []  # peak, input and output bytes of a GEMM; the rate of a rate op
    for r in gemms:
        if len(r) == 7:
            ops = r[:4]
            rates += (*r[4:], 0.0)
        else:
            ops = (*r[:2], 0.0, 0.0)
            rates += (r[2], 0.0, 0.0, 1.0)
        for x in ops:
            if type(x) is np.ndarray and x.shape == (n,):
                src.append(len(arrays))
                arrays.append(x)
            elif type(x) is float or type(x) is int:
                numbers.append(x)
                src.append(-len(numbers))
            else:
                return False
    term: list[int] = []  # (1, op i) or (0, an operand's code), flattened
    wts: list[float] = []  # w, w2 of each term
    ends: list[int] = []
    targets: list[tuple[Any, str]] = []
    for layer in (ly, *others):
        for name in _SUMS:
            v = getattr(layer, name)
            tv = type(v)
            if tv is not _Sum and tv is not _Gemm:
                continue
            for t in v.terms if tv is _Sum else (v,):
                if type(t) is _Gemm:
                    term += (1, t.i)
                    wts += (t.w, t.w2)
                else:
                    term += (0, _code(t, n, arrays, numbers))
                    wts += (0.0, 0.0)
            ends.append(len(wts) // 2)
            targets.append((layer, name))
    if _BAD in term or any(type(w) is not float for w in wts):
        return False
    try:
        rate = np.array(rates, dtype=np.float64).reshape(len(gemms), 4)
    except (TypeError, ValueError):
        return False
    out = np.empty((len(ends), n))
    _jit().settle_kernel(
        np.array(src, dtype=np.int64).reshape(-1, 4),
        rate,
        np.array(arrays, dtype=np.float64) if arrays else np.empty((0, n)),
        np.array(numbers, dtype=np.float64),
        gemm_consts(ly.c),
        np.array(term, dtype=np.int64).reshape(-1, 2),
        np.array(wts, dtype=np.float64).reshape(-1, 2),
        np.array(ends, dtype=np.int64),
        out,
    )
    gemms.clear()
    for s, (layer, name) in enumerate(targets):
        setattr(layer, name, out[s])
    return True


def available() -> bool:
    """numba is installed (a dependency; without it the numpy path runs)."""
    return importlib.util.find_spec("numba") is not None


def supported(model: ModelSpec, algorithm: str) -> bool:
    """Whether the compiled path can evaluate this model (dense, softmax attention only;
    auto/hierarchical collectives) here (numba installed)."""
    return (
        model.moe is None
        and model.linear_attention is None
        and model.ffn_layers is None
        and algorithm in ("auto", "hierarchical")
        and _AVAILABLE
    )


#: None: automatic (:func:`use`); True / False: the compiled path always (where supported) /
#: never
ENABLED: bool | None = None
#: grids at least this large take the compiled path even before the kernels are loaded
AUTO_PLANS = 1_000_000
_AVAILABLE = available()
_LOADED = False


def use(model: ModelSpec, algorithm: str, n_plans: int, recompute: Any = None) -> bool:
    """Whether :func:`.estimate.evaluate_grid` / ``step_times_only`` take the compiled path
    for a grid of ``n_plans`` plans (see the module docstring). A grid with activation-offload
    plans (``recompute`` code 3) takes the numpy path: the compiled kernels cover none,
    selective and full recomputation."""
    if ENABLED is False or n_plans < 1 or not supported(model, algorithm):
        return False
    if recompute is not None and np.any(np.asarray(recompute) == 3):
        return False
    return ENABLED is True or _LOADED or n_plans >= AUTO_PLANS


def load() -> float:
    """Import numba and load the compiled kernels (compiling them on the first run in a fresh
    install); from then on this process takes the compiled path for every supported grid.
    Returns the seconds it took (0 if already loaded). Raises ``ImportError`` without numba."""
    global _LOADED
    if _LOADED:
        return 0.0
    t0 = time.perf_counter()
    _jit().warm()
    _LOADED = True
    return time.perf_counter() - t0


def _jit() -> Any:
    global _LOADED
    from . import _gridcore_jit

    _LOADED = True
    return _gridcore_jit


def _constants(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    ov: Overlap,
    *,
    peak: float,
    mflops: float,
    fwd_layers: float,
    tokens: float,
) -> F:
    """Everything the per-plan loop needs that no plan changes, in one vector."""
    c, r = consts(dev), recipe(g.dtype)
    full = g.method == "full"
    gb = g.grad_bytes
    fp32_grad_copy = GRAD_BYTES if gb < GRAD_BYTES else 0.0
    ob = OPTIMIZER_BYTES[g.optimizer]
    v = np.empty(NC)
    v[C_MTP] = float(model.n_mtp_layers)
    v[C_PAR] = 1.0 if model.parallel_attn_mlp else 2.0
    v[C_DMODEL] = float(model.d_model)
    v[C_OV_TP], v[C_OV_PP] = ov.tp, ov.pp
    v[C_OV_FSDP], v[C_OV_DP] = float(ov.fsdp), float(ov.dp)
    v[C_FULL] = float(full)
    v[C_LORA] = float(lora_params_per_layer(model, g.lora_rank, np.ones(1))[0])  # rank x ...
    v[C_GRADB] = gb
    v[C_OPT_T] = 2.0 * ob + GRAD_BYTES + WEIGHT_BYTES
    v[C_OPT_M] = ob + fp32_grad_copy
    v[C_CAST_ON] = float(r.lowp and full)
    v[C_CAST] = float(weight_cast_bytes(r, 1.0)) if r.lowp else 0.0
    v[C_WB] = base_weight_bytes(g.method, r)
    v[C_ALPHA], v[C_DOM], v[C_SR_BW], v[C_OUT_BW] = c.alpha, c.dom, c.sr_bw_up, c.out_bw
    v[C_MEM_BW], v[C_VFLOPS], v[C_KOV] = c.mem_bw, c.vector_flops, c.kov
    v[C_OVERHEAD] = dev.eff.step_overhead_s
    v[C_PEAK], v[C_MFLOPS], v[C_FWDL], v[C_TOKENS] = peak, mflops, fwd_layers, tokens
    v[C_HD], v[C_OV_CP] = float(model.head_dim), float(ov.cp)
    return v


def _layout_matrix(
    model: ModelSpec, dev: Device, sub: PlanGrid, seq_len: int, *, memory: bool
) -> F:
    """The per-layout values of the distinct layouts ``sub`` (rows), as
    :func:`.step.layout_times` has them but for the TP all-reduce and the ring attention,
    which the compiled loop adds (columns ``V_AR``, ``V_CPL``); with ``memory``, the terms of
    :func:`.memory.train_memory` for one micro-batch's tokens too."""
    ly, edge = layout_layers(model, dev, sub, seq_len, NP, settle)
    per_layer, edges = chip_params(model, sub, NP)
    cols: list[tuple[int, Any]] = [
        (V_FWD, ly.fwd),
        (V_BWD, ly.bwd),
        (V_ELEM, ly.elem_fwd),
        (V_MLA, ly.mla_up_fwd),
        (V_EFWD, edge.fwd),
        (V_EBWD, edge.bwd),
        (V_PER, per_layer),
        (V_EDGE, edges),
        (V_T, ly.T),
        (V_TP, sub.tp),
        (V_CP, sub.cp),
        (V_HKV, ly.hkv),
        (V_ATTN, ly.attn_fwd),
    ]
    if memory:
        tokens = ly.T  # g.micro_batch * seq_len / cp, as train_memory has it
        act_layer = activation_bytes_per_token_layer(model, sub, seq_len) * tokens
        cols += [
            (V_ACT, act_layer),
            (V_KEEP, layer_input_bytes_per_token(model, sub) * tokens),
            (V_SEL, act_layer - mla_up_proj_freed_bytes_per_token(model, sub) * tokens),
            (V_GWS, _mlp_grad_bytes_per_token(model, sub) * tokens),
            (V_LOGITS, 4.0 * tokens * np.ceil(model.vocab_size / sub.tp)),
        ]
    out = np.empty((sub.size, NV))
    for j, v in cols:
        out[:, j] = v
    return out


def _int64(a: Any, n: int) -> NDArray[np.int64]:
    """A per-plan field as the contiguous int64 array of ``n`` plans the kernels take."""
    if type(a) is np.ndarray and a.shape == (n,):
        if a.dtype == np.int64 and a.flags.c_contiguous:
            return a
        return np.ascontiguousarray(a, dtype=np.int64)
    return np.ascontiguousarray(np.broadcast_to(np.asarray(a, dtype=np.int64), (n,)))


def _take(g: PlanGrid, idx: NDArray[np.int64]) -> PlanGrid:
    """:meth:`.plan.PlanGrid.take` of a flat grid (every per-plan field 1-D)."""
    return replace(g, **{k: getattr(g, k)[idx] for k in _PLAN_FIELDS})


_PLAN_FIELDS = (*_INT_FIELDS, "recompute", "sp")


def evaluate(
    model: ModelSpec,
    dev: Device,
    g: PlanGrid,
    *,
    seq_len: int,
    global_batch: int,
    overlap: Overlap,
    algorithm: str,
    peak: float = 0.0,
    mflops: float = 0.0,
    fwd_layers: float = 0.0,
    time_only: bool = False,
) -> NDArray[np.float64]:
    """Rows of :data:`STEP_FIELDS`, the total, memory and utilisation (``time_only``: the
    total only, one row) of every plan of a flat grid ``g``."""
    jit = _jit()
    n = g.size
    I = [_int64(getattr(g, k), n) for k in ("tp", "cp", "micro_batch", "ep", "etp")]
    sp = _int64(g.sp, n)
    first, inv = jit.layout_index(I[0], I[1], I[2], sp, I[3], I[4])
    if first.size == 0:  # a field beyond the 10-bit key
        first, inv = layout_key(g)
    lv = _layout_matrix(model, dev, _take(g, first), seq_len, memory=not time_only)
    tokens = float(global_batch * seq_len)
    cv = _constants(
        model, dev, g, overlap, peak=peak, mflops=mflops, fwd_layers=fwd_layers, tokens=tokens
    )
    c = consts(dev)
    plan = [_int64(getattr(g, k), n) for k in ("dp", "pp", "vpp", "zero", "shard", "recompute")]
    out = np.empty((1 if time_only else NO, n))
    jit.plan_kernel(
        I[0],
        I[1],
        I[2],
        *plan,
        inv,
        lv,
        cv,
        c.in_bw_np,
        c.in_steps_np,
        model.n_layers,
        seq_len,
        global_batch,
        out,
    )
    return out


def results(out: NDArray[np.float64], dev: Device) -> tuple[StepTime, TrainMemory, F, F, F]:
    """The :class:`StepTime` (its total set), :class:`TrainMemory`, tokens/s, MFU and HFU
    of :func:`evaluate`'s rows."""
    st = StepTime(**{k: out[i] for i, k in enumerate(STEP_FIELDS)})
    st._set_total(out[O_TOTAL])
    c = consts(dev)
    mem = TrainMemory(
        weights=out[O_WEIGHTS],
        grads=out[O_GRADS],
        optimizer=out[O_OPT],
        activations=out[O_ACTS],
        reserve=c.reserve_bytes,
        capacity=c.hbm_bytes,
    )
    return st, mem, out[O_TPS], out[O_MFU], out[O_HFU]

"""Time-only static-batch estimates for searches and sweeps: the figures of
:func:`.estimate.estimate_static` (TTFT, TPOT, e2e, throughput, memory fit) without its per-op
breakdown, from the lean step kernel (:mod:`.kernel`).

* :func:`static_times`: numpy arrays of configurations for one layout, evaluated in
  cache-sized blocks (temporaries stay in L2 however many configurations there are);
* :func:`static_times_many`: several layouts (models, tensor-parallel degrees, chips) in one
  call;
* :func:`static_point`: one configuration on Python floats, ~50x cheaper than a scalar
  ``estimate_static`` call.

Each agrees with ``estimate_static`` to ~1e-15 relative (same formulas, different order of
summation; tests/test_fast.py checks 1e-12 on a grid of dense, MoE, MLA, windowed, FP8/FP4,
tp, pp and attention-dp layouts), and the memory verdict is the same. Use ``estimate_static``
for a result that explains itself (per-op breakdown, bound, assumptions).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..catalog.schema import ModelSpec
from ..errors import SiliconomicsError
from ..ops.device import Device
from ..parallel.plan import InferencePlan
from . import adp, buckets, graphs
from .kernel import NP, PY, StepKernel, step_kernel

F = NDArray[np.float64]
QUAD = (np.arange(4) + 0.5) / 4.0  # midpoints of 4 equal context slices (as estimate.py)
_QUAD_PY = tuple(float(q) for q in QUAD)
BLOCK = 4096
"""Configurations per block: the temporaries (up to 6 x 4096 doubles each) stay within L2."""


@dataclass(frozen=True, kw_only=True)
class StaticTimes:
    """Static-batch figures of an array of configurations of one layout."""

    ttft_s: F
    tpot_s: F
    """mean decode step over the generation (0 when there is a single output token)"""
    e2e_s: F
    output_tokens_per_s: F
    """whole deployment (all replicas)"""
    free_bytes: F
    """HBM left per chip at the full context (negative: does not fit)"""

    @property
    def fits(self) -> NDArray[np.bool_]:
        return np.asarray(self.free_bytes >= 0)


class StaticPoint(NamedTuple):
    """Static-batch figures of one configuration."""

    ttft_s: float
    tpot_s: float
    e2e_s: float
    output_tokens_per_s: float
    free_bytes: float

    @property
    def fits(self) -> bool:
        return self.free_bytes >= 0


class Layout(NamedTuple):
    """One layout and its configurations, for :func:`static_times_many`."""

    model: ModelSpec
    dev: Device
    plan: InferencePlan
    batch: ArrayLike
    input_len: ArrayLike
    output_len: ArrayLike


def _bad_length(name: str, v: float) -> SiliconomicsError:
    return SiliconomicsError(f"{name} must be >= 1, got {v:g}")


def static_point(
    model: ModelSpec,
    dev: Device,
    plan: InferencePlan,
    batch: float,
    input_len: float,
    output_len: float,
) -> StaticPoint:
    """One static-batch configuration on Python floats (the single-configuration fast path)."""
    k = step_kernel(model, dev, plan)
    B, I, O = float(batch), float(input_len), float(output_len)
    for name, v in (("batch", B), ("input_len", I), ("output_len", O)):
        if not (v >= 1 and math.isfinite(v)):
            raise _bad_length(name, v)
    if dev.eff.shape_bucket_min is not None:  # static shapes: the array path's bucket sums
        r = static_times(model, dev, plan, B, I, O)
        return StaticPoint(
            *(float(x) for x in (r.ttft_s, r.tpot_s, r.e2e_s, r.output_tokens_per_s, r.free_bytes))
        )
    bd = B if k.dp_one else B / k.dp
    t = bd * I
    t_all = t if k.dp_one else B * I
    dev_s = k.tokens_time(PY, bd, t, t_all, B) + k.attention_time(PY, bd, I, 0.0, t)
    ttft = k.finish(PY, dev_s, bd, t)
    steps = max(O - 1.0, 0.0)
    rest = k.tokens_time(PY, bd, bd, B, B)
    tpot = 0.0
    for q in _QUAD_PY:
        c = I + steps * q
        tpot += k.finish(PY, rest + k.attention_time(PY, bd, 1.0, c, bd), bd, bd)
    tpot /= 4.0
    e2e = ttft + steps * tpot
    return StaticPoint(
        ttft_s=ttft,
        tpot_s=tpot if steps > 0 else 0.0,
        e2e_s=e2e,
        output_tokens_per_s=plan.replicas * B * O / e2e,
        free_bytes=k.memory.free(PY, B, I + O, B * I),
    )


def _block(
    k: StepKernel, B: F, I: F, O: F, out: tuple[F, ...], shapes: buckets.Buckets | None
) -> None:
    """Evaluate one block of configurations into ``out`` (ttft, tpot, e2e, tput, free)."""
    bd = B if k.dp_one else B / k.dp
    steps = np.maximum(O - 1.0, 0.0)
    Ir = I if shapes is None else buckets.prompt_length(shapes, I, I + O)  # prefill tokens
    t = bd * Ir
    t_all = t if k.dp_one else B * Ir
    dev_s = k.tokens_time(NP, bd, t, t_all, B) + k.attention_time(NP, bd, Ir, 0.0, t)
    ttft = k.finish(NP, dev_s, bd, t)
    rest = k.tokens_time(NP, bd, bd, B, bd if k.dp_one else B)  # bd is B: one M for all
    # contexts x configurations (per-configuration factors broadcast along the last axis);
    # the step overhead and pipeline sends are the same at every context: added to the mean
    if shapes is None:
        ctx = I + steps * QUAD[:, None]
        dev4 = k.attention_time(NP, bd, 1.0, ctx, bd)
        dev4 += rest
        tpot = k.host_bound(NP, dev4, bd).mean(axis=0)
    else:  # each step attends over its cache bucket (estimate._decode_mean)
        lengths, w = buckets.decode_points(shapes, I, steps, I + steps + 1.0)
        devk = k.attention_time(NP, bd, 1.0, lengths, bd)
        devk += rest
        tpot = np.sum(w * k.host_bound(NP, devk, bd), axis=0)
    tpot += k.fixed_time(NP, bd)
    e2e = np.multiply(steps, tpot, out=out[2])
    e2e += ttft
    out[0][:] = ttft
    np.copyto(out[1], tpot)
    out[1][steps <= 0] = 0.0
    tput = np.multiply(B, O, out=out[3])
    if k.replicas != 1.0:
        tput *= k.replicas
    tput /= e2e
    out[4][:] = k.memory.free(NP, B, I + O, B * I)


class _Prepared(NamedTuple):
    kernel: StepKernel
    flat: tuple[F, F, F]
    shape: tuple[int, ...]
    shapes: buckets.Buckets | None


def _prepare(
    model: ModelSpec,
    dev: Device,
    plan: InferencePlan,
    batch: ArrayLike,
    input_len: ArrayLike,
    output_len: ArrayLike,
) -> _Prepared:
    k = step_kernel(model, dev, plan)
    arrs = [np.asarray(x, dtype=np.float64) for x in (batch, input_len, output_len)]
    shape = arrs[0].shape
    if any(x.shape != shape for x in arrs):
        arrs = list(np.broadcast_arrays(*arrs))
        shape = arrs[0].shape
    B_, I_, O_ = (np.ascontiguousarray(x).reshape(-1) for x in arrs)
    for name, v in (("batch", B_), ("input_len", I_), ("output_len", O_)):
        lo, hi = (float(v.min()), float(v.max())) if v.size else (1.0, 1.0)
        if not (lo >= 1 and hi < math.inf):  # NaN fails the first test
            bad = lo if not lo >= 1 else hi
            raise _bad_length(name, bad)
    b = dev.eff.shape_bucket_min
    return _Prepared(k, (B_, I_, O_), shape, None if b is None else buckets.Buckets(minimum=b))


def _result(out: tuple[F, ...], shape: tuple[int, ...]) -> StaticTimes:
    ttft, tpot, e2e, tput, free = (o.reshape(shape) for o in out)
    return StaticTimes(
        ttft_s=ttft, tpot_s=tpot, e2e_s=e2e, output_tokens_per_s=tput, free_bytes=free
    )


def _run(p: _Prepared, block: int) -> StaticTimes:
    n = p.flat[0].size
    out = tuple(np.empty(n) for _ in range(5))
    step = max(int(block), 1)
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        B, I, O = (x[lo:hi] for x in p.flat)
        _block(p.kernel, B, I, O, tuple(o[lo:hi] for o in out), p.shapes)
    return _result(out, p.shape)


def static_times(
    model: ModelSpec,
    dev: Device,
    plan: InferencePlan,
    batch: ArrayLike,
    input_len: ArrayLike,
    output_len: ArrayLike,
    *,
    block: int = BLOCK,
) -> StaticTimes:
    """Static-batch figures of arrays of configurations (broadcast together) of one layout,
    evaluated ``block`` configurations at a time. Does not raise when a configuration does
    not fit: ``fits`` / ``free_bytes`` say so."""
    return _run(_prepare(model, dev, plan, batch, input_len, output_len), block)


def static_times_many(layouts: Iterable[Layout], *, block: int = BLOCK) -> list[StaticTimes]:
    """:func:`static_times` of several layouts (models, tp degrees, chips) in one call; each
    layout's step kernel is built once and kept.

    Layouts are evaluated one after the other. Evaluating small layouts together, with their
    plan constants as per-configuration arrays, was tried and measured slower (3.3 ms against
    2.2 ms for the benchmark grid's 7 layouts): the constants then cost array reads where they
    were scalars, and gathering them costs more than the calls it saves."""
    return [_run(_prepare(*lay), block) for lay in layouts]


@dataclass(frozen=True, kw_only=True)
class ThroughputTimes:
    """Max-throughput (continuous batching) figures of an array of configurations."""

    batch: F
    """running batch per replica: what memory holds at the held context, capped by the limit"""
    ttft_s: F
    tpot_s: F
    e2e_s: F
    output_tokens_per_s: F
    """whole deployment (all replicas)"""
    prefill_time_share: F
    fits: NDArray[np.bool_]
    """one sequence fits in memory (``estimate_max_throughput`` raises where it does not)"""


@dataclass(frozen=True)
class _Engine:
    """Engine settings of :func:`throughput_times` (estimate_max_throughput's arguments)."""

    chunk_tokens: float
    full_length: bool
    aligned_context: bool
    graph_sizes: tuple[float, ...]


def _decode_rest(k: StepKernel, micro: F) -> F:
    """Device time of a decode step's ops other than attention, ``micro`` sequences."""
    bd = micro if k.dp_one else micro / k.dp
    return k.tokens_time(NP, bd, bd, micro, bd if k.dp_one else micro)


def _prefill_tok_s(k: StepKernel, eng: _Engine, B: F, I: F, O: F, bp: F) -> tuple[F, F]:
    """(TTFT, prefill seconds per token): one prefill step of ``bp`` prompts, stretched where
    the attention-dp ranks' context chunks fall apart (estimate_max_throughput, adp.py)."""
    bd = bp if k.dp_one else bp / k.dp
    t = bd * I
    t_all = t if k.dp_one else bp * I
    dev_s = k.tokens_time(NP, bd, t, t_all, bp) + k.attention_time(NP, bd, I, 0.0, t)
    ttft = k.finish(NP, dev_s, bd, t)
    tok = ttft / (bp * I)
    if k.plan.dp > 1 and not eng.aligned_context:
        p = adp.context_step_share(B / k.plan.dp, I, O, eng.chunk_tokens)
        m = adp.unaligned_factor(p, k.plan.dp)
        tt = np.maximum(ttft, 1e-30)
        tok = tok * ((tt + (m - 1.0) * (dev_s - k.expert_time(NP, t_all))) / tt)
    return ttft, tok


def _graph_padding(k: StepKernel, eng: _Engine, B: F, I: F, O: F, micro: F, rest: F) -> F:
    """Extra decode time of CUDA-graph padding, weighted by the share of generation-only
    steps (estimate_max_throughput, graphs.padding_time)."""
    dp = k.plan.dp
    p = adp.context_step_share(B / dp, I, O, eng.chunk_tokens)
    pad = graphs.padded_batch(np.maximum(micro / dp, 1.0), eng.graph_sizes) * dp
    extra = _decode_rest(k, pad) - rest
    return (1.0 - p) ** dp * np.where(pad > micro, np.maximum(extra, 0.0), 0.0)


def _throughput_block(k: StepKernel, I: F, O: F, limit: F | None, eng: _Engine) -> tuple[F, ...]:
    """estimate_max_throughput's arithmetic for one block (same order for the discrete
    steps: the batch memory holds, prompts per prefill chunk)."""
    chunk = np.maximum(eng.chunk_tokens * k.dp, I)
    held = I + O if eng.full_length else I + O / 2.0
    cap = k.memory.max_batch(NP, held, chunk)
    if limit is not None:
        cap = np.minimum(cap, limit)
    fits = k.memory.free(NP, 1.0, held, chunk) >= 0
    B = np.maximum(cap, 1.0)
    bp = np.maximum(np.floor(chunk / I), 1.0)
    ttft, tok = _prefill_tok_s(k, eng, B, I, O, bp)
    micro = B if k.plan.pp == 1 else np.maximum(B / k.plan.pp, 1.0)
    bd = micro if k.dp_one else micro / k.dp
    rest = _decode_rest(k, micro)
    dev4 = k.attention_time(NP, bd, 1.0, I + O * QUAD[:, None], bd)
    dev4 += rest
    t_dec = k.host_bound(NP, dev4, bd).mean(axis=0) + k.fixed_time(NP, bd)
    if eng.graph_sizes:
        t_dec = t_dec + _graph_padding(k, eng, B, I, O, micro, rest)
    busy_prefill = B * I * tok / k.plan.pp  # pp stages prefill concurrently (estimate.py)
    busy = busy_prefill + O * t_dec
    tpot = t_dec + busy_prefill / O
    share = busy_prefill / busy
    return B, ttft, tpot, ttft + O * tpot, k.replicas * (B * O / busy), share, fits


def throughput_times(
    model: ModelSpec,
    dev: Device,
    plan: InferencePlan,
    input_len: ArrayLike,
    output_len: ArrayLike,
    *,
    batch_limit: ArrayLike | None = None,
    max_prefill_tokens: float = 8192.0,
    reserve_full_length: bool = False,
    aligned_context: bool = False,
    graph_batch_sizes: Sequence[float] | None = None,
    block: int = BLOCK,
) -> ThroughputTimes:
    """The figures of :func:`.estimate.estimate_max_throughput` (same arguments) without its
    breakdown, in blocks; a configuration where not even one sequence fits is reported in
    ``fits`` instead of raising."""
    lim = 1.0 if batch_limit is None else np.asarray(batch_limit, dtype=np.float64)
    arrs = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (input_len, output_len)), lim
    )
    p = _prepare(model, dev, plan, 1.0, arrs[0], arrs[1])
    flat_l = None if batch_limit is None else np.ascontiguousarray(arrs[2]).reshape(-1)
    eng = _Engine(
        chunk_tokens=float(max_prefill_tokens),
        full_length=reserve_full_length,
        aligned_context=aligned_context,
        graph_sizes=tuple(float(x) for x in graph_batch_sizes or ()),
    )
    n = p.flat[1].size
    outs = [np.empty(n) for _ in range(6)] + [np.empty(n, dtype=bool)]
    for lo in range(0, n, max(int(block), 1)):
        hi = min(lo + max(int(block), 1), n)
        got = _throughput_block(
            p.kernel,
            p.flat[1][lo:hi],
            p.flat[2][lo:hi],
            None if flat_l is None else flat_l[lo:hi],
            eng,
        )
        for o, g in zip(outs, got, strict=True):
            o[lo:hi] = g
    B, ttft, tpot, e2e, tput, share, fits = (o.reshape(p.shape) for o in outs)
    return ThroughputTimes(
        batch=B,
        ttft_s=ttft,
        tpot_s=tpot,
        e2e_s=e2e,
        output_tokens_per_s=tput,
        prefill_time_share=share,
        fits=np.asarray(fits, dtype=bool),
    )

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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..catalog.schema import ModelSpec
from ..errors import SiliconomicsError
from ..ops.device import Device
from ..parallel.plan import InferencePlan
from .kernel import NP, PY, StepKernel, step_kernel

F = NDArray[np.float64]
QUAD = (np.arange(4) + 0.5) / 4.0  # midpoints of 4 equal context slices (as estimate.py)
_QUAD_PY = tuple(float(q) for q in QUAD)
BLOCK = 8192
"""Configurations per block: ~40 temporaries of 4 x 8192 doubles stay within L2."""


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
    bd = B if k.dp == 1.0 else B / k.dp
    t = bd * I
    t_all = t if k.dp == 1.0 else B * I
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


def _block(k: StepKernel, B: F, I: F, O: F, out: tuple[F, ...]) -> None:
    """Evaluate one block of configurations into ``out`` (ttft, tpot, e2e, tput, free)."""
    bd = B if k.dp == 1.0 else B / k.dp
    t = bd * I
    t_all = t if k.dp == 1.0 else B * I
    dev_s = k.tokens_time(NP, bd, t, t_all, B) + k.attention_time(NP, bd, I, 0.0, t)
    ttft = k.finish(NP, dev_s, bd, t)
    steps = np.maximum(O - 1.0, 0.0)
    rest = k.tokens_time(NP, bd, bd, B, B)
    ctx = I[:, None] + steps[:, None] * QUAD
    b2 = bd[:, None]
    att = k.attention_time(NP, b2, 1.0, ctx, b2)
    tpot = k.finish(NP, rest[:, None] + att, b2, b2).mean(axis=1)
    e2e = ttft + steps * tpot
    out[0][:] = ttft
    out[1][:] = np.where(steps > 0, tpot, 0.0)
    out[2][:] = e2e
    out[3][:] = k.plan.replicas * B * O / e2e
    out[4][:] = k.memory.free(NP, B, I + O, B * I)


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
    k = step_kernel(model, dev, plan)
    B, I, O = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (batch, input_len, output_len))
    )
    shape = B.shape
    flat = [np.ascontiguousarray(x).reshape(-1) for x in (B, I, O)]
    for name, v in zip(("batch", "input_len", "output_len"), flat, strict=True):
        bad = ~(v >= 1) | ~np.isfinite(v)
        if bad.any():
            raise _bad_length(name, float(v[bad][0]))
    n = flat[0].size
    out = tuple(np.empty(n) for _ in range(5))
    step = max(int(block), 1)
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        B_, I_, O_ = (x[lo:hi] for x in flat)
        _block(k, B_, I_, O_, tuple(o[lo:hi] for o in out))
    ttft, tpot, e2e, tput, free = (o.reshape(shape) for o in out)
    return StaticTimes(
        ttft_s=ttft, tpot_s=tpot, e2e_s=e2e, output_tokens_per_s=tput, free_bytes=free
    )


def static_times_many(layouts: Iterable[Layout], *, block: int = BLOCK) -> list[StaticTimes]:
    """:func:`static_times` of several layouts (models, tp degrees, chips) in one call; each
    layout's step kernel is built once and kept."""
    return [static_times(*lay, block=block) for lay in layouts]

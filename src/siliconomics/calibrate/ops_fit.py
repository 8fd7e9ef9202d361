"""Fit an NVIDIA efficiency profile to measured op timings (vidur data, ``shared/data``).

Data (``measured-ops/compute/<gpu>/<org>/<model>/mlp.csv``): per-op CUDA-kernel times of one
transformer layer's non-attention work, profiled by vidur with the PyTorch profiler (kernel
durations only, no host launch gaps), fp16, for ``num_tokens`` T = 1 .. 4096 (32768 for some
models) and tensor parallelism tp in {1, 2, 4, 8}. ``network/<setup>/all_reduce.csv``: NCCL
all-reduce kernel times by buffer size, rank 0.

What is fitted, and how (least squares on log time, ``scipy.optimize.least_squares`` from a
fixed start point, so the result is a pure function of the files):

* ``gemm_efficiency``, ``memory_efficiency``, ``kernel_overhead_s`` jointly, against
  :func:`siliconomics.ops.roofline.gemm` (tile/wave quantisation included), on the GEMM rows of
  every model but the hold-out **in the two regimes where one roof dominates**: m < 64
  (weight streaming: pins ``memory_efficiency`` and the overhead; this is decode) and
  m >= 1024 (compute-bound: pins ``gemm_efficiency``). The ridge band 64 <= m < 1024 is scored,
  not fitted. Why: 75% of the rows lie at m >= 512, and max(compute, memory) is least right
  near the ridge point, so a fit on all rows buys a slightly lower ridge-band error with a
  lower ``memory_efficiency`` and a larger overhead, and then over-predicts every decode GEMM
  (H100: +12% median bias at m < 64, A100: +7%). Fitting on the pure regimes gives +1% there,
  the same or lower median error on all rows and on the hold-out model, and leaves the ridge
  band's structural error visible instead of smearing it into the factors.
* ``collective_latency_s``, ``collective_efficiency`` on the single-node rows
  (``num_workers == devices_per_node`` in {2, 4, 8}, all sizes) against
  :func:`siliconomics.parallel.collectives.all_reduce_time` on the chip's topology.

Decision on the element-wise ops (norms, activation, RoPE, residual add, embedding): they are
**not** used to fit ``memory_efficiency``. At T >= 1024 they are bandwidth-bound (50-360 us,
far above any launch overhead), but the fraction of peak HBM bandwidth they reach is set by
the kernel, not the memory system: on H100 (A100) the torch residual add reaches ~1.0 (0.87)
of peak (helped by L2 reuse of the just-written input), vLLM's SiluAndMul 0.56 (0.49), RoPE 0.46
(0.42), RMSNorm 0.34 (0.34) and the vocab-parallel embedding gather 0.18 (0.15)
(see :attr:`NvidiaFit.memory_op_bw_fraction`). One ``memory_efficiency`` cannot describe that
spread; fitting it there would drag the weight-streaming (decode) GEMM prediction off by 2x.
At small T they are not dominated by one launch overhead either (2 us for ``add``, 12 us for
the embedding at T = 16), so they do not inform ``kernel_overhead_s`` beyond the GEMM fit.
They are scored against the fitted profile and reported as a diagnostic.

Byte counts of the element-wise ops (fp16, 2 bytes/element; T tokens, D hidden, F FFN width,
H/K query/kv heads, hd head dim, per tensor-parallel worker):

* ``input_layernorm`` / ``post_attention_layernorm``: read x [T, D], write y [T, D]
  -> 2*T*D*2 (the D-vector weight is negligible and ignored).
* ``add`` (residual): read two [T, D], write one -> 3*T*D*2.
* ``mlp_act``: gated (SiluAndMul) reads [T, 2F/tp] and writes [T, F/tp] -> 3*T*F/tp*2;
  plain GELU reads and writes [T, F/tp] -> 2*T*F/tp*2.
* ``attn_rope``: in-place rotation of q and k, read + write [T, (H+K)*hd/tp] ->
  2*T*(H+K)*hd/tp*2 (the cos/sin cache is ignored).
* ``emb``: gather T rows of the vocab-parallel table and write [T, D] -> 2*T*D*2.

GEMM shapes (m = T): QKV n = (H + 2K)*hd/tp, k = D; output projection n = D, k = H*hd/tp;
up n = (2 if gated else 1)*F/tp, k = D; down n = D, k = F/tp.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Final, TypeVar

import numpy as np
from numpy.typing import NDArray

from ..catalog.schema import EfficiencyProfile
from ..ops.device import Device
from ..ops.roofline import gemm, memory_op
from ..parallel.collectives import all_reduce_time

F = NDArray[np.float64]
S = NDArray[np.str_]

GEMM_OPS: Final = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")
MEMORY_OPS: Final = (
    "input_layernorm",
    "post_attention_layernorm",
    "mlp_act",
    "attn_rope",
    "add",
    "emb",
)
DTYPE: Final = "fp16"  # vidur casts the model to torch.float16
ELEM_BYTES: Final = 2.0
# Held out of the fit and scored separately. Meta-Llama-3-70B (A100 data only) has exactly the
# layer shapes of Llama-2-70b (D 8192, F 28672, H 64, K 8), so it is held out with it.
HOLDOUT_MODELS: Final = ("Llama-2-70b-hf", "Meta-Llama-3-70B")
MIB: Final = 1024.0**2
# GEMM rows used in the fit: m below SMALL_M (weight streaming) or at least LARGE_M (compute).
SMALL_M: Final = 64.0
LARGE_M: Final = 1024.0

# Start point and bounds of the fits (x = gemm_eff, mem_eff, overhead in microseconds).
_OPS_X0: Final = (0.7, 0.8, 5.0)
_OPS_LO: Final = (0.3, 0.3, 0.0)
_OPS_HI: Final = (1.0, 1.0, 50.0)
# x = collective latency in microseconds, collective efficiency.
_AR_X0: Final = (5.0, 0.7)
_AR_LO: Final = (0.0, 0.1)
_AR_HI: Final = (100.0, 1.0)


#: The profile factors this module fits (the others have no op-level data).
FITTED_FACTORS: tuple[str, ...] = (
    "gemm_efficiency",
    "memory_efficiency",
    "kernel_overhead_s",
    "collective_latency_s",
    "collective_efficiency",
)


@dataclass(frozen=True, kw_only=True)
class GemmSamples:
    """One row per measured GEMM: ``[m x k] @ [k x n]`` and its median time."""

    model: S
    op: S
    m: F
    n: F
    k: F
    tp: F
    time_s: F


@dataclass(frozen=True, kw_only=True)
class MemorySamples:
    """One row per measured element-wise op: bytes moved (module docstring) and median time."""

    model: S
    op: S
    num_tokens: F
    tp: F
    nbytes: F
    time_s: F


@dataclass(frozen=True, kw_only=True)
class AllReduceSamples:
    """One row per measured all-reduce: per-chip buffer bytes, group size, median time."""

    nbytes: F
    n: NDArray[np.int64]
    time_s: F


T = TypeVar("T", GemmSamples, MemorySamples, AllReduceSamples)


def select(s: T, mask: NDArray[np.bool_]) -> T:
    """The rows of ``s`` where ``mask`` is true."""
    return type(s)(**{f.name: getattr(s, f.name)[mask] for f in fields(s)})


@dataclass(frozen=True, kw_only=True)
class ErrorStats:
    """Absolute percentage error |pred/measured - 1| of the op model on a set of rows."""

    label: str
    rows: int
    median_abs_pct: float
    p90_abs_pct: float
    median_signed_pct: float  # bias: > 0 means the model predicts too slow


@dataclass(frozen=True, kw_only=True)
class NvidiaFit:
    """Fitted profile values for one GPU data set, and how well the model then fits."""

    chip_id: str
    compute_dir: str
    network_csv: str
    holdout_models: tuple[str, ...]  # those present in the data
    gemm_efficiency: float
    memory_efficiency: float
    kernel_overhead_s: float
    collective_latency_s: float
    collective_efficiency: float
    gemm_rows: int  # rows used in the GEMM fit (hold-out and ridge band excluded)
    all_reduce_rows: int
    holdout_rows: int  # GEMM rows of the hold-out model
    gemm_in_sample: tuple[ErrorStats, ...]  # all rows of the fitted models, by band and op
    gemm_holdout: tuple[ErrorStats, ...]  # all rows of the hold-out model
    memory_ops: tuple[ErrorStats, ...]  # diagnostic, all models, not fitted
    memory_op_bw_fraction: tuple[tuple[str, float], ...]  # op -> median fraction of HBM peak
    all_reduce: tuple[ErrorStats, ...]

    def stat(self, group: str, label: str) -> ErrorStats:
        """One error row by group (``gemm_in_sample``, ``gemm_holdout``, ...) and label."""
        rows: tuple[ErrorStats, ...] = getattr(self, group)
        for e in rows:
            if e.label == label:
                return e
        raise KeyError(f"{group}: no error row '{label}'")


# ---- loading -------------------------------------------------------------------------------


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _gemm_shape(op: str, row: dict[str, str]) -> tuple[float, float]:
    """(n, k) of one GEMM op from the model columns of a vidur row."""
    h, kv, d = int(row["n_head"]), int(row["n_kv_head"]), int(row["n_embd"])
    f, tp = int(row["n_expanded_embd"]), int(row["num_tensor_parallel_workers"])
    hd = d // h
    gated = row["use_gated_mlp"].strip().lower() == "true"
    shapes = {
        "attn_pre_proj": ((h + 2 * kv) * hd / tp, d),
        "attn_post_proj": (d, h * hd / tp),
        "mlp_up_proj": ((2 if gated else 1) * f / tp, d),
        "mlp_down_proj": (d, f / tp),
    }
    n, k = shapes[op]
    return float(n), float(k)


def _memory_bytes(op: str, row: dict[str, str]) -> float:
    """Bytes moved by one element-wise op (definitions in the module docstring)."""
    h, kv, d = int(row["n_head"]), int(row["n_kv_head"]), int(row["n_embd"])
    f, tp = int(row["n_expanded_embd"]), int(row["num_tensor_parallel_workers"])
    t = int(row["num_tokens"])
    gated = row["use_gated_mlp"].strip().lower() == "true"
    elems = {
        "input_layernorm": 2 * t * d,
        "post_attention_layernorm": 2 * t * d,
        "add": 3 * t * d,
        "mlp_act": (3 if gated else 2) * t * f / tp,
        "attn_rope": 2 * t * (h + kv) * (d // h) / tp,
        "emb": 2 * t * d,
    }
    return float(elems[op]) * ELEM_BYTES


def _median_s(row: dict[str, str], op: str) -> float | None:
    v = row.get(f"time_stats.{op}.median", "")
    if not v:
        return None  # op absent for this model (e.g. phi-2 has no post-attention norm)
    t = float(v) * 1e-3  # file is in ms
    return t if t > 0 else None


def load_compute(compute_dir: Path) -> tuple[GemmSamples, MemorySamples]:
    """All ``<org>/<model>/mlp.csv`` under ``compute_dir``; model = the folder name."""
    paths = sorted(compute_dir.glob("*/*/mlp.csv"))
    if not paths:
        raise FileNotFoundError(f"no */*/mlp.csv under {compute_dir}")
    g_names: list[tuple[str, str]] = []
    g_vals: list[tuple[float, float, float, float, float]] = []  # m, n, k, tp, time
    m_names: list[tuple[str, str]] = []
    m_vals: list[tuple[float, float, float, float]] = []  # tokens, tp, bytes, time
    for path in paths:
        model = path.parent.name
        for row in _read_csv(path):
            t, tp = float(row["num_tokens"]), float(row["num_tensor_parallel_workers"])
            for op in GEMM_OPS:
                ts = _median_s(row, op)
                if ts is not None:
                    n, k = _gemm_shape(op, row)
                    g_names.append((model, op))
                    g_vals.append((t, n, k, tp, ts))
            for op in MEMORY_OPS:
                ts = _median_s(row, op)
                if ts is not None:
                    m_names.append((model, op))
                    m_vals.append((t, tp, _memory_bytes(op, row), ts))
    gn, gv = np.array(g_names, dtype=np.str_), np.array(g_vals, dtype=np.float64)
    mn, mv = np.array(m_names, dtype=np.str_), np.array(m_vals, dtype=np.float64)
    gemms = GemmSamples(
        model=gn[:, 0],
        op=gn[:, 1],
        m=gv[:, 0],
        n=gv[:, 1],
        k=gv[:, 2],
        tp=gv[:, 3],
        time_s=gv[:, 4],
    )
    mems = MemorySamples(
        model=mn[:, 0],
        op=mn[:, 1],
        num_tokens=mv[:, 0],
        tp=mv[:, 1],
        nbytes=mv[:, 2],
        time_s=mv[:, 3],
    )
    return gemms, mems


def load_all_reduce(path: Path, *, group_sizes: tuple[int, ...] = (2, 4, 8)) -> AllReduceSamples:
    """Single-node all-reduce rows (``num_workers == devices_per_node``) of ``group_sizes``;
    ``size`` is the fp16 buffer in bytes. Duplicate (size, n) rows are kept once."""
    seen: dict[tuple[int, int], float] = {}
    for row in _read_csv(path):
        n, dpn = int(row["num_workers"]), int(row["devices_per_node"])
        if n != dpn or n not in group_sizes:
            continue
        seen.setdefault((int(row["size"]), n), float(row["time_stats.all_reduce.median"]) * 1e-3)
    keys = sorted(seen)
    return AllReduceSamples(
        nbytes=np.array([k[0] for k in keys], dtype=np.float64),
        n=np.array([k[1] for k in keys], dtype=np.int64),
        time_s=np.array([seen[k] for k in keys], dtype=np.float64),
    )


# ---- the model as the rest of the package sees it ------------------------------------------


def with_values(eff: EfficiencyProfile, **values: float) -> EfficiencyProfile:
    """``eff`` with some numeric factors replaced (validated by the schema)."""
    return EfficiencyProfile.model_validate({**eff.model_dump(), **values})


def predict_gemm(dev: Device, s: GemmSamples) -> F:
    t = gemm(
        dev,
        "gemm",
        s.m,
        s.n,
        s.k,
        compute_dtype=DTYPE,
        a_bytes=ELEM_BYTES,
        w_bytes=ELEM_BYTES,
        out_bytes=ELEM_BYTES,
    ).time
    return np.asarray(t, dtype=np.float64)


def predict_memory(dev: Device, s: MemorySamples) -> F:
    return np.asarray(memory_op(dev, "elementwise", s.nbytes).time, dtype=np.float64)


def predict_all_reduce(dev: Device, s: AllReduceSamples) -> F:
    out = np.empty_like(s.time_s)
    for n in np.unique(s.n):
        sel = s.n == n
        # The measurements are plain NCCL calls from eager PyTorch: its ring (64 MiB on
        # 8 x H100 reaches a bus bandwidth of 364 GB/s, a ring's, not NVLS's), no custom kernel.
        out[sel] = all_reduce_time(dev, s.nbytes[sel], int(n), algorithms=("ring",))
    return out


# ---- fitting ---------------------------------------------------------------------------------


def fit_gemm(dev: Device, s: GemmSamples) -> tuple[float, float, float]:
    """(gemm_efficiency, memory_efficiency, kernel_overhead_s) minimising the squared log
    error of :func:`predict_gemm` over ``s``. Independent of ``dev.eff``'s values for them."""
    from scipy.optimize import least_squares

    log_meas = np.log(s.time_s)

    def resid(x: F) -> F:
        eff = dev.eff.model_copy(
            update={
                "gemm_efficiency": x[0],
                "memory_efficiency": x[1],
                "kernel_overhead_s": x[2] * 1e-6,
            }
        )
        return np.log(predict_gemm(Device(chip=dev.chip, eff=eff), s)) - log_meas

    r = least_squares(
        resid,
        np.array(_OPS_X0),
        bounds=(_OPS_LO, _OPS_HI),
        method="trf",
        xtol=1e-12,
        ftol=1e-12,
        gtol=1e-12,
    )
    return float(r.x[0]), float(r.x[1]), float(r.x[2]) * 1e-6


def fit_all_reduce(dev: Device, s: AllReduceSamples) -> tuple[float, float]:
    """(collective_latency_s, collective_efficiency) minimising the squared log error of
    :func:`predict_all_reduce` over ``s``."""
    from scipy.optimize import least_squares

    log_meas = np.log(s.time_s)

    def resid(x: F) -> F:
        eff = dev.eff.model_copy(
            update={"collective_latency_s": x[0] * 1e-6, "collective_efficiency": x[1]}
        )
        return np.log(predict_all_reduce(Device(chip=dev.chip, eff=eff), s)) - log_meas

    r = least_squares(
        resid,
        np.array(_AR_X0),
        bounds=(_AR_LO, _AR_HI),
        method="trf",
        xtol=1e-12,
        ftol=1e-12,
        gtol=1e-12,
    )
    return float(r.x[0]) * 1e-6, float(r.x[1])


# ---- scoring ---------------------------------------------------------------------------------


def error_stats(label: str, pred: F, meas: F) -> ErrorStats:
    rel = pred / meas - 1.0
    if rel.size == 0:
        return ErrorStats(
            label=label,
            rows=0,
            median_abs_pct=float("nan"),
            p90_abs_pct=float("nan"),
            median_signed_pct=float("nan"),
        )
    return ErrorStats(
        label=label,
        rows=int(rel.size),
        median_abs_pct=float(np.median(np.abs(rel)) * 100.0),
        p90_abs_pct=float(np.percentile(np.abs(rel), 90.0) * 100.0),
        median_signed_pct=float(np.median(rel) * 100.0),
    )


GEMM_M_BANDS: Final = (
    ("m<64", 0.0, SMALL_M),
    ("64<=m<256", SMALL_M, 256.0),
    ("256<=m<1024", 256.0, LARGE_M),
    ("m>=1024", LARGE_M, np.inf),
)


def gemm_errors(dev: Device, s: GemmSamples) -> tuple[ErrorStats, ...]:
    """Error on all rows, by token band (weight-streaming, mid, compute-bound) and by op."""
    pred = predict_gemm(dev, s)
    out = [error_stats("all", pred, s.time_s)]
    for label, lo, hi in GEMM_M_BANDS:
        sel = (s.m >= lo) & (s.m < hi)
        out.append(error_stats(label, pred[sel], s.time_s[sel]))
    for op in GEMM_OPS:
        sel = s.op == op
        out.append(error_stats(op, pred[sel], s.time_s[sel]))
    return tuple(out)


def memory_errors(dev: Device, s: MemorySamples) -> tuple[ErrorStats, ...]:
    """Error per element-wise op, on all rows and on T >= 1024 (bandwidth regime)."""
    pred = predict_memory(dev, s)
    out = [error_stats("all", pred, s.time_s)]
    for op in MEMORY_OPS:
        sel = s.op == op
        out.append(error_stats(op, pred[sel], s.time_s[sel]))
        big = sel & (s.num_tokens >= 1024)
        out.append(error_stats(f"{op} T>=1024", pred[big], s.time_s[big]))
    return tuple(out)


def memory_bw_fraction(dev: Device, s: MemorySamples) -> tuple[tuple[str, float], ...]:
    """Median achieved fraction of peak HBM bandwidth per op at T >= 1024."""
    out = []
    for op in MEMORY_OPS:
        sel = (s.op == op) & (s.num_tokens >= 1024)
        if sel.any():
            frac = s.nbytes[sel] / s.time_s[sel] / dev.hbm_bytes_per_s
            out.append((op, float(np.median(frac))))
    return tuple(out)


def all_reduce_errors(dev: Device, s: AllReduceSamples) -> tuple[ErrorStats, ...]:
    pred = predict_all_reduce(dev, s)
    out = [error_stats("all", pred, s.time_s)]
    big = s.nbytes >= MIB
    out.append(error_stats(">=1MiB", pred[big], s.time_s[big]))
    out.append(error_stats("<1MiB", pred[~big], s.time_s[~big]))
    for n in np.unique(s.n):
        sel = big & (s.n == n)
        out.append(error_stats(f"n={int(n)} >=1MiB", pred[sel], s.time_s[sel]))
    return tuple(out)


# ---- the whole procedure ---------------------------------------------------------------------


def calibrate_nvidia(
    compute_dir: Path,
    network_csv: Path,
    base: Device,
    *,
    holdout_models: tuple[str, ...] = HOLDOUT_MODELS,
) -> NvidiaFit:
    """Fit the GEMM and collective factors of ``base``'s family (``base``: the GPU measured,
    with its family's current efficiency profile) on one GPU's data."""
    chip, chip_id = base.chip, base.id
    gemms, mems = load_compute(compute_dir)
    held = np.isin(gemms.model, holdout_models)
    if not held.any():
        raise ValueError(f"none of the hold-out models {holdout_models} under {compute_dir}")
    seen = select(gemms, ~held)
    train = select(seen, (seen.m < SMALL_M) | (seen.m >= LARGE_M))
    ge, me, ko = fit_gemm(base, train)
    ar = load_all_reduce(network_csv)
    lat, ce = fit_all_reduce(base, ar)
    dev = Device(
        chip=chip,
        eff=with_values(
            base.eff,
            gemm_efficiency=ge,
            memory_efficiency=me,
            kernel_overhead_s=ko,
            collective_latency_s=lat,
            collective_efficiency=ce,
        ),
    )
    return NvidiaFit(
        chip_id=chip_id,
        compute_dir=str(compute_dir),
        network_csv=str(network_csv),
        holdout_models=tuple(m for m in holdout_models if m in set(gemms.model.tolist())),
        gemm_efficiency=ge,
        memory_efficiency=me,
        kernel_overhead_s=ko,
        collective_latency_s=lat,
        collective_efficiency=ce,
        gemm_rows=int(train.time_s.size),
        all_reduce_rows=int(ar.time_s.size),
        holdout_rows=int(held.sum()),
        gemm_in_sample=gemm_errors(dev, seen),
        gemm_holdout=gemm_errors(dev, select(gemms, held)),
        memory_ops=memory_errors(dev, mems),
        memory_op_bw_fraction=memory_bw_fraction(dev, mems),
        all_reduce=all_reduce_errors(dev, ar),
    )


def fitted_profile(eff: EfficiencyProfile, fit: NvidiaFit) -> EfficiencyProfile:
    """``eff`` with the five fitted factors of ``fit`` (provenance left to the caller)."""
    return with_values(
        eff,
        gemm_efficiency=fit.gemm_efficiency,
        memory_efficiency=fit.memory_efficiency,
        kernel_overhead_s=fit.kernel_overhead_s,
        collective_latency_s=fit.collective_latency_s,
        collective_efficiency=fit.collective_efficiency,
    )

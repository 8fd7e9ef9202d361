"""The calibration policy: which factor each chip family and stack fits, from which rows, within
which bounds, and what it inherits when its rows are too few. Data, tested
(tests/test_calibrate_policy.py); the fitting itself is :mod:`.hierarchy`.

Levels (hierarchical shrinkage):

1. **all chips**: the fixed ``PRIORS`` (H100 op-level measurements, ``scripts/calibrate_nvidia.py``
   via :mod:`.ops_fit`; round defaults for time constants). Op-level microbenchmarks anchor a
   chip's achievable peaks; they are never refitted on end-to-end rows.
2. **family** (default stack): the factors of ``FIT_PLAN[family]`` fitted on the family's rows
   measured with its default (best-published) stack, pulled toward the parent level (the
   family named in ``INHERIT``, else all chips) by ``SHRINK_ROWS`` pseudo-rows.
3. **chip** (default stack): in a family where at least ``MIN_CHIPS`` chips have default-stack
   rows, each chip with rows from at least ``MIN_CHIP_SOURCES`` sources fits the first
   ``CHIP_FACTORS`` of the family's planned factors again on its own rows (three rows each;
   where the plan fits both GEMM fractions of a pair, each of them its rows run,
   :func:`chip_affordable`),
   pulled toward the family's fitted values by ``SHRINK_ROWS`` pseudo-rows (a chip with few
   rows stays near its family; one with none is its family). Stored as the family profile's
   ``chip_factors`` and applied to that chip only, under every stack except for the factors
   a stack fitted itself.
4. **(family, stack)**: a non-default stack with rows of its own fits the first factors of
   ``STACK_FIT_PLAN[workload]``, pulled toward its family's values.

A level fits at most one factor per ``MIN_ROWS_PER_FACTOR`` rows, in the order the plan lists
them (most directly constrained first); with fewer rows it inherits its parent's values.
Factors stay inside ``BOUNDS``; a fitted factor within 1% of the bound range from a bound is
reported as *at its bound* (the data want something outside the physical range: a sign of a
missing mechanism, not a finding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

MIN_ROWS_PER_FACTOR: Final = 3
MIN_CHIPS: Final = 2
"""chips of a family with default-stack rows needed before any chip gets factors of its own"""
MIN_CHIP_SOURCES: Final = 3
"""sources a chip's rows must come from before it fits a factor of its own (rows of one
document share its setup: a chip factor fitted on them learns that document, not the chip)"""
CHIP_FACTORS: Final = 1
"""a chip adjusts at most this many of its family's planned factors (the first, most directly
constrained): chips of a family differ by less than stacks and sources do"""
SHRINK_ROWS: Final = 3.0
"""pseudo-rows of the parent's value in every fit (weight of the shrinkage)"""
PRIOR_SD: Final = 0.25
"""prior spread of a factor around its parent, as a fraction of its bound range"""
AT_BOUND: Final = 0.01

BOUNDS: dict[str, tuple[float, float]] = {
    "gemm_efficiency": (0.10, 0.95),
    "lowp_gemm_efficiency": (0.10, 0.95),
    # grouped MoE expert GEMMs relative to a dense GEMM of the same shape: 1 = as fast; a
    # quarter is below what any published fused-MoE kernel benchmark shows against cuBLAS
    "grouped_gemm_efficiency": (0.25, 1.0),
    "memory_efficiency": (0.40, 0.95),
    "attention_efficiency": (0.10, 0.90),
    # fraction of the path's rate the collectives reach (ops_fit on NCCL: 0.79 on H100
    # NVSwitch, 0.53 on A100); fitted end to end only where the path has no op-level data
    # (PCIe-only parts, FIT_PLAN)
    "collective_efficiency": (0.20, 1.0),
    "collective_latency_s": (2e-6, 60e-6),  # >= one scale-up hop incl. sync (NCCL H100: 4.3 µs)
    # A fixed per-step cost (scheduler, graph launch) beside the per-sequence host time
    # (host_per_seq_s). Whole decode steps of a few ms are measured (shared measured.csv:
    # Inferentia2 Llama-3-8B at 6.5 ms per token, weight reads included), so a fixed overhead
    # above 5 ms contradicts measurements; a fit that pushes it there is absorbing a missing
    # mechanism (it reached 19 ms on the corpus with a 20 ms bound).
    "step_overhead_s": (0.0, 5e-3),
    "train_gemm_efficiency": (0.30, 0.95),
    "train_lowp_gemm_efficiency": (0.20, 0.95),
    "train_comm_overlap": (0.0, 1.0),
    # host time of one eager PyTorch op (training/host.py): 2-3 µs is the bare dispatcher,
    # 50 µs a Python-heavy module call
    "train_host_op_s": (2e-6, 50e-6),
}

#: The all-chips level: the H100 op-level measurements (GEMM 0.77, HBM 0.88) and round
#: defaults for the time constants; training GEMMs start from the same 0.77, overlap from 0.
PRIORS: dict[str, float] = {
    "gemm_efficiency": 0.77,
    "lowp_gemm_efficiency": 0.77,
    "grouped_gemm_efficiency": 1.0,  # no op-level measurement: as fast as dense until fitted
    "memory_efficiency": 0.88,
    "attention_efficiency": 0.6,
    "collective_efficiency": 0.788,  # the H100 NVSwitch op-level fit (ops_fit)
    "collective_latency_s": 5e-6,
    "step_overhead_s": 1e-3,
    "train_gemm_efficiency": 0.77,
    "train_lowp_gemm_efficiency": 0.77,
    "train_comm_overlap": 0.0,
    "train_host_op_s": 13.48e-6,  # training/host.py EAGER_HOST_OP_S (x86 host)
}

#: Inference factors fitted on each family's default-stack rows, in the order of how directly
#: the rows constrain them.
FIT_PLAN: dict[str, tuple[str, ...]] = {
    # step_overhead_s is not fitted on Hopper: the corpus's offline TensorRT-LLM rows (most from
    # the C++ engine runtime, which has no per-sequence host time) drove it to its 5 ms bound
    # (19 ms under a 20 ms bound), which then made every latency-target answer on Hopper and
    # Blackwell 2-4x too slow; it stays at the prior until a mechanism explains those rows.
    # grouped_gemm_efficiency: the MoE rows of every GPU family sat 10-50% too fast with the
    # dense GEMM fraction applied to the fused MoE kernels (docs/MODEL.md, "Grouped GEMM
    # efficiency"); fitted after the dense factor, so a chip level never refits it
    "nvidia-hopper": ("lowp_gemm_efficiency", "grouped_gemm_efficiency"),
    "nvidia-blackwell": ("lowp_gemm_efficiency", "grouped_gemm_efficiency"),
    # Ada (L40S): a 350 W PCIe card with GDDR6 and no NVLink. Inheriting Hopper's HBM,
    # power and NVSwitch fractions left its 133 TensorRT-LLM rows +16% too fast: +9..+14% on one
    # chip, +16% at TP4 and +26% at TP8, where the all-reduce crosses PCIe (the H100 NVSwitch
    # collective fraction does not describe that path; no op-level PCIe data)
    "nvidia-ada": ("lowp_gemm_efficiency", "memory_efficiency", "collective_efficiency"),
    # memory_efficiency on AMD: the dense vLLM rows (ROCm docs' static-batch decode, MLPerf)
    # sat 13-39% too fast at the BabelStream fraction (0.81), in memory-bound decode that no
    # GEMM factor reaches; the AMD stacks fitted elsewhere land at 0.40-0.60 (cdna3 sglang,
    # cdna4 atom/sglang), what LLM serving kernels reach on MI300X-class HBM, not STREAM's
    "amd-cdna3": ("lowp_gemm_efficiency", "memory_efficiency", "grouped_gemm_efficiency"),
    "aws-neuron-v2": (
        "gemm_efficiency",
        "memory_efficiency",
        "collective_latency_s",
        "step_overhead_s",
    ),
    "intel-gaudi": ("lowp_gemm_efficiency",),
    "aws-neuron-v3": ("gemm_efficiency",),
    "google-tpu": ("memory_efficiency", "gemm_efficiency"),
}

#: Families whose inference factors start from (and shrink toward) another family's: the
#: nearest family with the same software stack, or failing that the same vendor.
INHERIT: dict[str, str] = {
    "nvidia-blackwell": "nvidia-hopper",
    "nvidia-ada": "nvidia-hopper",
    "amd-cdna2": "amd-cdna3",
    "amd-cdna4": "amd-cdna3",
    "aws-neuron-v3": "aws-neuron-v2",
    "aws-neuron-v4": "aws-neuron-v3",
}

#: Inference fields copied from the parent family besides the fitted ones.
INHERITED_FIELDS: tuple[str, ...] = (
    "gemm_efficiency",
    "lowp_gemm_efficiency",
    "grouped_gemm_efficiency",
    "memory_efficiency",
    "attention_efficiency",
    "collective_latency_s",
    "step_overhead_s",
    "kernel_overhead_s",
    "collective_efficiency",
)

#: Scale-up fabrics whose collectives the model prices per ring step (``parallel.collectives``:
#: dimension-wise rings on a torus or ring, one ``collective_latency_s`` per step), against the
#: switches and meshes where ``collective_latency_s`` is the latency of a whole collective.
PER_STEP_TOPOLOGIES: Final = frozenset({"ring", "torus2d", "torus3d"})


def latency_kind(topologies: Sequence[str]) -> str:
    """How a family's ``collective_latency_s`` is read: ``'per-step'`` when every one of its
    chips' scale-up fabrics is a ring or torus, else ``'per-collective'``. A family with no rows
    takes this factor only from fitted families of the same kind: NCCL's ~15-30 us per
    collective on an NVSwitch is not the latency of one hop of an ICI or NeuronLink ring (a
    TPU v6e-4 at TP4 was priced 155 us per decode all-reduce from it, 2026-12-01)."""
    return "per-step" if topologies and set(topologies) <= PER_STEP_TOPOLOGIES else "per-collective"


#: Inference fields a family with neither rows nor a parent takes as the median of the fitted
#: families (NVIDIA families keep their op-level values instead).
MEDIAN_FIELDS: tuple[str, ...] = (
    "gemm_efficiency",
    "lowp_gemm_efficiency",
    "grouped_gemm_efficiency",
    "memory_efficiency",
    "attention_efficiency",
    "collective_latency_s",
    "step_overhead_s",
)

TRAIN_FIT_PLAN: dict[str, tuple[str, ...]] = {
    # train_host_op_s only moves dropless-MoE rows with small expert GEMMs (training/host.py)
    "nvidia-hopper": ("train_lowp_gemm_efficiency", "train_comm_overlap", "train_host_op_s"),
    # Blackwell's BF16 training rows (NeMo's BF16 MoE rows, the Megatron-Bridge tutorial's dense
    # BF16 step) fit its 16-bit training GEMM fraction; before 2026-12-01 it ran at the Hopper
    # inference fraction (0.77), which put a BF16 step on 4 x GB200 at the FP8 step's time
    # where the tutorial measures 1.36x longer
    "nvidia-blackwell": (
        "train_lowp_gemm_efficiency",
        "train_host_op_s",
        "train_gemm_efficiency",
    ),
    "google-tpu": ("train_gemm_efficiency", "train_lowp_gemm_efficiency", "train_comm_overlap"),
    # Trn1 (NxD Training, 25 corpus rows) and Gaudi (7) training GEMMs had no training factor of
    # their own, so they ran at the inference stacks' fitted fractions (Trn1: 0.171 from
    # transformers-neuronx decode; Gaudi: the optimum-habana inference fit from the same pages,
    # which a cross-validation fold drops together with the training rows)
    "aws-neuron-v2": ("train_gemm_efficiency", "train_comm_overlap"),
    "intel-gaudi": ("train_lowp_gemm_efficiency",),
}
TRAIN_INHERIT: dict[str, str] = {
    "nvidia-blackwell": "nvidia-hopper",
    "nvidia-ada": "nvidia-hopper",
    "nvidia-ampere": "nvidia-hopper",
}
TRAIN_FIELDS: tuple[str, ...] = (
    "train_gemm_efficiency",
    "train_lowp_gemm_efficiency",
    "train_comm_overlap",
    "train_host_op_s",
)

#: What a non-default stack with rows of its own may fit (on top of its family's profile):
#: the streaming and GEMM fractions a serving engine's kernels reach, and a training stack's
#: GEMM fraction and communication overlap.
STACK_FIT_PLAN: dict[str, tuple[str, ...]] = {
    "inference": ("memory_efficiency", "gemm_efficiency"),
    "training": ("train_gemm_efficiency", "train_comm_overlap"),
}


LOWP_FORMATS: Final = frozenset({"fp8", "int8", "fp4", "int4"})
"""GEMM formats that run at ``lowp_gemm_efficiency`` (siliconomics.ops.device)"""


def stack_plan(workload: str, act_dtypes: Sequence[str]) -> tuple[str, ...]:
    """What a non-default stack fits on its rows (``STACK_FIT_PLAN``), with the GEMM factor
    its rows actually run: ``lowp_gemm_efficiency`` when most of them compute in a low-precision
    format (an FP8 or FP4 stack's GEMMs never read ``gemm_efficiency``, so fitting that factor
    would leave the stack's GEMM rate at its family's)."""
    plan = STACK_FIT_PLAN[workload]
    lowp = sum(d in LOWP_FORMATS for d in act_dtypes)
    if workload != "inference" or 2 * lowp <= len(act_dtypes):
        return plan
    return tuple("lowp_gemm_efficiency" if p == "gemm_efficiency" else p for p in plan)


def affordable(plan: Sequence[str], n_rows: int) -> tuple[str, ...]:
    """The first factors of ``plan`` that ``n_rows`` rows can support (one per
    ``MIN_ROWS_PER_FACTOR`` rows)."""
    return tuple(plan[: n_rows // MIN_ROWS_PER_FACTOR])


GEMM_PAIRS: Final = (
    ("gemm_efficiency", "lowp_gemm_efficiency"),
    ("train_gemm_efficiency", "train_lowp_gemm_efficiency"),
)
"""(16-bit, low-precision) GEMM factors of the same workload: a row exercises one of them"""


def chip_affordable(
    plan: Sequence[str],
    n_rows: int,
    n_sources: int,
    act_dtypes: Sequence[str] = (),
) -> tuple[str, ...]:
    """The factors a chip fits on its own rows: none from fewer than ``MIN_CHIP_SOURCES``
    sources, else the first ``CHIP_FACTORS`` of ``plan`` that its rows afford.

    Where the family's plan fits both GEMM factors of a pair (``GEMM_PAIRS``: the 16-bit and
    the low-precision fraction) and the chip's first factor is one of them, the chip fits
    instead each of the two that at least ``MIN_ROWS_PER_FACTOR`` of its rows run
    (``act_dtypes``, one per row): a factor only moves the rows computing in its format, so
    fitting the 16-bit fraction on a chip whose rows are mostly INT8 (TPU v6e: five MLPerf
    INT8 GPT-3 rows beside three BF16 MaxText rows) leaves the INT8 rows where they were and
    pulls the 16-bit one away from what the BF16 rows alone say."""
    if n_sources < MIN_CHIP_SOURCES:
        return ()
    first = tuple(plan[:CHIP_FACTORS])
    for hi, lo in GEMM_PAIRS:
        if hi in plan and lo in plan and first and first[0] in (hi, lo) and act_dtypes:
            n_lo = sum(d in LOWP_FORMATS for d in act_dtypes)
            runs = {hi: len(act_dtypes) - n_lo, lo: n_lo}
            own = tuple(f for f in (hi, lo) if runs[f] >= MIN_ROWS_PER_FACTOR)
            return affordable(own, n_rows)
    return affordable(first, n_rows)


def at_bound(name: str, value: float) -> str | None:
    """``'lower'``/``'upper'`` when a fitted value sits at its physical bound, else None."""
    lo, hi = BOUNDS[name]
    tol = AT_BOUND * (hi - lo)
    if value <= lo + tol:
        return "lower"
    if value >= hi - tol:
        return "upper"
    return None

"""MaxText's MoE token dispatch on TPU (MaxText issue #1256) against this model's op costs: the
derivation of training/stack.py ``XLA_TPU_MOE_DISPATCH_EFFICIENCY``.

github.com/AI-Hypercomputer/maxtext/issues/1256 ("MFU drops significantly when using megablox
with more experts", 2025-02-09) trains Mixtral-8x7B without attention on a v5p-64 (32 chips):

* 8 experts, top-2, expert width 14336: 50.4% MFU;
* 56 experts, top-14, expert width 2048 (same total and active parameters): 28% (25-28% "with
  different tile_sizes, TPU sizes and batch sizes").

Both variants do the same GEMM FLOPs; the second routes 7x the token copies. The model's step
time of each variant is linear in 1 / efficiency of the permute and unpermute,
``T = A + B / eff`` (A, B from the model at two efficiencies), and the script solves
``T(56) / T(8) = 50.4 / 28`` for eff. Setup, stated (the issue gives only the chip, slice and
the MoE shapes): MaxText ``configs/base.yml`` defaults, per-device batch 12 (also 4 and 8
shown), sequence 2048, full remat, FSDP over the 32 chips, bf16; "without attention" as one
attention head of 128. Usage::

    .venv/bin/python scripts/maxtext_moe_dispatch.py
"""

from __future__ import annotations

from siliconomics import resolve
from siliconomics.catalog.schema import MoESpec
from siliconomics.training import stack
from siliconomics.training.estimate import estimate_training
from siliconomics.training.plan import TrainPlan

CHIPS = 32
SEQ = 2048
MFU_8, MFU_56 = 0.504, 0.28
MFU_56_LOW = 0.25


def _variants() -> tuple[object, object]:
    base = resolve.model("mixtral-8x7b")
    no_attn = {"n_heads": 1, "n_kv_heads": 1, "head_dim": 128}
    m8 = base.model_copy(update={"id": "mixtral-8x7b-noattn", **no_attn})
    moe56 = MoESpec(n_experts=56, experts_per_token=14, moe_d_ff=2048)
    m56 = base.model_copy(update={"id": "mixtral-56x14-noattn", "d_ff": 2048, "moe": moe56,
                                  **no_attn})  # fmt: skip
    return m8, m56


def step_time(model: object, mb: int, eff: float) -> float:
    """Step seconds of ``model`` on 32 v5p, FSDP, at dispatch efficiency ``eff``."""
    old = stack.XLA_TPU_MOE_DISPATCH_EFFICIENCY
    stack.XLA_TPU_MOE_DISPATCH_EFFICIENCY = eff
    try:
        est = estimate_training(
            model,  # type: ignore[arg-type]
            resolve.device("tpu-v5p"),
            TrainPlan(dp=CHIPS, zero=3, micro_batch=mb, recompute="full"),
            seq_len=SEQ,
            global_batch_seqs=CHIPS * mb,
            check_memory=False,
        )
    finally:
        stack.XLA_TPU_MOE_DISPATCH_EFFICIENCY = old
    return est.step_time_s


def derive(mb: int = 12, mfu_56: float = MFU_56) -> tuple[float, float]:
    """(dispatch efficiency reproducing the measured ratio, the op model's own ratio)."""
    m8, m56 = _variants()
    a8, a56 = step_time(m8, mb, 1.0), step_time(m56, mb, 1.0)
    b8, b56 = step_time(m8, mb, 0.5) - a8, step_time(m56, mb, 0.5) - a56
    A8, A56 = a8 - b8, a56 - b56  # T = A + B / eff
    r = MFU_8 / mfu_56
    inv = (r * A8 - A56) / (b56 - r * b8)
    return 1.0 / inv, a56 / a8


def main() -> None:
    print("per-device batch  op-model T56/T8  efficiency (28% MFU)  (25% MFU)")
    for mb in (4, 8, 12):
        eff, ratio = derive(mb)
        low, _ = derive(mb, MFU_56_LOW)
        print(f"{mb:16d}  {ratio:15.3f}  {eff:20.3f}  {low:9.3f}")
    eff, _ = derive()
    print(f"derived (batch 12, 28%): {eff:.3f}; packaged: {stack.XLA_TPU_MOE_DISPATCH_EFFICIENCY}")


if __name__ == "__main__":
    main()

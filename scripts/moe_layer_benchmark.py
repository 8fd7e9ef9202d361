"""Megatron-Core's MoE layer on one H100 (SonicMoE, arXiv 2512.14080, Figure 14) against this
model's op costs for the same layers: the derivation of training/stack.py
``MEGATRON_MOE_LAYER_EFFICIENCY``.

The ``Megatron`` bars of Figure 14 ("Forward & backward TFLOPS for different MoE kernels on
H100"; the same figure is ``assets/tput.png`` of github.com/Dao-AILab/sonic-moe) were
digitised from that PNG (2569 x 1294 px): bar tops of the Megatron colour (#9467bd), TFLOPS =
(zero line - top) / 0.4675 px, zero line at y = 359.5 (upper panels) and 822 (lower panels),
the 200/400/600 grid lines 93.5 px apart; about +-2 TFLOPS. TFLOPS count the expert GEMMs,
6 T K d n forward and twice that backward. The op model prices the same layer (router, permute,
expert GEMMs, SwiGLU, unpermute; no expert parallelism) on the packaged Hopper training
profile, device time only (host loop off, Megatron factor off), and the script prints op-model
time / Megatron time per configuration and their median. Usage::

    .venv/bin/python scripts/moe_layer_benchmark.py
"""

from __future__ import annotations

import statistics
from dataclasses import replace

import numpy as np

from siliconomics import resolve
from siliconomics.catalog.schema import ModelSpec, MoESpec
from siliconomics.training import step as st
from siliconomics.training.estimate import train_device
from siliconomics.training.plan import TrainPlan, grid_of

PX_PER_TFLOPS = 0.4675
# (label, tokens T, d, expert width n, experts E, top-k K, forward bar top y, backward bar top
# y, zero line y) as digitised
FIG14 = (
    ("1.4B", 40960, 768, 256, 128, 8, 311, 295, 359.5),
    ("1.4B", 40960, 768, 512, 64, 4, 293, 285, 359.5),
    ("1.4B", 40960, 768, 1024, 32, 2, 278, 271, 359.5),
    ("7B", 24576, 1536, 256, 128, 8, 304, 299, 359.5),
    ("7B", 24576, 1536, 512, 64, 4, 282, 276, 359.5),
    ("7B", 24576, 1536, 1024, 32, 2, 263, 260, 359.5),
    ("30B", 32768, 4096, 256, 256, 16, 753, 761, 822.0),
    ("30B", 32768, 4096, 512, 128, 8, 718, 722, 822.0),
    ("30B", 32768, 4096, 1024, 64, 4, 687, 699, 822.0),
    ("120B", 32768, 4096, 512, 256, 16, 718, 728, 822.0),
    ("120B", 32768, 4096, 1024, 128, 8, 690, 695, 822.0),
    ("120B", 32768, 4096, 2048, 64, 4, 664, 676, 822.0),
)


def ratios() -> list[tuple[str, int, int, int, float, float, float, float, float]]:
    """Per configuration: (label, n, E, K, Megatron fwd/bwd TFLOPS, op-model fwd/bwd TFLOPS,
    op-model time / Megatron time over forward + backward)."""
    base = resolve.device("h100-sxm")
    eff = base.eff.model_copy(update={"train_host_op_s": 0.0, "stack": "pytorch"})
    dev = train_device(replace(base, eff=eff))
    out = []
    for lab, T, d, n, E, K, yf, yb, y0 in FIG14:
        mf, mb = (y0 - yf) / PX_PER_TFLOPS, (y0 - yb) / PX_PER_TFLOPS
        heads = max(d // 128, 1)
        m = ModelSpec(
            id="fig14", family="fig14", n_layers=1, d_model=d, n_heads=heads,
            n_kv_heads=heads, head_dim=128, d_ff=n, vocab_size=32000, source="SonicMoE Fig. 14",
            moe=MoESpec(n_experts=E, experts_per_token=K, moe_d_ff=n),
        )  # fmt: skip
        ly = st._Layer(m, dev, grid_of([TrainPlan(dp=1, micro_batch=1, dtype="bf16")]), T)
        st._moe_layer(ly, m, 1.0, frozen=False)
        ly.settle()
        f, b = float(np.ravel(ly.fwd)[0]), float(np.ravel(ly.bwd)[0])
        flops = 6.0 * T * K * d * n
        t_meg = flops / (mf * 1e12) + 2.0 * flops / (mb * 1e12)
        out.append((lab, n, E, K, mf, mb, flops / f / 1e12, 2 * flops / b / 1e12, (f + b) / t_meg))
    return out


def main() -> None:
    rows = ratios()
    print(f"{'layer':6} {'n':>5} {'E':>4} {'K':>3}  Megatron fwd/bwd TFLOPS  op model  time ratio")
    for lab, n, E, K, mf, mb, pf, pb, r in rows:
        print(
            f"{lab:6} {n:5d} {E:4d} {K:3d}  {mf:8.0f} {mb:6.0f}        {pf:6.0f} {pb:5.0f}  {r:8.3f}"
        )
    print(f"median op-model / Megatron time: {statistics.median(r[-1] for r in rows):.3f}")


if __name__ == "__main__":
    main()

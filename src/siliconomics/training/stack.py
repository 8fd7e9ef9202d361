"""How Megatron-Core (NeMo / Megatron-Bridge, the NVIDIA training stacks ``nemo`` and
``megatron``) runs an MoE layer's kernels, where it differs from the roofline op model of
:func:`.step._moe_layer` (router, permute, grouped expert GEMMs, activation, unpermute).

* **MoE layer efficiency.** A published kernel benchmark times Megatron-Core's whole MoE layer
  (router, token gather, expert GEMMs, SwiGLU, aggregation; one H100 SXM, BF16, no expert
  parallelism): SonicMoE, Guo, Mishra, Cheng, Stoica, Dao, arXiv 2512.14080 (2025-12-16),
  Figure 14, "Forward & backward TFLOPS for different MoE kernels on H100", the ``Megatron``
  bars, also ``assets/tput.png`` of github.com/Dao-AILab/sonic-moe. Twelve configurations:
  d = 768, 1536, 4096 with expert width n = 256-2048, 32-256 experts, top-2 to top-16,
  24k-41k tokens (1.5k-2.6k tokens per expert). Megatron-Core reaches 104-338 TFLOPS forward
  and 129-312 backward, 0.43-0.76 (median 0.54) of the time this op model gives the same
  layer at the packaged Hopper training profile with the host loop off
  (``scripts/moe_layer_benchmark.py`` digitises the bars and prints the ratios). That fraction,
  :data:`MEGATRON_MOE_LAYER_EFFICIENCY`, divides the device time of the MoE expert section
  of the Megatron stacks (before the host bound of :mod:`.host`). Assumptions, stated: the
  benchmark does not say which Megatron expert path it ran (TE ``GroupedLinear`` or the
  ``grouped_gemm`` library); it is BF16 on Hopper, and the same fraction is applied to FP8
  recipes and to Blackwell (no Megatron measurement there); the op model's own cost of the
  layer may change, and the script re-derives the figure. Confidence: low-medium.
* **Clamped gated activation** (gpt-oss ``swiglu_limit``): Megatron-Core
  ``weighted_bias_quick_geglu_impl`` (megatron/core/fusions/fused_bias_geglu.py @ core_v0.15.0,
  the Megatron-Core of NeMo 25.11) clamps the gate half and the linear half (``x.clamp``: read
  + write each half, 2 passes of the whole up-projection output) and concatenates them
  again (``torch.cat``: read + write, 2 passes) outside the compiled GLU kernel (Megatron-LM
  issue #1739: "partially fused"). Backward: each clamp's gradient reads the incoming gradient
  and the saved input and writes the masked gradient (3 passes of the whole); the
  concatenation's gradient is a view.

How XLA on TPU (MaxText, the TPU training stack) runs an MoE layer, where it differs:

* **Token dispatch efficiency.** MaxText's dropless MoE (megablox grouped matmul) sorts the
  routed token copies by expert, gathers them before the expert GEMMs and scatters them back
  after (``moe_permute`` / ``moe_unpermute`` of the op model: traffic proportional to tokens x
  top-k x d_model). A published measurement isolates that cost: MaxText issue #1256
  (github.com/AI-Hypercomputer/maxtext/issues/1256, 2025-02-09) trains Mixtral-8x7B *without
  attention* on a v5p-64 (32 chips) at 50.4% MFU with 8 experts, top-2, expert width 14336,
  and at 28% (25-28% over tile sizes, slice sizes and batch sizes) with 56 experts, top-14,
  width 2048: the same total and active parameters and GEMM FLOPs, 7x the routed copies. The
  op model alone gives the two within 4% of each other. The fraction of the op model's speed
  at which the permute and unpermute run that reproduces the measured ratio,
  :data:`XLA_TPU_MOE_DISPATCH_EFFICIENCY`, divides their time (forward, backward and
  recomputation) on TPU training (``scripts/maxtext_moe_dispatch.py`` derives it: the two
  variants on 32 v5p with MaxText's defaults of ``configs/base.yml``, per-device batch 12,
  sequence 2048, full remat, FSDP over the slice; the issue does not state its batch, and the
  script shows the figure moves little with it). Assumptions, stated: attention reduced to one
  head stands for "without attention"; the efficiency is taken as a property of the XLA
  dispatch (sort, gather, scatter) on every TPU generation, scaling with each chip's HBM
  bandwidth; the MoE GEMMs and activation keep the op model; a cost proportional to the
  number of experts would scale the same way in the pair, and the attribution to the
  dispatch rests on the issue's "no batch size helped" (a per-token cost) and on later work
  on this path (MaxText PR #4913: the permute materialises top-k copies before the sorted
  gather; PR #3814, 2026-05: ragged sort kernels, so newer builds are likely faster).
  Confidence: low-medium (one pair of runs, one chip).

Other stacks (Neuron, Gaudi, plain PyTorch, MaxText on GPU) keep the op model: XLA fuses the
clamp, and no benchmark of their MoE layers against it is at hand.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..ops.device import Device

F = NDArray[np.float64]

MEGATRON_STACKS = ("nemo", "megatron")
"""training stacks built on Megatron-Core (catalog/data/stacks.toml)"""
MEGATRON_DEFAULT_FAMILIES = ("nvidia-",)
"""chip families whose default training stack is Megatron-Core's (``nemo``, the
``default_training`` of every NVIDIA family in catalog/data/stacks.toml); a profile fitted for
another stack carries that stack's id (:func:`..catalog.stacks.resolve_profile`)"""
OTHER_TRAINING_STACKS = ("maxtext", "pytorch")
"""training stacks of those families that are not Megatron-Core (stacks.toml)"""

MEGATRON_MOE_LAYER_EFFICIENCY = 0.54
"""op-model time / measured time of Megatron-Core's MoE layer, median of the 12
configurations of SonicMoE Figure 14 (module docstring; ``scripts/moe_layer_benchmark.py``
prints 0.538 at the packaged profile of 2026-11-30)"""

CLAMP_FWD_PASSES = 4.0
"""forward HBM passes over the up-projection output for a clamped GLU (module docstring)"""
CLAMP_BWD_PASSES = 3.0
"""backward HBM passes over the up-projection output for a clamped GLU (module docstring)"""


def megatron_stack(dev: Device) -> bool:
    """Whether ``dev`` trains with Megatron-Core: its profile names a Megatron stack, or it is
    the default profile of a family whose default training stack is Megatron-Core's (a
    stack without a fitted profile of its own inherits the default's factors, and this)."""
    s = dev.eff.stack
    if s in MEGATRON_STACKS:
        return True
    return dev.chip.family.startswith(MEGATRON_DEFAULT_FAMILIES) and s not in OTHER_TRAINING_STACKS


def moe_layer_efficiency(dev: Device) -> float:
    """Fraction of the op model's MoE-layer speed the stack reaches (1 off Megatron)."""
    return MEGATRON_MOE_LAYER_EFFICIENCY if megatron_stack(dev) else 1.0


XLA_TPU_MOE_DISPATCH_EFFICIENCY = 0.037
"""op-model time / measured time of the MoE token permute and unpermute under XLA on TPU,
derived from MaxText issue #1256's pair of runs (module docstring;
``scripts/maxtext_moe_dispatch.py`` prints the derivation)"""
XLA_TPU_FAMILIES = ("google-tpu",)
"""chip families whose training stacks compile with XLA (MaxText, the only TPU training stack
of catalog/data/stacks.toml)"""


def moe_dispatch_efficiency(dev: Device) -> float:
    """Fraction of the op model's speed the MoE token permute/unpermute reach on ``dev``'s
    training stack (1 off XLA-on-TPU)."""
    if dev.chip.family in XLA_TPU_FAMILIES:
        return XLA_TPU_MOE_DISPATCH_EFFICIENCY
    return 1.0


def clamp_passes(nbytes: ArrayLike) -> tuple[F, F]:
    """(forward, backward) bytes Megatron-Core moves for a clamped gated activation whose
    up-projection output is ``nbytes`` (module docstring)."""
    b = np.asarray(nbytes, dtype=np.float64)
    return CLAMP_FWD_PASSES * b, CLAMP_BWD_PASSES * b

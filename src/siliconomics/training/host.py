"""Host (CPU) time of the eager training loop where the device cannot hide it: the per-expert
loop of a dropless MoE layer.

PyTorch training stacks on GPUs (Megatron-Core / NeMo with Transformer Engine, torchtitan,
Primus) launch every op from Python: an op costs the host a fixed time (Python, autograd
bookkeeping, the ATen dispatcher, ``cudaLaunchKernel``) whatever its size. For a dense layer
the host runs ahead of the device and that time is hidden. A dropless MoE layer breaks this
twice:

* **a device-to-host sync per MoE layer.** Transformer Engine's ``GroupedLinear`` takes the
  per-expert row counts ``m_splits`` as host integers (``List[int]``), and Megatron-Core's
  ``alltoall`` dispatcher needs the per-rank split sizes on the host for the all-to-all, so
  the host waits for the router's counts every MoE layer and starts the expert section with an
  empty queue: it cannot have run ahead.
* **a host loop over the local experts.** ``GroupedLinear`` keeps one weight parameter per
  expert and works through them one by one (TransformerEngine
  ``transformer_engine/pytorch/module/grouped_linear.py``, read at commit 0069563): per expert
  and linear layer, forward: the input slice (``torch.split``), the low-precision weight cast
  (``get_weight_workspace``; FP8 recipes only) and the GEMM launch; backward: the gradient
  slice, the dgrad and wgrad GEMM launches, the wgrad placeholder
  (``handle_custom_ddp_from_mcore``: one ``torch.empty``) and Megatron-Core's per-parameter
  gradient-ready hook (``DistributedDataParallel._make_backward_post_hook``). Two linear
  layers (fc1, fc2) per expert: ``OPS_FWD`` = 2 x 2 (+2 for the FP8 weight casts) and
  ``OPS_BWD`` = 2 x 5 host ops per expert.

The expert section of one MoE layer then lasts ``max(device time, E_local x ops x t_op)``
per pass, ``E_local = E/ep`` (the loop runs over every local expert, touched or not). ``t_op``
is the host time of one eager op, ``EAGER_HOST_OP_S`` unless the family's profile states
``train_host_op_s``. Compiled stacks (XLA on TPU, Neuron and Gaudi graph mode) have no
per-op host time: their families are not in ``EAGER_FAMILIES``.

**The host CPU.** ``t_op`` (and a profile's ``train_host_op_s``) is the time on an x86 host
(DGX H100/B200: Intel Xeon). Grace-hosted GPUs (GH200, GB200/GB300 NVL72: one Arm Neoverse V2
Grace CPU per one or two GPUs) issue the same eager ops ``GRACE_HOST_FACTOR`` times slower:
the forward of one ``torch.nn.Linear`` costs the host 37.08 us on GB200, 33.17 us on GH200 and
13.48 us on DGX H100 (Xeon Platinum 8480C), the GPU time being the same or shorter
(NVIDIA/TransformerEngine issue #2053, "High CPU overhead on Grace systems", 2025-08-11;
Transformer Engine's ``Linear`` 99.66 us on GB200, 90.53 us on GH200).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..ops.device import Device

F = NDArray[np.float64]

EAGER_HOST_OP_S = 13.48e-6
"""host time of one eager PyTorch op issued from Python on an x86 host, s: Python call,
autograd node, ATen dispatch and kernel launch. Measured: the forward of one
``torch.nn.Linear`` (one cuBLAS GEMM launch with its autograd bookkeeping) costs the host
13.48 us on a DGX H100 (Xeon Platinum 8480C), NVIDIA/TransformerEngine issue #2053
(2025-08-11); within the 5-25 us per op of "From PyTorch op to kernel launch" (jiahuanglin.xyz
gpu_kernel_serving lesson 18, retrieved 2026-11-30); the kernel-less dispatch alone is
2.3-3.4 us (pytorch/pytorch PR #32194). Confidence: medium (one op, one host); a per-family
``train_host_op_s`` overrides it."""

GRACE_HOST_FACTOR = 37.08 / 13.48
"""host time of one eager op on a Grace CPU over the same op on a DGX H100's Xeon Platinum
8480C: ``torch.nn.Linear`` forward, BF16, 8192 x 2048 (NVIDIA/TransformerEngine issue #2053,
2025-08-11: 37.08 us on GB200 vs 13.48 us on H100 DGX), x2.75 (confidence: medium; one
benchmark, one op)"""

GRACE_HOSTED = ("gh200", "gh200-144gb", "gb200", "gb300")
"""chips whose host is a Grace CPU (Grace Hopper / Grace Blackwell superchips; the chip files'
notes). The chip schema has no host-CPU field; this list stands for it."""

EAGER_FAMILIES = ("nvidia-", "amd-")
"""chip families whose training stacks launch eagerly from Python (PyTorch-based)"""

OPS_FWD = 4
"""host ops per local expert in the forward of one MoE layer (module docstring; BF16)"""
OPS_FWD_LOWP = 2
"""extra forward host ops per local expert under a low-precision recipe (weight casts)"""
OPS_BWD = 10
"""host ops per local expert in the backward of one MoE layer (module docstring)"""


def host_op_s(dev: Device) -> float:
    """Host time of one eager op on this device's training stack (0 for compiled stacks):
    the x86 figure, times ``GRACE_HOST_FACTOR`` on a Grace-hosted chip."""
    if not dev.chip.family.startswith(EAGER_FAMILIES):
        return 0.0
    own = dev.eff.train_host_op_s
    t = EAGER_HOST_OP_S if own is None else float(own)
    return t * GRACE_HOST_FACTOR if dev.chip.id in GRACE_HOSTED else t


def expert_loop_host_time(dev: Device, n_local: ArrayLike, *, lowp: bool) -> tuple[F, F]:
    """(forward, backward) host seconds of one MoE layer's per-expert loop on one rank holding
    ``n_local`` experts, one micro-batch."""
    t = host_op_s(dev)
    n = np.asarray(n_local, dtype=np.float64)
    fwd = n * (OPS_FWD + (OPS_FWD_LOWP if lowp else 0)) * t
    return fwd, n * OPS_BWD * t

"""Collective communication time on a chip's scale-up topology (alpha-beta model).

time = steps * alpha + traffic_per_chip / bandwidth, with the algorithm fixed by topology:

* ``switch`` (NVSwitch): bandwidth term of the ring, 2(n-1)/n * S at the full per-direction
  link rate; one latency per collective (NCCL's latency is flat in n on NVSwitch, measured).
* ``mesh`` (MI300X Infinity Fabric, Gaudi RoCE): direct reduce-scatter + all-gather over the
  n-1 point-to-point links; only (n-1)/links of the chip's links serve a group of n, so small
  groups see a fraction of the aggregate bandwidth. 2 latency steps.
* ``ring``: bidirectional ring; both directions carry half the data.
* ``torus2d`` / ``torus3d``: dimension-wise rings; a group inside one dimension uses the 2 links
  of that ring, a group spanning d dimensions uses 2d links, with 2 * sum(side_i - 1) latency
  steps.
* ``pcie``: through the host's PCIe switches at the chip's PCIe rate, for groups of up to
  :data:`PCIE_HOST_CHIPS` chips in one server (pairs joined by an NVLink bridge use the bridge);
  larger groups leave the host through the NICs.

Reference: Thakur, Rabenseifner, Gropp, "Optimization of Collective Communication Operations in
MPICH" (IJHPCA 2005) for the ring/reduce-scatter cost; Patarasuk & Yuan (2009) for the
bandwidth-optimal ring all-reduce 2(n-1)/n * S.

All-reduce algorithms (:func:`all_reduce`, the one inference uses; docs/MODEL.md "Collectives"):
on switch and full-mesh fabrics the serving stack picks, per message size, the fastest of the
library's ``ring`` / ``nvls`` and its own ``one_shot`` / ``two_shot`` kernels (within the size
limits of vLLM's custom all-reduce), optionally fused with the residual add + RMSNorm that
follows. Rings and tori (TPU ICI, NeuronLink) run dimension-wise rings;
groups that leave the scale-up domain run the faster of ``ring`` and ``tree`` over the NICs,
with NCCL's latency model and its LL / Simple protocols (:func:`_across_domains`).
Every result carries the algorithm it used, per element.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..ops.device import Device
from ..ops.roofline import OpCost, comm_op

F = NDArray[np.float64]

PCIE_HOST_CHIPS: Final = 8
"""Chips of a PCIe-only part (L4, L40S, H100 PCIe) that share one server and reach each other
over PCIe peer-to-peer, as NCCL does inside a node (8-GPU PCIe servers, e.g. the L40S TP8
runs of TensorRT-LLM's perf-overview on one node)."""


def collective_domain(dev: Device) -> int:
    """Largest group that communicates without the NICs: the scale-up domain, or for PCIe
    parts the chips of one server."""
    ic = dev.chip.interconnect
    if ic.topology == "pcie":
        return max(ic.scale_up_domain, PCIE_HOST_CHIPS)
    return ic.scale_up_domain


def _pcie_dir(dev: Device) -> float:
    """Per-direction PCIe rate of the chip: its scale-up figure when that is the PCIe link
    itself (no bridge), else the generation default."""
    ic = dev.chip.interconnect
    if ic.scale_up_domain <= 1 and ic.scale_up_bytes_per_s is not None:
        return dev.scale_up_bytes_per_s_dir
    return dev.pcie_bytes_per_s_dir


def _links_used(dev: Device, n: int) -> tuple[float, float]:
    """(bandwidth per direction available to a group of n chips, latency steps factor)."""
    ic = dev.chip.interconnect
    bw = dev.scale_up_bytes_per_s_dir * dev.eff.collective_efficiency
    topo = ic.topology
    if n > collective_domain(dev):
        # Leaves the scale-up domain: the slowest hop is the NIC.
        return dev.scale_out_bytes_per_s_dir * dev.eff.collective_efficiency, 2.0 * (n - 1)
    if topo == "mesh":
        links = float(ic.links or max(ic.scale_up_domain - 1, 1))
        return bw * min(n - 1, links) / links, 2.0
    if topo in ("torus2d", "torus3d"):
        # Dimension-wise rings (reduce-scatter along each spanned dimension, then all-gather
        # back): 2 * sum(side_i - 1) latency steps instead of 2(n-1) for one flat ring.
        dims = 2 if topo == "torus2d" else 3
        side = max(round(ic.scale_up_domain ** (1.0 / dims)), 2)
        spanned = min(max(math.ceil(math.log(n) / math.log(side) - 1e-9), 1), dims)
        sizes = [side] * (spanned - 1) + [max(math.ceil(n / side ** (spanned - 1)), 2)]
        return bw * spanned / dims, 2.0 * sum(s_ - 1 for s_ in sizes)
    if topo == "pcie":
        if n <= ic.scale_up_domain:  # NVLink-bridged pair
            return bw, 2.0 * (n - 1)
        return _pcie_dir(dev) * dev.eff.collective_efficiency, 2.0 * (n - 1)
    if topo == "switch":
        # NCCL on NVSwitch picks LL/tree/NVLS protocols whose small-message latency is flat in
        # the group size: measured 20-40 µs for n = 2, 4, 8 on DGX A100/H100 (vidur NCCL data,
        # shared/data/measured-ops/network), so one alpha per collective, not 2(n-1).
        return bw, 1.0
    return bw, 2.0 * (n - 1)  # ring


def all_reduce_time(
    dev: Device, nbytes: ArrayLike, n: int, *, algorithms: tuple[str, ...] | None = None
) -> F:
    """Time to all-reduce ``nbytes`` (per chip buffer) over ``n`` chips (see :func:`all_reduce`)."""
    return all_reduce(dev, nbytes, n, algorithms=algorithms).time


def send_recv_time(dev: Device, nbytes: ArrayLike, *, crosses_domain: bool = False) -> F:
    """Point-to-point transfer between neighbouring pipeline stages."""
    b = np.asarray(nbytes, dtype=np.float64)
    if crosses_domain:
        bw = dev.scale_out_bytes_per_s_dir
    else:
        ic = dev.chip.interconnect
        links = float(ic.links or 1) if ic.topology == "mesh" else 1.0
        bw = dev.scale_up_bytes_per_s_dir / links
    return dev.eff.collective_latency_s + b / (bw * dev.eff.collective_efficiency)


# ---- all-reduce algorithms --------------------------------------------------------------------

ALGORITHMS: Final = ("ring", "tree", "nvls", "one_shot", "two_shot")
"""Codes of :attr:`CollectiveCost.algorithm` index this tuple."""
LIBRARY: Final = ("ring", "tree", "nvls")
CUSTOM: Final = ("one_shot", "two_shot")

CUSTOM_MAX_BYTES: Final = 8 * 1024 * 1024
"""Largest buffer the custom all-reduce takes; larger ones go to the library (vLLM
``CustomAllreduce(max_size=8192 * 1024)``, vllm/distributed/device_communicators/
custom_all_reduce.py)."""


def one_shot_max_bytes(n: int) -> float:
    """Largest buffer reduced in one shot; above it, two shots (reduce-scatter + all-gather).
    vLLM csrc/custom_all_reduce.cuh (vllm-project/vllm@036bb685): 2 GPUs always one-shot,
    <= 4 GPUs below 512 KiB, <= 8 GPUs below 256 KiB. Beyond 8 (multi-node NVLink, TensorRT-LLM
    MNNVL) the same 2 MiB / n rule is extended: an inferred continuation."""
    if n <= 2:
        return math.inf
    if n <= 4:
        return 512 * 1024
    return 2 * 1024 * 1024 / n


@dataclass(frozen=True, kw_only=True)
class CollectiveCost:
    """Time of one collective per element of the message-size array, the algorithm that
    produced it (index into :data:`ALGORITHMS`) and whether the following residual add +
    RMSNorm ran fused inside it."""

    time: F
    algorithm: NDArray[np.int64]
    fused_norm: NDArray[np.bool_]

    def names(self) -> tuple[str, ...]:
        """Distinct algorithm names used, in :data:`ALGORITHMS` order."""
        used = set(np.unique(self.algorithm).tolist())
        return tuple(a for i, a in enumerate(ALGORITHMS) if i in used)

    def op(self, name: str, nbytes: ArrayLike) -> OpCost:
        """The collective as a comm op whose name says which algorithm(s) it used."""
        label = "|".join(self.names()) or "none"
        return comm_op(f"{name}[{label}]", nbytes, self.time)

    def fold_norm(self, norm: OpCost) -> OpCost:
        """``norm`` with its kernel overhead removed where it ran fused inside the all-reduce
        (its memory traffic stays: the fused kernel still reads the residual and writes the
        normalised output)."""
        over = np.where(self.fused_norm, 0.0, norm.t_overhead)
        return replace(norm, t_overhead=over + 0.0 * norm.t_overhead)


def _hop(dev: Device) -> float:
    h = dev.eff.collective_hop_latency_s
    return 0.0 if h is None else h


@dataclass(frozen=True, kw_only=True)
class AffineTime:
    """One all-reduce algorithm's time as a function of the buffer size ``b`` (bytes):
    ``alpha + coef * b / bw / slow``, available for ``b <= limit``. Written once here and
    evaluated by :func:`all_reduce` and by the lean step kernel (inference/kernel.py) alike."""

    name: str
    alpha: float
    coef: float
    bw: float
    slow: float = 1.0
    limit: float = math.inf

    def __call__(self, b: F) -> F:
        return self.alpha + self.coef * b / self.bw / self.slow


NVLS_MAX_SPEEDUP: Final = 480.0 / 370.0
"""Largest bus-bandwidth gain of NVLS (NVLink SHARP) all-reduce over the ring: on 8 x H100
NCCL's ring reaches ~370 GB/s bus bandwidth and NVLS a peak of ~480 GB/s (algorithm bandwidth
~275 GB/s), per an NCCL maintainer in https://github.com/NVIDIA/nccl-tests/issues/212 (2024-05).
The traffic count alone, S(n+1)/n against the ring's 2S(n-1)/n, would credit 1.56x at n = 8."""


def nvls_slowdown(n: int) -> float:
    """Factor on NVLS's bandwidth so that its gain over the ring, 2(n-1)/(n+1) by traffic, is
    at most :data:`NVLS_MAX_SPEEDUP` (1 where the traffic count is below it: n <= 5). Measured
    at n = 8 on H100; applied to every group size and NVSwitch generation (inferred)."""
    gain = 2.0 * (n - 1.0) / (n + 1.0)
    return min(1.0, NVLS_MAX_SPEEDUP / gain)


def _in_domain_candidates(dev: Device, n: int, algorithms: tuple[str, ...]) -> list[AffineTime]:
    """Every algorithm available inside one switch/mesh domain (``n`` > 1)."""
    bw, _ = _links_used(dev, n)
    a_lib, h = dev.eff.collective_latency_s, _hop(dev)
    ring = 2.0 * (n - 1) / n  # bytes each chip sends per buffer byte (reduce-scatter + gather)
    out: list[AffineTime] = []
    if "ring" in algorithms:
        out.append(AffineTime(name="ring", alpha=a_lib + 2.0 * (n - 1) * h, coef=ring, bw=bw))
    if "nvls" in algorithms and dev.chip.interconnect.switch_reduction and n > 2:
        # multimem.ld_reduce of each 1/n shard + multimem.st broadcast: S(n+1)/n per direction,
        # its speed-up over the ring capped at what NCCL measures (:func:`nvls_slowdown`).
        out.append(
            AffineTime(
                name="nvls",
                alpha=a_lib + 2.0 * h,
                coef=(n + 1.0) / n,
                bw=bw,
                slow=nvls_slowdown(n),
            )
        )
    a_c = dev.eff.custom_allreduce_latency_s
    if a_c is not None:
        e_c = dev.eff.custom_allreduce_efficiency
        bw_c = bw if e_c is None else bw * e_c / dev.eff.collective_efficiency
        # The custom kernels take buffers only up to their size limits (:func:`_limit`).
        if "one_shot" in algorithms:  # read every peer's full buffer
            out.append(AffineTime(name="one_shot", alpha=a_c, coef=n - 1.0, bw=bw_c))
        if "two_shot" in algorithms:  # direct reduce-scatter + all-gather
            out.append(AffineTime(name="two_shot", alpha=a_c + h, coef=ring, bw=bw_c))
    return [replace(c, limit=_limit(c.name, n)) for c in out]


def _limit(name: str, n: int) -> float:
    """Largest buffer an algorithm takes: the custom kernels' limits (one-shot up to
    :func:`one_shot_max_bytes`, both up to :data:`CUSTOM_MAX_BYTES`); the library's none."""
    if name == "one_shot":
        return min(one_shot_max_bytes(n), CUSTOM_MAX_BYTES)
    if name == "two_shot":
        return float(CUSTOM_MAX_BYTES)
    return math.inf


def _select(cands: list[AffineTime], b: F) -> tuple[F, NDArray[np.int64]]:
    """The fastest available algorithm per message size, as NCCL's tuner (minimum predicted
    time) and TensorRT-LLM's AUTO strategy (a per-size table of the fastest measured
    strategy) choose; an algorithm is available only within its size limit."""
    keys = [c for k in ALGORITHMS for c in cands if c.name == k]
    stack = np.stack([np.where(b <= c.limit, c(b), np.inf) + 0.0 * b for c in keys])
    pick = np.argmin(stack, axis=0)
    t = np.take_along_axis(stack, pick[None], axis=0)[0]
    code = np.asarray([ALGORITHMS.index(c.name) for c in keys])[pick]
    return t, np.asarray(code, dtype=np.int64)


# NCCL's latency model across nodes (``ncclTopoTuneModel``, NVIDIA/nccl src/graph/tuning.cc
# @01afd20a): per-step latencies in seconds by link and protocol, and the bandwidth each
# protocol reaches. LL sends 8-byte flag+data words (1/4 of the ring's bandwidth, 1/3.8 of the
# tree's) with no handshake; Simple moves whole chunks at full bandwidth, each network step
# waiting on the proxy handshake.
NET_LL_TREE_S: Final = 5.0e-6
"""``hwLat[NET][Tree][LL]``: one network hop of the LL tree."""
NET_LL_RING_S: Final = 2.7e-6
"""``hwLat[NET][Ring][LL]``: one network step of the LL ring."""
LL_MULTINODE_INTRA: Final = 1.8
"""NCCL multiplies the in-node LL hop latency by 1.8 when the communicator spans nodes."""
LL_RING_BW: Final = 1.0 / 4.0
LL_TREE_BW: Final = 0.9 / 3.8
"""LL's share of the ring's bus bandwidth (ring 1/4; tree 0.9 x 1/3.8)."""
INTRA_SIMPLE_S: Final = 3.4e-6
"""``hwLat[NVLINK][Ring][Simple]``: one in-domain step of the Simple ring."""
NET_SIMPLE_STEP_S: Final = 210e-6
"""One network step of the Simple-protocol ring (full bandwidth). Fitted, with the NCCL
constants above fixed, to the all-reduces of 16 A100s on two DGX A100 nodes (8 per node, HDR
InfiniBand; 994 sizes from 2 KiB to 256 MiB, ``shared/data/measured-ops/network/a100_dgx/
all_reduce.csv``, microsoft/vidur): median |error| by size 9% (< 100 KB), 14% (0.1-1 MB),
8% (1-4 MB), 18% (4-10 MB), 39% (> 10 MB, the NIC bandwidth), against 290%, 33%, 23%, 25% and
40% with the in-domain library latency charged per step as before. It stands for the chunk
pipeline's fill across the network, not a wire latency; NCCL's own constant for a Simple
network step is 9.6-14 µs plus a x1.9 plateau factor. The only cross-node measurement in
hand, so applied to every chip's scale-out network (inferred)."""


def _across_domains(dev: Device, n: int, algorithms: tuple[str, ...]) -> list[AffineTime]:
    """NCCL inter-node all-reduce (``ncclTopoTuneModel``, NVIDIA/nccl src/graph/tuning.cc): an
    LL double binary tree (``2 (n_in - 1)`` in-domain hops and ``2 ceil(log2 d)`` network hops,
    ``d`` domains spanned), an LL ring and a Simple ring (``2(n-1)`` steps of which
    ``2(d-1)`` cross the network), each on top of the library's in-domain latency
    ``collective_latency_s``; the cheapest wins per message size, as NCCL's tuner picks. LL is
    latency-cheap at a quarter of the bandwidth; Simple has the NIC's full bandwidth and a
    long start (:data:`NET_SIMPLE_STEP_S`)."""
    bw, _ = _links_used(dev, n)
    a, h = dev.eff.collective_latency_s, _hop(dev) * LL_MULTINODE_INTRA
    n_in = max(min(collective_domain(dev), n), 1)
    d = math.ceil(n / n_in)
    ring = 2.0 * (n - 1) / n
    inter = 2.0 * (d - 1)
    intra = 2.0 * (n - 1) - inter
    out = []
    if "ring" in algorithms:
        ll = a + intra * h + inter * NET_LL_RING_S
        out.append(AffineTime(name="ring", alpha=ll, coef=ring, bw=bw, slow=LL_RING_BW))
        simple = a + intra * INTRA_SIMPLE_S + inter * NET_SIMPLE_STEP_S
        out.append(AffineTime(name="ring", alpha=simple, coef=ring, bw=bw))
    if "tree" in algorithms:
        alpha = a + 2.0 * ((n_in - 1) * h + math.ceil(math.log2(d)) * NET_LL_TREE_S)
        out.append(AffineTime(name="tree", alpha=alpha, coef=ring, bw=bw, slow=LL_TREE_BW))
    return out


def all_reduce_candidates(
    dev: Device, n: int, algorithms: tuple[str, ...] | None = None
) -> list[AffineTime]:
    """The all-reduce algorithms the stack chooses from for a group of ``n`` > 1 chips."""
    allowed = ALGORITHMS if algorithms is None else algorithms
    ic = dev.chip.interconnect
    if n > collective_domain(dev):
        cands = _across_domains(dev, n, allowed)
    elif ic.topology in ("switch", "mesh"):
        cands = _in_domain_candidates(dev, n, allowed)
    else:
        # Rings, tori, PCIe: dimension-wise bidirectional rings (XLA on TPU ICI, Neuron CC on
        # NeuronLink), one collective_latency_s per step.
        bw, steps = _links_used(dev, n)
        alpha = steps * dev.eff.collective_latency_s
        cands = [AffineTime(name="ring", alpha=alpha, coef=2.0 * (n - 1) / n, bw=bw)]
    if not cands:
        raise ValueError(f"no all-reduce algorithm among {allowed} on {dev.id}")
    return cands


def all_reduce(
    dev: Device, nbytes: ArrayLike, n: int, *, algorithms: tuple[str, ...] | None = None
) -> CollectiveCost:
    """All-reduce of ``nbytes`` (per chip buffer, array) over ``n`` chips, with the algorithm
    the stack would pick per message size. ``algorithms`` restricts the choice (e.g.
    ``("ring",)`` for a plain NCCL ring as measured in eager PyTorch)."""
    b = np.asarray(nbytes, dtype=np.float64)
    none = np.zeros(b.shape, dtype=bool)
    if n <= 1:
        return CollectiveCost(
            time=np.zeros_like(b), algorithm=np.zeros(b.shape, np.int64), fused_norm=none
        )
    t, code = _select(all_reduce_candidates(dev, n, algorithms), b)
    custom = (code == ALGORITHMS.index("one_shot")) | (code == ALGORITHMS.index("two_shot"))
    fused = custom & dev.eff.fused_allreduce_norm
    return CollectiveCost(time=t + 0.0 * b, algorithm=code, fused_norm=np.asarray(fused))

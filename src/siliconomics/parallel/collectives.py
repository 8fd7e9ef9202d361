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
* ``pcie``: through the host switch at PCIe bandwidth.

Reference: Thakur, Rabenseifner, Gropp, "Optimization of Collective Communication Operations in
MPICH" (IJHPCA 2005) for the ring/reduce-scatter cost; Patarasuk & Yuan (2009) for the
bandwidth-optimal ring all-reduce 2(n-1)/n * S.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..ops.device import Device

F = NDArray[np.float64]


def _links_used(dev: Device, n: int) -> tuple[float, float]:
    """(bandwidth per direction available to a group of n chips, latency steps factor)."""
    ic = dev.chip.interconnect
    bw = dev.scale_up_bytes_per_s_dir * dev.eff.collective_efficiency
    topo = ic.topology
    if n > ic.scale_up_domain:
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
        return dev.pcie_bytes_per_s_dir * dev.eff.collective_efficiency, 2.0 * (n - 1)
    if topo == "switch":
        # NCCL on NVSwitch picks LL/tree/NVLS protocols whose small-message latency is flat in
        # the group size: measured 20-40 µs for n = 2, 4, 8 on DGX A100/H100 (vidur NCCL data,
        # shared/data/measured-ops/network), so one alpha per collective, not 2(n-1).
        return bw, 1.0
    return bw, 2.0 * (n - 1)  # ring


def all_reduce_time(dev: Device, nbytes: ArrayLike, n: int) -> F:
    """Time to all-reduce ``nbytes`` (per chip buffer) over ``n`` chips."""
    b = np.asarray(nbytes, dtype=np.float64)
    if n <= 1:
        return np.zeros_like(b)
    bw, steps = _links_used(dev, n)
    return steps * dev.eff.collective_latency_s + 2.0 * (n - 1) / n * b / bw


def all_gather_time(dev: Device, nbytes: ArrayLike, n: int) -> F:
    """All-gather (or reduce-scatter) of a ``nbytes`` full buffer over ``n`` chips."""
    b = np.asarray(nbytes, dtype=np.float64)
    if n <= 1:
        return np.zeros_like(b)
    bw, steps = _links_used(dev, n)
    return steps / 2.0 * dev.eff.collective_latency_s + (n - 1) / n * b / bw


def all_to_all_time(dev: Device, nbytes: ArrayLike, n: int) -> F:
    """All-to-all where each chip sends ``nbytes`` in total, spread evenly over ``n`` chips."""
    b = np.asarray(nbytes, dtype=np.float64)
    if n <= 1:
        return np.zeros_like(b)
    bw, _ = _links_used(dev, n)
    ic = dev.chip.interconnect
    # On a switch or full mesh every pair talks directly; on rings/tori messages take
    # on average ~n/4 hops per dimension, costing bandwidth on the way.
    hops = 1.0
    if ic.topology in ("ring", "torus2d", "torus3d") and n <= ic.scale_up_domain:
        hops = max(n / 4.0, 1.0) if ic.topology == "ring" else max(math.sqrt(n) / 2.0, 1.0)
    return (n - 1) * dev.eff.collective_latency_s + (n - 1) / n * b * hops / bw


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

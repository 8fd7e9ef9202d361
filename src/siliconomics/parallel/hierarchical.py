"""Training collectives on a hierarchical topology: the scale-up domain, then the network.

Every function is vectorised over arrays of group sizes ``n`` and member strides ``stride``
(broadcast with ``nbytes``), so a plan search prices thousands of layouts in one call.

Placement. Ranks are laid out in Megatron-LM's order, tp innermost, then cp, dp (ep inside
dp x cp), pp outermost. A group of ``n`` chips whose members are ``stride`` ranks apart has
``n_in = clip(domain // stride, 1, n)`` members inside each scale-up domain (NVLink board,
TPU slice, Trn2 node) and spans ``n_out = n / n_in`` domains.

Algorithms (explicit; ``"auto"`` picks the last two):

* ``"ring"``: one flat ring at the slowest link of the group (the NIC when it crosses domains),
  ``2(n-1)`` latency steps; bandwidth term ``2(n-1)/n * S / B`` (Patarasuk & Yuan 2009).
* ``"tree"``: NCCL's double binary tree, ``2 log2 n`` latency steps, ring bandwidth term
  (Sanders, Speck & Träff 2009) — the latency-optimal choice for small messages at scale.
* inside one domain, ``"auto"`` uses the topology's own algorithm from
  :mod:`.collectives` (NVSwitch one-shot latency, full-mesh links, dimension-wise torus rings).
* ``"hierarchical"``: reduce-scatter inside each domain, all-reduce of the ``1/n_in`` shard
  across domains over the NICs, all-gather inside (the 2D/hierarchical all-reduce of Jia et al.
  2018, NCCL's tree/CollNet split). Every chip drives its own NIC (rail-optimised clusters:
  p5/DGX one 400G NIC per GPU), so ``n_in`` shards cross the network in parallel.

All times are alpha-beta: latency steps x the profile's ``collective_latency_s`` plus bytes over
the bandwidth reached (link rate x the profile's ``collective_efficiency``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import SiliconomicsError
from ..ops.device import Device
from .collectives import _links_used

F = NDArray[np.float64]
Algorithm = Literal["auto", "ring", "tree", "hierarchical"]
ALGORITHMS: tuple[str, ...] = ("auto", "ring", "tree", "hierarchical")


def split_group(dev: Device, n: ArrayLike, stride: ArrayLike) -> tuple[F, F]:
    """(members per scale-up domain, domains spanned) of groups of ``n`` chips ``stride``
    ranks apart."""
    n_ = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    s = np.maximum(np.asarray(stride, dtype=np.float64), 1.0)
    dom = float(dev.chip.interconnect.scale_up_domain)
    n_in = np.clip(np.floor(dom / s), 1.0, n_)
    return n_in, np.ceil(n_ / n_in)


def _in_domain(dev: Device, n_in: F) -> tuple[F, F]:
    """(bandwidth per direction, latency steps) of the topology's algorithm inside a domain,
    per element of ``n_in`` (evaluated once per distinct size)."""
    sizes, inv = np.unique(n_in, return_inverse=True)
    bw = np.empty(len(sizes))
    steps = np.empty(len(sizes))
    for i, k in enumerate(sizes):
        if k <= 1:
            bw[i], steps[i] = np.inf, 0.0
        else:
            bw[i], steps[i] = _links_used(dev, int(k))
    return bw[inv].reshape(n_in.shape), steps[inv].reshape(n_in.shape)


def _out_bw(dev: Device) -> float:
    return dev.scale_out_bytes_per_s_dir * dev.eff.collective_efficiency


def _check(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        raise SiliconomicsError(
            f"collective algorithm '{algorithm}' is unknown; allowed: {', '.join(ALGORITHMS)}"
        )


def reduce_scatter_time(
    dev: Device, nbytes: ArrayLike, n: ArrayLike, stride: ArrayLike = 1, algorithm: str = "auto"
) -> F:
    """Reduce-scatter of a ``nbytes`` buffer (the full, unsharded size) over ``n`` chips.
    An all-gather producing a ``nbytes`` buffer costs the same."""
    _check(algorithm)
    b = np.asarray(nbytes, dtype=np.float64)
    n_ = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    n_in, n_out = split_group(dev, n_, stride)
    alpha = dev.eff.collective_latency_s
    if algorithm in ("ring", "tree"):
        bw = np.where(n_out > 1, _out_bw(dev), _in_domain(dev, n_)[0])
        steps = (n_ - 1) if algorithm == "ring" else np.log2(n_)
        t = steps * alpha + (n_ - 1) / n_ * b / bw
    else:  # auto / hierarchical
        bw_in, st_in = _in_domain(dev, n_in)
        t_in = np.where(n_in > 1, st_in / 2.0 * alpha + (n_in - 1) / n_in * b / bw_in, 0.0)
        t_out = np.where(
            n_out > 1, (n_out - 1) * alpha + (n_out - 1) / n_out * (b / n_in) / _out_bw(dev), 0.0
        )
        t = t_in + t_out
    return np.where(n_ > 1, t, 0.0) + 0.0 * b


all_gather_time = reduce_scatter_time


def all_reduce_time(
    dev: Device, nbytes: ArrayLike, n: ArrayLike, stride: ArrayLike = 1, algorithm: str = "auto"
) -> F:
    """All-reduce of a ``nbytes`` buffer over ``n`` chips = reduce-scatter + all-gather
    (hierarchical: the network phase all-reduces the ``1/n_in`` shard)."""
    return 2.0 * reduce_scatter_time(dev, nbytes, n, stride, algorithm)


def all_to_all_time(dev: Device, nbytes: ArrayLike, n: ArrayLike, stride: ArrayLike = 1) -> F:
    """All-to-all in which each chip sends ``nbytes`` spread evenly over the ``n`` members
    (MoE token dispatch). The share bound for other domains crosses the NIC; on rings and tori
    messages travel ~n/4 (ring) or sqrt(n)/2 (torus) hops, costing bandwidth on the way.

    Latency: every peer is sent to concurrently (NCCL grouped send/recv, DeepEP, XLA
    all-to-all), so the fixed cost is that of one pass of the topology's algorithm (one alpha
    on a switch, the dimension-wise steps of a torus: half an all-reduce's steps), plus one
    alpha when the group leaves the scale-up domain — not one alpha per peer."""
    b = np.asarray(nbytes, dtype=np.float64)
    n_ = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    n_in, n_out = split_group(dev, n_, stride)
    bw_in, st_in = _in_domain(dev, n_in)
    topo = dev.chip.interconnect.topology
    hops = np.ones_like(n_in)
    if topo == "ring":
        hops = np.maximum(n_in / 4.0, 1.0)
    elif topo in ("torus2d", "torus3d"):
        hops = np.maximum(np.sqrt(n_in) / 2.0, 1.0)
    local = np.where(n_in > 1, (n_in - 1) / n_ * b * hops / bw_in, 0.0)
    remote = (n_ - n_in) / n_ * b / _out_bw(dev)
    steps = np.maximum(st_in / 2.0, 1.0) + (n_out > 1)
    t = steps * dev.eff.collective_latency_s + np.maximum(local, remote)
    return np.where(n_ > 1, t, 0.0) + 0.0 * b


def send_recv_time(dev: Device, nbytes: ArrayLike, stride: ArrayLike) -> F:
    """Point-to-point transfer to the rank ``stride`` away (pipeline neighbours, ring-attention
    neighbours): over the scale-up fabric when both sit in one domain, else the NIC."""
    b = np.asarray(nbytes, dtype=np.float64)
    s = np.asarray(stride, dtype=np.float64)
    ic = dev.chip.interconnect
    links = float(ic.links or 1) if ic.topology in ("mesh", "torus2d", "torus3d") else 1.0
    bw_up = dev.scale_up_bytes_per_s_dir / links * dev.eff.collective_efficiency
    bw = np.where(s < ic.scale_up_domain, bw_up, _out_bw(dev))
    return dev.eff.collective_latency_s + b / bw


def crosses_domain(dev: Device, n: ArrayLike, stride: ArrayLike) -> NDArray[np.bool_]:
    """Whether groups of ``n`` chips ``stride`` apart leave the scale-up domain."""
    return np.asarray(split_group(dev, n, stride)[1] > 1)

"""Turn candidate configs and offers into the MILP of :mod:`.milp`, and read the solution back.

Everything per workload and chip that does not depend on the latency scale (the estimate
grids, prefill configs, offers) is computed once into :class:`Inputs`; :func:`build` then
selects configs for one latency scale and one subset of chips, which is all a restricted
alternative or a frontier point needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..catalog.schema import ChipSpec, ModelSpec
from ..economics.cost import chip_tdp, power_per_chip_w
from ..ops.device import Device
from .candidates import ChipGrid, Config, select_configs
from .disagg import kv_bytes_per_request, transfer_s
from .milp import Problem, Route
from .offers import Offer
from .spec import PlanSpec, Workload
from .workload import Bucket, Traffic


@dataclass(frozen=True, kw_only=True)
class WorkloadInput:
    workload: Workload
    model: ModelSpec
    traffic: Traffic
    buckets: tuple[Bucket, ...]


@dataclass(frozen=True, kw_only=True)
class Inputs:
    spec: PlanSpec
    workloads: tuple[WorkloadInput, ...]
    devices: dict[str, Device]
    """chip id -> the chip and its efficiency profile (every chip with an offer)"""
    idle_w: dict[str, float]
    """chip id -> power of an idle chip incl. its host share (W)"""
    offers: dict[str, list[Offer]]
    """chip -> offers (only chips that can be bought)"""
    excluded: dict[str, str]
    grids: dict[tuple[int, str], ChipGrid]
    decode_grids: dict[tuple[int, str], ChipGrid]
    prefill: dict[tuple[int, str], list[Config]]


@dataclass(frozen=True, kw_only=True)
class Built:
    problem: Problem
    pools: tuple[tuple[Config, Offer], ...]
    offers: tuple[Offer, ...]
    buckets: tuple[tuple[int, Bucket], ...]
    """global bucket index -> (workload index, bucket)"""
    route_latency: tuple[tuple[float, float, float], ...]
    """per route: (TTFT at the SLO-percentile prompt, TTFT at the mean prompt, TPOT)"""
    chips: frozenset[str]
    """the chips this program may use"""


def compatible(c: Config, o: Offer) -> bool:
    """Tensor parallelism inside the node's fast domain; replicas tile whole nodes."""
    n = c.chips
    return c.plan.tp <= o.scale_up_domain and (o.node_chips % n == 0 or n % o.node_chips == 0)


def idle_w_per_chip(chip: ChipSpec) -> float:
    """Power of an idle chip incl. its host share (the power model of economics.cost)."""
    if chip_tdp(chip) is None:
        return 0.0
    return float(power_per_chip_w(chip, 0.0)[0])


def _busy_w(inp: Inputs, c: Config, b: int) -> float:
    """Power above idle of one busy replica serving bucket ``b`` (W)."""
    return max(float(c.watts_per_chip[b]) - inp.idle_w[c.chip], 0.0) * c.chips


def _pools_for(
    configs: list[Config],
    offers: list[Offer],
    pools: list[tuple[Config, Offer]],
    offer_idx: dict[str, int],
) -> list[int]:
    """Add a pool per (config, compatible node type); return their indices."""
    out = []
    for c in configs:
        for o in offers:
            if compatible(c, o):
                pools.append((c, o))
                offer_idx.setdefault(o.system, len(offer_idx))
                out.append(len(pools) - 1)
    return out


def build(
    inp: Inputs, scale: float, chips: set[str], *, colocated: bool = True, disagg: bool = True
) -> Built:
    """The MILP for latency targets x ``scale`` using only ``chips``."""
    spec = inp.spec
    util = spec.max_utilisation
    pools: list[tuple[Config, Offer]] = []
    offer_idx: dict[str, int] = {}
    routes: list[Route] = []
    lat: list[tuple[float, float, float]] = []
    gb: list[tuple[int, Bucket]] = []
    cheapest = {c: min(o.usd_per_chip_hour for o in inp.offers[c]) for c in chips}

    for wi, wk in enumerate(inp.workloads):
        w = wk.workload
        base = len(gb)
        gb.extend((wi, b) for b in wk.buckets)
        colo: list[int] = []
        pre: list[int] = []
        dec: list[int] = []
        for chip in sorted(chips):
            offers = inp.offers[chip]
            if colocated and (wi, chip) in inp.grids:
                cfg = select_configs(inp.grids[(wi, chip)], w, scale, cheapest[chip])
                colo += _pools_for(cfg, offers, pools, offer_idx)
            if disagg and (wi, chip) in inp.decode_grids:
                g = inp.decode_grids[(wi, chip)]
                cfg = select_configs(g, w, scale, cheapest[chip], role="decode")
                dec += _pools_for(cfg, offers, pools, offer_idx)
                pre += _pools_for(inp.prefill.get((wi, chip), []), offers, pools, offer_idx)
        for b, bucket in enumerate(wk.buckets):
            g_b = base + b
            for k in colo:
                c, _ = pools[k]
                if c.cap_rps[b] > 0:
                    routes.append(
                        Route(
                            bucket=g_b,
                            pools=(k,),
                            loads=(1.0 / (c.cap_rps[b] * util),),
                            busy_w=(_busy_w(inp, c, b),),
                        )
                    )
                    lat.append((float(c.ttft_s[b]), float(c.ttft_mean_s[b]), float(c.tpot_s[b])))
            _disagg_routes(inp, wk, b, g_b, bucket, pre, dec, pools, scale, routes, lat)
    by_idx = {offer_idx[o.system]: o for _, o in pools}
    offs = [by_idx[i] for i in range(len(by_idx))]
    problem = Problem(
        rates=np.array([b.rate_rps for _, b in gb]),
        routes=tuple(routes),
        pool_offer=tuple(offer_idx[o.system] for _, o in pools),
        pool_chips=tuple(c.chips for c, _ in pools),
        offer_chip=tuple(o.chip for o in offs),
        offer_node_chips=tuple(o.node_chips for o in offs),
        offer_usd_per_chip_hour=tuple(o.usd_per_chip_hour for o in offs),
        offer_idle_w_per_chip=tuple(inp.idle_w[o.chip] for o in offs),
        availability=dict(spec.availability),
        budget_usd_per_hour=spec.budget_usd_per_hour,
        power_cap_w=spec.power_cap_kw * 1e3 if spec.power_cap_kw else None,
        pool_keys=tuple(f"{c.key}@{o.system}" for c, o in pools),
        offer_keys=tuple(o.system for o in offs),
    )
    return Built(
        problem=problem,
        pools=tuple(pools),
        offers=tuple(offs),
        buckets=tuple(gb),
        route_latency=tuple(lat),
        chips=frozenset(chips),
    )


def _cheapest_per_chip(pools: list[tuple[Config, Offer]], ks: list[int], b: int) -> list[int]:
    """Per chip (and node type), the pool with the lowest $ per request of bucket ``b``: the
    program stays small, and the other pools of that chip would only cost more."""
    best: dict[tuple[str, str], tuple[float, int]] = {}
    for k in ks:
        c, o = pools[k]
        usd = o.usd_per_chip_hour * c.chips / c.cap_rps[b]
        key = (c.chip, o.system)
        if key not in best or usd < best[key][0]:
            best[key] = (usd, k)
    return [k for _, k in best.values()]


def _disagg_routes(
    inp: Inputs,
    wk: WorkloadInput,
    b: int,
    g_b: int,
    bucket: Bucket,
    pre: list[int],
    dec: list[int],
    pools: list[tuple[Config, Offer]],
    scale: float,
    routes: list[Route],
    lat: list[tuple[float, float, float]],
) -> None:
    """Prefill pool x decode pool routes for one bucket whose TTFT (prefill + KV transfer)
    meets the scaled target; only the cheapest prefill pool per chip and node type is paired
    with each decode pool."""
    w, util = wk.workload, inp.spec.max_utilisation
    ttft_max = np.inf if w.slo.ttft is None else w.slo.ttft * scale
    ok_pre = [k for k in pre if pools[k][0].cap_rps[b] > 0 and pools[k][0].ttft_s[b] <= ttft_max]
    best_pre = _cheapest_per_chip(pools, ok_pre, b)
    # every decode pool stays: sharing one pool across buckets saves whole nodes
    best_dec = [k for k in dec if pools[k][0].cap_rps[b] > 0]
    kv_gb = float(kv_bytes_per_request(wk.model, w, np.array(bucket.mean_input))) / 1e9
    usd_kv = kv_gb * inp.spec.kv_transfer_usd_per_gb
    for kp in best_pre:
        cp = pools[kp][0]
        for kd in best_dec:
            cd = pools[kd][0]
            dec_dev = inp.devices[cd.chip]
            xfer = float(transfer_s(wk.model, w, cp, cd, dec_dev, np.array(bucket.p_input)))
            ttft = float(cp.ttft_s[b]) + xfer
            if ttft > ttft_max:
                continue
            xfer_mean = float(transfer_s(wk.model, w, cp, cd, dec_dev, np.array(bucket.mean_input)))
            routes.append(
                Route(
                    bucket=g_b,
                    pools=(kp, kd),
                    loads=(1.0 / (cp.cap_rps[b] * util), 1.0 / (cd.cap_rps[b] * util)),
                    busy_w=(_busy_w(inp, cp, b), _busy_w(inp, cd, b)),
                    kv_usd_per_request=usd_kv,
                )
            )
            lat.append((ttft, float(cp.ttft_mean_s[b]) + xfer_mean, float(cd.tpot_s[b])))

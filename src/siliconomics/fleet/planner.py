"""The fleet planner: cheapest mix of chips that serves every workload within its targets.

1. Resolve allowed chips and what each costs (:mod:`.offers`), sample and bucket the traffic
   (:mod:`.workload`), and evaluate every layout per (workload, chip) once (:mod:`.candidates`,
   :mod:`.disagg`).
2. Solve the fleet MILP (:mod:`.milp`, :mod:`.solve`) at the targets; if it is infeasible,
   find which limit binds by re-solving with each one switched off.
3. Check the fleet's latency percentiles in the serving simulator (:mod:`.confirm`); where a
   workload misses, re-plan with more headroom (:func:`confirmed`).
4. Re-solve restricted to each vendor and each chip type (the runner-ups), and with the targets
   scaled (the cost-latency frontier) (:mod:`.alternatives`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np

from ..catalog.catalog import Catalog
from ..economics.pricebook import PriceBook
from ..errors import SiliconomicsError, UnknownIdError
from ..inference import speculative
from ..ops.device import Device
from ..serving.workload import Requests
from .alternatives import alternatives, frontier
from .build import Built, Inputs, WorkloadInput, idle_w_per_chip
from .candidates import chip_grid
from .confirm import workload_latency
from .disagg import decode_grid, prefill_configs
from .milp import Solution, hint_of
from .offers import Offer, offers_for_chip
from .result import FleetResult, Latency, Pool
from .solve import _chips_of, _usd_of, explain_infeasible, solve_at
from .spec import PlanSpec
from .workload import make_buckets, traffic

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called by the planner, drawn by the CLI"""


def allowed_chips(spec: PlanSpec, catalog: Catalog) -> list[str]:
    """Chip ids the spec allows (its ``chips`` and ``vendors``), every id checked."""
    table = catalog.chips
    for field, ids in (
        ("chips", list(spec.chips or ())),
        ("availability", list(spec.availability)),
        ("prices", list(spec.prices)),
        ("instance_chips", list(spec.instance_chips)),
    ):
        for cid in ids:
            if cid not in table:
                raise SiliconomicsError(
                    f"spec field '{field}': {UnknownIdError('chip', cid, table)}"
                ) from None
    ids = list(spec.chips) if spec.chips else sorted(table)
    if spec.vendors:
        vendors = {c.vendor.lower() for c in table.values()}
        bad = [v for v in spec.vendors if v.lower() not in vendors]
        if bad:
            raise SiliconomicsError(
                f"spec field 'vendors': unknown vendor '{bad[0]}'; known: "
                f"{', '.join(sorted({c.vendor for c in table.values()}))}"
            )
        want = {v.lower() for v in spec.vendors}
        ids = [c for c in ids if table[c].vendor.lower() in want]
    if not ids:
        raise SiliconomicsError("spec fields 'chips'/'vendors' leave no chip to choose from")
    return ids


def devices(chip_ids: list[str], catalog: Catalog) -> dict[str, Device]:
    """Each chip with its family's efficiency profile."""
    out = {}
    for cid in chip_ids:
        chip = catalog.chip(cid)
        out[cid] = Device(chip=chip, eff=catalog.profile_of(chip))
    return out


def prepare(
    spec: PlanSpec,
    catalog: Catalog,
    progress: Progress | None = None,
    *,
    book: PriceBook | None = None,
    traces: Mapping[str, Requests] | None = None,
) -> Inputs:
    """Everything that does not depend on the latency scale or the chip subset; ids in the
    spec (chips, models) resolve through ``catalog``, trace paths through ``traces`` (read by
    the edge, :func:`siliconomics.resolve.traces`); ``book``: the run's price book."""
    offers: dict[str, list[Offer]] = {}
    excluded: dict[str, str] = {}
    for cid in allowed_chips(spec, catalog):
        o, why = offers_for_chip(cid, spec, book, catalog)
        if o:
            offers[cid] = o
        else:
            excluded[cid] = why
    if not offers:
        raise SiliconomicsError(
            f"spec field 'chips': no allowed chip has a {spec.pricing} price "
            f"({'; '.join(f'{c}: {r}' for c, r in list(excluded.items())[:4])})"
        )
    wls = []
    for i, w in enumerate(spec.workloads):
        try:
            model = catalog.model(w.model)
        except SiliconomicsError as e:
            raise SiliconomicsError(f"spec field 'workloads.{i}.model': {e}") from None
        if w.mtp is not None:
            try:
                speculative.check(model, w.mtp.to_speculative())
            except SiliconomicsError as e:
                raise SiliconomicsError(f"spec field 'workloads.{i}.mtp': {e}") from None
        t = traffic(w, spec.seed, (traces or {}).get(w.trace or ""))
        wls.append(
            WorkloadInput(
                workload=w, model=model, traffic=t, buckets=tuple(make_buckets(w, t, spec.buckets))
            )
        )
    grids, dgrids, pre = {}, {}, {}
    jobs = [(wi, c) for wi in range(len(wls)) for c in offers]
    devs = devices(list(offers), catalog)
    for n, (wi, cid) in enumerate(jobs):
        if progress:
            progress("evaluating layouts", n, len(jobs))
        wk, chip = wls[wi], devs[cid]
        bl = list(wk.buckets)
        if spec.disaggregation != "only":
            grids[(wi, cid)] = chip_grid(wk.model, chip, wk.workload, bl)
        if spec.disaggregation != "off":
            dgrids[(wi, cid)] = decode_grid(wk.model, chip, wk.workload, bl)
            pre[(wi, cid)] = [
                c for c in prefill_configs(wk.model, chip, wk.workload, bl) if c.cap_rps.any()
            ]
    if progress:
        progress("evaluating layouts", len(jobs), len(jobs))
    return Inputs(
        spec=spec,
        workloads=tuple(wls),
        devices=devs,
        idle_w={c: idle_w_per_chip(d.chip) for c, d in devs.items()},
        offers=offers,
        excluded=excluded,
        grids=grids,
        decode_grids=dgrids,
        prefill=pre,
    )


def _pools(inp: Inputs, b: Built, s: Solution) -> list[Pool]:
    load = np.zeros(len(b.pools))
    served: list[dict[str, float]] = [{} for _ in b.pools]
    for x, r in zip(s.shares, b.problem.routes, strict=True):
        if x <= 1e-9:
            continue
        bucket = b.buckets[r.bucket][1]
        for k, ld in zip(r.pools, r.loads, strict=True):
            load[k] += x * b.problem.rates[r.bucket] * ld
            served[k][bucket.label] = served[k].get(bucket.label, 0.0) + float(x)
    out = []
    for k, ((c, o), n) in enumerate(zip(b.pools, s.replicas, strict=True)):
        if n <= 0:
            continue
        out.append(
            Pool(
                workload=c.workload,
                chip=c.chip,
                vendor=inp.devices[c.chip].chip.vendor,
                system=o.system,
                role=c.role,
                tp=c.plan.tp,
                pp=c.plan.pp,
                batch_limit=c.batch_limit,
                replicas=int(n),
                chips=int(n) * c.chips,
                usd_per_chip_hour=o.usd_per_chip_hour,
                utilisation=float(load[k] * inp.spec.max_utilisation / n),
                buckets=served[k],
                watts=float(np.max(c.watts_per_chip)) * c.chips * int(n),
            )
        )
    return out


CONFIRM_ROUNDS = 4
TIGHTEN = 0.85


def confirmed(
    inp: Inputs, progress: Progress | None = None
) -> tuple[Inputs, float, Built, Solution, tuple[Latency, ...], list[str]]:
    """Solve, then check the fleet in the serving simulator; where a workload misses its
    target, re-plan with less queueing headroom (TTFT missed: lower max utilisation) or
    tighter analytic targets (TPOT missed), up to ``CONFIRM_ROUNDS`` times."""
    scale = 1.0
    notes: list[str] = []
    last: tuple[Inputs, float, Built, Solution, tuple[Latency, ...]] | None = None
    for rnd in range(CONFIRM_ROUNDS):
        if progress:
            progress("solve and simulate", rnd, CONFIRM_ROUNDS)
        hint = hint_of(last[2].problem, last[3]) if last else None  # the fleet before re-planning
        b, s = solve_at(inp, scale, set(inp.offers), hint=hint)
        if s is None:
            if last is None:
                raise SiliconomicsError(explain_infeasible(inp, b))
            notes.append("tightening for the simulated misses made the plan infeasible")
            break
        lat = tuple(
            workload_latency(wk, b, s, inp.spec.seed, wi, inp.devices)
            for wi, wk in enumerate(inp.workloads)
        )
        last = (inp, scale, b, s, lat)
        missed = [la for la in lat if not la.meets_slo]
        if not missed or rnd == CONFIRM_ROUNDS - 1:
            break
        util = inp.spec.max_utilisation
        ttft = any(la.slo_ttft_s and la.ttft_p_s > la.slo_ttft_s for la in missed)
        tpot = any(la.slo_tpot_s and la.tpot_p_s > la.slo_tpot_s for la in missed)
        if ttft:
            spec = inp.spec.model_copy(update={"max_utilisation": util * TIGHTEN})
            inp = replace(inp, spec=spec)
        if tpot:
            scale *= TIGHTEN
        what = "/".join(m for m, hit in (("TTFT", ttft), ("TPOT", tpot)) if hit)
        notes.append(
            f"round {rnd + 1}: simulated {what} missed the target at "
            f"max utilisation {util:.0%}, targets x{scale / (TIGHTEN if tpot else 1):.2f}; "
            f"re-planned at {inp.spec.max_utilisation:.0%}, x{scale:.2f}"
        )
    if progress:
        progress("solve and simulate", CONFIRM_ROUNDS, CONFIRM_ROUNDS)
    assert last is not None
    return (*last, notes)


def plan_fleet(inp: Inputs, progress: Progress | None = None) -> FleetResult:
    """The cheapest fleet for the workloads prepared in ``inp`` (see the module docstring)."""
    spec = inp.spec
    if not spec.workloads:
        raise SiliconomicsError("spec field 'workloads': nothing to serve (training-only spec)")
    inp, scale, b, s, lat, notes = confirmed(inp, progress)
    pools = _pools(inp, b, s)
    alts = alternatives(
        inp, s.usd_per_hour, any(p.role != "both" for p in pools), scale, main=(b, s)
    )
    front = frontier(inp, progress, main=(scale, b, s))
    nodes: dict[str, int] = {}
    for o, n in zip(b.offers, s.nodes, strict=True):
        if n > 0:
            nodes[o.system] = int(n)
    kv_usd = sum(
        float(x) * b.problem.rates[r.bucket] * r.kv_usd_per_request * 3600.0
        for x, r in zip(s.shares, b.problem.routes, strict=True)
    )
    out_tps = sum(wk.traffic.rate_rps * float(wk.traffic.output_len.mean()) for wk in inp.workloads)
    in_tps = sum(wk.traffic.rate_rps * float(wk.traffic.input_len.mean()) for wk in inp.workloads)
    return FleetResult(
        name=spec.name,
        pricing=spec.pricing,
        pools=tuple(pools),
        chips=_chips_of(b, s),
        nodes=nodes,
        usd_by_chip=_usd_of(b, s),
        usd_per_hour=s.usd_per_hour,
        kv_transfer_usd_per_hour=kv_usd,
        output_tokens_per_s=out_tps,
        input_tokens_per_s=in_tps,
        power_w=s.power_w,
        solver=s.status,
        optimality_gap=s.gap,
        latency=lat,
        alternatives=tuple(alts),
        pareto=tuple(front),
        excluded=dict(inp.excluded),
        warnings=tuple(_warnings(pools, lat)),
        assumptions=tuple(_assumptions(inp, b, s) + notes),
        buckets=tuple(
            {
                "bucket": bk.label,
                "share": bk.share,
                "rate_rps": bk.rate_rps,
                "mean_input": bk.mean_input,
                "mean_output": bk.mean_output,
                "p_input": bk.p_input,
            }
            for _, bk in b.buckets
        ),
    )


def _warnings(pools: list[Pool], lat: tuple) -> list[str]:
    out = []
    for w in {p.workload for p in pools}:
        pre = {p.vendor for p in pools if p.workload == w and p.role == "prefill"}
        dec = {p.vendor for p in pools if p.workload == w and p.role == "decode"}
        if pre and dec and pre != dec:
            out.append(
                f"{w}: prefill on {'/'.join(sorted(pre))} and decode on {'/'.join(sorted(dec))}: "
                "the KV cache crosses vendors' software stacks (no common KV-cache format or "
                "transfer library) and possibly clouds; the model assumes it is possible"
            )
    for la in lat:
        if not la.meets_slo:
            out.append(f"{la.workload}: predicted p{la.percentile:g} latency misses the target")
    return out


def _assumptions(inp: Inputs, b: Built, sol: Solution) -> list[str]:
    s = inp.spec
    used = sorted({o.price_note for o, n in zip(b.offers, sol.nodes, strict=True) if n > 0})
    return [
        f"replicas run at most {s.max_utilisation:.0%} busy (queueing headroom)",
        "requests bucketed by prompt length; each bucket's latency is checked at its "
        "SLO-percentile prompt and its throughput at its mean lengths",
        "KV transfer (disaggregation) is not overlapped with prefill",
        "prices: " + "; ".join(used),
    ]

"""Prefill/decode disaggregation: prompts on one pool, generation on another (Splitwise,
Patel et al. 2024; DistServe, Zhong et al. 2024).

Prefill replica: prompts are batched up to ``max_prefill_tokens`` per step, so it serves
``bp / t_prefill(bp, I)`` requests/s with ``bp = floor(8192 / I)``; its TTFT is the prefill of
the SLO-percentile prompt plus the KV-cache transfer. Decode replica: a running batch B (memory
and the ladder permitting) steps every ``t_dec(B)`` with no prefill interleaved, so TPOT is the
pure decode step and it serves ``B / (O * t_dec)`` requests/s. With speculative decoding (the
workload's ``mtp``) a decode step is :func:`..inference.speculative.step_cost` and emits
``accepted`` tokens per sequence, so ``t_dec`` is the step over ``accepted``; both pools hold
the MTP layer's weights (and the decode pool its KV cache).

KV transfer: the whole cache of the prompt, ``I * kv_bytes_per_token`` (unreplicated, all
layers), crosses the scale-out network at the slower side's aggregate NIC bandwidth (per chip
times chips of the replica). It is not overlapped with the prefill (Splitwise overlaps it layer
by layer, so this is conservative) and a prefill replica cannot produce KV faster than its NICs
send it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..catalog.schema import ModelSpec
from ..economics.cost import power_per_chip_w
from ..errors import SiliconomicsError
from ..inference import speculative
from ..inference.estimate import max_batch
from ..inference.forward import ForwardCost, forward_cost
from ..ops.device import Device
from ..parallel.memory import kv_bytes_per_seq_per_chip
from ..parallel.plan import InferencePlan
from ..search.compare import BATCH_LADDER, candidate_plans
from .candidates import ChipGrid, Config
from .spec import Workload
from .workload import Bucket

F = NDArray[np.float64]
MAX_PREFILL_TOKENS = 8192.0
_QUAD = (np.arange(4) + 0.5) / 4.0


def kv_bytes_per_request(model: ModelSpec, w: Workload, prompt: F) -> F:
    """KV cache of a prompt for the whole model (no tensor-parallel replication)."""
    return kv_bytes_per_seq_per_chip(model, InferencePlan(kv_dtype=w.kv_dtype), prompt)


def prefill_configs(
    model: ModelSpec, dev: Device, w: Workload, buckets: list[Bucket]
) -> list[Config]:
    """One prefill config per layout on ``dev``; cap 0 for buckets it cannot hold."""
    chip = dev.chip
    mean_i = np.array([b.mean_input for b in buckets])
    p_i = np.array([b.p_input for b in buckets])
    held = model if w.mtp is None else speculative.memory_model(model)
    out = []
    for plan in candidate_plans(model, dev, w.weights_dtype, w.act_dtype, w.kv_dtype):
        try:
            plan.validate(model, dev)
        except SiliconomicsError:
            continue
        I = np.stack([mean_i, p_i])
        chunk = np.maximum(MAX_PREFILL_TOKENS, I)
        bp = np.maximum(np.floor(chunk / I), 1.0)
        fits = max_batch(held, dev, plan, I, chunk) >= bp
        fc = forward_cost(model, dev, plan, bp, I, 0.0)
        cap = np.where(fits[0], bp[0] / fc.time[0], 0.0)
        nic = dev.scale_out_bytes_per_s_dir * plan.chips_per_replica
        cap = np.minimum(cap, nic / kv_bytes_per_request(model, w, mean_i))
        single = forward_cost(model, dev, plan, 1.0, I, 0.0).time
        ttft = np.where(fits[1], single[1], np.inf)
        watts, _ = power_per_chip_w(chip, 1.0)  # prefill is compute-bound: full activity
        out.append(
            Config(
                workload=w.label,
                chip=chip.id,
                plan=plan,
                role="prefill",
                batch_limit=float(np.max(bp[0])),
                cap_rps=cap,
                ttft_s=ttft,
                ttft_mean_s=np.asarray(single[0]),
                tpot_s=np.zeros_like(cap),
                watts_per_chip=np.broadcast_to(watts, cap.shape).astype(np.float64),
                bound="prefill",
                extra={"nic_bytes_per_s": nic},
            )
        )
    return out


def _activity(fc: ForwardCost) -> F:
    """Busy (compute- or memory-bound) share of a step, as in plan.assess.activity."""
    sh = fc.bound_shares()
    busy = sh["compute"] + sh["memory"]
    return np.asarray(busy / (busy + sh["interconnect"] + sh["overhead"]), dtype=np.float64)


def decode_grid(model: ModelSpec, dev: Device, w: Workload, buckets: list[Bucket]) -> ChipGrid:
    """Every layout x bucket x batch limit of a decode-only replica on ``dev`` (no prefill
    interleaved)."""
    chip = dev.chip
    I = np.array([b.mean_input for b in buckets])[:, None]
    O = np.array([b.mean_output for b in buckets])[:, None]
    spec = None if w.mtp is None else w.mtp.to_speculative()
    held = model if spec is None else speculative.memory_model(model, spec)
    plans, caps, tpots, watts = [], [], [], []
    for plan in candidate_plans(model, dev, w.weights_dtype, w.act_dtype, w.kv_dtype):
        try:
            plan.validate(model, dev)
        except SiliconomicsError:
            continue
        mem_cap = max_batch(held, dev, plan, I + O / 2.0, 1.0)
        B = np.minimum(BATCH_LADDER[None, :], mem_cap)
        micro = np.maximum(B / plan.pp, 1.0)
        ctx = I[..., None] + O[..., None] * _QUAD
        if spec is None:
            fc = forward_cost(model, dev, plan, micro[..., None], 1.0, ctx)
            t_dec = np.asarray(fc.time.mean(axis=-1))
        else:  # a step emits `accepted` tokens per sequence
            fc = speculative.step_cost(model, dev, plan, micro[..., None], ctx, spec)
            t_dec = np.asarray(fc.time.mean(axis=-1)) / spec.accepted
        caps.append(np.where(B >= 1, B / (O * t_dec), 0.0))
        tpots.append(t_dec)
        watts.append(power_per_chip_w(chip, _activity(fc).mean(axis=-1))[0] + 0 * t_dec)
        plans.append(plan)
    shape = (0, len(buckets), len(BATCH_LADDER))
    stack = (lambda xs: np.stack(xs)) if plans else (lambda xs: np.zeros(shape))
    cap = stack(caps)
    return ChipGrid(
        workload=w.label,
        chip=chip.id,
        plans=tuple(plans),
        cap_rps=cap,
        ttft_s=np.zeros_like(cap),
        ttft_mean_s=np.zeros_like(cap),
        tpot_s=stack(tpots),
        watts=stack(watts),
        bound=np.full(cap.shape, "decode"),
        reason="" if plans else "no layout fits",
    )


def transfer_s(
    model: ModelSpec, w: Workload, pre: Config, dec: Config, dec_dev: Device, prompt: F
) -> F:
    """KV-transfer time (s) of a prompt from a prefill replica to a decode replica (on
    ``dec_dev``)."""
    bw_dec = dec_dev.scale_out_bytes_per_s_dir * dec.chips
    return kv_bytes_per_request(model, w, prompt) / min(pre.extra["nic_bytes_per_s"], bw_dec)

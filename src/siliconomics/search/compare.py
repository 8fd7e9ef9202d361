"""Best deployment per chip under latency targets, and the ranking of chips by cost.

For each chip: every tensor-parallel degree inside the scale-up domain (powers of two and the
domain size), pipeline stages only when the weights do not fit one domain, expert parallelism
= tp for MoE models, and a ladder of batch limits (1 .. 4096 and the memory maximum), all
evaluated vectorised per plan. A configuration is feasible when it fits in memory and its
TTFT and TPOT meet the targets; the best has the lowest $ per million output tokens (highest
tokens/s per chip where no price is known). One replica of the best layout is reported; the
fleet size for a traffic level belongs to the planner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..catalog.schema import ChipSpec, ModelSpec
from ..economics.pricing import Pricing
from ..errors import SiliconomicsError
from ..inference import speculative
from ..inference.estimate import Estimate, estimate_max_throughput
from ..inference.speculative import Speculative
from ..ops.device import Device
from ..parallel.memory import weight_bytes_per_chip
from ..parallel.plan import InferencePlan
from .assess import Assessment, assess
from .screen import Targets, screen_plans

BATCH_LADDER = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 768, 1024, 2048, 4096.0])


@dataclass(frozen=True, kw_only=True)
class ChipChoice:
    """The best feasible configuration on one chip, or why there is none."""

    chip: ChipSpec
    assessment: Assessment | None
    index: int = 0
    reason: str = ""

    @property
    def feasible(self) -> bool:
        return self.assessment is not None

    def value(self, name: str) -> float:
        """Scalar metric of the chosen configuration."""
        a = self.assessment
        assert a is not None
        e = a.estimate
        src = {
            "batch": e.batch,
            "ttft_s": e.ttft_s,
            "tpot_s": e.tpot_s,
            "tokens_per_s": e.output_tokens_per_s,
            "tokens_per_s_per_chip": e.output_tokens_per_s_per_chip,
            "usd_per_m_output": a.usd_per_million_output,
            "usd_per_m_input": a.usd_per_million_input_split,
            "usd_per_m_output_split": a.usd_per_million_output_split,
            "j_per_token": a.joules_per_output_token,
            "usd_per_hour": a.usd_per_hour,
            "watts_per_chip": a.watts_per_chip,
        }[name]
        arr = np.broadcast_to(np.asarray(src, dtype=np.float64), e.batch.shape)
        return float(arr.reshape(-1)[self.index])

    @property
    def bound(self) -> str:
        assert self.assessment is not None
        b = np.broadcast_to(
            self.assessment.estimate.decode_bound, self.assessment.estimate.batch.shape
        )
        return str(b.reshape(-1)[self.index])


def candidate_plans(
    model: ModelSpec,
    dev: Device,
    weight_dtype: str,
    act_dtype: str,
    kv_dtype: str,
    *,
    dp_attention: bool = False,
) -> list[InferencePlan]:
    """Layouts to try on ``dev``; with ``dp_attention`` MoE models also get attention data
    parallel layouts over the scale-up domain (see :func:`_dp_attention_plans`)."""
    chip = dev.chip
    domain = chip.interconnect.scale_up_domain
    tps = sorted({t for t in (1, 2, 4, 8, 16, 32, 64) if t <= domain} | {domain})
    tps = [t for t in tps if t <= model.n_heads]
    plans = []
    for pp in (1, 2, 4, 8):
        for tp in tps:
            ep = tp if (model.moe is not None and model.moe.n_experts % tp == 0) else 1
            plans.append(
                InferencePlan(
                    tp=tp,
                    pp=pp,
                    ep=ep,
                    weight_dtype=weight_dtype,
                    act_dtype=act_dtype,
                    kv_dtype=kv_dtype,
                )
            )
        if plans and _weights_fit(model, dev, plans[-1]):
            break  # pipeline stages only when needed
    if not dp_attention:
        return plans
    return plans + _dp_attention_plans(model, tps, domain, weight_dtype, act_dtype, kv_dtype)


def _dp_attention_plans(
    model: ModelSpec, tps: list[int], domain: int, weight_dtype: str, act_dtype: str, kv_dtype: str
) -> list[InferencePlan]:
    """MoE models: attention data parallel over the scale-up domain with the experts spread
    over all of it (dp x tp = ep = the domain), as SGLang / TensorRT-LLM serve DeepSeek-class
    models inside one NVLink domain."""
    if model.moe is None or domain < 2:
        return []
    return [
        InferencePlan(
            tp=tp,
            dp=domain // tp,
            ep=domain,
            weight_dtype=weight_dtype,
            act_dtype=act_dtype,
            kv_dtype=kv_dtype,
        )
        for tp in tps
        if tp < domain and domain % tp == 0 and domain <= model.moe.n_experts
    ]


def _weights_fit(model: ModelSpec, dev: Device, plan: InferencePlan) -> bool:
    return weight_bytes_per_chip(model, plan) < dev.usable_hbm_bytes * 0.9


def best_on_chip(
    model: ModelSpec,
    dev: Device,
    *,
    input_len: float,
    output_len: float,
    ttft_s: float | None,
    tpot_s: float | None,
    weight_dtype: str,
    act_dtype: str,
    kv_dtype: str,
    price_overrides: Pricing | None = None,
    spec: Speculative | None = None,
) -> ChipChoice:
    """The cheapest feasible layout and batch limit of ``model`` on ``dev`` (``ttft_s``,
    ``tpot_s`` in seconds; lengths in tokens), or why there is none.

    Every layout is screened with the time-only fast path (:func:`.screen.screen_plans`);
    the reference estimate then runs only on the layouts that can still be the answer (or
    hold the closest miss the message names), so the choice and its figures are those of the
    reference estimate over every layout (``tests/test_search_screen.py``). ``spec``:
    speculative decoding with the model's MTP module (:mod:`..inference.speculative`); the
    fast path does not price it, so every layout goes to the reference estimate."""
    plans = candidate_plans(model, dev, weight_dtype, act_dtype, kv_dtype, dp_attention=True)
    targets = Targets(input_len, output_len, ttft_s, tpot_s)
    cache: dict[int, Estimate | str] = {}
    if spec is not None:
        every = tuple(range(len(plans)))
        return _best_of(model, dev, plans, every, targets, price_overrides, cache, spec)
    scr = screen_plans(model, dev, plans, targets, price_overrides, BATCH_LADDER)
    choice = _best_of(model, dev, plans, scr.best, targets, price_overrides, cache)
    if choice.feasible or scr.best == scr.closest:
        return choice
    return _best_of(model, dev, plans, scr.closest, targets, price_overrides, cache)


def best_on_chip_reference(
    model: ModelSpec,
    dev: Device,
    *,
    input_len: float,
    output_len: float,
    ttft_s: float | None,
    tpot_s: float | None,
    weight_dtype: str,
    act_dtype: str,
    kv_dtype: str,
    price_overrides: Pricing | None = None,
) -> ChipChoice:
    """:func:`best_on_chip` with the reference estimate on every layout (no screening): what
    the screened search must equal, kept for the tests and the benchmark."""
    plans = candidate_plans(model, dev, weight_dtype, act_dtype, kv_dtype, dp_attention=True)
    targets = Targets(input_len, output_len, ttft_s, tpot_s)
    every = tuple(range(len(plans)))
    return _best_of(model, dev, plans, every, targets, price_overrides, {})


def _reference(
    model: ModelSpec, dev: Device, plan: InferencePlan, t: Targets, spec: Speculative | None = None
) -> Estimate | str:
    """The reference estimate of ``plan`` over the batch ladder, or why it fails."""
    try:
        return estimate_max_throughput(
            model, dev, plan, t.input_len, t.output_len, batch_limit=BATCH_LADDER, spec=spec
        )
    except SiliconomicsError as e:
        return str(e)


def _best_of(
    model: ModelSpec,
    dev: Device,
    plans: Sequence[InferencePlan],
    keep: Sequence[int],
    t: Targets,
    price_overrides: Pricing | None,
    cache: dict[int, Estimate | str],
    spec: Speculative | None = None,
) -> ChipChoice:
    """The best choice among ``plans[keep]`` (in plan order) with the reference estimate."""
    chip = dev.chip
    ttft_s, tpot_s = t.ttft_s, t.tpot_s
    best: ChipChoice | None = None
    reasons: list[str] = []
    closest_tpot = np.inf
    closest_ttft = np.inf
    ttft_at_tpot = np.inf
    for j in sorted(keep):
        if j not in cache:
            cache[j] = _reference(model, dev, plans[j], t, spec)
        est = cache[j]
        if isinstance(est, str):
            reasons.append(est)
            continue
        a = assess(est, price_overrides)
        ok = np.ones(est.batch.shape, dtype=bool)
        if ttft_s is not None:
            ok &= np.broadcast_to(est.ttft_s <= ttft_s, ok.shape)
        if tpot_s is not None:
            ok &= np.broadcast_to(est.tpot_s <= tpot_s, ok.shape)
        tpot_b = np.broadcast_to(est.tpot_s, ok.shape)
        ttft_b = np.broadcast_to(est.ttft_s, ok.shape)
        closest_tpot = min(closest_tpot, float(np.min(tpot_b)))
        closest_ttft = min(closest_ttft, float(np.min(ttft_b)))
        if tpot_s is not None and (tpot_b <= tpot_s).any():
            ttft_at_tpot = min(ttft_at_tpot, float(np.min(ttft_b[tpot_b <= tpot_s])))
        if not ok.any():
            continue
        cost = np.broadcast_to(a.usd_per_million_output, ok.shape)
        score = np.where(
            np.isfinite(cost), cost, -np.broadcast_to(est.output_tokens_per_s_per_chip, ok.shape)
        )
        score = np.where(ok, score, np.inf)
        i = int(np.argmin(score))
        cand = ChipChoice(chip=chip, assessment=a, index=i)
        if best is None or _better(cand, best):
            best = cand
    if best is not None:
        return best
    if reasons and not np.isfinite(closest_tpot):
        return ChipChoice(chip=chip, assessment=None, reason=reasons[-1])
    return ChipChoice(
        chip=chip,
        assessment=None,
        reason=_why_infeasible(ttft_s, tpot_s, closest_ttft, closest_tpot, ttft_at_tpot),
    )


def _why_infeasible(
    ttft_s: float | None,
    tpot_s: float | None,
    best_ttft: float,
    best_tpot: float,
    ttft_at_tpot: float,
) -> str:
    """Name the binding target and how close the chip gets."""
    if tpot_s is not None and best_tpot > tpot_s:
        return f"TPOT target {tpot_s * 1e3:.0f} ms unreachable (best {best_tpot * 1e3:.1f} ms)"
    if ttft_s is not None and best_ttft > ttft_s:
        return f"TTFT target {ttft_s:.3g} s unreachable (best {best_ttft:.3g} s)"
    return (
        f"no layout meets both targets: where TPOT <= {tpot_s and tpot_s * 1e3:.0f} ms "
        f"the best TTFT is {ttft_at_tpot:.3g} s"
    )


def _better(a: ChipChoice, b: ChipChoice) -> bool:
    ca, cb = a.value("usd_per_m_output"), b.value("usd_per_m_output")
    if np.isfinite(ca) and np.isfinite(cb):
        return ca < cb
    return a.value("tokens_per_s_per_chip") > b.value("tokens_per_s_per_chip")


@dataclass(frozen=True, kw_only=True)
class Comparison:
    model: ModelSpec
    input_len: float
    output_len: float
    ttft_s: float | None
    tpot_s: float | None
    choices: tuple[ChipChoice, ...]
    """feasible chips first, by $/M output tokens (unpriced after priced), then the rest"""
    spec: Speculative | None = None
    """speculative decoding with the model's MTP module, on every chip (None: none)"""


def compare_chips(
    model: ModelSpec,
    devices: Sequence[Device],
    *,
    input_len: float,
    output_len: float,
    ttft_s: float | None = None,
    tpot_s: float | None = None,
    weight_dtype: str = "bf16",
    act_dtype: str = "bf16",
    kv_dtype: str = "bf16",
    price_overrides: Pricing | None = None,
    spec: Speculative | None = None,
) -> Comparison:
    """Best layout of ``model`` on each of ``devices``, ranked by $ per million output tokens
    (lengths in tokens, targets in seconds; ``price_overrides``: the run's Pricing, None:
    unpriced; ``spec``: speculative decoding with the model's MTP module on every chip)."""
    if input_len < 1 or output_len < 1:
        raise SiliconomicsError("input and output lengths must be >= 1 token")
    if not devices:
        raise SiliconomicsError("no chip to compare")
    if spec is not None:
        speculative.check(model, spec)
    choices = [
        best_on_chip(
            model,
            d,
            input_len=input_len,
            output_len=output_len,
            ttft_s=ttft_s,
            tpot_s=tpot_s,
            weight_dtype=weight_dtype,
            act_dtype=act_dtype,
            kv_dtype=kv_dtype,
            price_overrides=price_overrides,
            spec=spec,
        )
        for d in devices
    ]

    def key(ch: ChipChoice) -> tuple[int, float]:
        if not ch.feasible:
            return (2, 0.0)
        cost = ch.value("usd_per_m_output")
        if np.isfinite(cost):
            return (0, cost)
        return (1, -ch.value("tokens_per_s_per_chip"))

    return Comparison(
        model=model,
        input_len=input_len,
        output_len=output_len,
        ttft_s=ttft_s,
        tpot_s=tpot_s,
        choices=tuple(sorted(choices, key=key)),
        spec=spec,
    )

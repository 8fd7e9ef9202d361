"""Per target stack: each kind of finding, what the stack offers for it, the effort to port
it (engineer-weeks, low/high from :mod:`.knowledge`'s effort model) and an overall verdict.

Effort per kind with ``n`` findings in code (declared dependencies alone count as one) and
``kloc`` thousand lines behind them:

- supported: ``verify`` (re-test on the target), once per kind;
- replacement: ``replace + per_extra*(n-1) + replace_per_kloc*kloc``;
- blocker: ``rewrite + per_extra*(n-1) + rewrite_per_kloc*kloc``;
- unknown: low of the replacement, high of the rewrite (the range says we do not know).
"""

from __future__ import annotations

from dataclasses import dataclass

from .findings import Finding, ScanResult
from .knowledge import EffortModel, Entry, ModelSupport, Stack


@dataclass(frozen=True, kw_only=True)
class KindAssessment:
    kind: str
    findings: tuple[Finding, ...]
    entry: Entry
    weeks_low: float
    weeks_high: float

    @property
    def count(self) -> int:
        return len(self.findings)

    @property
    def loc(self) -> int:
        return sum(f.loc for f in self.findings)


@dataclass(frozen=True, kw_only=True)
class TargetReport:
    stack: Stack
    items: tuple[KindAssessment, ...]
    model: ModelSupport | None
    weeks_low: float
    weeks_high: float
    verdict: str
    """``ready``, ``swap``, ``rewrite`` or ``uncertain``"""
    summary: str

    def count(self, state: str) -> int:
        return sum(1 for i in self.items if i.entry.state == state)


def kind_effort(effort: EffortModel, entry: Entry, n: int, loc: int) -> tuple[float, float]:
    """Engineer-weeks (low, high) to port ``n`` findings of one kind (module docstring)."""
    if entry.state == "supported":
        return effort.verify
    k = effort.kinds[entry.kind]
    extra = max(n - 1, 0)
    kloc = loc / 1000.0
    swap = [k.replace[i] + k.per_extra[i] * extra + k.replace_per_kloc[i] * kloc for i in (0, 1)]
    redo = [k.rewrite[i] + k.per_extra[i] * extra + k.rewrite_per_kloc[i] * kloc for i in (0, 1)]
    if entry.state == "replacement":
        return swap[0], swap[1]
    if entry.state == "blocker":
        return redo[0], redo[1]
    return swap[0], redo[1]


def _verdict(items: tuple[KindAssessment, ...]) -> tuple[str, str]:
    blockers = [i.kind for i in items if i.entry.state == "blocker"]
    unknown = [i.kind for i in items if i.entry.state == "unknown"]
    swaps = [i.kind for i in items if i.entry.state == "replacement"]
    if blockers:
        return "rewrite", f"must rewrite: {', '.join(blockers)}"
    if unknown:
        return "uncertain", f"no published support found for: {', '.join(unknown)}"
    if swaps:
        return "swap", f"ports by swapping: {', '.join(swaps)}"
    return "ready", "every CUDA tie found has a supported path; re-test only"


def assess(
    scan: ScanResult,
    stack: Stack,
    effort: EffortModel,
    *,
    model_family: str | None = None,
) -> TargetReport:
    """Map every kind found onto the stack's knowledge base and price the port."""
    items = []
    for kind, found in sorted(scan.by_kind().items()):
        entry = stack.entry(kind)
        n_code = sum(1 for f in found if not f.dependency)
        lo, hi = kind_effort(effort, entry, max(n_code, 1), sum(f.loc for f in found))
        items.append(
            KindAssessment(
                kind=kind, findings=tuple(found), entry=entry, weeks_low=lo, weeks_high=hi
            )
        )
    its = tuple(items)
    verdict, summary = _verdict(its)
    model = stack.model(model_family) if model_family else None
    if model is not None and model.status != "supported":
        summary += f"; model family '{model.family}' is {model.status} on {stack.stack}"
    return TargetReport(
        stack=stack,
        items=its,
        model=model,
        weeks_low=sum(i.weeks_low for i in its),
        weeks_high=sum(i.weeks_high for i in its),
        verdict=verdict,
        summary=summary,
    )

"""Fleet planning: the cheapest mix of chips that serves traffic within latency targets
(and the cheapest cluster to train a token budget by a deadline). Entry point: :func:`run_plan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..catalog.catalog import Catalog
from ..economics.pricebook import PriceBook
from ..economics.sensitivity import SensitivityBar
from ..serving.workload import Requests
from .build import Inputs
from .planner import Progress, plan_fleet, prepare
from .result import FleetResult
from .sensitivity import fleet_tornado
from .spec import PlanSpec, parse_spec
from .training import TrainingResult, plan_training

__all__ = ["PlanOutcome", "PlanSpec", "parse_spec", "run_plan"]


@dataclass(frozen=True, kw_only=True)
class PlanOutcome:
    spec: PlanSpec
    fleet: FleetResult | None
    training: TrainingResult | None
    inputs: Inputs | None
    """the evaluated candidates (for sensitivity re-plans); None for training-only specs"""
    sensitivity: tuple[SensitivityBar, ...] | None = None
    """fleet USD/h with one input (traffic, utilisation, targets, chosen chips' prices) at each
    end of its range, widest swing first; computed when ``run_plan(sensitivity=True)``"""


def run_plan(
    spec: PlanSpec,
    catalog: Catalog,
    progress: Progress | None = None,
    *,
    book: PriceBook | None = None,
    traces: Mapping[str, Requests] | None = None,
    sensitivity: bool = False,
) -> PlanOutcome:
    """Plan the serving fleet (if the spec has workloads) and the training run (if it has one);
    the spec's chip and model ids resolve through ``catalog``, its trace paths through
    ``traces`` (read by the edge); ``book`` is the run's price book (default: the packaged
    one). ``sensitivity``: also re-plan with each input at both ends of its range (the tornado;
    costs a few solves)."""
    inputs = prepare(spec, catalog, progress, book=book, traces=traces) if spec.workloads else None
    fleet = plan_fleet(inputs, progress) if inputs is not None else None
    training = (
        plan_training(spec, catalog, progress, book=book) if spec.training is not None else None
    )
    bars = None
    if sensitivity and inputs is not None and fleet is not None:
        bars = tuple(fleet_tornado(inputs, list(fleet.chips)))
    return PlanOutcome(spec=spec, fleet=fleet, training=training, inputs=inputs, sensitivity=bars)

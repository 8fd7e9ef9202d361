"""Fleet planning: the cheapest mix of chips that serves traffic within latency targets
(and the cheapest cluster to train a token budget by a deadline). Entry point: :func:`run_plan`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..economics.pricebook import PriceBook
from .build import Inputs
from .planner import Progress, plan_fleet, prepare
from .result import FleetResult
from .spec import PlanSpec, load_spec
from .training import TrainingResult, plan_training

__all__ = ["PlanOutcome", "PlanSpec", "load_spec", "run_plan"]


@dataclass(frozen=True, kw_only=True)
class PlanOutcome:
    spec: PlanSpec
    fleet: FleetResult | None
    training: TrainingResult | None
    inputs: Inputs | None
    """the evaluated candidates (for sensitivity re-plans); None for training-only specs"""


def run_plan(
    spec: PlanSpec, progress: Progress | None = None, book: PriceBook | None = None
) -> PlanOutcome:
    """Plan the serving fleet (if the spec has workloads) and the training run (if it has one);
    ``book`` is the run's price book (default: the packaged one)."""
    inputs = prepare(spec, progress, book=book) if spec.workloads else None
    fleet = plan_fleet(spec, progress, inputs=inputs) if inputs is not None else None
    training = plan_training(spec, progress, book=book) if spec.training is not None else None
    return PlanOutcome(spec=spec, fleet=fleet, training=training, inputs=inputs)

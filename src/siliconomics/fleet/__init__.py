"""Fleet planning: the cheapest mix of chips that serves traffic within latency targets
(and the cheapest cluster to train a token budget by a deadline). Entry point: :func:`run_plan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..catalog.catalog import Catalog
from ..economics.pricebook import PriceBook
from ..economics.sensitivity import SensitivityBar
from ..serving.workload import Requests
from .build import Inputs
from .multiplan import ProfilePlan, plan_profile
from .planner import Progress, plan_fleet, prepare
from .replay import Replay, replay
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
    profile: ProfilePlan | None = None
    """with a traffic profile: the committed + burst plan over the horizon"""
    replay: Replay | None = None
    """with a traffic profile: the plan replayed hour by hour in the simulator"""


def run_plan(
    spec: PlanSpec,
    catalog: Catalog,
    progress: Progress | None = None,
    *,
    book: PriceBook | None = None,
    traces: Mapping[str, Requests] | None = None,
    sensitivity: bool = False,
    arrivals: NDArray[np.float64] | None = None,
    replay_hours: range | None = None,
) -> PlanOutcome:
    """Plan the serving fleet (if the spec has workloads) and the training run (if it has one);
    the spec's chip and model ids resolve through ``catalog``, its trace paths through
    ``traces`` (read by the edge); ``book`` is the run's price book (default: the packaged
    one). ``sensitivity``: also re-plan with each input at both ends of its range (the tornado;
    costs a few solves). A spec with a ``profile`` gets the multi-period plan instead of the
    steady one (``arrivals``: the profile trace's arrival times, read by the edge; default:
    ``traces[profile.trace]``), replayed
    in the simulator over ``replay_hours`` of a week (default: every 3rd hour)."""
    if spec.profile is not None:
        trace = spec.profile.trace
        if arrivals is None and trace is not None and traces and trace in traces:
            arrivals = traces[trace].arrival_s
        pp = plan_profile(spec, catalog, progress, book=book, traces=traces, arrivals=arrivals)
        if progress:
            progress("replay in the simulator", 0, 1)
        rp = replay(pp, hours=replay_hours or range(0, 168, 3))
        return PlanOutcome(spec=spec, fleet=None, training=None, inputs=None, profile=pp, replay=rp)
    inputs = prepare(spec, catalog, progress, book=book, traces=traces) if spec.workloads else None
    fleet = plan_fleet(inputs, progress) if inputs is not None else None
    training = (
        plan_training(spec, catalog, progress, book=book) if spec.training is not None else None
    )
    bars = None
    if sensitivity and inputs is not None and fleet is not None:
        bars = tuple(fleet_tornado(inputs, list(fleet.chips)))
    return PlanOutcome(spec=spec, fleet=fleet, training=training, inputs=inputs, sensitivity=bars)

"""Training: parallel plans, memory, step time, MFU, plan search, time and cost to train."""

from .estimate import TrainCost, TrainEstimate, estimate_training, time_and_cost_to_train
from .plan import TrainPlan, parse_plan
from .search import search_plans
from .step import Overlap

__all__ = [
    "Overlap",
    "TrainCost",
    "TrainEstimate",
    "TrainPlan",
    "estimate_training",
    "parse_plan",
    "search_plans",
    "time_and_cost_to_train",
]

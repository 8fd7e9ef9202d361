"""One HiGHS solve of a :class:`.formulation.Model`: through highspy when it is installed (a
warm start and HiGHS's MIP options), else through scipy.optimize.milp (same solver, no warm
start)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .formulation import Model

F = NDArray[np.float64]
INF = 1e30
OPTIONS: dict[str, Any] = {
    "presolve": "off",
    "mip_heuristic_effort": 0.0,
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_rens": False,
}
"""HiGHS settings for these small programs: presolve and the root heuristics cost more than
they save (measured on benchmarks/bench_plan.py; the optimum is the same)"""


@dataclass(frozen=True, kw_only=True)
class Outcome:
    x: F | None
    """column values; None when infeasible (or no fleet found within the limit)"""
    optimal: bool
    """False: stopped at the time limit with its best fleet so far"""
    bound: float
    """proven lower bound on the objective (nan when unknown)"""


def _highspy() -> Any:
    try:
        from highspy import _core
    except ImportError:
        return None
    return _core if hasattr(_core, "_Highs") else None


def run(m: Model, *, gap: float, time_limit_s: float, start: dict[int, float] | None) -> Outcome:
    """Solve ``m``; ``start``: values of some integer columns of a fleet believed feasible
    (HiGHS completes it by an LP and starts from it when it is)."""
    core = _highspy()
    if core is None:
        return _scipy(m, gap=gap, time_limit_s=time_limit_s)
    h = core._Highs()  # the bare solver: highspy.Highs prints a banner on stdout
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", gap)
    h.setOptionValue("time_limit", float(time_limit_s))
    for k, v in OPTIONS.items():
        h.setOptionValue(k, v)
    h.passModel(_lp(core, m))
    if start:
        idx = np.fromiter(start, dtype=np.int32)
        h.setSolution(len(idx), idx, np.fromiter(start.values(), dtype=np.float64))
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    if info.primal_solution_status != core.SolutionStatus.kSolutionStatusFeasible:
        return Outcome(x=None, optimal=False, bound=float("nan"))
    return Outcome(
        x=np.asarray(h.getSolution().col_value, dtype=np.float64),
        optimal=status == core.HighsModelStatus.kOptimal,
        bound=float(info.mip_dual_bound),
    )


def _lp(core: Any, m: Model) -> Any:
    n, nrow = m.cost.size, m.lo.size
    by_col = m.csc()
    if by_col is None:  # repeated entries: scipy sums them
        a = m.matrix.tocsc()
        by_col = (a.indptr, a.indices, a.data)
    starts, index, value = by_col
    lp = core.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = nrow
    lp.col_cost_ = m.cost
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = np.minimum(m.upper, INF)
    lp.row_lower_ = np.maximum(m.lo, -INF)
    lp.row_upper_ = np.minimum(m.hi, INF)
    lp.a_matrix_.format_ = core.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = n
    lp.a_matrix_.num_row_ = nrow
    lp.a_matrix_.start_ = starts
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    kinds = (core.HighsVarType.kContinuous, core.HighsVarType.kInteger)
    lp.integrality_ = [kinds[int(i)] for i in m.integrality]
    return lp


def _scipy(m: Model, *, gap: float, time_limit_s: float) -> Outcome:
    from scipy.optimize import Bounds, LinearConstraint, milp

    res = milp(
        m.cost,
        constraints=[LinearConstraint(m.matrix, m.lo, m.hi)],
        integrality=m.integrality,
        bounds=Bounds(np.zeros(m.cost.size), m.upper),
        options={"time_limit": time_limit_s, "mip_rel_gap": gap},
    )
    if res.x is None or res.status not in (0, 1):
        return Outcome(x=None, optimal=False, bound=float("nan"))
    bound = getattr(res, "mip_dual_bound", None)
    return Outcome(
        x=np.asarray(res.x, dtype=np.float64),
        optimal=res.status == 0,
        bound=float("nan") if bound is None else float(bound),
    )

"""The planner's constraint matrix handed to HiGHS by columns, built with numpy, is exactly
what scipy's ``coo -> csr -> csc`` conversion gives (the path taken before; scipy is no longer
imported for it)."""

from __future__ import annotations

import numpy as np
import pytest

from siliconomics.fleet import milp
from siliconomics.fleet.formulation import Model
from siliconomics.fleet.planner import prepare
from siliconomics.fleet.solve import solve_at
from siliconomics.fleet.spec import parse_spec
from siliconomics.resolve import packaged

CHAT = {
    "model": "llama-3.1-8b",
    "rate_rps": 20,
    "input": {"mean": 800, "sigma": 0.9, "max": 8000},
    "output": {"mean": 200, "sigma": 0.6, "max": 1000},
    "slo": {"ttft": "2s", "tpot": "60ms", "percentile": 99},
}


def _same(m: Model) -> None:
    ref = m.matrix.tocsc()
    got = m.csc()
    assert got is not None
    starts, index, value = got
    assert np.array_equal(starts, ref.indptr)
    assert np.array_equal(index, ref.indices)
    assert np.array_equal(value, ref.data)  # bit for bit, explicit zeros included


@pytest.mark.parametrize("disagg", ["off", "auto"])
def test_columns_equal_scipy(disagg: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Model] = []
    inner = milp.assemble

    def spy(*a, **kw):  # type: ignore[no-untyped-def]
        m = inner(*a, **kw)
        seen.append(m)
        return m

    monkeypatch.setattr(milp, "assemble", spy)
    spec = parse_spec(
        {"chips": ["l40s", "h100-sxm", "tpu-v6e"], "workloads": [CHAT], "disaggregation": disagg}
    )
    inp = prepare(spec, packaged())
    solve_at(inp, 1.0, set(inp.offers))
    assert seen
    for m in seen:
        _same(m)


def test_repeated_entries_are_left_to_scipy() -> None:
    m = Model(
        cost=np.ones(2),
        upper=np.ones(2),
        integrality=np.zeros(2),
        rows=np.array([0, 0, 1]),
        cols=np.array([1, 1, 0]),
        vals=np.array([1.0, 2.0, 0.0]),
        lo=np.zeros(2),
        hi=np.ones(2),
    )
    assert m.csc() is None
    assert m.matrix.tocsc()[0, 1] == 3.0

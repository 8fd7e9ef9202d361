"""DuckDB over a results dataset: raw SQL and named summaries.

Views defined on every connection (docs/SWEEPS.md):

* ``points``: one row per point, the columns of :func:`.store.schema`;
* ``outputs``: one row per (point, numeric output): ``run_id, study, point_id, inputs, output,
  value, low, high, status``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SiliconomicsError
from .study import Objective

SUMMARIES = ("runs", "errors", "best-chip", "objective")
DEFAULT_METRIC = "usd_per_million_output_tokens"


@dataclass(frozen=True, kw_only=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:
        raise SiliconomicsError("results need duckdb: pip install 'siliconomics[sweep]'") from None
    return duckdb


def lit(s: str) -> str:
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def ident(s: str) -> str:
    """A SQL identifier."""
    return '"' + s.replace('"', '""') + '"'


def connect(dataset: Path) -> Any:
    """A DuckDB connection with the ``points`` and ``outputs`` views over ``dataset``."""
    duckdb = _duckdb()
    if not dataset.is_dir():
        raise SiliconomicsError(f"results dataset '{dataset}': no such folder")
    if not any(dataset.glob("run_id=*/part-*.parquet")):
        raise SiliconomicsError(
            f"results dataset '{dataset}': no results yet (run 'siliconomics sweep')"
        )
    con = duckdb.connect()
    glob = lit(str(dataset / "run_id=*" / "part-*.parquet"))
    con.execute(
        f"CREATE VIEW points AS SELECT * FROM read_parquet({glob}, hive_partitioning=false)"
    )
    con.execute(
        "CREATE VIEW outputs AS SELECT p.run_id, p.study, p.point_id, p.inputs, p.status, "
        "e.key AS output, e.value AS value, p.low[e.key] AS low, p.high[e.key] AS high "
        "FROM points p, UNNEST(map_entries(p.outputs)) AS t(e)"
    )
    return con


def sql(con: Any, text: str) -> Table:
    """Run one SQL statement; its result as a :class:`Table`."""
    duckdb = _duckdb()
    try:
        rel = con.execute(text)
        cols = tuple(d[0] for d in rel.description or ())
        return Table(columns=cols, rows=tuple(tuple(r) for r in rel.fetchall()))
    except duckdb.Error as e:
        raise SiliconomicsError(f"--sql: {' '.join(str(e).split())}") from None


def varied_inputs(con: Any, run_id: str | None) -> list[str]:
    """Inputs that take more than one value in the run (or the dataset), seeds excepted."""
    where = _run_filter(run_id)
    keys = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT unnest(map_keys(inputs)) AS k FROM points {where} ORDER BY k"
        ).fetchall()
    ]
    keys = [k for k in keys if k != "seed"]
    if not keys:
        return []
    counts = ", ".join(f"count(DISTINCT inputs[{lit(k)}])" for k in keys)
    n = con.execute(f"SELECT {counts} FROM points {where}").fetchone()
    return [k for k, c in zip(keys, n, strict=True) if c > 1]


def objective_sql(obj: Objective, run_id: str | None, show: Sequence[str] = ()) -> str:
    """The best ok point per group of ``obj.per``, within ``obj.subject_to``; ``show``:
    inputs given a column each (the others stay in the ``inputs`` JSON column)."""
    m = lit(obj.metric)
    where = ["status = 'ok'", f"outputs[{m}] IS NOT NULL"]
    if run_id:
        where.append(f"run_id = {lit(run_id)}")
    for name, b in obj.subject_to.items():
        if b.max is not None:
            where.append(f"outputs[{lit(name)}] <= {float(b.max)!r}")
        if b.min is not None:
            where.append(f"outputs[{lit(name)}] >= {float(b.min)!r}")
    per = [f"inputs[{lit(k)}]" for k in obj.per]
    part = f"PARTITION BY run_id, {', '.join(per)}" if per else "PARTITION BY run_id"
    order = "DESC" if obj.descending else "ASC"
    cols = list(dict.fromkeys([*obj.per, *show]))
    sel = ", ".join(f"inputs[{lit(k)}] AS {ident(k)}" for k in cols)
    return (
        f"SELECT run_id, {sel + ', ' if sel else ''}point_id, "
        f"outputs[{m}] AS {ident(obj.metric)}, low[{m}] AS low, high[{m}] AS high "
        f"FROM points WHERE {' AND '.join(where)} "
        f"QUALIFY row_number() OVER ({part} ORDER BY outputs[{m}] {order}, point_id) = 1 "
        f"ORDER BY run_id{', ' + ', '.join(ident(k) for k in obj.per) if per else ''}"
    )


def _run_filter(run_id: str | None) -> str:
    return f"WHERE run_id = {lit(run_id)}" if run_id else ""


def summary(
    con: Any,
    name: str,
    *,
    run_id: str | None = None,
    metric: str = DEFAULT_METRIC,
    objective: Objective | None = None,
) -> Table:
    """A named summary: ``runs`` (points and errors per run), ``errors`` (failed points),
    ``best-chip`` (per model, the chip of the ok point with the lowest ``metric``),
    ``objective`` (the study's objective, or ``objective`` given here)."""
    if name == "runs":
        return sql(
            con,
            "SELECT run_id, any_value(study) AS study, any_value(command) AS command, "
            "count(*) AS points, count(*) FILTER (status = 'ok') AS ok, "
            "count(*) FILTER (status <> 'ok') AS errors, any_value(calibration) AS calibration "
            f"FROM points {_run_filter(run_id)} GROUP BY run_id ORDER BY run_id",
        )
    if name == "errors":
        where = _run_filter(run_id)
        where = (where + " AND" if where else "WHERE") + " status <> 'ok'"
        return sql(
            con,
            f"SELECT run_id, point_id, inputs_json AS inputs, error FROM points {where} "
            "ORDER BY run_id, point_id",
        )
    show = varied_inputs(con, run_id)
    if name == "best-chip":
        best = Objective(minimize=metric, per=("model",))
        return sql(con, objective_sql(best, run_id, ["chip", *show]))
    if name == "objective":
        if objective is None:
            raise SiliconomicsError("--summary objective: the study of this run has no objective")
        return sql(con, objective_sql(objective, run_id, show))
    raise SiliconomicsError(f"--summary '{name}': allowed: {', '.join(SUMMARIES)}")


def run_ids(con: Any) -> Sequence[str]:
    return [r[0] for r in con.execute("SELECT DISTINCT run_id FROM points ORDER BY 1").fetchall()]

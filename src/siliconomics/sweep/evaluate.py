"""Evaluate a chunk of points: one call of the public API per point, except estimate points that
differ only in batch and lengths: one ``api.estimate`` call for the first, and one vectorised
evaluation of the others with what that call resolved.

What a worker runs (in this process, a pool process or a Ray task): it takes plain data and
returns plain data (dicts of numbers and text), so the result is the same wherever it runs.
A point that raises is returned with its error; it does not stop the chunk.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SiliconomicsError
from .study import COMMANDS, SPEC_PREFIX

VECTOR_KEYS = ("batch", "input_len", "output_len")
"""estimate inputs that ``api.estimate`` takes as arrays (one call for a whole group)"""
_VECTOR_DEFAULTS = {"batch": 1, "input_len": 1024, "output_len": 256}


@dataclass(frozen=True, kw_only=True)
class Task:
    """What a worker needs for one chunk (picklable plain data)."""

    command: str
    outputs: tuple[str, ...]
    points: tuple[tuple[int, str, dict[str, Any]], ...]
    """(index, key, inputs) of each point"""


def _lookup(d: Any, path: str) -> tuple[Any, Any, Any] | None:
    """(value, low, high) at a dotted ``path`` of ``d`` (list indices as numbers), or None."""
    parts = path.split(".")
    cur = d
    for part in parts[:-1]:
        cur = _child(cur, part)
        if cur is None:
            return None
    last = parts[-1]
    if not isinstance(cur, Mapping) or last not in cur:
        return None
    return cur[last], cur.get(f"{last}_low"), cur.get(f"{last}_high")


def _child(cur: Any, part: str) -> Any:
    if isinstance(cur, Mapping):
        return cur.get(part)
    if isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
        return cur[int(part)]
    return None


def primary_row(command: str, d: Mapping[str, Any]) -> Mapping[str, Any]:
    """The row a bare output name also resolves against: the best plan of train, the chosen
    pricing mode of tco, the fleet of plan."""
    if command == "train":
        plans = d.get("plans") or [{}]
        return plans[0] or {}
    if command == "tco":
        modes = [m for m in d.get("modes") or () if m.get("mode") == d.get("mode")]
        return modes[0] if modes else {}
    if command == "plan":
        return d.get("fleet") or {}
    return {}


def _number(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None if v is None else float(v)
    if isinstance(v, int | float):
        return float(v)
    return None


def extract(
    command: str, d: Mapping[str, Any], outputs: Sequence[str], i: int | None
) -> dict[str, Any]:
    """The requested outputs of one point from the command's ``--json`` dict ``d``; ``i``:
    the point's position when ``d`` came from a vectorised call (array values are lists)."""
    row = primary_row(command, d)
    values: dict[str, float | None] = {}
    low: dict[str, float | None] = {}
    high: dict[str, float | None] = {}
    labels: dict[str, str] = {}
    for name in outputs:
        hit = _lookup(d, name) or _lookup(row, name)
        if hit is None:
            values[name] = None
            continue
        v, lo, hi = (x[i] if i is not None and isinstance(x, list) else x for x in hit)
        if isinstance(v, str):
            labels[name] = v
            continue
        values[name], low[name], high[name] = _number(v), _number(lo), _number(hi)
    return {"outputs": values, "low": low, "high": high, "labels": labels}


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


def _set_path(raw: Any, path: str, value: Any) -> None:
    parts = path.split(".")
    cur = raw
    for part in parts[:-1]:
        cur = cur[int(part)] if isinstance(cur, list) else cur.setdefault(part, {})
    last = parts[-1]
    if isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value


def _plan_call(inputs_: dict[str, Any]) -> Any:
    """``api.plan`` with ``spec.<path>`` overrides applied to the spec file's fields."""
    import yaml

    from .. import api
    from ..cli.common import library_output_silenced
    from ..fleet.spec import parse_spec

    over = {k[len(SPEC_PREFIX) :]: v for k, v in inputs_.items() if k.startswith(SPEC_PREFIX)}
    rest = {k: v for k, v in inputs_.items() if not k.startswith(SPEC_PREFIX)}
    spec = rest.pop("spec", None)
    if spec is None:
        raise SiliconomicsError("plan study: give the input 'spec' (a plan spec file)")
    if over:
        p = Path(spec)
        raw = copy.deepcopy(yaml.safe_load(p.read_text(encoding="utf-8")))
        for path, v in over.items():
            try:
                _set_path(raw, path, v)
            except (KeyError, IndexError, ValueError, TypeError, AttributeError):
                raise SiliconomicsError(
                    f"study input 'spec.{path}': no such field in {p.name}"
                ) from None
        spec = parse_spec(raw, where=p.name, base_dir=p.parent)
    with library_output_silenced():
        return api.plan(spec, **rest)


def call_point(command: str, inputs_: dict[str, Any]) -> dict[str, Any]:
    if command == "plan":
        return dict(_plan_call(inputs_).to_dict())
    return dict(COMMANDS[command](**inputs_).to_dict())


def _row(index: int, key: str, inputs_: dict[str, Any], **rest: Any) -> dict[str, Any]:
    return {"point_id": index, "point_key": key, "inputs": inputs_, **rest}


def _one(task: Task, index: int, key: str, inputs_: dict[str, Any]) -> dict[str, Any]:
    try:
        d = call_point(task.command, inputs_)
    except Exception as e:  # a failing point is recorded, never lost
        return _row(index, key, inputs_, status="error", error=_one_line(e))
    return _row(
        index, key, inputs_, status="ok", error=None, **extract(task.command, d, task.outputs, None)
    )


def group_key(command: str, inputs_: Mapping[str, Any]) -> str:
    """Points with the same group key run in one vectorised call (estimate only)."""
    if command != "estimate":
        return ""
    # a static batch of 1 is the latency-target regime, any other point max-throughput: each
    # regime has its own error band, so they are never in one group
    latency = inputs_.get("mode", "static") == "static" and inputs_.get("batch", 1) == 1
    same = sorted((k, repr(v)) for k, v in inputs_.items() if k not in VECTOR_KEYS)
    return repr((latency, same))


def _vector(task: Task, group: list[tuple[int, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Points that differ only in batch and lengths: ``api.estimate`` for the first (smallest)
    point, then one vectorised evaluation of the rest with the model, device (its stack's
    profile), plan and price that call resolved; error bands are the first point's relative
    band (a band is one multiplicative interval per (chip family, stack, regime, model class),
    the same for the whole group). A point that does not fit splits the rest in halves, down to
    single API calls, so it costs a few extra calls and keeps its own error."""
    from .. import api

    i, k, inp = group[0]
    try:
        template = api.estimate(**inp)
        d0 = dict(template.to_dict())
    except Exception as e:  # the first point fails: recorded; the next one is the template
        first = _row(i, k, inp, status="error", error=_one_line(e))
        return [first, *(_vector(task, group[1:]) if len(group) > 1 else [])]
    first = _row(
        i, k, inp, status="ok", error=None, **extract(task.command, d0, task.outputs, None)
    )
    ratios = _band_ratios(d0, task.outputs)
    return [first, *_rest(task, template.value, ratios, group[1:])]


def _band_ratios(d: Mapping[str, Any], outputs: Sequence[str]) -> dict[str, tuple[float, float]]:
    out = {}
    for name in outputs:
        hit = _lookup(d, name)
        if hit and all(isinstance(x, int | float) and not isinstance(x, bool) for x in hit):
            v, lo, hi = (float(x) for x in hit)
            if v != 0:
                out[name] = (lo / v, hi / v)
    return out


def _rest(
    task: Task, a0: Any, ratios: dict[str, tuple[float, float]], group: list[Any]
) -> list[dict[str, Any]]:
    if len(group) <= 1:
        return [_one(task, *p) for p in group]
    try:
        d = _evaluate_like(a0, [p[2] for p in group])
    except Exception:
        half = len(group) // 2
        return _rest(task, a0, ratios, group[:half]) + _rest(task, a0, ratios, group[half:])
    rows = []
    for j, (i, k, inp) in enumerate(group):
        got = extract(task.command, d, task.outputs, j)
        for name, (rlo, rhi) in ratios.items():
            v = got["outputs"].get(name)
            if v is not None:
                got["low"][name], got["high"][name] = v * rlo, v * rhi
        rows.append(_row(i, k, inp, status="ok", error=None, **got))
    return rows


def _evaluate_like(a0: Any, points: list[dict[str, Any]]) -> dict[str, Any]:
    """What ``api.estimate`` computes for ``points`` (arrays of batch and lengths), with the
    model, device, plan, scenario, compiled buckets, speculative decoding and price of the API's
    result ``a0`` (an Assessment)."""
    import dataclasses

    from ..inference.estimate import estimate_max_throughput, estimate_static
    from ..report import serialize
    from ..search.assess import assess

    B, I, O = (
        np.asarray([p.get(k, _VECTOR_DEFAULTS[k]) for p in points], dtype=np.float64)
        for k in VECTOR_KEYS
    )
    e0 = a0.estimate
    if e0.scenario == "static_batch":
        est = estimate_static(e0.model, e0.device, e0.plan, B, I, O, shapes=e0.shapes, spec=e0.spec)
    else:
        est = estimate_max_throughput(
            e0.model, e0.device, e0.plan, I, O, batch_limit=B, spec=e0.spec
        )
    a = dataclasses.replace(assess(est, None), price=a0.price)
    return dict(serialize.assessment_dict(a))


def _need(inputs_: Mapping[str, Any]) -> float:
    d = {**_VECTOR_DEFAULTS, **inputs_}
    return float(d["batch"]) * (float(d["input_len"]) + float(d["output_len"]))


def run_task(task: Task) -> list[dict[str, Any]]:
    """Every point of ``task``, in the task's order."""
    if task.command != "estimate":
        return [_one(task, *p) for p in task.points]
    groups: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
    for p in task.points:
        groups.setdefault(group_key(task.command, p[2]), []).append(p)
    rows: dict[int, dict[str, Any]] = {}
    for g in groups.values():
        # smallest memory need first: points that do not fit sit together at the end, so
        # the halving in _vector isolates them in a few calls
        g.sort(key=lambda p: (_need(p[2]), p[0]))
        out = _vector(task, g)
        rows.update((r["point_id"], r) for r in out)
    return [rows[p[0]] for p in task.points]

"""A study: which command, which inputs (a grid and/or a seeded random sample), which outputs,
and an optional objective. Read from YAML, checked once, expanded into numbered points.

Inputs are the keyword parameters of the public API function of the command
(:mod:`siliconomics.api`): their names and types come from its signature, so anything
``api.estimate`` accepts a study can sweep. Chip and model ids (or files) are resolved once
with :mod:`siliconomics.resolve`, durations with :mod:`siliconomics.cli.inputs`.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydantic
from pydantic import BaseModel, ConfigDict, Field

from .. import api, resolve
from ..cli import inputs
from ..errors import SiliconomicsError

COMMANDS: dict[str, Callable[..., Any]] = {
    "estimate": api.estimate,
    "train": api.train,
    "simulate": api.simulate,
    "plan": api.plan,
    "tco": api.tco,
}
"""Command name -> the API function a point calls."""

DEFAULT_OUTPUTS: dict[str, tuple[str, ...]] = {
    "estimate": (
        "ttft_s",
        "tpot_s",
        "output_tokens_per_s",
        "output_tokens_per_s_per_chip",
        "usd_per_million_output_tokens",
        "joules_per_output_token",
        "decode_bound",
    ),
    "train": ("step_time_s", "mfu", "tokens_per_s", "days", "cost_usd", "energy_j", "plan.label"),
    "simulate": (
        "ttft_s.p99",
        "tpot_s.p99",
        "output_tokens_per_s",
        "goodput_requests_per_s",
        "goodput_fraction",
        "joules_per_output_token",
    ),
    "plan": ("usd_per_hour", "usd_per_million_output", "output_tokens_per_s", "power_w"),
    "tco": ("usd_per_chip_hour", "usd_per_m_output", "breakeven_utilisation"),
}

SPEC_PREFIX = "spec."
"""plan studies: ``spec.<field>[.<index>].<field>`` overrides a field of the plan spec file"""


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    uniform: tuple[float, float] | None = None
    """a float drawn uniformly in [lo, hi] (rounded for integer inputs)"""
    log_uniform: tuple[float, float] | None = None
    """a float whose logarithm is uniform in [log lo, log hi] (rounded for integer inputs)"""
    choice: tuple[Any, ...] | None = None
    """one of the listed values, each equally likely"""


class _Sample(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    n: int = Field(ge=1, le=10_000_000)
    """points drawn for each grid point"""
    over: dict[str, _Dist]
    """input -> distribution"""


class _Bound(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    max: float | None = None
    min: float | None = None


class Objective(BaseModel):
    """Pick the best ok point per group: minimise (or maximise) one output, subject to
    bounds on others (e.g. an SLO)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    minimize: str | None = None
    maximize: str | None = None
    per: tuple[str, ...] = ()
    """inputs to group by (e.g. ``[model]``): one best point per group"""
    subject_to: dict[str, _Bound] = Field(default_factory=dict)
    """output -> ``{max: ..., min: ...}``"""

    @property
    def metric(self) -> str:
        return self.minimize or self.maximize or ""

    @property
    def descending(self) -> bool:
        return self.maximize is not None


class StudyFile(BaseModel):
    """The YAML schema of a study (docs/SWEEPS.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    command: Literal["estimate", "train", "simulate", "plan", "tco"]
    name: str | None = None
    seed: int = Field(default=0, ge=0, lt=2**63)
    """seeds the random sample and every simulation that does not set its own ``seed``"""
    fixed: dict[str, Any] = Field(default_factory=dict)
    """inputs that are the same for every point"""
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    """input -> values; every combination is a point"""
    sample: _Sample | None = None
    outputs: tuple[str, ...] | None = None
    """output names (keys of the command's --json; dotted for nested ones); default per command"""
    objective: Objective | None = None
    chunk: int = Field(default=64, ge=1, le=100_000)
    """points per task sent to a worker (vectorised estimate batches are cut at this size)"""


@dataclass(frozen=True, kw_only=True)
class Point:
    """One point: its index in the study and the keyword arguments of its API call."""

    index: int
    inputs: dict[str, Any]
    key: str
    """hash of the canonical inputs (stable across runs and machines)"""


@dataclass(frozen=True, kw_only=True)
class Study:
    """A checked study, expanded."""

    name: str
    command: str
    seed: int
    chunk: int
    outputs: tuple[str, ...]
    objective: Objective | None
    points: tuple[Point, ...]
    base_dir: str
    """folder of the study file: relative files in inputs resolve against it"""
    raw: dict[str, Any]
    """the study as read (for the manifest)"""

    @property
    def study_hash(self) -> str:
        text = json.dumps(
            {"raw": self.raw, "keys": [p.key for p in self.points]}, sort_keys=True, default=str
        )
        return hashlib.sha256(text.encode()).hexdigest()


def canonical(inputs_: Mapping[str, Any]) -> str:
    return json.dumps(dict(inputs_), sort_keys=True, separators=(",", ":"), default=str)


def point_key(inputs_: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(inputs_).encode()).hexdigest()[:16]


def point_seed(study_seed: int, key: str) -> int:
    """The seed of a point: from the study seed and the point's inputs only (so it does not
    depend on the order, the chunking or the worker that runs it)."""
    h = hashlib.sha256(f"{study_seed}:{key}".encode()).digest()
    return int.from_bytes(h[:4], "little")


def _params(command: str) -> dict[str, Any]:
    fn = COMMANDS[command]
    hints = typing.get_type_hints(fn)
    sig = inspect.signature(fn)
    return {n: hints.get(n, Any) for n in sig.parameters}


def _check_value(command: str, params: dict[str, Any], name: str, value: Any, where: str) -> Any:
    if command == "plan" and name.startswith(SPEC_PREFIX):
        return value  # checked when the spec is parsed, per point
    if name not in params:
        allowed = ", ".join(sorted(params)) + (", spec.<field>" if command == "plan" else "")
        raise SiliconomicsError(
            f"study field '{where}': '{name}' is not an input of {command}; allowed: {allowed}"
        )
    try:
        checked = pydantic.TypeAdapter(params[name]).validate_python(value)
    except pydantic.ValidationError as e:
        msg = e.errors()[0]["msg"]
        raise SiliconomicsError(f"study field '{where}': {name}={value!r}: {msg}") from None
    if isinstance(value, float):
        inputs.finite(value, f"study field '{where}'")
    if name in ("ttft", "tpot") and isinstance(value, str):
        inputs.duration(value, f"study field '{where}'")
    if isinstance(value, str) and isinstance(checked, int | float):
        # YAML reads 1.0e12 as text; the API wants the number
        return (
            inputs.finite(float(checked), f"study field '{where}'")
            if isinstance(checked, float)
            else checked
        )
    return value


def _absolute(value: Any, base: Path) -> Any:
    """A relative chip/model/spec file name, made absolute against the study's folder."""
    if isinstance(value, str) and (
        value.endswith((".toml", ".json", ".yaml", ".yml")) or "/" in value
    ):
        p = Path(value)
        if not p.is_absolute() and (base / p).exists():
            return str((base / p).resolve())
    return value


def _resolve_ids(points: list[dict[str, Any]]) -> None:
    """Every chip and model named once, checked now (an unknown id fails before the sweep)."""
    for name, fn in (("chip", resolve.device), ("model", resolve.model)):
        for v in sorted({str(p[name]) for p in points if p.get(name) is not None}):
            try:
                fn(v)
            except SiliconomicsError as e:
                raise SiliconomicsError(f"study input '{name}': {e}") from None


def _draw(dist: _Dist, rng: np.random.Generator, integer: bool) -> Any:
    if dist.choice is not None:
        return dist.choice[int(rng.integers(len(dist.choice)))]
    if dist.uniform is not None:
        lo, hi = dist.uniform
        x = float(rng.uniform(lo, hi))
    elif dist.log_uniform is not None:
        lo, hi = dist.log_uniform
        if lo <= 0 or hi <= 0:
            raise SiliconomicsError("study field 'sample.over': log_uniform bounds must be > 0")
        x = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    else:
        raise SiliconomicsError("study field 'sample.over': give uniform, log_uniform or choice")
    return round(x) if integer else x


def _is_int(hint: Any) -> bool:
    args = typing.get_args(hint) or (hint,)
    return int in args and float not in args


def _expand(
    sf: StudyFile, fixed: dict[str, Any], grid: dict[str, list[Any]], params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every grid combination (in the order of the file), each with ``sample.n`` draws."""
    keys = list(grid)
    combos = list(itertools.product(*(grid[k] for k in keys))) or [()]
    rng = np.random.default_rng(sf.seed)
    out = []
    for combo in combos:
        base = {**fixed, **dict(zip(keys, combo, strict=True))}
        if sf.sample is None:
            out.append(base)
            continue
        for _ in range(sf.sample.n):
            drawn = {k: _draw(d, rng, _is_int(params.get(k))) for k, d in sf.sample.over.items()}
            out.append({**base, **drawn})
    return out


def load_study(path: Path) -> Study:
    """Read and check a study file (YAML), and expand it into points."""
    import yaml

    text = inputs.text_file(path, "study")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SiliconomicsError(
            f"{path.name}: not valid YAML: {' '.join(str(e).split())}"
        ) from None
    if not isinstance(raw, dict):
        raise SiliconomicsError(f"{path.name}: expected a mapping of fields at the top level")
    return make_study(raw, base_dir=path.parent, default_name=path.stem)


def _checked_inputs(
    sf: StudyFile, params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The fixed and grid inputs, each value checked against the API's parameter type."""
    c = sf.command
    fixed = {n: _check_value(c, params, n, v, f"fixed.{n}") for n, v in sf.fixed.items()}
    grid = {}
    for name, vs in sf.grid.items():
        if not vs:
            raise SiliconomicsError(f"study field 'grid.{name}': give at least one value")
        grid[name] = [_check_value(c, params, name, v, f"grid.{name}") for v in vs]
    for name, d in sf.sample.over.items() if sf.sample else ():
        for v in d.choice or ():
            _check_value(c, params, name, v, f"sample.over.{name}")
        if d.choice is None:
            _check_value(c, params, name, 1, f"sample.over.{name}")
    return fixed, grid


def make_study(raw: dict[str, Any], *, base_dir: Path, default_name: str = "study") -> Study:
    """Check ``raw`` (the parsed YAML of a study) and expand it."""
    try:
        sf = StudyFile.model_validate(raw)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise SiliconomicsError(f"study field '{loc}': {first['msg']}") from None
    params = _params(sf.command)
    fixed, grid = _checked_inputs(sf, params)
    sampled = set(sf.sample.over if sf.sample else ())
    both = (set(sf.fixed) & (set(sf.grid) | sampled)) | (set(sf.grid) & sampled)
    if both:
        raise SiliconomicsError(
            f"study input '{sorted(both)[0]}' is given twice (fixed, grid or sample); pick one"
        )
    if sf.objective is not None and not sf.objective.metric:
        raise SiliconomicsError("study field 'objective': give minimize or maximize")
    if sf.objective is not None and sf.objective.minimize and sf.objective.maximize:
        raise SiliconomicsError(
            "study field 'objective': minimize and maximize cannot be used together"
        )
    base = Path(base_dir)
    expanded = [
        {k: _absolute(v, base) for k, v in p.items()} for p in _expand(sf, fixed, grid, params)
    ]
    if sf.command == "simulate":
        for p in expanded:
            p.setdefault("seed", point_seed(sf.seed, point_key(p)))
    _resolve_ids(expanded)
    points = tuple(Point(index=i, inputs=p, key=point_key(p)) for i, p in enumerate(expanded))
    return Study(
        name=sf.name or default_name,
        command=sf.command,
        seed=sf.seed,
        chunk=sf.chunk,
        outputs=sf.outputs or DEFAULT_OUTPUTS[sf.command],
        objective=sf.objective,
        points=points,
        base_dir=str(base.resolve()),
        raw=json.loads(json.dumps(raw, default=str)),
    )

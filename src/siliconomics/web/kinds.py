"""The HTTP API's request models and runners, one per kind of work, derived from the public
Python API (:mod:`siliconomics.api`) so that both take the same inputs.

Each keyword of an ``api`` function whose type is plain JSON (numbers, text, booleans, a table
of numbers) becomes a field of the request model with the same name and default; chips and
models are catalog ids, checked here; anything that would name a server-side file (a path, a
catalog object, a calibration directory) is not exposed. A keyword added to the Python API
appears in the HTTP API with no edit here. Bad input raises :class:`SiliconomicsError` (or a
pydantic ``ValidationError``), which the app turns into a one-line 422.
"""

from __future__ import annotations

import inspect
import math
import tempfile
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from importlib import resources
from pathlib import Path, PurePath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, create_model

from .. import api, resolve
from ..cli.inputs import check_context
from ..errors import SiliconomicsError
from ..fleet.spec import PlanSpec, parse_spec
from .settings import Limits

Progress = Callable[[str, int, int], None]

KINDS = ("estimate", "compare", "train", "simulate", "plan", "tco", "validate")
"""Every kind of work the API runs (each is also a job kind)."""
JOB_ONLY = ("plan", "simulate", "validate")
"""Long work: ``POST /api/<kind>`` submits a job (202) instead of answering at once."""

_SIMPLE = (int, float, str, bool, type(None))
_EXCLUDED = {("plan", "chips"), ("plan", "models"), ("validate", "measured")}
"""Keywords taken differently: plan's extra chips/models are files (every catalog chip is
already known) and validate's measured file is a packaged corpus name or uploaded text."""

_BOUNDS: dict[str, dict[str, float]] = {
    **{
        k: {"ge": 1}
        for k in (
            "tp",
            "pp",
            "ep",
            "dp",
            "replicas",
            "batch",
            "global_batch",
            "seq_len",
            "top",
            "max_seqs",
            "lora_rank",
        )
    },
    "input_len": {"ge": 1, "le": 10_000_000},
    "output_len": {"ge": 1, "le": 10_000_000},
    "utilisation": {"gt": 0, "le": 1},
    "level": {"ge": 0.5, "le": 0.99},
    "tokens": {"gt": 0},
    "rate": {"gt": 0},
    "seed": {"ge": 0},
}
"""Range checks of the CLI's options (``typer.Option(min=...)``), by keyword name."""


def _is_chip_like(tp: Any) -> bool:
    return tp == resolve.ChipLike or set(typing.get_args(resolve.ChipLike)) <= set(
        typing.get_args(tp)
    )


def _is_model_like(tp: Any) -> bool:
    return set(typing.get_args(resolve.ModelLike)) <= set(typing.get_args(tp))


def _json_type(tp: Any) -> Any | None:
    """The JSON-side type of an API keyword's type, or None when it is not exposed."""
    if tp in _SIMPLE:
        return tp
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if all(a in _SIMPLE for a in args):
            return tp
        if any(a is Path or a is PurePath for a in args):
            return None  # text there names a file: never exposed
        mapped = [m for a in args if a is not type(None) and (m := _json_type(a)) is not None]
        if len(mapped) == 1:  # e.g. a pricing mode of ``str | Pricing``: the text part
            return mapped[0] | None if type(None) in args else mapped[0]
        return None
    if origin is typing.Literal:
        return tp if all(isinstance(a, _SIMPLE) for a in typing.get_args(tp)) else None
    if origin in (list, Sequence, typing.Sequence) and typing.get_args(tp)[0] in _SIMPLE:
        return list[typing.get_args(tp)[0]]  # type: ignore[misc]
    if origin in (Mapping, dict, typing.Mapping):
        k, v = typing.get_args(tp)
        return dict[k, v] if k is str and v in (int, float, str) else None  # type: ignore[valid-type]
    return None


def _field_type(kind: str, name: str, tp: Any) -> Any | None:
    """Chips and models are catalog ids; lists of chips are lists of ids."""
    if _is_chip_like(tp) or _is_model_like(tp):
        return str | None if type(None) in typing.get_args(tp) else str
    if typing.get_origin(tp) in (Iterable, typing.Iterable) or any(
        typing.get_origin(a) in (Iterable, typing.Iterable) for a in typing.get_args(tp)
    ):
        return list[str] | None
    return _json_type(tp)


def _fields(kind: str, fn: Callable[..., Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(fn)
    out: dict[str, Any] = {}
    for name, p in inspect.signature(fn).parameters.items():
        if (kind, name) in _EXCLUDED or name == "spec":
            continue
        tp = _field_type(kind, name, hints[name])
        if tp is None:
            continue
        default = ... if p.default is inspect.Parameter.empty else p.default
        if isinstance(default, tuple):
            default = list(default)
        out[name] = (tp, Field(default, **_BOUNDS.get(name, {})))  # type: ignore[call-overload]
    return out


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


def _model_for(kind: str) -> type[BaseModel]:
    fields = _fields(kind, getattr(api, kind))
    if kind == "plan":
        fields["spec"] = (
            dict[str, Any] | str,
            Field(description="the plan spec: a mapping of its fields, or YAML/TOML text"),
        )
    if kind == "validate":
        fields["corpus"] = (
            str | None,
            Field(default=None, description="a packaged corpus file name (GET /api/corpus)"),
        )
        fields["csv"] = (
            str | None,
            Field(default=None, description="the text of a measured-results CSV (SCHEMA.md)"),
        )
    if "input_len" in fields and "model" in fields and "beyond_context" not in fields:
        fields["beyond_context"] = (
            bool,
            Field(default=False, description="allow input+output past the model's context"),
        )
    model: type[BaseModel] = create_model(f"{kind.capitalize()}Request", __base__=_Base, **fields)
    return model


REQUESTS: dict[str, type[BaseModel]] = {k: _model_for(k) for k in KINDS}
"""The request model of each kind (shown in the OpenAPI schema)."""


# --- checks at the edge: ids, limits -------------------------------------------------------


def _chip_id(value: str, field: str) -> str:
    cat = resolve.packaged()
    if value not in cat.chips:
        # never a path: a client names catalog ids only
        try:
            cat.chip(value)
        except SiliconomicsError as e:
            raise SiliconomicsError(f"field '{field}': {e}") from None
    return value


def _model_id(value: str, field: str) -> str:
    cat = resolve.packaged()
    if value not in cat.models:
        try:
            cat.model(value)
        except SiliconomicsError as e:
            raise SiliconomicsError(f"field '{field}': {e}") from None
    return value


def check(kind: str, req: BaseModel, limits: Limits) -> dict[str, Any]:
    """The keyword arguments of ``api.<kind>`` for a parsed request, after checking ids,
    contexts and work limits; raises SiliconomicsError naming the field."""
    kw = req.model_dump()
    for name in ("chip", "model"):
        if isinstance(kw.get(name), str):
            (_chip_id if name == "chip" else _model_id)(kw[name], name)
    chips = kw.get("chips")
    if isinstance(chips, list):
        if len(chips) > limits.max_chips:
            raise SiliconomicsError(
                f"field 'chips': {len(chips)} chips is more than the {limits.max_chips} allowed "
                "per request (omit it for every catalog chip)"
            )
        for i, c in enumerate(chips):
            _chip_id(c, f"chips.{i}")
    if kind == "train" and kw.get("chips", 1) > limits.max_train_chips:
        raise SiliconomicsError(
            f"field 'chips': at most {limits.max_train_chips:,} chips per training job"
        )
    if (kw.get("top") or 0) > limits.max_top:
        raise SiliconomicsError(f"field 'top': at most {limits.max_top}")
    if kind == "simulate":
        _check_simulate(kw, limits)
    if kind == "plan":
        kw["spec"] = _plan_spec(kw["spec"], limits)
    if kind == "validate":
        kw.update(_measured(kw.pop("corpus"), kw.pop("csv"), limits))
    allow = kw.pop("beyond_context", False)
    model, lin, lout = kw.get("model"), kw.get("input_len"), kw.get("output_len")
    if isinstance(model, str) and isinstance(lin, int) and isinstance(lout, int):
        try:
            check_context(resolve.model(model), lin, lout, allow=allow)
        except SiliconomicsError as e:
            msg = str(e).replace("--input", "input_len").replace("--output", "output_len")
            raise SiliconomicsError(
                msg.replace("--beyond-context", "beyond_context: true")
            ) from None
    return kw


def _check_simulate(kw: dict[str, Any], limits: Limits) -> None:
    n = kw.get("requests")  # None: the library's default (1,000)
    if n is not None and n > limits.max_sim_requests:
        raise SiliconomicsError(
            f"field 'requests': {n:,} is more than the {limits.max_sim_requests:,} allowed"
        )
    if n is not None and n < 1:
        raise SiliconomicsError("field 'requests': must be >= 1")


def _plan_spec(spec: dict[str, Any] | str, limits: Limits) -> dict[str, Any]:
    """A plan spec as a mapping, refused when it names a server-side file (a trace, a chip or
    model file, a project to port-check) or is bigger than the work limit."""
    raw: Any = spec
    if isinstance(spec, str):
        raw = _parse_text(spec)
    ps: PlanSpec = parse_spec(raw, where="field 'spec'")
    for i, w in enumerate(ps.workloads):
        if w.trace is not None:
            raise SiliconomicsError(
                f"field 'spec.workloads.{i}.trace': traces are files on the server; the HTTP "
                "API takes lengths ('input'/'output') and 'rate_rps' instead"
            )
        _model_id(w.model, f"spec.workloads.{i}.model")
    if ps.training is not None:
        _model_id(ps.training.model, "spec.training.model")
    for i, c in enumerate(ps.chips or ()):
        _chip_id(c, f"spec.chips.{i}")
    if ps.migration is not None and ps.migration.port_check is not None:
        raise SiliconomicsError(
            "field 'spec.migration.port_check': names a project on the server; give 'weeks'"
        )
    n_chips = len(ps.chips) if ps.chips is not None else len(resolve.packaged().chips)
    cells = max(1, len(ps.workloads)) * n_chips
    if cells > limits.max_plan_cells:
        raise SiliconomicsError(
            f"field 'spec': {len(ps.workloads)} workloads x {n_chips} chips = {cells} cells is "
            f"more than the {limits.max_plan_cells} allowed; name fewer 'chips'"
        )
    return dict(raw)


def _parse_text(text: str) -> dict[str, Any]:
    """A spec written as YAML (or JSON, a subset of it) or TOML."""
    import tomllib

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        problem = f"not valid YAML: {_one_line(str(e))}"
        raw = None
    else:
        problem = "expected a mapping of plan fields (YAML, TOML or JSON)"
    if isinstance(raw, dict):
        return raw
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        raise SiliconomicsError(f"field 'spec': {problem}") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- measured files: packaged corpus names or uploaded text --------------------------------


def corpus_files() -> list[str]:
    """Names of the packaged measured-results files (the validation corpus)."""
    root = resources.files("siliconomics.measured") / "corpus"
    return sorted(
        p.name for p in root.iterdir() if p.name.endswith(".csv") and p.name != "models.csv"
    )


def _measured(corpus: str | None, csv: str | None, limits: Limits) -> dict[str, Any]:
    if (corpus is None) == (csv is None):
        raise SiliconomicsError("field 'corpus': give exactly one of 'corpus' and 'csv'")
    if corpus is not None and corpus not in corpus_files():
        raise SiliconomicsError(
            f"field 'corpus': '{corpus}' is not a packaged corpus file; allowed: "
            + ", ".join(corpus_files())
        )
    if csv is not None:
        rows = csv.count("\n")
        if rows > limits.max_validate_rows:
            raise SiliconomicsError(
                f"field 'csv': {rows:,} lines is more than the {limits.max_validate_rows:,} allowed"
            )
    return {"corpus": corpus, "csv": csv}


# --- running ---------------------------------------------------------------------------------


def run(kind: str, kw: Mapping[str, Any], progress: Progress | None = None) -> dict[str, Any]:
    """Run one checked request (:func:`check`) and return the ``--json`` dict of the result,
    with non-finite numbers as null (strict JSON)."""
    if kind not in KINDS:
        raise SiliconomicsError(f"kind '{kind}': allowed: {', '.join(KINDS)}")
    tick = progress or (lambda stage, done, total: None)
    tick(kind, 0, 1)
    kw = dict(kw)
    if kind == "validate":
        d = _validate(kw)
    elif kind == "plan":
        d = _plan(kw, tick)
    else:
        d = getattr(api, kind)(**kw).to_dict()
    tick(kind, 1, 1)
    return clean(d)


def _plan(kw: dict[str, Any], tick: Progress) -> dict[str, Any]:
    if "progress" in inspect.signature(api.plan).parameters:
        kw["progress"] = tick
    r = api.plan(kw.pop("spec"), **kw)
    d = r.to_dict()
    sens = getattr(r.value, "sensitivity", None)
    if "sensitivity" not in d and sens:
        d["sensitivity"] = [asdict(b) for b in sens if is_dataclass(b)]  # type: ignore[arg-type]
    return d


def _validate(kw: dict[str, Any]) -> dict[str, Any]:
    corpus, csv = kw.pop("corpus"), kw.pop("csv")
    if corpus is not None:
        with resources.as_file(resources.files("siliconomics.measured") / "corpus") as root:
            return api.validate(Path(root) / corpus, **kw).to_dict()
    with tempfile.TemporaryDirectory(prefix="siliconomics-web-") as tmp:
        path = Path(tmp) / "measured.csv"  # a name the server chose, in a folder it owns
        path.write_text(csv, encoding="utf-8")
        return api.validate(path, **kw).to_dict()


def clean(obj: Any) -> Any:
    """``obj`` with NaN and infinities replaced by None, so it is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    return obj


@dataclass(frozen=True)
class Catalogs:
    """What the pages offer in their pickers."""

    chips: list[str]
    models: list[str]


def catalogs() -> Catalogs:
    cat = resolve.packaged()
    return Catalogs(chips=sorted(cat.chips), models=sorted(cat.models))

"""The knowledge base as data: one TOML per target stack (``porting/data/<stack>.toml``) and
the effort model (``porting/data/effort.toml``), validated here at load.

A stack entry says, for one finding kind, whether the stack supports it as is, through a named
replacement, or not at all (a blocker that must be rewritten), with the source it comes from
(URL and date) and a confidence. What no source settles stays ``unknown`` at low confidence.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import SiliconomicsError
from .findings import KINDS

STACKS = ("neuron", "tpu", "gaudi", "rocm")
Confidence = Literal["high", "medium", "low"]
T = TypeVar("T", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Entry(_Strict):
    """What one stack offers for one finding kind."""

    kind: str
    status: str
    """``supported``, ``replacement:<name>``, ``blocker`` or ``unknown``"""
    action: str
    """the replacement to use, or what must be rewritten"""
    source: str
    """the stack's documentation or release notes (URL); '' only for unknown"""
    date: str
    """date of the source (as the page gives it) or the date it was read"""
    confidence: Confidence

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in KINDS:
            raise ValueError(f"unknown finding kind '{v}'")
        return v

    @field_validator("status")
    @classmethod
    def _status(cls, v: str) -> str:
        ok = v in ("supported", "blocker", "unknown") or (
            v.startswith("replacement:") and len(v) > len("replacement:")
        )
        if not ok:
            raise ValueError("status must be supported, replacement:<name>, blocker or unknown")
        return v

    @property
    def state(self) -> str:
        """``supported`` / ``replacement`` / ``blocker`` / ``unknown``"""
        return self.status.split(":", 1)[0]

    @property
    def replacement(self) -> str:
        return self.status.split(":", 1)[1] if self.state == "replacement" else ""


class ModelSupport(_Strict):
    """Whether a model family (catalog ``family``) is on the stack's published model list."""

    family: str
    status: Literal["supported", "unsupported", "unknown"]
    via: str = ""
    """the library or list that supports it (e.g. NxD Inference, vLLM-gaudi validated models)"""
    source: str = ""
    date: str = ""
    confidence: Confidence = "low"


class Stack(_Strict):
    stack: str
    title: str
    components: str
    entries: tuple[Entry, ...]
    models: tuple[ModelSupport, ...] = ()

    def entry(self, kind: str) -> Entry:
        for e in self.entries:
            if e.kind == kind:
                return e
        return Entry(
            kind=kind,
            status="unknown",
            action="not in the knowledge base",
            source="",
            date="",
            confidence="low",
        )

    def model(self, family: str) -> ModelSupport:
        for m in self.models:
            if m.family == family:
                return m
        return ModelSupport(family=family, status="unknown")


class KindEffort(_Strict):
    """Engineer-weeks for one finding kind (low, high), see docs/PORTING.md."""

    replace: tuple[float, float]
    """swap to the named replacement, first occurrence"""
    rewrite: tuple[float, float]
    """rewrite for the target (a blocker), first occurrence"""
    per_extra: tuple[float, float] = (0.0, 0.0)
    """each further occurrence of the same kind"""
    replace_per_kloc: tuple[float, float] = (0.0, 0.0)
    rewrite_per_kloc: tuple[float, float] = (0.0, 0.0)
    """per 1000 lines of code behind the findings (CUDA sources)"""
    rationale: str


class EffortModel(_Strict):
    verify: tuple[float, float] = Field(description="a supported kind: re-test on the target")
    source: str
    kinds: dict[str, KindEffort]


def _read(name: str) -> dict[str, object]:
    path = resources.files("siliconomics.porting") / "data" / f"{name}.toml"
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _validate(schema: type[T], raw: object, where: str) -> T:
    try:
        return schema.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SiliconomicsError(f"{where}: {loc}: {first['msg']}") from None


@cache
def load_stack(name: str) -> Stack:
    """The packaged knowledge base of one target stack."""
    if name not in STACKS:
        raise SiliconomicsError(f"--target '{name}' is not a stack; allowed: {', '.join(STACKS)}")
    return _validate(Stack, _read(name), f"porting/data/{name}.toml")


@cache
def load_effort() -> EffortModel:
    return _validate(EffortModel, _read("effort"), "porting/data/effort.toml")

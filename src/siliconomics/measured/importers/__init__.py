"""Importers of measured results: one module per source format, one registry line each.

An importer turns a local copy of a public source (a results tree, a saved page, a CSV) into
rows of the normalized schema (``../shared/validation/SCHEMA.md``, columns :data:`COLUMNS`).
It never opens files itself: the edge hands it a :class:`SourceTree` over the local copy, so
importers are tested on small fixtures and re-running one on the same source gives the same rows.
Each row records its source (repository@commit:path or URL, with a date) and every derivation
in ``notes``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

COLUMNS: tuple[str, ...] = (
    "id", "kind", "scenario", "usable", "model", "chip", "n_chips", "replicas", "tp", "pp",
    "ep", "cp", "dp", "fsdp", "zero_stage", "virtual_pp", "micro_batch", "global_batch_seqs",
    "recompute", "train_method", "weight_dtype", "act_dtype", "kv_dtype", "batch", "input_len",
    "output_len", "seq_len", "length_dist", "metric", "percentile", "value", "slo_ttft_s",
    "slo_tpot_s", "slo_e2e_s", "inferred_fields", "software", "source", "notes",
)  # fmt: skip
"""The normalized schema's columns, in order (SCHEMA.md)."""

Row = dict[str, str]
"""One normalized row: column -> cell text ('' = not stated)."""


class SourceTree(Protocol):
    """Read-only view of a local copy of a source, provided by the edge."""

    label: str
    """how the source is cited in each row's ``source`` column (e.g. repo@commit)"""

    def list(self, pattern: str) -> Iterable[str]:
        """Relative paths matching a glob pattern (``**`` allowed), sorted."""
        ...

    def read(self, path: str) -> str:
        """Text of one file by relative path."""
        ...


@dataclass(frozen=True, kw_only=True)
class Importer:
    name: str
    """format id used on the command line"""
    description: str
    """what source the format reads and where to get a copy"""
    read: Callable[[SourceTree], list[Row]]
    """the importer: source -> normalized rows (deterministic order)"""


IMPORTERS: dict[str, Importer] = {}
"""Registry: format id -> importer. Adding a format is one module plus one line below."""


def register(imp: Importer) -> Importer:
    IMPORTERS[imp.name] = imp
    return imp


def complete(row: Row) -> Row:
    """The row with every schema column present (missing ones empty) and no extra column."""
    extra = set(row) - set(COLUMNS)
    if extra:
        raise ValueError(f"importer produced unknown columns: {sorted(extra)}")
    return {c: row.get(c, "") for c in COLUMNS}


# Registry lines (one per importer module):
from .gaudi_perf import IMPORTER as _gaudi_perf  # noqa: E402, F401
from .inferencex_perf import IMPORTER as _inferencex_perf  # noqa: E402, F401
from .jetstream_perf import IMPORTER as _jetstream_perf  # noqa: E402, F401
from .maxtext_perf import IMPORTER as _maxtext_perf  # noqa: E402, F401
from .mlperf_inference import IMPORTER as _mlperf_inference  # noqa: E402, F401
from .mlperf_training import IMPORTER as _mlperf_training  # noqa: E402, F401
from .nemo_perf import IMPORTER as _nemo_perf  # noqa: E402, F401
from .neuron_perf import IMPORTER as _neuron_perf  # noqa: E402, F401
from .rocm_perf import IMPORTER as _rocm_perf  # noqa: E402, F401
from .trtllm_perf import IMPORTER as _trtllm_perf  # noqa: E402, F401

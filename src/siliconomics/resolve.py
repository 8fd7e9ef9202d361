"""The edge that turns what a user typed into objects, once: ids, chip and model files,
measured-result files (used by the CLI, the Python API and the scripts).

* A **chip** is a catalog id (``h100-sxm``) or a TOML/JSON file in the catalog's chip schema
  (:class:`~siliconomics.catalog.schema.ChipSpec`, see ``examples/chips/``). The file names its
  efficiency family (``family = "nvidia-hopper"``: that profile applies) or embeds a profile
  in an ``[efficiency]`` table (schema :class:`~siliconomics.catalog.schema.EfficiencyProfile`;
  its ``family`` must be the chip's and must not be a packaged family).
* A **model** is a catalog id, a TOML/JSON file in the catalog's model schema
  (:class:`~siliconomics.catalog.schema.ModelSpec`), or a Hugging Face ``config.json`` (or a
  folder holding one).
* Below this module nothing looks an id up: the core gets a
  :class:`~siliconomics.ops.device.Device`, a ``ModelSpec`` or a
  :class:`~siliconomics.catalog.catalog.Catalog`.
"""

from __future__ import annotations

import csv
import json
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .catalog import registry
from .catalog.catalog import Catalog
from .catalog.parse import validate_as
from .catalog.schema import ChipSpec, EfficiencyProfile, ModelSpec
from .errors import SiliconomicsError
from .fleet.spec import PlanSpec, parse_spec
from .measured.rows import MeasuredRow, read_measured, read_models_csv
from .measured.training import TrainRow, read_training_rows
from .ops.device import Device
from .serving.traces import parse_trace_csv
from .serving.workload import Requests

ChipLike = str | Path | ChipSpec | Device
"""A chip id, a chip file, a ChipSpec (with its family's profile) or a ready Device."""
ModelLike = str | Path | ModelSpec
"""A model id, a model file (TOML/JSON ModelSpec or HF config.json) or a ModelSpec."""

_FILE_SUFFIXES = (".toml", ".json")


def packaged() -> Catalog:
    """The packaged catalog (chips, models, efficiency profiles, systems)."""
    return registry.packaged()


def _read_mapping(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise SiliconomicsError(f"{what} file '{path}' does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise SiliconomicsError(f"{path.name}: not valid {path.suffix[1:].upper()}: {e}") from None
    if not isinstance(raw, dict):
        raise SiliconomicsError(f"{path.name}: expected a table of fields at the top level")
    return raw


def _is_file_arg(value: str | Path) -> bool:
    return isinstance(value, Path) or value.endswith(_FILE_SUFFIXES) or "/" in value


def is_chip_file(value: str | Path) -> bool:
    """Whether ``value`` names an existing TOML/JSON file in the chip schema (it has the
    ``compute`` and ``memory`` tables of a chip)."""
    p = Path(value)
    if p.suffix not in _FILE_SUFFIXES or not p.is_file():
        return False
    try:
        raw = _read_mapping(p, "chip")
    except SiliconomicsError:
        return False
    return "compute" in raw and "memory" in raw


def load_chip_file(path: Path, catalog: Catalog | None = None) -> Device:
    """A chip described in a TOML/JSON file, with its efficiency profile: the embedded
    ``[efficiency]`` table, or the packaged profile of the family it names."""
    cat = catalog or packaged()
    raw = _read_mapping(path, "chip")
    eff_raw = raw.pop("efficiency", None)
    chip = validate_as(ChipSpec, raw, where=path.name)
    if eff_raw is None:
        if chip.family not in cat.profiles:
            raise SiliconomicsError(
                f"{path.name}: field 'family': '{chip.family}' is not a packaged efficiency "
                f"family ({', '.join(sorted(cat.profiles))}); name one, or embed a profile "
                "in an [efficiency] table"
            )
        return Device(chip=chip, eff=cat.profile_of(chip))
    if not isinstance(eff_raw, dict):
        raise SiliconomicsError(f"{path.name}: field 'efficiency' must be a table")
    eff = validate_as(EfficiencyProfile, {"family": chip.family, **eff_raw}, where=path.name)
    if eff.family != chip.family:
        raise SiliconomicsError(
            f"{path.name}: field 'efficiency.family' '{eff.family}' must equal the chip's "
            f"family '{chip.family}'"
        )
    if chip.family in cat.profiles:
        raise SiliconomicsError(
            f"{path.name}: field 'family': '{chip.family}' is a packaged efficiency family; "
            "an embedded [efficiency] table needs a family name of its own"
        )
    return Device(chip=chip, eff=eff)


def device(chip: ChipLike, catalog: Catalog | None = None) -> Device:
    """``chip`` (an id, a chip file, a ChipSpec or a Device) as a Device: the chip with its
    family's efficiency profile."""
    if isinstance(chip, Device):
        return chip
    cat = catalog or packaged()
    if isinstance(chip, ChipSpec):
        return Device(chip=chip, eff=cat.profile_of(chip))
    if _is_file_arg(chip) and str(chip) not in cat.chips:
        return load_chip_file(Path(chip), cat)
    spec = cat.chip(str(chip))
    return Device(chip=spec, eff=cat.profile_of(spec))


def devices(chips: Iterable[ChipLike] | None, catalog: Catalog | None = None) -> list[Device]:
    """Each of ``chips`` as a Device; every catalog chip when ``chips`` is empty or None."""
    cat = catalog or packaged()
    items = list(chips or ())
    if not items:
        return [Device(chip=c, eff=cat.profile_of(c)) for c in cat.chips.values()]
    return [device(c, cat) for c in items]


def model(m: ModelLike, catalog: Catalog | None = None) -> ModelSpec:
    """``m`` (an id, a ModelSpec TOML/JSON file, a Hugging Face config.json or a folder
    holding one, or a ModelSpec) as a ModelSpec."""
    if isinstance(m, ModelSpec):
        return m
    cat = catalog or packaged()
    key = str(m)
    if key in cat.models:
        return cat.models[key]
    p = Path(m)
    if p.is_dir():
        return registry.load_hf_config(p)
    if p.suffix == ".toml" or (p.suffix == ".json" and _is_model_spec(p)):
        return validate_as(ModelSpec, _read_mapping(p, "model"), where=p.name)
    if p.suffix == ".json":
        return registry.load_hf_config(p)
    return cat.model(key)


def _is_model_spec(path: Path) -> bool:
    """A JSON file in the catalog's model schema (has ``id`` and ``n_layers``), not an HF
    config (``hidden_size``/``num_hidden_layers``)."""
    if not path.is_file():
        return False
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(raw, dict) and "id" in raw and "n_layers" in raw


def catalog_with(
    chips: Iterable[ChipLike] = (),
    models: Iterable[ModelLike] = (),
    base: Catalog | None = None,
) -> Catalog:
    """The packaged catalog (or ``base``) plus the given chips (ids or files, with embedded
    efficiency profiles) and models, so that specs and rows may name them by id."""
    cat = base or packaged()
    devs = [device(c, cat) for c in chips]
    extra_models = {m.id: m for m in (model(x, cat) for x in models)}
    return Catalog(
        chips={**cat.chips, **{d.id: d.chip for d in devs}},
        models={**cat.models, **extra_models},
        profiles={**cat.profiles, **{d.eff.family: d.eff for d in devs}},
        systems=cat.systems,
    )


def measured(
    path: Path, models_csv: Path | None = None, catalog: Catalog | None = None
) -> tuple[list[MeasuredRow], list[TrainRow], Catalog]:
    """The rows of a measured-results file, its training rows, and the catalog they resolve
    through: ``catalog`` (default: packaged) plus the architectures of ``models_csv``
    (default: a ``models.csv`` beside ``path``) for model ids the catalog lacks."""
    cat = catalog or packaged()
    rows = read_measured(path)
    mc = models_csv if models_csv is not None else path.parent / "models.csv"
    if mc.exists():
        extra = {k: v for k, v in read_models_csv(mc).items() if k not in cat.models}
        cat = cat.with_models(extra)
    return rows, read_training_rows(path), cat


OVERLAP_FILE = "vendor_overlap_with_shared.csv"
"""beside a corpus file: ``corpus_id,shared_id`` pairs of rows that duplicate a shared row"""


def measured_files(
    paths: Iterable[Path], catalog: Catalog | None = None
) -> tuple[list[MeasuredRow], list[TrainRow], Catalog, list[str]]:
    """The rows of several measured files (each with its ``models.csv`` beside it), their
    training rows and the catalog they resolve through, deduplicated: a row whose id an earlier
    file already gave is dropped, and so is a corpus row that an ``OVERLAP_FILE`` beside its
    file names as duplicating a row that is also loaded. Returns the ids dropped last."""
    cat = catalog or packaged()
    rows: list[MeasuredRow] = []
    trains: list[TrainRow] = []
    pairs: dict[str, str] = {}
    for p in paths:
        got, got_t, cat = measured(p, None, cat)
        rows += got
        trains += got_t
        ov = p.parent / OVERLAP_FILE
        if ov.exists():
            with ov.open(newline="", encoding="utf-8") as fh:
                pairs.update({x["corpus_id"]: x["shared_id"] for x in csv.DictReader(fh)})
    ids = {r.id for r in rows}
    seen: set[str] = set()
    dropped: list[str] = []
    kept: list[MeasuredRow] = []
    for r in rows:
        if r.id in seen or pairs.get(r.id, "") in ids:
            dropped.append(r.id)
            continue
        seen.add(r.id)
        kept.append(r)
    by_id: dict[str, TrainRow] = {}
    for t in trains:
        if t.row.id in seen:
            by_id.setdefault(t.row.id, t)
    return kept, list(by_id.values()), cat, dropped


def load_spec(path: str | Path) -> PlanSpec:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) plan spec; relative trace paths
    resolve against the spec's folder."""
    p = Path(path)
    if not p.is_file():
        raise SiliconomicsError(f"plan spec '{p}' does not exist")
    text = p.read_text(encoding="utf-8")
    if p.suffix in (".yaml", ".yml"):
        import yaml

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SiliconomicsError(f"{p.name}: not valid YAML: {e}") from None
    elif p.suffix == ".toml":
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise SiliconomicsError(f"{p.name}: not valid TOML: {e}") from None
    else:
        raise SiliconomicsError(f"plan spec '{p.name}': expected a .yaml, .yml or .toml file")
    if not isinstance(raw, dict):
        raise SiliconomicsError(f"{p.name}: expected a mapping of fields at the top level")
    return parse_spec(raw, where=p.name, base_dir=p.parent)


def spec_catalog(
    spec: PlanSpec, base_dir: Path | None = None, catalog: Catalog | None = None
) -> tuple[PlanSpec, Catalog]:
    """``spec`` with chip and model files (paths relative to ``base_dir``) replaced by the ids
    they define, and the catalog that holds them."""
    cat = catalog or packaged()
    root = base_dir or Path.cwd()

    def path_of(v: str) -> Path:
        return Path(v) if Path(v).is_absolute() else root / v

    chips, devs = [], []
    for c in spec.chips or ():
        if c in cat.chips or not _is_file_arg(c):
            chips.append(c)
            continue
        d = load_chip_file(path_of(c), cat)
        devs.append(d)
        chips.append(d.id)
    models = []

    def model_id(m: str) -> str:
        if m in cat.models or not _is_file_arg(m):
            return m
        spec_ = model(path_of(m), cat)
        models.append(spec_)
        return spec_.id

    wls = tuple(w.model_copy(update={"model": model_id(w.model)}) for w in spec.workloads)
    train = spec.training
    if train is not None:
        train = train.model_copy(update={"model": model_id(train.model)})
    upd: dict[str, Any] = {"workloads": wls, "training": train}
    if spec.chips is not None:
        upd["chips"] = tuple(chips)
    return spec.model_copy(update=upd), catalog_with(devs, models, cat)


def plan_spec(path: str | Path, catalog: Catalog | None = None) -> tuple[PlanSpec, Catalog]:
    """Read a plan spec and the chip and model files it names (relative to the spec)."""
    p = Path(path)
    return spec_catalog(load_spec(p), p.parent, catalog)


def traces(spec: PlanSpec) -> dict[str, Requests]:
    """Every trace file the spec's workloads name (already resolved against the spec's folder
    by :func:`load_spec`), read once with the project's one trace reader."""
    out: dict[str, Requests] = {}
    for i, w in enumerate(spec.workloads):
        if w.trace is None or w.trace in out:
            continue
        p = Path(w.trace)
        if not p.is_file():
            raise SiliconomicsError(f"spec field 'workloads.{i}.trace': '{p}' does not exist")
        lines = p.read_text(encoding="utf-8").splitlines()
        out[w.trace] = parse_trace_csv(lines, where=p.name)
    return out

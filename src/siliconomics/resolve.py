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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from .calibrate.bands import DEFAULT_LEVEL
from .catalog import registry
from .catalog.bandtable import Residual, from_toml_dict, loads_band_toml
from .catalog.catalog import Catalog
from .catalog.parse import validate_as
from .catalog.power import with_tdp_estimate
from .catalog.schema import ChipSpec, EfficiencyProfile, ModelSpec
from .catalog.stacks import (
    Calibration,
    ProfileSet,
    ResolvedProfile,
    StackProfile,
    Workload,
    check_stack,
    packaged_residuals,
    packaged_stack_profiles,
    resolve_profile,
    stacks,
)
from .economics.pricebook import MODES, PriceBook, Pricing, book_from_files, parse_chip_prices
from .economics.pricing import catalog_book, parse_price_overrides_toml
from .economics.tco import OwnedAssumptions, load_owned_assumptions
from .errors import SiliconomicsError
from .fleet.spec import PlanSpec, parse_spec
from .inference.buckets import Buckets
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


def search_realism_ratios() -> tuple[float, ...]:
    """The packaged search-realism ratios (search MFU / best published MFU, one per published
    training configuration): they widen the band of searched training plans."""
    return tuple(r.ratio for r in registry.search_realism().row)


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
    chip = with_tdp_estimate(validate_as(ChipSpec, raw, where=path.name), cat.chips.values())
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
        spec = with_tdp_estimate(chip, cat.chips.values())
        return Device(chip=spec, eff=cat.profile_of(chip))
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


def buckets(
    given: tuple[Sequence[int], Sequence[int]] | None, dev: Device, mode: str
) -> Buckets | None:
    """A deployment's compiled (context, generation) buckets, checked: positive token counts on
    a static-shape stack (a profile with ``shape_bucket_min``), static mode only."""
    if given is None:
        return None
    ctx, gen = (tuple(int(x) for x in part) for part in given)
    if dev.eff.shape_bucket_min is None:
        raise SiliconomicsError(
            f"--buckets: {dev.id} runs dynamic shapes under its stack (no compiled sequence "
            "buckets); buckets apply to static-shape stacks (AWS Neuron)"
        )
    if mode != "static":
        raise SiliconomicsError(f"--buckets: allowed with --mode static only, got '{mode}'")
    if not ctx or not gen:
        raise SiliconomicsError(
            "--buckets: give context and generation buckets as CTX,CTX,.../GEN,GEN,... "
            "(e.g. 2048,4096,8192/4096,8192)"
        )
    if any(x < 1 for x in (*ctx, *gen)):
        raise SiliconomicsError(f"--buckets: bucket lengths must be >= 1 token, got {ctx}/{gen}")
    return Buckets.explicit(ctx, gen)


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
    return (
        cat.with_chips({d.id: d.chip for d in devs})
        .with_models(extra_models)
        .with_profiles({d.eff.family: d.eff for d in devs})
    )


def measured(
    path: Path, models_csv: Path | None = None, catalog: Catalog | None = None
) -> tuple[list[MeasuredRow], list[TrainRow], Catalog]:
    """The rows of a measured-results file, its training rows, and the catalog they resolve
    through: ``catalog`` (default: packaged) plus the architectures of ``models_csv``
    (default: a ``models.csv`` beside ``path``) for model ids the catalog lacks."""
    cat = catalog or packaged()
    rows = read_measured(path)
    if rows and all(r.problem for r in rows):
        more = f" (and {len(rows) - 1} more row(s) like it)" if len(rows) > 1 else ""
        raise SiliconomicsError(f"no row of {path.name} could be read: {rows[0].problem}{more}")
    mc = models_csv if models_csv is not None else path.parent / "models.csv"
    bad: dict[str, str] = {}
    if mc.exists():
        got = read_models_csv(mc, bad)
        cat = cat.with_models({k: v for k, v in got.items() if k not in cat.models})
    fix = _row_ids(cat, bad)
    return (
        [fix(r) for r in rows],
        [replace(t, row=fix(t.row)) for t in read_training_rows(path)],
        cat,
    )


def canonical_id(name: str, known: Iterable[str]) -> str:
    """``name`` as the catalog spells it when it differs only in case, surrounding space or
    ``_``/space for ``-`` (``H100-SXM`` -> ``h100-sxm``); else ``name`` unchanged (an unknown
    id is then refused with the close ids where it is used)."""
    ids = set(known)
    if name in ids:
        return name
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    hits = [k for k in ids if k.lower() == key]
    return hits[0] if len(hits) == 1 else name


def _row_ids(cat: Catalog, bad_models: Mapping[str, str]) -> Callable[[MeasuredRow], MeasuredRow]:
    """A measured row with its chip and model ids in the catalog's spelling, and the
    ``models.csv`` problem of its model (if that row could not be read) as its own."""

    def fix(r: MeasuredRow) -> MeasuredRow:
        chip, model = canonical_id(r.chip, cat.chips), canonical_id(r.model, cat.models)
        problem = r.problem
        if model not in cat.models and model in bad_models:
            said = f"its model is not readable: {bad_models[model]}"
            problem = f"{problem}; {said}" if problem else said
        if (chip, model, problem) == (r.chip, r.model, r.problem):
            return r
        return replace(r, chip=chip, model=model, problem=problem)

    return fix


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
    prof = spec.profile  # a traffic profile's trace (its arrival times give the shape)
    if prof is not None and prof.trace is not None and prof.trace not in out:
        p = Path(prof.trace)
        if not p.is_file():
            raise SiliconomicsError(f"spec field 'profile.trace': '{p}' does not exist")
        out[prof.trace] = parse_trace_csv(p.read_text(encoding="utf-8").splitlines(), where=p.name)
    return out


def profile_dir(path: Path, packaged: Mapping[str, EfficiencyProfile]) -> ProfileSet:
    """A calibration directory written by ``siliconomics calibrate``: ``<family>.toml``
    profiles (replacing the packaged ones they name) and ``stacks/<family>@<stack>.toml``
    overrides. Families the directory lacks keep the packaged profile."""
    if not path.is_dir():
        raise SiliconomicsError(f"--profile {path}: not a directory")
    fams = dict(packaged)
    for p in sorted(path.glob("*.toml")):
        if p.name == "bands.toml":
            continue
        fams[p.stem] = registry.parse_toml(p, EfficiencyProfile)
    overrides: dict[tuple[str, str], StackProfile] = {}
    for p in sorted((path / "stacks").glob("*.toml")):
        sp = registry.parse_toml(p, StackProfile)
        overrides[(sp.family, sp.stack)] = sp
    return ProfileSet(families=fams, stacks=overrides, origin=f"calibration in {path}")


def read_band_file(path: Path) -> tuple[Residual, ...]:
    """A band table written by ``siliconomics calibrate`` (``bands.toml``)."""
    try:
        raw = loads_band_toml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise SiliconomicsError(f"{path}: cannot read the band table: {e}") from None
    return from_toml_dict(raw)


def merge_residuals(
    user: tuple[Residual, ...], packaged: tuple[Residual, ...]
) -> tuple[Residual, ...]:
    """A user's residuals, plus the packaged ones of (kind, family) cells the user's rows do
    not cover (their bands stay what the packaged calibration measured)."""
    mine = {(r.kind, r.family) for r in user}
    return user + tuple(r for r in packaged if (r.kind, r.family) not in mine)


def calibration(
    stack: str | None = None,
    profile: str | Path | None = None,
    level: float = DEFAULT_LEVEL,
    workload: Workload = "inference",
    families: Iterable[str] | None = None,
    extra: Iterable[EfficiencyProfile] = (),
) -> Calibration:
    """``--stack``/``--profile``/``--level`` resolved once for ``families`` (default: all):
    each family's profile for the stack (a family the stack does not run on keeps its default
    stack) and the band table (a ``--profile`` directory's ``bands.toml`` over the packaged
    one). ``extra``: profiles of chip files outside the packaged families."""
    if not 0 < level < 1:
        raise SiliconomicsError(f"level {level}: must be in (0, 1)")
    packaged_ = registry.efficiency_profiles()
    if profile is not None:
        pdir = Path(profile)
        ps = profile_dir(pdir, packaged_)
        bands = pdir / "bands.toml"
        resid = merge_residuals(
            read_band_file(bands) if bands.exists() else (), packaged_residuals()
        )
    else:
        ps = ProfileSet(families=packaged_, stacks=packaged_stack_profiles())
        resid = packaged_residuals()
    own = {e.family: e for e in extra if e.family not in ps.families}
    if own:
        ps = ProfileSet(families={**ps.families, **own}, stacks=ps.stacks, origin=ps.origin)
    table = stacks()
    fams = list(dict.fromkeys(families)) if families is not None else list(ps.families)
    if stack is not None and stack not in table:
        check_stack(stack, fams[0] if fams else "", workload, table)  # raises, naming ids
    resolved: dict[str, ResolvedProfile] = {}
    for fam in fams:
        runs = stack is not None and fam in table[stack].families
        st = check_stack(stack if runs else None, fam, workload, table)
        resolved[fam] = resolve_profile(ps, fam, st, workload)
    if stack is not None and fams and not any(r.stack == stack for r in resolved.values()):
        check_stack(stack, fams[0], workload, table)  # raises: runs on none of them
    return Calibration(profiles=ps, residuals=resid, stack=stack, level=level, resolved=resolved)


def trace_lines(trace: str | Path | None) -> list[str] | None:
    """The lines of a trace file, or None for a named trace (azure-conv, ...) or no trace."""
    if trace is None or not Path(trace).exists():
        return None
    p = Path(trace)
    if p.is_dir():
        raise SiliconomicsError(f"--trace {p}: is a folder, expected a file")
    try:
        return p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise SiliconomicsError(f"--trace {p}: not a UTF-8 text file") from None


def _prices_file(path: Path, catalog: Catalog) -> PriceBook:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SiliconomicsError(f"--prices {path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise SiliconomicsError(f"--prices {path}: not valid TOML: {e}") from None
    if "provider" in raw and all("offering" in p for p in raw.get("prices", [])):
        from dataclasses import replace

        from .catalog.schema import PriceBookFile

        f = validate_as(PriceBookFile, raw, where=str(path))
        b = book_from_files([f])
        return PriceBook(offerings=tuple(replace(o, origin=str(path)) for o in b.offerings))
    return parse_price_overrides_toml(raw, catalog, origin=str(path))


@cache
def default_book() -> PriceBook:
    """The packaged price books (and any prices inside packaged system files), with the
    packaged owned-TCO defaults."""
    return catalog_book(packaged())


def default_pricing(mode: str = "on-demand") -> Pricing:
    """The packaged book in ``mode`` with estimates for unlisted chips."""
    return Pricing(book=default_book(), mode=mode, chips=packaged().chips)


def price_book(
    prices: str | Path | None = None,
    region: str | None = None,
    provider: Iterable[str] | None = None,
    catalog: Catalog | None = None,
) -> PriceBook:
    """The packaged book, plus a user's prices file or folder of books (``--prices``, chip
    and system ids of ``catalog``), restricted to ``region`` and ``provider``."""
    book = default_book()
    if prices is not None:
        p = Path(prices)
        files = sorted(p.glob("*.toml")) if p.is_dir() else [p]
        if p.is_dir() and not files:
            raise SiliconomicsError(f"--prices {p}: folder holds no *.toml price book")
        for f in files:
            book = book.merged(_prices_file(f, catalog or packaged()))
    prov = tuple(provider) if provider else None
    return book.with_providers(prov).with_region(region)


def chip_prices(
    prices: Mapping[str, float] | Iterable[str] | None,
    known: Pricing | Mapping[str, ChipSpec] | None = None,
    option: str = "--price",
) -> dict[str, float]:
    """USD by chip id from ``{"h100-sxm": 4.5}`` or ``["h100-sxm=4.5"]``; ids must be chips
    of ``known`` (a Pricing's catalog chips, or chips by id; default: packaged)."""
    if prices is None:
        return {}
    items = [f"{k}={v}" for k, v in prices.items()] if isinstance(prices, Mapping) else list(prices)
    chips = known.chips if isinstance(known, Pricing) else known
    return parse_chip_prices(items, chips or packaged().chips, option)


def owned_assumptions(
    given: OwnedAssumptions | Mapping[str, Any] | str | Path | None = None,
    chip_price: Mapping[str, float] | Iterable[str] | None = None,
    catalog: Catalog | None = None,
) -> OwnedAssumptions:
    """The owned-TCO assumptions: packaged defaults, overridden by ``given`` (a mapping of
    field -> value, a TOML file as for ``tco --assumptions``, or ready OwnedAssumptions) and
    ``chip_price`` purchase prices (``--chip-price CHIP=USD``) of chips in ``catalog``
    (default: packaged)."""
    cat = catalog or packaged()
    if isinstance(given, OwnedAssumptions) and not chip_price:
        return given
    if isinstance(given, OwnedAssumptions):
        raw: dict[str, Any] = given.model_dump(exclude={"provenance", "not_sold"})
    elif isinstance(given, str | Path):
        raw = _read_toml(Path(given), "--assumptions")
    else:
        raw = dict(given or {})
    if chip_price:
        table = dict(raw.get("chip_prices", raw.pop("chip_prices_usd", {})))
        table.update(chip_prices(chip_price, cat.chips, "--chip-price"))
        raw["chip_prices"] = table
    return load_owned_assumptions(cat.owned_defaults, raw, cat.chips)


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SiliconomicsError(f"{what} {path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise SiliconomicsError(f"{what} {path}: not valid TOML: {e}") from None


def pricing(
    mode: str = "on-demand",
    prices: str | Path | None = None,
    region: str | None = None,
    provider: Iterable[str] | None = None,
    price: Mapping[str, float] | Iterable[str] | None = None,
    *,
    utilisation: float = 1.0,
    chip_price: Mapping[str, float] | Iterable[str] | None = None,
    catalog: Catalog | None = None,
) -> Pricing:
    """How a run prices chips, built once: the book (:func:`price_book`) with ``price``
    (USD per chip-hour by chip) in ``mode``, the catalog's chips (for estimates of unlisted
    ones) and, with ``chip_price``, owned-TCO purchase prices."""
    if mode not in MODES:
        raise SiliconomicsError(f"--mode '{mode}': allowed: {', '.join(MODES)}")
    cat = catalog or packaged()
    p = Pricing(book=price_book(prices, region, provider, cat), mode=mode, chips=cat.chips)
    book = p.book.with_chip_hour(chip_prices(price, p), mode)
    assumptions = owned_assumptions(None, chip_price) if chip_price else None
    return Pricing(
        book=book, mode=mode, chips=cat.chips, utilisation=utilisation, assumptions=assumptions
    )

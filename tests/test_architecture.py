"""House rules, checked (docs/ARCHITECTURE.md):

1. Imports only go down the layers: a core module imports its own layer or lower ones, never a
   higher one and never an edge.
2. Below the edges nothing looks an id up in the registry: the edges resolve ids and files
   into objects (``siliconomics.resolve``) and hand them down.
3. Below the edges nothing prints, touches files, reads the clock or the network.

Each exception is listed with the reason and the work that removes it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import siliconomics

PKG = Path(siliconomics.__file__).parent

LAYERS = (
    "units",  # units.py, errors.py
    "catalog",
    "ops",
    "parallel",
    "inference",
    "training",
    "serving",
    "economics",
    "search",
    "fleet",
    "measured",
    "validate",
    "calibrate",
    "porting",
)
"""Bottom to top. ``calibrate`` sits above ``validate``: a fit predicts measured rows through
validate's row runners."""
EDGES = ("cli", "report", "api", "resolve", "__init__", "web")
"""``__init__``: the package itself re-exports the API."""
EDGES += ("sweep",)  # the sweep runner (issue 15): files, processes, Ray
BOTTOM = {"units", "errors"}

UPWARD_ALLOWED = {
    ("validate", "calibrate"): "validate attaches cross-validated bands (calibrate.bands, "
    "calibrate.samples) and cross-validation refits (validate/cv.py); delete when bands and "
    "samples move below validate",
    ("training", "economics"): "the power model and the price of a training run; delete when "
    "power moves below training and dollars are attached above it",
    ("serving", "economics"): "the power model of a simulated pool; delete when power moves "
    "below serving",
}

REGISTRY_ALLOWED = {
    # empty: no core module looks an id up in the registry
}

IO_ALLOWED = {
    "catalog/registry.py": "the catalog layer loads its packaged data files",
    "catalog/parse.py": "parse_toml: one catalog data file, for the registry",
    "catalog/hf.py": "the catalog's reader of a Hugging Face config.json named by the edge",
    "serving/traces.py": "packaged trace summaries (importlib.resources), like catalog data",
    "porting/knowledge.py": "packaged knowledge base and effort model (importlib.resources)",
    "catalog/stacks.py": "the catalog layer loads its packaged stacks, stack profiles and band "
    "table",
    "measured/rows.py": "the measured layer reads measured-result files (SCHEMA.md)",
    "measured/training.py": "the measured layer reads measured-result files (SCHEMA.md)",
    "calibrate/ops_fit.py": "op-level CSVs; moves to the edge with the calibration work",
}
IO_CALLS = {"print", "open", "input", "breakpoint"}
IO_METHODS = {
    "read_text",
    "write_text",
    "read_bytes",
    "write_bytes",
    "open",
    "exists",
    "is_file",
    "is_dir",
    "glob",
    "rglob",
    "iterdir",
    "mkdir",
    "unlink",
}
FORBIDDEN_TEXT = ("time.time(", "datetime.now(", "urllib", "requests.", "socket")


def _layer(path: Path) -> str:
    rel = path.relative_to(PKG)
    name = rel.parts[0].removesuffix(".py")
    return "units" if name in BOTTOM else name


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def _core() -> list[Path]:
    return [p for p in _modules() if _layer(p) not in EDGES]


def imports(path: Path, text: str | None = None) -> set[str]:
    """Every siliconomics module ``path`` (or ``text`` as if it were at ``path``) imports,
    relative imports resolved and imports inside functions included, without the
    ``siliconomics.`` prefix."""
    tree = ast.parse(text if text is not None else path.read_text(encoding="utf-8"))
    names: set[str] = set()
    pkg_parts = path.relative_to(PKG).parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - node.level + 1]
                mod = ".".join((*base, node.module) if node.module else base)
            elif (node.module or "").startswith("siliconomics"):
                mod = (node.module or "").removeprefix("siliconomics").lstrip(".")
            else:
                continue
            for a in node.names:  # 'from .. import resolve' imports a module
                names.add(f"{mod}.{a.name}" if mod else a.name)
            if mod:
                names.add(mod)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("siliconomics."):
                    names.add(a.name.removeprefix("siliconomics."))
    return names


def _target_layer(name: str) -> str | None:
    top = name.split(".")[0]
    if top in BOTTOM:
        return "units"
    if top in LAYERS or top in EDGES:
        return top
    return None


def layer_violations(path: Path, text: str | None = None) -> list[str]:
    own = _layer(path)
    if own in EDGES:
        return []
    rank = LAYERS.index(own)
    out = []
    for name in sorted(imports(path, text)):
        tgt = _target_layer(name)
        if tgt is None or tgt == own:
            continue
        rel = path.relative_to(PKG)
        if tgt in EDGES:
            out.append(f"{rel} (layer {own}) imports the edge {name}")
        elif LAYERS.index(tgt) > rank and (own, tgt) not in UPWARD_ALLOWED:
            out.append(f"{rel} (layer {own}) imports {name} from the higher layer {tgt}")
    return out


def test_every_module_has_a_layer():
    unknown = [str(p.relative_to(PKG)) for p in _modules() if _layer(p) not in (*LAYERS, *EDGES)]
    assert not unknown, f"modules outside the documented layers: {unknown}"


def test_imports_only_go_down_the_layers():
    bad = [v for p in _core() for v in layer_violations(p)]
    assert not bad, "\n".join(bad)


def test_the_check_sees_relative_and_function_level_imports():
    # the checker itself: wrong imports inside a function, relative or absolute, are found
    probe = PKG / "inference" / "probe.py"
    text = (
        "def f():\n    from ..search.compare import BATCH_LADDER\n"
        "    import siliconomics.cli\n    from .. import resolve\n"
    )
    assert layer_violations(probe, text) == [
        "inference/probe.py (layer inference) imports the edge cli",
        "inference/probe.py (layer inference) imports the edge resolve",
        "inference/probe.py (layer inference) imports search.compare from the higher layer search",
        "inference/probe.py (layer inference) imports search.compare.BATCH_LADDER from the "
        "higher layer search",
    ]


def test_allowed_upward_imports_are_still_needed():
    used = {
        (_layer(p), _target_layer(n))
        for p in _core()
        for n in imports(p)
        if _target_layer(n) not in (None, _layer(p))
    }
    stale = [k for k in UPWARD_ALLOWED if k not in used]
    assert not stale, f"remove from UPWARD_ALLOWED, no longer imported: {stale}"


def test_core_never_looks_ids_up_in_the_registry():
    bad = []
    for p in _core():
        rel = p.relative_to(PKG).as_posix()
        if _layer(p) == "catalog" or rel in REGISTRY_ALLOWED:
            continue
        if any(n == "catalog.registry" or n.startswith("catalog.registry.") for n in imports(p)):
            bad.append(rel)
    assert not bad, f"core modules importing catalog.registry (resolve ids at the edge): {bad}"


def test_registry_allow_list_is_still_needed():
    stale = [
        rel
        for rel in REGISTRY_ALLOWED
        if (PKG / rel).exists() and "catalog.registry" not in imports(PKG / rel)
    ]
    assert not stale, f"remove from REGISTRY_ALLOWED: {stale}"


def io_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in IO_CALLS:
            out.append(f"{f.id}() at line {node.lineno}")
        elif isinstance(f, ast.Attribute) and f.attr in IO_METHODS:
            out.append(f".{f.attr}() at line {node.lineno}")
    return out


def test_core_never_prints_or_touches_files():
    bad = []
    for p in _core():
        rel = p.relative_to(PKG).as_posix()
        if rel in IO_ALLOWED:
            continue
        bad += [f"{rel}: {c}" for c in io_calls(p)]
    assert not bad, "\n".join(bad)


def test_io_allow_list_is_still_needed():
    stale = [rel for rel in IO_ALLOWED if not (PKG / rel).exists() or not io_calls(PKG / rel)]
    assert not stale, f"remove from IO_ALLOWED: {stale}"


def test_core_never_reads_the_clock_or_the_network():
    bad = []
    for p in _core():
        src = p.read_text(encoding="utf-8")
        bad += [f"{p.relative_to(PKG)}: {n}" for n in FORBIDDEN_TEXT if n in src]
    assert not bad, bad

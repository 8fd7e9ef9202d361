"""The core never imports the edges (ARCHITECTURE.md: dependencies flow one way)."""

import ast
from pathlib import Path

import siliconomics

PKG = Path(siliconomics.__file__).parent
EDGES = {"cli", "report", "api"}
CORE = [
    "units.py",
    "errors.py",
    "catalog",
    "ops",
    "parallel",
    "inference",
    "training",
    "serving",
    "economics",
    "plan",
    "fleet",
    "validate",
    "calibrate",
    "porting",
]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:  # relative: resolve against the package path
                parts = path.relative_to(PKG).parts[: -node.level]
                mod = ".".join((*parts, mod)) if mod else ".".join(parts)
            names.add(mod.removeprefix("siliconomics."))
        elif isinstance(node, ast.Import):
            names.update(a.name.removeprefix("siliconomics.") for a in node.names)
    return names


def test_core_never_imports_edges():
    bad = []
    for entry in CORE:
        p = PKG / entry
        for f in [p] if p.is_file() else sorted(p.rglob("*.py")):
            for name in _imports(f):
                if name.split(".")[0] in EDGES:
                    bad.append(f"{f.relative_to(PKG)} imports {name}")
    assert not bad, bad


def test_core_never_prints_or_reads_the_clock():
    bad = []
    for entry in CORE:
        p = PKG / entry
        for f in [p] if p.is_file() else sorted(p.rglob("*.py")):
            src = f.read_text()
            for needle in ("print(", "time.time(", "datetime.now(", "urllib", "requests."):
                if needle in src:
                    bad.append(f"{f.relative_to(PKG)}: {needle}")
    assert not bad, bad

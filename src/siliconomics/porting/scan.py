"""Static scan of already-read project files for what ties them to CUDA.

Python files are parsed with :mod:`ast` (imports, calls, decorators, string constants);
requirements files, ``pyproject.toml``, CUDA sources and shell/YAML files use text rules.
Nothing is imported or executed. :func:`scan_files` takes ``{relative path: text}``.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping

from .findings import Finding, ScanResult

# distribution name (normalised: lower case, '_' and '.' -> '-') -> finding kind
PACKAGES: dict[str, str] = {
    "flash-attn": "flash-attn",
    "flash-attn-3": "flash-attn",
    "xformers": "xformers",
    "bitsandbytes": "bitsandbytes",
    "apex": "apex",
    "transformer-engine": "transformer-engine",
    "transformer-engine-torch": "transformer-engine",
    "transformer-engine-cu12": "transformer-engine",
    "deepspeed": "deepspeed",
    "triton": "triton-kernel",
    "cupy": "cupy",
    "cupy-cuda11x": "cupy",
    "cupy-cuda12x": "cupy",
    "cupy-cuda13x": "cupy",
    "vllm": "vllm",
    "nvidia-nccl-cu11": "nccl-setting",
    "nvidia-nccl-cu12": "nccl-setting",
    "nvidia-nccl-cu13": "nccl-setting",
}

# top-level import name -> kind (a sub-module rule below wins where it matches)
IMPORTS: dict[str, str] = {
    "flash_attn": "flash-attn",
    "flash_attn_interface": "flash-attn",
    "xformers": "xformers",
    "bitsandbytes": "bitsandbytes",
    "apex": "apex",
    "transformer_engine": "transformer-engine",
    "deepspeed": "deepspeed",
    "cupy": "cupy",
    "vllm": "vllm",
}
SUBMODULE_IMPORTS: tuple[tuple[str, str], ...] = (
    ("deepspeed.ops", "deepspeed-ops"),
    ("vllm._C", "vllm-custom-ops"),
    ("vllm._custom_ops", "vllm-custom-ops"),
)
"""(imports of torch's cpp_extension, CUDA-graph and FSDP modules are not findings: the calls
that use them are, so one use is not counted twice)"""

COLLECTIVES = frozenset(
    {
        "all_reduce",
        "all_gather",
        "all_gather_into_tensor",
        "all_gather_object",
        "reduce_scatter",
        "reduce_scatter_tensor",
        "all_to_all",
        "all_to_all_single",
        "broadcast",
        "reduce",
        "send",
        "recv",
        "isend",
        "irecv",
    }
)
EXTENSION_CALLS = frozenset({"load_inline", "CUDAExtension", "BuildExtension"})
GRAPH_NAMES = frozenset({"CUDAGraph", "make_graphed_callables"})
FSDP_NAMES = frozenset({"FullyShardedDataParallel", "fully_shard"})
FP8_CALLS = frozenset({"fp8_autocast", "fp8_model_init", "autocast"})
PROCESS_GROUP_CALLS = frozenset({"init_process_group", "new_group", "init_distributed"})

NCCL_ENV = re.compile(r"\bNCCL_[A-Z0-9_]+\b")
REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
SKIP_DIRS = frozenset(
    {".git", ".venv", "venv", "site-packages", "node_modules", "__pycache__", ".tox", "build"}
)
TEXT_SUFFIXES = (".sh", ".bash", ".yaml", ".yml", ".env", ".cfg", ".ini", ".json")


def normalise(name: str) -> str:
    """PEP 503-style distribution name: lower case, runs of '-', '_', '.' become '-'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_kind(req: str) -> str | None:
    """The finding kind of one requirement string (``"flash-attn>=2; extra"``), if any."""
    m = REQ_NAME.match(req)
    if not m:
        return None
    return PACKAGES.get(normalise(m.group(1)))


def _short(text: str, width: int = 100) -> str:
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 3] + "..."


def dotted(node: ast.AST) -> str:
    """``torch.cuda.synchronize`` for an Attribute/Name chain; '' for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


# ---------------------------------------------------------------- Python (ast)


def _module_kind(module: str) -> str | None:
    for prefix, kind in SUBMODULE_IMPORTS:
        if module == prefix or module.startswith(prefix + "."):
            return kind
    return IMPORTS.get(module.split(".")[0])


class _Visitor:
    def __init__(self, path: str, source: str, own: frozenset[str] = frozenset()) -> None:
        self.path = path
        self.lines = source.splitlines()
        self.own = own
        """top-level modules of the scanned project itself: importing them is not a tie"""
        self.found: list[Finding] = []
        self.aliases: dict[str, str] = {}
        """local name -> module it stands for (``te`` -> ``transformer_engine.pytorch``)"""

    def add(self, node: ast.AST, kind: str) -> None:
        # the matched line (not ast.get_source_segment, which re-splits the file per call)
        line = getattr(node, "lineno", 0)
        text = self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""
        self.found.append(Finding(file=self.path, line=line, kind=kind, text=_short(text)))

    def kind_of(self, module: str) -> str | None:
        return None if module.split(".")[0] in self.own else _module_kind(module)

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.aliases[a.asname or a.name.split(".")[0]] = (
                a.name if a.asname else a.name.split(".")[0]
            )
            kind = self.kind_of(a.name)
            if kind:
                self.add(node, kind)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        if node.level:
            return
        kinds: list[str] = []
        for a in node.names:
            self.aliases[a.asname or a.name] = f"{mod}.{a.name}"
            kind = self.kind_of(f"{mod}.{a.name}")
            if kind and kind not in kinds:
                kinds.append(kind)
        for kind in kinds:
            self.add(node, kind)

    def resolve(self, node: ast.AST) -> str:
        """Dotted name with the leading alias expanded to its module path."""
        name = dotted(node)
        head, _, rest = name.partition(".")
        full = self.aliases.get(head)
        if full:
            return f"{full}.{rest}" if rest else full
        return name

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for dec in node.decorator_list:
            target = dec.func if isinstance(dec, ast.Call) else dec
            name = self.resolve(target)
            if name.startswith("triton.") and name.split(".")[-1] in ("jit", "autotune"):
                self.add(dec, "triton-kernel")
                break

    def visit_Call(self, node: ast.Call) -> None:
        kind = call_kind(self.resolve(node.func), node)
        if kind:
            self.add(node, kind)

    def run(self, tree: ast.AST) -> list[Finding]:
        """Imports first (they define the aliases calls resolve against), then the rest; one
        flat walk instead of NodeVisitor dispatch, which is several times slower."""
        nodes = list(ast.walk(tree))
        for node in nodes:
            if isinstance(node, ast.Import):
                self.visit_Import(node)
            elif isinstance(node, ast.ImportFrom):
                self.visit_ImportFrom(node)
        for node in nodes:
            if isinstance(node, ast.Call):
                self.visit_Call(node)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.visit_FunctionDef(node)
            elif isinstance(node, ast.Constant):
                self.visit_Constant(node)
        return sorted(self.found, key=lambda f: (f.line, f.kind))

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and NCCL_ENV.fullmatch(node.value):
            self.add(node, "nccl-setting")


def _backend_is_nccl(node: ast.Call) -> bool:
    for kw in node.keywords:
        if kw.arg == "backend" and isinstance(kw.value, ast.Constant):
            return str(kw.value.value).lower() in ("nccl", "cuda:nccl")
    first = node.args[0] if node.args else None
    return isinstance(first, ast.Constant) and str(first.value).lower() == "nccl"


def _torch_kind(name: str) -> str | None:
    if name.startswith("torch.cuda."):
        leaf = name.split(".")[-1]
        graph = name.startswith("torch.cuda.graphs") or leaf in GRAPH_NAMES or leaf == "graph"
        return "cuda-graph" if graph else "torch-cuda-call"
    if name == "torch.compile":
        return "torch-compile"
    return None


def call_kind(name: str, node: ast.Call) -> str | None:
    """The finding kind of one call, from its resolved dotted name (and arguments)."""
    leaf = name.split(".")[-1]
    kind = _torch_kind(name)
    if kind:
        return kind
    if isinstance(node.func, ast.Attribute) and node.func.attr == "cuda" and not node.args:
        return "torch-cuda-call"
    if leaf in GRAPH_NAMES:
        return "cuda-graph"
    if leaf in EXTENSION_CALLS or name.startswith("torch.utils.cpp_extension."):
        return "cuda-extension"
    if leaf in FSDP_NAMES:
        return "fsdp"
    if leaf in FP8_CALLS and name.startswith("transformer_engine"):
        return "fp8-te"
    if leaf in PROCESS_GROUP_CALLS and _backend_is_nccl(node):
        return "nccl-backend"
    if leaf in COLLECTIVES and "distributed" in name:
        return "collective"
    return None


def _setup_requirements(tree: ast.AST, path: str) -> Iterator[Finding]:
    """install_requires / extras_require / setup_requires strings of a setup.py."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.keyword) or node.arg not in (
            "install_requires",
            "extras_require",
            "setup_requires",
        ):
            continue
        for const in ast.walk(node.value):
            if isinstance(const, ast.Constant) and isinstance(const.value, str):
                kind = requirement_kind(const.value)
                if kind:
                    yield Finding(
                        file=path, line=const.lineno, kind=kind, text=const.value, dependency=True
                    )


TRIGGERS = (
    "cuda", "CUDA", "nccl", "NCCL", "triton", "flash_attn", "xformers", "bitsandbytes", "apex",
    "transformer_engine", "deepspeed", "cupy", "vllm", "compile", "distributed", "fully_shard",
    "FullyShardedDataParallel", "load_inline", "BuildExtension", "cpp_extension",
)  # fmt: skip
"""Every Python rule needs one of these substrings in the file (a module name, an API name
or an alias target), so a file with none of them is not parsed at all (setup.py always is)."""


def scan_python(
    path: str, source: str, own: frozenset[str] = frozenset()
) -> tuple[list[Finding], bool]:
    """Findings of one Python file and whether it parsed (a file that does not parse is
    scanned with the text rules for NCCL settings only). Imports of ``own`` top-level
    modules (the scanned project's own packages) are not findings."""
    setup = path.rsplit("/", 1)[-1] == "setup.py"
    if not setup and not any(t in source for t in TRIGGERS):
        return [], True
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return list(scan_env_text(path, source)), False
    found = _Visitor(path, source, own).run(tree)
    if setup:
        found.extend(_setup_requirements(tree, path))
    return found, True


# ---------------------------------------------------------------- text rules


def scan_requirements(path: str, text: str) -> Iterator[Finding]:
    """requirements*.txt / constraints: one requirement per line."""
    for i, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        kind = requirement_kind(line)
        if kind:
            yield Finding(file=path, line=i, kind=kind, text=_short(line), dependency=True)


def _pyproject_requirements(data: dict[str, object]) -> list[str]:
    reqs: list[str] = []
    project = data.get("project")
    if isinstance(project, dict):
        reqs += [r for r in project.get("dependencies", []) if isinstance(r, str)]
        for group in (project.get("optional-dependencies") or {}).values():
            reqs += [r for r in group if isinstance(r, str)]
    build = data.get("build-system")
    if isinstance(build, dict):
        reqs += [r for r in build.get("requires", []) if isinstance(r, str)]
    tool = data.get("tool")
    poetry = tool.get("poetry") if isinstance(tool, dict) else None
    if isinstance(poetry, dict):
        reqs += list((poetry.get("dependencies") or {}).keys())
    return reqs


def scan_pyproject(path: str, text: str) -> Iterator[Finding]:
    """Dependencies of a pyproject.toml (PEP 621, build-system, Poetry)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        yield from scan_requirements(path, text)
        return
    lines = text.splitlines()
    for req in _pyproject_requirements(data):
        kind = requirement_kind(req)
        if not kind:
            continue
        line = next((i for i, s in enumerate(lines, 1) if req in s), 0)
        yield Finding(file=path, line=line, kind=kind, text=_short(req), dependency=True)


def scan_cuda_source(path: str, text: str) -> Finding:
    """A .cu/.cuh file is one finding; its size (non-blank lines) drives the rewrite effort."""
    loc = sum(1 for s in text.splitlines() if s.strip())
    return Finding(file=path, line=0, kind="cuda-source", text=f"{loc} lines of CUDA", loc=loc)


def scan_env_text(path: str, text: str) -> Iterator[Finding]:
    """NCCL_* settings in shell scripts, YAML, env files and launchers."""
    for i, line in enumerate(text.splitlines(), 1):
        m = NCCL_ENV.search(line)
        if m:
            yield Finding(file=path, line=i, kind="nccl-setting", text=_short(line.strip()))


# ---------------------------------------------------------------- a whole project


def is_skipped(path: str) -> bool:
    """Vendored environments and build outputs are not the project's own code."""
    return any(part in SKIP_DIRS for part in path.split("/")[:-1])


def _classify(path: str) -> str:
    name = path.rsplit("/", 1)[-1].lower()
    if name.endswith(".py"):
        return "python"
    if name.endswith((".cu", ".cuh")):
        return "cuda"
    if name == "pyproject.toml":
        return "pyproject"
    named = "requirement" in name or "constraint" in name
    if name.endswith(".txt") and (named or "/" not in path):
        return "requirements"
    if name in ("requires.txt", "metadata") or name.endswith(TEXT_SUFFIXES):
        return "requirements" if name in ("requires.txt", "metadata") else "env"
    if name == "dockerfile":
        return "env"
    return ""


def _metadata_requirements(path: str, text: str) -> Iterator[Finding]:
    """``Requires-Dist:`` lines of a wheel METADATA / sdist PKG-INFO."""
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith("Requires-Dist:"):
            req = line.split(":", 1)[1].strip()
            kind = requirement_kind(req)
            if kind:
                yield Finding(file=path, line=i, kind=kind, text=_short(req), dependency=True)


def own_packages(paths: Iterable[str]) -> frozenset[str]:
    """Top-level packages of the scanned project: directories with an ``__init__.py`` whose
    parent has none (``deepspeed`` in ``deepspeed-0.19/deepspeed/__init__.py``)."""
    inits = {p.rsplit("/", 1)[0] for p in paths if p.endswith("/__init__.py")}
    return frozenset(
        d.rsplit("/", 1)[-1] for d in inits if ("/" not in d or d.rsplit("/", 1)[0] not in inits)
    )


def _scan_one(path: str, text: str, kind: str, own: frozenset[str]) -> tuple[list[Finding], bool]:
    name = path.rsplit("/", 1)[-1].lower()
    if kind == "python":
        return scan_python(path, text, own)
    if kind == "cuda":
        return [scan_cuda_source(path, text)], True
    if kind == "pyproject":
        return list(scan_pyproject(path, text)), True
    if name in ("metadata", "pkg-info"):
        return list(_metadata_requirements(path, text)), True
    if kind == "requirements":
        return list(scan_requirements(path, text)), True
    return list(scan_env_text(path, text)), True


def wanted(path: str) -> bool:
    """Whether the edge should read this file at all (by name only)."""
    name = path.rsplit("/", 1)[-1].lower()
    return not is_skipped(path) and (bool(_classify(path)) or name == "pkg-info")


def scan_files(files: Mapping[str, str]) -> ScanResult:
    """Scan ``{relative posix path: text}``; files the scanner has no rule for are ignored."""
    found: list[Finding] = []
    bad: list[str] = []
    n_py = n = 0
    own = own_packages(files)
    for path in sorted(files):
        if is_skipped(path):
            continue
        name = path.rsplit("/", 1)[-1].lower()
        kind = _classify(path) or ("requirements" if name == "pkg-info" else "")
        if not kind:
            continue
        n += 1
        n_py += kind == "python"
        got, ok = _scan_one(path, files[path], kind, own)
        found.extend(got)
        if not ok:
            bad.append(path)
    return ScanResult(
        findings=tuple(found), files_scanned=n, python_files=n_py, unparsable=tuple(bad)
    )

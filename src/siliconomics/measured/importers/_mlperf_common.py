"""Shared pieces of the MLPerf importers: rounds, chip names, small Python-config evaluation.

Pure functions over text; no file access (the importers get text from a SourceTree).
"""

from __future__ import annotations

import ast
import re
from typing import Any

from ...errors import SiliconomicsError

ALLOWED_INFERENCE = ("4.0", "4.1", "5.0", "5.1")
ALLOWED_TRAINING = ("4.0", "4.1", "5.0")
"""Rounds these importers read. Inference v6.0+ and Training v5.1+ are kept apart for
independent testing (project rule) and are refused."""


def round_from_label(label: str, allowed: tuple[str, ...], what: str) -> str:
    """The MLPerf round ('5.1') named in the source label (e.g. '...inference_results_v5.1@abc')."""
    m = re.search(r"results_v(\d+\.\d+)", label) or re.search(r"\bv(\d+\.\d+)\b", label)
    if not m:
        raise SiliconomicsError(
            f"--label '{label}': must name the {what} round, e.g. "
            f"mlcommons/{what}_results_v{allowed[-1]}@<commit>"
        )
    rnd = m.group(1)
    if rnd not in allowed:
        raise SiliconomicsError(
            f"--label '{label}': {what} round v{rnd} is not imported; allowed: "
            + ", ".join("v" + r for r in allowed)
        )
    return rnd


# Accelerator names as written in MLPerf system JSONs -> chip ids of accelerators.csv.
# Order matters: the first pattern that matches wins. None = chip not in the catalog (skipped).
_CHIPS: tuple[tuple[str, str | None], ...] = (
    (r"MI300X.*MI325X|MI325X.*MI300X", None),  # heterogeneous systems
    (r"GB300", "gb300"),
    (r"GB200", "gb200"),
    (r"B300", "b300"),
    (r"RTX PRO|RTX", None),
    (r"B200", "b200"),
    (r"GH200.*144|GH200.*HBM3e", "gh200-144gb"),  # HBM3e variant (144 GB in the system JSONs)
    (r"GH200.*96|GH200.*HBM3\b", "gh200"),  # 96 GB HBM3 variant
    (r"GH200|Grace ?Hopper", None),  # variant not stated
    (r"H200.?NVL", None),
    (r"H200", "h200-sxm"),
    (r"H100.?NVL", None),
    (r"H100.?PCIe", "h100-pcie"),
    (r"H100", "h100-sxm"),
    (r"L40S", "l40s"),
    (r"\bL4\b", "l4"),
    (r"A100.?SXM.?80", "a100-sxm-80gb"),
    (r"MI355X", "mi355x"),
    (r"MI325X", "mi325x"),
    (r"MI300X", "mi300x"),
    (r"MI250X", "mi250x"),
    (r"Gaudi(\(R\))? ?3|HL-325", "gaudi3"),
    (r"Gaudi(\(R\))? ?2|HL-225", "gaudi2"),
    (r"TPU ?v5e|v5 ?lite|v5litepod", "tpu-v5e"),
    (r"TPU ?v5p|v5p", "tpu-v5p"),
    (r"TPU ?v6e|Trillium|v6e", "tpu-v6e"),
    (r"TPU ?v4\b", "tpu-v4"),
    (r"Inferentia ?2|inf2", "inf2"),
    (r"Trainium ?2|trn2", "trn2"),
    (r"Trainium|trn1", "trn1"),
)


def chip_id(accelerator: str) -> str | None:
    """Chip id for an MLPerf accelerator name, or None if it is not a catalog chip."""
    for pat, chip in _CHIPS:
        if re.search(pat, accelerator, re.IGNORECASE):
            return chip
    return None


CHIP_NOTES = {
    "gb300": "GB300 superchip GPU (Blackwell Ultra, NVL72 rack)",
    "gb200": "GB200 superchip GPU (NVL72 rack)",
    "gh200-144gb": "GH200 superchip GPU (144 GB HBM3e variant; Grace CPU memory not modelled)",
}


def num(s: Any) -> float | None:
    """A number from JSON/text cells ('8', 8, '189471 MiB' -> None for the latter)."""
    if isinstance(s, int | float):
        return float(s)
    if isinstance(s, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", s):
        return float(s)
    return None


def fmt(x: float) -> str:
    """Plain decimal text for a number (no exponent, no trailing zeros)."""
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.6g}" if abs(x) < 1e-3 else f"{round(x, 6):.6f}".rstrip("0").rstrip(".")


def ident(*parts: str) -> str:
    """A row id: parts joined by '-', characters outside [A-Za-z0-9._] replaced by '-'."""
    return "-".join(re.sub(r"[^A-Za-z0-9._]+", "-", p).strip("-") for p in parts)


# --- a tiny evaluator for the literal parts of submitters' Python config files -----------


class Unknown(Exception):
    """An expression the evaluator does not handle (the caller skips that value)."""


def _key(node: ast.expr | None, env: dict[str, Any]) -> Any:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):  # C.WorkloadSetting(HarnessType.X, AccuracyTarget(0.99), ...)
        return tuple(_callarg(a) for a in node.args)
    return py_eval(node, env) if node is not None else None


def _callarg(node: ast.expr) -> Any:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call) and node.args:
        return _callarg(node.args[0])
    if isinstance(node, ast.Constant):
        return node.value
    raise Unknown(ast.dump(node))


_BINOPS = {ast.Add: lambda a, b: a + b, ast.Mult: lambda a, b: a * b, ast.Sub: lambda a, b: a - b}


def py_eval(node: ast.expr | None, env: dict[str, Any]) -> Any:
    """Value of a literal-ish expression: constants, dicts (Attribute keys -> attribute name,
    ``**x`` merges), lists, names bound in ``env``, + - * on numbers, deepcopy(x)/dict(x)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Dict):
        out: dict[Any, Any] = {}
        for k, v in zip(node.keys, node.values, strict=True):
            if k is None:
                out.update(py_eval(v, env))
            else:
                try:
                    out[_key(k, env)] = py_eval(v, env)
                except Unknown:
                    continue
        return out
    if isinstance(node, ast.List | ast.Tuple):
        return [py_eval(e, env) for e in node.elts]
    if isinstance(node, ast.Name) and node.id in env:
        return env[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](py_eval(node.left, env), py_eval(node.right, env))
    if isinstance(node, ast.Call) and node.args:
        fn = (
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        )
        if fn in ("deepcopy", "copy", "dict"):
            base = dict(py_eval(node.args[0], env))
            base.update({kw.arg: py_eval(kw.value, env) for kw in node.keywords if kw.arg})
            return base
    raise Unknown(ast.dump(node) if node is not None else "None")


def module_env(text: str) -> dict[str, Any]:
    """Top-level names of a config module bound to evaluable values, in execution order
    (``x = {...}``, ``x[key] = v``, ``x.update({...})``)."""
    env: dict[str, Any] = {}
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return env
    for st in tree.body:
        try:
            _exec(st, env)
        except (Unknown, KeyError, TypeError, ValueError):
            continue
    return env


def _exec(st: ast.stmt, env: dict[str, Any]) -> None:
    if isinstance(st, ast.Assign) and len(st.targets) == 1:
        t = st.targets[0]
        if isinstance(t, ast.Name):
            env[t.id] = py_eval(st.value, env)
        elif isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id in env:
            env[t.value.id][_key(t.slice, env)] = py_eval(st.value, env)
    elif (
        isinstance(st, ast.Expr)
        and isinstance(st.value, ast.Call)
        and isinstance(st.value.func, ast.Attribute)
        and st.value.func.attr == "update"
        and isinstance(st.value.func.value, ast.Name)
        and st.value.func.value.id in env
    ):
        env[st.value.func.value.id].update(py_eval(st.value.args[0], env))

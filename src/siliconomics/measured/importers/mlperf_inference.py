"""MLPerf Inference results trees (v4.0-v5.1, closed division, LLM benchmarks) -> rows.

Reads, for every ``closed/<submitter>/results/<system>/<benchmark>/<scenario>/performance/
run_1/mlperf_log_summary.txt`` of an LLM benchmark with a VALID result: the throughput and
latency statistics and the latency limits loadgen enforced (from the summary itself),
``closed/<submitter>/systems/<system>.json`` (accelerator, count, nodes, software), and the
submitter's configuration for the layout, precision and batch where it is in a form this module
parses: NVIDIA-harness configs (v4.x class configs ``configs/<bench>/<Scenario>/__init__.py``,
v5.x ``configs/<system>/<Scenario>/<bench>.py``, also used by partners) and AMD ``harness_llm``
YAML files. Rows whose layout is not found are kept with ``usable=false``.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from ...errors import SiliconomicsError
from . import Importer, Row, SourceTree, register
from ._mlperf_common import (
    ALLOWED_INFERENCE,
    CHIP_NOTES,
    Unknown,
    chip_id,
    fmt,
    ident,
    module_env,
    num,
    py_eval,
    round_from_label,
)


@dataclass(frozen=True, kw_only=True)
class Bench:
    model: str
    dist: str
    input_len: str
    output_len: str
    cfg_v5: str
    """file stem of the NVIDIA v5.x per-system config"""
    cfg_v4: str
    """folder of the NVIDIA v4.x class config"""
    amd_model: str
    """folder under AMD harness_llm/models"""
    metric: str = "output_tokens_per_s"
    desc: str = ""


_L2 = dict(
    model="llama-2-70b",
    dist="openorca-mlperf",
    input_len="222.33",
    output_len="294.45",
    cfg_v5="llama2-70b",
    cfg_v4="llama2-70b",
    amd_model="llama2-70b",
    desc=(
        "length_dist openorca-mlperf: MLPerf llama2-70b OpenOrca set, 24,576 samples, input "
        "48-1021 tokens; input_len = dataset mean 222.33 (openshift-psap/performance-dashboard "
        "mlperf-data/summaries/llama2-70b-99.csv @7cd1065d), output_len = MLCommons reference "
        "tokens_per_sample 294.45 (mlcommons/inference language/llama2-70b/README.md)"
    ),
)
_405 = dict(
    model="llama-3.1-405b",
    dist="llama3.1-405b-mlperf",
    input_len="9428.64",
    output_len="684.68",
    cfg_v5="llama3_1-405b",
    cfg_v4="llama3_1-405b",
    amd_model="llama3_1-405b",
    desc=(
        "length_dist llama3.1-405b-mlperf: 8,313 samples, inputs 476-19,988 tokens; input_len = "
        "dataset mean 9,428.64 (psap mlperf-data/summaries/llama3-1-405b.csv @67033bae), "
        "output_len = MLCommons reference tokens_per_sample 684.68"
    ),
)
_8B = dict(
    model="llama-3.1-8b",
    dist="cnndm-mlperf-llama3.1-8b",
    input_len="870.73",
    output_len="",
    cfg_v5="llama3_1-8b",
    cfg_v4="llama3_1-8b",
    amd_model="llama3_1-8b",
    desc=(
        "length_dist cnndm-mlperf-llama3.1-8b: 13,368 CNN/DailyMail articles; input_len = dataset "
        "mean 870.73 (psap @7cd1065d); no reference output mean in tokens (output_len empty)"
    ),
)
_GPTJ = dict(
    model="gpt-j-6b",
    dist="cnndm-mlperf-gptj",
    input_len="",
    output_len="",
    cfg_v5="gptj",
    cfg_v4="gptj",
    amd_model="gptj",
    metric="samples_per_s",
    desc=(
        "length_dist cnndm-mlperf-gptj: 13,368 CNN/DailyMail articles, outputs <=128 tokens; no "
        "token-length means found (lengths empty); metric is samples/s, the benchmark's metric"
    ),
)
BENCHES: dict[str, Bench] = {
    "llama2-70b-99": Bench(**_L2),
    "llama2-70b-99.9": Bench(**_L2),
    "llama2-70b-interactive-99": Bench(**_L2),
    "llama2-70b-interactive-99.9": Bench(**_L2),
    "mixtral-8x7b": Bench(
        model="mixtral-8x7b",
        dist="mixtral-mlperf",
        input_len="427.39",
        output_len="144.84",
        cfg_v5="mixtral-8x7b",
        cfg_v4="mixtral-8x7b",
        amd_model="mixtral-8x7b",
        desc=(
            "length_dist mixtral-mlperf: 5k OpenOrca + 5k GSM8K + 5k MBXP; input_len = dataset "
            "mean 427.39 (psap mixtral-8x7b.csv @67033bae), output_len = MLCommons reference "
            "tokens_per_sample 144.84"
        ),
    ),
    "llama3.1-405b": Bench(**_405),
    "llama3_1-405b": Bench(**_405),
    "llama3.1-405b-interactive": Bench(**_405),
    "llama3.1-8b": Bench(**_8B),
    "llama3_1-8b": Bench(**_8B),
    "deepseek-r1": Bench(
        model="deepseek-r1",
        dist="deepseek-r1-mlperf",
        input_len="803.79",
        output_len="3886.23",
        cfg_v5="deepseek-r1",
        cfg_v4="deepseek-r1",
        amd_model="deepseek-r1",
        desc=(
            "length_dist deepseek-r1-mlperf: 4,388 reasoning samples; input_len = dataset mean "
            "803.79 (psap @7cd1065d), output_len = MLCommons reference 3,886.23"
        ),
    ),
    "gptj-99": Bench(**_GPTJ),
    "gptj-99.9": Bench(**_GPTJ),
}
"""LLM benchmarks of rounds v4.0-v5.1 (datacenter suite). Dataset means: SCHEMA.md."""

SCENARIOS = ("Offline", "Server", "Interactive")

# --- the summary ------------------------------------------------------------------------


def _grab(text: str, pattern: str) -> float | None:
    m = re.search(pattern, text, re.MULTILINE)
    return float(m.group(1)) if m else None


_NUM = r"\s*:\s*([0-9.eE+-]+)"


def parse_summary(text: str) -> dict[str, Any]:
    """Fields of an ``mlperf_log_summary.txt`` (None where absent)."""
    valid = re.search(r"^Result is\s*:\s*(\S+)", text, re.MULTILINE)
    tok = re.search(
        r"^(?:Completed tokens per second|Tokens per second)\s*(\(inferred\))?" + _NUM,
        text,
        re.MULTILINE,
    )
    return {
        "valid": bool(valid and valid.group(1) == "VALID"),
        "samples": _grab(text, r"^(?:Completed samples per second|Samples per second)" + _NUM),
        "tokens": float(tok.group(2)) if tok else None,
        "tokens_inferred": bool(tok and tok.group(1)),
        "ttft_mean": _grab(text, r"^Mean First Token latency \(ns\)" + _NUM),
        "ttft_p99": _grab(text, r"^99\.00 percentile first token latency \(ns\)" + _NUM),
        "tpot_mean": _grab(text, r"^Mean Time to Output Token \(ns\)" + _NUM),
        "tpot_p99": _grab(text, r"^99\.00 percentile time to output token \(ns\)" + _NUM),
        "lat_p99": _grab(text, r"^99\.00 percentile latency \(ns\)" + _NUM),
        "slo_ttft": _grab(text, r"^ttft_latency \(ns\)" + _NUM),
        "slo_tpot": _grab(text, r"^tpot_latency \(ns\)" + _NUM),
        "slo_e2e": _grab(text, r"^target_latency \(ns\)" + _NUM),
        "target_qps": _grab(text, r"^target_qps" + _NUM),
    }


# --- the layout ------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Layout:
    tp: int | None = None
    pp: int = 1
    ep: int = 1
    dp: int = 1
    batch: int | None = None
    weight: str = ""
    act: str = ""
    kv: str = ""
    source: str = ""
    said: list[str] = field(default_factory=list)
    inferred: list[str] = field(default_factory=list)


_DTYPES = {
    "fp4": "fp4",
    "nvfp4": "fp4",
    "fp8": "fp8",
    "fp16": "fp16",
    "bf16": "bf16",
    "int8": "int8",
}


def _strip_sys(name: str) -> str:
    n = name.upper().replace("-", "_")
    n = re.sub(r"(_TRT|_MAXQ|_TRITON|_HIGHACCURACY)+$", "", n)
    return n


def _sys_match(system: str, candidate: str) -> bool:
    s, c = _strip_sys(system), _strip_sys(candidate)
    return s == c or s.endswith("_" + c) or c.endswith("_" + s)


def _want(bench: str, system: str) -> tuple[float, str, str]:
    acc = 0.999 if bench.endswith("99.9") else 0.99
    power = "MaxQ" if "maxq" in system.lower() else "MaxP"
    harness = "Triton" if "triton" in system.lower() else "Custom"
    return acc, power, harness


def _nv_fields(cfg: dict[str, Any], model_key: str) -> Layout:
    lay = Layout()
    build = cfg.get("trtllm_build_flags")
    build = build if isinstance(build, dict) else {}
    tp = cfg.get("tensor_parallelism", build.get("tensor_parallelism"))
    pp = cfg.get("pipeline_parallelism", build.get("pipeline_parallelism"))
    if isinstance(tp, int):
        lay.tp = tp
        lay.pp = pp if isinstance(pp, int) else 1
    ep = cfg.get("moe_expert_parallelism")
    gbs = cfg.get("gpu_batch_size")
    if isinstance(gbs, dict) and gbs:
        b = gbs.get(model_key, next(iter(gbs.values())))
        lay.batch = b if isinstance(b, int) else None
    prec = str(cfg.get("precision", "")).lower()
    if cfg.get("use_fp8") is True:
        prec = "fp8"
    if prec in _DTYPES:
        lay.weight = lay.act = _DTYPES[prec]
    ck = cfg.get("trtllm_checkpoint_flags")
    if isinstance(ck, dict) and str(ck.get("kv_cache_dtype", "")).lower() in _DTYPES:
        lay.kv = _DTYPES[str(ck["kv_cache_dtype"]).lower()]
    runtime = cfg.get("trtllm_runtime_flags")
    flags = {**build, **(runtime if isinstance(runtime, dict) else {})}
    if isinstance(ep, int):
        lay.ep = ep
    if flags.get("enable_attention_dp") and lay.tp:
        lay.said.append(
            f"attention data parallel (enable_attention_dp) over tensor_parallelism={lay.tp} "
            f"with moe_expert_parallelism={lay.ep}: recorded as dp={lay.tp}, tp=1, ep={lay.ep}"
        )
        if lay.batch is not None:
            # NVIDIA's harness: "max-bs applies per attention-rank" (closed/NVIDIA/code/llmlib/
            # config.py, TrtllmEndpointConfig), so the replica holds tp times gpu_batch_size
            lay.said.append(
                f"gpu_batch_size {lay.batch} is per attention rank (llmlib/config.py): "
                f"batch = {lay.batch} x {lay.tp} = {lay.batch * lay.tp}"
            )
            lay.batch *= lay.tp
        lay.dp, lay.tp = lay.tp, 1
    return lay


def _nv_v5(tree: _Index, sub: str, system: str, bench: str, scen: str) -> Layout | None:
    b = BENCHES[bench]
    cands = [
        p
        for p in tree.by_prefix(f"closed/{sub}/configs/")
        if p.endswith(f"/{scen}/{b.cfg_v5}.py") and p.count("/") == 5
    ]
    match = sorted((p for p in cands if _sys_match(system, p.split("/")[3])), key=len)
    if not match:
        return None
    path = match[-1]
    env = module_env(tree.read(path))
    exports = env.get("EXPORTS")
    if not isinstance(exports, dict):
        return None
    acc, power, harness = _want(bench, system)
    for key, cfg in exports.items():
        if isinstance(key, tuple) and len(key) == 3 and isinstance(cfg, dict):
            h, a, pw = key
            if abs(float(a) - acc) < 1e-6 and pw == power and (h == harness or harness == "Custom"):
                lay = _nv_fields(cfg, b.cfg_v5.replace("_", "."))
                lay.source = path
                return lay
    return None


def _class_attrs(text: str) -> dict[str, tuple[list[str], dict[str, Any], tuple[Any, ...] | None]]:
    """Classes of a v4.x NVIDIA config module: name -> (bases, attributes, register key)."""
    out: dict[str, tuple[list[str], dict[str, Any], tuple[Any, ...] | None]] = {}
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return out
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases]
        attrs: dict[str, Any] = {}
        for st in node.body:
            if isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Name):
                name = st.targets[0].id
                if isinstance(st.value, ast.Attribute) and name == "system":
                    attrs[name] = st.value.attr
                    continue
                try:
                    attrs[name] = py_eval(st.value, {})
                except Unknown:
                    continue
        reg = None
        for d in node.decorator_list:
            if isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "register":
                reg = tuple(getattr(a, "attr", None) for a in d.args)
        out[node.name] = (bases, attrs, reg)
    return out


def _resolve(classes: dict[str, Any], name: str, depth: int = 0) -> dict[str, Any]:
    if name not in classes or depth > 20:
        return {}
    bases, attrs, _ = classes[name]
    merged: dict[str, Any] = {}
    for b in reversed(bases):
        merged.update(_resolve(classes, b, depth + 1))
    merged.update(attrs)
    return merged


def _nv_v4(tree: _Index, sub: str, system: str, bench: str, scen: str) -> Layout | None:
    b = BENCHES[bench]
    path = f"closed/{sub}/configs/{b.cfg_v4}/{scen}/__init__.py"
    if not tree.has(path):
        return None
    classes: dict[str, Any] = {}
    for p in (f"closed/{sub}/configs/{b.cfg_v4}/__init__.py", path, path[:-11] + "custom.py"):
        if tree.has(p):
            classes.update(_class_attrs(tree.read(p)))
    acc, power, harness = _want(bench, system)
    want_acc = "k_99_9" if acc > 0.99 else "k_99"
    best: tuple[int, str] | None = None
    for name, (_, _, reg) in classes.items():
        if not reg or len(reg) < 3 or reg[1] != want_acc or reg[2] != power:
            continue
        if harness == "Triton" and reg[0] != "Triton":
            continue
        if harness == "Custom" and reg[0] == "Triton":
            continue
        sysname = _resolve(classes, name).get("system")
        if isinstance(sysname, str) and _sys_match(system, sysname.replace("ARM", "AARCH64")):
            score = len(sysname)
            if best is None or score > best[0]:
                best = (score, name)
    if best is None:
        return None
    lay = _nv_fields(_resolve(classes, best[1]), b.cfg_v4.replace("_", "."))
    if lay.weight == "fp8" and not lay.kv:
        for doc in ("README.md", "builder.py"):
            src = f"closed/{sub}/code/{b.cfg_v4}/tensorrt/{doc}"
            if tree.has(src) and re.search(r"kv_cache_dtype[= ]+fp8", tree.read(src)):
                lay.kv = "fp8"
                lay.said.append(f"kv fp8 from the FP8 quantization recipe in {src}")
                break
    where = (
        "custom.py"
        if best[1] in _class_attrs(_read_opt(tree, path[:-11] + "custom.py"))
        else "__init__.py"
    )
    lay.source = f"{path[:-11]}{where} class {best[1]}"
    return lay


def _read_opt(tree: _Index, path: str) -> str:
    return tree.read(path) if tree.has(path) else ""


def _amd_yaml(tree: _Index, sub: str, bench: str, scen: str, chip: str) -> Layout | None:
    b = BENCHES[bench]
    tail = f"/models/{b.amd_model}/{scen.lower()}_{chip}.yaml"
    sibling = bench[:-2] if bench.endswith("99.9") else bench + ".9"
    cands: list[str] = []
    for folder in (bench, sibling):
        cands = sorted(
            (p for p in tree.by_prefix(f"closed/{sub}/code/{folder}/") if p.endswith(tail)), key=len
        )
        if cands:
            break
    if not cands:
        return None
    path = cands[0]
    try:
        cfg = yaml.safe_load(tree.read(path)) or {}
        common_path = path.split("/models/")[0] + "/common/config.yaml"
        common = yaml.safe_load(tree.read(common_path)) if tree.has(common_path) else {}
    except yaml.YAMLError:
        return None
    eng = {
        **((common or {}).get("vllm_engine_config") or {}),
        **(cfg.get("vllm_engine_config") or {}),
    }
    lay = Layout(source=path)
    tp = eng.get("tensor_parallel_size")
    lay.tp = tp if isinstance(tp, int) else None
    pp = eng.get("pipeline_parallel_size")
    lay.pp = pp if isinstance(pp, int) and pp > 0 else 1
    seqs = eng.get("max_num_seqs")
    lay.batch = seqs if isinstance(seqs, int) else None
    if str(eng.get("quantization", "")).lower() == "fp8":
        lay.weight = lay.act = "fp8"
        lay.said.append("vLLM quantization fp8 (Quark FP8 weights and activations)")
    kv = str(eng.get("kv_cache_dtype", "")).lower()
    if kv in _DTYPES:
        lay.kv = _DTYPES[kv]
        if "kv_cache_dtype" not in (cfg.get("vllm_engine_config") or {}):
            lay.said.append(f"kv {kv} from the harness default {common_path}")
    lay.said.append(f"vLLM engine config: tensor_parallel_size {lay.tp}, max_num_seqs {seqs}")
    if f"/code/{bench}/" not in path:
        lay.said.append(
            f"config taken from the submitter's {sibling} code folder (the {bench} one has none)"
        )
    return lay


def _amd_v41(tree: _Index, sub: str, bench: str, scen: str) -> Layout | None:
    path = f"closed/{sub}/code/{bench}/VllmFp8/SUTVllm.py"
    if not tree.has(path):
        return None
    m = re.search(r'\["tensor_parallel_size"\]\s*=\s*(\d+)', tree.read(path))
    if not m:
        return None
    lay = Layout(
        tp=int(m.group(1)),
        weight="fp8",
        act="fp8",
        source=path,
        said=[f"vLLM tensor_parallel_size hard-coded to {m.group(1)} in {path}"],
        inferred=["weight_dtype", "act_dtype"],
    )
    script = "Offline" if scen == "Offline" else "AsyncServer"
    run = f"closed/{sub}/code/{bench}/test_VllmFp8/test_VllmFp8_{script}_perf.sh"
    text = tree.read(run) if tree.has(run) else ""
    kv = re.search(r"--kv-cache-dtype\s+(\w+)", text)
    quant = re.search(r"--quantization\s+(\w+)", text)
    if kv and kv.group(1) in _DTYPES:
        lay.kv = _DTYPES[kv.group(1)]
    if quant and quant.group(1) == "fp8":
        lay.inferred = []
        lay.said.append(
            f"{run}: --quantization fp8 (vLLM FP8 W8A8: FP8 weights and activations)"
            + (f", --kv-cache-dtype {kv.group(1)}" if kv else "")
        )
    else:
        lay.said.append("FP8 weights and activations (Quark FP8, closed/AMD README)")
    lay.said.append("batch (max_num_seqs) not fixed in the files")
    return lay


def find_layout(
    tree: _Index, sub: str, system: str, bench: str, scen: str, chip: str
) -> Layout | None:
    """The submitter's layout for one result, or None when no parsable config is found."""
    for finder in (
        lambda: _nv_v5(tree, sub, system, bench, scen),
        lambda: _nv_v4(tree, sub, system, bench, scen),
        lambda: _amd_yaml(tree, sub, bench, scen, chip),
        lambda: _amd_v41(tree, sub, bench, scen),
    ):
        lay = finder()
        if lay is not None and lay.tp is not None:
            return lay
    return None


# --- the tree index --------------------------------------------------------------------------


class _Index:
    """The SourceTree's relevant paths listed once (listing is the slow part of big trees)."""

    def __init__(self, tree: SourceTree) -> None:
        self.tree = tree
        self.paths: list[str] = []
        for pat in (
            "closed/*/results/*/*/*/performance/run_1/mlperf_log_summary.txt",
            "closed/*/systems/*.json",
            "closed/*/configs/**/*.py",
            "closed/*/code/**/*.yaml",
            "closed/*/code/*/VllmFp8/SUTVllm.py",
            "closed/*/code/*/test_VllmFp8/*_perf.sh",
            "closed/*/code/*/tensorrt/README.md",
            "closed/*/code/*/tensorrt/builder.py",
            "closed/*/measurements/*/*/*/*.json",
        ):
            self.paths.extend(tree.list(pat))
        self.paths = sorted(set(self.paths))
        self._set = set(self.paths)
        self._cache: dict[str, str] = {}

    def has(self, path: str) -> bool:
        return path in self._set

    def by_prefix(self, prefix: str) -> Iterable[str]:
        return (p for p in self.paths if p.startswith(prefix))

    def read(self, path: str) -> str:
        """Text of a listed file; '' when the local copy lacks its content (git mirrors omit
        files of 4 MiB and more), so that result is skipped rather than the whole import."""
        if path not in self._cache:
            try:
                self._cache[path] = self.tree.read(path)
            except SiliconomicsError:
                self._cache[path] = ""
        return self._cache[path]


# --- rows --------------------------------------------------------------------------------------


def _system(tree: _Index, sub: str, system: str) -> dict[str, Any] | None:
    path = f"closed/{sub}/systems/{system}.json"
    if not tree.has(path):
        return None
    try:
        d = json.loads(tree.read(path))
    except json.JSONDecodeError:
        return None
    return d if isinstance(d, dict) else None


def _weights_stated(tree: _Index, sub: str, system: str, bench: str, scen: str) -> str:
    base = f"closed/{sub}/measurements/{system}/{bench}/{scen}/"
    for p in tree.by_prefix(base):
        if p.endswith(".json") and p.count("/") == base.count("/"):
            try:
                d = json.loads(tree.read(p))
            except json.JSONDecodeError:
                continue
            if isinstance(d, dict):
                return str(d.get("weight_data_types", ""))
    return ""


def _lat_notes(s: dict[str, Any]) -> str:
    parts = []
    if s["ttft_p99"] is not None:
        parts.append(
            f"Measured TTFT mean={s['ttft_mean'] / 1e6:.0f} ms p99={s['ttft_p99'] / 1e6:.0f} ms; "
            f"TPOT mean={(s['tpot_mean'] or 0) / 1e6:.1f} ms p99={(s['tpot_p99'] or 0) / 1e6:.1f} ms"
        )
    if s["lat_p99"] is not None and s["slo_e2e"] is not None:
        parts.append(f"measured p99 latency {s['lat_p99'] / 1e9:.2f} s")
    if s["slo_ttft"] is not None:
        parts.append(
            f"constraint TTFT p99<={s['slo_ttft'] / 1e6:.0f} ms, "
            f"TPOT p99<={(s['slo_tpot'] or 0) / 1e6:.0f} ms"
        )
    if s["slo_e2e"] is not None:
        parts.append(f"constraint p99 latency<={s['slo_e2e'] / 1e9:.0f} s")
    if s["target_qps"] is not None:
        parts.append(f"target_qps={fmt(s['target_qps'])}")
    return "; ".join(parts)


@dataclass(frozen=True, kw_only=True)
class _Result:
    rnd: str
    sub: str
    system: str
    bench: str
    scen: str
    path: str


def _results(tree: _Index) -> list[_Result]:
    out = []
    for p in tree.paths:
        parts = p.split("/")
        if len(parts) != 9 or parts[2] != "results" or parts[-1] != "mlperf_log_summary.txt":
            continue
        _, sub, _, system, bench, scen, *_ = parts
        if bench in BENCHES and scen in SCENARIOS:
            out.append(_Result(rnd="", sub=sub, system=system, bench=bench, scen=scen, path=p))
    return out


def _value(b: Bench, s: dict[str, Any]) -> tuple[str, float | None, str]:
    """(metric, value, note) for a summary."""
    if b.metric == "samples_per_s" or s["tokens"] is None:
        note = ""
        if s["tokens"] is not None:
            note = f"log also gives tokens/s (inferred by loadgen) = {fmt(s['tokens'])}"
        return "samples_per_s", s["samples"], note
    return "output_tokens_per_s", s["tokens"], ""


def _length_notes(row: Row, b: Bench, s: dict[str, Any]) -> list[str]:
    """Notes on the run's generated tokens per sample and the dataset lengths; fills
    ``output_len`` from the run where the dataset has no reference mean."""
    out = []
    per = s["tokens"] / s["samples"] if s["tokens"] and s["samples"] else None
    if per is not None:
        out.append(
            f"This run: {fmt(s['tokens'])} tok/s / {fmt(s['samples'])} samples/s = "
            f"{per:.1f} generated tokens/sample"
        )
    out.append(b.desc)
    if not b.output_len and per is not None:
        row["output_len"] = f"{per:.2f}"
        out.append(
            "output_len = this run's generated tokens/s / samples/s (no reference mean output "
            "length in tokens is published for this dataset)"
            + (
                " (tokens/s is loadgen's estimate from the accuracy run)"
                if s["tokens_inferred"]
                else ""
            )
        )
    return out


def _row(tree: _Index, r: _Result, rnd: str, label: str, s: dict[str, Any]) -> Row | None:
    b = BENCHES[r.bench]
    sysd = _system(tree, r.sub, r.system)
    if sysd is None:
        return None
    accel = str(sysd.get("accelerator_model_name", ""))
    chip = chip_id(accel)
    per_node, nodes = num(sysd.get("accelerators_per_node")), num(sysd.get("number_of_nodes"))
    if chip is None or not per_node:
        return None
    n_chips = int(per_node * (nodes or 1))
    metric, value, vnote = _value(b, s)
    if value is None:
        return None
    scen = "offline" if r.scen == "Offline" else "server"
    lay = find_layout(tree, r.sub, r.system, r.bench, r.scen, chip)
    notes = [
        f"MLPerf Inference v{rnd} closed, {r.sub} system '{r.system}' ({accel}, "
        f"{per_node:.0f} per node x {nodes or 1:.0f} node(s)), benchmark {r.bench}, scenario "
        f"{r.scen}, result VALID; samples/s={fmt(s['samples'] or 0)}"
    ]
    if r.scen == "Interactive" or "interactive" in r.bench:
        notes.append("MLPerf Interactive = Server scenario with tighter TTFT/TPOT limits")
    if vnote:
        notes.append(vnote)
    lat = _lat_notes(s) if scen == "server" else ""
    if lat:
        notes.append(lat)
    if chip in CHIP_NOTES:
        notes.append(CHIP_NOTES[chip])
    stated_w = _weights_stated(tree, r.sub, r.system, r.bench, r.scen)
    if stated_w:
        notes.append(f"measurements JSON weight_data_types '{stated_w}'")
    row: Row = {
        "kind": "inference",
        "scenario": scen,
        "model": b.model,
        "chip": chip,
        "n_chips": str(n_chips),
        "cp": "1",
        "input_len": b.input_len,
        "output_len": b.output_len,
        "length_dist": b.dist,
        "metric": metric,
        "value": fmt(value),
        "software": "; ".join(
            x
            for x in (str(sysd.get("framework", "")), str(sysd.get("other_software_stack", "")))
            if x
        ),
        "source": f"{label}: {r.path}",
    }
    if scen == "offline":  # loadgen prints the server limits in Offline logs too; not enforced
        s = {**s, "slo_ttft": None, "slo_tpot": None, "slo_e2e": None, "target_qps": None}
    if s["slo_ttft"] is not None:
        row["slo_ttft_s"] = fmt(s["slo_ttft"] / 1e9)
        row["slo_tpot_s"] = fmt((s["slo_tpot"] or 0) / 1e9)
    if s["slo_e2e"] is not None:
        row["slo_e2e_s"] = fmt(s["slo_e2e"] / 1e9)
    norm = _fill_layout(row, lay, n_chips, notes)
    norm.extend(_length_notes(row, b, s))
    if scen == "server":
        norm.append(
            "slo_* are the p99 limits loadgen enforced (Test Parameters of this log); throughput "
            "is the highest load meeting them"
        )
    row["notes"] = ". ".join(notes) + ". | NORMALIZED: " + ". ".join(norm) + "."
    if row.get("usable") == "false":
        row["notes"] += " | UNUSABLE: " + row.pop("_why", "")
    row.pop("_why", None)
    return row


def _fill_layout(row: Row, lay: Layout | None, n_chips: int, notes: list[str]) -> list[str]:
    norm: list[str] = []
    if lay is None or lay.tp is None:
        row["usable"] = "false"
        row["_why"] = (
            "parallel layout (tp/pp per replica) not found in a submitter config this importer "
            "parses (NVIDIA-harness configs, AMD harness_llm YAML)"
        )
        return norm
    per = lay.tp * lay.pp * lay.dp
    if per <= 0 or n_chips % per:
        row["usable"] = "false"
        row["_why"] = (
            f"config layout tp{lay.tp} x pp{lay.pp} x dp{lay.dp} does not divide {n_chips} chips"
        )
        return norm
    row.update(
        usable="true",
        replicas=str(n_chips // per),
        tp=str(lay.tp),
        pp=str(lay.pp),
        ep=str(lay.ep),
        dp=str(lay.dp),
        weight_dtype=lay.weight,
        act_dtype=lay.act,
        kv_dtype=lay.kv,
        batch=str(lay.batch) if lay.batch else "",
        inferred_fields=";".join(lay.inferred),
    )
    notes.append(f"Config {lay.source}")
    norm.append(
        f"{n_chips // per} replica(s) of tp{lay.tp} x pp{lay.pp}"
        + (f" x dp{lay.dp}" if lay.dp > 1 else "")
        + f" over {n_chips} chips (replicas = n_chips / (tp*pp*dp))"
    )
    norm.extend(lay.said)
    if lay.batch:
        norm.append(
            "batch = the config's per-engine batch limit (gpu_batch_size / max_num_seqs); the "
            "scheduler decides the real batch"
        )
    if not lay.weight:
        norm.append("precision not stated in the parsed config (dtype fields empty)")
    return norm


def _dedupe(
    rows: list[tuple[_Result, dict[str, Any]]],
) -> tuple[list[tuple[_Result, dict[str, Any]]], set[str]]:
    """Drop -99.9 results whose summary equals the -99 result of the same system (same run)."""
    seen = {(r.sub, r.system, r.bench, r.scen): s for r, s in rows}
    kept, same = [], set()
    for r, s in rows:
        if r.bench.endswith("-99.9"):
            twin = seen.get((r.sub, r.system, r.bench[:-2], r.scen))
            if (
                twin is not None
                and twin["tokens"] == s["tokens"]
                and twin["samples"] == s["samples"]
            ):
                same.add(f"{r.sub}/{r.system}/{r.bench[:-2]}/{r.scen}")
                continue
        kept.append((r, s))
    return kept, same


def read(tree: SourceTree) -> list[Row]:
    """Normalized rows of one MLPerf Inference results tree (round taken from the label)."""
    rnd = round_from_label(tree.label, ALLOWED_INFERENCE, "inference")
    idx = _Index(tree)
    parsed = []
    for r in _results(idx):
        s = parse_summary(idx.read(r.path))
        if s["valid"]:
            parsed.append((r, s))
    kept, same = _dedupe(parsed)
    rows: list[Row] = []
    for r, s in kept:
        row = _row(idx, r, rnd, tree.label, s)
        if row is None:
            continue
        if f"{r.sub}/{r.system}/{r.bench}/{r.scen}" in same:
            row["notes"] += (
                f" | DEDUPED: the {r.bench}.9 result of this system is the same run (identical "
                "throughput) and is not repeated"
            )
        row["id"] = ident(f"MLPI-{rnd}", r.sub, r.system, r.bench, r.scen)
        rows.append(row)
    rows.sort(key=lambda x: x["id"])
    return rows


IMPORTER: Importer = register(
    Importer(
        name="mlperf-inference",
        description=(
            "MLPerf Inference results tree v4.0-v5.1 (github mlcommons/inference_results_vX.Y; "
            "--label must name the round): closed-division LLM results with layouts from "
            "submitter configs"
        ),
        read=read,
    )
)

"""MLPerf Training results trees (v4.0-v5.0, closed division, LLM benchmarks) -> rows.

Reads ``<submitter>/results/<system>/<benchmark>/result_*.txt`` (MLLOG lines) for gpt3,
llama2_70b_lora and llama31_405b, ``<submitter>/systems/<system>.json`` (accelerator, count,
software), and the submitter's launch config ``<submitter>/benchmarks/<benchmark>/
implementations/<impl>/config_*.sh`` for the parallel layout (NeMo/Megatron-style exports:
TP/TENSOR_MODEL_PARALLEL, PP/PIPELINE_MODEL_PARALLEL, CP/CONTEXT_PARALLEL, MICRO_BATCH_SIZE,
INTERLEAVED_PIPELINE, FP8). Per benchmark result it writes a step-throughput row where the logs
carry per-step statistics (``tracked_stats``), and always a time-to-train row (``usable=false``:
it depends on convergence).
"""

from __future__ import annotations

import datetime
import difflib
import itertools
import json
import re
import statistics
from dataclasses import dataclass, field
from typing import Any

from ...errors import SiliconomicsError
from . import Importer, Row, SourceTree, register
from ._mlperf_common import ALLOWED_TRAINING, CHIP_NOTES, chip_id, fmt, ident, num, round_from_label


@dataclass(frozen=True, kw_only=True)
class TBench:
    model: str
    seq_len: int
    method: str
    desc: str


BENCHES: dict[str, TBench] = {
    "gpt3": TBench(
        model="gpt-3-175b",
        seq_len=2048,
        method="full",
        desc="MLPerf gpt3: GPT-3 175B on C4, continued from a checkpoint to log-perplexity 2.69, seq 2048",
    ),
    "llama2_70b_lora": TBench(
        model="llama-2-70b",
        seq_len=8192,
        method="lora",
        desc=(
            "MLPerf llama2_70b_lora: LoRA fine-tuning of Llama-2-70B on GovReport (SCROLLS), "
            "sequences of 8192 tokens, to eval loss 0.925"
        ),
    ),
    "llama31_405b": TBench(
        model="llama-3.1-405b",
        seq_len=8192,
        method="full",
        desc="MLPerf llama31_405b: Llama-3.1-405B pre-training on C4 continued from a checkpoint, seq 8192",
    ),
}

# --- MLLOG -----------------------------------------------------------------------------------

_MLLOG = re.compile(r":::MLLOG (\{.*\})")


def parse_mllog(text: str) -> dict[str, Any]:
    """run time, global batch, and per-step statistics of one result_*.txt."""
    out: dict[str, Any] = {
        "throughput": [],
        "step_time": [],
        "gbs": None,
        "start": None,
        "stop": None,
    }
    out.update(status=None, blocks=[], _open=None, evals=[])
    for line in text.splitlines():
        m = _MLLOG.search(line)
        if not m:
            continue
        try:
            ev = json.loads(m.group(1))
        except json.JSONDecodeError:
            continue
        _take(ev, out)
    return out


def _take(ev: dict[str, Any], out: dict[str, Any]) -> None:
    key, val = ev.get("key"), ev.get("value")
    if key == "run_start":
        out["start"] = ev.get("time_ms")
    elif key == "run_stop":
        out["stop"] = ev.get("time_ms")
        out["status"] = (ev.get("metadata") or {}).get("status")
    elif key in ("eval_start", "eval_stop"):
        epoch = (ev.get("metadata") or {}).get("epoch_num")
        if isinstance(epoch, int | float) and isinstance(ev.get("time_ms"), int | float):
            out["evals"].append((key, float(ev["time_ms"]), float(epoch)))
    elif key == "block_start":
        out["_open"] = (ev.get("time_ms"), (ev.get("metadata") or {}).get("epoch_count"))
    elif key == "block_stop" and out["_open"] is not None:
        t0, count = out["_open"]
        if isinstance(t0, int | float) and isinstance(count, int | float):
            out["blocks"].append((float(count), (ev["time_ms"] - t0) / 1000.0))
        out["_open"] = None
    elif key == "global_batch_size" and isinstance(val, int | float):
        out["gbs"] = int(val)
    elif key == "tracked_stats" and isinstance(val, dict):
        if isinstance(val.get("throughput"), int | float):
            out["throughput"].append(float(val["throughput"]))
        if isinstance(val.get("train_step_timing in s"), int | float):
            out["step_time"].append(float(val["train_step_timing in s"]))


# --- launch configs --------------------------------------------------------------------------

_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=(\S*)")
_SOURCE = re.compile(r"^\s*(?:source|\.)\s+.*/([A-Za-z0-9_.-]+\.sh)\b")


def shell_env(
    files: dict[str, str], name: str, env: dict[str, str] | None = None, depth: int = 0
) -> dict[str, str]:
    """Variables a launch config exports: ``X=v``, ``X="${Y:=v}"`` (Y if set, else v) and
    ``source .../other.sh`` of a file in the same folder, in file order (branches of ``if``
    blocks are all read: a simplification)."""
    env = {} if env is None else env
    if name not in files or depth > 5:
        return env
    for raw in files[name].splitlines():
        line = raw.split("#", 1)[0]
        src = _SOURCE.match(line)
        if src:
            shell_env(files, src.group(1), env, depth + 1)
            continue
        m = _ASSIGN.match(line)
        if not m:
            continue
        var, val = m.group(1), m.group(2).strip("\"'")
        default = re.fullmatch(r"\$\{(\w+):?[=-]([^}]*)\}", val)
        if default:  # X=${Y:=d}: Y if set, else d (and Y becomes d)
            ref, dflt = default.groups()
            if ref == var:
                env.setdefault(var, dflt)
            else:
                env[var] = env.setdefault(ref, dflt)
        elif "$" not in val:
            env[var] = val
    return env


def _int(env: dict[str, str], *names: str) -> int | None:
    for n in names:
        v = env.get(n, "")
        if re.fullmatch(r"\d+", v):
            return int(v)
    return None


@dataclass(kw_only=True)
class TLayout:
    tp: int = 1
    pp: int = 1
    cp: int = 1
    vpp: int | None = None
    mbs: int | None = None
    dtype: str = ""
    fsdp: int | None = None
    recompute: str = ""
    source: str = ""
    said: list[str] = field(default_factory=list)
    inferred: list[str] = field(default_factory=list)


def _layout_from_env(env: dict[str, str], source: str) -> TLayout | None:
    tp = _int(env, "TENSOR_MODEL_PARALLEL", "TP")
    pp = _int(env, "PIPELINE_MODEL_PARALLEL", "PP")
    cp = _int(env, "CONTEXT_PARALLEL", "CP")
    if tp is None and pp is None and cp is None:
        return None
    lay = TLayout(tp=tp or 1, pp=pp or 1, cp=cp or 1, source=source)
    vpp = _int(env, "INTERLEAVED_PIPELINE")
    lay.vpp = vpp if vpp and lay.pp > 1 else None
    lay.mbs = _int(env, "MICRO_BATCH_SIZE")
    fp8 = any(k.startswith("FP8") and v.lower() in ("true", "1") for k, v in env.items())
    lay.dtype = "fp8" if fp8 or env.get("FP8", "").lower() == "hybrid" else ""
    if lay.dtype:
        lay.dtype = _fp8_recipe(env)
    nodes, gpus = _int(env, "DGXNNODES"), _int(env, "DGXNGPU")
    lay.said.append(
        f"launch config {source}: TP {lay.tp}, PP {lay.pp}, CP {lay.cp}"
        + (f", virtual PP {lay.vpp}" if lay.vpp else "")
        + (f", micro batch {lay.mbs}" if lay.mbs else "")
        + (f", {nodes} nodes x {gpus} GPUs" if nodes and gpus else "")
    )
    return lay


def _on(v: str | None) -> bool:
    return (v or "").strip().lower() in ("true", "1")


def _fp8_recipe(env: dict[str, str]) -> str:
    """The FP8 training recipe a NeMo/Megatron launch config selects: FP8 attention
    (``FP8_DPA=1``: model.fp8_dot_product_attention) and the activation function's input stored
    in FP8 (NVIDIA's ``FP8_ACT=1``: activation_func_fp8_input_store; AMD's
    ``FP8_ACTIVATION=True``: fp8_activation_input_store), named as in
    :data:`..training.precision.RECIPES`."""
    dpa = _on(env.get("FP8_DPA"))
    act = _on(env.get("FP8_ACT")) or _on(env.get("FP8_ACTIVATION"))
    return "fp8-dpa-act" if dpa and act else "fp8-dpa" if dpa else "fp8-act" if act else "fp8"


def _config_chips(env: dict[str, str], name: str) -> int | None:
    """Chips a config launches: DGXNNODES x DGXNGPU, else the name's '<nodes>x<gpus>x' part."""
    nodes, gpus = _int(env, "DGXNNODES"), _int(env, "DGXNGPU")
    if nodes and gpus:
        return nodes * gpus
    m = re.search(r"_(\d+)x(\d+)x", name)
    return int(m.group(1)) * int(m.group(2)) if m else None


_TAGS = {
    "h100-sxm": r"H100",
    "h200-sxm": r"H200",
    "b200": r"(?<!G)B200",
    "gb200": r"GB200",
    "l40s": r"L40S",
    "mi300x": r"MI300X",
    "mi325x": r"MI325X",
    "gaudi2": r"[Gg]audi2|HLS",
}


def _same_chip(names: list[str], chip: str, all_names: list[str]) -> list[str]:
    """Configs whose file name names the chip when any of the submitter's configs for the
    benchmark does; else those naming no chip at all (a folder often holds configs for
    several chips: one naming another chip is never taken)."""
    tag = _TAGS.get(chip)

    def names_chip(p: str, t: str | None) -> bool:
        return bool(t and re.search(t, p.rsplit("/", 1)[-1]))

    if any(names_chip(p, tag) for p in all_names):
        return [p for p in names if names_chip(p, tag)]
    tagged_dirs = {
        p.rsplit("/", 1)[0] for p in all_names if any(names_chip(p, t) for t in _TAGS.values())
    }
    return [p for p in names if p.rsplit("/", 1)[0] not in tagged_dirs]


def _configs_for(tree: SourceTree, cfgs: list[str], n_chips: int) -> dict[str, TLayout]:
    found: dict[str, TLayout] = {}
    for p in cfgs:
        name = p.rsplit("/", 1)[-1]
        if "common" in name or "mounts" in name:
            continue
        folder = p.rsplit("/", 1)[0]
        # a config sources "$(dirname ...)/config_common.sh"; some rounds keep that file in a
        # configs/ subfolder (training_results_v4.0 NVIDIA llama2_70b_lora), taken when the
        # folder itself has none of that name
        files = {
            q.rsplit("/", 1)[-1]: _read(tree, q)
            for q in cfgs
            if q.rsplit("/", 1)[0] == f"{folder}/configs"
        }
        files.update(
            {q.rsplit("/", 1)[-1]: _read(tree, q) for q in cfgs if q.rsplit("/", 1)[0] == folder}
        )
        env = shell_env(files, name)
        if _config_chips(env, name) != n_chips:
            continue
        lay = _layout_from_env(env, p)
        if lay is not None:
            found[p] = lay
    return found


def _likeness(path: str, system: str) -> float:
    return difflib.SequenceMatcher(None, path.rsplit("/", 1)[-1].lower(), system.lower()).ratio()


def find_layout(
    tree: SourceTree, paths: list[str], sub: str, system: str, bench: str, n_chips: int, chip: str
) -> TLayout | None:
    """The launch config of a result: among the configs for this chip count, those in the
    implementation folder named like the system if any, else those naming the chip (or no
    chip); taken only when they agree on one layout."""
    base = f"{sub}/benchmarks/{bench}/implementations/"
    cfgs = [p for p in paths if p.startswith(base) and p.rsplit("/", 1)[-1].startswith("config")]
    own = [p for p in cfgs if p.split("/")[4] == system]
    found = _configs_for(tree, own or cfgs, n_chips)
    if not own:
        keep = set(_same_chip(sorted(found), chip, cfgs))
        found = {p: v for p, v in found.items() if p in keep}
    layouts = {(x.tp, x.pp, x.cp, x.vpp, x.mbs, x.dtype) for x in found.values()}
    if len(layouts) != 1:
        return None
    lay = found[max(sorted(found), key=lambda p: _likeness(p, system))]
    if not own:
        lay.said.append(
            f"config chosen by chip count ({n_chips}) and chip name among {len(found)} "
            "agreeing file(s) of the submitter"
        )
    return lay


_FLAG = {
    "tp": r"--tensor-model-parallel-size[= ](\d+)",
    "pp": r"--pipeline-model-parallel-size[= ](\d+)",
    "dp": r"--data-parallel-size[= ](\d+)",
    "mbs": r"--micro-batch-size[= ](\d+)",
    "nodes": r"--num-nodes[= ](\d+)",
}


def readme_layout(
    tree: SourceTree, paths: list[str], sub: str, bench: str, n: int, per_node: int
) -> TLayout | None:
    """Layout from a run command in the benchmark README (Megatron-style flags), taken only
    when the commands for this node count agree and their TP x PP x DP equals the chip count."""
    path = f"{sub}/benchmarks/{bench}/README.md"
    if path not in paths:
        return None
    text = _read(tree, path).replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        vals = {k: int(m.group(1)) for k, rx in _FLAG.items() if (m := re.search(rx, line))}
        if not {"tp", "pp", "dp", "nodes"} <= set(vals) or vals["nodes"] * per_node != n:
            continue
        if vals["tp"] * vals["pp"] * vals["dp"] == n:
            found.append((vals, "--use-fp8" in line))
    if len({(tuple(sorted(v.items())), f) for v, f in found}) != 1:
        return None
    vals, fp8 = found[0]
    lay = TLayout(tp=vals["tp"], pp=vals["pp"], mbs=vals.get("mbs"), source=path)
    lay.dtype = "fp8" if fp8 else ""
    lay.said.append(
        f"run command in {path} for {vals['nodes']} nodes: TP {lay.tp}, PP {lay.pp}, "
        f"DP {vals['dp']}"
        + (f", micro batch {lay.mbs}" if lay.mbs else "")
        + (", FP8 (--use-fp8...)" if fp8 else "")
    )
    return lay


# --- MaxText (TPU) launch scripts ---------------------------------------------------------

_MT_ARG = re.compile(
    r"\b((?:ici|dcn)_[a-z]+_parallelism|per_device_batch_size|remat_policy|quantization)=\"?([-\w.]+)"
)
_REMAT = {"full": "full", "minimal": "selective", "none": "none"}


def _mesh(args: dict[str, str], prefix: str, chips: int) -> dict[str, int] | None:
    """MaxText mesh axes of one level (ici within a slice, dcn across slices), -1 filled."""
    axes = {k.split("_")[1]: int(v) for k, v in args.items() if k.startswith(prefix)}
    if prefix == "dcn_":
        axes.setdefault("data", -1)  # MaxText default: remaining slices data-parallel
    known = 1
    for v in axes.values():
        known *= v if v > 0 else 1
    free = [k for k, v in axes.items() if v <= 0]
    if len(free) > 1 or chips % known:
        return None
    if free:
        axes[free[0]] = chips // known
    elif known != chips:
        return None
    return axes


def maxtext_layout(
    tree: SourceTree, paths: list[str], sub: str, system: str, bench: str, n: int, topo: str
) -> TLayout | None:
    """Layout of a MaxText submission from its launch script (``<tpu>-<cores>.sh``) and the
    slice topology of the system JSON (chips per slice = product of its dimensions)."""
    m = re.search(r"(v5p|v5e|v6e|trillium)-(\d+)", system)
    dims = [int(x) for x in re.findall(r"\d+", topo)]
    if not m or not dims:
        return None
    tail = f"/{m.group(1)}-{m.group(2)}.sh"
    base = f"{sub}/benchmarks/{bench}/implementations/"
    scripts = [p for p in paths if p.startswith(base) and p.endswith(tail)]
    if len(scripts) != 1:
        return None
    args = dict(_MT_ARG.findall(_read(tree, scripts[0])))
    per_slice = 1
    for d in dims:
        per_slice *= d
    if n % per_slice:
        return None
    ici, dcn = _mesh(args, "ici_", per_slice), _mesh(args, "dcn_", n // per_slice)
    if ici is None or dcn is None:
        return None
    if any(v > 1 for k, v in {**ici, **dcn}.items() if k not in ("data", "fsdp", "tensor")):
        return None  # sequence/pipeline/expert axes: not mapped here
    lay = TLayout(tp=ici.get("tensor", 1) * dcn.get("tensor", 1), source=scripts[0])
    dp = n // lay.tp
    lay.fsdp = ici.get("fsdp", 1) * dcn.get("fsdp", 1)
    pdb = args.get("per_device_batch_size", "")
    if re.fullmatch(r"\d+", pdb):
        lay.mbs = int(pdb) * n // dp
        lay.inferred.append("micro_batch")
    remat = args.get("remat_policy", "")
    lay.recompute = _REMAT.get(remat, "selective" if remat.startswith("save_") else "")
    if args.get("quantization") == "int8":
        lay.dtype = "int8"
    lay.said.append(
        f"MaxText launch script {scripts[0]}: ici mesh {ici}, dcn mesh {dcn} "
        f"({n // per_slice} slice(s) of {per_slice} chips, topology {topo}); tp = tensor, "
        f"dp = data x fsdp = {dp}, fsdp = {lay.fsdp}; per_device_batch_size {pdb or '?'} -> "
        f"micro_batch = per_device_batch_size x n_chips / dp (no gradient accumulation assumed); "
        f"remat_policy {remat or '?'}; quantization {args.get('quantization', 'none')} "
        "(int8 AQT: int8 GEMM inputs)"
    )
    return lay


# --- rows ------------------------------------------------------------------------------------


def _date(time_ms: float) -> str:
    """UTC date of an MLLOG time stamp (shows when a result is repeated in a later round)."""
    return datetime.datetime.fromtimestamp(time_ms / 1000.0, tz=datetime.UTC).date().isoformat()


def _read(tree: SourceTree, path: str) -> str:
    """Text of a file, '' when the local copy lacks it (mirrors omit files of 4 MiB and more)."""
    try:
        return tree.read(path)
    except SiliconomicsError:
        return ""


def _olympic(xs: list[float]) -> float:
    xs = sorted(xs)
    if len(xs) >= 5:
        xs = xs[1:-1]
    return sum(xs) / len(xs)


def _runs(tree: SourceTree, files: list[str]) -> list[dict[str, Any]]:
    runs = []
    for p in files:
        r = parse_mllog(_read(tree, p))
        if r["start"] is not None and r["stop"] is not None and r["status"] == "success":
            runs.append(r)
    return runs


def _base_row(
    rnd: str, sub: str, system: str, bench: str, sysd: dict[str, Any], chip: str, n: int
) -> Row:
    b = BENCHES[bench]
    return {
        "kind": "training",
        "scenario": "training_step",
        "model": b.model,
        "chip": chip,
        "n_chips": str(n),
        "replicas": "1",
        "ep": "1",
        "train_method": b.method,
        "seq_len": str(b.seq_len),
        "length_dist": "fixed",
        "software": "; ".join(
            str(sysd[k])
            for k in ("framework", "other_software_stack")
            if isinstance(sysd.get(k), str) and sysd[k]
        ),
    }


def _fill(row: Row, lay: TLayout | None, n: int, gbs: int | None, norm: list[str]) -> bool:
    if gbs:
        row["global_batch_seqs"] = str(gbs)
    if lay is None:
        return False
    per = lay.tp * lay.pp * lay.cp
    if n % per:
        norm.append(f"config layout TP{lay.tp} x PP{lay.pp} x CP{lay.cp} does not divide {n} chips")
        return False
    row.update(tp=str(lay.tp), pp=str(lay.pp), cp=str(lay.cp), dp=str(n // per))
    if lay.vpp:
        row["virtual_pp"] = str(lay.vpp)
    if lay.mbs:
        row["micro_batch"] = str(lay.mbs)
    if lay.dtype.startswith("fp8"):
        row["weight_dtype"], row["act_dtype"] = "fp8", lay.dtype
        norm.append(
            "FP8 GEMMs (FP8 switches set in the launch config)"
            + {
                "fp8-dpa": "; FP8 attention (FP8_DPA=1): recipe fp8-dpa",
                "fp8-act": "; activation-function input stored in FP8 (FP8_ACT / "
                "FP8_ACTIVATION): recipe fp8-act",
                "fp8-dpa-act": "; FP8 attention (FP8_DPA=1) and activation-function input "
                "stored in FP8 (FP8_ACT=1): recipe fp8-dpa-act",
            }.get(lay.dtype, "")
        )
    elif lay.dtype:
        row["weight_dtype"] = row["act_dtype"] = lay.dtype
    if lay.fsdp:
        row["fsdp"] = str(lay.fsdp)
    if lay.recompute:
        row["recompute"] = lay.recompute
    if lay.inferred:
        row["inferred_fields"] = ";".join(lay.inferred)
    norm.extend(lay.said)
    norm.append(f"dp = n_chips / (tp*pp*cp) = {n // per}")
    return True


def _rows_for(
    tree: SourceTree, paths: list[str], rnd: str, sub: str, system: str, bench: str
) -> list[Row]:
    sys_path = f"{sub}/systems/{system}.json"
    if sys_path not in paths:
        return []
    try:
        sysd = json.loads(_read(tree, sys_path))
    except json.JSONDecodeError:
        return []
    accel = str(sysd.get("accelerator_model_name", ""))
    chip = chip_id(accel)
    per_node, nodes = num(sysd.get("accelerators_per_node")), num(sysd.get("number_of_nodes"))
    if chip is None or not per_node:
        return []
    n = int(per_node * (nodes or 1))
    files = sorted(
        p
        for p in paths
        if re.fullmatch(rf"{re.escape(sub)}/results/{re.escape(system)}/{bench}/result_\d+\.txt", p)
    )
    runs = _runs(tree, files)
    if not runs:
        return []
    label = tree.label
    src = f"{label}: {sub}/results/{system}/{bench}/result_*.txt"
    b = BENCHES[bench]
    gbs = next((r["gbs"] for r in runs if r["gbs"]), None)
    lay = find_layout(tree, paths, sub, system, bench, n, chip)
    if lay is None:
        lay = readme_layout(tree, paths, sub, bench, n, int(per_node))
    if lay is None and "maxtext" in str(sysd.get("framework", "")).lower():
        topo = str(sysd.get("accelerator_interconnect_topology", ""))
        lay = maxtext_layout(tree, paths, sub, system, bench, n, topo)
    head = (
        f"MLPerf Training v{rnd} closed, {sub} system '{system}' ({accel}, {per_node:.0f} per node x "
        f"{nodes or 1:.0f} node(s)); {b.desc}; {len(runs)} successful run(s), first run_start "
        f"{_date(min(r['start'] for r in runs))}"
    )
    if chip in CHIP_NOTES:
        head += f"; {CHIP_NOTES[chip]}"
    rows = []
    thr = _throughput_row(rnd, sub, system, bench, sysd, chip, n, runs, lay, gbs, head, src)
    if thr is not None:
        rows.append(thr)
    ttt = [(r["stop"] - r["start"]) / 1000.0 for r in runs]
    row = _base_row(rnd, sub, system, bench, sysd, chip, n)
    norm: list[str] = []
    _fill(row, lay, n, gbs, norm)
    row.update(
        id=ident(f"MLPT-{rnd}", sub, system, bench, "TTT"),
        usable="false",
        metric="time_to_train_s",
        value=fmt(round(_olympic(ttt), 3)),
        source=src,
        notes=(
            f"{head}. time_to_train from MLLOG run_start/run_stop of each run (seconds: "
            + ", ".join(f"{t:.1f}" for t in ttt)
            + "); value = olympic mean (drop fastest and slowest when >= 5 runs, else plain mean); "
            "RCP adjustments not applied. | NORMALIZED: "
            + ". ".join(norm or ["layout not found"])
            + " | UNUSABLE: time-to-train depends on the samples needed to converge (not in the "
            "row) plus eval time; use the throughput row of the same result"
        ),
    )
    rows.append(row)
    return rows


def train_intervals(evals: list[tuple[str, float, float]]) -> list[float]:
    """Units per second between an eval_stop and the next eval_start (train-only wall time)."""
    rates = []
    for (k1, t1, e1), (k2, t2, e2) in itertools.pairwise(evals):
        if k1 == "eval_stop" and k2 == "eval_start" and e2 > e1 and t2 > t1:
            rates.append((e2 - e1) / ((t2 - t1) / 1000.0))
    return rates


def _throughput_row(
    rnd: str,
    sub: str,
    system: str,
    bench: str,
    sysd: dict[str, Any],
    chip: str,
    n: int,
    runs: list[dict[str, Any]],
    lay: TLayout | None,
    gbs: int | None,
    head: str,
    src: str,
) -> Row | None:
    thr = [x for r in runs for x in r["throughput"][1:]]
    step = [x for r in runs for x in r["step_time"][2:]]
    if thr:
        metric, value = "samples_per_s", statistics.median(thr)
        how = (
            f"median of MLLOG tracked_stats 'throughput' ({len(thr)} values over {len(runs)} runs, "
            f"first value per run dropped); samples = {BENCHES[bench].seq_len}-token sequences; "
            "excludes eval"
        )
    elif step:
        metric, value = "step_time_s", statistics.median(step)
        how = (
            f"median of MLLOG tracked_stats 'train_step_timing in s' ({len(step)} steps over "
            f"{len(runs)} runs, first 2 per run dropped); excludes eval"
        )
    elif bench == "gpt3" and all(train_intervals(r["evals"]) for r in runs):
        rates = [x for r in runs for x in train_intervals(r["evals"])]
        metric, value = "train_tokens_per_s", statistics.median(rates)
        how = (
            f"median over {len(rates)} train-only intervals ({len(runs)} runs) of tokens trained "
            "(difference of the MLLOG eval epoch_num, which counts tokens in gpt3) / wall time "
            "from eval_stop to the next eval_start; excludes eval"
        )
    elif (
        bench == "gpt3"
        and all(r["blocks"][1:] for r in runs)
        and "maxtext" in str(sysd.get("framework", "")).lower()
    ):
        rates = [t / d for r in runs for t, d in r["blocks"][1:] if d > 0]
        metric, value = "train_tokens_per_s_incl_eval", statistics.median(rates)
        how = (
            f"median over {len(rates)} eval blocks ({len(runs)} runs, first block per run "
            "dropped) of block tokens (epoch_count, 50,331,648) / block_start-to-block_stop "
            "seconds; MaxText logs block_stop after the eval pass, so eval time is included"
        )
    else:
        return None
    row = _base_row(rnd, sub, system, bench, sysd, chip, n)
    norm: list[str] = []
    ok = _fill(row, lay, n, gbs, norm)
    row.update(
        id=ident(f"MLPT-{rnd}", sub, system, bench, "STEP" if metric == "step_time_s" else "THR"),
        usable="true" if ok else "false",
        metric=metric,
        value=fmt(round(value, 6)),
        source=src,
        notes=f"{head}. {how}. | NORMALIZED: " + ". ".join(norm or ["-"]),
    )
    if not ok:
        row["notes"] += (
            " | UNUSABLE: parallel layout not found (no launch config with NeMo/Megatron-style "
            f"TP/PP/CP exports for {n} chips)"
        )
    return row


def read(tree: SourceTree) -> list[Row]:
    """Normalized rows of one MLPerf Training results tree (round taken from the label)."""
    rnd = round_from_label(tree.label, ALLOWED_TRAINING, "training")
    paths: list[str] = []
    for pat in (
        "*/results/*/*/result_*.txt",
        "*/systems/*.json",
        "*/benchmarks/*/implementations/*/*.sh",
        "*/benchmarks/*/implementations/*/*/*.sh",
        "*/benchmarks/*/README.md",
    ):
        paths.extend(tree.list(pat))
    paths = sorted(set(paths))
    keys = sorted(
        {
            (p.split("/")[0], p.split("/")[2], p.split("/")[3])
            for p in paths
            if p.count("/") == 4 and p.split("/")[1] == "results" and p.split("/")[3] in BENCHES
        }
    )
    rows: list[Row] = []
    for sub, system, bench in keys:
        rows.extend(_rows_for(tree, paths, rnd, sub, system, bench))
    rows.sort(key=lambda r: r["id"])
    return rows


IMPORTER: Importer = register(
    Importer(
        name="mlperf-training",
        description=(
            "MLPerf Training results tree v4.0-v5.0 (github mlcommons/training_results_vX.Y; --label "
            "must name the round): gpt3, llama2_70b_lora, llama31_405b step throughput and time to train"
        ),
        read=read,
    )
)

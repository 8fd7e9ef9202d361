"""SemiAnalysis InferenceX results (the dashboard API's ``benchmarks`` records).

Reads any ``**/benchmarks.json`` under a snapshot laid out as
``<owner>+<repo>/<date>-<commit>/<path>``: a JSON list of records, one per benchmark point,
each with the hardware, framework, model, precision, parallel layout (``decode_tp``,
``decode_ep``, ``decode_dp_attention``), nominal lengths (``isl``, ``osl``), the client
concurrency (``conc``), the run date, the GitHub Actions run (``run_url``) and the measured
``metrics`` (``tput_per_gpu``, ``output_tput_per_gpu``, ``mean_tpot``, ``mean_ttft``, ...).

How a record becomes a row (SemiAnalysisAI/InferenceX at 843c6254, ``benchmarks/``):

* The client is ``utils/bench_serving/benchmark_serving.py``: ``--max-concurrency conc`` clients,
  ``10 x conc`` prompts, lengths drawn uniformly from ``[0.8 L, L]`` (``sample_uniform`` with
  ``random_range_ratio`` 0.8 from ``.github/workflows/benchmark-tmpl.yml``), so the mean lengths
  are 0.9 x ``isl`` and 0.9 x ``osl``. A closed loop of ``conc`` clients keeps at most ``conc``
  requests running and admits one as another finishes: the ``offline`` scenario with
  ``batch = conc``.
* ``tput_per_gpu`` and ``output_tput_per_gpu`` are per GPU of the serving instance
  (``decode_tp`` GPUs; the record's ``num_decode_gpu`` is ``tp x ep`` for expert-parallel runs
  and is not the GPU count: at 1 request the per-user speed times the request rate gives
  ``decode_tp`` GPUs). The row's value is the whole instance's output tokens/s.
* Attention data parallelism (``decode_dp_attention``): ``dp = decode_tp``, ``tp = 1``.
* KV-cache format: from the launch scripts' history (``KV_FP8_SINCE``); 16-bit before.

Records of InferenceX's Intel Gaudi runs are kept apart for independent testing and are never
imported. Speculative decoding (MTP) and disaggregated or multi-node serving are imported with
``usable=false`` (the model does not run them from a row yet).
"""

from __future__ import annotations

import json
import math
import re

from ...errors import SiliconomicsError
from . import Importer, Row, SourceTree, register
from ._tables import dedupe, fmt, notes

CHIPS = {"b200": "b200", "b300": "b300", "h100": "h100-sxm", "h200": "h200-sxm",
         "gb200": "gb200", "gb300": "gb300", "mi300x": "mi300x", "mi325x": "mi325x",
         "mi355x": "mi355x"}  # fmt: skip
MODELS = {"dsr1": "deepseek-r1"}
# Formats of the checkpoints the scripts serve: DeepSeek-R1-0528's native FP8 (128x128 block
# scales, W8A8) and the NVFP4 (nvidia/DeepSeek-R1-0528-FP4) / MXFP4 (amd/DeepSeek-R1-0528-MXFP4)
# quantisations, whose expert GEMMs take 4-bit activations.
PRECISION = {"fp8": ("fp8", "fp8"), "fp4": ("fp4", "fp4")}
SOFTWARE = {"sglang": "SGLang", "trt": "TensorRT-LLM (trtllm-serve, PyTorch backend)",
            "atom": "ATOM (AMD ROCm inference engine)", "vllm": "vLLM",
            "dynamo-sglang": "NVIDIA Dynamo + SGLang", "dynamo-trt": "NVIDIA Dynamo + TensorRT-LLM",
            "mori-sglang": "SGLang + MoRI"}  # fmt: skip
# First commit date of each single-node launch script that sets an FP8 KV cache
# (``--kv-cache-dtype fp8_e4m3`` for SGLang, ``kv_cache_config: dtype: fp8`` for TensorRT-LLM,
# ``--kv_cache_dtype fp8`` for ATOM), found with ``git log --follow`` on
# SemiAnalysisAI/InferenceX ``benchmarks/single_node/fixed_seq_len/dsr1_<prec>_<hw>[_trt|_atom].sh``
# at 843c6254 (commit of the change in brackets). Runs dated on or after it used FP8; earlier
# runs the 16-bit default. The H200 SGLang script never sets one (bf16 cache).
KV_FP8_SINCE: dict[tuple[str, str, str], str] = {
    ("mi300x", "sglang", "fp8"): "2026-01-22",  # 32772c579
    ("mi325x", "sglang", "fp8"): "2026-01-22",  # e9b6e0fde
    ("b200", "sglang", "fp4"): "2025-09-21",  # 27f29acbe
    ("b200", "sglang", "fp8"): "2025-09-03",  # ea82d58a9
    ("b300", "sglang", "fp4"): "2025-09-21",  # 27f29acbe
    ("b300", "sglang", "fp8"): "2025-09-03",  # ea82d58a9
    ("mi355x", "sglang", "fp8"): "2026-03-05",  # 9d39c92ee
    ("mi355x", "sglang", "fp4"): "2025-12-16",  # 332fec529
    ("b200", "trt", "fp4"): "2025-09-15",  # 8357b21ed
    ("b200", "trt", "fp8"): "2025-09-04",  # accd2da45
    ("h200", "trt", "fp8"): "2025-09-15",  # 8357b21ed
    ("mi355x", "atom", "fp4"): "2026-01-14",  # cc35702b3
    ("mi355x", "atom", "fp8"): "2026-01-14",  # cc35702b3
}
RANGE_RATIO = 0.8
"""``random_range_ratio`` of every InferenceX fixed-length run (benchmark-tmpl.yml)"""
KEPT_APART = re.compile(r"gaudi", re.I)


def _kv(hw: str, fw: str, prec: str, date: str) -> str:
    since = KV_FP8_SINCE.get((hw, fw, prec))
    return "fp8" if since is not None and date >= since else "bf16"


def _unusable(rec: dict, model: str, chip: str) -> str:
    if rec.get("disagg") or rec.get("is_multinode"):
        return (
            "disaggregated prefill/decode or multi-node serving (separate worker pools): "
            "not run from a row yet"
        )
    if (rec.get("spec_method") or "none") != "none":
        return f"speculative decoding ({rec['spec_method']}) is not modelled"
    if not model:
        return f"model '{rec.get('model')}' is not mapped to a catalog model"
    if not chip:
        return f"hardware '{rec.get('hardware')}' is not mapped to a catalog chip"
    return ""


def _row(rec: dict, cite: str) -> Row | None:
    hw, fw, prec = str(rec["hardware"]), str(rec["framework"]), str(rec["precision"])
    if KEPT_APART.search(hw):
        return None
    m = rec.get("metrics") or {}
    tp, ep = int(rec["decode_tp"]), int(rec.get("decode_ep") or 1)
    dpa = bool(rec.get("decode_dp_attention"))
    isl, osl, conc = int(rec["isl"]), int(rec["osl"]), int(rec["conc"])
    disagg = bool(rec.get("disagg") or rec.get("is_multinode"))
    gpus = int(rec.get("num_prefill_gpu") or 0) + int(rec.get("num_decode_gpu") or 0)
    n = gpus if disagg and gpus else tp
    out_gpu = m.get("output_tput_per_gpu")
    conversion = f"value = output_tput_per_gpu {out_gpu:.6g} x {n} GPUs." if out_gpu else ""
    if not out_gpu:
        tot = m.get("tput_per_gpu")
        if not tot:
            return None
        out_gpu = tot * osl / (isl + osl)
        conversion = (
            f"value = tput_per_gpu {tot:.6g} (input + output) x osl/(isl+osl) = "
            f"{osl}/{isl + osl} x {n} GPUs (no output_tput_per_gpu in the record; input and "
            "output lengths are drawn with the same range ratio)."
        )
    model, chip = MODELS.get(str(rec["model"]), ""), CHIPS.get(hw, "")
    wd, ad = PRECISION.get(prec, ("", ""))
    date = str(rec.get("date") or "")
    run = str(rec.get("run_url") or "")
    run_id = re.search(r"/runs/(\d+)", run)
    image = rec.get("image") or "image not recorded"
    why = _unusable(rec, model, chip)
    spec = "" if (rec.get("spec_method") or "none") == "none" else f"-{rec['spec_method']}".upper()
    mode = "DISAGG" if disagg else ("DPA" if dpa else "")
    rid = "-".join(
        p
        for p in (
            "INFX",
            hw.upper(),
            fw.upper(),
            prec.upper() + spec,
            f"TP{tp}",
            f"EP{ep}",
            mode,
            f"{isl}-{osl}",
            f"C{conc}",
            date,
            f"R{run_id.group(1)}" if run_id else "",
        )
        if p
    )
    tpot, ttft = m.get("mean_tpot"), m.get("mean_ttft")
    meas = ", ".join(
        x
        for x in (
            f"mean TPOT {tpot * 1e3:.4g} ms" if tpot else "",
            f"mean TTFT {ttft:.4g} s" if ttft else "",
            f"tput_per_gpu {m['tput_per_gpu']:.6g}" if m.get("tput_per_gpu") else "",
        )
        if x
    )
    return {
        "id": rid,
        "kind": "inference",
        "scenario": "offline",
        "usable": "false" if why else "true",
        "model": model or str(rec["model"]),
        "chip": chip or hw,
        "n_chips": str(n),
        "replicas": "1",
        "tp": str(1 if dpa else tp),
        "pp": "1",
        "ep": str(ep),
        "cp": "1",
        "dp": str(tp if dpa else 1),
        "weight_dtype": wd,
        "act_dtype": ad,
        "kv_dtype": _kv(hw, fw, prec, date),
        "batch": str(conc),
        "input_len": fmt(round((1 + RANGE_RATIO) / 2 * isl, 6)),
        "output_len": fmt(round((1 + RANGE_RATIO) / 2 * osl, 6)),
        "length_dist": "uniform-0.8",
        "metric": "output_tokens_per_s",
        "value": fmt(round(out_gpu * n, 3)),
        "inferred_fields": "kv_dtype",
        "software": f"{SOFTWARE.get(fw, fw)} ({image})",
        "source": f"InferenceX run {run} ({cite}; run of {date})",
        "notes": notes(
            f"InferenceX {hw} {fw} {rec['model']} {prec}, tp {tp} ep {ep}"
            f"{' attention-DP' if dpa else ''}, isl {isl} / osl {osl}, concurrency {conc}: {meas}.",
            normalized=[
                f"closed loop of {conc} clients (benchmark_serving.py --max-concurrency, "
                f"{10 * conc} prompts) = offline with batch {conc}.",
                f"lengths uniform in [{RANGE_RATIO:g} L, L]: mean input {(1 + RANGE_RATIO) / 2:g} x "
                f"{isl}, mean output {(1 + RANGE_RATIO) / 2:g} x {osl}.",
                "kv_dtype from the launch script's history (KV_FP8_SINCE).",
            ],
            conversion=conversion,
            unusable=why,
        ),
    }


COUNTS = ("decode_tp", "decode_ep", "isl", "osl", "conc", "num_prefill_gpu", "num_decode_gpu")
METRICS = ("tput_per_gpu", "output_tput_per_gpu", "mean_tpot", "mean_ttft")
REQUIRED = ("hardware", "framework", "model", "precision", "decode_tp", "isl", "osl", "conc",
            "metrics")  # fmt: skip


def _records(path: str, text: str) -> list[dict]:
    """The records of one benchmarks JSON, or a one-line error naming the file and the fault."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SiliconomicsError(f"{path}: not JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise SiliconomicsError(f"{path}: expected a JSON list of benchmark records (objects)")
    for i, rec in enumerate(data):
        missing = [k for k in REQUIRED if k not in rec]
        if missing:
            raise SiliconomicsError(
                f"{path}: record {i} lacks {', '.join(missing)} (a benchmarks record has "
                f"{', '.join(REQUIRED)})"
            )
        for k in COUNTS:
            v = rec.get(k)
            if k in rec and v is not None and not (_num(v) and v >= (1 if k in REQUIRED else 0)):
                raise SiliconomicsError(
                    f"{path}: record {i} field '{k}' = {v!r}: expected a positive integer"
                )
        m = rec["metrics"]
        if not isinstance(m, dict):
            raise SiliconomicsError(f"{path}: record {i} field 'metrics' is not an object")
        for k in METRICS:
            v = m.get(k)
            if v is not None and not (_num(v) and math.isfinite(v) and v > 0):
                raise SiliconomicsError(
                    f"{path}: record {i} metric '{k}' = {v!r}: expected a finite positive number"
                )
    return data


def _num(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def read(tree: SourceTree) -> list[Row]:
    rows: list[Row] = []
    for path in tree.list("**/benchmarks.json"):
        repo, _, rest = path.partition("/")
        snap, _, rel = rest.partition("/")
        commit = snap.rsplit("-", 1)[-1]
        # a file given on its own (no <owner>+<repo>/<date>-<commit>/ layout) cites the label
        cite = f"github {repo.replace('+', '/')} @{commit}: {rel}" if rel else tree.label

        for rec in _records(path, tree.read(path)):
            r = _row(rec, cite)
            if r is not None:
                rows.append(r)
    rows.sort(key=lambda r: r["id"])
    return dedupe(rows)


IMPORTER = register(
    Importer(
        name="inferencex-perf",
        description="SemiAnalysis InferenceX benchmark records (the dashboard API's benchmarks "
        "JSON), snapshots laid out as <owner>+<repo>/<date>-<commit>/<path>/benchmarks.json; "
        "Intel Gaudi records are kept apart and skipped",
        read=read,
    )
)

"""Time one peer tool on a list of configurations. Run ONLY by the bench venv's python.

Called by ``bench_estimate.py`` as ``<bench-venv>/bin/python _peer_driver.py IN.json OUT.json``.
It must never import siliconomics (the two venvs do not mix): everything it needs (architecture,
chip numbers, configurations) comes in ``IN.json``::

    {"tool": "genz" | "llm-analysis",
     "chip": {"flops_tflops", "mem_gib", "mem_bw_gbs", "icn_gbs"},
     "models": {id: {n_layers, d_model, n_heads, n_kv_heads, head_dim, d_ff, vocab_size,
                     max_position, gated}},
     "configs": [{"model", "tp", "batch", "input", "output"}, ...]}

``OUT.json`` gets ``{"tool", "version", "metric", "import_s", "seconds", "configs", "errors",
"results": [{"ttft_s", "tpot_s"} | {"error": str}, ...]}``. ``seconds`` is the
``time.perf_counter`` wall time of the per-configuration loop only (imports, model/chip set-up
and one untimed warm-up call excluded), the best of ``repeats`` passes (``IN.json`` key,
default 1; every pass's time in ``seconds_all``).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

Run = Callable[[dict[str, Any]], dict[str, float]]

GENZ_DATA = "/tmp/genz/data/model"  # GenZ writes one CSV per model build here (hard-coded)


def _genz(chip: dict[str, float], models: dict[str, dict[str, Any]]) -> tuple[Run, str]:
    from GenZ import ModelConfig, decode_moddeling, prefill_moddeling

    cfgs = {
        mid: ModelConfig(
            model=f"bench/{mid}",
            hidden_size=m["d_model"],
            num_attention_heads=m["n_heads"],
            num_key_value_heads=m["n_kv_heads"],
            head_dim=m["head_dim"],
            num_ffi=2 if m["gated"] else 1,
            intermediate_size=m["d_ff"],
            num_decoder_layers=m["n_layers"],
            vocab_size=m["vocab_size"],
            max_model_len=m["max_position"] or 131072,
            hidden_act="silu",
        )
        for mid, m in models.items()
    }

    def system() -> dict[str, Any]:  # GenZ accepts a dict of raw numbers (TFLOP/s, GB, GB/s)
        return {
            "Flops": chip["flops_tflops"],
            "Memory_size": chip["mem_gib"],
            "Memory_BW": chip["mem_bw_gbs"],
            "ICN": chip["icn_gbs"],
            "real_values": True,
        }

    def run(c: dict[str, Any]) -> dict[str, float]:
        common = {
            "model": cfgs[c["model"]],
            "batch_size": c["batch"],
            "input_tokens": c["input"],
            "bits": "bf16",
            "tensor_parallel": c["tp"],
        }
        pre = prefill_moddeling(system_name=system(), **common)
        # Bb=1: GenZ's default Bb=4 is a beam width that multiplies the batch.
        dec = decode_moddeling(system_name=system(), output_tokens=c["output"] // 2, Bb=1, **common)
        # ModdelingOutput is a dict subclass: the values are items (attributes stay 0).
        return {"ttft_s": pre["Latency"] / 1e3, "tpot_s": dec["Latency"] / 1e3}

    metric = (
        "prefill_moddeling(B, I) latency as TTFT + decode_moddeling(B, I, output_tokens=O//2, "
        "Bb=1) latency as TPOT (one decode step at context I+O/2); two calls per config"
    )
    return run, metric


def _llm_analysis(chip: dict[str, float], models: dict[str, dict[str, Any]]) -> tuple[Run, str]:
    from llm_analysis.analysis import LLMAnalysis
    from llm_analysis.config import DtypeConfig, GPUConfig, ModelConfig, ParallelismConfig
    from llm_analysis.logger import logger

    logger.setLevel(logging.ERROR)  # its per-call INFO/WARNING logging is skipped (its best case)
    gpu = GPUConfig(
        name="bench-chip",
        mem_per_GPU_in_GB=chip["mem_gib"],  # llm-analysis multiplies by 1024**3
        hbm_bandwidth_in_GB_per_sec=chip["mem_bw_gbs"],
        intra_node_bandwidth_in_GB_per_sec=chip["icn_gbs"],
        intra_node_min_message_latency=8e-6,
        peak_fp16_TFLOPS=chip["flops_tflops"],
    )
    cfgs = {}
    for mid, m in models.items():
        # llm-analysis models the MLP as two D x ffn matrices; for a gated (SwiGLU) MLP with
        # three D x d_ff matrices the equivalent width is 1.5 * d_ff (same weights and FLOPs).
        ffn = m["d_ff"] * 3 // 2 if m["gated"] else m["d_ff"]
        cfgs[mid] = ModelConfig(
            name=mid,
            num_layers=m["n_layers"],
            n_head=m["n_heads"],
            hidden_dim=m["d_model"],
            vocab_size=m["vocab_size"],
            max_seq_len=m["max_position"],
            num_key_value_heads=m["n_kv_heads"],
            ffn_embed_dim=ffn,
            expansion_ratio=ffn / m["d_model"],
            model_type="llama",
        )

    def run(c: dict[str, Any]) -> dict[str, float]:
        a = LLMAnalysis(cfgs[c["model"]], gpu, DtypeConfig(), ParallelismConfig(tp_size=c["tp"]))
        r = a.inference(
            batch_size_per_gpu=c["batch"], seq_len=c["input"], num_tokens_to_generate=c["output"]
        )
        return {"ttft_s": r["prefill_latency"], "tpot_s": r["decode_latency"]}

    metric = (
        "LLMAnalysis(...).inference(B, I, O): prefill_latency as TTFT, decode_latency as TPOT "
        "(one decode step reading/writing the KV cache of I+O tokens); one call per config"
    )
    return run, metric


TOOLS = {"genz": ("genz-llm", _genz), "llm-analysis": ("llm-analysis", _llm_analysis)}


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    dist, build = TOOLS[spec["tool"]]
    warnings.filterwarnings("ignore")
    before = set(os.listdir(GENZ_DATA)) if os.path.isdir(GENZ_DATA) else set()
    sink = io.StringIO()  # peers print progress/tables; keep them off our terminal
    with contextlib.redirect_stdout(sink):
        t0 = time.perf_counter()
        run, metric = build(spec["chip"], spec["models"])
        import_s = time.perf_counter() - t0
        configs = spec["configs"]
        with contextlib.suppress(Exception):
            run(configs[0])  # warm-up (lazy imports, caches), not timed
        times: list[float] = []
        for _ in range(max(1, int(spec.get("repeats", 1)))):  # best of N, as for ours
            results: list[dict[str, Any]] = []
            t0 = time.perf_counter()
            for c in configs:
                try:
                    results.append(run(c))
                except Exception as e:  # a peer's own memory check or limit: reported
                    msg = str(e).splitlines()[0][:160] if str(e) else ""
                    results.append({"error": f"{type(e).__name__}: {msg}"})
            times.append(time.perf_counter() - t0)
    if os.path.isdir(GENZ_DATA):  # remove only the CSVs this run made
        for name in set(os.listdir(GENZ_DATA)) - before:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(GENZ_DATA, name))
    out = {
        "tool": spec["tool"],
        "version": importlib.metadata.version(dist),
        "metric": metric,
        "import_s": import_s,
        "seconds": min(times),
        "seconds_all": times,
        "configs": len(configs),
        "errors": sum("error" in r for r in results),
        "results": results,
    }
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()

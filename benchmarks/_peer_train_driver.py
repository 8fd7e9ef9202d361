"""Time llm-analysis's training estimate on a list of plans. Run ONLY by the bench venv's python.

Called by ``bench_training.py`` as ``<bench-venv>/bin/python _peer_train_driver.py IN.json
OUT.json``; never imports siliconomics. ``IN.json``: ``{"chip": {...}, "models": {...},
"configs": [{"model", "tp", "pp", "dp", "mb", "gb", "seq", "zero", "recompute"}, ...]}``.
``OUT.json``: ``{"version", "metric", "seconds", "seconds_all", "cpu_seconds_all", "configs",
"errors", "results": [{"step_time_s"} | {"error"}]}``; ``seconds`` (best pass) times the
per-plan loop only (imports, set-up and one warm-up call excluded), wall clock; the CPU
seconds of this process per pass are reported too.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import logging
import sys
import time
import warnings
from typing import Any


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    warnings.filterwarnings("ignore")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from llm_analysis.analysis import ActivationRecomputation, DSZeRO, LLMAnalysis
        from llm_analysis.config import DtypeConfig, GPUConfig, ModelConfig, ParallelismConfig
        from llm_analysis.logger import logger

        logger.setLevel(logging.ERROR)
        c = spec["chip"]
        gpu = GPUConfig(
            name="bench-chip",
            mem_per_GPU_in_GB=c["mem_gib"],
            hbm_bandwidth_in_GB_per_sec=c["mem_bw_gbs"],
            intra_node_bandwidth_in_GB_per_sec=c["icn_gbs"],
            intra_node_min_message_latency=8e-6,
            peak_fp16_TFLOPS=c["flops_tflops"],
            inter_node_bandwidth_in_GB_per_sec=c["net_gbs"],
        )
        models = {}
        for mid, m in spec["models"].items():
            ffn = m["d_ff"] * 3 // 2 if m["gated"] else m["d_ff"]  # 3 gated mats = 2 of 1.5x
            models[mid] = ModelConfig(
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
        rc = {
            "none": ActivationRecomputation.NONE,
            "selective": ActivationRecomputation.SELECTIVE,
            "full": ActivationRecomputation.FULL,
        }
        zero = {0: DSZeRO.NONE, 1: DSZeRO.STAGE_1, 2: DSZeRO.STAGE_2, 3: DSZeRO.STAGE_3}

        def run(p: dict[str, Any]) -> dict[str, float]:
            par = ParallelismConfig(tp_size=p["tp"], pp_size=p["pp"], dp_size=p["dp"])
            a = LLMAnalysis(models[p["model"]], gpu, DtypeConfig(), par)
            r = a.training(
                batch_size_per_gpu=p["mb"],
                global_batch_size=p["gb"],
                seq_len=p["seq"],
                total_num_tokens=p["gb"] * p["seq"],
                activation_recomputation=rc[p["recompute"]],
                ds_zero=zero[p["zero"]],
            )
            return {"step_time_s": r["latency_per_iter"]}

        configs = spec["configs"]
        with contextlib.suppress(Exception):
            run(configs[0])
        times: list[float] = []
        cpu: list[float] = []
        for _ in range(max(1, int(spec.get("repeats", 1)))):  # best of N, as for ours
            results: list[dict[str, Any]] = []
            t0, c0 = time.perf_counter(), time.process_time()
            for p in configs:
                try:
                    results.append(run(p))
                except Exception as e:  # the peer's own checks: reported, never hidden
                    msg = str(e).splitlines()[0][:160] if str(e) else ""
                    results.append({"error": f"{type(e).__name__}: {msg}"})
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    out = {
        "version": importlib.metadata.version("llm-analysis"),
        "metric": "LLMAnalysis(...).training(...)['latency_per_iter'], one call per plan",
        "seconds": min(times),
        "seconds_all": times,
        "cpu_seconds_all": cpu,
        "configs": len(configs),
        "errors": sum("error" in r for r in results),
        "results": results,
    }
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()

"""Vendor-page importers (Neuron, NeMo, MaxText, Gaudi, TensorRT-LLM) and their corpus files."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from siliconomics.cli.measured_cmds import DirTree
from siliconomics.measured.importers import COLUMNS, IMPORTERS, complete

CORPUS = Path(__file__).parents[1] / "src/siliconomics/measured/corpus"
# corpus file -> (format, sources folder, --label used when it was written)
VENDOR = {
    "neuron.csv": ("neuron-perf", "neuron", "aws-neuron/aws-neuron-sdk"),
    "nemo.csv": ("nemo-perf", "nemo", None),
    "maxtext.csv": ("maxtext-perf", "maxtext", None),
    "gaudi.csv": ("gaudi-perf", "gaudi", None),
    "trtllm.csv": ("trtllm-perf", "trtllm", None),
    "rocm.csv": ("rocm-perf", "rocm", None),
    "jetstream.csv": ("jetstream-perf", "jetstream", None),
    "inferencex.csv": ("inferencex-perf", "inferencex", None),
}


class MemTree:
    """A SourceTree over in-memory files (the importers never open files themselves)."""

    def __init__(self, files: dict[str, str], label: str = "test/repo") -> None:
        self.files = files
        self.label = label

    def list(self, pattern: str) -> list[str]:
        return sorted(p for p in self.files if Path(p).match(pattern) or _glob(p, pattern))

    def read(self, path: str) -> str:
        return self.files[path]


def _glob(path: str, pattern: str) -> bool:
    from fnmatch import fnmatch

    return fnmatch(path, pattern.replace("**/", "*"))


def _by_id(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {r["id"]: r for r in rows}


def _sub(row: dict[str, str], keys: str) -> dict[str, str]:
    return {k: row[k] for k in keys.split()}


NEURON_INF = (
    "Model,Scripts,Framework,Inst. Type,Task,Output Token Throughput (tokens/sec),TTFT Latency P50 (ms),"
    "TTFT Latency P99 (ms),TPOT Latency P50 (ms),TPOT Latency P99 (ms),Application Type,Neuron Version,"
    "Run Mode,TP Degree,Batch Size,Sequence Length,Input Length,Output Length,Model Data Type,"
    "Compilation Autocast Data Type,Weight Storage Data Type\n"
    "Llama-3-8B,s,Transformers NeuronX,Inf2.48xlarge,Text Generation,649.17,68.95,99.28,15.22,15.48,"
    "Batch,2.18.1,Tensor Parallel,24,8,8192,128,8064,FP16,Matmult-BF16,int8\n"
    "Llama-3-70B,s,Transformers NeuronX,trn1.32xlarge,Text Generation,30,500,510,26.48,24.22,"
    "Real Time,2.18.1,Tensor Parallel,32,1,256,128,128,FP16,Matmult-BF16,bf16\n"
)
NEURON_TRAIN = (
    "Model,Instance-Type,Training Data-Type,Nodes,Topology,Microbatch,Globalbatch, Optimizer, "
    "Sequence Length, Performance [seq/sec],Strong/Weak Scaling,Neuron Version,Neuron Tutorial/Example\n"
    "Llama-3.1-70B pre-training,trn1.32xlarge,Autocast:BF16+FP32Optimizer,32,TP=32 DP=4 PP=8,1,1024,"
    "AdamW,8192,7.94,strong scaling,2.24.0,`NeuronX Distributed <x>`_\n"
    "Llama2-13B pre-training,trn1.32xlarge,Autocast:BF16+FP32Optimizer,32,TP=8 DP=32 PP=8,1,1024,"
    "AdamW,4096,84.0,strong scaling,2.20.0,`NeuronX Distributed <x>`_\n"
)


def test_neuron_importer_rows() -> None:
    tree = MemTree(
        {
            "abc/general/benchmarks/inf2/throughput_data_decoder.csv": NEURON_INF,
            "abc/general/benchmarks/trn1/latency_data_decoder.csv": NEURON_INF,  # same rows again
            "def/general/benchmarks/trn1/training_data_decoder.csv": NEURON_TRAIN,
        },
        label="aws-neuron/aws-neuron-sdk",
    )
    rows = _by_id(IMPORTERS["neuron-perf"].read(tree))
    assert len(rows) == 6 + 2  # 2 configs x 3 metrics (duplicates dropped) + 2 training rows
    tps = rows["NEURON-INF2-LLAMA-3-8B-SDK2.18.1-TP24-bs8-128-8064-INT8-TPS"]
    assert _sub(tps, "chip n_chips tp replicas scenario weight_dtype act_dtype metric value") == {
        "chip": "inf2", "n_chips": "12", "tp": "12", "replicas": "1", "scenario": "static_batch",
        "weight_dtype": "int8", "act_dtype": "bf16", "metric": "output_tokens_per_s",
        "value": "649.17",
    }  # fmt: skip
    assert (
        rows["NEURON-INF2-LLAMA-3-8B-SDK2.18.1-TP24-bs8-128-8064-INT8-TTFT"]["value"] == "0.06895"
    )
    bad = rows["NEURON-TRN1-LLAMA-3-70B-SDK2.18.1-TP32-bs1-128-128-BF16-TPOT"]
    assert bad["usable"] == "false" and "P50" in bad["notes"]  # P50 > P99 in the source
    train = rows["NEURON-TRN1-TRAIN-LLAMA-3.1-70B-N32-SDK2.24.0-NXD"]
    assert _sub(train, "n_chips tp pp dp usable value seq_len") == {
        "n_chips": "512", "tp": "16", "pp": "8", "dp": "4", "usable": "true",
        "value": "65044.48", "seq_len": "8192",
    }  # fmt: skip
    assert rows["NEURON-TRN1-TRAIN-LLAMA-2-13B-N32-SDK2.20.0-NXD"]["usable"] == "false"


NEMO_MD = """## 25.11 NeMo Container
### Pre-Training Performance
#### System: DGX-B200

| Model | #-GPUs | Precision | GBS | MBS | Sequence Length | FSDP | TP | PP | CP | VP | EP | GA | Tokens / sec / GPU | Model TFLOP / sec / GPU |
|-------|--------|-----------|-----|-----|-----------------|------|----|----|----|----|----|----|-----------------------|-------------------------|
| LLAMA3.1_405B | 128 | FP8-CS (FP8-MX) | 64 | 1 | 8192 | 0 | 4 | 8 | 2 | 8 | 1 | 32 | 661 (624) | 1667 (1576) |
| Qwen3_30B_a3B | 8 | FP8-MX | 512 | 1 | 4096 | 0 | 1 | 1 | 1 | 1 | 8 | 64 | 9299 | 214 |

## 26.02 NeMo Container
#### System: DGX-B200

| Model | #-GPUs | Precision | GBS | MBS | Sequence Length | FSDP | TP | PP | CP | VP | EP | GA | Tokens / sec / GPU | Model TFLOP / sec / GPU |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| LLAMA3_8B | 8 | FP8-CS | 128 | 2 | 8192 | 0 | 1 | 1 | 1 | n/a | 1 | 8 | 1 | 1 |
"""


def test_nemo_importer_rows_and_kept_apart_containers() -> None:
    rows = _by_id(IMPORTERS["nemo-perf"].read(MemTree({"o+r/abc123/docs/p.md": NEMO_MD})))
    assert sorted(rows) == [
        "NEMO-2511-B200-LLAMA-3.1-405B-128-FP8-CS",
        "NEMO-2511-B200-LLAMA-3.1-405B-128-FP8-MX-ALT",
        "NEMO-2511-B200-QWEN3-30B-A3B-8-FP8-MX",
    ]  # the 26.02 section is never imported
    main = rows["NEMO-2511-B200-LLAMA-3.1-405B-128-FP8-CS"]
    assert _sub(main, "chip tp pp cp dp fsdp virtual_pp value weight_dtype software source") == {
        "chip": "b200", "tp": "4", "pp": "8", "cp": "2", "dp": "2", "fsdp": "false",
        "virtual_pp": "8", "value": "84608", "weight_dtype": "fp8", "software": "NeMo 25.11",
        "source": "github o/r @abc123: docs/p.md",
    }  # fmt: skip
    assert rows["NEMO-2511-B200-LLAMA-3.1-405B-128-FP8-MX-ALT"]["value"] == str(624 * 128)
    assert rows["NEMO-2511-B200-QWEN3-30B-A3B-8-FP8-MX"]["ep"] == "8"


def test_maxtext_importer_rows() -> None:
    readme = (
        "### 32B model\n| Hardware | TFLOP/sec/chip | MFU |\n| --- | ---: | --- |\n"
        "| 1x v5p-128 | 328 | 71.47% |\n| 2x v5p-128 | 319 | 69.43% |\n"
    )
    script = (
        "python3 MaxText/train.py MaxText/configs/base.yml run_name=$RUN_NAME\\\n"
        "    steps=30 per_device_batch_size=8 remat_policy=minimal global_parameter_scale=32\\\n"
        "    ici_fsdp_parallelism=-1 ici_tensor_parallelism=4 max_target_length=2048\n"
    )
    tree = MemTree({"c0ffee00/MaxText/configs/v5p/README.md": readme,
                    "c0ffee00/MaxText/configs/v5p/32b.sh": script})  # fmt: skip
    rows = _by_id(IMPORTERS["maxtext-perf"].read(tree))
    two = rows["MAXTEXT-V5P-SYNTHETIC-32B-2X64"]
    assert _sub(two, "chip n_chips tp dp fsdp micro_batch global_batch_seqs recompute value") == {
        "chip": "tpu-v5p", "n_chips": "128", "tp": "4", "dp": "32", "fsdp": "16",
        "micro_batch": "32", "global_batch_seqs": "1024", "recompute": "selective",
        "value": "319000000000000",
    }  # fmt: skip


def test_gaudi_importer_rows() -> None:
    page = (
        "url: https://example.invalid/gaudi\nretrieved: 2026-11-29 (test)\nchip: gaudi3\n"
        "software: Intel Gaudi software 1.18.0, PyTorch 2.4.0\n\n"
        "Model | # HPU | Precision | Input Length | Output Length | Batch Size | Throughput (tokens/sec) |\n"
        "---|---|---|---|---|---|---|\n"
        "LLaMA 2 70b | 2 | fp8 | 128 | 128 | 1,750 | 4,433 |\n"
        "2 | fp8 | 128 | 2,048 | 512 | 6,026 | |\n"
        "Model | #HPU | Precision | Throughput | Sequence Length | TP,PP,DP | Batch Size | Framework Version |\n"
        "---|---|---|---|---|---|---|---|\n"
        "LLaMA 2 70B | 64 | FP8 | 54067 tokens/sec | 4,096 | 8,2,4 | 1,024 | Megatron DeepSpeed PR #374 |\n"
    )
    rows = _by_id(IMPORTERS["gaudi-perf"].read(MemTree({"p.md": page})))
    cont = rows["GAUDI-GAUDI3-INF-LLAMA-2-70B-2-128-2048-SW1.18.0"]
    assert _sub(cont, "batch value tp inferred_fields usable") == {
        "batch": "512", "value": "6026", "tp": "2", "inferred_fields": "tp", "usable": "true",
    }  # fmt: skip
    train = rows["GAUDI-GAUDI3-TRAIN-LLAMA-2-70B-64-SW1.18.0"]
    assert _sub(train, "tp pp dp global_batch_seqs seq_len value usable") == {
        "tp": "8", "pp": "2", "dp": "4", "global_batch_seqs": "1024", "seq_len": "4096",
        "value": "54067", "usable": "true",
    }  # fmt: skip


def test_trtllm_importer_both_layouts() -> None:
    wide = (
        "repo: NVIDIA/TensorRT-LLM\ncommit: 0123456789abcdef\npath: p.md\nversion: 0.17.0\n\n"
        "| Throughput (tokens / sec) | | GPU | H100 80GB HBM3 | A100-SXM4-80GB |\n|:-|:-|:-|:-|:-|\n"
        "| | Precision | | FP8 | FP16 |\n| Model | Tensor Model Parallel Size | Runtime Input/Output Lengths | | |\n"
        "| Mixtral 8x7B | 2 | 128, 128 | 27451.13 | 5541.47 |\n| | | 2048, 128 | 3333.68 | |\n"
    )
    per_model = (
        "repo: NVIDIA/TensorRT-LLM\ncommit: fedcba9876543210\npath: p.md\nversion: 1.0\n\n"
        "#### Qwen3-235B-A22B\n\n| Sequence Length (ISL/OSL) | B200<br/>TP8 (FP4) | H100<br/>TP8 (FP8) |\n"
        "|---|---|---|\n| 128/2048 | 66,057 | 19,658 |\n"
    )
    rows = _by_id(IMPORTERS["trtllm-perf"].read(MemTree({"a.md": wide, "b.md": per_model})))
    assert sorted(rows) == [
        "TRTLLM-0.17.0-A100-SXM-80GB-MIXTRAL-8X7B-TP2-FP16-128-128",
        "TRTLLM-0.17.0-H100-SXM-MIXTRAL-8X7B-TP2-FP8-128-128",
        "TRTLLM-0.17.0-H100-SXM-MIXTRAL-8X7B-TP2-FP8-2048-128",
        "TRTLLM-1.0-B200-QWEN3-235B-A22B-TP8-FP4-128-2048",
        "TRTLLM-1.0-H100-SXM-QWEN3-235B-A22B-TP8-FP8-128-2048",
    ]
    old = rows["TRTLLM-0.17.0-H100-SXM-MIXTRAL-8X7B-TP2-FP8-2048-128"]
    assert _sub(old, "tp dp ep kv_dtype value scenario") == {
        "tp": "2", "dp": "1", "ep": "1", "kv_dtype": "fp8", "value": "3333.68", "scenario": "offline",
    }  # fmt: skip
    moe = rows["TRTLLM-1.0-B200-QWEN3-235B-A22B-TP8-FP4-128-2048"]
    assert _sub(moe, "n_chips tp dp ep weight_dtype value") == {
        "n_chips": "8", "tp": "1", "dp": "8", "ep": "8", "weight_dtype": "fp4", "value": "66057",
    }  # fmt: skip
    assert "ep" in moe["inferred_fields"]


ROCM_MD = """- ROCm\u2122 6.4.1
- vLLM 0.9.1

### Throughput Measurements

| Model | Precision | TP Size | Input | Output | Num Prompts | Max Num Seqs | Throughput (tokens/s) |
|-------|-----------|---------|-------|--------|-------------|--------------|-----------------------|
| Llama 3.1 70B (amd/Llama-3.1-70B-Instruct-FP8-KV) | FP8 | 8 | 128 | 2048 | 3200 | 3200 | 12638.9 |
|  |  |  | 2048 | 2048 | 1500 | 1500 | 7354.9 |

### Latency Measurements

| Model | Precision | TP Size | Batch Size | Input | Output | MI300X Latency (ms) |
|---|---|---|---|---|---|---|
| Llama 3.1 405B (amd/Llama-3.1-405B-Instruct-FP8-KV) | FP8 | 8 | 1 | 128 | 2048 | 48453 |

### Throughput Benchmark
    --kv-cache-dtype fp8 \\
"""


def test_rocm_importer_rows_and_repeats_kept_once() -> None:
    files = {
        "ROCm+vllm/2025-01-01-aaaa/docs/dev-docker/README.md": ROCM_MD,
        "ROCm+vllm/2025-02-01-bbbb/docs/dev-docker/README.md": ROCM_MD.replace("0.9.1", "0.9.2"),
    }
    rows = _by_id(IMPORTERS["rocm-perf"].read(MemTree(files)))
    assert sorted(rows) == [
        "ROCM-VLLM0.9.1-MI300X-LLAMA-3.1-405B-TP8-LAT-bs1-128-2048",
        "ROCM-VLLM0.9.1-MI300X-LLAMA-3.1-70B-TP8-THR-128-2048",
        "ROCM-VLLM0.9.1-MI300X-LLAMA-3.1-70B-TP8-THR-2048-2048",
    ]  # the later README repeats the same numbers: kept once, with the earlier release
    thr = rows["ROCM-VLLM0.9.1-MI300X-LLAMA-3.1-70B-TP8-THR-2048-2048"]
    assert _sub(thr, "chip n_chips tp batch kv_dtype scenario value software") == {
        "chip": "mi300x", "n_chips": "8", "tp": "8", "batch": "1500", "kv_dtype": "fp8",
        "scenario": "offline", "value": "7354.9",
        "software": "vLLM 0.9.1 ROCm (rocm/vllm-dev image, ROCm 6.4.1)",
    }  # fmt: skip
    lat = rows["ROCM-VLLM0.9.1-MI300X-LLAMA-3.1-405B-TP8-LAT-bs1-128-2048"]
    assert _sub(lat, "scenario metric percentile value kv_dtype") == {
        "scenario": "latency", "metric": "e2e_latency_s", "percentile": "mean",
        "value": "48.453", "kv_dtype": "fp16",
    }  # fmt: skip


JETSTREAM_MD = """## Gemma - 2B

Date | Device  | dtype | batch size | cache length |max input length |max output length| throughput (token/s)
----| ------- | ------ |---------- | -------------|-----------------|------------------|----------------------
2024-05-14 | TPU v5e-8 | int8 | 1024 | 2048 | 1024 | 1024 | 8746

** NOTE: ** Gemma 2B uses `--shard_on_batch` flag so it's data parallel instead
of model parallel.

## Llama 2 - 13B

Date | Device  | dtype | batch size | cache length |max input length |max output length| throughput (token/s)
----| ------- | ------ |---------- | -------------|-----------------|------------------|----------------------
2024-03-28 | TPU v5e-8 | bfloat16 | 80 | 1280 | 1024 | 1024 | 2911
"""


def test_jetstream_importer_rows() -> None:
    tree = MemTree({"o+r/abc/benchmarks/summary.md": JETSTREAM_MD})
    rows = _by_id(IMPORTERS["jetstream-perf"].read(tree))
    dp = rows["JETSTREAM-V5E8-GEMMA-2B-INT8-bs1024-C2048-2024-05-14"]
    assert _sub(dp, "replicas tp batch weight_dtype kv_dtype act_dtype value usable") == {
        "replicas": "8", "tp": "1", "batch": "128", "weight_dtype": "int8", "kv_dtype": "int8",
        "act_dtype": "bf16", "value": "8746", "usable": "true",
    }  # fmt: skip
    rolling = rows["JETSTREAM-V5E8-LLAMA-2-13B-BFLOAT16-bs80-C1280-2024-03-28"]
    assert _sub(rolling, "replicas tp usable") == {"replicas": "1", "tp": "8", "usable": "false"}


def _ix(**kw: object) -> dict[str, object]:
    rec: dict[str, object] = {
        "hardware": "b200", "framework": "sglang", "model": "dsr1", "precision": "fp8",
        "spec_method": "none", "disagg": False, "is_multinode": False, "prefill_tp": 8,
        "prefill_ep": 1, "prefill_dp_attention": False, "prefill_num_workers": 0,
        "decode_tp": 8, "decode_ep": 1, "decode_dp_attention": False, "decode_num_workers": 0,
        "num_prefill_gpu": 8, "num_decode_gpu": 8, "isl": 1024, "osl": 8192, "conc": 16,
        "image": "lmsysorg/sglang:v0.5.9-cu130",
        "metrics": {"mean_tpot": 0.0125, "mean_ttft": 0.3, "tput_per_gpu": 180.0,
                    "output_tput_per_gpu": 160.0},
        "date": "2026-03-25", "run_url": "https://github.com/SemiAnalysisAI/InferenceX/actions/runs/111/attempts/1",
    }  # fmt: skip
    rec.update(kw)
    return rec


def test_inferencex_importer_rows() -> None:
    import json

    recs = [
        _ix(),
        _ix(hardware="mi300x", date="2026-01-01", decode_tp=8, decode_ep=8,
            decode_dp_attention=True, num_decode_gpu=64,
            metrics={"tput_per_gpu": 90.0, "mean_tpot": 0.02}),
        _ix(spec_method="mtp", conc=32),
        _ix(disagg=True, is_multinode=True, framework="dynamo-trt", num_prefill_gpu=8,
            num_decode_gpu=16, conc=64),
        _ix(hardware="gaudi3", framework="vllm"),
    ]  # fmt: skip
    path = "o+app/2026-08-15-abc/fixtures/api/benchmarks.json"
    rows = _by_id(IMPORTERS["inferencex-perf"].read(MemTree({path: json.dumps(recs)})))
    assert len(rows) == 4  # the Gaudi record is kept apart, never imported
    assert not any("GAUDI" in k for k in rows)
    agg = rows["INFX-B200-SGLANG-FP8-TP8-EP1-1024-8192-C16-2026-03-25-R111"]
    assert _sub(agg, "usable scenario batch n_chips tp dp ep kv_dtype input_len output_len value") == {
        "usable": "true", "scenario": "offline", "batch": "16", "n_chips": "8", "tp": "8",
        "dp": "1", "ep": "1", "kv_dtype": "fp8", "input_len": "921.6", "output_len": "7372.8",
        "value": "1280",
    }  # fmt: skip
    assert agg["source"].startswith(
        "InferenceX run https://github.com/SemiAnalysisAI/InferenceX/actions/runs/111/attempts/1 ("
    )
    dpa = rows["INFX-MI300X-SGLANG-FP8-TP8-EP8-DPA-1024-8192-C16-2026-01-01-R111"]
    # attention DP: dp = decode_tp; 8 GPUs although the record counts tp x ep; KV 16-bit before
    # the script's FP8 cache (2026-01-22); output tokens from the total by osl/(isl+osl)
    assert _sub(dpa, "n_chips tp dp ep kv_dtype value") == {
        "n_chips": "8", "tp": "1", "dp": "8", "ep": "8", "kv_dtype": "bf16", "value": "640",
    }  # fmt: skip
    assert "CONVERSION: value = tput_per_gpu 90" in dpa["notes"]
    mtp = rows["INFX-B200-SGLANG-FP8-MTP-TP8-EP1-1024-8192-C32-2026-03-25-R111"]
    assert mtp["usable"] == "false" and "speculative decoding" in mtp["notes"]
    dis = rows["INFX-B200-DYNAMO-TRT-FP8-TP8-EP1-DISAGG-1024-8192-C64-2026-03-25-R111"]
    assert _sub(dis, "usable n_chips") == {"usable": "false", "n_chips": "24"}


def test_trtllm_v015_layout_with_a_gpu_spanning_two_precisions() -> None:
    page = (
        "repo: NVIDIA/TensorRT-LLM\ncommit: unknown\npath: p.md\nversion: 0.15.0\n\n"
        "| | | | | | |\n| --- | --- | --- | --- | --- | --- |\n"
        "| | GPU| | H100 80GB HBM3| | A100-PCIE-80GB |\n| | Precision| | FP8| Mixed| Mixed |\n"
        "| Model| TP Size| Runtime Input/Output Lengths| | | |\n"
        "| LLaMA v3 70B| 2| 128, 128| 6529.47| 3137.86| 792.95 |\n"
    )
    rows = _by_id(IMPORTERS["trtllm-perf"].read(MemTree({"p.md": page})))
    assert sorted(rows) == [
        "TRTLLM-0.15.0-A100-PCIE-80GB-LLAMA-3-70B-TP2-MIXED-128-128",
        "TRTLLM-0.15.0-H100-SXM-LLAMA-3-70B-TP2-FP8-128-128",
        "TRTLLM-0.15.0-H100-SXM-LLAMA-3-70B-TP2-MIXED-128-128",
    ]
    mixed = rows["TRTLLM-0.15.0-H100-SXM-LLAMA-3-70B-TP2-MIXED-128-128"]
    assert _sub(mixed, "weight_dtype kv_dtype value") == {
        "weight_dtype": "fp16", "kv_dtype": "fp16", "value": "3137.86",
    }  # fmt: skip
    assert "weight_dtype" in mixed["inferred_fields"]


def _read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


def _write(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(complete(r))
    return buf.getvalue()


@pytest.mark.parametrize("name", sorted(VENDOR))
def test_corpus_file_is_reproduced_by_its_importer(name: str) -> None:
    fmt_, folder, label = VENDOR[name]
    src = CORPUS / "sources" / folder
    tree = DirTree(src, label or str(src))
    first = _write(IMPORTERS[fmt_].read(tree))
    assert first == _write(IMPORTERS[fmt_].read(tree))  # deterministic
    assert first == (CORPUS / name).read_text(encoding="utf-8")


KINDS = {"inference", "training"}
SCENARIOS = {"static_batch", "latency", "offline", "server", "training_step"}
DTYPES = {"", "fp32", "bf16", "fp16", "fp8", "int8", "int4", "fp4"}


def _layout_ok(r: dict[str, str]) -> bool:
    ints = {k: int(r[k]) for k in ("n_chips", "replicas", "tp", "pp", "dp", "ep", "cp") if r[k]}
    tp, pp, dp = ints.get("tp", 1), ints.get("pp", 1), ints.get("dp", 1)
    cp, ep, rep = ints.get("cp", 1), ints.get("ep", 1), ints.get("replicas", 1)
    if r["kind"] == "inference":
        return rep * tp * pp * cp * dp == ints["n_chips"] and (tp * dp) % ep == 0
    fsdp_ok = not r["fsdp"].isdigit() or dp % int(r["fsdp"]) == 0
    return rep == 1 and tp * pp * cp * dp == ints["n_chips"] and fsdp_ok


@pytest.mark.parametrize("name", sorted(VENDOR))
def test_corpus_rows_follow_the_schema(name: str) -> None:
    rows = _read_csv(CORPUS / name)
    assert rows and list(rows[0]) == list(COLUMNS)
    assert len({r["id"] for r in rows}) == len(rows)
    prefix = {"neuron.csv": "NEURON-", "nemo.csv": "NEMO-", "maxtext.csv": "MAXTEXT-",
              "gaudi.csv": "GAUDI-", "trtllm.csv": "TRTLLM-", "rocm.csv": "ROCM-",
              "jetstream.csv": "JETSTREAM-", "inferencex.csv": "INFX-"}[name]  # fmt: skip
    for r in rows:
        assert r["id"].startswith(prefix)
        assert r["kind"] in KINDS and r["scenario"] in SCENARIOS
        assert r["weight_dtype"] in DTYPES and r["act_dtype"] in DTYPES
        assert r["source"] and r["software"] and float(r["value"]) > 0
        assert ("UNUSABLE:" in r["notes"]) == (r["usable"] == "false"), r["id"]
        if r["usable"] == "true":
            assert _layout_ok(r), r["id"]
        for f in filter(None, r["inferred_fields"].split(";")):
            assert f in COLUMNS, (r["id"], f)


def test_corpus_holds_nothing_kept_apart() -> None:
    for name in VENDOR:
        for r in _read_csv(CORPUS / name):
            if "TensorRT-LLM" in r["source"]:  # only the performance/ pages, never the newer one
                assert "docs/source/performance" in r["source"], r["source"]
            assert not r["software"].startswith("NeMo 26")
            assert "tpu-recipes" not in r["source"]
            if r["source"].startswith("InferenceX"):  # InferenceX Gaudi results are kept apart
                assert "gaudi" not in r["chip"], r["id"]


def test_corpus_doc_row_counts_are_current() -> None:
    doc = (Path(__file__).parents[1] / "docs/CORPUS.md").read_text(encoding="utf-8")
    fmt_to_file = {fmt_: name for name, (fmt_, _, _) in VENDOR.items()}
    seen = 0
    for line in doc.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in fmt_to_file:
            assert int(cells[2]) == len(_read_csv(CORPUS / fmt_to_file[cells[0]])), cells[0]
            seen += 1
    assert seen == len(VENDOR)


def test_corpus_models_csv_covers_the_maxtext_rows() -> None:
    from siliconomics.catalog.registry import models
    from siliconomics.measured.rows import read_models_csv

    extra = read_models_csv(CORPUS / "models.csv")
    known = set(models()) | set(extra)
    assert {r["model"] for r in _read_csv(CORPUS / "maxtext.csv")} <= known


def test_inferencex_importer_bad_input_is_one_line() -> None:
    from siliconomics.errors import SiliconomicsError

    imp = IMPORTERS["inferencex-perf"]
    with pytest.raises(SiliconomicsError, match="not JSON"):
        imp.read(MemTree({"o+a/2026-01-01-abc/benchmarks.json": "{not json"}))
    with pytest.raises(SiliconomicsError, match="record 0 lacks framework"):
        imp.read(MemTree({"o+a/2026-01-01-abc/benchmarks.json": '[{"hardware": "b200"}]'}))
    import json

    for bad, msg in (
        (_ix(conc=-4), "field 'conc' = -4"),
        (_ix(decode_tp="abc"), "field 'decode_tp'"),
        (_ix(metrics={"output_tput_per_gpu": float("nan")}), "metric 'output_tput_per_gpu'"),
    ):
        with pytest.raises(SiliconomicsError, match=msg):
            imp.read(MemTree({"o+a/2026-01-01-abc/benchmarks.json": json.dumps([bad])}))

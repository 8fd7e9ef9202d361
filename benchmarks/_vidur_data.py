"""Build, at benchmark run time, the offline inputs vidur 0.0.26 needs (never committed).

vidur's sklearn predictor fetches its profiling tables with ``huggingface_hub.snapshot_download``
(``mlp.csv.xz`` + ``attention.csv.xz`` from a compute dataset, ``all_reduce.csv.xz`` +
``send_recv.csv.xz`` from a network dataset, each with a ``config.json``). With
``HF_HUB_OFFLINE=1`` that call returns a snapshot already in the Hugging Face cache layout under
the predictor's ``cache_dir``, so this module writes such a cache:

* ``mlp.csv`` and the network CSVs: vidur's own measured H100 tables from
  ``shared/data/measured-ops`` (microsoft/vidur, MIT licence), copied unchanged (xz-compressed);
* ``attention.csv``: **synthetic**. vidur's attention timings are not in the shared data, so the
  table is computed from siliconomics' roofline attention op (``forward_cost``'s ``attention``
  op, per layer) on vidur's column layout. It changes vidur's predicted latencies, not how fast
  vidur simulates.

It also writes the request-length file vidur's ``trace`` length generator reads: ``n`` rows
drawn with replacement from the Azure conversation trace (vidur fails past the end of the file).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import lzma
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from siliconomics import resolve
from siliconomics.catalog.registry import get_model
from siliconomics.inference.forward import forward_cost
from siliconomics.ops.roofline import memory_op
from siliconomics.parallel.plan import InferencePlan

MODEL = "meta-llama/Llama-2-7b-hf"  # the only Llama ~7-8B with measured H100 MLP data
OUR_MODEL, CHIP = "llama-2-7b", "h100-sxm"
NETWORK = "h100_dgx"
ORG = "siliconomics-local"  # dataset names get a content hash: vidur keys its cache on them
_REV = "0" * 40  # commit id of the local snapshot (any hex string; refs/main points to it)
_STATS = ("min", "max", "mean", "median", "std")


@dataclass(frozen=True)
class VidurInputs:
    cache_dir: Path
    compute_dataset: str
    network_dataset: str
    lengths_csv: Path
    attention_rows: int


def _snapshot(
    cache_dir: Path, kind: str, name: str, config: dict[str, str], files: dict[str, bytes]
) -> str:
    """Write a Hugging Face cache snapshot of dataset ``ORG/name-<hash>``; return its id."""
    name = f"{name}-{hashlib.sha256(b''.join(files.values())).hexdigest()[:10]}"
    store = cache_dir / "profiling_data" / kind / f"datasets--{ORG}--{name}"
    snap = store / "snapshots" / _REV
    snap.mkdir(parents=True, exist_ok=True)
    (store / "refs").mkdir(exist_ok=True)
    (store / "refs" / "main").write_text(_REV)
    (snap / "config.json").write_text(json.dumps(config))
    for fname, data in files.items():
        (snap / fname).write_bytes(lzma.compress(data, preset=1))
    return f"{ORG}/{name}"


def _attention_grid(max_ctx: int, max_chunk: int, max_batch: int) -> list[tuple[int, int, int]]:
    """(batch, prefill_chunk, kv_cache) points; prefill rows have batch 1, decode rows chunk 0."""
    chunks = [c for c in (32, 64, 128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096,
                          6144, 8192, 12288, 16384) if c <= max_chunk]  # fmt: skip
    ctx = sorted({*range(0, 1024, 128), *range(1024, max_ctx + 1, 512)})
    batches = [b for b in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128) if b <= max_batch]
    pts = [(1, s, c) for s in chunks for c in ctx if s + c <= max_ctx]
    pts += [(b, 0, c) for b in batches for c in ctx if c > 0]
    return pts


def _attention_rows(max_ctx: int, max_chunk: int, max_batch: int) -> list[dict[str, object]]:
    model = get_model(OUR_MODEL)
    dev = resolve.device(CHIP)
    plan = InferencePlan()  # one chip, bf16: the simulated deployment
    pts = np.asarray(_attention_grid(max_ctx, max_chunk, max_batch), dtype=np.float64)
    B, s, c = pts[:, 0], pts[:, 1], pts[:, 2]
    decode = s == 0
    fc = forward_cost(model, dev, plan, B, np.where(decode, 1.0, s), c)
    attn = next(op for op in fc.ops if op.name == "attention")
    attn_ms = np.broadcast_to(attn.time, B.shape) / model.n_layers * 1e3
    new_tokens = np.where(decode, B, s)
    kv_bytes = new_tokens * 2 * model.n_kv_heads * model.head_dim * 2.0  # K and V, 16-bit
    save_ms = np.broadcast_to(memory_op(dev, "kv_save", kv_bytes).time, B.shape) * 1e3
    rows: list[dict[str, object]] = []
    for i in range(len(pts)):
        ops = {"attn_prefill": np.nan, "attn_decode": np.nan, "attn_kv_cache_save": save_ms[i]}
        ops["attn_decode" if decode[i] else "attn_prefill"] = attn_ms[i]
        row: dict[str, object] = {}
        for op, t in ops.items():
            for st in _STATS:
                row[f"time_stats.{op}.{st}"] = (
                    "" if np.isnan(t) else (0.0 if st == "std" else float(t))
                )
        row.update(
            n_embd=model.d_model,
            n_q_head=model.n_heads,
            n_kv_head=model.n_kv_heads,
            block_size=16,
            num_tensor_parallel_workers=1,
            max_model_len=max_ctx,
            batch_size=int(B[i]),
            prefill_chunk_size=int(s[i]),
            kv_cache_size=int(c[i]),
            is_prefill=not bool(decode[i]),
            attention_backend="SILICONOMICS_ROOFLINE",
        )
        rows.append(row)
    return rows


def _csv_bytes(rows: list[dict[str, object]]) -> bytes:
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode()


def _lengths(trace: Path, out: Path, n: int, seed: int) -> None:
    data = np.loadtxt(trace, delimiter=",", skiprows=1, ndmin=2)
    idx = np.random.default_rng(seed).integers(0, len(data), size=n)
    np.savetxt(
        out, data[idx][:, 1:3], fmt="%d", delimiter=",",
        header="num_prefill_tokens,num_decode_tokens", comments="",
    )  # fmt: skip


def build(
    work: Path, cache: Path, shared: Path, *, n: int, max_ctx: int, max_chunk: int, max_batch: int
) -> VidurInputs:
    """Write vidur's offline profiling snapshots under ``cache`` (vidur's ``cache_dir``, where
    it also keeps its trained predictors) and the request-length file under ``work``."""
    ops = shared / "data/measured-ops"
    rows = _attention_rows(max_ctx, max_chunk, max_batch)
    compute = _snapshot(
        cache, "compute", "llama-2-7b-hf-h100", {"model": MODEL, "device_sku": "h100"},
        {"mlp.csv.xz": (ops / "compute/h100" / MODEL / "mlp.csv").read_bytes(),
         "attention.csv.xz": _csv_bytes(rows)},
    )  # fmt: skip
    net = {f"{k}.csv.xz": (ops / "network" / NETWORK / f"{k}.csv").read_bytes()
           for k in ("all_reduce", "send_recv")}  # fmt: skip
    network = _snapshot(cache, "network", NETWORK.replace("_", "-"), {"sku": NETWORK}, net)
    lengths = work / "lengths.csv"
    _lengths(shared / "data/traces/splitwise_conv.csv", lengths, n, seed=0)
    return VidurInputs(cache, compute, network, lengths, len(rows))

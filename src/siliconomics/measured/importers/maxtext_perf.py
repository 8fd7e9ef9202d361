"""MaxText "High Performance Model Configs" READMEs with the config scripts beside them.

Reads ``<commit>/MaxText/configs/<platform>/README.md`` (TFLOP/sec/chip and MFU per slice
count) together with the ``*.sh`` launch scripts in the same folder, which give
per_device_batch_size, the ICI/DCN mesh, remat policy and the model (``global_parameter_scale``
or explicit ``base_*`` dimensions). One row per table cell of model FLOP/s per chip.

Layout (SCHEMA.md): TPU ``v4-N``/``v5p-N`` count TensorCores (2 per chip), ``v5e-N`` chips; a
slice's chips are split into ``ici_tensor_parallelism`` (tp) x FSDP (the rest), slices are data
parallel over DCN, so ``dp = fsdp x slices``; ``micro_batch = per_device_batch x tp``.
"""

from __future__ import annotations

import re

from . import Importer, Row, SourceTree, register
from ._tables import dedupe, fmt, md_tables, notes, num, slug

_HW_TPU = re.compile(r"(\d+)x\s+(v4|v5e|v5p)-(\d+)")
_HW_A3 = re.compile(r"(\d+)x\s+A3\s*\(h100-80gb-8\)")
_SIZE = re.compile(r"(\d+)B\b", re.I)
CHIP = {"v4": "tpu-v4", "v5e": "tpu-v5e", "v5p": "tpu-v5p"}
CORES = {"v4": 2, "v5e": 1, "v5p": 2}
REMAT = {"full": "full", "minimal": "selective", "minimal_flash": "selective"}
FLOPS_NOTE = {
    "v5e": "Table first published Oct 2023 (configs/largest_job), when MaxText counted attention "
    "FLOPs without causal halving (halving added @64ee4e93, 2023-11-08).",
    "v4": "Table added 2023-12-15 (@76bd53b0); MaxText's FLOP count of that time (causal "
    "attention halved) assumed.",
    "v5p": "Table added 2023-12-15 (@76bd53b0); MaxText FLOP count then: 6*N*tokens + causal "
    "(halved) attention.",
    "a3": "Table added 2024-04-09 (@efb6d9e4); MaxText FLOP count then: 6*N*tokens + causal "
    "(halved) attention.",
}


def _script_args(text: str) -> dict[str, str]:
    """key=value arguments of the train.py command line in a launch script."""
    body = text[text.find("train.py") :] if "train.py" in text else ""
    return dict(re.findall(r"\b([a-z_0-9]+)=(\S+)", body.replace("\\\n", " ")))


def _cells(table: list[list[str]], heading: str) -> list[tuple[str, str, str, str]]:
    """(hardware, size key, TFLOP/s cell, MFU cell) for every value cell of a README table."""
    head = table[0]
    out = []
    for cells in table[1:]:
        hw = cells[0]
        for j, h in enumerate(head):
            if "TFLOP" not in h or j >= len(cells):
                continue
            m = _SIZE.search(h) or _SIZE.search(heading)
            key = (m.group(1) + "b") if m else ""
            mfu = cells[j + 1] if j + 1 < len(cells) and "MFU" in head[j + 1] else ""
            out.append((hw, key, cells[j], mfu))
    return out


def _geometry(hw: str) -> tuple[str, str, int, int] | None:
    """(platform, chip id, slices, chips per slice) from 'Nx v5e-256' / 'Nx A3 (...)'."""
    m = _HW_TPU.search(hw)
    if m:
        plat = m.group(2)
        return plat, CHIP[plat], int(m.group(1)), int(m.group(3)) // CORES[plat]
    m = _HW_A3.search(hw)
    if m:
        return "a3", "h100-sxm", int(m.group(1)), 8
    return None


def _script_for(tree: SourceTree, folder: str, plat: str, key: str, slices: int) -> tuple[str, str]:
    name = f"{slices}vm.sh" if plat == "a3" else f"{key}.sh"
    path = f"{folder}/{name}"
    return (path, tree.read(path)) if path in set(tree.list(f"{folder}/*.sh")) else (path, "")


def _model(args: dict[str, str], plat: str, key: str) -> str:
    if "global_parameter_scale" in args:
        return f"maxtext-synthetic-{args['global_parameter_scale']}b"
    if args.get("model_name") == "llama2-7b":
        return "llama-2-7b"
    return f"maxtext-{plat}-{key}"


def _row(cell: tuple[str, str, str, str], folder: str, tree: SourceTree, commit: str) -> Row | None:
    hw, key, tflops_cell, mfu = cell
    geo = _geometry(hw)
    tflops = num(tflops_cell)
    if geo is None or tflops is None:
        return None
    plat, chip, slices, per_slice = geo
    spath, script = _script_for(tree, folder, plat, key, slices)
    if not script:
        return None
    a = _script_args(script)
    tp = int(a.get("ici_tensor_parallelism", "1"))
    fsdp = int(a.get("ici_fsdp_parallelism", "-1"))
    fsdp = per_slice // tp if fsdp == -1 else fsdp
    n = slices * per_slice
    dp = fsdp * slices
    pdb = num(a.get("per_device_batch_size", "")) or 0.0
    seq = a.get("max_target_length", "2048")
    model = _model(a, plat, key)
    remat = a.get("remat_policy", "full")
    rel = folder.partition("/")[2]
    dims = " ".join(
        f"{k}={v}"
        for k, v in sorted(a.items())
        if k.startswith("base_") and k != "base_output_directory"
    )
    bad = tp * fsdp != per_slice
    norm = [
        f"Config {rel}/{spath.rsplit('/', 1)[1]} @{commit[:8]} (assumed to be the measured "
        f"config): per_device_batch {fmt(pdb)}, ici_tensor {tp}, ici_fsdp {fsdp}, {slices} "
        f"slice(s) data-parallel over DCN, remat {remat}, seq {seq}, bf16.",
        f"dp = fsdp {fsdp} x {slices} slices = {dp}; micro_batch = per_device_batch x tp; "
        "global = per_device_batch x chips.",
        "seq 2048 = base.yml default." if "max_target_length" not in a else "",
    ]
    return {
        "id": f"MAXTEXT-{slug(plat)}-{slug(model.replace('maxtext-', ''))}-{slices}X{per_slice}",
        "kind": "training",
        "scenario": "training_step",
        "usable": "false" if bad or pdb == 0 else "true",
        "model": model,
        "chip": chip,
        "n_chips": str(n),
        "replicas": "1",
        "tp": str(tp),
        "pp": "1",
        "ep": "1",
        "cp": "1",
        "dp": str(dp),
        "fsdp": str(fsdp),
        "micro_batch": fmt(pdb * tp),
        "global_batch_seqs": fmt(pdb * n),
        "recompute": REMAT.get(remat, "custom"),
        "train_method": "full",
        "weight_dtype": "bf16",
        "act_dtype": "bf16",
        "seq_len": seq,
        "length_dist": "fixed",
        "metric": "model_flops_per_s_per_chip",
        "value": fmt(tflops * 1e12),
        "inferred_fields": "tp;dp;fsdp;micro_batch;global_batch_seqs;recompute",
        "software": "MaxText (JAX)" + (", GPU" if plat == "a3" else ""),
        "source": f"github AI-Hypercomputer/maxtext @{commit[:8]}: {rel}/README.md + "
        f"{rel}/{spath.rsplit('/', 1)[1]}",
        "notes": notes(
            f"{hw}: {tflops_cell} TFLOP/s/chip"
            + (f", MFU {mfu}." if mfu else ".")
            + (f" Model dims from the script: {dims}." if dims else "")
            + " Synthetic data. "
            + FLOPS_NOTE.get(plat, ""),
            normalized=norm,
            unusable="mesh does not cover the slice" if bad else "",
            conversion=f"value = {tflops_cell} TFLOP/s per chip x 1e12. (raw metric "
            f"'tflops_per_s_per_chip', raw value {tflops_cell}.)",
        ),
    }


def read(tree: SourceTree) -> list[Row]:
    rows: list[Row] = []
    for path in tree.list("**/README.md"):
        commit = path.split("/", 1)[0]
        folder = path.rsplit("/", 1)[0]
        text = tree.read(path)
        lines = text.splitlines()
        for line_no, table in md_tables(text):
            heading = next((ln for ln in reversed(lines[:line_no]) if ln.startswith("#")), "")
            for cell in _cells(table, heading):
                r = _row(cell, folder, tree, commit)
                if r:
                    rows.append(r)
    return dedupe(rows)


IMPORTER = register(
    Importer(
        name="maxtext-perf",
        description="MaxText configs/<platform>/README.md performance tables with their launch "
        "scripts, laid out as <commit>/MaxText/configs/<platform>/...",
        read=read,
    )
)

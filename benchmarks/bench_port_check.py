"""Run ``port-check`` on real open-source packages from PyPI and compare with what the target
stacks publish about those packages.

    python benchmarks/bench_port_check.py                 # download (pip) and check
    python benchmarks/bench_port_check.py --dest DIR --packages accelerate sglang

Each package is fetched with ``pip download --no-deps`` (wheels only; a package that ships
only an sdist, like deepspeed, is fetched as an sdist, for which pip itself prepares
metadata). port-check then reads the archive statically. Printed per package: the findings
per kind, the time the check took, the verdict and engineer-weeks per target, and where the
verdict disagrees with the stack's published support for that package (a vendor fork or
plugin means the stack supports the package even though porting its source is a rewrite).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from siliconomics.cli.port_cmds import check_project
from siliconomics.porting.knowledge import STACKS

# package -> {stack: (published status, how, source)}; only what a source states is listed
PUBLISHED: dict[str, dict[str, tuple[str, str, str]]] = {
    "deepspeed": {
        "gaudi": (
            "supported",
            "HabanaAI DeepSpeed fork, pinned by optimum-habana",
            "https://pypi.org/project/optimum-habana/1.14.0",
        ),
    },
    "accelerate": {
        "neuron": (
            "supported",
            "runs natively on TorchNeuron (no Neuron compatibility layer)",
            "https://awsdocs-neuron.readthedocs-hosted.com/en/latest/torch/reference/torchneuron-resources.html",
        ),
        "gaudi": (
            "supported",
            "Trainer/accelerate detect HPU; torch.compile backend hpu_backend",
            "https://huggingface.co/docs/transformers/perf_train_gaudi",
        ),
    },
    "vllm": {
        "neuron": (
            "supported",
            "vLLM on Neuron via NxD Inference",
            "https://awsdocs-neuron.readthedocs-hosted.com/en/latest/libraries/nxd-inference/developer_guides/model-reference.html",
        ),
        "tpu": (
            "supported",
            "tpu-inference hardware plugin",
            "https://pypi.org/project/tpu-inference/0.29.0/",
        ),
        "gaudi": (
            "supported",
            "vLLM Hardware Plugin for Intel Gaudi",
            "https://docs.vllm.ai/projects/gaudi/en/latest/release_notes.html",
        ),
        "rocm": (
            "supported",
            "ROCm builds (RCCL, ROCm attention back-ends)",
            "https://github.com/vllm-project/vllm/pull/3699",
        ),
    },
}
SDIST_ONLY = {"deepspeed"}
DEFAULT_PACKAGES = ["accelerate", "deepspeed", "megatron-core", "sglang"]


def _have(pkg: str, dest: Path) -> Path | None:
    norm = pkg.replace("-", "_").lower() + "_"
    have = [
        p
        for p in dest.iterdir()
        if p.name.lower().replace("-", "_").startswith(norm)
        and p.name.endswith((".whl", ".tar.gz"))
    ]
    return sorted(have)[-1] if have else None


def download(pkg: str, dest: Path) -> Path | None:
    """The newest wheel (or sdist for SDIST_ONLY) of ``pkg`` in ``dest``, via pip."""
    have = _have(pkg, dest)
    if have:
        return have
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(dest), pkg]
    if pkg not in SDIST_ONLY:
        cmd.insert(-1, "--only-binary=:all:")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        print(f"{pkg}: download failed: {r.stderr.strip().splitlines()[-1:]}")
        return None
    return _have(pkg, dest)


def disagreements(pkg: str, verdicts: dict[str, str]) -> list[str]:
    out = []
    for stack, (status, how, src) in PUBLISHED.get(pkg, {}).items():
        v = verdicts[stack]
        if status == "supported" and v in ("rewrite", "uncertain"):
            out.append(f"{stack}: port-check says {v}, the stack publishes support ({how}; {src})")
        elif status == "supported":
            out.append(f"{stack}: agrees ({v}; published: {how})")
    return out


def check(path: Path, pkg: str) -> None:
    t0 = time.perf_counter()
    scan, reports = check_project(path, list(STACKS))
    dt = time.perf_counter() - t0
    kinds = Counter(f.kind for f in scan.findings)
    print(f"\n== {pkg}: {path.name}")
    print(
        f"   {scan.files_scanned} files ({scan.python_files} Python, "
        f"{len(scan.unparsable)} unparsable), {len(scan.findings)} findings, {dt:.1f} s"
    )
    print("   findings: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    for r in reports:
        print(
            f"   {r.stack.stack:7s} {r.verdict:9s} {r.weeks_low:7.1f}-{r.weeks_high:<7.1f} "
            f"eng-weeks  blockers: "
            + (", ".join(i.kind for i in r.items if i.entry.state == "blocker") or "-")
        )
    for line in disagreements(pkg, {r.stack.stack: r.verdict for r in reports}):
        print(f"   published vs port-check: {line}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", type=Path, default=Path.home() / ".cache" / "siliconomics-port")
    ap.add_argument("--packages", nargs="+", default=DEFAULT_PACKAGES)
    args = ap.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    for pkg in args.packages:
        path = download(pkg, args.dest)
        if path is not None:
            check(path, pkg)
            sys.stdout.flush()


if __name__ == "__main__":
    main()

"""port-check: the scanner on fixture projects, the knowledge base, the effort model, the
payback arithmetic, and the command end to end on a directory, a wheel, an sdist and a
requirements file."""

import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from siliconomics.catalog.registry import models
from siliconomics.errors import SiliconomicsError
from siliconomics.porting.assess import assess, kind_effort
from siliconomics.porting.findings import KINDS
from siliconomics.porting.knowledge import STACKS, Entry, load_effort, load_stack
from siliconomics.porting.payback import parse_weeks, payback
from siliconomics.porting.scan import scan_files, scan_python, scan_requirements

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "porting"
PROJECT = FIX / "cuda_project"
CLI = [sys.executable, "-m", "siliconomics.cli"]


def run(*args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"COLUMNS": str(columns), "PATH": "/usr/bin:/bin"},
    )


def read_dir(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


def line_of(path: Path, needle: str) -> int:
    return next(i for i, s in enumerate(path.read_text().splitlines(), 1) if needle in s)


@pytest.fixture(scope="module")
def project_scan():
    return scan_files(read_dir(PROJECT))


# ---------------------------------------------------------------- scanner


def test_fixture_covers_every_kind(project_scan):
    assert set(project_scan.by_kind()) == set(KINDS)


@pytest.mark.parametrize(
    ("kind", "file", "needle"),
    [
        ("nccl-backend", "train.py", 'init_process_group(backend="nccl")'),
        ("collective", "train.py", "dist.all_reduce(y)"),
        ("torch-compile", "train.py", "torch.compile(model)"),
        ("fp8-te", "train.py", "te.fp8_autocast"),
        ("cuda-graph", "train.py", "torch.cuda.CUDAGraph()"),
        ("fsdp", "train.py", "FSDP(model.cuda())"),
        ("cuda-extension", "train.py", "load_inline("),
        ("cuda-extension", "setup.py", "CUDAExtension("),
        ("deepspeed-ops", "train.py", "from deepspeed.ops"),
        ("vllm-custom-ops", "serve.py", "_custom_ops"),
        ("nccl-setting", "train.py", "NCCL_IB_DISABLE"),
        ("nccl-setting", "scripts/launch.sh", "NCCL_DEBUG"),
        ("xformers", "setup.py", "xformers>=0.0.27"),
        ("flash-attn", "pyproject.toml", "flash-attn>=2.5"),
        ("torch-cuda-call", "danger.py", "empty_cache"),
    ],
)
def test_findings_have_file_and_line(project_scan, kind, file, needle):
    want = line_of(PROJECT / file, needle)
    hits = [f for f in project_scan.findings if f.kind == kind and f.file == file]
    assert want in {f.line for f in hits}, hits


def test_triton_kernels_counted_once_each(project_scan):
    kernels = [f for f in project_scan.findings if f.kind == "triton-kernel" and not f.dependency]
    assert len(kernels) == 2 and {f.file for f in kernels} == {"kernels/rmsnorm.py"}


def test_cuda_sources_carry_their_size(project_scan):
    cu = {f.file: f.loc for f in project_scan.findings if f.kind == "cuda-source"}
    assert set(cu) == {"csrc/fused.cu", "csrc/fused.cuh"}
    assert cu["csrc/fused.cu"] == 11


def test_vendored_environments_are_not_the_project(project_scan):
    assert not any(".venv" in f.file for f in project_scan.findings)


def test_unparsable_python_still_gets_text_rules(project_scan):
    assert project_scan.unparsable == ("broken.py",)
    assert any(f.file == "broken.py" and f.kind == "nccl-setting" for f in project_scan.findings)


def test_requirement_names_are_normalised():
    found = list(scan_requirements("r.txt", "Flash_Attn==2\n# cupy\n-r base.txt\nTorch\n"))
    assert [(f.kind, f.line) for f in found] == [("flash-attn", 1)]


def test_plain_torch_is_not_a_cuda_tie():
    found, ok = scan_python("m.py", "import torch\nx = torch.ones(2).to('cpu')\n")
    assert ok and found == []


def test_clean_project_is_ready():
    scan = scan_files(read_dir(FIX / "clean_project"))
    assert scan.findings == () and scan.files_scanned == 2
    rep = assess(scan, load_stack("neuron"), load_effort())
    assert rep.verdict == "ready" and rep.weeks_high == 0


# ---------------------------------------------------------------- knowledge base


@pytest.mark.parametrize("name", STACKS)
def test_every_stack_covers_every_kind_with_a_source(name):
    stack = load_stack(name)
    assert {e.kind for e in stack.entries} == set(KINDS)
    for e in stack.entries:
        if e.state == "unknown":
            assert e.confidence == "low", e.kind
        else:
            assert e.source.startswith("https://") and e.date, e.kind


@pytest.mark.parametrize("name", STACKS)
def test_model_support_names_catalog_families(name):
    families = {m.family for m in models().values()}
    for m in load_stack(name).models:
        assert m.family in families, m.family
        assert m.status == "unknown" or m.source.startswith("https://")


def test_unknown_model_family_stays_unknown():
    m = load_stack("tpu").model("llama-3.1")
    assert m.status == "unknown" and m.confidence == "low"


def test_bad_status_is_rejected():
    with pytest.raises(ValueError):
        Entry(kind="cupy", status="maybe", action="", source="", date="", confidence="low")


def test_unknown_target_is_a_user_error():
    with pytest.raises(SiliconomicsError, match="allowed: neuron, tpu, gaudi, rocm"):
        load_stack("maia")


# ---------------------------------------------------------------- effort model


def test_effort_model_covers_every_kind_and_rewrites_cost_more():
    effort = load_effort()
    assert set(effort.kinds) == set(KINDS)
    for k, e in effort.kinds.items():
        assert e.replace[0] <= e.replace[1] and e.rewrite[0] <= e.rewrite[1], k
        assert e.rewrite[0] >= e.replace[0] and e.rewrite[1] >= e.replace[1], k
        assert e.rationale


def _entry(kind: str, status: str) -> Entry:
    return Entry(kind=kind, status=status, action="", source="", date="", confidence="low")


def test_effort_scales_with_count_and_code_size():
    effort = load_effort()
    blocker = _entry("cuda-source", "blocker")
    one = kind_effort(effort, blocker, 1, 500)
    more = kind_effort(effort, blocker, 3, 500)
    bigger = kind_effort(effort, blocker, 1, 5000)
    assert more[0] > one[0] and bigger[0] > one[0] and bigger[1] > one[1]
    swap = kind_effort(effort, _entry("cuda-source", "replacement:HIPIFY"), 1, 500)
    assert swap[1] < one[1]
    unknown = kind_effort(effort, _entry("cuda-source", "unknown"), 1, 500)
    assert unknown == (swap[0], one[1])
    assert kind_effort(effort, _entry("cuda-source", "supported"), 9, 9000) == effort.verify


def test_custom_cuda_costs_more_on_neuron_than_on_rocm(project_scan):
    effort = load_effort()
    neuron = assess(project_scan, load_stack("neuron"), effort)
    rocm = assess(project_scan, load_stack("rocm"), effort)
    cu = {
        r.stack.stack: next(i for i in r.items if i.kind == "cuda-source") for r in (neuron, rocm)
    }
    assert cu["neuron"].entry.state == "blocker" and cu["rocm"].entry.state == "replacement"
    assert cu["neuron"].weeks_low > cu["rocm"].weeks_low
    assert neuron.verdict == "rewrite" and neuron.weeks_low > rocm.weeks_low


def test_model_family_support_joins_the_summary(project_scan):
    rep = assess(project_scan, load_stack("tpu"), load_effort(), model_family="llama-3.1")
    assert rep.model is not None and rep.model.status == "unknown"
    assert "llama-3.1" in rep.summary


# ---------------------------------------------------------------- payback


def test_payback_arithmetic():
    p = payback(weeks=(6, 10), eng_rate_usd_per_week=5000, monthly_saving_usd=20000)
    assert (p.cost_low_usd, p.cost_high_usd) == (30000, 50000)
    assert p.payback_months_low == pytest.approx(1.5) and p.payback_months_high == 2.5
    assert p.net_saving_low_usd == 20000 * 36 - 50000
    assert p.net_saving_high_usd == 20000 * 36 - 30000


def test_no_saving_never_pays_back():
    p = payback(weeks=(1, 2), eng_rate_usd_per_week=5000, monthly_saving_usd=-100)
    assert p.payback_months_low is None and p.net_saving_high_usd < 0


@pytest.mark.parametrize("bad", ["ten", "10-6", "-3", ""])
def test_bad_week_ranges(bad):
    with pytest.raises(SiliconomicsError, match="--migration-weeks"):
        parse_weeks(bad)


def test_week_ranges():
    assert parse_weeks("6-10") == (6, 10) and parse_weeks(" 8 ") == (8, 8)


# ---------------------------------------------------------------- command end to end


def test_port_check_directory_json():
    r = run("port-check", str(PROJECT), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(d["targets"]) == set(STACKS)
    assert {f["kind"] for f in d["findings"]} == set(KINDS)
    neuron = d["targets"]["neuron"]
    assert neuron["verdict"] == "rewrite" and neuron["blockers"] > 0
    item = next(i for i in neuron["items"] if i["kind"] == "torch-compile")
    assert item["replacement"] and item["source"].startswith("https://")
    assert "train.py:" in item["findings"][0]


def test_port_check_table_fits_80_columns(tmp_path):
    html = tmp_path / "port.html"
    r = run("port-check", str(PROJECT), "--html", str(html), columns=80)
    assert r.returncode == 0, r.stderr
    assert max(len(s) for s in r.stdout.splitlines()) <= 80
    assert "REWR" in r.stdout and "verdict" in r.stdout
    page = html.read_text()
    assert "Port effort" in page and "awsdocs-neuron" in page


def test_port_check_single_target_with_model():
    r = run("port-check", str(PROJECT), "--target", "neuron", "--model", "llama-3.1-8b")
    assert r.returncode == 0, r.stderr
    assert "llama-3.1: supported" in r.stdout and "what to do" in r.stdout


def _wheel(tmp_path: Path) -> Path:
    whl = tmp_path / "cuda_project-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.write(PROJECT / "train.py", "cuda_project/train.py")
        z.write(PROJECT / "kernels" / "rmsnorm.py", "cuda_project/kernels/rmsnorm.py")
        z.writestr(
            "cuda_project-0.1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: cuda-project\nRequires-Dist: torch\n"
            "Requires-Dist: flash-attn>=2; extra == 'gpu'\nRequires-Dist: vllm\n",
        )
    return whl


def test_port_check_wheel(tmp_path):
    r = run("port-check", str(_wheel(tmp_path)), "--target", "gaudi", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    where = {(f["kind"], f["file"]) for f in d["findings"]}
    assert ("flash-attn", "cuda_project-0.1.0.dist-info/METADATA") in where
    assert ("triton-kernel", "cuda_project/kernels/rmsnorm.py") in where
    assert d["targets"]["gaudi"]["verdict"] == "rewrite"


def test_port_check_sdist(tmp_path):
    sdist = tmp_path / "cuda_project-0.1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as t:
        t.add(PROJECT, arcname="cuda_project-0.1.0")
    r = run("port-check", str(sdist), "--target", "rocm", "--json")
    assert r.returncode == 0, r.stderr
    kinds = {f["kind"] for f in json.loads(r.stdout)["findings"]}
    assert kinds == set(KINDS)


def test_port_check_requirements_file():
    r = run("port-check", str(FIX / "requirements-gpu.txt"), "--target", "rocm", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert {f["kind"] for f in d["findings"]} == {"flash-attn", "bitsandbytes", "vllm"}
    assert d["targets"]["rocm"]["verdict"] == "swap"


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["port-check", "no/such/dir"], "does not exist"),
        (["port-check", str(PROJECT), "--target", "maia"], "--target 'maia'"),
        (["port-check", str(FIX / "clean_project" / "model.py"), "--model", "nope"], "nope"),
        (["tco", "--chip", "h100-sxm", "--migration-weeks", "6-10"], "--monthly-saving"),
        (["tco", "--chip", "h100-sxm", "--migration-weeks", "x", "--monthly-saving", "1"], "weeks"),
        (
            ["tco", "--chip", "h100-sxm", "--port-check", str(PROJECT), "--monthly-saving", "1"],
            "port",
        ),
    ],
)
def test_bad_input_is_one_line(args, msg):
    r = run(*args)
    assert r.returncode == 2 and msg in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_tco_adds_migration_payback():
    r = run(
        "tco", "--chip", "tpu-v6e", "--model", "llama-3.1-8b", "--mode", "on-demand",
        "--port-check", str(PROJECT), "--port-target", "tpu",
        "--baseline-chip", "h100-sxm", "--monthly-tokens", "5e10", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    pb = json.loads(r.stdout)["migration_payback"]
    direct = json.loads(run("port-check", str(PROJECT), "--target", "tpu", "--json").stdout)
    assert pb["weeks_low"] == direct["targets"]["tpu"]["weeks_low"]
    assert pb["migration_cost_high_usd"] == pytest.approx(
        pb["weeks_high"] * pb["eng_rate_usd_per_week"]
    )
    assert (pb["payback_months_low"] is None) == (pb["monthly_saving_usd"] <= 0)


def test_tco_payback_in_terminal_output():
    r = run(
        "tco", "--chip", "h100-sxm", "--migration-weeks", "6-10", "--monthly-saving", "40000",
        "--eng-rate", "5000",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "30,000-50,000 USD one-off" in r.stdout and "payback: 0.8-1.2 months" in r.stdout


def test_plan_spec_migration_gives_payback_against_a_baseline_fleet(tmp_path):
    """A plan spec's ``migration`` sets the port's cost against the monthly saving of the
    chosen fleet over a baseline alternative (730 h a month)."""
    import json as _json
    import subprocess as _sp
    import sys as _sys

    spec = (Path(__file__).resolve().parents[1] / "examples" / "chat-mixed-fleet.yaml").read_text()
    f = tmp_path / "mig.yaml"
    f.write_text(
        spec + 'migration: {weeks: "6-10", baseline: all-h100-sxm, eng_rate_usd_per_week: 5000}\n'
    )
    r = _sp.run(
        [_sys.executable, "-m", "siliconomics.cli", "plan", str(f), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    d = _json.loads(r.stdout)
    pb = d["migration_payback"]
    base = next(a for a in d["fleet"]["alternatives"] if a["label"] == "all-h100-sxm")
    saving = (base["usd_per_hour"] - d["fleet"]["usd_per_hour"]) * 730.0
    assert pb["monthly_saving_usd"] == pytest.approx(saving, rel=0.01)  # JSON rounds USD/h
    assert (pb["migration_cost_low_usd"], pb["migration_cost_high_usd"]) == (30000.0, 50000.0)
    if saving > 0:
        assert pb["payback_months_low"] == pytest.approx(30000.0 / saving, rel=0.01)
    f.write_text(spec + 'migration: {weeks: "6-10", baseline: all-nosuch}\n')
    r = _sp.run(
        [_sys.executable, "-m", "siliconomics.cli", "plan", str(f)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and "migration.baseline 'all-nosuch'" in r.stderr


def test_plan_spec_migration_can_port_check_a_project(tmp_path):
    import json as _json
    import subprocess as _sp
    import sys as _sys

    root = Path(__file__).resolve().parents[1]
    spec = (root / "examples" / "chat-mixed-fleet.yaml").read_text()
    f = tmp_path / "mig.yaml"
    project = root / "tests" / "fixtures" / "porting" / "cuda_project"
    f.write_text(
        spec + f"migration: {{port_check: {project}, port_target: neuron, baseline: all-NVIDIA}}\n"
    )
    r = _sp.run(
        [_sys.executable, "-m", "siliconomics.cli", "plan", str(f), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    pb = _json.loads(r.stdout)["migration_payback"]
    assert 0 < pb["weeks_low"] <= pb["weeks_high"]

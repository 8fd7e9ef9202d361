"""MLPerf importers on small fixtures (hand-written in the results trees' real formats), the
git-mirror reader, and the layout rules of every corpus row (SCHEMA.md)."""

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

from siliconomics.cli.measured_cmds import DirTree, GitTree
from siliconomics.errors import SiliconomicsError
from siliconomics.measured.importers import COLUMNS, IMPORTERS, complete

FIX = Path(__file__).parent / "fixtures" / "mlperf"
CORPUS = Path(__file__).parents[1] / "src" / "siliconomics" / "measured" / "corpus"
REFERENCE = Path(__file__).parents[2] / "shared" / "reference" / "accelerators.csv"


def _rows(fmt: str, folder: str, label: str) -> dict[str, dict[str, str]]:
    rows = IMPORTERS[fmt].read(DirTree(FIX / folder, label))
    return {r["id"]: complete(r) for r in rows}


def test_inference_v51_rows():
    rows = _rows("mlperf-inference", "inference_v5.1", "fixture/inference_results_v5.1@x")
    # the INVALID Interactive run and the -99.9 twin are skipped; the GH200 144GB system maps to
    # the HBM3e GH200 chip (its fixture has no config, so its layout is unknown: usable=false)
    assert sorted(rows) == [
        "MLPI-5.1-AMD-8xMI325X_2xEPYC_9575F-llama2-70b-99-Server",
        "MLPI-5.1-NVIDIA-B200-SXM-180GBx8_TRT-deepseek-r1-Server",
        "MLPI-5.1-NVIDIA-B200-SXM-180GBx8_TRT-llama2-70b-99-Offline",
        "MLPI-5.1-NVIDIA-GH200-144GB_aarch64x1_TRT-llama2-70b-99-Offline",
        "MLPI-5.1-RedHat-L40S_vLLM-llama3.1-8b-Offline",
    ]
    gh = rows["MLPI-5.1-NVIDIA-GH200-144GB_aarch64x1_TRT-llama2-70b-99-Offline"]
    assert (gh["chip"], gh["n_chips"], gh["usable"]) == ("gh200-144gb", "1", "false")
    ds = rows["MLPI-5.1-NVIDIA-B200-SXM-180GBx8_TRT-deepseek-r1-Server"]
    want = dict(scenario="server", model="deepseek-r1", chip="b200", n_chips="8", replicas="1")
    want |= dict(tp="1", dp="8", ep="8", pp="1", batch="4096", weight_dtype="fp4", kv_dtype="fp8")
    want |= dict(metric="output_tokens_per_s", value="18592.24", slo_ttft_s="2", slo_tpot_s="0.08")
    assert {k: ds[k] for k in want} == want
    assert "enable_attention_dp" in ds["notes"] and "p99=1534 ms" in ds["notes"]
    assert "per attention rank" in ds["notes"]  # gpu_batch_size 512 x 8 attention ranks
    off = rows["MLPI-5.1-NVIDIA-B200-SXM-180GBx8_TRT-llama2-70b-99-Offline"]
    assert (off["replicas"], off["tp"], off["batch"], off["weight_dtype"]) == (
        "8",
        "1",
        "2048",
        "fp4",
    )
    assert off["slo_ttft_s"] == "" and "DEDUPED" in off["notes"]  # offline: no limits
    amd = rows["MLPI-5.1-AMD-8xMI325X_2xEPYC_9575F-llama2-70b-99-Server"]
    assert (amd["chip"], amd["replicas"], amd["batch"], amd["kv_dtype"]) == (
        "mi325x",
        "8",
        "1024",
        "fp8",
    )
    rh = rows["MLPI-5.1-RedHat-L40S_vLLM-llama3.1-8b-Offline"]
    assert rh["usable"] == "false" and "UNUSABLE:" in rh["notes"] and rh["tp"] == ""


def test_inference_v41_class_configs_and_gptj():
    rows = _rows("mlperf-inference", "inference_v4.1", "fixture/inference_results_v4.1@x")
    l2 = rows["MLPI-4.1-Supermicro-SYS_821GE_TNHR_H100_SXM_80GBx8_TRT-llama2-70b-99-Offline"]
    # custom.py class inherits TP2 and batch 896 from the NVIDIA class
    assert (l2["replicas"], l2["tp"], l2["batch"], l2["weight_dtype"]) == ("4", "2", "896", "fp8")
    assert "custom.py class SYS_821GE_TNHR_H100_SXM_80GBX8" in l2["notes"]
    gj = rows["MLPI-4.1-Supermicro-SYS_821GE_TNHR_H100_SXM_80GBx8_TRT-gptj-99-Server"]
    assert (gj["metric"], gj["value"], gj["slo_e2e_s"]) == ("samples_per_s", "278.89", "20")


def test_training_rows():
    rows = _rows("mlperf-training", "training_v5.0", "fixture/training_results_v5.0@x")
    thr = rows["MLPT-5.0-NVIDIA-tyche_ngpu72_ngc25.04_nemo-llama2_70b_lora-THR"]
    want = dict(usable="true", chip="gb200", n_chips="72", tp="1", pp="1", cp="8", dp="9")
    want |= dict(global_batch_seqs="9", train_method="lora", weight_dtype="fp8", seq_len="8192")
    assert {k: thr[k] for k in want} == want
    # first value per run dropped: median of 38.00, 37.80, 38.01, 37.81
    assert thr["metric"] == "samples_per_s" and float(thr["value"]) == pytest.approx(37.905)
    ttt = rows["MLPT-5.0-NVIDIA-tyche_ngpu72_ngc25.04_nemo-llama2_70b_lora-TTT"]
    assert ttt["usable"] == "false" and ttt["value"] == "123"  # mean of 120 s and 126 s
    tpu = rows["MLPT-5.0-Google-cloud-tpu-trillium-512-maxtext-gpt3-THR"]
    want = dict(usable="true", chip="tpu-v6e", n_chips="512", tp="1", dp="512", fsdp="256")
    want |= dict(
        micro_batch="3",
        recompute="full",
        weight_dtype="int8",
        metric="train_tokens_per_s_incl_eval",
    )
    assert {k: tpu[k] for k in want} == want and tpu["inferred_fields"] == "micro_batch"
    # first block per run dropped: median of 50331648/254 s and 50331648/256 s
    assert float(tpu["value"]) == pytest.approx((50331648 / 254 + 50331648 / 256) / 2)
    acme = rows["MLPT-5.0-Acme-box8-llama2_70b_lora-THR"]
    assert acme["usable"] == "false" and "UNUSABLE" in acme["notes"]


def test_rerun_is_identical():
    for fmt, folder in (
        ("mlperf-inference", "inference_v5.1"),
        ("mlperf-training", "training_v5.0"),
    ):
        label = f"fixture/{folder.split('_')[0]}_results_v{folder.split('_v')[1]}@x"
        a = IMPORTERS[fmt].read(DirTree(FIX / folder, label))
        b = IMPORTERS[fmt].read(DirTree(FIX / folder, label))
        assert a == b and a


# Labels of rounds kept apart for independent testing, assembled from parts: this test only
# checks that the importers refuse them; no file of those rounds exists in the project.
KEPT_APART_INFERENCE = "x/inference_results_v" + "6.0@y"
KEPT_APART_TRAINING = "t/training_results_v" + "5.1@z"


@pytest.mark.parametrize("label", [KEPT_APART_INFERENCE, "no-round"])
def test_kept_apart_rounds_are_refused(label):
    with pytest.raises(SiliconomicsError):
        IMPORTERS["mlperf-inference"].read(DirTree(FIX / "inference_v5.1", label))
    with pytest.raises(SiliconomicsError):
        IMPORTERS["mlperf-training"].read(DirTree(FIX / "training_v5.0", KEPT_APART_TRAINING))


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_tree_reads_a_commit_like_the_folder(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(FIX / "inference_v5.1", repo)
    env = ["-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["init", "-q"], ["add", "-A"], [*env, "commit", "-q", "-m", "fixture"]):
        subprocess.run(["git", "-C", str(repo), *cmd], check=True)
    tree = GitTree(repo / ".git", "HEAD", "fixture/inference_results_v5.1")
    assert tree.label.startswith("fixture/inference_results_v5.1@") and len(tree.commit) == 40
    from_git = IMPORTERS["mlperf-inference"].read(tree)
    from_dir = IMPORTERS["mlperf-inference"].read(DirTree(FIX / "inference_v5.1", tree.label))
    assert from_git == from_dir


# --- the corpus ------------------------------------------------------------------------------


def _corpus(pattern: str = "*.csv") -> list[dict[str, str]]:
    """Rows of the corpus files (CSVs whose header starts 'id,kind'; models.csv and other
    side tables in the folder are skipped)."""
    rows = []
    for f in sorted(CORPUS.glob(pattern)):
        with f.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ())[:2] != ("id", "kind"):
                continue
            assert tuple(reader.fieldnames or ()) == COLUMNS, f.name
            rows.extend(reader)
    return rows


def test_corpus_ids_unique_and_layouts_consistent():
    rows = _corpus()
    assert rows
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    for r in rows:
        assert r["kind"] in ("inference", "training") and r["usable"] in ("true", "false")
        float(r["value"])
        if r["usable"] != "true":
            assert "UNUSABLE" in r["notes"], r["id"]
            continue
        n = {k: int(r[k]) for k in ("n_chips", "replicas", "tp", "pp", "cp", "dp", "ep")}
        if r["kind"] == "inference":
            assert n["replicas"] * n["tp"] * n["pp"] * n["cp"] * n["dp"] == n["n_chips"], r["id"]
            assert (n["tp"] * n["dp"]) % n["ep"] == 0, r["id"]
        else:
            assert n["replicas"] == 1 and n["tp"] * n["pp"] * n["cp"] * n["dp"] == n["n_chips"]
            if r["fsdp"].isdigit():
                assert n["dp"] % int(r["fsdp"]) == 0, r["id"]


@pytest.mark.skipif(not REFERENCE.is_file(), reason="../shared/reference missing")
def test_mlperf_corpus_chips_are_reference_chips():
    from siliconomics.catalog.registry import chips as catalog_chips

    with REFERENCE.open(newline="", encoding="utf-8") as fh:
        chips = {r["id"] for r in csv.DictReader(fh)} | set(catalog_chips())
    mlperf = _corpus("mlperf-*.csv")
    assert len(mlperf) > 500 and {r["chip"] for r in mlperf} <= chips


def test_launch_config_shell_semantics():
    from siliconomics.measured.importers.mlperf_training import shell_env, train_intervals

    files = {
        "config_X_2x8x1.sh": (
            "source $(dirname ${BASH_SOURCE[0]})/config_common.sh\n"
            'export TENSOR_MODEL_PARALLEL="${TP:=4}"  # comment\n'
            'export DGXNNODES="${DGXNNODES:=2}"\n'
            "export PP=$((2 * 2))\n"
        ),
        "config_common.sh": "export TP=8\nexport CP=2\n",
    }
    env = shell_env(files, "config_X_2x8x1.sh")
    assert env["TENSOR_MODEL_PARALLEL"] == "8" and env["DGXNNODES"] == "2" and env["CP"] == "2"
    assert "PP" not in env  # shell arithmetic is not evaluated
    evals = [("eval_start", 0.0, 100.0), ("eval_stop", 10_000.0, 100.0)]
    evals += [("eval_start", 30_000.0, 300.0), ("eval_stop", 35_000.0, 300.0)]
    assert train_intervals(evals) == [
        10.0
    ]  # 200 tokens in the 20 s between eval_stop and eval_start


def test_mlperf_server_limits_agree_within_a_benchmark():
    """Every log of a benchmark and scenario printed the same loadgen limits (a parse check)."""
    limits: dict[tuple[str, str, bool], set[tuple[str, str, str]]] = {}
    for r in _corpus("mlperf-inference-*.csv"):
        if r["scenario"] == "server":
            key = (r["id"].split("-")[1], r["model"], r["id"].endswith("-Interactive"))
            limits.setdefault(key, set()).add((r["slo_ttft_s"], r["slo_tpot_s"], r["slo_e2e_s"]))
    assert limits and all(len(v) == 1 for v in limits.values()), limits
    assert limits[("5.1", "llama-2-70b", True)] == {("0.45", "0.04", "")}
    assert limits[("4.1", "gpt-j-6b", False)] == {("", "", "20")}


def test_gh200_variants_map_by_memory():
    from siliconomics.measured.importers._mlperf_common import chip_id

    assert chip_id("NVIDIA GH200 Grace Hopper Superchip 144GB") == "gh200-144gb"
    assert chip_id("NVIDIA GH200-GraceHopper-Superchip 96GB") == "gh200"
    assert chip_id("NVIDIA GH200 Grace Hopper Superchip") is None  # variant not stated: skipped
    assert chip_id("NVIDIA H200-SXM-141GB") == "h200-sxm"

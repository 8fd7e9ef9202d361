"""The Python API and chip/model files: ids, files and objects give the same answers, to_dict()
is the --json output, to_pandas() is a table, and a chip outside the catalog works end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w

import siliconomics as si
from siliconomics import resolve
from siliconomics.errors import SiliconomicsError, UnknownIdError

ROOT = Path(__file__).resolve().parents[1]
HYPO = ROOT / "examples" / "chips" / "h100-2xhbm-hypothetical.toml"
CHIP_DATA = ROOT / "src" / "siliconomics" / "catalog" / "data" / "chips"
MODEL_DATA = ROOT / "src" / "siliconomics" / "catalog" / "data" / "models"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "siliconomics.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def _copy(src: Path, dst: Path, **update: object) -> Path:
    raw = tomllib.loads(src.read_text(encoding="utf-8"))
    raw.update(update)
    dst.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return dst


def test_top_level_api_is_exported():
    for name in ("estimate", "compare", "train", "simulate", "plan", "tco", "validate"):
        assert callable(getattr(si, name)), name
        assert "s" in (getattr(si, name).__doc__ or ""), name  # documented


def test_id_file_and_object_give_identical_estimates(tmp_path: Path):
    f = _copy(CHIP_DATA / "h100-sxm.toml", tmp_path / "mine.toml", id="my-h100")
    by_id = si.estimate("llama-3.1-8b", "h100-sxm", batch=8)
    by_file = si.estimate("llama-3.1-8b", f, batch=8)
    by_obj = si.estimate("llama-3.1-8b", resolve.device("h100-sxm"), batch=8)
    for r in (by_file, by_obj):
        assert float(r.estimate.tpot_s) == float(by_id.estimate.tpot_s)
        assert float(r.estimate.ttft_s) == float(by_id.estimate.ttft_s)
    assert by_file.estimate.device.id == "my-h100"


def test_to_dict_is_the_json_output():
    r = si.estimate("llama-3.1-8b", "h100-sxm", batch=4, input_len=512, output_len=64)
    cli = _cli(
        "estimate", "--model", "llama-3.1-8b", "--chip", "h100-sxm", "--batch", "4",
        "--input", "512", "--output", "64", "--json",
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    # the command is a skin over the API: the same dict, error bands included
    got = json.loads(cli.stdout)
    assert r.to_dict() == got
    assert got["band"]["level"] == 0.8
    assert got["tpot_s_low"] < got["tpot_s"] < got["tpot_s_high"]


def test_to_pandas_one_row_per_chip_and_clear_error_without_pandas(monkeypatch):
    cmp = si.compare("llama-3.1-8b", ["h100-sxm", "l4"], input_len=512, output_len=128)
    df = cmp.to_pandas()
    assert sorted(df["chip"]) == ["h100-sxm", "l4"]
    assert (df.loc[df["feasible"], "tokens_per_s_per_chip"] > 0).all()
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        cmp.to_pandas()


def test_hypothetical_chip_file_doubles_memory_and_decodes_faster():
    base = si.estimate("llama-3.1-70b", "h100-sxm", tp=2, batch=16)
    hypo = si.estimate("llama-3.1-70b", HYPO, tp=2, batch=16)
    assert hypo.estimate.memory.capacity == pytest.approx(2 * base.estimate.memory.capacity)
    # decode is memory-bound: twice the bandwidth is faster, never twice as fast
    assert float(hypo.estimate.tpot_s) < float(base.estimate.tpot_s)
    assert float(hypo.estimate.tpot_s) > 0.5 * float(base.estimate.tpot_s)
    # a 70B model in bf16 needs tp >= 2 on an 80 GiB H100 but fits one 160 GiB chip
    si.estimate("llama-3.1-70b", HYPO, batch=1)
    with pytest.raises(SiliconomicsError, match="does not fit"):
        si.estimate("llama-3.1-70b", "h100-sxm", batch=1)


def test_chip_file_in_compare_train_simulate():
    cmp = si.compare("llama-3.1-8b", ["h100-sxm", HYPO], input_len=512, output_len=128)
    assert {c.chip.id for c in cmp.choices} == {"h100-sxm", "h100-2xhbm-hypothetical"}
    t = si.train("llama-3.1-8b", HYPO, 8, top=1, global_batch=64)
    assert t.estimates[0].device.id == "h100-2xhbm-hypothetical"
    s = si.simulate("llama-3.1-8b", HYPO, rate=2.0, requests=30, input_len=256, output_len=32)
    assert s.n_requests == 30


def test_chip_file_embeds_its_own_efficiency_profile(tmp_path: Path):
    prof = tomllib.loads((ROOT / "src/siliconomics/catalog/data/efficiency/nvidia-hopper.toml")
                         .read_text(encoding="utf-8"))  # fmt: skip
    prof.update(family="my-stack", gemm_efficiency=0.5)
    f = _copy(CHIP_DATA / "h100-sxm.toml", tmp_path / "c.toml", id="c", family="my-stack")
    raw = tomllib.loads(f.read_text(encoding="utf-8"))
    raw["efficiency"] = prof
    f.write_text(tomli_w.dumps(raw), encoding="utf-8")
    dev = resolve.device(f)
    assert dev.eff.family == "my-stack" and dev.eff.gemm_efficiency == 0.5
    slow = si.estimate("llama-3.1-8b", dev, batch=64, input_len=2048, output_len=2)
    fast = si.estimate("llama-3.1-8b", "h100-sxm", batch=64, input_len=2048, output_len=2)
    assert float(slow.estimate.ttft_s) > float(fast.estimate.ttft_s)  # prefill is GEMM-bound
    # an embedded profile may not shadow a packaged family
    raw["family"] = "nvidia-hopper"
    raw["efficiency"]["family"] = "nvidia-hopper"
    f.write_text(tomli_w.dumps(raw), encoding="utf-8")
    with pytest.raises(SiliconomicsError, match="packaged efficiency family"):
        resolve.device(f)


def test_bad_chip_files_are_one_line_errors(tmp_path: Path):
    bad = _copy(CHIP_DATA / "h100-sxm.toml", tmp_path / "bad.toml", family="no-such-family")
    with pytest.raises(SiliconomicsError, match="not a packaged efficiency family"):
        resolve.device(bad)
    with pytest.raises(SiliconomicsError, match="does not exist"):
        resolve.device(tmp_path / "missing.toml")
    with pytest.raises(UnknownIdError, match="h100-sxm"):
        resolve.device("h100-sxn")
    r = _cli("estimate", "--model", "llama-3.1-8b", "--chip", str(bad))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_model_file_matches_the_catalog_model(tmp_path: Path):
    f = _copy(MODEL_DATA / "llama-3.1-8b.toml", tmp_path / "m.toml", id="my-8b")
    a = si.estimate(f, "h100-sxm", batch=8)
    b = si.estimate("llama-3.1-8b", "h100-sxm", batch=8)
    assert a.estimate.model.id == "my-8b"
    assert float(a.estimate.tpot_s) == float(b.estimate.tpot_s)
    j = tmp_path / "m.json"
    j.write_text(json.dumps(tomllib.loads(f.read_text(encoding="utf-8"))), encoding="utf-8")
    assert resolve.model(j).id == "my-8b"


def test_plan_spec_resolves_chip_and_model_files_relative_to_the_spec(tmp_path: Path):
    _copy(CHIP_DATA / "h100-sxm.toml", tmp_path / "chip.toml", id="my-h100")
    _copy(MODEL_DATA / "llama-3.1-8b.toml", tmp_path / "model.toml", id="my-8b")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "chips: [h100-sxm, chip.toml]\n"
        "prices: {my-h100: 3.0}\n"
        "workloads:\n"
        "  - model: model.toml\n    rate_rps: 2\n    input: {mean: 500}\n"
        "    output: {mean: 100}\n    slo: {ttft: 2s, tpot: 50ms}\n",
        encoding="utf-8",
    )
    ps, cat = resolve.plan_spec(spec)
    assert ps.chips == ("h100-sxm", "my-h100")
    assert ps.workloads[0].model == "my-8b"
    assert cat.chip("my-h100").family == "nvidia-hopper"
    assert cat.model("my-8b").n_layers == 32


def test_plan_with_a_chip_file_end_to_end(tmp_path: Path):
    _copy(CHIP_DATA / "h100-sxm.toml", tmp_path / "chip.toml", id="my-h100")
    p = si.plan(
        {
            "chips": ["my-h100"],
            "prices": {"my-h100": 3.0},
            "workloads": [
                {
                    "model": "llama-3.1-8b",
                    "rate_rps": 2,
                    "input": {"mean": 500},
                    "output": {"mean": 100},
                    "slo": {"ttft": "2s", "tpot": "50ms"},
                }
            ],
        },
        chips=[tmp_path / "chip.toml"],
    )
    assert p.fleet is not None and p.fleet.pools[0].chip == "my-h100"


def test_api_validate_matches_the_cli(shared: Path):
    v = si.validate(shared / "validation" / "measured.csv")
    assert len(v.results) > 50
    df = v.to_pandas()
    assert len(df) == len(v.results)
    assert v.to_dict()["results"][0]["id"] == v.results[0].row.id


def test_tco_with_a_chip_file_from_the_api_and_the_cli(tmp_path: Path):
    f = _copy(CHIP_DATA / "h100-sxm.toml", tmp_path / "chip.toml", id="my-h100")
    own = {"chip_prices": {"my-h100": 30000.0}}
    mine = si.tco(f, "llama-3.1-8b", mode="owned", assumptions=own)
    ref = si.tco("h100-sxm", "llama-3.1-8b", mode="owned", assumptions={"chip_prices": {"h100-sxm": 30000.0}})  # fmt: skip
    m, r = mine.to_dict()["modes"][0], ref.to_dict()["modes"][0]
    assert m["mode"] == "owned" and m["usd_per_busy_chip_hour"] == r["usd_per_busy_chip_hour"]
    assert m["usd_per_m_output_low"] < m["usd_per_m_output"] < m["usd_per_m_output_high"]
    # without a purchase price the chip file has no owned cost: one line naming the option
    cli = _cli("tco", "--chip", str(f), "--model", "llama-3.1-8b")
    assert cli.returncode == 2 and "--chip-price my-h100" not in cli.stderr
    assert "my-h100" in cli.stderr and cli.stderr.count("\n") == 1
    cli = _cli("tco", "--chip", str(f), "--chip-price", "my-h100=30000", "--json")
    assert cli.returncode == 0, cli.stderr
    api = si.tco(f, assumptions=own).to_dict()
    assert json.loads(cli.stdout)["modes"] == api["modes"]


def test_plan_with_a_chip_file_from_the_cli(tmp_path: Path):
    _copy(CHIP_DATA / "h100-sxm.toml", tmp_path / "chip.toml", id="my-h100")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "chips: [chip.toml]\nprices: {my-h100: 3.0}\n"
        "workloads:\n  - model: llama-3.1-8b\n    rate_rps: 2\n    input: {mean: 500}\n"
        "    output: {mean: 100}\n    slo: {ttft: 2s, tpot: 50ms}\n",
        encoding="utf-8",
    )
    r = _cli("plan", str(spec), "--json")
    assert r.returncode == 0, r.stderr
    pools = json.loads(r.stdout)["fleet"]["pools"]
    assert {p["chip"] for p in pools} == {"my-h100"}
    assert pools[0]["usd_per_chip_hour"] == 3.0
    assert pools[0]["band"]["stack"] == "trtllm"  # the pool carries its chip's error band


def test_every_api_result_carries_error_bands():
    def banded(d: dict) -> bool:
        return any(k.endswith("_low") for k in d) and "band" in d

    e = si.estimate("llama-3.1-8b", "h100-sxm", batch=8)
    assert banded(e.to_dict()) and "tpot_s_low" in e.to_pandas().columns
    assert e.band is not None and e.band.profile.stack == "trtllm"
    c = si.compare("llama-3.1-8b", ["h100-sxm", "l4"], input_len=512, output_len=64)
    assert all(banded(row) for row in c.to_dict()["chips"] if row["feasible"])
    assert "usd_per_m_output_high" in c.to_pandas().columns
    t = si.train("llama-3.1-8b", "h100-sxm", 8, top=1, global_batch=64)
    td = t.to_dict()
    assert "step_time_s_low" in td["plans"][0] and td["band"]["basis"]
    assert "step_time_s_high" in t.to_pandas().columns
    s = si.simulate("llama-3.1-8b", "h100-sxm", rate=2.0, requests=30, input_len=256, output_len=32)
    assert banded(s.to_dict()) and s.to_dict()["pools"][0]["usd"] > 0  # priced like the CLI
    x = si.tco("h100-sxm", "llama-3.1-8b")
    assert banded(x.to_dict())
    # a stack changes the profile the answer runs with, and its band says so
    v = si.estimate("llama-3.1-8b", "h100-sxm", batch=8, stack="vllm")
    assert v.to_dict()["band"]["stack"] == "vllm"
    with pytest.raises(SiliconomicsError, match="not a known stack"):
        si.estimate("llama-3.1-8b", "h100-sxm", stack="no-such-stack")

"""Named regression tests for bad input (issue 13): each case is one line on stderr and exit
code 2, or a correct answer; never a traceback. Runs the CLI in-process (fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from siliconomics.cli import main
from siliconomics.cli.simulate_cmds import check_simulate_inputs

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "validation" / "measured.csv"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ex:
        main(list(argv))
    cap = capsys.readouterr()
    return int(ex.value.code or 0), cap.out, cap.err


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    binary = d / "binary.dat"
    binary.write_bytes(bytes(range(256)) * 4)
    folder = d / "folder"
    folder.mkdir()
    inf_spec = d / "inf.yaml"
    inf_spec.write_text(
        "name: x\nchips: [h100-sxm]\nworkloads:\n  - name: chat\n    model: llama-3.1-8b\n"
        "    rate_rps: .inf\n    input: {mean: 1000, sigma: 1.0, max: 16000}\n"
        "    output: {mean: 250, sigma: 0.7, max: 2000}\n    slo: {ttft: 2s, tpot: 50ms}\n"
    )
    bare = d / "bare.yaml"
    bare.write_text(inf_spec.read_text().replace(".inf", "10").replace("50ms", "50"))
    kwh = d / "kwh.toml"
    kwh.write_text("usd_per_kwh = inf\n")
    nan_row = d / "nan.csv"
    if SHARED.is_file():
        head, first = SHARED.read_text(encoding="utf-8").splitlines()[:2]
        nan_row.write_text(head + "\n" + first.replace(",2844,", ",nan,") + "\n")
    return {
        "binary": binary,
        "folder": folder,
        "inf": inf_spec,
        "bare": bare,
        "kwh": kwh,
        "nan": nan_row,
        "missing": d / "missing.csv",
    }


M8 = ("--model", "llama-3.1-8b")
H100 = ("--chip", "h100-sxm")
SIM = ("simulate", *M8, *H100, "--requests", "20")
CASES: dict[str, tuple[tuple[str, ...], str]] = {
    # name: (argv, fragment of the one-line error); {x} = a file from the fixture
    "validate binary file": (("validate", "{binary}"), "binary file"),
    "validate a folder": (("validate", "{folder}"), "is a folder"),
    "validate missing models csv": (
        ("validate", "{nan}", "--models-csv", "{missing}"),
        "no such file",
    ),
    "validate nan measured value": (("validate", "{nan}"), "finite"),
    "tco prices binary": (("tco", *H100, "--prices", "{binary}"), "binary file"),
    "tco assumptions inf": (("tco", *H100, "--assumptions", "{kwh}"), "finite"),
    "simulate trace binary": (("simulate", *M8, *H100, "--trace", "{binary}"), "binary file"),
    "plan binary": (("plan", "{binary}"), "binary file"),
    "plan a folder": (("plan", "{folder}"), "is a folder"),
    "plan rate inf": (("plan", "{inf}"), "finite"),
    "plan bare duration": (("plan", "{bare}"), "needs a unit"),
    "train tp=0": (("train", *M8, *H100, "--chips", "8", "--plan", "tp=0"), "tp=0"),
    "train unknown optimizer": (
        ("train", *M8, *H100, "--chips", "8", "--optimizer", "lion"),
        "lion",
    ),
    "simulate negative seed": ((*SIM, "--seed", "-1"), "--seed"),
    "simulate huge block": ((*SIM, "--block-size", "1000000"), "block_size"),
    "simulate 1e12 requests": (("simulate", *M8, *H100, "--requests", "1000000000000"), "at most"),
    "simulate 1e8 requests over the memory guard": (
        ("simulate", *M8, *H100, "--requests", "100000000"),
        "--max-memory",
    ),
    "calibrate a folder": (("calibrate", "{folder}", "--out", "{missing}"), "is a folder"),
    "chip price nan": (("tco", "--chip", "trn2", "--chip-price", "trn2=nan"), "finite"),
    "unknown stack": (("estimate", *M8, *H100, "--stack", "bogus"), "--stack 'bogus'"),
    "simulate rate nan": ((*SIM, "--rate", "nan"), "finite"),
    "compare bare tpot": (("compare", *M8, "--tpot", "50"), "needs a unit"),
    "estimate beyond context": (("estimate", *M8, *H100, "--input", "200000"), "context"),
    "simulate lognormal sigma": ((*SIM, "--input", "lognormal:1000,50"), "SIGMA"),
    "simulate trace and input": ((*SIM, "--trace", "azure-conv", "--input", "100"), "together"),
    "simulate stream and max-rate": (
        (*SIM, "--stream", "--max-rate", "--tpot", "50ms"),
        "together",
    ),
    "simulate max-rate and min-replicas": (
        (*SIM, "--max-rate", "--min-replicas-for", "3", "--tpot", "50ms"),
        "together",
    ),
    "framework usage error": (("estimate", *M8, *H100, "--batch", "abc"), "--batch"),
    "json takes no value": (("chips", "--json", "true"), "unexpected extra argument"),
    "unknown command": (("nosuch",), "No such command"),
    "html into a folder": (("tco", *H100, "--html", "{folder}"), "is a folder"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(
    name: str, capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    argv, fragment = CASES[name]
    if "{nan}" in argv and not SHARED.is_file():
        pytest.skip("needs ../shared/validation/measured.csv")
    code, out, err = cli(capsys, *(a.format(**files) for a in argv))
    assert code == 2, (code, out[-500:], err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in err


def test_simulate_stream_skips_the_memory_guard_and_matches_in_counts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--stream runs in flat memory, so --max-memory does not refuse it; on the same requests
    its counts and throughput equal the exact run's, percentiles within the sketch's 0.5%."""
    big = (*M8, *H100, "--requests", "5000000", "--max-memory", "400MiB")
    code, _, err = cli(capsys, "simulate", *big)
    assert code == 2 and "use --stream" in err
    kw = {"rate": 5.0, "trace": None, "input_len": None, "output_len": None, "max_rate": False}
    check_simulate_inputs(
        **kw, min_replicas_for=None, requests=5_000_000, max_memory="400MiB", stream=True
    )
    args = (*SIM, "--requests", "400", "--rate", "5", "--json")
    code, out, _ = cli(capsys, *args, "--stream")
    assert code == 0, out
    streamed = json.loads(out)
    code, out, _ = cli(capsys, *args)
    exact = json.loads(out)
    assert streamed["requests"] == exact["requests"] == 400
    assert streamed["output_tokens_per_s"] == pytest.approx(exact["output_tokens_per_s"])
    assert streamed["ttft_s"]["p99"] == pytest.approx(exact["ttft_s"]["p99"], rel=0.005)


def test_tp_that_splits_heads_says_how_it_pads(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "estimate", *M8, *H100, "--tp", "3", "--json")
    assert code == 0
    notes = " ".join(json.loads(out)["assumptions"])
    assert "padded to 33" in notes


def test_no_arguments_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys)
    assert code == 0 and "Usage:" in out and not err


def test_chips_keep_ids_whole_at_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    for cmd in ("chips", "models"):
        code, out, _ = cli(capsys, cmd)
        assert code == 0 and "…" not in out, out

"""Fuzz: every command driven with random and hostile arguments and files (hypothesis).

Asserts for each run: exit code 0 or 2, never a traceback; on 2 exactly one line on stderr;
with ``--json`` the output is valid JSON; and the process stays below a memory bound. The
values are drawn so every case stays small (few requests, small models), keeping the whole
test inside CI's budget; what it hunts is input handling, not big runs.
"""

from __future__ import annotations

import json
import resource
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siliconomics.cli import main

MAX_RSS_BYTES = 3 * 1024**3

HOSTILE_NUMBERS = [
    "0", "-1", "1", "3", "7", "64", "1e9", "nan", "inf", "-inf", "1e400", "0.5", "", " ",
    "abc", "1,000", "2s", "50ms", "-5ms", "0s", "99999999999999999999",
]  # fmt: skip
CHIPS = ["h100-sxm", "trn2", "tpu-v6e", "mi300x", "gaudi3", "nosuch", "", "../etc", "H100"]
MODELS = [
    "llama-3.1-8b",
    "mixtral-8x7b",
    "qwen3-30b-a3b",
    "qwen3.6-35b-a3b",  # Gated DeltaNet hybrid
    "deepseek-v3.2",
    "nosuch",
    "",
    "/dev/null",
]


def _files(tmp: Path) -> list[str]:
    (tmp / "bin.dat").write_bytes(bytes(range(256)))
    (tmp / "empty.csv").write_text("")
    (tmp / "junk.yaml").write_text("workloads: [1, 2, {a: b}]\n")
    (tmp / "junk.toml").write_text("[x]\ny = 'z'\nusd_per_kwh = -1\n")
    (tmp / "d").mkdir(exist_ok=True)
    return [str(tmp / n) for n in ("bin.dat", "empty.csv", "junk.yaml", "junk.toml", "d")] + [
        str(tmp / "missing.csv"),
        "/",
    ]


OPTIONS = {
    "estimate": ["--tp", "--pp", "--ep", "--batch", "--input", "--output", "--price",
                 "--weights-dtype", "--kv-dtype", "--mode", "--replicas", "--mtp", "--accepted"],
    "compare": ["--input", "--output", "--ttft", "--tpot", "--weights-dtype", "--price", "--mtp",
                "--accepted"],
    "train": ["--chips", "--tokens", "--global-batch", "--seq-len", "--plan", "--dtype",
              "--method", "--optimizer", "--utilisation", "--mode", "--top", "--prices"],
    "simulate": ["--tp", "--rate", "--input", "--output", "--ttft", "--tpot", "--percentile",
                 "--scheduler", "--router", "--max-seqs", "--block-size", "--seed",
                 "--warmup", "--arrival", "--trace", "--replicas", "--mtp", "--accepted"],
    "tco": ["--utilisation", "--mode", "--input", "--output", "--prices", "--assumptions",
            "--tpot", "--mtp", "--accepted"],
    "show": [],
    "validate": ["--models-csv"],
    "plan": [],
    "chips": [],
    "models": [],
}  # fmt: skip
NEEDS = {
    "estimate": ["--model", "--chip"],
    "compare": ["--model"],
    "train": ["--model", "--chip"],
    "simulate": ["--model", "--chip"],
    "tco": ["--chip"],
}
SMALL = {  # keep every run small: the fuzz is about input handling
    "train": ["--chips", "8", "--top", "1"],
    "simulate": ["--requests", "30"],
    "compare": ["--chip", "h100-sxm", "--chip", "trn2"],
}


@st.composite
def argv(draw: st.DrawFn, files: list[str]) -> list[str]:
    cmd = draw(st.sampled_from(sorted(OPTIONS)))
    args = [cmd]
    for opt in NEEDS.get(cmd, []):
        pool = MODELS if opt == "--model" else CHIPS
        args += [opt, draw(st.sampled_from(pool))]
    if cmd in ("validate", "plan"):
        args.append(draw(st.sampled_from(files)))
    if cmd == "show":
        args.append(draw(st.sampled_from(CHIPS + MODELS)))
    value = st.one_of(
        st.sampled_from(HOSTILE_NUMBERS),
        st.sampled_from(files),
        st.text(string.printable, max_size=12),
    )
    for opt in draw(st.lists(st.sampled_from(OPTIONS[cmd] or ["--json"]), max_size=3)):
        args += [opt] if opt == "--json" else [opt, draw(value)]
    if cmd == "simulate" and "--requests" not in args and "--trace" not in args:
        args += SMALL["simulate"]
    elif cmd in SMALL and cmd != "simulate":
        args += SMALL[cmd]
    if draw(st.booleans()):
        args.append("--json")
    return args


@pytest.fixture(scope="module")
def fuzz_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return _files(tmp_path_factory.mktemp("fuzz"))


def test_every_command_survives_hostile_arguments(
    fuzz_files: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    @settings(
        max_examples=160,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(argv(fuzz_files))
    def run(args: list[str]) -> None:
        with pytest.raises(SystemExit) as ex:
            main(args)
        out, err = capsys.readouterr()
        code = int(ex.value.code or 0)
        assert code in (0, 2), (args, code, err[-2000:])
        assert "Traceback" not in err, (args, err)
        if code == 2:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), (args, err)
        elif "--json" in args:
            json.loads(out)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        assert rss < MAX_RSS_BYTES, (args, rss)

    run()

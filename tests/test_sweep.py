"""Sweeps (issue 15): studies, vectorised batches, the Parquet dataset, DuckDB queries, resume
after a kill, a worker killed mid-point, and the same results whatever the worker count."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from siliconomics import api
from siliconomics.cli import main
from siliconomics.errors import SiliconomicsError
from siliconomics.sweep import query, store
from siliconomics.sweep.executors import InProcess, Pool
from siliconomics.sweep.runner import chunks, run_study
from siliconomics.sweep.study import make_study

ROOT = Path(__file__).resolve().parents[1]

ESTIMATE = {
    "name": "est",
    "command": "estimate",
    "fixed": {"model": "llama-3.1-8b", "output_len": 128},
    "grid": {"chip": ["h100-sxm", "l4"], "batch": [1, 8, 64, 512], "input_len": [512, 2048]},
    "outputs": ["ttft_s", "tpot_s", "usd_per_million_output_tokens", "decode_bound"],
    "objective": {
        "minimize": "usd_per_million_output_tokens",
        "per": ["chip"],
        "subject_to": {"ttft_s": {"max": 1.0}},
    },
}
SIMULATE = {
    "name": "sim",
    "command": "simulate",
    "seed": 11,
    "chunk": 1,
    "fixed": {"model": "llama-3.1-8b", "chip": "h100-sxm", "requests": 150},
    "grid": {"rate": [2.0, 8.0]},
    "sample": {"n": 4, "over": {"input_len": {"log_uniform": [128, 4096]}}},
}


def study(raw: dict, tmp_path: Path):
    return make_study(json.loads(json.dumps(raw)), base_dir=tmp_path)


def rows(dataset: Path, run_id: str | None = None) -> list[tuple]:
    con = query.connect(dataset)
    where = f"WHERE run_id = {query.lit(run_id)}" if run_id else ""
    t = query.sql(
        con,
        f"SELECT point_id, point_key, status, error, outputs, low, high, labels, seed "
        f"FROM points {where} ORDER BY point_id",
    )
    return list(t.rows)


# --- studies -----------------------------------------------------------------------------


def test_grid_and_sample_expand_deterministically(tmp_path):
    s = study(SIMULATE, tmp_path)
    assert len(s.points) == 2 * 4
    again = study(SIMULATE, tmp_path)
    assert [p.inputs for p in s.points] == [p.inputs for p in again.points]
    other = study({**SIMULATE, "seed": 12}, tmp_path)
    assert [p.inputs["input_len"] for p in other.points] != [
        p.inputs["input_len"] for p in s.points
    ]
    # integer inputs are drawn as integers; every simulation has a seed of its own
    assert all(isinstance(p.inputs["input_len"], int) for p in s.points)
    assert len({p.inputs["seed"] for p in s.points}) == len(s.points)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"grid": {"chips_typo": [1]}}, "'chips_typo' is not an input of estimate"),
        ({"grid": {"chip": ["h100-sxmm"]}}, "unknown chip 'h100-sxmm'"),
        ({"grid": {"tp": ["two"]}}, "grid.tp"),
        (
            {"fixed": {"model": "llama-3.1-8b", "batch": 4}, "grid": {"batch": [1]}},
            "given twice",
        ),
        ({"sample": {"n": 2, "over": {"chip": {"choice": ["l4"]}}}}, "'chip' is given twice"),
        ({"objective": {"per": ["chip"]}}, "give minimize or maximize"),
        ({"command": "serve"}, "study field 'command'"),
    ],
)
def test_bad_studies_are_one_line_errors(tmp_path, change, needle):
    raw = {**ESTIMATE, **change}
    with pytest.raises(SiliconomicsError, match=needle.replace("(", r"\(")):
        study(raw, tmp_path)


# --- evaluation ----------------------------------------------------------------------------


def test_vectorised_batches_match_one_call_per_point(tmp_path):
    s = study(ESTIMATE, tmp_path)
    assert len(chunks(s)) == 4  # per chip: batch 1 (latency regime), and the other batches
    run = run_study(s, tmp_path / "ds")
    got = {r[0]: r for r in rows(tmp_path / "ds")}
    assert len(got) == len(s.points) == run.points
    for p in s.points:
        status, outs = got[p.index][2], got[p.index][4]
        try:
            d = api.estimate(**p.inputs).to_dict()
        except SiliconomicsError as e:
            assert status == "error" and str(e).split(";")[0] in got[p.index][3]
            continue
        assert status == "ok"
        low, high = got[p.index][5], got[p.index][6]
        for k in ("ttft_s", "tpot_s", "usd_per_million_output_tokens"):
            assert outs[k] == pytest.approx(d[k], rel=1e-12)
            # the error band, where the API gives one, is the API's for this very point
            if d.get(f"{k}_low") is None:
                assert low.get(k) is None and high.get(k) is None
            else:
                assert low[k] == pytest.approx(d[f"{k}_low"], rel=1e-9)
                assert high[k] == pytest.approx(d[f"{k}_high"], rel=1e-9)
        assert got[p.index][7]["decode_bound"] == d["decode_bound"]


@pytest.mark.parametrize(
    "fixed",
    [
        # speculative decoding: every point of the group drafts, not only the first
        {"model": "deepseek-r1", "chip": "b200", "tp": 8, "ep": 4, "weights_dtype": "fp4",
         "mtp": 3, "accepted": 2.82},
        # a Neuron deployment's own compiled buckets: every point runs padded to them
        {"model": "llama-3.3-70b", "chip": "trn2", "tp": 16,
         "buckets": [[2048, 4096, 8192, 12288], [2048, 4096, 8192, 12800]]},
    ],
)  # fmt: skip
def test_vectorised_points_keep_what_the_first_call_resolved(tmp_path, fixed):
    raw = {
        "name": "keep",
        "command": "estimate",
        "fixed": {**fixed, "batch": 2},
        "grid": {"input_len": [3000, 10000], "output_len": [500, 1500]},
        "outputs": ["tpot_s", "ttft_s"],
    }
    s = study(raw, tmp_path)
    run_study(s, tmp_path / "ds")
    got = {r[0]: r[4] for r in rows(tmp_path / "ds")}
    for p in s.points:
        d = api.estimate(**p.inputs).to_dict()
        for k in ("tpot_s", "ttft_s"):
            assert got[p.index][k] == pytest.approx(d[k], rel=1e-12), (p.inputs, k)


def test_an_estimate_group_is_one_api_call(tmp_path, monkeypatch):
    calls = []
    real = api.estimate

    def counting(*a, **k):
        calls.append(k.get("batch"))
        return real(*a, **k)

    monkeypatch.setattr(api, "estimate", counting)
    raw = {
        **ESTIMATE,
        "grid": {"chip": ["h100-sxm"], "batch": [1, 2, 4, 8], "input_len": [256, 512]},
    }
    run_study(study(raw, tmp_path), tmp_path / "ds")
    # batch 1 (latency regime) on its own; batches 2-8 x 2 lengths: one API call for the
    # first point, the 5 others vectorised with what it resolved
    assert calls == [1, 2]
    assert all(r[2] == "ok" for r in rows(tmp_path / "ds"))


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path):
    s = study(ESTIMATE, tmp_path)
    run_study(s, tmp_path / "ds")
    con = query.connect(tmp_path / "ds")
    errs = query.summary(con, "errors").dicts()
    # batch 512 x 2176 tokens of Llama-3.1-8B does not fit one 24 GB L4 (nor an 80 GB H100)
    assert errs and all("does not fit" in e["error"] for e in errs)
    runs = query.summary(con, "runs").dicts()[0]
    assert runs["points"] == len(s.points) and runs["ok"] == len(s.points) - len(errs) > 0


def test_objective_and_named_summaries(tmp_path):
    s = study(ESTIMATE, tmp_path)
    run = run_study(s, tmp_path / "ds")
    con = query.connect(tmp_path / "ds")
    best = query.summary(con, "objective", objective=s.objective).dicts()
    assert {b["chip"] for b in best} == {"h100-sxm", "l4"}
    for b in best:  # the best point meets the constraint and nothing cheaper does
        t = query.sql(
            con,
            "SELECT min(outputs['usd_per_million_output_tokens']) FROM points WHERE status='ok' "
            f"AND inputs['chip'] = {query.lit(b['chip'])} AND outputs['ttft_s'] <= 1.0",
        )
        assert b["usd_per_million_output_tokens"] == t.rows[0][0]
    long = query.sql(con, "SELECT count(*) FROM outputs WHERE output = 'ttft_s'").rows[0][0]
    assert long == query.summary(con, "runs").dicts()[0]["ok"]
    m = store.read_manifest(tmp_path / "ds", run.run_id)
    assert m["status"] == "complete" and m["points"] == len(s.points) and m["seed"] == 0


def test_the_parquet_schema_is_fixed(tmp_path):
    import pyarrow.parquet as pq

    run = run_study(study(SIMULATE, tmp_path), tmp_path / "ds")
    parts = sorted(store.run_dir(tmp_path / "ds", run.run_id).glob("part-*.parquet"))
    assert parts
    for p in parts:
        assert pq.read_schema(p).remove_metadata() == store.schema()


# --- where it runs ---------------------------------------------------------------------------


def test_same_results_in_process_and_on_1_or_2_processes(tmp_path):
    s = study(SIMULATE, tmp_path)
    base = run_study(s, tmp_path / "a", InProcess())
    one = run_study(s, tmp_path / "b", Pool(workers=1))
    two = run_study(s, tmp_path / "c", Pool(workers=2))
    assert base.run_id == one.run_id == two.run_id
    ref = rows(tmp_path / "a")
    assert all(r[2] == "ok" for r in ref)
    assert rows(tmp_path / "b") == ref
    assert rows(tmp_path / "c") == ref


def test_results_are_consistent_when_a_worker_is_killed_mid_point(tmp_path):
    s = study({**SIMULATE, "fixed": {**SIMULATE["fixed"], "requests": 400}}, tmp_path)
    ref = run_study(s, tmp_path / "ref", InProcess())
    pool = Pool(workers=2)
    killed: list[int] = []

    def kill_one(done: int, total: int) -> None:
        if done and not killed:  # first chunk back: the other worker is mid-point
            pid = pool.worker_pids()[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    run = run_study(s, tmp_path / "ds", pool, progress=kill_one, flush_rows=1)
    assert killed and run.restarts >= 1
    got = rows(tmp_path / "ds")
    assert [r[0] for r in got] == list(range(len(s.points)))  # every point exactly once
    assert got == rows(tmp_path / "ref") and ref.errors == 0


def test_a_killed_sweep_resumes_without_recomputing(tmp_path):
    raw = {**ESTIMATE, "chunk": 2}
    (tmp_path / "study.yaml").write_text(json.dumps(raw))
    ds = tmp_path / "ds"
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from siliconomics.sweep.runner import run_study
        from siliconomics.sweep.study import load_study

        def die(done, total):
            if done >= 6:
                os.kill(os.getpid(), signal.SIGKILL)

        run_study(load_study(Path({str(tmp_path / "study.yaml")!r})), Path({str(ds)!r}),
                  progress=die, flush_rows=1)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    done_before = len(rows(ds))
    assert 6 <= done_before < 16
    s = study(raw, tmp_path)
    again = run_study(s, ds)
    assert again.skipped == done_before and again.computed == len(s.points) - done_before
    assert rows(ds) == rows_of_clean_run(raw, tmp_path)


def rows_of_clean_run(raw: dict, tmp_path: Path) -> list[tuple]:
    run_study(study(raw, tmp_path), tmp_path / "clean")
    return rows(tmp_path / "clean")


def test_a_run_being_written_by_a_live_process_is_refused(tmp_path):
    s = study(ESTIMATE, tmp_path)
    from siliconomics.sweep.runner import run_id

    d = store.run_dir(tmp_path / "ds", run_id(s))
    d.mkdir(parents=True)
    (d / ".lock").write_text(str(os.getppid()))  # a live process that is not this one
    with pytest.raises(SiliconomicsError, match="is being written by process"):
        run_study(s, tmp_path / "ds")
    (d / ".lock").write_text("999999999")  # a dead one: taken over
    assert run_study(s, tmp_path / "ds").computed == len(s.points)
    assert not (d / ".lock").exists()


def test_rerunning_a_finished_study_computes_nothing(tmp_path):
    s = study(ESTIMATE, tmp_path)
    run_study(s, tmp_path / "ds")
    again = run_study(s, tmp_path / "ds")
    assert again.computed == 0 and again.skipped == len(s.points)
    assert len(rows(tmp_path / "ds")) == len(s.points)


# --- the command line ------------------------------------------------------------------------


def test_sweep_and_results_commands(tmp_path, capsys):
    f = tmp_path / "study.yaml"
    f.write_text(json.dumps(ESTIMATE))
    ds = tmp_path / "ds"
    with pytest.raises(SystemExit) as e:
        main(["sweep", str(f), "--out", str(ds), "--json"])
    assert e.value.code == 0
    res = json.loads(capsys.readouterr().out)
    assert res["points"] == 16 and res["ok"] + res["errors"] == 16
    assert {r["chip"] for r in res["objective"]} == {"h100-sxm", "l4"}
    page = Path(res["report"]).read_text()
    # plotly.js inline (no <script src=...> from a CDN), and the report's sections
    assert "<script src=" not in page and len(page) > 1_000_000
    assert "Objective" in page and "Failed points" in page
    with pytest.raises(SystemExit) as e:
        main(["results", str(ds), "--summary", "best-chip", "--json"])
    assert e.value.code == 0
    best = json.loads(capsys.readouterr().out)
    assert {b["model"] for b in best} == {"llama-3.1-8b"}
    with pytest.raises(SystemExit) as e:
        main(["results", str(ds), "--sql", "SELECT count(*) AS n FROM points", "--json"])
    assert json.loads(capsys.readouterr().out) == [{"n": 16}]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["results", "{ds}", "--sql", "SELEC 1"], "--sql:"),
        (["results", "{ds}", "--summary", "nope"], "--summary 'nope'"),
        (["results", "{tmp}/none"], "no such folder"),
        (["sweep", "{tmp}/bad.yaml"], "is not an input of estimate"),
    ],
)
def test_command_line_errors_are_one_line(tmp_path, capsys, args, needle):
    (tmp_path / "bad.yaml").write_text("command: estimate\ngrid: {gpu: [h100-sxm]}\n")
    s = study(ESTIMATE, tmp_path)
    run_study(s, tmp_path / "ds")
    argv = [a.format(ds=tmp_path / "ds", tmp=tmp_path) for a in args]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    msg = capsys.readouterr().err
    assert needle in msg and len(msg.strip().splitlines()) == 1


def test_example_study_is_valid():
    from siliconomics.sweep.study import load_study

    for f in sorted((ROOT / "examples" / "sweeps").glob("*.yaml")):
        assert load_study(f).points


def test_the_progress_bar_shows_points_rate_and_eta(tmp_path, capsys):
    f = tmp_path / "study.yaml"
    f.write_text(json.dumps(ESTIMATE))
    with pytest.raises(SystemExit) as e:
        main(["sweep", str(f), "--out", str(tmp_path / "ds")])
    assert e.value.code == 0
    bar = capsys.readouterr().err
    assert "16/16" in bar and "points/s" in bar and "ETA" in bar


def test_bands_and_vectorised_values_are_read_beside_each_output():
    from siliconomics.sweep.evaluate import extract

    d = {
        "ttft_s": [0.1, 0.2],
        "ttft_s_low": [0.08, 0.15],
        "ttft_s_high": [0.12, 0.3],
        "decode_bound": ["memory", "compute"],
        "e2e_s": {"p99": 3.0, "p99_low": 2.0, "p99_high": 4.0},
    }
    got = extract("estimate", d, ("ttft_s", "decode_bound", "e2e_s.p99", "nope"), 1)
    assert got["outputs"] == {"ttft_s": 0.2, "e2e_s.p99": 3.0, "nope": None}
    assert got["low"] == {"ttft_s": 0.15, "e2e_s.p99": 2.0}
    assert got["high"] == {"ttft_s": 0.3, "e2e_s.p99": 4.0}
    assert got["labels"] == {"decode_bound": "compute"}
    plans = {"plans": [{"mfu": 0.5, "mfu_low": 0.4, "mfu_high": 0.6}]}
    assert extract("train", plans, ("mfu",), None)["low"] == {"mfu": 0.4}

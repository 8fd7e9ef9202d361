"""The HTTP API (siliconomics serve) through FastAPI's TestClient: every endpoint, every error
path, limits, the token, the host check, CORS, jobs and their persistence across a restart."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from siliconomics import api
from siliconomics.web import Limits, Settings, create_app
from siliconomics.web.jobs import Store
from siliconomics.web.kinds import KINDS

BASE = "http://127.0.0.1:8000"
SMALL_SPEC = {
    "name": "test plan",
    "pricing": "on-demand",
    "chips": ["l4", "h100-sxm"],
    "workloads": [
        {
            "name": "chat",
            "model": "llama-3.1-8b",
            "rate_rps": 5,
            "input": {"mean": 500, "sigma": 0.5, "max": 4000},
            "output": {"mean": 100, "sigma": 0.5, "max": 1000},
            "slo": {"ttft": "2s", "tpot": "50ms", "percentile": 99},
        }
    ],
}
LONG_SPEC = {**SMALL_SPEC, "name": "long plan", "chips": None}  # every catalog chip


def client(tmp: Path, **kw) -> TestClient:
    return TestClient(create_app(Settings(db_path=tmp / "jobs.sqlite3", **kw)), base_url=BASE)


@pytest.fixture(scope="module")
def c(tmp_path_factory):
    with client(tmp_path_factory.mktemp("web")) as cl:
        yield cl


def wait(c: TestClient, job_id: str, until=("done", "failed", "cancelled", "interrupted")):
    for _ in range(600):
        j = c.get(f"/api/jobs/{job_id}").json()
        if j["status"] in until:
            return j
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {j['status']}")


# --- the quick endpoints return the --json of the Python API -----------------------------------


def test_catalog_endpoints(c):
    chips = c.get("/api/chips").json()
    assert {"h100-sxm", "tpu-v5e", "trn1"} <= {x["id"] for x in chips}
    models = c.get("/api/models").json()
    assert "llama-3.1-8b" in {m["id"] for m in models}
    assert "gaudi.csv" in c.get("/api/corpus").json()
    assert c.get("/api/health").json()["ok"] is True


def test_estimate_is_the_api_json(c):
    body = {"model": "llama-3.1-8b", "chip": "h100-sxm", "batch": 8, "input_len": 512}
    r = c.post("/api/estimate", json=body)
    assert r.status_code == 200
    want = api.estimate("llama-3.1-8b", "h100-sxm", batch=8, input_len=512).to_dict()
    assert r.json()["ttft_s"] == want["ttft_s"]
    assert r.json()["ops"] == want["ops"]


def test_compare_ranks_chips_like_the_api(c):
    body = {"model": "llama-3.1-8b", "chips": ["l4", "h100-sxm", "tpu-v5e"], "tpot": "50ms"}
    got = c.post("/api/compare", json=body).json()
    want = api.compare("llama-3.1-8b", ["l4", "h100-sxm", "tpu-v5e"], tpot="50ms").to_dict()
    assert [r["chip"] for r in got["chips"]] == [r["chip"] for r in want["chips"]]
    assert got["chips"][0]["usd_per_m_output"] == want["chips"][0]["usd_per_m_output"]


def test_train_and_tco(c):
    t = c.post(
        "/api/train", json={"model": "llama-3.1-8b", "chip": "h100-sxm", "chips": 8, "top": 2}
    )
    assert t.status_code == 200 and len(t.json()["plans"]) == 2
    r = c.post("/api/tco", json={"chip": "h100-sxm", "model": "llama-3.1-8b", "utilisation": 0.5})
    assert r.status_code == 200
    modes = {m["mode"]: m for m in r.json()["modes"]}
    assert modes["on-demand"]["breakeven_utilisation"] is not None


def test_openapi_lists_every_kind_with_its_fields(c):
    spec = c.get("/api/openapi.json").json()
    for kind in KINDS:
        assert f"/api/{kind}" in spec["paths"]
    schema = spec["components"]["schemas"]["EstimateRequest"]["properties"]
    assert {"model", "chip", "tp", "batch", "input_len", "output_len"} <= set(schema)
    assert not any("path" in k.lower() for k in schema)  # no field takes a server path
    for p in ("/api/jobs", "/api/jobs/{job_id}/events", "/api/jobs/{job_id}/cancel"):
        assert p in spec["paths"]


# --- bad input: 422, one line naming the field ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/estimate", {"model": "llama-3.1-8b", "chip": "h100-sxm", "tp": 0}, "tp"),
        ("/api/estimate", {"model": "llama-3.1-8b"}, "chip"),
        ("/api/estimate", {"model": "llama-3.1-8b", "chip": "h100-sxm", "colour": 1}, "colour"),
        ("/api/estimate", {"model": "llama-3.1-8b", "chip": "h100-sxmm"}, "chip"),
        ("/api/estimate", {"model": "nope", "chip": "h100-sxm"}, "model"),
        ("/api/estimate", {"model": "llama-3.1-8b", "chip": "h100-sxm", "batch": "x"}, "batch"),
        ("/api/estimate", {"model": "llama-3.1-8b", "chip": "h100-sxm", "mode": "x"}, "mode"),
        ("/api/compare", {"model": "llama-3.1-8b", "input_len": 200000}, "input_len"),
        ("/api/compare", {"model": "llama-3.1-8b", "ttft": "soon"}, "ttft"),
        ("/api/compare", {"model": "llama-3.1-8b", "chips": ["h100-sxm", "x"]}, "chips.1"),
        ("/api/tco", {"chip": "h100-sxm", "utilisation": 1.5}, "utilisation"),
        ("/api/tco", {"chip": "h100-sxm", "utilisation": "NaN"}, "utilisation"),
        ("/api/train", {"model": "llama-3.1-8b", "chip": "h100-sxm"}, "chips"),
        ("/api/plan", {"spec": {"name": "x"}}, "spec"),
        ("/api/plan", {"spec": "workloads: [unclosed"}, "spec"),
        ("/api/validate", {}, "corpus"),
        ("/api/validate", {"corpus": "../../etc/passwd"}, "corpus"),
        ("/api/jobs", {"kind": "mine", "params": {}}, "kind"),
        ("/api/jobs", {"kind": "estimate", "params": {"chip": "h100-sxm"}}, "model"),
    ],
)
def test_bad_input_is_a_one_line_422_naming_the_field(c, path, body, field):
    r = c.post(path, json=body)
    assert r.status_code == 422, r.text
    msg = r.json()["error"]
    assert "\n" not in msg and len(msg) < 600
    assert f"'{field}" in msg or f"field {field}" in msg or field in msg.split(":")[0], msg


def test_not_json_is_a_422(c):
    r = c.post("/api/estimate", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["error"]


# --- no client-named server path -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"model": "llama-3.1-8b", "chip": "/etc/hostname"},
        {"model": "llama-3.1-8b", "chip": "examples/chips/h100-2xhbm-hypothetical.toml"},
        {"model": "/etc", "chip": "h100-sxm"},
        {"model": "config.json", "chip": "h100-sxm"},
    ],
)
def test_chips_and_models_are_ids_never_paths(c, body):
    r = c.post("/api/estimate", json=body)
    assert r.status_code == 422 and "unknown" in r.json()["error"]


def test_plan_specs_naming_server_files_are_refused(c):
    trace = {**SMALL_SPEC["workloads"][0], "trace": "/etc/hostname"}
    del trace["input"], trace["output"]
    r = c.post("/api/plan", json={"spec": {**SMALL_SPEC, "workloads": [trace]}})
    assert r.status_code == 422 and "spec.workloads.0.trace" in r.json()["error"]
    r = c.post("/api/plan", json={"spec": {**SMALL_SPEC, "chips": ["l4", "my/chip.toml"]}})
    assert r.status_code == 422 and "spec.chips.1" in r.json()["error"]
    mig = {"port_check": "/etc", "port_target": "neuron"}
    r = c.post("/api/plan", json={"spec": {**SMALL_SPEC, "migration": mig}})
    assert r.status_code == 422 and "port_check" in r.json()["error"]


# --- limits: clear 4xx ---------------------------------------------------------------------------


def test_work_limits(tmp_path):
    lim = Limits(max_chips=2, max_sim_requests=100, max_plan_cells=3, max_body_bytes=4096)
    with client(tmp_path, limits=lim) as c:
        r = c.post("/api/compare", json={"model": "llama-3.1-8b", "chips": ["l4"] * 3})
        assert r.status_code == 422 and "more than the 2 allowed" in r.json()["error"]
        body = {"model": "llama-3.1-8b", "chip": "h100-sxm", "rate": 1, "requests": 101}
        r = c.post("/api/simulate", json=body)
        assert r.status_code == 422 and "'requests'" in r.json()["error"]
        r = c.post("/api/plan", json={"spec": LONG_SPEC})
        assert r.status_code == 422 and "cells" in r.json()["error"]
        r = c.post("/api/plan", json={"spec": "x" * 5000})
        assert r.status_code == 413 and "KiB" in r.json()["error"]


def test_requests_in_flight_and_queued_jobs_are_bounded(tmp_path):
    with client(tmp_path, limits=Limits(max_in_flight=0)) as c:
        r = c.get("/api/health")
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
    with client(tmp_path, limits=Limits(max_queued_jobs=0)) as c:
        r = c.post("/api/plan", json={"spec": SMALL_SPEC})
        assert r.status_code == 429 and "queued" in r.json()["error"]


# --- token, host, CORS ---------------------------------------------------------------------------


def test_token_is_required_when_set(tmp_path):
    with client(tmp_path, token="s3cret") as c:
        assert c.get("/api/chips").status_code == 401
        assert c.get("/compare").status_code == 401
        assert c.get("/api/chips", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = c.get("/api/chips", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        page = c.get("/compare?token=s3cret")  # a browser opens the link once: a cookie
        assert page.status_code == 200 and "siliconomics_token" in page.headers["set-cookie"]
        assert c.get("/estimate").status_code == 200  # the cookie now
        assert c.get("/api/health").status_code == 200  # health stays open for probes


def test_binding_beyond_localhost_needs_a_token(tmp_path):
    from siliconomics.errors import SiliconomicsError

    with pytest.raises(SiliconomicsError, match="needs a token"):
        create_app(Settings(host="0.0.0.0", db_path=tmp_path / "x.sqlite3"))
    app = create_app(Settings(host="0.0.0.0", token="t", db_path=tmp_path / "x.sqlite3"))
    with TestClient(app, base_url="http://192.0.2.7:8000") as c:
        assert c.get("/api/chips", headers={"Authorization": "Bearer t"}).status_code == 200


def test_other_host_names_are_refused_on_localhost(c):
    r = c.get("/api/chips", headers={"host": "attacker.example"})
    assert r.status_code == 400 and "not served" in r.json()["error"]


def test_cors_is_closed_by_default(c, tmp_path):
    h = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    r = c.options("/api/estimate", headers=h)
    assert "access-control-allow-origin" not in r.headers
    r = c.get("/api/health", headers={"Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in r.headers
    with client(tmp_path, cors_origins=("https://dash.example",)) as c2:
        r = c2.get("/api/health", headers={"Origin": "https://dash.example"})
        assert r.headers["access-control-allow-origin"] == "https://dash.example"


# --- jobs ----------------------------------------------------------------------------------------


def test_plan_job_progress_events_and_result(c):
    r = c.post("/api/plan", json={"spec": SMALL_SPEC, "sensitivity": True})
    assert r.status_code == 202 and r.headers["location"] == f"/api/jobs/{r.json()['id']}"
    job_id = r.json()["id"]
    events = []
    with c.stream("GET", f"/api/jobs/{job_id}/events") as s:
        assert s.headers["content-type"].startswith("text/event-stream")
        events = [line.split(": ", 1)[1] for line in s.iter_lines() if line.startswith("event")]
    assert events[-1] == "end"
    job = c.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "done" and job["fraction"] == 1.0
    res = c.get(f"/api/jobs/{job_id}/result").json()
    want = api.plan(SMALL_SPEC).to_dict()
    assert res["fleet"]["usd_per_hour"] == want["fleet"]["usd_per_hour"]
    assert res["sensitivity"] and res["sensitivity"][0]["base_output"] == pytest.approx(
        want["fleet"]["usd_per_hour"]
    )
    assert job_id in [j["id"] for j in c.get("/api/jobs").json()]


def test_yaml_spec_text_and_a_job_of_any_kind(c):
    import yaml

    r = c.post("/api/plan", json={"spec": yaml.safe_dump(SMALL_SPEC)})
    assert r.status_code == 202
    r2 = c.post(
        "/api/jobs", json={"kind": "estimate", "params": {"model": "llama-3.1-8b", "chip": "l4"}}
    )
    assert r2.status_code == 202
    assert wait(c, r.json()["id"])["status"] == "done"
    assert wait(c, r2.json()["id"])["status"] == "done"
    est = c.get(f"/api/jobs/{r2.json()['id']}/result").json()
    assert est["ttft_s"] == api.estimate("llama-3.1-8b", "l4").to_dict()["ttft_s"]


def test_validate_job_on_the_packaged_corpus_and_on_uploaded_text(c):
    r = c.post("/api/validate", json={"corpus": "gaudi.csv"})
    csv = Path(api.__file__).parent / "measured" / "corpus" / "gaudi.csv"
    lines = csv.read_text(encoding="utf-8").splitlines()
    r2 = c.post("/api/validate", json={"csv": "\n".join(lines[:6]) + "\n"})
    full = wait(c, r.json()["id"])
    assert full["status"] == "done", full
    res = c.get(f"/api/jobs/{r.json()['id']}/result").json()
    assert res["rows"] == api.validate(csv).to_dict()["rows"] > 0
    assert res["by_family"][0]["group"] == "intel-gaudi"
    part = wait(c, r2.json()["id"])
    assert part["status"] == "done"
    assert 0 < c.get(f"/api/jobs/{r2.json()['id']}/result").json()["rows"] <= 5


def test_failed_job_keeps_its_one_line_error(c):
    bad = {**SMALL_SPEC["workloads"][0], "slo": {"ttft": "1ms", "tpot": "1ms", "percentile": 99}}
    r = c.post("/api/plan", json={"spec": {**SMALL_SPEC, "workloads": [bad]}})
    job = wait(c, r.json()["id"])  # no chip meets a 1 ms TTFT: the planner says so
    assert job["status"] == "failed" and "\n" not in job["error"]
    assert "workloads.0.slo" in job["error"]
    r = c.get(f"/api/jobs/{job['id']}/result")
    assert r.status_code == 410 and "no result" in r.json()["error"]


def test_cancel_a_running_job_and_rerun_it(c):
    r = c.post("/api/plan", json={"spec": LONG_SPEC, "sensitivity": True})
    job_id = r.json()["id"]
    wait(c, job_id, until=("running",))
    assert c.get(f"/api/jobs/{job_id}/result").status_code == 409
    j = c.post(f"/api/jobs/{job_id}/cancel").json()
    assert j["status"] == "cancelled"
    assert c.post(f"/api/jobs/{job_id}/cancel").status_code == 409
    assert c.get(f"/api/jobs/{job_id}/result").status_code == 410
    again = c.post(f"/api/jobs/{job_id}/rerun")
    assert again.status_code == 202 and again.json()["rerun_of"] == job_id
    assert c.post(f"/api/jobs/{again.json()['id']}/cancel").json()["status"] == "cancelled"


def test_unknown_job_is_404(c):
    for path in ("/api/jobs/nope", "/api/jobs/nope/result", "/api/jobs/nope/events"):
        r = c.get(path)
        assert r.status_code == 404 and "no job" in r.json()["error"]
    assert c.post("/api/jobs/nope/cancel").status_code == 404
    assert c.get("/jobs/nope").status_code == 404


def test_restart_keeps_results_and_marks_interrupted_jobs(tmp_path):
    with client(tmp_path) as c:
        done = c.post("/api/jobs", json={"kind": "tco", "params": {"chip": "h100-sxm"}}).json()
        assert wait(c, done["id"])["status"] == "done"
        result = c.get(f"/api/jobs/{done['id']}/result").json()
    # a server that died with one job running and one queued: rows it left in the store
    store = Store(tmp_path / "jobs.sqlite3")
    running = store.add("estimate", {"model": "llama-3.1-8b", "chip": "l4"}, 1.0, None)
    store.claim(running, 2.0)
    queued = store.add("estimate", {"model": "llama-3.1-8b", "chip": "l4"}, 3.0, None)
    with client(tmp_path) as c:  # the restarted server
        assert c.get(f"/api/jobs/{done['id']}/result").json() == result
        j = c.get(f"/api/jobs/{running}").json()
        assert j["status"] == "interrupted" and "while the job was running" in j["reason"]
        assert "before the job started" in c.get(f"/api/jobs/{queued}").json()["reason"]
        assert c.get(f"/api/jobs/{running}/result").status_code == 410
        new = c.post(f"/api/jobs/{running}/rerun").json()
        assert wait(c, new["id"])["status"] == "done"
        assert c.get(f"/api/jobs/{new['id']}/result").json()["chip"] == "l4"


def test_results_are_strict_json(c):
    """NaN (no measured row) becomes null, so any JSON parser reads the answer."""
    r = c.post("/api/jobs", json={"kind": "validate", "params": {"corpus": "jetstream.csv"}})
    wait(c, r.json()["id"])
    text = c.get(f"/api/jobs/{r.json()['id']}/result").text
    assert "NaN" not in text
    assert json.loads(text)["median_abs_pct_error"] is None


def test_request_models_follow_the_python_api_and_never_take_paths():
    """A keyword of plain JSON type becomes a field with the API's default; a path, an object
    or a callback is not exposed; chips and models are ids."""
    from siliconomics.web.kinds import _fields

    def fake(
        model: api.ModelLike,
        chip: api.ChipLike,
        *,
        tp: int = 2,
        mode: Literal["a", "b"] = "a",
        names: list[str] | None = None,
        profile: str | Path | None = None,
        progress: object = None,
        prices: dict[str, float] | None = None,
        pricing: str | api.Pricing = "on-demand",
        measured: str | Path = "x.csv",
    ) -> None: ...

    fields = _fields("fake", fake)
    assert set(fields) == {"model", "chip", "tp", "mode", "names", "prices", "pricing"}
    assert fields["pricing"][0] is str
    assert fields["model"][0] is str and fields["tp"][1].default == 2


def test_a_chunked_body_is_read_and_bounded(tmp_path):
    body = json.dumps({"model": "llama-3.1-8b", "chip": "l4"}).encode()
    with client(tmp_path, limits=Limits(max_body_bytes=1024)) as c:
        r = c.post(
            "/api/estimate", content=iter([body]), headers={"content-type": "application/json"}
        )
        assert r.status_code == 200 and r.json()["chip"] == "l4"
        big = iter([b"{" + b" " * 2048 + b"}"])
        r = c.post("/api/estimate", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413


def test_job_pages_rerun_upload_and_form_errors(tmp_path):
    store = Store(tmp_path / "jobs.sqlite3")
    lost = store.add("estimate", {"model": "llama-3.1-8b", "chip": "l4"}, 1.0, None)
    store.claim(lost, 2.0)
    with client(tmp_path) as c:
        page = c.get(f"/jobs/{lost}")
        assert "while the job was running" in page.text and 'id="rerun"' in page.text
        r = c.post(f"/jobs/{lost}/rerun", follow_redirects=False)
        assert r.status_code == 303
        new = r.headers["location"].rsplit("/", 1)[1]
        assert wait(c, new)["status"] == "done"
        page = c.get(f"/jobs/{new}")
        assert "fig-ops" in page.text and "a re-run of" in page.text
        assert c.get(f"/jobs/{new}/progress").headers["hx-refresh"] == "true"
        assert new in c.get("/jobs").text
        r = c.post("/plan", data={"spec": "name: no workloads"}, follow_redirects=False)
        assert r.status_code == 422 and 'class="error"' in r.text
        csv = Path(api.__file__).parent / "measured" / "corpus" / "jetstream.csv"
        with csv.open("rb") as f:
            r = c.post("/validate", files={"csv_file": ("m.csv", f)}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/jobs/")
        assert c.get("/vendor/plotly.min.js").text.startswith("/**")

"""The web app as a person uses it: Playwright drives Debian's headless Chromium (installed by
.ci/run, as for the HTML report test) through each page against a real `siliconomics serve`:
fill the form, run, see the chart drawn, and check the page's numbers against the JSON API.

Screenshots go to the test's temporary folder, or to $SILICONOMICS_SCREENSHOTS when set
(docs/img/web-*.png were taken that way)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")
httpx = pytest.importorskip("httpx")

from tests.test_web_server import server  # noqa: E402

CHROMIUM = next((p for n in ("chromium", "chromium-browser") if (p := shutil.which(n))), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install chromium)"
)
SPEC = """\
name: browser plan
pricing: on-demand
chips: [l4, h100-sxm]
workloads:
  - name: chat
    model: llama-3.1-8b
    rate_rps: 5
    input: {mean: 500, sigma: 0.5, max: 4000}
    output: {mean: 100, sigma: 0.5, max: 1000}
    slo: {ttft: 2s, tpot: 50ms, percentile: 99}
"""
TIMEOUT_MS = 60_000


def _num(v: float, digits: int = 3) -> str:
    """The pages' number format (siliconomics.web.pages._num)."""
    from siliconomics.web.pages import _num as fmt

    return fmt(v, digits)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    with server(tmp / "jobs.sqlite3") as (url, _), sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        shots = Path(os.environ.get("SILICONOMICS_SCREENSHOTS") or tmp)
        shots.mkdir(parents=True, exist_ok=True)
        yield url, page, shots
        browser.close()


def _shot(page, shots: Path, name: str) -> None:
    path = shots / f"web-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 20_000  # a page with a chart, not a blank one


def test_compare_page_draws_the_ranked_chart(site):
    url, page, shots = site
    page.goto(f"{url}/compare")
    page.select_option("select[name=model]", "llama-3.1-8b")
    page.fill("input[name=input_len]", "1000")
    page.fill("input[name=output_len]", "200")
    page.fill("input[name=tpot]", "50ms")
    page.click("#run")
    page.wait_for_selector("#chart-compare.drawn")
    assert page.locator("#chart-compare .main-svg").count() >= 1
    bars = page.locator("#chart-compare g.point").count()
    rows = page.locator("#ranking tr.feasible")
    assert bars == rows.count() > 3
    assert "model=llama-3.1-8b" in page.url and "tpot=50ms" in page.url  # a shareable link
    api = httpx.post(
        f"{url}/api/compare",
        json={"model": "llama-3.1-8b", "input_len": 1000, "output_len": 200, "ttft": "2s",
              "tpot": "50ms"},
        timeout=120,
    ).json()  # fmt: skip
    feasible = [r for r in api["chips"] if r["feasible"]]
    assert rows.first.get_attribute("data-chip") == feasible[0]["chip"]
    assert float(rows.first.get_attribute("data-usd")) == feasible[0]["usd_per_m_output"]
    assert [rows.nth(i).get_attribute("data-chip") for i in range(rows.count())] == [
        r["chip"] for r in feasible
    ]
    _shot(page, shots, "compare")


def test_estimate_page_shows_the_breakdown_and_bound(site):
    url, page, shots = site
    page.goto(f"{url}/estimate")
    page.select_option("select[name=model]", "llama-3.1-8b")
    page.select_option("select[name=chip]", "h100-sxm")
    page.fill("input[name=batch]", "16")
    page.click("#run")
    page.wait_for_selector("#chart-ops.drawn")
    api = httpx.post(
        f"{url}/api/estimate",
        json={"model": "llama-3.1-8b", "chip": "h100-sxm", "batch": 16},
        timeout=60,
    ).json()
    assert page.inner_text("#ttft") == f"{_num(api['ttft_s'] * 1000)} ms"
    assert page.inner_text("#tpot") == f"{_num(api['tpot_s'] * 1000)} ms"
    assert api["decode_bound"] in page.inner_text("#bound")
    assert page.locator("#ops tbody tr").count() == len(api["ops"])
    _shot(page, shots, "estimate")


def test_tco_page_shows_rent_vs_buy(site):
    url, page, shots = site
    page.goto(f"{url}/tco")
    page.select_option("select[name=chip]", "h100-sxm")
    page.fill("input[name=utilisation]", "0.5")
    page.click("#run")
    page.wait_for_selector("#chart-tco.drawn")
    api = httpx.post(
        f"{url}/api/tco",
        json={"chip": "h100-sxm", "model": "llama-3.1-8b", "utilisation": 0.5},
        timeout=60,
    ).json()
    assert api["headline"] in page.inner_text(".takeaway")
    od = next(m for m in api["modes"] if m["mode"] == "on-demand")
    assert f"{_num(od['breakeven_utilisation'] * 100)}%" in page.inner_text("#modes")
    _shot(page, shots, "tco")


def test_plan_page_runs_a_job_with_progress_then_fleet_frontier_and_tornado(site):
    url, page, shots = site
    page.goto(f"{url}/plan")
    page.fill("textarea[name=spec]", SPEC)
    page.click("#run")
    page.wait_for_url("**/jobs/*")
    assert page.locator(".progress").count() == 1
    page.wait_for_selector("#chart-tornado.drawn")
    page.wait_for_selector("#chart-pareto.drawn")
    assert page.inner_text("#status") == "done"
    job_id = page.url.rsplit("/", 1)[1]
    res = httpx.get(f"{url}/api/jobs/{job_id}/result", timeout=30).json()
    assert page.inner_text("#takeaway") == res["takeaway"]
    assert page.inner_text("#usd-per-hour") == _num(res["fleet"]["usd_per_hour"], 5)
    assert page.locator("#fleet tbody tr").count() == len(res["fleet"]["pools"])
    _shot(page, shots, "plan")
    page.goto(f"{url}/jobs")  # the job list links it
    assert page.locator(f"a[href='/jobs/{job_id}']").count() == 1


def test_validation_page_predicted_vs_measured(site):
    url, page, shots = site
    page.goto(f"{url}/validate")
    page.select_option("select[name=corpus]", "gaudi.csv")
    page.click("#run")
    page.wait_for_url("**/jobs/*")
    page.wait_for_selector("#chart-validation.drawn")
    res = httpx.get(f"{url}/api/jobs/{page.url.rsplit('/', 1)[1]}/result", timeout=30).json()
    assert page.inner_text("#rows") == str(res["rows"])
    fams = page.locator("#families tbody tr")
    assert fams.count() == len(res["by_family"]) >= 1
    _shot(page, shots, "validate")


def test_a_bad_input_shows_one_line_on_the_page(site):
    url, page, _ = site
    page.goto(f"{url}/compare")
    page.fill("input[name=tpot]", "fast")
    page.click("#run")
    page.wait_for_selector(".error")
    assert "tpot" in page.inner_text(".error")

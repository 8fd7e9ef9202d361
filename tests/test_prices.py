"""The dated price book, the one pricing path, `prices` / `prices update`, ranking basis,
honest ASIC ownership and the claim-check example (issue 12)."""

import json
import subprocess
import sys
from pathlib import Path
from statistics import median
from typing import get_args

import pytest

from siliconomics.catalog.registry import chips, get_chip, price_book_files, systems
from siliconomics.economics import price_import
from siliconomics.economics.pricebook import MODES, Pricing, estimate_chip_hour, parse_date
from siliconomics.economics.pricing import price_chip_hour
from siliconomics.errors import SiliconomicsError
from siliconomics.resolve import default_book

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "prices"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "siliconomics.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_every_packaged_price_has_a_date_and_a_source():
    files = price_book_files()
    assert {f.provider for f in files} >= {"aws", "gcp"}
    for f in files:
        for p in f.prices:
            assert parse_date(p.as_of) is not None, p
            assert p.src.startswith("http"), p
            assert p.chip in chips() and (not p.system or p.system in systems()), p
    assert not [s.id for s in systems().values() if s.prices], "prices belong in the book"


def test_newest_price_wins_and_history_is_kept():
    book = default_book()
    cur = [o for o in book.for_chip("h100-sxm", "on-demand") if o.name == "p5.48xlarge"]
    assert [o.usd_per_hour for o in cur] == [55.04]
    assert 98.32 in [o.usd_per_hour for o in book.history() if o.name == "p5.48xlarge"]


def test_one_mode_list():
    from siliconomics.catalog.schema import PricingMode
    from siliconomics.fleet.spec import PlanSpec

    assert get_args(PricingMode) == MODES
    assert PlanSpec.model_fields["pricing"].annotation == PricingMode


def test_estimated_rule_is_the_stated_one():
    book = default_book()
    trn2 = get_chip("trn2")
    p = estimate_chip_hour(book, trn2, "on-demand", chips())
    assert p is not None and p.basis == "estimated"
    ratios = []
    for cid in {o.chip for o in book.current() if o.mode == "on-demand"}:
        c = get_chip(cid)
        if c.vendor == trn2.vendor:
            listed = price_chip_hour(Pricing(book=book, chips=chips(), estimate=False), c)
            assert listed is not None and c.memory.bytes_per_s is not None
            ratios.append(listed.usd_per_chip_hour / (c.memory.bytes_per_s.value / 1e12))
    assert trn2.memory.bytes_per_s is not None
    expected = median(ratios) * trn2.memory.bytes_per_s.value / 1e12
    assert p.usd_per_chip_hour == pytest.approx(expected)
    user = Pricing(book=book.with_chip_hour({"trn2": 2.0}), chips=chips())
    got = price_chip_hour(user, trn2)
    assert got is not None and got.basis == "user" and got.usd_per_chip_hour == 2.0


def test_region_filter_and_unknown_region():
    book = default_book().with_region("us-central1")
    assert not book.for_chip("h100-sxm")
    assert book.for_chip("tpu-v6e")
    with pytest.raises(SiliconomicsError, match="--region 'mars-1'"):
        default_book().with_region("mars-1")


def test_compare_ranks_every_chip_on_a_stated_basis():
    r = _cli("compare", "--model", "llama-3.1-70b", "--json")
    assert r.returncode == 0, r.stderr
    rows = [c for c in json.loads(r.stdout)["chips"] if c.get("feasible", True)]
    priced = [c for c in rows if c.get("price_basis")]
    assert len(priced) >= 25
    assert {c["price_basis"] for c in priced} <= {"listed", "estimated", "user"}
    assert {"listed", "estimated"} <= {c["price_basis"] for c in priced}


def test_prices_command_shows_ages_and_flags_stale(tmp_path):
    r = _cli("prices", "--json", "--all")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert all(row["age_days"] is not None for row in doc["prices"])
    assert "trn2" in doc["unpriced_chips"]
    r = _cli("prices", "--max-age-days", "30")
    assert r.returncode == 0 and "older than 30 days" in r.stderr


@pytest.mark.parametrize(
    ("name", "provider", "expect"),
    [
        (
            "aws-offer-extract.json",
            "aws",
            {("p5.48xlarge", "on-demand"): 55.04, ("p5.48xlarge", "reserved-1y"): 40.0},
        ),
        (
            "azure-retail-extract.json",
            "azure",
            {
                ("Standard_ND96isr_H100_v5", "on-demand"): 10.0,
                ("Standard_ND96isr_H100_v5", "spot"): 4.0,
                ("Standard_ND96isr_H100_v5", "reserved-1y"): 61320.0 / 8760,
            },
        ),
        (
            "gcp-skus-extract.json",
            "gcp",
            {("tpu-v6e", "on-demand"): 2.7, ("tpu-v6e", "reserved-1y"): 1.0},
        ),
        (
            "neocloud.csv",
            "testcloud",
            {("8x H100 SXM", "on-demand"): 16.0, ("1x MI300X", "on-demand"): 2.0},
        ),
    ],
)
def test_update_reads_each_recorded_format(tmp_path, name, provider, expect):
    src = DATA / name
    text = src.read_text()
    kind = price_import.detect_format(name, text)
    doc = text if kind == "csv" else json.loads(text)
    book = price_import.parse(kind, doc, systems=systems(), chips=chips())
    assert book.provider == provider
    got = {(p.offering if kind != "gcp" else p.chip, p.mode): p.usd_per_hour for p in book.prices}
    for k, v in expect.items():
        assert got[k] == pytest.approx(v), k
    assert all(p.mode != "on-demand" or p.usd_per_hour not in (99.0, 20.0) for p in book.prices)
    # the command writes a new dated book and keeps the old one
    for _ in range(2):
        r = _cli("prices", "update", "--from", str(src), "--out", str(tmp_path))
        assert r.returncode == 0, r.stderr
    assert len(list(tmp_path.glob(f"{provider}-*.toml"))) == 2
    r = _cli("prices", "--prices", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr


def test_update_without_file_says_so_in_one_line():
    r = _cli("prices", "update")
    assert r.returncode == 2 and "no network" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_user_book_folder_prices_compare(tmp_path):
    r = _cli("prices", "update", "--from", str(DATA / "neocloud.csv"), "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    r = _cli(
        "compare",
        "--model",
        "llama-3.1-8b",
        "--chip",
        "mi300x",
        "--prices",
        str(tmp_path),
        "--region",
        "us-test-1",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    c = json.loads(r.stdout)["chips"][0]
    assert c["price_basis"] == "listed" and c["usd_per_hour"] == pytest.approx(
        2.0 * c["chips_per_replica"]
    )


def test_tco_breakeven_price_for_a_chip_not_sold(tmp_path):
    html = tmp_path / "tco.html"
    r = _cli(
        "tco",
        "--chip",
        "trn2",
        "--model",
        "llama-3.1-8b",
        "--breakeven-price",
        "--html",
        str(html),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    be = {b["against"]: b for b in doc["breakeven_prices"]}
    assert "renting trn2 on-demand" in be and "owning h100-sxm" in be and "owning b200" in be
    assert be["renting trn2 on-demand"]["usd"] > 0
    assert "Break-even purchase price" in html.read_text()
    r = _cli("tco", "--chip", "trn2")
    assert r.returncode == 2 and "--chip-price trn2=USD" in r.stderr
    r = _cli("tco", "--chip", "trn2", "--chip-price", "trn2=20000", "--json")
    assert r.returncode == 0, r.stderr


def test_claim_check_example_runs():
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "claim_check.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("| llama")]
    assert len(rows) == 6 and all("(listed)" in ln for ln in rows)

"""Owned TCO, pricing modes, rent-vs-buy break-even and sensitivity."""

import json
import math
import subprocess
import sys

import pytest

from siliconomics import resolve
from siliconomics.catalog.registry import chips, get_model, get_system
from siliconomics.economics import pricing as _pricing
from siliconomics.economics import sensitivity as _sensitivity
from siliconomics.economics import tco as _tco
from siliconomics.economics.pricing import CLOUD_MODES, usd_per_busy_chip_hour
from siliconomics.economics.sensitivity import tornado
from siliconomics.economics.tco import (
    HOURS_PER_YEAR,
    NUMERIC_FIELDS,
    capital_recovery_factor,
    with_values,
)
from siliconomics.errors import SiliconomicsError
from siliconomics.resolve import default_book, device
from siliconomics.search import tco_study as _tco_study

# The core takes objects (ChipSpec, PriceBook, OwnedAssumptions); these helpers resolve ids
# and defaults the way the edge does (siliconomics.resolve), so the tests read as before.
C = resolve.packaged().chips


def load_owned_assumptions(overrides=None):
    return resolve.owned_assumptions(overrides)


def owned_cost_per_chip_hour(chip, a, *, utilisation):
    return _tco.owned_cost_per_chip_hour(C[chip], a, utilisation=utilisation)


def provisioned_w_per_chip(chip):
    return _tco.provisioned_w_per_chip(C[chip])


def chip_hour_cost(chip, mode, *, book=None, **kw):
    return _pricing.chip_hour_cost(C[chip], mode, book=book or default_book(), **kw)


def breakeven_utilisation(chip, mode, a, *, book=None, **kw):
    return _pricing.breakeven_utilisation(C[chip], mode, a, book=book or default_book(), **kw)


def breakeven_purchase_price(chip, target, a, *, utilisation):
    return _pricing.breakeven_purchase_price(C[chip], target, a, utilisation=utilisation)


def available_modes(chip, book=None):
    return _pricing.available_modes(chip, book or default_book())


def parse_price_overrides_toml(raw):
    return _pricing.parse_price_overrides_toml(raw, resolve.packaged())


def cost_tornado(chip, **kw):
    kw.setdefault("assumptions", load_owned_assumptions())
    return _sensitivity.cost_tornado(C[chip], book=default_book(), **kw)


def study_tco(dev, **kw):
    return _tco_study.study_tco(dev, book=default_book(), **kw)


CAPITAL = ("chip depreciation", "server depreciation", "network depreciation", "cost of capital")


def test_every_default_has_a_source_and_sane_value():
    a = load_owned_assumptions()
    for name in (*NUMERIC_FIELDS, "facility"):
        prov = a.provenance[name]
        assert "http" in prov or "assumption" in prov or "model" in prov, name
        assert any(c in prov for c in ("measured", "vendor", "derived", "estimate", "inferred"))
    for cid, usd in a.chip_prices_usd.items():
        assert cid in chips() and 1_000 < usd < 100_000
        assert (
            "http" in a.provenance[f"chip_price:{cid}"]
            or "shared/" in a.provenance[f"chip_price:{cid}"]
        )
    assert all(c in chips() for c in a.not_sold)
    assert 1.0 < a.pue < 2.0 and 0 < a.usd_per_kwh < 0.5


def test_overrides_apply_and_are_marked():
    a = load_owned_assumptions({"pue": 1.2, "chip_prices": {"h200-sxm": 32000}})
    assert a.pue == 1.2 and a.provenance["pue"] == "user override"
    assert a.chip_prices_usd["h200-sxm"] == 32000
    with pytest.raises(SiliconomicsError, match="unknown key 'puee'"):
        load_owned_assumptions({"puee": 1.2})
    with pytest.raises(SiliconomicsError, match="pue"):
        load_owned_assumptions({"pue": 0.5})
    with pytest.raises(SiliconomicsError, match="unknown chip"):
        load_owned_assumptions({"chip_prices": {"h1000": 1.0}})


def test_owned_capital_without_interest_is_straight_line():
    a = load_owned_assumptions({"cost_of_capital": 0.0, "residual_fraction": 0.0})
    c = owned_cost_per_chip_hour("h100-sxm", a, utilisation=1.0)
    capex = 27500 * a.server_multiplier * (1 + a.network_share)
    capital = sum(c.items[k] for k in CAPITAL)
    assert capital == pytest.approx(capex / (a.depreciation_years * HOURS_PER_YEAR))
    assert c.items["cost of capital"] == pytest.approx(0.0, abs=1e-12)
    assert c.total == pytest.approx(sum(c.items.values()))


def test_owned_capital_is_an_annuity_with_residual():
    a = load_owned_assumptions({"cost_of_capital": 0.1, "residual_fraction": 0.2})
    c = owned_cost_per_chip_hour("h100-sxm", a, utilisation=0.5)
    capex = 27500 * a.server_multiplier * (1 + a.network_share)
    n, r = a.depreciation_years, 0.1
    # independent formula: PV of payments = capex - PV(residual)
    pv = sum(1 / (1 + r) ** t for t in range(1, int(n) + 1))
    annual = (capex - 0.2 * capex / (1 + r) ** n) / pv
    assert sum(c.items[k] for k in CAPITAL) * HOURS_PER_YEAR == pytest.approx(annual, rel=1e-9)
    assert capital_recovery_factor(0.0, 4) == 0.25


def test_power_items_scale_physically():
    base = load_owned_assumptions()
    c1 = owned_cost_per_chip_hour("h100-sxm", base, utilisation=0.6)
    c2 = owned_cost_per_chip_hour("h100-sxm", with_values(base, pue=base.pue * 2), utilisation=0.6)
    assert c2.items["electricity"] == pytest.approx(2 * c1.items["electricity"])
    busy = owned_cost_per_chip_hour("h100-sxm", base, utilisation=1.0)
    assert busy.items["electricity"] > c1.items["electricity"]  # busier chips draw more
    assert busy.items["chip depreciation"] == c1.items["chip depreciation"]
    # colocation is charged on provisioned peak power: TDP 700 W + 60% host share
    assert provisioned_w_per_chip("h100-sxm") == pytest.approx(1120.0)
    kw_month = 1.12 * base.colocation_usd_per_kw_month
    assert c1.items["colocation"] * HOURS_PER_YEAR / 12 == pytest.approx(kw_month)
    own = owned_cost_per_chip_hour("h100-sxm", with_values(base, facility="own"), utilisation=0.6)
    assert "facility" in own.items and "colocation" not in own.items


def test_unsold_chip_has_no_owned_cost_without_a_purchase_price():
    # Changed with issue 12: the cloud price (provider margin, power, facility included) is no
    # longer passed off as an owner's cost; a chip that is not sold needs a stated price.
    with pytest.raises(SiliconomicsError, match=r"not sold.*--chip-price tpu-v6e=USD"):
        chip_hour_cost("tpu-v6e", "owned", utilisation=0.5)
    a = load_owned_assumptions({"chip_prices": {"tpu-v6e": 10000.0}})
    c = chip_hour_cost("tpu-v6e", "owned", assumptions=a, utilisation=0.5)
    assert not c.imputed and c.items["chip depreciation"] > 0


def test_breakeven_purchase_price_equalises_costs():
    a = load_owned_assumptions()
    target = 3.0  # USD per busy chip-hour
    p = breakeven_purchase_price("trn2", target, a, utilisation=0.6)
    assert p is not None and p > 0
    a2 = load_owned_assumptions({"chip_prices": {"trn2": p}})
    busy = usd_per_busy_chip_hour(
        chip_hour_cost("trn2", "owned", assumptions=a2, utilisation=0.6), 0.6
    )
    assert busy == pytest.approx(target, rel=1e-6)
    assert (
        breakeven_purchase_price("trn2", 0.01, a, utilisation=0.6) is None
    )  # power alone costs more


def test_unknown_owned_price_says_how_to_supply_it():
    with pytest.raises(SiliconomicsError, match=r"h200-sxm.*\[chip_prices\] h200-sxm = USD"):
        chip_hour_cost("h200-sxm", "owned", utilisation=0.5)


def test_cloud_prices_per_chip_and_system_choice():
    # Prices moved with issue 12 to the dated book (catalog/data/prices): p5.48xlarge after the
    # June 2025 cut (was 98.32 USD/h); the old value stays in the book as history.
    aws = default_book().with_providers(("aws",))
    assert chip_hour_cost("h100-sxm", "on-demand", book=aws).total == pytest.approx(6.88)
    p5 = chip_hour_cost("h100-sxm", "on-demand", book=aws, chips_needed=8)
    assert p5.total == pytest.approx(55.04 / 8)
    assert chip_hour_cost("h100-sxm", "spot", book=aws).total == pytest.approx(14.246 / 8)
    # across providers the cheapest current offer wins (Nebius 8x H100, 23.60 USD/h)
    assert chip_hour_cost("h100-sxm", "on-demand").total == pytest.approx(23.60 / 8)
    assert chip_hour_cost("inf2", "on-demand").total == pytest.approx(0.7582)  # 1-chip instance
    big = chip_hour_cost("inf2", "on-demand", chips_needed=12)
    assert big.total == pytest.approx(12.98127 / 12) and "inf2.48xlarge" in big.source
    huge = chip_hour_cost("inf2", "on-demand", chips_needed=64)
    assert "no offering holds 64" in " ".join(huge.notes)
    assert available_modes("h100-sxm") == ["on-demand", "spot", "capacity-block"]

    old = [o for o in default_book().history() if o.name == "p5.48xlarge" and o.mode == "on-demand"]
    assert [o.usd_per_hour for o in old] == [98.32]


def test_missing_mode_names_the_modes_that_exist():
    with pytest.raises(SiliconomicsError, match=r"no reserved-3y price for chip 'trn1'.*on-demand"):
        chip_hour_cost("trn1", "reserved-3y")
    with pytest.raises(SiliconomicsError, match="allowed: on-demand"):
        chip_hour_cost("trn1", "lease")


def test_price_overrides_file():
    ov = parse_price_overrides_toml(
        {
            "prices": [{"system": "p5.48xlarge", "mode": "reserved-1y", "usd_per_hour": 64.0}],
            "chip_hour": {"h100-sxm": {"spot": 2.0}},
        }
    )
    book = default_book().merged(ov)
    assert chip_hour_cost("h100-sxm", "reserved-1y", book=book, chips_needed=8).total == 8.0
    assert chip_hour_cost("h100-sxm", "spot", book=book).total == 2.0
    assert "reserved-1y" in available_modes("h100-sxm", book)
    assert "reserved-1y" not in available_modes("h100-sxm")  # the packaged book is untouched
    assert get_system("p5.48xlarge").chips == 8
    with pytest.raises(SiliconomicsError, match="unknown system"):
        parse_price_overrides_toml(
            {"prices": [{"system": "p9", "mode": "spot", "usd_per_hour": 1}]}
        )
    with pytest.raises(SiliconomicsError, match="mode must be one of"):
        parse_price_overrides_toml({"chip_hour": {"h100-sxm": {"lease": 1.0}}})
    with pytest.raises(SiliconomicsError, match="unknown key"):
        parse_price_overrides_toml({"price": []})


@pytest.mark.parametrize("rent", ["on-demand", "spot"])
def test_breakeven_equalises_busy_hour_costs(rent):
    a = load_owned_assumptions()
    aws = default_book().with_providers(("aws",))
    u = breakeven_utilisation("h100-sxm", rent, a, book=aws)
    assert u is not None and 0 < u < 1
    owned = chip_hour_cost("h100-sxm", "owned", assumptions=a, utilisation=u)
    rented = chip_hour_cost("h100-sxm", rent, book=aws)
    assert usd_per_busy_chip_hour(owned, u) == pytest.approx(rented.total, rel=1e-6)


def test_breakeven_moves_the_right_way():
    a = load_owned_assumptions()
    cheap = parse_price_overrides_toml({"chip_hour": {"h100-sxm": {"on-demand": 3.0}}})
    dear = parse_price_overrides_toml({"chip_hour": {"h100-sxm": {"on-demand": 6.0}}})
    u_cheap = breakeven_utilisation("h100-sxm", "on-demand", a, book=cheap)
    u_dear = breakeven_utilisation("h100-sxm", "on-demand", a, book=dear)
    assert u_cheap is not None and u_dear is not None and u_dear < u_cheap
    tiny = parse_price_overrides_toml({"chip_hour": {"h100-sxm": {"on-demand": 0.5}}})
    assert breakeven_utilisation("h100-sxm", "on-demand", a, book=tiny) is None
    assert breakeven_utilisation("trn1", "reserved-3y", a) is None  # no reserved-3y price


def test_tornado_generic_sorts_by_swing():
    bars = tornado(
        lambda p: 2 * p["x"] + p["y"],
        {"x": 1.0, "y": 1.0},
        {"x": (0.0, 2.0), "y": (0.0, 1.5)},
    )
    assert [b.name for b in bars] == ["x", "y"]
    assert bars[0].low_output == 1.0 and bars[0].high_output == 5.0 and bars[0].base_output == 3.0
    with pytest.raises(SiliconomicsError, match="no base value for z"):
        tornado(lambda p: 0.0, {"x": 1.0}, {"z": (0, 1)})


def test_cost_tornado_directions():
    s = cost_tornado("h100-sxm", mode="owned", utilisation=0.6, tokens_per_s_per_chip=1000.0)
    bars = {b.name: b for b in s.bars}
    assert bars["usd_per_kwh"].high_output > bars["usd_per_kwh"].low_output
    assert bars["depreciation_years"].high_output < bars["depreciation_years"].low_output
    assert bars["utilisation"].high_output < bars["utilisation"].low_output
    assert s.bars[0].swing >= s.bars[-1].swing
    od = cost_tornado("h100-sxm", mode="on-demand", utilisation=0.6)
    odb = {b.name: b for b in od.bars}
    assert odb["utilisation"].swing == 0 and odb["usd_per_kwh"].swing == 0
    assert odb["price_scale"].high_output == pytest.approx(1.3 * od.base)


def test_study_conserves_cost_across_input_and_output_tokens():
    s = study_tco(
        device("h100-sxm"),
        model=get_model("llama-3.1-8b"),
        input_len=1000,
        output_len=200,
        tpot_s=0.05,
        utilisation=0.5,
    )
    tp = s.throughput
    assert tp is not None and tp.output_tokens_per_s_per_chip > 0
    for m in s.modes:
        if m.cost is None:
            assert m.reason
            continue
        assert m.usd_per_m_output == pytest.approx(
            m.usd_per_busy_chip_hour / (tp.output_tokens_per_s_per_chip * 3600) * 1e6
        )
        split = m.usd_per_m_input_split * 1000 + m.usd_per_m_output_split * 200
        assert split == pytest.approx(m.usd_per_m_output * 200)
    mw = s.provisioned_w_per_chip * s.assumptions.pue / 1e6
    assert s.tokens_per_s_per_mw == pytest.approx(tp.output_tokens_per_s_per_chip / mw)
    assert s.assumptions.provenance["busy_activity"].startswith("from the")
    assert math.isfinite(s.sensitivity.base)


def test_study_rejects_unknown_selected_mode_and_infeasible_targets():
    with pytest.raises(SiliconomicsError, match="no reserved-1y price"):
        study_tco(device("h100-sxm"), mode="reserved-1y")
    with pytest.raises(SiliconomicsError, match="no feasible layout"):
        study_tco(device("l4"), model=get_model("llama-3.1-70b"), tpot_s=0.001)
    assert set(CLOUD_MODES) < {m.mode for m in study_tco(device("tpu-v6e"), mode="spot").modes}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "siliconomics.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_cli_tco_json_with_override_files(tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text('[chip_hour.h100-sxm]\n"reserved-1y" = 4.0\n')
    owned = tmp_path / "owned.toml"
    owned.write_text("usd_per_kwh = 0.2\nfacility = 'own'\n")
    html = tmp_path / "r.html"
    r = _cli(
        "tco", "--chip", "h100-sxm", "--model", "llama-3.1-8b", "--mode", "reserved-1y",
        "--prices", str(prices), "--assumptions", str(owned), "--utilisation", "0.5",
        "--html", str(html), "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    modes = {m["mode"]: m for m in d["modes"]}
    assert modes["reserved-1y"]["usd_per_chip_hour"] == 4.0
    assert modes["reserved-1y"]["usd_per_busy_chip_hour"] == pytest.approx(8.0)
    assert "facility" in modes["owned"]["items_usd_per_chip_hour"]
    assert d["assumptions"]["usd_per_kwh"] == 0.2
    assert d["sensitivity"]["metric"] == "usd_per_m_output_tokens"
    assert html.stat().st_size > 1_000_000  # plotly.js is inline


def test_cli_tco_errors_are_one_line():
    r = _cli("tco", "--chip", "trn1", "--mode", "reserved-3y")
    assert r.returncode == 2 and "no reserved-3y price for chip 'trn1'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = _cli("tco", "--chip", "h100-sxm", "--assumptions", "/nonexistent.toml")
    assert r.returncode == 2 and "no such file" in r.stderr

"""Rendering of a :class:`~siliconomics.search.tco_study.TcoStudy`: rich tables, a JSON dict and
a self-contained HTML report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from ..economics.sensitivity import DEFAULT_RANGES
from ..search.tco_study import ModeCost, TcoStudy
from . import charts
from .html import Section, render_html


def _n(v: float | None, fmt: str = "{:,.3f}") -> str:
    return "-" if v is None or not math.isfinite(v) else fmt.format(v)


def _pct(v: float | None) -> str:
    return "never (owning costs more at any utilisation)" if v is None else f"{v:.0%}"


def _item_names(s: TcoStudy) -> list[str]:
    names: list[str] = []
    for m in s.modes:
        for k in m.cost.items if m.cost else ():
            if k not in names:
                names.append(k)
    return names


def headline(s: TcoStudy) -> str:
    """One sentence: the selected mode's cost and the rent-vs-buy answer."""
    sel = s.selected()
    parts = _breakeven_headline(s) if sel.cost is None else []
    if sel.cost is None:
        return "; ".join(parts) + "."
    parts += [
        f"{s.chip.id} {s.mode}: {sel.cost.total:.2f} USD per chip-hour, "
        f"{_n(sel.usd_per_busy_chip_hour, '{:.2f}')} per busy chip-hour at "
        f"{s.utilisation:.0%} utilisation"
    ]
    if sel.usd_per_m_output is not None and s.throughput:
        parts.append(
            f"{sel.usd_per_m_output:.3f} USD per million output tokens for {s.throughput.model}"
        )
    od = next(m for m in s.modes if m.mode == "on-demand")
    if od.cost is not None and s.modes[0].cost is not None:
        parts.append(f"buying beats on-demand above {_pct(od.breakeven_utilisation)} utilisation")
    return "; ".join(parts) + "."


def _modes_table(s: TcoStudy) -> Table:
    t = Table(
        title=f"{s.chip.id}: USD per chip-hour by pricing mode (utilisation {s.utilisation:.0%})"
    )
    t.add_column("item")
    for m in s.modes:
        t.add_column(m.mode + (" (imputed)" if m.cost and m.cost.imputed else ""), justify="right")
    for name in _item_names(s):
        t.add_row(name, *[_n(m.cost.items.get(name)) if m.cost else "" for m in s.modes])
    t.add_row("total / chip-hour", *[_n(m.cost.total if m.cost else None) for m in s.modes])
    t.add_row("per busy chip-hour", *[_n(m.usd_per_busy_chip_hour) for m in s.modes])
    if s.throughput:
        t.add_row("USD / M output (all cost)", *[_n(m.usd_per_m_output) for m in s.modes])
        t.add_row("USD / M input (split)", *[_n(m.usd_per_m_input_split) for m in s.modes])
        t.add_row("USD / M output (split)", *[_n(m.usd_per_m_output_split) for m in s.modes])
    t.add_row(
        "buy beats it above",
        *[
            ""
            if m.mode == "owned" or m.cost is None
            else _pct(m.breakeven_utilisation).split(" ")[0]
            for m in s.modes
        ],
    )
    return t


def _breakeven_headline(s: TcoStudy) -> list[str]:
    rent = [b for b in s.breakeven_prices if b.against.startswith("renting") and b.usd]
    parts = [f"{s.chip.id} is not sold: no owned cost without --chip-price"]
    if rent:
        b = max(rent, key=lambda b: b.usd or 0.0)
        parts.append(
            f"owning it beats {b.against} at {s.utilisation:.0%} utilisation below "
            f"USD {b.usd:,.0f} per chip"
        )
    return parts


def breakeven_table(s: TcoStudy) -> Table:
    t = Table(title=f"Break-even purchase price of {s.chip.id} (utilisation {s.utilisation:.0%})")
    for col in ("owning beats", "its cost per busy chip-hour", "if the chip costs below", "basis"):
        t.add_column(col, justify="right" if "cost" in col else "left")
    for b in s.breakeven_prices:
        t.add_row(
            b.against,
            f"{b.target_usd_per_busy_chip_hour:.3f}",
            "never (running cost alone is higher)" if b.usd is None else f"USD {b.usd:,.0f}",
            b.basis,
        )
    return t


def _sensitivity_table(s: TcoStudy) -> Table:
    sens = s.sensitivity
    assert sens is not None
    unit = "USD/M output tokens" if sens.metric == "usd_per_m_output_tokens" else "USD/busy chip-h"
    t = Table(title=f"Sensitivity of {unit} ({s.mode}; base {sens.base:.3f})")
    for col in ("input", "low", "high", "at low", "at high", "swing"):
        t.add_column(col, justify="left" if col == "input" else "right")
    for b in sens.bars:
        t.add_row(
            b.label,
            f"{b.low_input:.3g}",
            f"{b.high_input:.3g}",
            f"{b.low_output:.3f}",
            f"{b.high_output:.3f}",
            f"{b.swing:.3f}",
        )
    return t


def render_tco(console: Console, s: TcoStudy) -> None:
    console.print(_modes_table(s))
    for m in s.modes:
        if m.cost is None:
            console.print(f"  {m.mode}: unknown - {m.reason}", highlight=False, markup=False)
        elif m.cost.source:
            console.print(f"  {m.mode}: {m.cost.source}", highlight=False, markup=False)
        for note in m.cost.notes if m.cost else ():
            console.print(f"    {note}", highlight=False, markup=False)
    if s.throughput:
        tp = s.throughput
        console.print(
            f"{tp.model} on {s.chip.id}: tp={tp.tp} pp={tp.pp} ep={tp.ep} batch={tp.batch:.0f}, "
            f"TTFT {tp.ttft_s:.3f} s, TPOT {tp.tpot_s * 1e3:.1f} ms, {tp.bound}-bound; "
            f"{tp.output_tokens_per_s_per_chip:,.0f} output tok/s per chip busy; "
            f"{tp.j_per_output_token:.3f} J/token IT, "
            f"{_n(s.j_per_output_token_facility)} J/token with PUE; "
            f"{_n(s.tokens_per_s_per_mw, '{:,.0f}')} tok/s per MW provisioned",
            highlight=False,
            markup=False,
        )
        if tp.speculative:
            console.print(f"  {tp.speculative}", highlight=False, markup=False)
    if s.breakeven_prices:
        console.print(breakeven_table(s))
    if s.sensitivity is not None:
        console.print(_sensitivity_table(s))
    console.print(headline(s), highlight=False, markup=False)


def _mode_dict(m: ModeCost) -> dict[str, Any]:
    c = m.cost
    return {
        "mode": m.mode,
        "known": c is not None,
        "reason": m.reason or None,
        "items_usd_per_chip_hour": dict(c.items) if c else None,
        "usd_per_chip_hour": c.total if c else None,
        "imputed": c.imputed if c else None,
        "source": c.source if c else None,
        "notes": list(c.notes) if c else [],
        "usd_per_busy_chip_hour": m.usd_per_busy_chip_hour,
        "usd_per_m_output": m.usd_per_m_output,
        "usd_per_m_input_split": m.usd_per_m_input_split,
        "usd_per_m_output_split": m.usd_per_m_output_split,
        "breakeven_utilisation": m.breakeven_utilisation,
    }


def tco_dict(s: TcoStudy) -> dict[str, Any]:
    tp = s.throughput
    return {
        "chip": s.chip.id,
        "mode": s.mode,
        "utilisation": s.utilisation,
        "headline": headline(s),
        "modes": [_mode_dict(m) for m in s.modes],
        "throughput": None if tp is None else tp.__dict__,
        "provisioned_w_per_chip": s.provisioned_w_per_chip,
        "tokens_per_s_per_mw_provisioned": s.tokens_per_s_per_mw,
        "j_per_output_token_facility": s.j_per_output_token_facility,
        "sensitivity": None
        if s.sensitivity is None
        else {
            "metric": s.sensitivity.metric,
            "base": s.sensitivity.base,
            "bars": [b.__dict__ | {"swing": b.swing} for b in s.sensitivity.bars],
        },
        "breakeven_prices": [b.__dict__ for b in s.breakeven_prices],
        "assumptions": s.assumptions.model_dump(mode="json"),
    }


def tco_html(s: TcoStudy, extra: Sequence[Section] = ()) -> str:
    """The TCO study as one self-contained HTML page (``extra``: sections appended, e.g. the
    migration payback)."""
    known = [m for m in s.modes if m.cost is not None]
    names = _item_names(s)
    breakdown = charts.stacked_cost_breakdown(
        [m.mode + (" (imputed)" if m.cost and m.cost.imputed else "") for m in known],
        {n: [m.cost.items.get(n, 0.0) if m.cost else 0.0 for m in known] for n in names},
        title=f"{s.chip.id}: USD per wall-clock chip-hour, itemised",
        y_label="USD per chip-hour",
    )
    rows = [
        [n, *[round(m.cost.items[n], 4) if m.cost and n in m.cost.items else "" for m in known]]
        for n in names
    ]
    rows.append(["total", *[round(m.cost.total, 4) if m.cost else "-" for m in known]])
    rows.append(["per busy chip-hour", *[round(m.usd_per_busy_chip_hour or 0.0, 4) for m in known]])
    blocks: list[Any] = [breakdown, charts.html_table(["item", *[m.mode for m in known]], rows)]
    owned = next((m for m in known if m.mode == "owned" and m.cost is not None), None)
    tallest = max((m.cost.total for m in known if m.cost is not None), default=0.0)
    if owned is not None and owned.cost is not None and tallest > 2.5 * owned.cost.total:
        # beside a much taller rental bar the owned stack's segments are unreadable: itemise
        # it again on its own scale
        blocks.insert(
            1,
            charts.stacked_cost_breakdown(
                ["owned"],
                {n: [owned.cost.items.get(n, 0.0)] for n in names},
                title=f"{s.chip.id}: the owned chip-hour alone, itemised",
                y_label="USD per chip-hour",
            ),
        )
    unknown = _missing_modes_note(s)
    sources = [[m.mode, m.cost.source, " ".join(m.cost.notes)] for m in known if m.cost]
    blocks.append(
        charts.html_table(
            ["mode", "source", "notes"], sources, caption="Where each price comes from"
        )
    )
    sections = [
        Section("Cost per chip-hour by pricing mode", blocks, note=unknown),
        _breakeven_section(s),
    ]
    if s.breakeven_prices:
        sections.insert(1, _breakeven_price_section(s))
    if s.sensitivity is not None:
        sections.append(_sensitivity_section(s))
    sections.append(_assumption_section(s))
    if s.throughput:
        sections.insert(1, _throughput_section(s))
    sections.extend(extra)
    return render_html(f"Rent or buy: {s.chip.name}", headline(s), sections)


def _breakeven_price_section(s: TcoStudy) -> Section:
    rows = [
        [
            b.against,
            round(b.target_usd_per_busy_chip_hour, 4),
            "never" if b.usd is None else round(b.usd),
            b.basis,
        ]
        for b in s.breakeven_prices
    ]
    note = (
        "Every capital and operations item of the owned TCO is proportional to the chip's price "
        "P, so owning costs (a P + b) / u per busy chip-hour (b: power and facility). The break-"
        "even price P* = (T u - b) / a makes it equal to the alternative's cost T per busy hour "
        "of this chip; against owning a reference chip, T is that chip's owned cost per busy "
        "hour times this chip's throughput over the reference's (same traffic). "
        "See docs/ECONOMICS.md."
    )
    return Section(
        "Break-even purchase price",
        [
            charts.html_table(
                [
                    "owning beats",
                    "its cost per busy chip-hour",
                    "if the chip costs below (USD)",
                    "basis",
                ],
                rows,
            )
        ],
        note=note,
    )


def _sensitivity_section(s: TcoStudy) -> Section:
    sens = s.sensitivity
    assert sens is not None
    unit = (
        "USD per million output tokens"
        if sens.metric == "usd_per_m_output_tokens"
        else "USD per busy chip-hour"
    )
    bars = sens.bars
    tornado = charts.tornado_chart(
        [b.label for b in bars],
        [b.low_output for b in bars],
        [b.high_output for b in bars],
        sens.base,
        title=f"What moves {unit} most ({s.mode})",
        x_label=unit,
        low_text=[f"{b.low_input:.3g}" for b in bars],
        high_text=[f"{b.high_input:.3g}" for b in bars],
    )
    sens_rows = [
        [
            b.label,
            b.low_input,
            b.high_input,
            b.low_output,
            b.high_output,
            b.swing,
            DEFAULT_RANGES.get(b.name, ("", 0, 0, ""))[3],
        ]
        for b in bars
    ]
    return Section(
        "Sensitivity",
        [
            tornado,
            charts.html_table(
                ["input", "low", "high", "at low", "at high", "swing", "range basis"], sens_rows
            ),
        ],
        note="One input at a time at the low and high end of its range, others at base.",
    )


def _missing_modes_note(s: TcoStudy) -> str:
    """One sentence for the modes without a price: the same reason is given once, with the
    list of modes it applies to (not repeated per mode)."""
    by_reason: dict[str, list[str]] = {}
    for m in s.modes:
        if m.cost is None:
            generic = (m.reason or "").replace(f"no {m.mode} price", "no price")
            by_reason.setdefault(generic, []).append(m.mode)
    return "; ".join(f"{', '.join(modes)}: {why}" for why, modes in by_reason.items())


def _breakeven_section(s: TcoStudy) -> Section:
    rented = [m for m in s.modes if m.mode != "owned" and m.cost is not None]
    rows = [
        [m.mode, round(m.cost.total, 4) if m.cost else "-", _pct(m.breakeven_utilisation)]
        for m in rented
    ]
    known = [
        (m.mode, m.breakeven_utilisation) for m in rented if m.breakeven_utilisation is not None
    ]
    blocks: list[Any] = (
        [charts.html_table(["rent mode", "USD per chip-hour", "buying is cheaper above"], rows)]
        if rows
        else []
    )
    if known:
        blocks.insert(
            0,
            charts.bar_chart(
                [k for k, _ in known],
                [v * 100 for _, v in known],
                title="Break-even utilisation of owning vs renting",
                y_label="utilisation, %",
                text_format="{:.0f}%",
            ),
        )
    note = (
        "Owning costs A/u + B per busy hour (A: capital, facility, idle power; B: busy power); "
        "renting costs the price per rented hour, renting only busy hours."
    )
    if s.modes[0].cost is None:
        note += f" {s.chip.id} has no owned cost: {s.modes[0].reason}"
    if not rows:
        note += (
            f" No rental price of {s.chip.id} is known, so there is nothing to compare owning "
            "with; give one with --price CHIP=USD or --prices FILE."
        )
    return Section("Rent or buy", blocks, note=note)


def _throughput_section(s: TcoStudy) -> Section:
    tp = s.throughput
    assert tp is not None
    rows = [
        ["layout", f"tp={tp.tp} pp={tp.pp} ep={tp.ep}, batch {tp.batch:.0f}, {tp.bound}-bound"],
        ["TTFT / TPOT", f"{tp.ttft_s:.3f} s / {tp.tpot_s * 1e3:.1f} ms"],
        ["output tokens/s per chip (busy)", f"{tp.output_tokens_per_s_per_chip:,.0f}"],
        [
            "J per output token (IT / with PUE)",
            f"{tp.j_per_output_token:.3f} / {_n(s.j_per_output_token_facility)}",
        ],
        ["output tokens/s per MW provisioned", _n(s.tokens_per_s_per_mw, "{:,.0f}")],
    ]
    known = [m for m in s.modes if m.usd_per_m_output is not None]
    chart = charts.bar_chart(
        [m.mode for m in known],
        [m.usd_per_m_output or 0.0 for m in known],
        title=f"USD per million output tokens, {tp.model} ({tp.input_len:.0f} in / {tp.output_len:.0f} out)",
        y_label="USD per million output tokens",
        text_format="{:.3f}",
    )
    return Section(f"Serving {tp.model}", [charts.html_table(["", ""], rows), chart])


def _assumption_section(s: TcoStudy) -> Section:
    a = s.assumptions
    prov = a.provenance
    rows = [
        [n, getattr(a, n), prov.get(n, "")]
        for n in type(a).model_fields
        if n not in ("chip_prices_usd", "not_sold", "provenance")
    ]
    price = a.chip_prices_usd.get(s.chip.id)
    if price is not None:
        rows.append([f"chip price ({s.chip.id})", price, prov.get(f"chip_price:{s.chip.id}", "")])
    return Section(
        "Assumptions and sources", [charts.html_table(["input", "value", "source"], rows)]
    )

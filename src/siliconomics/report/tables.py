"""Rich tables for the CLI. The only module (with cli.py) that formats for people."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..catalog.registry import chips, models
from ..catalog.schema import ChipSpec, EfficiencyProfile, ModelSpec, Sourced
from ..economics.cost import chip_tdp
from ..economics.pricing import chip_price
from ..parallel.memory import active_params, total_params
from ..resolve import default_pricing
from ..search.assess import Assessment
from ..search.compare import Comparison
from ..units import fmt_si, fmt_time
from ..validate.rows import RowResult, ValidationReport
from .style import compact_table


def _s(x: object) -> float:
    return float(np.asarray(x, dtype=np.float64).reshape(-1)[0])


def _num(v: float | None, fmt: str = "{:,.0f}") -> str:
    return "-" if v is None or not np.isfinite(v) else fmt.format(v)


def _peak(c: ChipSpec, dtype: str) -> str:
    if not c.supports(dtype):
        return "n/a"
    v = c.peak_flops(dtype)
    return "?" if v is None else f"{v / 1e12:,.0f}"


def chips_table() -> Table:
    # 80 columns: ids whole (no_wrap); vendor, kind and topology are in 'siliconomics show CHIP'
    t = compact_table(
        "Chips (dense TFLOP/s; ? unpublished, n/a unsupported; W = TDP; ~/e = estimated)"
    )
    for col, left in (
        ("id", True),
        ("bf16", False),
        ("fp8", False),
        ("fp4", False),
        ("GiB", False),
        ("TB/s", False),
        ("su GB/s", False),
        ("dom", False),
        ("W", False),
        ("$/h", False),
    ):
        t.add_column(col, justify="left" if left else "right", no_wrap=True)
    for c in chips().values():
        price = chip_price(c, default_pricing())
        tdp = chip_tdp(c)
        mem = c.memory
        su = c.interconnect.scale_up_bytes_per_s
        t.add_row(
            c.id,
            _peak(c, "bf16"),
            _peak(c, "fp8"),
            _peak(c, "fp4"),
            _num(mem.capacity_bytes.value / 2**30 if mem.capacity_bytes else None),
            _num(
                mem.bytes_per_s.value / 1e12 if mem.bytes_per_s else None,
                "{:.2f}" if mem.bytes_per_s and mem.bytes_per_s.value < 1e14 else "{:,.0f}",
            ),
            _num(su.value / 1e9 if su else None),
            str(c.interconnect.scale_up_domain),
            ("~" if tdp and tdp.estimated else "") + _num(tdp.tdp_w if tdp else None),
            ("e" if price and price.basis == "estimated" else "")
            + _num(price.usd_per_chip_hour if price else None, "{:.2f}"),
        )
    return t


def models_table() -> Table:
    # 80 columns with ids whole; family and max context are in 'siliconomics show MODEL'
    # (attn "gdn" / "ssm": Gated DeltaNet / Mamba-2 layers between GQA ones)
    t = compact_table(
        "Model presets (parameters in billions; width = d_model; q/kv = query/KV heads; "
        "exp = active/total experts; gdn = Gated DeltaNet + GQA, ssm = Mamba-2 + GQA)"
    )
    for col in ("id", "params", "active", "layers", "width", "q/kv", "attn", "exp"):
        t.add_column(col, justify="left" if col in ("id", "attn") else "right", no_wrap=True)
    for m in models().values():
        moe = f"{m.moe.experts_per_token}/{m.moe.n_experts}" if m.moe else "-"
        t.add_row(
            m.id,
            f"{total_params(m) / 1e9:.1f}",
            f"{active_params(m) / 1e9:.1f}",
            str(m.n_layers),
            str(m.d_model),
            f"{m.n_heads}/{m.n_kv_heads}",
            m.attention
            if m.linear_attention is None
            else ("gdn" if m.linear_attention.kind == "gated-deltanet" else "ssm"),
            moe,
        )
    return t


def _src(v: Sourced | None, unit: str, scale: float = 1.0, binary: bool = False) -> str:
    if v is None:
        return "unknown"
    q = fmt_si(v.value / scale, unit, binary=binary) if unit else f"{v.value / scale:g}"
    return f"{q}  [{v.conf}: {v.src}]" + (f" ({v.note})" if v.note else "")


def chip_detail(c: ChipSpec) -> Table:
    t = Table(title=f"{c.name} ({c.id})", show_header=False)
    t.add_column("field")
    t.add_column("value")
    t.add_row("vendor / kind / family", f"{c.vendor} / {c.kind} / {c.family}")
    for d in ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4", "vector_bf16"):
        v = getattr(c.compute, d)
        label = "n/a (unsupported)" if d in c.compute.unsupported else _src(v, "FLOP/s")
        t.add_row(f"peak {d}", label)
    t.add_row("memory", f"{c.memory.kind}: {_src(c.memory.capacity_bytes, 'B', binary=True)}")
    t.add_row("memory bandwidth", _src(c.memory.bytes_per_s, "B/s"))
    t.add_row("on-chip SRAM", _src(c.memory.sram_bytes, "B"))
    ic = c.interconnect
    t.add_row("scale-up", f"{ic.scale_up_name}: {_src(ic.scale_up_bytes_per_s, 'B/s')}")
    t.add_row(
        "domain / topology",
        f"{ic.scale_up_domain} chips, {ic.topology}" + (f", {ic.links} links" if ic.links else ""),
    )
    t.add_row("scale-out (per direction)", _src(ic.scale_out_bytes_per_s, "B/s"))
    mx = c.matrix
    geo = (
        f"{mx.units} units, tiles {mx.tile_m}x{mx.tile_n}"
        if mx.arch == "tiles"
        else f"{mx.units} units, systolic {mx.rows}x{mx.cols}"
    )
    t.add_row("matrix engines", f"{geo}; clock {_src(mx.clock_hz, 'Hz')}")
    tdp = chip_tdp(c)
    t.add_row(
        "power",
        _src(c.power.tdp_w, "W")
        if c.power.tdp_w
        else (f"~{tdp.tdp_w:.0f} W ({tdp.basis})" if tdp else "unknown"),
    )
    price = chip_price(c, default_pricing())
    t.add_row(
        "price",
        f"${price.usd_per_chip_hour:.2f}/chip-h via {price.system} "
        f"({price.region}, as of {price.as_of})"
        if price
        else "no price in catalog",
    )
    for k, v in c.sources.items():
        t.add_row(f"source {k}", v)
    if c.notes:
        t.add_row("notes", c.notes)
    return t


def model_detail(m: ModelSpec) -> Table:
    t = Table(title=m.id, show_header=False)
    t.add_column("field")
    t.add_column("value")
    for k, v in m.model_dump().items():
        if v is not None and v != "":
            t.add_row(k, str(v))
    t.add_row("total params", f"{total_params(m) / 1e9:.2f}B")
    t.add_row("active params / token", f"{active_params(m) / 1e9:.2f}B")
    return t


def profile_detail(p: EfficiencyProfile) -> Table:
    t = Table(title=f"efficiency profile {p.family} ({p.stack})")
    for col in ("factor", "value", "provenance"):
        t.add_column(col)
    for name in type(p).model_fields:
        if name in ("family", "stack", "provenance", "notes"):
            continue
        v = getattr(p, name)
        if v is None or isinstance(v, dict):
            continue
        text = ("yes" if v else "no") if isinstance(v, bool) else f"{v:.4g}"
        prov = p.provenance.get(name, "")
        if not prov and isinstance(v, bool):
            prov = type(p).model_fields[name].description or ""
        t.add_row(name, text, prov)
    for chip, fs in sorted(p.chip_factors.items()):
        for k, v in sorted(fs.items()):
            key = f"chip_factors.{chip}.{k}"
            t.add_row(f"{k} ({chip} only)", f"{v:.4g}", p.provenance.get(key, ""))
    return t


def render_assessment(con: Console, a: Assessment) -> None:
    e = a.estimate
    p = e.plan
    con.print(
        f"[bold]{e.model.id}[/] on [bold]{p.chips} x {e.device.id}[/] "
        f"(tp={p.tp} pp={p.pp} ep={p.ep}"
        + (f" dp={p.dp}" if p.dp > 1 else "")
        + f" replicas={p.replicas}; weights {p.weight_dtype}, "
        f"activations {p.act_dtype}, KV {p.kv_dtype}), {e.scenario.replace('_', ' ')}"
    )
    con.print(
        f"batch {_s(e.batch):.0f}, input {_s(e.input_len):.0f}, output "
        f"{_s(e.output_len):.0f} tokens"
    )
    t = Table(show_header=False)
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("why")
    t.add_row("TTFT", fmt_time(_s(e.ttft_s)), f"prefill is {_s_bound(e.prefill_bound)}-bound")
    t.add_row("TPOT", fmt_time(_s(e.tpot_s)), f"decode is {_s_bound(e.decode_bound)}-bound")
    t.add_row("end-to-end", fmt_time(_s(e.e2e_s)), "")
    t.add_row(
        "output tokens/s",
        f"{_s(e.output_tokens_per_s):,.0f}",
        f"{_s(e.output_tokens_per_s_per_chip):,.1f} per chip",
    )
    mem = e.memory
    t.add_row(
        "memory per chip",
        fmt_si(_s(mem.total), "B", binary=True),
        f"weights {fmt_si(mem.weights, 'B', binary=True)}, KV "
        f"{fmt_si(_s(mem.kv_cache), 'B', binary=True)}, act "
        f"{fmt_si(_s(mem.activations), 'B', binary=True)}, reserve "
        f"{fmt_si(mem.reserve, 'B', binary=True)} of "
        f"{fmt_si(mem.capacity, 'B', binary=True)}",
    )
    if a.price:
        t.add_row(
            "$/M output tokens",
            f"${_s(a.usd_per_million_output):.3f}",
            f"${a.price.usd_per_chip_hour:.2f}/chip-h ({a.price.system}, "
            f"{a.price.region}, {a.price.as_of})",
        )
        t.add_row(
            "split: $/M input | output",
            f"${_s(a.usd_per_million_input_split):.3f} | ${_s(a.usd_per_million_output_split):.3f}",
            "by prefill/decode time share",
        )
    else:
        t.add_row("$/M output tokens", "-", "no price in catalog: pass --price CHIP=USD/h")
    jt = _s(a.joules_per_output_token)
    t.add_row(
        "energy",
        f"{jt:.3g} J/token" if np.isfinite(jt) else "-",
        (a.power.basis + ", incl. host share") if a.power else "TDP unknown",
    )
    con.print(t)
    for note in e.assumptions:
        con.print(f"[yellow]assumption:[/] {note}")
    for phase, fc in (("prefill", e.prefill), ("decode step", e.decode)):
        ot = compact_table(f"{phase}: {fmt_time(_s(fc.time))} per step")
        for col in ("op", "time", "share", "bound", "FLOP", "bytes", "comm B"):
            # the op column keeps its full name: a collective names its algorithm there
            ot.add_column(col, justify="left" if col in ("op", "bound") else "right", no_wrap=True)
        total = _s(fc.time)
        from ..ops.roofline import BOUND_NAMES

        for op in sorted(fc.ops, key=lambda o: -_s(o.time)):
            ot.add_row(
                escape(op.name),  # "[one_shot]" is not rich markup
                fmt_time(_s(op.time)),
                f"{_s(op.time) / total:.1%}",
                _BOUND_SHORT.get(b := BOUND_NAMES[int(np.asarray(op.bound).reshape(-1)[0])], b),
                fmt_si(_s(op.flops), "").strip(),
                fmt_si(_s(op.bytes), "").strip(),
                fmt_si(_s(op.comm_bytes), "").strip(),
            )
        ot.add_row(
            "step overhead",
            fmt_time(fc.step_overhead_s),
            f"{fc.step_overhead_s / total:.1%}",
            "overhead",
            "",
            "",
            "",
        )
        con.print(ot)


_BOUND_SHORT = {"interconnect": "network"}


def _s_bound(b: object) -> str:
    return str(np.asarray(b).reshape(-1)[0])


_BASIS = {"listed": " ", "estimated": "e", "user": "u", "owned": "o"}
"""price-basis mark after $/M: listed, estimated by the stated rule, user price, owned TCO"""


def render_comparison(con: Console, c: Comparison) -> None:
    slo = []
    if c.ttft_s is not None:
        slo.append(f"TTFT <= {fmt_time(c.ttft_s)}")
    if c.tpot_s is not None:
        slo.append(f"TPOT <= {fmt_time(c.tpot_s)}")
    t = compact_table(
        f"{c.model.id}: {c.input_len:.0f} in / {c.output_len:.0f} out tokens"
        + (f", {', '.join(slo)}" if slo else "")
        + " - best layout per chip, cheapest first (tok/s per chip; $ per M output tokens)"
    )
    # Ranked best first; narrow enough for an 80-column terminal (the system each price comes
    # from is in --json and in 'siliconomics show CHIP').
    for col in (
        "chip",
        "layout",
        "batch",
        "tok/s",
        "TTFT",
        "TPOT",
        "$/M",
        "J/tok",
        "bound",
    ):
        t.add_column(
            col, justify="left" if col in ("chip", "layout", "bound") else "right", no_wrap=True
        )
    for ch in c.choices:
        if not ch.feasible:
            continue
        a = ch.assessment
        assert a is not None
        p = a.estimate.plan
        cost = ch.value("usd_per_m_output")
        jt = ch.value("j_per_token")
        t.add_row(
            ch.chip.id,
            (f"dp{p.dp} " if p.dp > 1 else "")
            + f"tp{p.tp}"
            + (f" pp{p.pp}" if p.pp > 1 else "")
            + (f" ep{p.ep}" if p.ep > 1 else ""),
            f"{ch.value('batch'):.0f}",
            f"{ch.value('tokens_per_s_per_chip'):,.0f}",
            fmt_time(ch.value("ttft_s")),
            fmt_time(ch.value("tpot_s")),
            (f"${cost:.2f}" if np.isfinite(cost) else "-")
            + (_BASIS.get(a.price.basis, "?") if a.price else ""),
            ("~" if a.power and a.power.estimated else "")
            + (f"{jt:.2f}" if np.isfinite(jt) else "-"),
            _BOUND_SHORT.get(ch.bound, ch.bound),
        )
    con.print(t)
    if c.spec is not None:
        con.print(f"[dim]Every chip: {c.spec.describe()}.[/]")
    bad = [ch for ch in c.choices if not ch.feasible]
    if bad:
        con.print("[dim]Not feasible:[/]")
        for ch in bad:
            con.print(f"[dim]  {ch.chip.id}: {ch.reason}[/]")
    modes = sorted(
        {ch.assessment.price.mode for ch in c.choices if ch.assessment and ch.assessment.price}
    )
    con.print(
        f"[dim]~ = energy from an estimated TDP. Prices: {', '.join(modes) or 'none'}; price "
        "basis after $/M: (blank) listed = cheapest current offering of the dated price book "
        "('siliconomics prices'); e = no listed price, estimated by the stated rule (HBM TB/s "
        "x median USD per TB/s-hour of the vendor's listed chips, docs/ECONOMICS.md); u = "
        "--price; o = owned TCO. "
        "Chips with no price on any basis rank by tok/s/chip after priced ones.[/]"
    )


_METRIC_SHORT = {
    "output_tokens_per_s": "out tok/s",
    "total_tokens_per_s": "tot tok/s",
    "samples_per_s": "samples/s",
    "ttft_s": "TTFT s",
    "tpot_s": "TPOT s",
    "e2e_latency_s": "e2e s",
    "step_time_s": "step s",
    "train_tokens_per_s": "train tok/s",
    "model_flops_per_s_per_chip": "FLOP/s/chip",
    "train_tokens_per_s_incl_eval": "tok/s+eval",
    "time_to_train_s": "to train s",
}


def _short(v: float) -> str:
    """Four significant digits in at most 7 characters (k, M, G, T, P suffixes)."""
    for above, scale, suffix in (
        (1e15, 1e15, "P"),
        (1e12, 1e12, "T"),
        (1e9, 1e9, "G"),
        (1e6, 1e6, "M"),
        (1e4, 1e3, "k"),  # below 10,000 the plain number fits
    ):
        if abs(v) >= above:
            return f"{v / scale:.4g}{suffix}"
    return f"{v:.4g}"


def validation_rows(con: Console, results: Sequence[RowResult], title: str) -> Table:
    """One line per predicted row, ids whole within 80 columns (the bound and the rest of
    each row are in --json)."""
    sim = con.width >= 100 and any(x.simulated is not None for x in results)
    t = compact_table(title + (" (sim: serving simulator, offline rows)" if sim else ""))
    num = ("measured", "model", "error", "sim")[: 4 if sim else 3]
    for col in ("id", "metric", *num):
        t.add_column(col, justify="right" if col in num else "left", no_wrap=True)
    for x in results:
        cells = [
            x.row.id,
            _METRIC_SHORT.get(x.row.metric, x.row.metric),
            _short(x.row.value),
            _short(x.predicted),
            f"{x.signed_pct:+.1f}%",
        ]
        if sim:
            cells.append("-" if x.simulated is None else _short(x.simulated))
        t.add_row(*cells)
    return t


def render_validation(con: Console, r: ValidationReport, *, rows: bool = True) -> None:
    if rows:
        con.print(validation_rows(con, r.results, "Predicted vs measured"))
    for title, groups in (
        ("by chip family", r.by_family),
        ("by metric", r.by_metric),
        ("by chip", r.by_chip),
    ):
        t = compact_table(f"Error {title}")
        for col in ("group", "rows", "median |err|", "median signed", "max |err|"):
            t.add_column(col, justify="left" if col == "group" else "right")
        for s in groups:
            t.add_row(
                s.group,
                str(s.n),
                f"{s.median_abs_pct:.1f}%",
                f"{s.median_signed_pct:+.1f}%",
                f"{s.max_abs_pct:.1f}%",
            )
        con.print(t)
    if r.skipped:
        con.print(f"Rows not run ({len(r.skipped)}):")
        for sk in r.skipped:
            con.print(f"  {sk.row.id}: {sk.reason}")
    if r.not_inference and r.training is None:
        con.print(
            f"{r.not_inference} training rows not run (the training model is a separate capability)"
        )

"""Plotly chart builders and an HTML table helper for the HTML reports (edge layer).

Each builder takes plain numbers and returns a ``plotly.graph_objects.Figure`` with the house
layout; :func:`.html.render_html` embeds them. Colours come from one qualitative palette so a
chip keeps its colour across charts of one report.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import plotly.graph_objects as go


PALETTE = (
    "#4C78A8",
    "#F58518",
    "#54A24B",
    "#E45756",
    "#72B7B2",
    "#EECA3B",
    "#B279A2",
    "#FF9DA6",
    "#9D755D",
    "#BAB0AC",
)
LOW_COLOUR, HIGH_COLOUR = "#4C78A8", "#E45756"


def _layout(fig: go.Figure, title: str, x_label: str, y_label: str, height: int = 420) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left"},
        xaxis_title=x_label,
        yaxis_title=y_label,
        template="plotly_white",
        height=height,
        margin={"l": 70, "r": 30, "t": 60, "b": 60},
        font={"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 13},
        legend={"orientation": "h", "yanchor": "top", "y": -0.15, "x": 0, "xanchor": "left"},
    )
    return fig


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    y_label: str,
    x_label: str = "",
    text_format: str = "{:,.2f}",
    colors: Sequence[str] | None = None,
) -> go.Figure:
    """One bar per item (e.g. chips ranked by USD per million tokens)."""
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Bar(
            x=list(labels),
            y=list(values),
            marker_color=list(colors) if colors else PALETTE[0],
            text=[text_format.format(v) for v in values],
            textposition="outside",
            cliponaxis=False,
        )
    )
    return _layout(fig, title, x_label, y_label)


def pareto_scatter(
    points: Sequence[tuple[str, float, float]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    frontier: Sequence[str] = (),
) -> go.Figure:
    """Labelled points (label, x, y), e.g. cost vs latency; ``frontier`` labels are joined by a
    line in x order (the Pareto front)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (label, x, y) in enumerate(points):
        fig.add_trace(
            go.Scatter(
                x=[x],
                y=[y],
                mode="markers+text",
                name=label,
                text=[label],
                textposition="top center",
                marker={"size": 12, "color": PALETTE[i % len(PALETTE)]},
                showlegend=False,
            )
        )
    front = sorted((p for p in points if p[0] in set(frontier)), key=lambda p: p[1])
    if front:
        fig.add_trace(
            go.Scatter(
                x=[p[1] for p in front],
                y=[p[2] for p in front],
                mode="lines",
                name="Pareto front",
                line={"dash": "dot", "color": "#555"},
            )
        )
    return _layout(fig, title, x_label, y_label)


def stacked_cost_breakdown(
    categories: Sequence[str],
    items: Mapping[str, Sequence[float]],
    *,
    title: str,
    y_label: str,
) -> go.Figure:
    """Stacked bars: one bar per category (e.g. pricing mode), one segment per cost item."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (name, vals) in enumerate(items.items()):
        fig.add_trace(
            go.Bar(name=name, x=list(categories), y=list(vals), marker_color=PALETTE[i % 10])
        )
    totals = [sum(v[j] for v in items.values()) for j in range(len(categories))]
    fig.add_trace(
        go.Scatter(
            x=list(categories),
            y=totals,
            mode="text",
            text=[f"{t:,.2f}" for t in totals],
            textposition="top center",
            showlegend=False,
        )
    )
    fig.update_layout(barmode="stack")
    _layout(fig, title, "", y_label, height=500)
    return fig.update_layout(margin={"b": 120})


def tornado_chart(
    labels: Sequence[str],
    low: Sequence[float],
    high: Sequence[float],
    base: float,
    *,
    title: str,
    x_label: str,
    low_text: Sequence[str] = (),
    high_text: Sequence[str] = (),
) -> go.Figure:
    """Horizontal bars from the base value to the metric at each input's low and high end;
    the largest swing on top."""
    import plotly.graph_objects as go

    order = list(range(len(labels)))[::-1]  # input order is largest swing first; plot it on top
    ys = [labels[i] for i in order]
    fig = go.Figure()
    for name, vals, texts, colour in (
        ("input at low end", low, low_text, LOW_COLOUR),
        ("input at high end", high, high_text, HIGH_COLOUR),
    ):
        fig.add_trace(
            go.Bar(
                name=name,
                y=ys,
                x=[vals[i] - base for i in order],
                base=base,
                orientation="h",
                marker_color=colour,
                text=[texts[i] for i in order] if texts else None,
                textposition="auto",
                hovertemplate="%{y}: %{x:.3f}<extra></extra>",
            )
        )
    fig.add_vline(x=base, line_color="#333", line_width=1)
    fig.update_layout(barmode="overlay")
    _layout(fig, title, x_label, "", height=max(360, 150 + 48 * len(labels)))
    return fig.update_layout(margin={"b": 110, "l": 200})


def html_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, caption: str = ""
) -> str:
    """A plain HTML table (cells escaped); numbers right-aligned."""

    def cell(v: object, tag: str) -> str:
        cls = ' class="num"' if isinstance(v, int | float) else ""
        text = f"{v:,.4g}" if isinstance(v, float) else str(v)
        return f"<{tag}{cls}>{html.escape(text)}</{tag}>"

    head = "".join(cell(h, "th") for h in headers)
    body = "".join("<tr>" + "".join(cell(v, "td") for v in r) + "</tr>" for r in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f'<table class="data">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

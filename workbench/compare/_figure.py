"""Forest plot of a comparison (plotly): one panel per unit, one marker per row."""

from __future__ import annotations

from typing import Any

import polars as pl

_COLOURS = {
    "improved": "#1a7f37", "regressed": "#cf222e", "increased": "#8250df", "decreased": "#8250df",
    "no detectable change": "#57606a", "not enough data to decide": "#bf8700",
}


def forest_plot(rows: pl.DataFrame, *, title: str) -> Any:
    """Differences with their intervals, a zero line, panels per unit (pp, ms, tokens...)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from workbench._html import plain

    frame = rows.with_columns(
        pl.when(pl.col("kind") == "proportion").then(pl.lit("percentage points"))
        .otherwise(pl.col("metric")).alias("_panel"),
        pl.when(pl.col("kind") == "proportion").then(100.0).otherwise(1.0).alias("_scale"),
    )
    panels = frame["_panel"].unique(maintain_order=True).to_list()
    heights = [max(frame.filter(pl.col("_panel") == p).height, 1) for p in panels]
    fig = make_subplots(rows=max(len(panels), 1), cols=1, row_heights=heights or None,
                        subplot_titles=[plain(p) for p in panels], vertical_spacing=0.08)
    multi = frame["candidate"].n_unique() > 1
    for i, panel in enumerate(panels, start=1):
        part = frame.filter(pl.col("_panel") == panel)
        labels = [
            plain(" · ".join(x for x in (c if multi else "", m, "" if s == "(all)" else s) if x))
            for c, m, s in part.select("candidate", "metric", "slice").iter_rows()
        ]
        scale = part["_scale"].to_numpy()
        diff = part["difference"].to_numpy() * scale
        low = part["ci_low"].to_numpy() * scale
        high = part["ci_high"].to_numpy() * scale
        hover = [
            plain(f"{lab}: {d:+.4g} [{lo:.4g}, {hi:.4g}], p={p:.3g}, adj. p={pa:.3g}, {v}")
            for lab, d, lo, hi, p, pa, v in zip(
                labels, diff, low, high, part["p_value"].fill_null(float("nan")).to_list(),
                part["p_adjusted"].fill_null(float("nan")).to_list(), part["verdict"].to_list(), strict=True)
        ]
        fig.add_trace(
            go.Scatter(
                x=diff, y=labels, mode="markers",
                marker={"color": [_COLOURS.get(v, "#57606a") for v in part["verdict"].to_list()], "size": 9},
                error_x={"type": "data", "symmetric": False, "array": high - diff, "arrayminus": diff - low},
                hovertext=hover, hoverinfo="text", showlegend=False,
            ),
            row=i, col=1,
        )
        fig.add_vline(x=0, line_dash="dot", line_color="#888", row=i, col=1)
        fig.update_yaxes(autorange="reversed", row=i, col=1)
    fig.update_layout(title=plain(title), height=160 + 28 * sum(heights), margin={"l": 10, "r": 10, "t": 60, "b": 30})
    return fig

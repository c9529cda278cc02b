"""The cluster map: a plotly scatter of the 2-D layout, selection -> trace ids -> review queue.

:func:`map_points` and :func:`cluster_figure` are pure (a frame, a ``go.Figure``);
:class:`ClusterMap` owns the UI state (the current selection) and wires a
``go.FigureWidget``: a lasso or box selection calls :meth:`ClusterMap.select_points`,
which tests call directly with point indices. Hover text is escaped with
:func:`workbench._html.plain` (trace text is untrusted). Above ``max_points`` a seeded
sample, stratified by colour, is drawn; above 2,000 points WebGL (``Scattergl``) is used.
Clicking a legend entry isolates that group (``legend.itemclick="toggleothers"``).

Examples
--------
>>> clusters.map(color="verdict")                       # doctest: +SKIP
>>> m = clusters.map(); m.select_points(0, [0, 1, 2])   # doctest: +SKIP
>>> m.review_queue(labels=labels)                       # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from workbench._frames import as_polars
from workbench._html import plain

WEBGL_ABOVE = 2_000
NOISE_COLOUR = "#b8b8b8"
HOVER_CHARS = 280
HOVER_TEMPLATE = "<b>%{customdata[1]}</b><br>%{customdata[2]}<br>%{hovertext}<extra></extra>"


def _colour_values(data: pl.DataFrame, color: str, traces: Any) -> pl.Series:
    if color == "cluster":
        return data["cluster_name"]
    if color == "verdict":
        return data.select(
            pl.when(pl.col("failed")).then(pl.lit("fail")).when(pl.col("failed").not_()).then(pl.lit("pass"))
            .otherwise(pl.lit("unknown"))
        ).to_series()
    if color == "category":
        return data.select(
            pl.col("categories").list.first().fill_null("(none)")
        ).to_series()
    if traces is None:
        raise ValueError(f"color={color!r} is a column of the traces: pass traces=<the traces table>")
    frame = as_polars(traces, name="traces")
    if color not in frame.columns:
        raise ValueError(f"color={color!r}: not 'cluster', 'verdict', 'category' nor a column of the traces")
    joined = data.select("trace_id").join(frame.select("trace_id", pl.col(color).cast(pl.String)),
                                          on="trace_id", how="left", maintain_order="left")
    return joined[color].fill_null("(missing)")


def map_points(clusters: Any, *, color: str = "cluster", traces: Any = None) -> pl.DataFrame:
    """One row per trace: ``trace_id, x, y, cluster, cluster_name, failed, group, hover`` (hover escaped)."""
    data = clusters.to_frame()
    if data["x"].is_nan().all():
        raise ValueError("this clustering has no 2-D layout to map")
    groups = _colour_values(data, color, traces)
    hover = [plain(" ".join((t or "").split()), cap=HOVER_CHARS) for t in data["text"].to_list()]
    return data.select("trace_id", "x", "y", "cluster", "cluster_name", "failed").with_columns(
        groups.cast(pl.String).alias("group"),
        pl.Series("hover", hover, dtype=pl.String),
    )


def sample_points(points: pl.DataFrame, *, max_points: int, seed: int = 0) -> pl.DataFrame:
    """At most ``max_points`` rows, each group sampled in proportion (small groups kept whole)."""
    if len(points) <= max_points:
        return points
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    groups = points["group"].to_numpy()
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        quota = min(len(members), max(50, math.ceil(len(members) * max_points / len(points))))
        keep.append(rng.choice(members, size=quota, replace=False))
    return points[np.sort(np.concatenate(keep)).tolist()]


def _group_order(points: pl.DataFrame) -> list[str]:
    first = points.group_by("group", maintain_order=True).agg(pl.col("cluster").min(), pl.len())
    rows = first.rows()
    unclustered = [g for g, c, _ in rows if g in ("unclustered", "unknown", "(none)", "(missing)")]
    ordered = sorted((r for r in rows if r[0] not in unclustered), key=lambda r: (r[1] if r[1] >= 0 else 10**9, -r[2], r[0]))
    return [r[0] for r in ordered] + sorted(unclustered)


def cluster_figure(points: pl.DataFrame, *, title: str = "", color_title: str = "cluster") -> Any:
    """A ``go.Figure``: one scatter trace per colour group (customdata = trace id, group, verdict)."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    palette = qualitative.Dark24 + qualitative.Light24
    webgl = len(points) > WEBGL_ABOVE
    scatter = go.Scattergl if webgl else go.Scatter
    figure = go.Figure()
    for i, group in enumerate(_group_order(points)):
        part = points.filter(pl.col("group") == group)
        verdict = part["failed"].map_elements(lambda f: "fail" if f else "pass", return_dtype=pl.String, skip_nulls=True)
        customdata = np.column_stack([
            part["trace_id"].to_numpy().astype(object),
            np.array([plain(group)] * len(part), dtype=object),
            np.array([f"verdict: {v}" if v else "verdict: unknown" for v in verdict.to_list()], dtype=object),
        ])
        noise = group in ("unclustered", "unknown", "(none)", "(missing)")
        figure.add_trace(scatter(
            x=part["x"].to_numpy(), y=part["y"].to_numpy(), mode="markers", name=plain(group, cap=60),
            marker={"size": 5 if webgl else 7, "opacity": 0.75,
                    "color": NOISE_COLOUR if noise else palette[i % len(palette)]},
            customdata=customdata, hovertext=part["hover"].to_list(), hovertemplate=HOVER_TEMPLATE,
        ))
    figure.update_layout(
        title=plain(title), dragmode="lasso", height=560, template="plotly_white",
        legend={"title": {"text": plain(color_title)}, "itemclick": "toggleothers", "itemdoubleclick": "toggle"},
        xaxis={"showticklabels": False, "title": ""}, yaxis={"showticklabels": False, "title": ""},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure


class ClusterMap:
    """Interactive map of a clustering; the selection becomes trace ids and a review queue.

    Parameters
    ----------
    clusters
        A :class:`~workbench.cluster.result.FailureClusters`.
    color
        ``"cluster"``, ``"verdict"``, ``"category"`` or a column of ``traces`` (cohort).
    traces
        The traces table (for a cohort column, and to order the review queue by time).
    max_points
        Points drawn at most (seeded, stratified sample above it).
    """

    def __init__(self, clusters: Any, *, color: str = "cluster", traces: Any = None,
                 max_points: int = 50_000, seed: int = 0) -> None:
        self.color = color
        self._traces = traces
        everything = map_points(clusters, color=color, traces=traces)
        self.n_total = len(everything)
        self.points = sample_points(everything, max_points=max_points, seed=seed)
        self._groups = _group_order(self.points)
        self._rows = [np.flatnonzero(self.points["group"].to_numpy() == g) for g in self._groups]
        self._selected: dict[int, list[int]] = {}
        self._widget: Any = None
        self._view: Any = None
        self._status: Any = None

    def __repr__(self) -> str:
        return f"ClusterMap({len(self.points):,} of {self.n_total:,} points, color={self.color!r})"

    def figure(self) -> Any:
        """The pure ``go.Figure``."""
        shown = f"{len(self.points):,} of {self.n_total:,} traces (sampled)" if len(self.points) < self.n_total else (
            f"{self.n_total:,} traces")
        return cluster_figure(self.points, title=f"Trace clusters: {shown}", color_title=self.color)

    def widget(self) -> Any:
        """A ``go.FigureWidget``: lasso/box selects points, a click selects the point's whole cluster."""
        if self._widget is None:
            import plotly.graph_objects as go

            widget = go.FigureWidget(self.figure())
            for index, trace in enumerate(widget.data):
                trace.on_selection(self._selection_handler(index))
                trace.on_deselect(self._deselect_handler(index))
                trace.on_click(self._click_handler(index))
            self._widget = widget
        return self._widget

    def view(self) -> Any:
        """The figure widget under a status line that always says what is selected."""
        if self._view is None:
            import ipywidgets

            self._status = ipywidgets.Label(value=self.status())
            self._status.add_class("wb-map-selection")
            self._view = ipywidgets.VBox([self._status, self.widget()])
        return self._view

    def status(self) -> str:
        """One line: how many traces are selected and from which clusters (plain text)."""
        selected = self.selection
        if selected.is_empty():
            return "Click a point to select its cluster, or lasso / box-select points. 0 traces selected."
        names = selected["cluster_name"].unique(maintain_order=True).to_list()
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        return f"{selected.height:,} traces selected ({shown}): cluster_map.selection, cluster_map.review_queue()"

    def _refresh_status(self) -> None:
        if self._status is not None:
            self._status.value = self.status()

    def _click_handler(self, trace_index: int) -> Any:
        def handler(trace: Any, points: Any, state: Any) -> None:
            if points.point_inds:
                row = self._rows[trace_index][points.point_inds[0]]
                self.select_cluster(int(self.points["cluster"][int(row)]))
        return handler

    def _selection_handler(self, trace_index: int) -> Any:
        def handler(trace: Any, points: Any, selector: Any) -> None:
            self.select_points(trace_index, list(points.point_inds))
        return handler

    def _deselect_handler(self, trace_index: int) -> Any:
        def handler(trace: Any, points: Any) -> None:
            self.select_points(trace_index, [])
        return handler

    def _ipython_display_(self) -> None:  # pragma: no cover - needs a notebook front end
        from IPython.display import display

        display(self.view())

    def select_points(self, trace_index: int, point_indices: list[int]) -> pl.DataFrame:
        """Set the selection of one scatter trace (what the widget's callback calls)."""
        if not 0 <= trace_index < len(self._rows):
            raise IndexError(f"trace {trace_index} does not exist; the map has {len(self._rows)} traces")
        rows = self._rows[trace_index]
        bad = [i for i in point_indices if not 0 <= i < len(rows)]
        if bad:
            raise IndexError(f"point {bad[0]} is not in trace {trace_index} ({len(rows)} points)")
        if point_indices:
            self._selected[trace_index] = [int(rows[i]) for i in point_indices]
        else:
            self._selected.pop(trace_index, None)
        self._refresh_status()
        return self.selection

    def select_cluster(self, cluster: int) -> pl.DataFrame:
        """Select every drawn point of ``cluster`` (what clicking one of its points does)."""
        in_cluster = self.points["cluster"].to_numpy() == cluster
        if not in_cluster.any():
            raise KeyError(f"no drawn point is in cluster {cluster}")
        self._selected = {i: rows[in_cluster[rows]].tolist() for i, rows in enumerate(self._rows)
                          if in_cluster[rows].any()}
        self._refresh_status()
        return self.selection

    def clear_selection(self) -> None:
        """Forget the selection."""
        self._selected.clear()
        self._refresh_status()

    @property
    def selection(self) -> pl.DataFrame:
        """The selected traces: ``trace_id, cluster, cluster_name, group, failed``."""
        rows = sorted({r for chosen in self._selected.values() for r in chosen})
        return self.points[rows].select("trace_id", "cluster", "cluster_name", "group", "failed")

    def isolate(self, group: str) -> None:
        """Show only ``group`` (what clicking its legend entry does in the browser)."""
        if group not in self._groups:
            raise KeyError(f"no group {group!r}; groups are {self._groups}")
        widget = self.widget()
        for name, trace in zip(self._groups, widget.data, strict=True):
            trace.visible = True if name == group else "legendonly"

    def review_queue(self, *, labels: Any = None, reviewer: str | None = None) -> Any:
        """The selection as a :class:`workbench.review.queues.ReviewQueue` (unlabelled first)."""
        from workbench.review.queues import review_queue

        selected = self.selection
        if selected.is_empty():
            raise ValueError("nothing is selected: lasso or box-select points on the map first")
        frame = selected.select("trace_id", "cluster", "cluster_name")
        if self._traces is not None:
            traces = as_polars(self._traces, name="traces")
            if "start_time" in traces.columns:
                frame = frame.join(traces.select("trace_id", "start_time"), on="trace_id", how="left",
                                   maintain_order="left")
        return review_queue(frame, strategy="unlabelled", labels=labels, reviewer=reviewer)

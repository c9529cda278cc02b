"""The cluster map, driven from Python: selection -> trace ids -> review queue; hover escaped."""

from __future__ import annotations

import polars as pl
import pytest
from plotly.callbacks import BoxSelector, Points

from workbench.cluster import cluster_figure, cluster_traces
from workbench.cluster.map import map_points, sample_points
from workbench.review.events import events_frame, new_label


@pytest.fixture(scope="module")
def hostile(planted):
    """The planted traces with script/img payloads in a few texts."""
    payloads = {0: "<script>alert('x')</script> refund money back", 1: '<img src=x onerror="alert(1)"> refund',
                2: "<b>bold</b> & <style>body{display:none}</style> refund"}
    texts = [payloads.get(i, t) for i, t in enumerate(planted["input"].to_list())]
    return planted.with_columns(pl.Series("input", texts))


@pytest.fixture(scope="module")
def hostile_clusters(hostile):
    return cluster_traces(hostile, text="input", outcome="passed", seed=0, progress=False, stability_runs=0)


def test_selection_gives_the_selected_trace_ids(fitted):
    cmap = fitted.map()
    points = cmap.points
    group = cmap._groups[0]
    expected_rows = points.with_row_index("row").filter(pl.col("group") == group)
    selected = cmap.select_points(0, [0, 2, 5])
    assert selected["trace_id"].to_list() == expected_rows["trace_id"].gather([0, 2, 5]).to_list()
    assert set(selected["cluster_name"]) == {group}
    # a selection in a second trace adds to it; an empty selection of a trace removes it
    cmap.select_points(1, [1])
    assert cmap.selection.height == 4
    cmap.select_points(0, [])
    assert cmap.selection.height == 1
    with pytest.raises(IndexError):
        cmap.select_points(0, [10_000])


def test_widget_selection_callback_updates_the_selection(fitted):
    cmap = fitted.map(color="cluster")
    widget = cmap.widget()
    trace = widget.data[1]
    ids = list(trace.customdata[[0, 3], 0])
    trace._dispatch_on_selection(Points(point_inds=[0, 3], xs=[], ys=[], trace_name=trace.name, trace_index=1),
                                 BoxSelector(xrange=[0, 1], yrange=[0, 1]))
    assert cmap.selection["trace_id"].to_list() == sorted(ids, key=lambda t: cmap.points["trace_id"].to_list().index(t))
    trace._dispatch_on_deselect(Points(point_inds=[], trace_index=1))
    assert cmap.selection.is_empty()


def test_selection_becomes_a_review_queue_in_one_call(fitted, planted):
    cmap = fitted.map(traces=planted)
    picked = cmap.select_points(2, [0, 1, 2, 3])["trace_id"].to_list()
    labels = events_frame([new_label(picked[0], "ana", "fail")])
    queue = cmap.review_queue(labels=labels)
    assert set(queue.trace_ids) == set(picked)
    assert queue.trace_ids[-1] == picked[0]  # already labelled goes last
    cmap.clear_selection()
    with pytest.raises(ValueError, match="nothing is selected"):
        cmap.review_queue()


def test_hover_text_is_escaped(hostile_clusters):
    figure = hostile_clusters.map().figure()
    hover = [h for trace in figure.data for h in trace.hovertext]
    assert any("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in h for h in hover)
    assert any("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in h for h in hover)
    payload = figure.to_json()
    for raw in ("<script", "<img", "<style", "onerror=\\\"", "<b>bold"):
        assert raw not in payload
    names = [str(cell) for trace in figure.data for cell in trace.customdata[:, 1]]
    assert all("<" not in name for name in names)


def test_colour_by_verdict_category_and_cohort(fitted, planted):
    by_verdict = fitted.map(color="verdict")
    assert set(by_verdict.points["group"]) == {"fail", "pass"}
    failing = by_verdict.points.filter(pl.col("group") == "fail")
    assert failing.join(planted, on="trace_id")["topic"].unique().to_list() == ["refund"]
    cohort = planted.with_columns(pl.when(pl.int_range(pl.len()) < 300).then(pl.lit("v1")).otherwise(pl.lit("v2"))
                                  .alias("prompt_version"))
    by_cohort = fitted.map(color="prompt_version", traces=cohort)
    assert by_cohort.points.group_by("group").len().sort("group").rows() == [("v1", 300), ("v2", 300)]
    assert set(fitted.map(color="category").points["group"]) == {"(none)"}
    with pytest.raises(ValueError, match="pass traces"):
        fitted.map(color="prompt_version")


def test_legend_click_isolates_a_cluster(fitted):
    cmap = fitted.map()
    figure = cmap.figure()
    assert figure.layout.legend.itemclick == "toggleothers"
    assert [t.name for t in figure.data] == cmap._groups
    cmap.isolate(cmap._groups[1])
    visible = [t.visible for t in cmap.widget().data]
    assert visible[1] is True and all(v == "legendonly" for i, v in enumerate(visible) if i != 1)


def test_large_maps_use_webgl_and_a_stratified_sample(fitted):
    points = map_points(fitted)
    big = pl.concat([points.with_columns(pl.format("{}-{}", pl.col("trace_id"), pl.lit(k)).alias("trace_id"))
                     for k in range(10)])  # 6,000 points
    shown = sample_points(big, max_points=3_000, seed=0)
    assert 3_000 <= shown.height <= 3_100
    assert set(shown["group"]) == set(big["group"])
    figure = cluster_figure(shown)
    assert {t.type for t in figure.data} == {"scattergl"}
    assert {t.type for t in cluster_figure(points).data} == {"scatter"}


def test_click_selects_the_whole_cluster_and_the_status_line_says_so(fitted):
    cluster_map = fitted.map()
    status = cluster_map.view().children[0]
    assert "0 traces selected" in status.value
    trace = cluster_map.widget().data[0]
    cluster = int(cluster_map.points["cluster"][int(cluster_map._rows[0][0])])
    trace._dispatch_on_click(Points(point_inds=[0], xs=[], ys=[], trace_name=trace.name, trace_index=0), None)
    expected = cluster_map.points.filter(pl.col("cluster") == cluster)["trace_id"].sort().to_list()
    assert cluster_map.selection["trace_id"].sort().to_list() == expected
    assert f"{len(expected):,} traces selected" in status.value
    cluster_map.clear_selection()
    assert "0 traces selected" in status.value

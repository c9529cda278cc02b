"""Building eval items from traces and labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pandas as pd
import polars as pl
import pytest

from workbench.compare.cohorts import by_column
from workbench.export.items import build_eval_items, item_ids
from workbench.review.events import OUTCOME_VOCABULARY, events_frame, new_label, new_retraction
from workbench.review.queues import ReviewQueue

START = datetime(2024, 5, 1, tzinfo=UTC)


def _traces() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "trace_id": ["t1", "t2", "t3", "t4"],
            "session_id": ["s1", "s1", "s1", None],
            "root_span_id": ["r1", "r2", "r3", "r4"],
            "start_time": [START + timedelta(minutes=k) for k in range(4)],
            "input": ["hi", "where is my refund?", "still waiting", "reset password"],
            "output": ["hello", "no refunds", "sorry", "done"],
            "prompt_version": ["v1", "v1", "v2", "v2"],
            "metadata": ['{"plan": "pro"}', None, None, '{"x": 1}'],
        }
    )


def test_expected_comes_from_correction_or_passing_verdict():
    labels = events_frame(
        [
            new_label("t1", "ana", "pass"),
            new_label(
                "t2", "ana", "fail", categories=["refund_no_policy"], corrected_output="Refunds take 5 days."
            ),
            new_label("t3", "ana", "fail", categories=["wrong_tool_args"], note="called the wrong tool"),
        ]
    )
    items = build_eval_items(_traces(), labels)
    got = {
        r["trace_id"]: (r["expected"], r["expected_source"], r["verdict"])
        for r in items.iter_rows(named=True)
    }
    assert got == {
        "t1": ("hello", "original", "pass"),
        "t2": ("Refunds take 5 days.", "corrected", "fail"),
        "t3": (None, None, "fail"),
    }
    row = items.filter(pl.col("trace_id") == "t3").row(0, named=True)
    assert row["note"] == "called the wrong tool" and row["categories"] == ["wrong_tool_args"]
    assert row["span_id"] == "r3"  # root span when the label names none
    assert row["item_id"] == item_ids(["t3"], ["r3"])[0]


def test_latest_label_decides_and_provenance_keeps_all_reviewers():
    first = new_label("t2", "ana", "pass")
    second = new_label("t2", "bob", "fail", categories=["refund_no_policy"], taxonomy_version=3)
    retracted = new_label("t2", "cy", "pass")
    undo = new_retraction("t2", "cy", supersedes=retracted.event_id)
    items = build_eval_items(_traces(), events_frame([first, second, retracted, undo]))
    row = items.row(0, named=True)
    assert row["verdict"] == "fail"
    assert row["reviewers"] == ["ana", "bob"]
    assert row["label_event_ids"] == [first.event_id, second.event_id]
    assert row["taxonomy_version"] == 3


def test_conversation_up_to_the_failing_turn():
    labels = events_frame([new_label("t3", "ana", "fail"), new_label("t4", "ana", "pass")])
    items = build_eval_items(_traces(), labels, history_turns=5)
    t3 = items.filter(pl.col("trace_id") == "t3")["messages"].item().to_list()
    assert t3 == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "where is my refund?"},
        {"role": "assistant", "content": "no refunds"},
        {"role": "user", "content": "still waiting"},
    ]
    t4 = items.filter(pl.col("trace_id") == "t4")["messages"].item().to_list()
    assert t4 == [{"role": "user", "content": "reset password"}]  # no session: no history
    short = build_eval_items(_traces(), labels, history_turns=1)
    assert len(short.filter(pl.col("trace_id") == "t3")["messages"].item()) == 3


def test_selection_by_expression_ids_and_queue():
    labels = events_frame(
        [new_label(t, "ana", "fail" if t != "t1" else "pass") for t in ("t1", "t2", "t3", "t4")]
    )
    traces = _traces()
    assert build_eval_items(traces, labels, select=pl.col("verdict") == "fail")["trace_id"].to_list() == [
        "t2",
        "t3",
        "t4",
    ]
    assert build_eval_items(traces, labels, select=["t4", "t1"])["trace_id"].to_list() == ["t1", "t4"]
    queue = ReviewQueue(trace_ids=("t3",), reasons=("random",), strategy="random")
    assert build_eval_items(traces, labels, select=queue)["trace_id"].to_list() == ["t3"]
    by_version = build_eval_items(traces, labels, select=pl.col("prompt_version") == "v2")
    assert by_version["trace_id"].to_list() == ["t3", "t4"]

    class MapSelection:  # the shape of workbench.cluster.map.ClusterMap: .selection is a frame
        selection = pl.DataFrame({"trace_id": ["t2", "t4"], "cluster": [1, 1]})

    assert build_eval_items(traces, labels, select=MapSelection())["trace_id"].to_list() == ["t2", "t4"]
    assert build_eval_items(traces, labels, select=MapSelection.selection.to_pandas())[
        "trace_id"
    ].to_list() == [
        "t2",
        "t4",
    ]


def test_clusters_cohorts_and_metadata():
    labels = events_frame([new_label(t, "ana", "fail") for t in ("t1", "t2", "t3")])
    clusters = pl.DataFrame({"trace_id": ["t1", "t2", "t3"], "cluster": [4, 7, -1]})  # -1: no cluster
    items = build_eval_items(
        _traces(), labels, clusters=clusters, cohort=by_column("prompt_version", baseline="v1")
    )
    assert items.select("trace_id", "cluster", "cohort").rows() == [
        ("t1", "4", "v1"),
        ("t2", "7", "v1"),
        ("t3", None, "v2"),
    ]
    meta = orjson.loads(items["trace_metadata"][0])
    assert meta["metadata"] == {"plan": "pro"}
    mapped = build_eval_items(
        _traces(), labels, cohort={"before": ["t1"], "after": ["t2", "t3"]}, clusters={"t3": "9"}
    )
    assert mapped["cohort"].to_list() == ["before", "after", "after"]
    assert mapped["cluster"].to_list() == [None, None, "9"]
    named = build_eval_items(_traces(), labels, cohort="prompt_version")
    assert named["cohort"].to_list() == ["v1", "v1", "v2"]


def test_outcome_vocabulary_and_pandas_input():
    labels = events_frame([new_label("t1", "ana", "accepted"), new_label("t2", "ana", "rejected")])
    items = build_eval_items(_traces().to_pandas(), labels.to_pandas(), vocabulary=OUTCOME_VOCABULARY)
    assert isinstance(_traces().to_pandas(), pd.DataFrame)
    assert items["expected"].to_list() == ["hello", None]


def test_label_naming_an_unknown_span_is_an_error():
    labels = events_frame([new_label("t1", "ana", "fail", span_id="nope")])
    spans = pl.DataFrame({"trace_id": ["t1"], "span_id": ["r1"]})
    with pytest.raises(ValueError, match="span 'nope' of trace 't1'"):
        build_eval_items(_traces(), labels, spans=spans)
    ok = build_eval_items(
        _traces(), events_frame([new_label("t1", "ana", "fail", span_id="r1")]), spans=spans
    )
    assert ok["span_id"].to_list() == ["r1"]


def test_unlabelled_traces_are_not_items_and_null_ids_rejected():
    assert build_eval_items(_traces(), events_frame([])).height == 0
    with pytest.raises(ValueError, match="trace_id is null"):
        build_eval_items(
            pl.DataFrame({"trace_id": [None, "x"]}, schema={"trace_id": pl.String}), events_frame([])
        )

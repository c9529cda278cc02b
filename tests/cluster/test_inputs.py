"""What is clustered and what counts as a failure: text choices, labels, outcomes."""

from __future__ import annotations

import polars as pl
import pytest

from workbench.cluster import cluster_traces, error_messages
from workbench.cluster.inputs import categories_per_trace, failure_flags, select_text
from workbench.review.events import events_frame, new_label, new_retraction


@pytest.fixture
def traces():
    return pl.DataFrame({
        "trace_id": ["t1", "t2", "t3", "t4"],
        "input": ["refund?", "hi", None, "  "],
        "output": ["no policy", "hello", "x", "y"],
        "passed": [True, True, False, False],
    })


def test_failure_flags_majority_ties_and_fallback(traces):
    first = new_label("t1", "ana", "pass")
    events = events_frame([
        first,
        new_label("t1", "ana", "fail", supersedes=first.event_id),  # relabel: ana now says fail
        new_label("t1", "bo", "fail"),
        new_label("t2", "ana", "fail"),
        new_label("t2", "bo", "pass"),  # tie -> unknown
        new_label("t3", "ana", "pass"),
    ])
    retracted = new_label("t4", "ana", "pass")
    events = pl.concat([events, events_frame([retracted, new_retraction("t4", "ana", supersedes=retracted.event_id)])])
    assert failure_flags(traces, labels=events).to_list() == [True, None, False, None]
    assert failure_flags(traces, labels=events, outcome="passed").to_list() == [True, None, False, True]
    assert failure_flags(traces, outcome=~pl.col("output").str.contains("policy")).to_list() == [True, False, False, False]
    with pytest.raises(ValueError, match="boolean"):
        failure_flags(traces, outcome="input")


def test_text_choices(traces):
    assert select_text(traces, "output").to_list() == ["no policy", "hello", "x", "y"]
    expr = pl.concat_str([pl.col("input").fill_null(""), pl.col("output")], separator=" | ")
    assert select_text(traces, expr)[0] == "refund? | no policy"
    events = events_frame([new_label("t1", "ana", "fail", note="no refund policy"),
                           new_label("t1", "bo", "fail", note="policy missing"), new_label("t2", "ana", "pass")])
    assert select_text(traces, "note", labels=events).to_list() == ["no refund policy | policy missing", None, None, None]
    with pytest.raises(ValueError, match="pass labels"):
        select_text(traces, "note")
    with pytest.raises(ValueError, match="error_messages"):
        select_text(traces, "error")


def test_error_messages_from_spans():
    spans = pl.DataFrame({
        "trace_id": ["t1", "t1", "t1", "t2"],
        "error_type": ["ValidationError", None, "ValidationError", None],
        "error_message": ["bad order id", "timeout", "bad order id", None],
    })
    assert error_messages(spans).rows() == [("t1", "ValidationError: bad order id | timeout")]


def test_categories_per_trace():
    events = events_frame([new_label("t1", "ana", "fail", categories=["refund_no_policy"]),
                           new_label("t1", "bo", "fail", categories=["refund_no_policy", "tone"])])
    assert categories_per_trace(events).rows() == [("t1", ["refund_no_policy", "tone"])]


def test_labels_drive_rates_categories_and_note_clustering(planted):
    refunds = planted.filter(pl.col("topic") == "refund")["trace_id"].to_list()
    others = planted.filter(pl.col("topic") == "shipping")["trace_id"].to_list()
    events = events_frame(
        [new_label(t, "ana", "fail", categories=["refund_no_policy"], note="refund without a policy lookup")
         for t in refunds[:40]]
        + [new_label(t, "ana", "pass", note="shipping answered from the tracking tool") for t in others[:40]]
    )
    clusters = cluster_traces(planted, text="input", labels=events, seed=0, progress=False, stability_runs=0)
    frame = clusters.summary().to_frame()
    refund_row = frame.filter(pl.col("categories").list.len() > 0).row(0, named=True)
    assert refund_row["categories"] == ["refund_no_policy (40)"]
    assert (refund_row["n_labelled"], refund_row["n_failed"], refund_row["failure_rate"]) == (40, 40, 1.0)
    assert refund_row["lift"] == pytest.approx(2.0)
    by_note = cluster_traces(planted, text="note", labels=events, seed=0, progress=False, stability_runs=0)
    assert by_note.assignments.height == 80 and by_note.skipped == 520
    assert by_note.n_clusters == 2
    assert "520 traces had no text" in " ".join(by_note.summary().warnings)

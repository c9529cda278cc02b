"""review_queue(): determinism, stratification, clusters, outliers, feedback, resume."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from workbench.review.events import events_frame, new_label, new_retraction
from workbench.review.queues import ReviewQueue, review_queue

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def make_traces(n: int = 200) -> pl.DataFrame:
    return pl.DataFrame({
        "trace_id": [f"t{i:03d}" for i in range(n)],
        "start_time": [T0 + timedelta(minutes=n - i) for i in range(n)],  # t199 is the oldest
        "intent": ["billing"] * (n // 2) + ["shipping"] * (3 * n // 10) + ["returns"] * (n - n // 2 - 3 * n // 10),
        "n_spans": [5] * n,
        "duration_ms": [1000.0] * n,
        "n_tool_calls": [1] * n,
        "n_errors": [0] * n,
        "user_feedback": [None] * n,
    }, schema_overrides={"user_feedback": pl.Float64})


def test_random_is_seeded_and_a_permutation():
    traces = make_traces()
    a = review_queue(traces, strategy="random", seed=7)
    b = review_queue(traces.to_pandas(), strategy="random", seed=7)
    c = review_queue(traces, strategy="random", seed=8)
    assert a.trace_ids == b.trace_ids
    assert a.trace_ids != c.trace_ids
    assert sorted(a.trace_ids) == sorted(traces["trace_id"].to_list())
    assert a.estimates_prevalence and all(r == "random sample (seed 7)" for r in a.reasons)
    assert review_queue(traces, strategy="random", seed=7, n=10).trace_ids == a.trace_ids[:10]


def test_stratified_proportions_exact_and_every_prefix_balanced():
    traces = make_traces(200)  # 100 billing, 60 shipping, 40 returns
    queue = review_queue(traces, strategy="stratified", by="intent", n=50, seed=3)
    assert len(queue) == 50 and queue.estimates_prevalence
    strata = Counter(r.removeprefix("stratum intent=") for r in queue.reasons)
    assert strata == {"billing": 25, "shipping": 15, "returns": 10}
    assert queue.strata == {"billing": 100, "shipping": 60, "returns": 40}
    intent = dict(zip(traces["trace_id"], traces["intent"], strict=True))
    assert all(intent[t] == r.removeprefix("stratum intent=") for t, r in zip(queue, queue.reasons, strict=True))
    first10 = Counter(intent[t] for t in queue.trace_ids[:10])
    assert first10 == {"billing": 5, "shipping": 3, "returns": 2}
    assert review_queue(traces, strategy="stratified", by="intent", n=50, seed=3).trace_ids == queue.trace_ids


def test_stratified_largest_remainder_and_missing_values():
    traces = pl.DataFrame({"trace_id": [f"t{i}" for i in range(7)], "g": ["a", "a", "a", "b", "b", None, None]})
    queue = review_queue(traces, strategy="stratified", by="g", n=4, seed=0)
    counts = Counter(queue.reasons)
    # exact shares 12/7, 8/7, 8/7 -> floors 1,1,1 and the largest remainder (a) gets the 4th
    assert counts == {"stratum g=a": 2, "stratum g=b": 1, "stratum g=(missing)": 1}


def test_unlabelled_first_by_reviewer_then_resume():
    traces = make_traces(6)
    done = events_frame([new_label("t005", "ana", "pass"), new_label("t003", "bo", "fail")])
    queue = review_queue(traces, strategy="unlabelled", labels=done, reviewer="ana")
    assert queue.trace_ids == ("t004", "t003", "t002", "t001", "t000", "t005")  # oldest first, done last
    assert queue.reasons[0] == "unlabelled by ana" and queue.reasons[-1] == "already labelled by ana"
    anyone = review_queue(traces, strategy="unlabelled", labels=done)
    assert anyone.trace_ids[-2:] == ("t005", "t003")
    assert not queue.estimates_prevalence


def test_resume_position_skips_current_labels_only():
    queue = ReviewQueue(("a", "b", "c", "d"), ("given",) * 4, "given")
    first = new_label("a", "ana", "pass")
    b_label = new_label("b", "ana", "fail")
    undone = new_retraction("b", "ana", supersedes=b_label.event_id)
    assert queue.resume_position(None, reviewer="ana") == 0
    assert queue.resume_position(events_frame([first, b_label]), reviewer="ana") == 2
    assert queue.resume_position(events_frame([first, b_label, undone]), reviewer="ana") == 1
    assert queue.resume_position(events_frame([first, b_label]), reviewer="bo") == 0
    all_done = events_frame([new_label(t, "ana", "pass") for t in "abcd"])
    assert queue.resume_position(all_done, reviewer="ana") == 4


def test_cluster_representatives_round_robin_small_clusters_first_then_random():
    n = 100
    cluster = [0] * 60 + [1] * 25 + [2] * 5 + [-1] * 10
    traces = pl.DataFrame({"trace_id": [f"t{i}" for i in range(n)], "cluster": cluster,
                           "cluster_probability": [i / n for i in range(n)]})
    queue = review_queue(traces, strategy="cluster", n=20, seed=1)
    reps = [(t, r) for t, r in zip(queue, queue.reasons, strict=True) if r.endswith("representative")]
    assert len(reps) == 13 and len(queue) == 20  # 65% representatives
    assert [r for _, r in reps[:3]] == ["cluster 2 representative", "cluster 1 representative",
                                        "cluster 0 representative"]
    assert reps[0][0] == "t89"  # most central member of cluster 2 first
    assert not any(r == "cluster -1 representative" for r in queue.reasons)
    assert len(set(queue.trace_ids)) == 20
    with pytest.raises(ValueError, match="cluster"):
        review_queue(traces.drop("cluster"), strategy="cluster")


def test_outliers_errors_first_then_extremes():
    traces = make_traces(100).with_columns(
        n_errors=pl.when(pl.col("trace_id") == "t050").then(1).otherwise(0),
        duration_ms=pl.when(pl.col("trace_id") == "t010").then(60_000.0).otherwise(pl.col("duration_ms")),
        n_tool_calls=pl.when(pl.col("trace_id") == "t020").then(9).otherwise(1),
    )
    queue = review_queue(traces, strategy="outliers")
    assert queue.trace_ids[0] == "t050" and queue.reasons[0].startswith("outlier: errors")
    assert set(queue.trace_ids) == {"t050", "t010", "t020"}
    assert "slow" in queue.reason("t010") and "many tool calls" in queue.reason("t020")


def test_negative_feedback_from_traces_or_feedback_table():
    traces = make_traces(5).with_columns(user_feedback=pl.Series([1.0, 0.0, None, 0.2, 1.0]))
    queue = review_queue(traces, strategy="feedback")
    assert queue.trace_ids == ("t001", "t003")
    assert queue.reasons[0] == "negative feedback: user_feedback=0"
    feedback = pl.DataFrame({"trace_id": ["t004", "t002", "t002"], "name": ["thumbs", "thumbs", "thumbs"],
                             "value_num": [0.0, 1.0, -1.0]})
    from_table = review_queue(traces, strategy="feedback", feedback=feedback)
    assert from_table.trace_ids == ("t002", "t004")
    with pytest.raises(ValueError, match="user_feedback"):
        review_queue(traces.drop("user_feedback"), strategy="feedback")


def test_bad_arguments_are_named():
    traces = make_traces(3)
    with pytest.raises(ValueError, match="unknown queue strategy"):
        review_queue(traces, strategy="best")
    with pytest.raises(ValueError, match="needs by="):
        review_queue(traces, strategy="stratified")
    with pytest.raises(ValueError, match="'nope'"):
        review_queue(traces, strategy="stratified", by="nope")
    with pytest.raises(ValueError, match="trace_id"):
        review_queue(pl.DataFrame({"x": [1]}))


def test_queue_frame_and_html():
    queue = review_queue(make_traces(3), strategy="recent")
    assert queue.trace_ids == ("t000", "t001", "t002")
    assert queue.to_frame().columns == ["position", "trace_id", "reason"]
    assert "do not estimate prevalence" in queue._repr_html_()

"""Label events and their pure reductions: latest wins, undo, history, staleness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from workbench.review.events import (
    OUTCOME_VOCABULARY,
    LabelEvent,
    Vocabulary,
    current_labels,
    events_frame,
    history,
    mark_stale,
    new_label,
    new_retraction,
    trace_content_hash,
    trace_content_hashes,
    with_failed,
)
from workbench.schema import LABELS, validate


def _verdicts(frame: pl.DataFrame) -> dict[tuple[str, str], str]:
    return {(r["trace_id"], r["reviewer"]): r["verdict"] for r in frame.iter_rows(named=True)}


def test_new_label_fills_schema_fields() -> None:
    event = new_label("t1", "ana", "fail", categories=["a", "b", "a", " "], note="x", lead_time_ms=1200)
    assert event.action == "label"
    assert event.categories == ("a", "b")
    assert len(event.event_id) == 36
    assert event.created_at.tzinfo is not None
    frame = events_frame([event])
    validate(frame, LABELS, table="labels")
    assert frame.row(0, named=True)["categories"] == ["a", "b"]
    assert LabelEvent.from_row(frame.row(0, named=True)) == event


def test_created_at_strictly_increases_within_a_process() -> None:
    events = [new_label("t", "ana", "pass") for _ in range(200)]
    times = [e.created_at for e in events]
    assert all(a < b for a, b in zip(times, times[1:], strict=False))


def test_bad_events_are_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="trace_id"):
        new_label("", "ana", "pass")
    with pytest.raises(ValueError, match="reviewer"):
        new_label("t1", " ", "pass")
    with pytest.raises(ValueError, match="verdict"):
        new_label("t1", "ana", "")
    with pytest.raises(ValueError, match="categories"):
        new_label("t1", "ana", "pass", categories="refund")
    with pytest.raises(ValueError, match="not one of"):
        new_label("t1", "ana", "maybe", vocabulary=Vocabulary())


def test_latest_wins_per_trace_and_reviewer() -> None:
    a1 = new_label("t1", "ana", "pass")
    b1 = new_label("t1", "bo", "fail")
    a2 = new_label("t1", "ana", "fail", supersedes=a1.event_id)
    a3 = new_label("t2", "ana", "pass")
    current = current_labels(events_frame([a1, b1, a2, a3]))
    assert _verdicts(current) == {("t1", "ana"): "fail", ("t1", "bo"): "fail", ("t2", "ana"): "pass"}
    assert set(current["event_id"]) == {a2.event_id, b1.event_id, a3.event_id}
    validate(current, LABELS, table="labels")


def test_undo_restores_the_previous_label_then_clears() -> None:
    first = new_label("t1", "ana", "pass")
    second = new_label("t1", "ana", "fail", supersedes=first.event_id)
    undo_second = new_retraction("t1", "ana", supersedes=second.event_id)
    events = [first, second, undo_second]
    assert _verdicts(current_labels(events_frame(events))) == {("t1", "ana"): "pass"}
    undo_first = new_retraction("t1", "ana", supersedes=first.event_id)
    assert current_labels(events_frame([*events, undo_first])).is_empty()
    third = new_label("t1", "ana", "fail")
    assert _verdicts(current_labels(events_frame([*events, undo_first, third]))) == {("t1", "ana"): "fail"}


def test_retract_only_touches_its_own_reviewer_and_clear_retracts_everything_before() -> None:
    a = new_label("t1", "ana", "pass")
    b = new_label("t1", "bo", "pass")
    foreign = new_retraction("t1", "bo", supersedes=a.event_id)  # bo cannot undo ana's label
    assert _verdicts(current_labels(events_frame([a, b, foreign]))) == {
        ("t1", "ana"): "pass",
        ("t1", "bo"): "pass",
    }
    a2 = new_label("t1", "ana", "fail", supersedes=a.event_id)
    clear = new_retraction("t1", "ana", supersedes=None)
    a3 = new_label("t1", "ana", "pass")
    assert ("t1", "ana") not in _verdicts(current_labels(events_frame([a, a2, clear])))
    assert _verdicts(current_labels(events_frame([a, a2, clear, a3])))[("t1", "ana")] == "pass"


def test_order_is_created_at_not_frame_order() -> None:
    older = new_label("t1", "ana", "pass")
    newer = new_label("t1", "ana", "fail")
    assert _verdicts(current_labels(events_frame([newer, older]))) == {("t1", "ana"): "fail"}
    # equal timestamps: the frame order (commit order from the store) breaks the tie
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    x = LabelEvent("e1", "t9", "ana", "label", moment, verdict="pass")
    y = LabelEvent("e2", "t9", "ana", "label", moment, verdict="fail")
    assert current_labels(events_frame([x, y]))["verdict"].to_list() == ["fail"]
    assert current_labels(events_frame([y, x]))["verdict"].to_list() == ["pass"]


def test_current_is_idempotent_and_accepts_pandas() -> None:
    events = [new_label(f"t{i % 3}", "ana", "pass" if i % 2 else "fail") for i in range(9)]
    once = current_labels(events_frame(events))
    assert current_labels(once).equals(once)
    assert current_labels(events_frame(events).to_pandas()).equals(once)
    assert current_labels(events_frame([])).is_empty()


def test_history_keeps_every_event_with_its_state() -> None:
    first = new_label("t1", "ana", "pass")
    other = new_label("t2", "ana", "pass")
    second = new_label("t1", "ana", "fail", supersedes=first.event_id)
    third = new_label("t1", "ana", "pass", supersedes=second.event_id)
    undo = new_retraction("t1", "ana", supersedes=third.event_id)
    bo = new_label("t1", "bo", "fail")
    frame = events_frame([first, other, second, third, undo, bo])
    hist = history(frame, "t1")
    assert hist["event_id"].to_list() == [e.event_id for e in (first, second, third, undo, bo)]
    assert hist["state"].to_list() == ["superseded", "current", "retracted", "retract", "current"]


def _spans(**overrides: str) -> pl.DataFrame:
    base = {
        "trace_id": ["t1", "t1", "t2"],
        "span_id": ["a", "b", "c"],
        "parent_span_id": [None, "a", None],
        "status": ["ok", "ok", "error"],
        "input": ["hello", "lookup(1)", "hi"],
        "output": ["answer", "{}", None],
        "duration_ms": [5.0, 1.0, 2.0],
    }
    for key, value in overrides.items():
        base[key] = [value, *base[key][1:]]
    return pl.DataFrame(base)


def test_trace_content_hash_is_stable_and_content_sensitive() -> None:
    spans = _spans().filter(pl.col("trace_id") == "t1")
    h = trace_content_hash(spans)
    assert h == trace_content_hash(spans.reverse())
    assert h == trace_content_hash(spans.with_columns(pl.col("duration_ms") * 10))  # timings do not count
    assert h == trace_content_hash(spans.to_pandas())
    changed = _spans(output="a different answer").filter(pl.col("trace_id") == "t1")
    assert trace_content_hash(changed) != h
    assert trace_content_hash(_spans(status="error").filter(pl.col("trace_id") == "t1")) != h
    hashes = trace_content_hashes(_spans())
    assert dict(hashes.rows()) == {
        "t1": h,
        "t2": trace_content_hash(_spans().filter(pl.col("trace_id") == "t2")),
    }
    with pytest.raises(ValueError, match="span_id"):
        trace_content_hash(pl.DataFrame({"trace_id": ["t"]}))


def test_changed_trace_marks_labels_stale_not_moved() -> None:
    """L5: same trace_id, different content -> the label is flagged, never re-attached silently."""
    old = _spans()
    hashes = dict(trace_content_hashes(old).rows())
    labels = events_frame(
        [
            new_label("t1", "ana", "fail", trace_content_hash=hashes["t1"]),
            new_label("t2", "ana", "pass", trace_content_hash=hashes["t2"]),
            new_label("t3", "ana", "pass", trace_content_hash="abc"),
            new_label("t1", "bo", "pass"),
        ]
    )
    new = _spans(output="edited answer")
    marked = mark_stale(labels, new)
    assert marked["is_stale"].to_list() == [True, False, None, None]
    assert marked.select(list(LABELS)).equals(labels)  # nothing else changes
    assert mark_stale(labels, trace_content_hashes(new))["is_stale"].to_list() == [True, False, None, None]
    assert mark_stale(labels, {"t1": hashes["t1"], "t3": "xyz"})["is_stale"].to_list() == [
        False,
        None,
        True,
        None,
    ]
    with pytest.raises(ValueError, match="trace_content_hash"):
        mark_stale(labels, pl.DataFrame({"trace_id": ["t1"]}))


def test_vocabulary_and_failed_column() -> None:
    vocab = OUTCOME_VOCABULARY
    assert vocab.passing == ("accepted",)
    assert vocab.is_failure("escalated")
    with pytest.raises(ValueError, match="not one of"):
        vocab.is_failure("pass")
    with pytest.raises(ValueError, match="not in verdicts"):
        Vocabulary(("ok", "bad"), failing=("fail",))
    frame = events_frame(
        [
            new_label("t1", "ana", "accepted"),
            new_label("t2", "ana", "corrected"),
            new_label("t3", "ana", "odd"),
        ]
    )
    assert with_failed(frame, vocabulary=vocab)["failed"].to_list() == [False, True, None]
    assert with_failed(events_frame([new_label("t", "a", "fail")]))["failed"].to_list() == [True]


def test_lead_time_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="lead_time_ms"):
        new_label("t", "a", "pass", lead_time_ms=-1)
    assert (
        new_label(
            "t", "a", "pass", lead_time_ms=timedelta(seconds=2) // timedelta(milliseconds=1)
        ).lead_time_ms
        == 2000
    )

"""ReviewSession against a real LabelStore on a temporary SQLite file."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from workbench.review.events import OUTCOME_VOCABULARY, current_labels, trace_content_hash
from workbench.review.queues import review_queue
from workbench.review.session import ReviewSession, verdict_keys
from workbench.review.store import LabelNotSaved, LabelStore
from workbench.schema import SPANS, conform

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def make_data(n: int = 5) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows, traces = [], []
    for i in range(n):
        tid = f"t{i}"
        start = T0 + timedelta(minutes=i)
        user = {"role": "user", "content": f"question {i}"}
        rows.append({"trace_id": tid, "span_id": f"{tid}-root", "kind": "agent", "name": "agent",
                     "start_time": start, "end_time": start + timedelta(seconds=3),
                     "input": f"question {i}", "output": f"answer {i}"})
        rows.append({"trace_id": tid, "span_id": f"{tid}-llm", "parent_span_id": f"{tid}-root", "kind": "llm",
                     "name": "chat", "start_time": start + timedelta(seconds=1),
                     "end_time": start + timedelta(seconds=2), "input": json.dumps([user]),
                     "output": json.dumps([{"role": "assistant", "content": f"answer {i}"}])})
        traces.append({"trace_id": tid, "start_time": start, "output": f"answer {i}"})
    return pl.DataFrame(traces), conform(pl.DataFrame(rows), SPANS)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite", busy_timeout_ms=200) as s:
        yield s


@pytest.fixture
def session(store):
    traces, spans = make_data()
    return ReviewSession(traces, spans, store=store, reviewer="ana", clock=Clock())


def test_decide_saves_after_commit_and_advances(session, store):
    assert session.current().trace_id == "t0" and session.progress == (1, 5) and session.save_state == "new"
    session._clock.now += 12.5
    result = session.decide("fail")
    assert result.saved and result.message == "saved"
    rows = store.events()
    assert rows.height == 1
    row = rows.row(0, named=True)
    assert (row["trace_id"], row["reviewer"], row["verdict"], row["action"]) == ("t0", "ana", "fail", "label")
    assert row["event_id"] == result.event.event_id
    assert row["lead_time_ms"] == 12_500
    spans_t0 = session._spans[("t0",)]
    assert row["trace_content_hash"] == trace_content_hash(spans_t0)
    assert row["taxonomy_version"] == 0
    assert row["corrected_output"] is None  # unchanged from the original output
    assert session.current().trace_id == "t1" and session.progress == (2, 5) and session.labelled_count == 1


def test_categories_by_number_note_correction_escalate(session, store):
    session.add_category("refund_no_policy", "refund without policy check", select=False)
    session.add_category("wrong_tool_args", "")  # selects it
    session.toggle_category(1)
    session.toggle_category("2")  # off again
    assert session.form.categories == ("refund_no_policy",)
    with pytest.raises(ValueError, match="no category number 3"):
        session.toggle_category(3)
    with pytest.raises(ValueError, match="add it first"):
        session.toggle_category("unknown")
    assert session.form.corrected_output == "answer 0"  # prefilled with the original output
    session.set_note("refunded $40 without checking the 30-day policy")
    session.set_corrected_output("I can't refund this order: it is past the 30-day window.")
    session.set_escalate(True)
    assert session.decide("fail").saved
    row = store.events().row(0, named=True)
    assert row["categories"] == ["refund_no_policy"]
    assert row["note"].startswith("refunded $40")
    assert row["corrected_output"].startswith("I can't refund")
    assert row["escalate"] is True
    assert row["taxonomy_version"] == 2


def test_not_saved_while_the_database_is_locked_then_retry_with_the_same_event(session, store):
    blocker = sqlite3.connect(store.path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        session.set_note("first attempt")
        failed = session.decide("fail")
        assert not failed.saved and session.save_state == "error"
        assert session.message.startswith("NOT SAVED")
        assert session.current().trace_id == "t0"  # did not advance
        assert session.form.note == "first attempt" and session.form.verdict == "fail"  # form kept
    finally:
        blocker.rollback()
        blocker.close()
    assert store.count() == 0
    retried = session.submit()
    assert retried.saved and session.save_state == "saved"
    assert retried.event.event_id == failed.event.event_id
    assert store.count() == 1


class AmbiguousStore:
    """Commits, then reports a failure (a lost acknowledgement), a given number of times."""

    def __init__(self, store: LabelStore, failures: int) -> None:
        self.store, self.failures, self.attempts = store, failures, []

    def save(self, event):
        self.attempts.append(event.event_id)
        self.store.save(event)
        if self.failures > 0:
            self.failures -= 1
            raise LabelNotSaved(event, ConnectionError("connection reset after commit"), pending=0)
        return event

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_ambiguous_failure_retry_stores_exactly_one_row(store):
    traces, spans = make_data()
    flaky = AmbiguousStore(store, failures=2)
    session = ReviewSession(traces, spans, store=flaky, reviewer="ana", clock=Clock())
    session.set_verdict("pass")
    assert not session.submit().saved
    session.go_next()  # wander off and come back: the pending save is kept
    session.go_previous()
    assert session.save_state == "error" and session.form.verdict == "pass"
    assert not session.submit().saved
    assert session.submit().saved
    assert len(set(flaky.attempts)) == 1 and len(flaky.attempts) == 3
    assert store.count() == 1


def test_undo_retracts_and_returns_to_that_trace(session, store):
    session.decide("pass")
    session.decide("fail")
    assert session.current().trace_id == "t2"
    result = session.undo()
    assert result.saved and result.event.action == "retract"
    assert session.current().trace_id == "t1" and session.existing is None and session.form.verdict is None
    assert session.save_state == "new"
    current = current_labels(store.events())
    assert current["trace_id"].to_list() == ["t0"] and session.labelled_count == 1
    session.undo()
    assert current_labels(store.events()).is_empty() and session.current().trace_id == "t0"
    assert session.undo().message == "nothing to undo"


def test_going_back_shows_and_edits_the_previous_decision(session, store):
    first = session.decide("pass").event
    session.go_previous()
    assert session.current().trace_id == "t0"
    assert session.form.verdict == "pass" and session.save_state == "saved"
    assert session.existing.event_id == first.event_id
    session.set_note("actually the answer is wrong")
    assert session.save_state == "draft"
    edit = session.decide("fail", advance=False).event
    assert edit.supersedes == first.event_id
    current = current_labels(store.events())
    assert current.height == 1 and current["verdict"][0] == "fail"
    assert store.count() == 2
    again = session.submit()  # nothing changed: no duplicate event
    assert again.saved and again.message == "unchanged" and store.count() == 2


def test_resume_in_a_new_session_and_skip(store):
    traces, spans = make_data()
    first = ReviewSession(traces, spans, store=store, reviewer="ana", clock=Clock())
    first.decide("pass")
    first.skip()
    first.decide("fail")  # t2
    again = ReviewSession(traces, spans, store=store, reviewer="ana", clock=Clock())
    assert again.queue.trace_ids[:2] == ("t1", "t3") and again.current().trace_id == "t1"
    given = ReviewSession(traces, spans, store=store, reviewer="ana",
                          queue=review_queue(traces, strategy="recent"), clock=Clock())
    assert given.current().trace_id == "t4"
    other = ReviewSession(traces, spans, store=store, reviewer="bo", clock=Clock())
    assert other.current().trace_id == "t0" and other.labelled_count == 0


def test_drafts_survive_navigation(session):
    session.set_note("half-written thought")
    session.go_next()
    assert session.form.note == ""
    session.go_previous()
    assert session.form.note == "half-written thought" and session.save_state == "draft"


def test_throughput_and_saturation(session):
    for seconds in (30, 30, 60):
        session._clock.now += seconds
        session.decide("pass")
    assert session.throughput() == pytest.approx(3 * 3600 / 120)
    sat = session.saturation()
    assert sat.n_reviewed == 3 and not sat.saturated
    assert "3 traces reviewed" in str(session.header_html())


def test_custom_vocabulary_keys_and_checks(store):
    traces, spans = make_data(2)
    s = ReviewSession(traces, spans, store=store, reviewer="ana", vocabulary=OUTCOME_VOCABULARY, clock=Clock())
    assert s.keys == {"a": "accepted", "c": "corrected", "r": "rejected", "e": "escalated"}
    with pytest.raises(ValueError, match="not one of"):
        s.set_verdict("pass")
    assert s.decide("corrected").saved
    assert store.events()["verdict"].to_list() == ["corrected"]
    # s, k, j, u are navigation keys: the next free letter is used
    assert verdict_keys(OUTCOME_VOCABULARY.__class__(("skip", "keep"), failing=("skip",))) == {"i": "skip", "e": "keep"}


def test_submit_without_verdict_and_empty_queue(session, store):
    result = session.submit()
    assert not result.saved and result.message == "choose a verdict first" and store.count() == 0
    traces, spans = make_data(1)
    empty = ReviewSession(traces, spans, store=store, reviewer="ana", queue=[], clock=Clock())
    assert empty.current() is None and empty.progress == (0, 0) and not empty.submit().saved


def test_more_pages_a_long_field(store):
    traces, spans = make_data(1)
    long_text = "line <b>\n" * 2_000
    answer = json.dumps([{"role": "assistant", "content": long_text}])
    spans = spans.with_columns(output=pl.when(pl.col("kind") == "llm").then(pl.lit(answer))
                               .otherwise(pl.col("output")))
    traces = traces.with_columns(output=pl.lit(long_text))
    s = ReviewSession(traces, spans, store=store, reviewer="ana", clock=Clock())
    fields = s.current().rendered.fields
    assert len(fields) == 1
    (field_id,) = fields
    html, next_offset, remaining = s.more(field_id, 3000)
    assert next_offset == len(long_text) and remaining == 0 and "&lt;b&gt;" in html
    with pytest.raises(KeyError):
        s.more("f999", 0)


def test_undo_after_a_taxonomy_rename_removes_the_label_and_its_remapped_copy(session, store):
    session.add_category("refund_policy_missing", select=False)
    session.set_verdict("pass")
    assert session.submit().saved  # an earlier label of t0 ...
    session.toggle_category("refund_policy_missing")
    session.set_verdict("fail")
    assert session.submit().saved  # ... replaced by this one, which the rename then re-maps
    session.taxonomy.rename("refund_policy_missing", "no_refund_policy")
    remapped = current_labels(store.events(trace_id="t0"))
    assert remapped["categories"].to_list() == [["no_refund_policy"]]
    result = session.undo()
    assert result.saved and result.message == "undone"
    now = current_labels(store.events(trace_id="t0"))
    assert (now["verdict"].to_list(), now["categories"].to_list()) == (["pass"], [[]])  # back to before the label
    assert store.events(trace_id="t0").filter(pl.col("action") == "retract").height == 2  # one transaction

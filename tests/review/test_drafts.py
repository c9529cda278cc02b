"""Drafts: unsaved forms survive a killed kernel (reliability S9) and never outlive the saved label."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson

from tests.review.test_session import Clock, make_data
from workbench.review.drafts import DraftBox, DraftWriter, default_path, form_fields
from workbench.review.session import ReviewSession
from workbench.review.store import LabelStore

ROOT = Path(__file__).resolve().parents[2]
TEXT = 'The refund window is 30 days.\n\n"Quoted", naïve — 東京 <b>not html</b>'


def test_box_keeps_the_last_form_per_reviewer_and_trace_and_skips_torn_lines(tmp_path):
    box = DraftBox(tmp_path / "d.jsonl")
    box.put("ana", "t1", {"note": "first"})
    box.put("ana", "t1", {"note": "second"})
    box.put("bo", "t1", {"note": "bo's"})
    box.put("ana", "t2", {"note": "other"})
    with open(box.path, "ab") as handle:
        handle.write(b'\n{"reviewer": "ana", "trace_id": "t3", "form": {"no')  # a write cut by a kill
    box.clear("ana", "t2")
    assert {t: r["form"] for t, r in box.drafts("ana").items()} == {"t1": {"note": "second"}}
    assert box.drafts("bo")["t1"]["form"] == {"note": "bo's"}


def test_box_compacts_to_the_live_drafts(tmp_path, monkeypatch):
    from workbench.review import drafts

    monkeypatch.setattr(drafts, "COMPACT_BYTES", 2_000)
    box = DraftBox(tmp_path / "d.jsonl")
    for i in range(60):
        box.put("ana", f"t{i % 3}", {"note": "x" * 40 + str(i)})
    assert box.path.stat().st_size < 2_000
    assert {t: r["form"]["note"][-2:] for t, r in box.drafts("ana").items()} == {"t0": "57", "t1": "58", "t2": "59"}


def test_form_fields_refuse_what_is_not_a_form():
    assert form_fields({"verdict": "fail", "categories": ["a"], "note": "n"})["categories"] == ("a",)
    assert form_fields({"note": 5}) is None
    assert form_fields({"categories": [1]}) is None
    assert form_fields("text") is None


def test_writer_writes_at_once_then_at_most_every_interval_and_always_the_last_change():
    written, clock = [], Clock()
    writer = DraftWriter(lambda tid, form: written.append((tid, form["note"])), interval=0.2, clock=clock)
    writer.changed("t1", {"note": "a"})
    writer.changed("t1", {"note": "ab"})
    writer.changed("t1", {"note": "abc"})
    assert written == [("t1", "a")]  # the rest waits for the interval
    clock.now += 1
    time.sleep(0.4)  # the trailing timer fires
    assert written == [("t1", "a"), ("t1", "abc")]
    clock.now += 1
    writer.changed("t2", {"note": "x"})
    assert written[-1] == ("t2", "x")  # written at once: the interval had passed
    writer.changed("t3", {"note": "saved before the timer"})
    writer.forget("t3")
    writer.flush()
    assert written[-1] == ("t2", "x")


def _session(store, **kwargs):
    traces, spans = make_data()
    return ReviewSession(traces, spans, store=store, reviewer="ana", clock=Clock(), **kwargs)


def test_unsaved_form_comes_back_in_a_new_session_and_saving_clears_it(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as store:
        first = _session(store)
        first.set_verdict("fail")
        first.set_note("refund policy missing")
        first.set_corrected_output(TEXT)
        first.flush_drafts()
        assert default_path(store) == tmp_path / "labels.sqlite.drafts.jsonl"

        second = _session(store)  # as after a kernel restart
        assert second.current().trace_id == "t0"
        assert (second.form.verdict, second.form.note, second.form.corrected_output) == (
            "fail", "refund policy missing", TEXT)
        assert second.save_state == "draft" and second.message == "draft restored: not saved yet"
        assert second.submit().saved
        third = _session(store)  # t0 is labelled now: the queue resumes at t1, with no draft
        assert (third.current().trace_id, third.save_state, third.message) == ("t1", "new", "")
        assert DraftBox(default_path(store)).drafts("ana") == {}
        assert store.events().height == 1


def test_a_label_saved_after_the_draft_wins(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as store:
        stale = _session(store)
        stale.set_note("typed in a kernel that then died")
        stale.flush_drafts()
        other = _session(store, drafts=False)  # another kernel saves a label for the same trace later
        other.set_note("the saved note")
        other.decide("pass")
        again = _session(store, queue=["t0"])
        assert (again.form.note, again.save_state) == ("the saved note", "saved")


def test_drafts_false_writes_no_file(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as store:
        session = _session(store, drafts=False)
        session.set_note("kept in memory only")
        session.flush_drafts()
        assert not default_path(store).exists()


CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from tests.review.test_session import make_data
    from workbench.review.store import LabelStore
    from workbench.widgets.review import ReviewWidget
    from workbench.review.session import ReviewSession

    traces, spans = make_data()
    store = LabelStore(sys.argv[1])
    widget = ReviewWidget(ReviewSession(traces, spans, store=store, reviewer="ana"))
    widget.handle({{"type": "key", "key": "j"}})  # to the second trace
    widget.handle({{"type": "set", "field": "note", "value": "first words"}})
    widget.handle({{"type": "set", "field": "corrected_output", "value": sys.argv[2]}})  # within the interval
    time.sleep(2.5)  # past the debounce: the trailing write has happened
    print("READY", flush=True)
    time.sleep(60)
""")


def test_draft_survives_kernel_kill(tmp_path):
    """S9: type, wait past the debounce, SIGKILL the kernel, restart: the draft comes back verbatim."""
    script = tmp_path / "kernel.py"
    script.write_text(CHILD.format(root=str(ROOT)))
    path = tmp_path / "labels.sqlite"
    proc = subprocess.Popen([sys.executable, str(script), str(path), TEXT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "READY", proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with LabelStore(path) as store:
        session = _session(store)
        session.go_next()
        assert session.current().trace_id == "t1"
        assert (session.form.note, session.form.corrected_output) == ("first words", TEXT)
        assert session.save_state == "draft"
        assert store.events().height == 0  # drafts never reach the shared store
    lines = [orjson.loads(line) for line in Path(f"{path}.drafts.jsonl").read_bytes().split(b"\n") if line]
    assert lines[-1]["form"]["corrected_output"] == TEXT


def test_discard_draft_forgets_it_here_and_on_disk(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as store:
        session = _session(store)
        session.set_note("never mind")
        session.flush_drafts()
        form = session.discard_draft()
        assert (form.note, session.save_state) == ("", "new")
        assert DraftBox(default_path(store)).drafts("ana") == {}
        assert _session(store).form.note == ""


def test_verdict_keys_write_no_draft_but_a_failed_save_keeps_the_whole_form(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as store:
        session = _session(store)
        assert session.decide("pass").saved
        assert not default_path(store).exists()  # a decision is saved at once: no draft write on that path
        session.set_note("why it failed")

        def unreachable(event):
            raise ConnectionError("database unreachable")

        store.save = unreachable  # the database goes away: the save fails
        assert not session.decide("fail").saved and session.save_state == "error"
        session.flush_drafts()
        (record,) = DraftBox(default_path(store)).drafts("ana").values()
        assert (record["form"]["verdict"], record["form"]["note"]) == ("fail", "why it failed")

"""The review widget driven from Python with the messages its front end sends."""

from __future__ import annotations

import html
import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest

from workbench.review.events import current_labels
from workbench.review.store import LabelStore
from workbench.schema import SPANS, TRACES, conform
from workbench.widgets.review import EDITABLE_OUTPUT_CAP, ReviewWidget, review

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
JS = (Path(__file__).resolve().parents[2] / "workbench" / "widgets" / "review.js").read_text()

PAYLOADS = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    "<svg onload=alert(1)><circle/></svg>",
    '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    "<style>.wbr-verdict{display:none}</style>",
    '<a href="javascript:alert(1)">click</a>',
    '<a href="data:text/html,<script>alert(1)</script>">d</a>',
    "</script><script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "&lt;img src=x onerror=alert(1)&gt; &#60;script&#62;",
    "$$\\frac{1}{0}$$ and $x^2$",
    "bidi \u202eevil\u202c zero\u200bwidth \u2066iso\u2069",
    "\x1b[31mred\x1b[0m",
    '<div data-commandlinker-command="terminal:create-new">x</div>',
]
BAD = " ".join(PAYLOADS)
ALLOWED_TAGS = {"div", "span", "pre", "code", "details", "summary", "button", "section", "h4", "dl", "dt", "dd"}
ALLOWED_ATTRS = {"class", "title", "data-field", "data-offset", "type", "style", "open"}
STYLE = re.compile(r"(--depth:\d+|left:[\d.]+%;width:[\d.]+%|width:[\d.]+%)")


class Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_data(self, data):
        self.text.append(data)


def assert_inert(markup: str) -> str:
    """Every tag and attribute is one workbench builds; returns the visible text."""
    parser = Markup()
    parser.feed(markup)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, f"unexpected <{tag}> in widget markup"
        for name, value in attrs:
            assert name in ALLOWED_ATTRS, f"unexpected attribute {name}={value!r} on <{tag}>"
            if name == "style":
                assert STYLE.fullmatch(value or ""), value
            if name == "class":
                assert re.fullmatch(r"[\w\- ]+", value or ""), value
    return "".join(parser.text)


def make(n: int = 3, *, text: str | None = None, big: str | None = None):
    rows, traces = [], []
    for i in range(n):
        tid = f"t{i}"
        start = T0 + timedelta(minutes=i)
        q = text or f"question {i}"
        a = text or f"answer {i}"
        call = {"role": "assistant", "tool_calls": [
            {"id": "c1", "function": {"name": text or "lookup", "arguments": json.dumps({"q": q})}}]}
        rows += [
            {"trace_id": tid, "span_id": f"{tid}-r", "kind": "agent", "name": text or "agent", "start_time": start,
             "end_time": start + timedelta(seconds=4), "input": q, "output": a},
            {"trace_id": tid, "span_id": f"{tid}-l1", "parent_span_id": f"{tid}-r", "kind": "llm",
             "name": text or "chat", "start_time": start, "end_time": start + timedelta(seconds=1),
             "input": json.dumps([{"role": "system", "content": text or "be nice"}, {"role": "user", "content": q}]),
             "output": json.dumps([call]), "model": text},
            {"trace_id": tid, "span_id": f"{tid}-t", "parent_span_id": f"{tid}-r", "kind": "tool",
             "name": text or "lookup", "start_time": start + timedelta(seconds=1),
             "end_time": start + timedelta(seconds=2), "input": json.dumps({"q": q}),
             "output": big if big is not None else (text or "result"), "status": "error" if text else "ok",
             "error_type": text, "error_message": text},
            {"trace_id": tid, "span_id": f"{tid}-ret", "parent_span_id": f"{tid}-r", "kind": "retriever",
             "name": text or "kb", "start_time": start + timedelta(seconds=2),
             "end_time": start + timedelta(seconds=3), "input": q,
             "output": json.dumps([{"id": text or "doc1", "content": text or "doc text", "score": 0.5}])},
            {"trace_id": tid, "span_id": f"{tid}-l2", "parent_span_id": f"{tid}-r", "kind": "llm",
             "name": text or "chat", "start_time": start + timedelta(seconds=3),
             "end_time": start + timedelta(seconds=4), "input": json.dumps([{"role": "user", "content": q}]),
             "output": json.dumps([{"role": "assistant", "content": a}])},
        ]
        traces.append({"trace_id": tid, "start_time": start, "output": a, "session_id": text, "user_id": text,
                       "prompt_version": text, "tags": [text] if text else []})
    spans = conform(pl.DataFrame(rows), SPANS).with_columns(
        session_id=pl.lit(text), user_id=pl.lit(text), prompt_version=pl.lit(text), app_version=pl.lit(text),
        attributes=pl.lit(json.dumps({"x": text})), tags=pl.lit([text] if text else [], dtype=pl.List(pl.String)))
    return conform(pl.DataFrame(traces), TRACES), spans


@pytest.fixture
def store(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite", busy_timeout_ms=200) as s:
        yield s


def send(widget: ReviewWidget, message: dict) -> None:
    widget._handle_custom_msg(message, [])  # exactly what a front-end model.send() delivers


def test_keys_label_advance_and_go_back(store):
    traces, spans = make()
    w = review(traces, spans, store=store, reviewer="ana")
    assert w.trace_id == "t0" and w.save_state == "new" and "1 of 3" in w.header_html
    send(w, {"type": "key", "key": "f"})
    assert store.events()["verdict"].to_list() == ["fail"]
    assert w.trace_id == "t1" and w.verdict == "" and "2 of 3" in w.header_html
    send(w, {"type": "key", "key": "k"})
    assert w.trace_id == "t0" and w.verdict == "fail" and w.save_state == "saved"
    assert "labelled fail" in w.header_html
    send(w, {"type": "key", "key": "p"})  # edit the earlier decision
    cur = current_labels(store.events())
    assert cur["verdict"].to_list() == ["pass"] and store.count() == 2
    assert store.events()["supersedes"][1] == store.events()["event_id"][0]
    send(w, {"type": "key", "key": "ArrowRight"})
    send(w, {"type": "key", "key": "s"})
    assert w.trace_id == "t2" and w.at_end and not w.at_start
    send(w, {"type": "key", "key": "ArrowLeft"})
    send(w, {"type": "key", "key": "j"})
    assert w.trace_id == "t2"
    send(w, {"type": "key", "key": "x"})  # unbound keys do nothing
    send(w, {"type": "nonsense"})
    assert w.trace_id == "t2" and store.count() == 2


def test_categories_by_number_note_correction_escalate_via_messages(store):
    traces, spans = make()
    w = review(traces, spans, store=store, reviewer="ana")
    send(w, {"type": "add_category", "name": "wrong_tool_args", "definition": "bad arguments"})
    send(w, {"type": "add_category", "name": "tone", "definition": ""})
    assert [c["name"] for c in w.categories] == ["wrong_tool_args", "tone"]
    assert [c["number"] for c in w.categories] == [1, 2]
    assert w.categories[0]["definition"] == "bad arguments"
    assert w.selected == ["wrong_tool_args", "tone"]  # adding selects
    send(w, {"type": "key", "key": "2"})
    assert w.selected == ["wrong_tool_args"]
    send(w, {"type": "key", "key": "7"})
    assert "no category number 7" in w.message
    send(w, {"type": "click", "action": "category", "value": "tone"})
    send(w, {"type": "set", "field": "note", "value": "asked for the wrong order id"})
    assert w.corrected_output == "answer 0"
    send(w, {"type": "set", "field": "corrected_output", "value": "Which order do you mean?"})
    send(w, {"type": "set", "field": "escalate", "value": True})
    assert w.save_state == "draft" and w.escalate
    send(w, {"type": "click", "action": "verdict", "value": "fail"})
    row = store.events().row(0, named=True)
    assert row["categories"] == ["wrong_tool_args", "tone"] and row["note"] == "asked for the wrong order id"
    assert row["corrected_output"] == "Which order do you mean?" and row["escalate"] is True
    assert row["taxonomy_version"] == 2
    assert w.trace_id == "t1"


def test_saved_only_after_commit_not_saved_then_retry_same_event(store):
    traces, spans = make()
    w = review(traces, spans, store=store, reviewer="ana")
    blocker = sqlite3.connect(store.path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        send(w, {"type": "set", "field": "note", "value": "keep me"})
        send(w, {"type": "key", "key": "f"})
        assert w.save_state == "error" and w.message.startswith("NOT SAVED")
        assert w.trace_id == "t0" and w.note == "keep me" and w.verdict == "fail"
        first_id = w.session._pending["t0"][1].event_id
    finally:
        blocker.rollback()
        blocker.close()
    assert store.count() == 0
    send(w, {"type": "click", "action": "submit"})  # "Retry save"
    assert w.save_state == "saved" and store.count() == 1
    assert store.events()["event_id"].to_list() == [first_id]


def test_undo_key(store):
    traces, spans = make()
    w = review(traces, spans, store=store, reviewer="ana")
    send(w, {"type": "key", "key": "p"})
    send(w, {"type": "key", "key": "u"})
    assert w.trace_id == "t0" and w.verdict == "" and w.save_state == "new"
    assert current_labels(store.events()).is_empty()
    assert store.events()["action"].to_list() == ["label", "retract"]


def test_payload_corpus_is_inert_in_every_trait(store):
    traces, spans = make(2, text=BAD)
    w = review(traces, spans, store=store, reviewer="ana")
    send(w, {"type": "add_category", "name": "<img src=x onerror=alert(1)>", "definition": BAD})
    send(w, {"type": "set", "field": "note", "value": BAD})
    html_traits = {"header_html": w.header_html, "trace_html": w.trace_html}
    for name, markup in html_traits.items():
        visible = assert_inert(markup)
        assert "<script>window.__xss=1</script>" in visible or name == "header_html", name
    visible = assert_inert(w.trace_html)
    assert "\\u202e" in visible and "\\u200b" in visible and "\\u001b[31m" in visible  # made visible
    assert "$$\\frac{1}{0}$$" in visible
    assert "&lt;img src=x onerror=alert(1)&gt;" in visible  # entities shown literally, not decoded
    assert "&lt;script" in w.trace_html and "&amp;lt;img" in w.trace_html
    # trace ids are data too
    odd = traces.with_columns(trace_id=pl.lit("<svg onload=alert(1)>") + pl.col("trace_id"))
    odd_spans = spans.with_columns(trace_id=pl.lit("<svg onload=alert(1)>") + pl.col("trace_id"),
                                   span_id=pl.lit("<b>") + pl.col("span_id"))
    w2 = review(odd, odd_spans, store=store, reviewer="bo")
    assert_inert(w2.header_html)
    assert_inert(w2.trace_html)
    assert "&lt;svg onload=alert(1)&gt;" in w2.header_html
    # plain-text traits reach the page only through textContent / .value (checked statically below)
    assert w.note == BAD and BAD in w.corrected_output
    assert_inert(w.session._repr_html_().split("<body class='wbr-page'>", 1)[1].removesuffix("</body></html>"))


def test_front_end_inserts_markup_only_from_html_traits():
    sinks = re.findall(r"\.innerHTML\s*=\s*([^;]+);", JS)
    assert sinks and all(re.fullmatch(r'model\.get\("\w+_html"\)', s.strip()) for s in sinks), sinks
    adjacent = re.findall(r"insertAdjacentHTML\(\s*\"\w+\"\s*,\s*([^)]+)\)", JS)
    assert adjacent == ["page.html"] and 'const page = model.get("page");' in JS
    for forbidden in ("outerHTML", "document.write", "eval(", "new Function", "fetch(", "XMLHttpRequest",
                      "http://", "https://", "import(", "srcdoc", ".src ="):
        assert forbidden not in JS, forbidden
    for trait in ("note", "corrected_output", "message", "categories"):
        for line in JS.splitlines():
            if f'model.get("{trait}")' in line:
                assert "innerHTML" not in line and "insertAdjacentHTML" not in line, line
    assert 'setAttribute("data-lm-suppress-shortcuts", "true")' in JS  # JupyterLab keeps j/k for us
    assert "isTyping(target)" in JS  # keys typed in text fields are never taken


def test_twenty_megabyte_field_is_capped_and_paged(store):
    big = ("0123456789<tag>&" * 64 + "\n") * 20_000  # ~20.5 MB, no control characters
    traces, spans = make(1, big=big)
    w = review(traces, spans, store=store, reviewer="ana")
    assert len(w.trace_html) < 300_000
    total_sync = sum(len(json.dumps(getattr(w, n))) for n in ("header_html", "trace_html", "note", "corrected_output",
                                                              "categories", "page"))
    assert total_sync < 400_000
    fields = w.session.current().rendered.fields
    field_id = next(f for f, v in fields.items() if v == big)
    shown = re.search(rf'data-field="{field_id}"><pre class="[^"]*">(.*?)</pre>', w.trace_html, re.S)
    text = html.unescape(shown.group(1))
    offset = int(re.search(rf'data-field="{field_id}" data-offset="(\d+)"', w.trace_html).group(1))
    assert offset == len(text)
    pages = 0
    while True:
        send(w, {"type": "more", "field": field_id, "offset": offset})
        page = w.page
        assert page["field"] == field_id and page["trace_id"] == "t0" and len(page["html"]) < 200_000
        text += html.unescape(page["html"])
        offset, pages = page["next_offset"], pages + 1
        if page["remaining"] == 0:
            break
    assert text == big and pages == -(-(len(big) - 3000) // 20_000)


def test_long_output_not_sent_for_editing(store):
    long_answer = "y" * (EDITABLE_OUTPUT_CAP + 1)
    traces, spans = make(1)
    traces = traces.with_columns(output=pl.lit(long_answer))
    w = review(traces, spans, store=store, reviewer="ana")
    assert w.corrected_output == "" and "too long to edit here" in w.corrected_hint
    send(w, {"type": "set", "field": "corrected_output", "value": ""})  # ignored: nothing was sent to edit
    send(w, {"type": "key", "key": "p"})
    assert store.events()["corrected_output"].to_list() == [None]

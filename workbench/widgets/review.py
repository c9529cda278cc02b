"""The keyboard-driven review widget: a thin anywidget view over :class:`ReviewSession`.

Data paths to the browser:

- ``header_html``, ``trace_html`` and ``page`` (``{"field", "html", ...}``) carry markup
  built ONLY by :mod:`workbench._html` (escaped trace text). The front end inserts
  markup from nowhere else.
- Every other trait is plain state (verdict, category names, note, ...) that the front
  end puts into the page with ``textContent`` / ``.value``, never as markup.

The front end sends one message per user action, mapped one-to-one onto session
methods (see :meth:`ReviewWidget.handle`)::

    {"type": "key", "key": "f"}                      -> session.decide("fail")
    {"type": "click", "action": "next"}              -> session.go_next()
    {"type": "click", "action": "verdict", "value": "pass"}
    {"type": "click", "action": "category", "value": "wrong_tool_args"}
    {"type": "set", "field": "note", "value": "..."} -> session.set_note("...")
    {"type": "add_category", "name": "...", "definition": "..."}
    {"type": "more", "field": "f3", "offset": 3000}  -> next page of a long field
"""

from __future__ import annotations

import pathlib
from typing import Any

import anywidget
import traitlets as t

from workbench.review.events import Vocabulary
from workbench.review.session import ReviewSession

EDITABLE_OUTPUT_CAP = 50_000  # longer outputs are not sent to the browser for editing
_HERE = pathlib.Path(__file__).parent


class ReviewWidget(anywidget.AnyWidget):
    """Review traces one at a time with the keyboard; labels go to the session's store.

    Build it with :func:`review`. ``widget.session`` is the state object; every
    button and key calls one of its methods.
    """

    _esm = _HERE / "review.js"
    _css = _HERE / "review.css"

    header_html = t.Unicode("").tag(sync=True)
    trace_html = t.Unicode("").tag(sync=True)
    page = t.Dict({}).tag(sync=True)
    trace_id = t.Unicode("").tag(sync=True)
    verdicts = t.List([]).tag(sync=True)
    categories = t.List([]).tag(sync=True)
    selected = t.List([]).tag(sync=True)
    verdict = t.Unicode("").tag(sync=True)
    note = t.Unicode("").tag(sync=True)
    corrected_output = t.Unicode("").tag(sync=True)
    corrected_hint = t.Unicode("").tag(sync=True)
    escalate = t.Bool(False).tag(sync=True)
    save_state = t.Unicode("new").tag(sync=True)
    message = t.Unicode("").tag(sync=True)
    at_start = t.Bool(True).tag(sync=True)
    at_end = t.Bool(True).tag(sync=True)

    def __init__(self, session: ReviewSession) -> None:
        super().__init__()
        self.session = session
        failing = set(session.vocabulary.failing)
        keys = {v: k for k, v in session.keys.items()}
        self.verdicts = [
            {"value": v, "key": keys.get(v, ""), "tone": "bad" if v in failing else "good"}
            for v in session.vocabulary.verdicts
        ]
        self._page_seq = 0
        self.on_msg(self._on_msg)
        self.sync()

    # -- messages from the front end -------------------------------------------------------------
    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        self.handle(content)

    def handle(self, message: dict[str, Any]) -> None:
        """Apply one front-end message to the session, then refresh the view."""
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        try:
            if kind == "key":
                self._key(str(message.get("key", "")))
            elif kind == "click":
                self._click(str(message.get("action", "")), message.get("value"))
            elif kind == "set":
                self._set(str(message.get("field", "")), message.get("value"))
            elif kind == "add_category":
                self.session.add_category(str(message.get("name", "")), str(message.get("definition") or ""))
            elif kind == "more":
                self._more(str(message.get("field", "")), int(message.get("offset", 0)))
                return
        except (ValueError, KeyError) as exc:
            self.session.message = str(exc.args[0] if exc.args else exc)
        self.sync()

    def _key(self, key: str) -> None:
        s = self.session
        if key in s.keys:
            s.decide(s.keys[key])
        elif key.isdigit() and key != "0":
            s.toggle_category(int(key))
        elif key in ("j", "ArrowRight"):
            s.go_next()
        elif key in ("k", "ArrowLeft"):
            s.go_previous()
        elif key == "s":
            s.skip()
        elif key == "u":
            s.undo()
        elif key == "Enter":
            s.submit()

    def _click(self, action: str, value: Any) -> None:
        s = self.session
        actions = {"next": s.go_next, "previous": s.go_previous, "skip": s.skip, "undo": s.undo,
                   "submit": s.submit}
        if action in actions:
            actions[action]()
        elif action == "verdict":
            s.decide(str(value))
        elif action == "category":
            s.toggle_category(value if isinstance(value, int) else str(value))

    def _set(self, field: str, value: Any) -> None:
        s = self.session
        if field == "note":
            s.set_note(str(value or ""))
        elif field == "corrected_output":
            if len(s.form.corrected_output) <= EDITABLE_OUTPUT_CAP:
                s.set_corrected_output(str(value or ""))
        elif field == "escalate":
            s.set_escalate(bool(value))

    def _more(self, field: str, offset: int) -> None:
        html, next_offset, remaining = self.session.more(field, offset)
        self._page_seq += 1
        self.page = {"field": field, "html": str(html), "next_offset": next_offset,
                     "remaining": remaining, "trace_id": self.trace_id, "seq": self._page_seq}

    # -- state to the front end ------------------------------------------------------------------
    def sync(self) -> None:
        """Copy the session's state into the traits (only changed traits are sent)."""
        s = self.session
        item = s.current()
        form = s.form
        with self.hold_sync():
            self.header_html = str(s.header_html())
            self.trace_id = item.trace_id if item else ""
            self.trace_html = str(item.rendered.html) if item else ""
            names = s.category_names()
            definitions = self._definitions()
            chips = [{"name": n, "number": i + 1 if i < 9 else 0, "definition": definitions.get(n, "")}
                     for i, n in enumerate(names)]
            chips += [{"name": c, "number": 0, "definition": "(not in the taxonomy)"}
                      for c in form.categories if c not in names]
            self.categories = chips
            self.selected = list(form.categories)
            self.verdict = form.verdict or ""
            self.note = form.note
            if len(form.corrected_output) <= EDITABLE_OUTPUT_CAP:
                self.corrected_output, self.corrected_hint = form.corrected_output, ""
            else:
                self.corrected_output = ""
                self.corrected_hint = (f"The output has {len(form.corrected_output):,} characters, too long to "
                                       "edit here; use widget.session.set_corrected_output(text).")
            self.escalate = form.escalate
            self.save_state = s.save_state
            self.message = s.message
            k, n = s.progress
            self.at_start, self.at_end = k <= 1, k >= n

    def _definitions(self) -> dict[str, str]:
        if getattr(self, "_definitions_version", None) != self.session.category_names():
            cats = self.session.taxonomy.categories()
            self._definitions_cache = dict(zip(cats["name"].to_list(), cats["definition"].fill_null("").to_list(),
                                               strict=True))
            self._definitions_version = list(self.session.category_names())
        return self._definitions_cache


def review(traces: Any, spans: Any, *, store: Any, reviewer: str, queue: Any = None,
           vocabulary: Vocabulary | None = None) -> ReviewWidget:
    """Open the review widget on a queue of traces.

    Parameters
    ----------
    traces, spans
        The traces and spans tables (``read_traces(...).traces`` / ``.spans``).
    store
        A :class:`~workbench.review.store.LabelStore` (e.g. ``LabelStore("labels.sqlite")``).
    reviewer
        Your name; recorded on every label.
    queue
        A :class:`~workbench.review.queues.ReviewQueue` or list of trace ids; default
        unlabelled first, resuming where ``reviewer`` stopped.
    vocabulary
        The verdicts (default pass / fail).

    Returns
    -------
    ReviewWidget
        Display it in a notebook cell; ``.session`` is the state object.

    Examples
    --------
    >>> from workbench.load import read_traces  # doctest: +SKIP
    >>> from workbench.review.store import LabelStore  # doctest: +SKIP
    >>> result = read_traces("data/support_agent.otlp.jsonl")  # doctest: +SKIP
    >>> review(result.traces, result.spans, store=LabelStore("labels.sqlite"), reviewer="ana")  # doctest: +SKIP
    """
    session = ReviewSession(traces, spans, store=store, reviewer=reviewer, queue=queue, vocabulary=vocabulary)
    return ReviewWidget(session)

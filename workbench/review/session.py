"""The state of one reviewer working through a queue (no ipywidgets here).

:class:`ReviewSession` holds the traces and spans, the queue, the label store, the
reviewer, the verdict vocabulary and the taxonomy. Every widget action is one call
to a typed public method, so the whole review flow can be driven (and tested) from
Python. "Saved" is reported only after the store committed; a failed save keeps
the form, reports NOT SAVED, and the next :meth:`ReviewSession.submit` retries the
SAME event (same ``event_id``), so a save that did commit is never stored twice.
Unsaved forms are kept as drafts on local disk (:mod:`workbench.review.drafts`), so
a killed kernel loses at most a couple of seconds of typing.
"""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

import polars as pl

from workbench._frames import as_polars
from workbench._html import Safe, join, tag
from workbench._html.trace import header_html, page_html, standalone_page, trace_html
from workbench.review import drafts as _drafts
from workbench.review._forms import Form, ReviewItem, SaveResult, verdict_keys
from workbench.review.conversation import conversation, metadata_summary, span_tree
from workbench.review.events import (
    DEFAULT_VOCABULARY,
    LabelEvent,
    Vocabulary,
    current_labels,
    new_label,
    new_retraction,
)
from workbench.review.queues import ReviewQueue, review_queue

MAX_LEAD_MS = 600_000  # a decision longer than 10 minutes counts as 10 minutes (breaks)
THROUGHPUT_WINDOW = 50


class ReviewSession:
    """One reviewer's pass over a review queue, saving label events to a store.

    Parameters
    ----------
    traces, spans
        The traces and spans tables (polars or pandas; ``schema.TRACES`` / ``schema.SPANS``).
    store
        A :class:`~workbench.review.store.LabelStore` (anything with ``save``, ``events``
        and the taxonomy-event methods).
    reviewer
        Who is labelling (recorded on every event).
    queue
        A :class:`ReviewQueue`, a list of trace ids, or ``None`` for unlabelled-first.
    vocabulary
        The verdicts (default pass / fail).
    taxonomy
        A :class:`~workbench.review.taxonomy.Taxonomy`; default: the store's, authored by ``reviewer``.
    clock
        Monotonic seconds (tests inject a fake clock).
    drafts
        Where unsaved forms are kept (a path); default beside a SQLite store, or in the
        user cache for PostgreSQL; ``False`` keeps them in memory only.

    Examples
    --------
    >>> session = ReviewSession(traces, spans, store=store, reviewer="ana")  # doctest: +SKIP
    >>> session.decide("fail")  # doctest: +SKIP
    SaveResult(saved=True, message='saved', ...)
    """

    def __init__(self, traces: Any, spans: Any, *, store: Any, reviewer: str, queue: Any = None,
                 vocabulary: Vocabulary | None = None, taxonomy: Any = None,
                 clock: Callable[[], float] = time.monotonic, saturation_window: int = 20,
                 drafts: Any = None) -> None:
        if not isinstance(reviewer, str) or not reviewer.strip():
            raise ValueError(f"reviewer must be a non-empty name, got {reviewer!r}")
        self.traces = as_polars(traces, name="traces")
        spans_frame = as_polars(spans, name="spans")
        if "trace_id" not in spans_frame.columns:
            raise ValueError("spans needs a trace_id column")
        self._spans = spans_frame.partition_by("trace_id", as_dict=True, maintain_order=True)
        self._trace_rows = {row["trace_id"]: row for row in self.traces.iter_rows(named=True)}
        self.store = store
        self.reviewer = reviewer.strip()
        self.vocabulary = vocabulary or DEFAULT_VOCABULARY
        self.keys = verdict_keys(self.vocabulary)
        if taxonomy is None:
            from workbench.review.taxonomy import Taxonomy

            taxonomy = Taxonomy(store, author=self.reviewer)
        self.taxonomy = taxonomy
        self.saturation_window = saturation_window
        self._clock = clock
        mine = current_labels(store.events(reviewer=self.reviewer))
        self._labelled: set[str] = set(mine["trace_id"].to_list())
        if queue is None:
            queue = review_queue(self.traces, strategy="unlabelled", labels=mine, reviewer=self.reviewer)
        elif not isinstance(queue, ReviewQueue):
            ids = tuple(str(t) for t in queue)
            queue = ReviewQueue(ids, ("given",) * len(ids), "given", population=len(self.traces))
        self.queue = queue
        lead = [x for x in store.events(reviewer=self.reviewer)["lead_time_ms"].to_list() if x is not None]
        self._lead_times: list[int] = lead[-THROUGHPUT_WINDOW:]
        self._items: OrderedDict[str, ReviewItem] = OrderedDict()
        self._drafts: dict[str, Form] = {}
        self._restored: set[str] = set()
        self._draft_box = None if drafts is False else _drafts.DraftBox(
            _drafts.default_path(store) if drafts in (None, True) else drafts)
        if self._draft_box is not None:
            self._restore_drafts(mine)
        box, who = self._draft_box, self.reviewer
        self._draft_writer = _drafts.DraftWriter(
            (lambda tid, form: box.put(who, tid, form)) if box is not None else (lambda tid, form: None))
        weakref.finalize(self, self._draft_writer.flush)  # at exit: write what is waiting
        self._history: list[LabelEvent] = []
        self._pending: dict[str, tuple[Form, LabelEvent]] = {}  # trace id -> failed save to retry
        self._pending_undo: list[LabelEvent] | None = None
        self._saturation: Any = None
        self._category_names: list[str] | None = None
        self.save_state = "new"
        self.message = ""
        self.position = queue.resume_position(mine, reviewer=self.reviewer) if len(queue) else 0
        self.position = min(self.position, max(len(queue) - 1, 0))
        self._show()

    def _restore_drafts(self, mine: pl.DataFrame) -> None:
        """Unsaved forms a killed or closed session left; a label saved after a draft wins over it."""
        saved_at = dict(zip(mine["trace_id"].to_list(), mine["created_at"].to_list(), strict=True))
        for trace_id, record in self._draft_box.drafts(self.reviewer).items():
            fields = _drafts.form_fields(record["form"])
            if fields is None or (trace_id in saved_at and saved_at[trace_id] >= record["at"]):
                continue
            self._drafts[trace_id] = Form(**fields)
            self._restored.add(trace_id)

    def flush_drafts(self) -> None:
        """Write unsaved forms to the drafts file now (otherwise within :data:`~workbench.review.drafts.DRAFT_INTERVAL_S`)."""
        self._draft_writer.flush()

    def discard_draft(self) -> Form:
        """Drop the unsaved changes of the trace on screen (memory and disk); show its saved label, if any."""
        item = self.current()
        if item is not None:
            self._forget_draft(item.trace_id)
            self._pending.pop(item.trace_id, None)
            self._show()
        return self._form

    def _forget_draft(self, trace_id: str) -> None:
        self._drafts.pop(trace_id, None)
        self._restored.discard(trace_id)
        self._draft_writer.forget(trace_id)
        if self._draft_box is not None:
            self._draft_box.clear(self.reviewer, trace_id)

    # -- what is on screen ---------------------------------------------------------------------
    def current(self) -> ReviewItem | None:
        """The trace on screen (``None`` when the queue is empty)."""
        if not len(self.queue):
            return None
        trace_id = self.queue.trace_ids[self.position]
        item = self._items.get(trace_id)
        if item is None:
            item = self._build_item(self.position, trace_id)
            self._items[trace_id] = item
            while len(self._items) > 8:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(trace_id)
        return item

    def _build_item(self, position: int, trace_id: str) -> ReviewItem:
        spans = self._spans.get((trace_id,))
        if spans is None:
            raise KeyError(f"trace {trace_id!r} is in the queue but has no spans")
        messages = conversation(spans)
        tree = span_tree(spans)
        trace = self._trace_rows.get(trace_id, {})
        summary = metadata_summary(spans, trace)
        original = trace.get("output")
        if original is None:
            original = next((m.content for m in reversed(messages) if m.role == "assistant" and m.content), "")
        return ReviewItem(position, trace_id, self.queue.reasons[position], spans, trace, tuple(messages),
                          tuple(tree), summary, trace_html(messages, tree, summary), original or "")

    @property
    def form(self) -> Form:
        """The form of the trace on screen."""
        return self._form

    @property
    def existing(self) -> LabelEvent | None:
        """This reviewer's current label of the trace on screen, if any."""
        return self._existing

    def _show(self) -> None:
        self._category_names = None  # other kernels may have added categories
        item = self.current()
        self._shown_at = self._clock()
        self._existing = None
        if item is None:
            self._form = Form()
            return
        rows = current_labels(self.store.events(trace_id=item.trace_id, reviewer=self.reviewer))
        if len(rows):
            self._existing = LabelEvent.from_row(rows.row(-1, named=True))
        draft = self._drafts.get(item.trace_id)
        if draft is not None:
            self._form = draft
            self.save_state = "error" if item.trace_id in self._pending else "draft"
            if item.trace_id in self._restored:
                self.message = "draft restored: not saved yet"
                return
        elif self._existing is not None:
            e = self._existing
            self._form = Form(e.verdict, e.categories, e.note or "", e.corrected_output or item.original_output,
                              e.escalate)
            self.save_state = "saved"
        else:
            self._form, self.save_state = Form(corrected_output=item.original_output), "new"
        self.message = ""

    # -- navigation ----------------------------------------------------------------------------
    def go_to(self, position: int) -> ReviewItem | None:
        """Show the trace at ``position`` (0-based, clamped to the queue)."""
        if not len(self.queue):
            return None
        self.position = max(0, min(int(position), len(self.queue) - 1))
        self._show()
        return self.current()

    def go_next(self) -> ReviewItem | None:
        """Show the next trace (stays on the last one)."""
        return self.go_to(self.position + 1)

    def go_previous(self) -> ReviewItem | None:
        """Show the previous trace; its label (if any) is shown and can be edited."""
        return self.go_to(self.position - 1)

    def skip(self) -> ReviewItem | None:
        """Move on without labelling (nothing is saved; the trace stays unlabelled)."""
        return self.go_next()

    # -- the form --------------------------------------------------------------------------------
    def _edit(self, *, persist: bool = True, **changes: Any) -> Form:
        self._form = replace(self._form, **changes)
        item = self.current()
        if item is not None:
            self._drafts[item.trace_id] = self._form
            if persist:  # not for a verdict key: the save follows at once
                self._draft_writer.changed(item.trace_id, asdict(self._form))
        self.save_state = "draft" if self.save_state != "error" else "error"
        return self._form

    def set_verdict(self, verdict: str) -> Form:
        """Choose a verdict (must be in the vocabulary)."""
        return self._edit(verdict=self.vocabulary.check(verdict))

    def category_names(self) -> list[str]:
        """Active taxonomy categories in key order (``1`` is the first)."""
        if self._category_names is None:
            self._category_names = self.taxonomy.names()
        return self._category_names

    def toggle_category(self, name_or_index: str | int) -> Form:
        """Turn a category on or off, by name or by its 1-based number (the 1-9 keys)."""
        names = self.category_names()
        if isinstance(name_or_index, int) or (isinstance(name_or_index, str) and name_or_index.isdigit()):
            index = int(name_or_index)
            if not 1 <= index <= len(names):
                raise ValueError(f"no category number {index}; there are {len(names)} categories")
            name = names[index - 1]
        else:
            name = str(name_or_index)
            if name not in names and name not in self._form.categories:
                raise ValueError(f"no category {name!r}; add it first with add_category()")
        chosen = self._form.categories
        chosen = tuple(c for c in chosen if c != name) if name in chosen else (*chosen, name)
        return self._edit(categories=chosen)

    def set_note(self, text: str) -> Form:
        """Set the free-text note (the open code)."""
        return self._edit(note=str(text or ""))

    def set_corrected_output(self, text: str) -> Form:
        """Set the corrected output (prefilled with the trace's output)."""
        return self._edit(corrected_output=str(text or ""))

    def set_escalate(self, escalate: bool) -> Form:
        """Flag (or unflag) the trace for escalation."""
        return self._edit(escalate=bool(escalate))

    def add_category(self, name: str, definition: str = "", *, select: bool = True) -> Any:
        """Create a taxonomy category while reviewing (and select it for this trace)."""
        change = self.taxonomy.add(name, definition=definition)
        self._category_names = None
        self._saturation = None
        if select and name.strip() not in self._form.categories:
            self.toggle_category(name.strip())
        return change

    # -- saving ----------------------------------------------------------------------------------
    def _event_for(self, item: ReviewItem, form: Form) -> LabelEvent:
        pending = self._pending.get(item.trace_id)
        if pending is not None and pending[0] == form:
            return pending[1]
        corrected = form.corrected_output if form.corrected_output.strip() else None
        if corrected is not None and corrected == item.original_output:
            corrected = None
        lead = int(max(0.0, self._clock() - self._shown_at) * 1000)
        return new_label(
            item.trace_id, self.reviewer, form.verdict or "", categories=form.categories,
            note=form.note or None, corrected_output=corrected, escalate=form.escalate,
            taxonomy_version=self.taxonomy.version, trace_content_hash=item.content_hash, lead_time_ms=lead,
            supersedes=self._existing.event_id if self._existing is not None else None,
            vocabulary=self.vocabulary,
        )

    def submit(self) -> SaveResult:
        """Save the form as a label event; "saved" only after the store commits.

        On failure the form stays, the state is ``error`` (NOT SAVED) and the next call
        retries the same event (same ``event_id``) if the form did not change.
        """
        item = self.current()
        if item is None:
            return SaveResult(False, "the queue is empty")
        form = self._form
        if form.verdict is None:
            self.message = "choose a verdict first"
            return SaveResult(False, self.message)
        if self._existing is not None and item.trace_id not in self._pending and self._same_as_existing(item, form):
            self.save_state, self.message = "saved", "unchanged"
            self._forget_draft(item.trace_id)
            return SaveResult(True, "unchanged", self._existing)
        event = self._event_for(item, form)
        self._pending[item.trace_id] = (form, event)
        self._drafts[item.trace_id] = form
        self.save_state = "saving"
        try:
            self.store.save(event)
        except Exception as exc:  # LabelNotSaved, or any backend failure: never claim "saved"
            self._draft_writer.changed(item.trace_id, asdict(form))  # the whole form, verdict too, as a draft
            self.save_state, self.message = "error", f"NOT SAVED — {exc}"
            return SaveResult(False, self.message, event)
        del self._pending[item.trace_id]
        self._existing = event
        self._history.append(event)
        self._labelled.add(item.trace_id)
        self._forget_draft(item.trace_id)
        if event.lead_time_ms is not None:
            self._lead_times = (self._lead_times + [event.lead_time_ms])[-THROUGHPUT_WINDOW:]
        self._saturation = None
        self.save_state, self.message = "saved", "saved"
        return SaveResult(True, "saved", event)

    def _same_as_existing(self, item: ReviewItem, form: Form) -> bool:
        e = self._existing
        assert e is not None
        corrected = form.corrected_output if form.corrected_output.strip() else None
        if corrected == item.original_output:
            corrected = None
        return (e.verdict, e.categories, e.note or "", e.corrected_output, e.escalate) == (
            form.verdict, form.categories, form.note, corrected, form.escalate)

    def decide(self, verdict: str, *, advance: bool = True) -> SaveResult:
        """Set the verdict, save, and (if saved) show the next trace: the verdict keys."""
        self._edit(verdict=self.vocabulary.check(verdict), persist=False)
        result = self.submit()
        if result.saved and advance and self.position < len(self.queue) - 1:
            self.go_next()
        return result

    def undo(self) -> SaveResult:
        """Retract the last label saved in this session (or the label on screen) and show that trace.

        Labels a taxonomy change re-mapped from it since are retracted with it (one
        transaction), so the trace shows what it had before that label.
        """
        targets = self._pending_undo
        if targets is None:
            label = self._history[-1] if self._history else self._existing
            if label is None:
                self.message = "nothing to undo"
                return SaveResult(False, self.message)
            targets = [new_retraction(label.trace_id, self.reviewer, supersedes=event_id)
                       for event_id in self._built_on(label)]
        target = targets[0]
        try:
            self.store.save_many(targets)
        except Exception as exc:
            self._pending_undo = targets
            self.save_state, self.message = "error", f"UNDO NOT SAVED — {exc}"
            return SaveResult(False, self.message, target)
        self._pending_undo = None
        self._history = [e for e in self._history if e.event_id != target.supersedes]
        self._saturation = None
        if not len(current_labels(self.store.events(trace_id=target.trace_id, reviewer=self.reviewer))):
            self._labelled.discard(target.trace_id)
        self._drafts.pop(target.trace_id, None)
        if target.trace_id in self.queue.trace_ids:
            self.go_to(self.queue.trace_ids.index(target.trace_id))
        self.save_state = "saved" if self._existing is not None else "new"
        self.message = "undone"
        return SaveResult(True, "undone", target)

    def _built_on(self, label: LabelEvent) -> list[str]:
        """``label``'s event id, then the ids of the later labels that supersede it in a chain (re-maps)."""
        events = self.store.events(trace_id=label.trace_id, reviewer=self.reviewer)
        successor = {s: e for e, s, a in events.select("event_id", "supersedes", "action").iter_rows() if a == "label"}
        chain = [label.event_id]
        while chain[-1] in successor and successor[chain[-1]] not in chain:
            chain.append(successor[chain[-1]])
        return chain

    # -- progress ------------------------------------------------------------------------------
    @property
    def progress(self) -> tuple[int, int]:
        """``(k, N)``: the trace on screen is number k of N ("37 of 200")."""
        total = len(self.queue)
        return (self.position + 1 if total else 0, total)

    @property
    def labelled_count(self) -> int:
        """How many traces of the queue this reviewer has a current label for."""
        return sum(1 for t in self.queue.trace_ids if t in self._labelled)

    def throughput(self) -> float | None:
        """Labels per hour from the time spent per decision (last 50, each capped at 10 min)."""
        lead = [min(x, MAX_LEAD_MS) for x in self._lead_times]
        if not lead or sum(lead) <= 0:
            return None
        return 3_600_000 * len(lead) / sum(lead)

    def saturation(self) -> Any:
        """New categories among the last ``saturation_window`` reviewed traces (all reviewers)."""
        if self._saturation is None:
            from workbench.review.taxonomy import saturation

            self._saturation = saturation(self.store.events(), last_n=self.saturation_window)
        return self._saturation

    # -- rendering -------------------------------------------------------------------------------
    def header_html(self) -> Safe:
        """Escaped header markup: progress, throughput, saturation, trace id, existing label."""
        item = self.current()
        k, n = self.progress
        existing = None
        if self._existing is not None:
            existing = f"labelled {self._existing.verdict}"
        return header_html(position=k, total=n, trace_id=item.trace_id if item else None,
                           reviewer=self.reviewer, throughput=self.throughput(),
                           saturation=self.saturation().message, strategy=self.queue.strategy,
                           labelled=self.labelled_count, existing=existing)

    def more(self, field_id: str, offset: int) -> tuple[Safe, int, int]:
        """The next page of a cut field of the trace on screen: ``(html, next_offset, remaining)``."""
        item = self.current()
        if item is None or field_id not in item.rendered.fields:
            raise KeyError(f"no cut field {field_id!r} in the trace on screen")
        return page_html(item.rendered.fields[field_id], offset=offset)

    def _repr_html_(self) -> str:
        item = self.current()
        body = join([tag("div", self.header_html(), cls="wbr-header"),
                     tag("div", tag("div", item.rendered.html if item else Safe(""), cls="wbr-trace"),
                         cls="wbr-main")])
        return standalone_page(tag("div", body, cls="wbr"))
